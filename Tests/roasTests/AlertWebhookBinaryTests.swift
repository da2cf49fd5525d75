import Foundation
import RoasTestSupport
import Testing

/// `roas serve --alert-webhook`, the binary, against scripts/alert_receiver.py: a receiver that
/// verifies every delivery with Python's `standardwebhooks` and can answer 500, or not at all.
@Suite("roas serve --alert-webhook, the binary", .serialized, .ownThread)
struct AlertWebhookBinaryTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let rule = "roas < 1"

    /// Hour windows of bare events. @a: 00:00-01:00 spend 20, revenue 10 (ROAS 0.5: fires), 01:00-02:00
    /// spend 10, revenue 30 (ROAS 3: resolves); an event at 02:10 closes both.
    static let firstPart = """
        {"type":"spend","id":"s1","ts":"2025-06-01T00:10:00Z","creator":"@a","amount":20}
        {"type":"click","id":"c1","ts":"2025-06-01T00:11:00Z","user":"u1","creator":"@a"}
        {"type":"purchase","id":"p1","ts":"2025-06-01T00:20:00Z","user":"u1","order":"o1","amount":10}
        {"type":"spend","id":"s2","ts":"2025-06-01T01:10:00Z","creator":"@a","amount":10}
        {"type":"click","id":"c2","ts":"2025-06-01T01:11:00Z","user":"u2","creator":"@a"}
        {"type":"purchase","id":"p2","ts":"2025-06-01T01:20:00Z","user":"u2","order":"o2","amount":30}
        {"type":"spend","id":"s3","ts":"2025-06-01T02:10:00Z","creator":"@b","amount":5}
        {"type":"spend","id":"s4","ts":"2025-06-01T02:20:00Z","creator":"@c","amount":7}

        """
    /// 02:00-03:00 closes: @b and @c spent without revenue (ROAS 0): two more firing alerts.
    static let secondPart = """
        {"type":"spend","id":"s5","ts":"2025-06-01T03:10:00Z","creator":"@d","amount":1}

        """

    /// A running scripts/alert_receiver.py; killed when the test ends.
    final class Receiver {
        let child: ChildProcess
        let port: Int

        init(_ arguments: [String] = []) throws {
            self.child = try ChildProcess(
                try Tools.python3(), [Tools.pythonScript("alert_receiver.py"), "--secret", AlertWebhookBinaryTests.secret] + arguments)
            let prefix = "alert_receiver: listening on 127.0.0.1:"
            self.port = try self.child.waitForStderr(timeout: 30) { text in
                text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
            }
        }

        deinit { self.child.kill() }

        var url: String { "http://127.0.0.1:\(self.port)/hooks/roas" }

        /// Every delivery attempt so far, in arrival order.
        func attempts() throws -> [[String: Any]] {
            let (status, body) = try ServeBinaryTests.get("http://127.0.0.1:\(self.port)/attempts")
            guard status == 200, let list = try JSONSerialization.jsonObject(with: body) as? [[String: Any]] else {
                throw ToolFailure("GET /attempts: \(status) \(String(decoding: body, as: UTF8.self))")
            }
            return list
        }

        func control(_ query: String) throws {
            let (status, _) = try ServeBinaryTests.get("http://127.0.0.1:\(self.port)/control?\(query)")
            guard status == 200 else { throw ToolFailure("GET /control?\(query): \(status)") }
        }

        /// Polls the attempts until `done` holds (or `timeout` seconds pass), and returns them.
        func waitForAttempts(timeout: TimeInterval, _ done: ([[String: Any]]) -> Bool) throws -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(timeout)
            var attempts = try self.attempts()
            while !done(attempts) && Date() < deadline {
                Thread.sleep(forTimeInterval: 0.05)
                attempts = try self.attempts()
            }
            return attempts
        }
    }

    static func ids(_ attempts: [[String: Any]], status: Int) -> [String] {
        attempts.filter { $0["status"] as? Int == status }.compactMap { $0["webhook_id"] as? String }
    }

    static func server(_ receiver: String, _ extra: [String] = []) throws -> ServeBinaryTests.Server {
        try ServeBinaryTests.Server(
            [
                "--alert", Self.rule, "--alert-webhook", receiver, "--alert-secret", Self.secret, "--alert-retry-base", "50ms",
                "--idle-close", "1h",
            ] + extra)
    }

    static func metrics(_ server: ServeBinaryTests.Server) throws -> String {
        let (status, body) = try ServeBinaryTests.get("http://127.0.0.1:\(server.httpPort)/metrics")
        guard status == 200 else { throw ToolFailure("GET /metrics: \(status)") }
        return String(decoding: body, as: UTF8.self)
    }

    /// Polls /metrics until `series` reaches `value` (the live tick records gauges every second).
    static func waitForMetric(_ server: ServeBinaryTests.Server, _ series: String, atLeast value: Double, timeout: TimeInterval = 10) throws -> String
    {
        let deadline = Date().addingTimeInterval(timeout)
        var text = try Self.metrics(server)
        while (PrometheusTests.value(of: series, in: text) ?? -1) < value && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            text = try Self.metrics(server)
        }
        return text
    }

    @Test(
        "firing then resolved, signed and verified by standardwebhooks; 500 twice, then the third attempt; SIGKILL while failing and a restart deliver each id exactly once"
    )
    func deliveriesRetriesAndRestart() throws {
        let folder = Tools.temporaryPath("alert-webhooks")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let receiver = try Receiver(["--fail-first", "2"])
        let durable = ["--data-dir", folder + "/data", "--output", folder + "/rows.ndjson", "--alerts", folder + "/alerts.ndjson"]
        var server = try Self.server(receiver.url, durable)

        try ServeBinaryTests.sendOverTCP(Data(Self.firstPart.utf8), port: server.tcpPort)
        var attempts = try receiver.waitForAttempts(timeout: 15) { Self.ids($0, status: 200).count >= 2 }
        let firing = try #require(Self.ids(attempts, status: 200).first, "\(attempts)\n\(server.child.stderrText)")
        let alertID = String(firing.dropLast(".firing".count))
        // The first delivery: 500, 500, then 200, all with the same id; then its resolved alert.
        #expect(attempts.map { $0["status"] as? Int } == [500, 500, 200, 200], "\(attempts)")
        #expect(attempts.map { $0["webhook_id"] as? String } == [firing, firing, firing, alertID + ".resolved"], "\(attempts)")
        #expect(attempts.allSatisfy { $0["verified"] as? Bool == true }, "every attempt verifies: \(attempts)")
        #expect(attempts.map { $0["state"] as? String } == ["firing", "firing", "firing", "resolved"])
        // The same alerts as --alerts writes.
        let written = (try? String(contentsOfFile: folder + "/alerts.ndjson", encoding: .utf8)) ?? ""
        #expect(written.split(separator: "\n").compactMap { try? Tools.object(String($0))["id"] as? String } == [alertID, alertID], "\(written)")
        var text = try Self.waitForMetric(server, "roas_alert_deliveries_total", atLeast: 2)
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_total", in: text) == 2, "\(text)")
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_failed_total", in: text) == 2, "\(text)")
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_pending", in: text) == 0, "\(text)")

        // The receiver fails; two more alerts fire; roas is killed while it retries the first.
        try receiver.control("mode=fail")
        try ServeBinaryTests.sendOverTCP(Data(Self.secondPart.utf8), port: server.tcpPort)
        attempts = try receiver.waitForAttempts(timeout: 15) { $0.count >= 6 }
        let failing = Self.ids(Array(attempts.dropFirst(4)), status: 500)
        try #require(failing.count >= 2, "\(attempts)\n\(server.child.stderrText)")
        #expect(Set(failing).count == 1, "one at a time, the oldest first: \(failing)")
        server.child.kill()
        let killed = attempts.count

        // The receiver is back; the restart sends both waiting alerts with their ids, and nothing else.
        try receiver.control("mode=ok")
        server = try Self.server(receiver.url, durable)
        attempts = try receiver.waitForAttempts(timeout: 15) { Self.ids($0, status: 200).count >= 4 }
        let accepted = Self.ids(attempts, status: 200)
        #expect(accepted.count == 4 && Set(accepted).count == 4, "each id accepted exactly once: \(attempts)")
        #expect(accepted.filter { $0.hasSuffix(".firing") }.count == 3, "\(accepted)")
        #expect(accepted.contains(failing[0]), "the alert retried before the kill keeps its id: \(accepted)")
        #expect(attempts.allSatisfy { $0["verified"] as? Bool == true }, "\(attempts)")
        #expect(Self.ids(Array(attempts.dropFirst(killed)), status: 200).count == 2, "after the restart: \(attempts)")
        // Nothing more comes (recovery replayed every row, and with it every alert already delivered).
        Thread.sleep(forTimeInterval: 1)
        #expect(try receiver.attempts().count == attempts.count)
        text = try Self.waitForMetric(server, "roas_alert_deliveries_total", atLeast: 2)
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_total", in: text) == 2, "\(text)")
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_pending", in: text) == 0, "\(text)")
        let stopped = server.stop()
        #expect(stopped.status == 0, "\(stopped)")
    }

    @Test("an unreachable receiver: ingest goes on at once, the failures are counted, logged once, and retried")
    func unreachableReceiver() throws {
        let port = try freeLoopbackPort()
        let server = try Self.server("http://127.0.0.1:\(port)/alerts", ["--alert-timeout", "2s"])
        let started = Date()
        try ServeBinaryTests.sendOverTCP(Data(Self.firstPart.utf8), port: server.tcpPort)
        try ServeBinaryTests.sendOverTCP(Data(Self.secondPart.utf8), port: server.tcpPort)
        let took = Date().timeIntervalSince(started)
        #expect(took < 3, "ingest waited for the webhook: \(took) s")
        let text = try Self.waitForMetric(server, "roas_alert_deliveries_failed_total", atLeast: 5)
        #expect((PrometheusTests.value(of: "roas_alert_deliveries_failed_total", in: text) ?? 0) >= 5, "\(text)")
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_pending", in: text) == 4, "\(text)")
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_total", in: text) == 0, "\(text)")
        let (status, body) = try ServeBinaryTests.get("http://127.0.0.1:\(server.httpPort)/v1/alerts")
        #expect(status == 200 && String(decoding: body, as: UTF8.self).contains("@b"), "alerts still reach /v1/alerts")
        let stopped = server.stop()
        #expect(stopped.status == 0 && !stopped.timedOut, "\(stopped)")
        let warnings = stopped.stderrText.components(separatedBy: "alert webhook delivery failed").count - 1
        #expect(warnings == 1, "logged once, not per attempt:\n\(stopped.stderrText)")
        #expect(stopped.stderrText.contains("without --data-dir they are lost"), "\(stopped.stderrText)")
    }

    @Test("a receiver that does not answer: the attempt times out and the retry delivers")
    func hangingReceiver() throws {
        // The first answer would come after a minute: far longer than any delay a busy machine adds
        // (a bound of 10 s once failed at 13 s while the whole suite ran on 2 cores).
        let receiver = try Receiver(["--hang-first", "1", "--hang-seconds", "60"])
        let server = try Self.server(receiver.url, ["--alert-timeout", "500ms"])
        let started = Date()
        try ServeBinaryTests.sendOverTCP(Data(Self.firstPart.utf8), port: server.tcpPort)
        #expect(Date().timeIntervalSince(started) < 10)
        let attempts = try receiver.waitForAttempts(timeout: 40) { Self.ids($0, status: 200).count >= 2 }
        let took = Date().timeIntervalSince(started)
        // The first attempt hangs (its record still says 0), the retry after the timeout is answered.
        #expect(attempts.count == 3, "\(attempts)")
        #expect(attempts.map { $0["status"] as? Int } == [0, 200, 200], "\(attempts)")
        #expect(attempts.first?["webhook_id"] as? String == attempts.dropFirst().first?["webhook_id"] as? String)
        #expect(took < 40, "delivered \(took) s after the send, long before the receiver's 60 s")
        let text = try Self.waitForMetric(server, "roas_alert_deliveries_total", atLeast: 2)
        #expect(PrometheusTests.value(of: "roas_alert_deliveries_failed_total", in: text) == 1, "\(text)")
        // SIGTERM closes every window: @b and @c fire, and without a data folder the shutdown
        // delivers them before the exit.
        let stopped = server.stop()
        #expect(stopped.status == 0, "\(stopped)")
        let last = Self.ids(try receiver.attempts(), status: 200)
        #expect(last.count == 4 && Set(last).count == 4, "\(last)\n\(stopped.stderrText)")
    }

    @Test("bad --alert-webhook and --alert-secret options are refused at start with a clear message")
    func badOptions() throws {
        let cases: [([String], String)] = [
            (["--alert-webhook", "http://127.0.0.1:9/"], "--alert-webhook needs --alert-secret"),
            (["--alert-secret", Self.secret], "--alert-secret needs --alert-webhook"),
            (["--alert-webhook", "ftp://127.0.0.1/", "--alert-secret", Self.secret], "--alert-webhook must be an http or https URL"),
            (["--alert-webhook", "http://127.0.0.1:9/", "--alert-secret", "secret"], "whsec_"),
            (["--alert-webhook", "http://127.0.0.1:9/", "--alert-secret", Self.secret, "--alert-timeout", "0"], "--alert-timeout must be positive"),
        ]
        for (arguments, message) in cases {
            let run = try Tools.roas(["serve", "--alert", Self.rule, "--no-http", "--listen-tcp", "127.0.0.1:0"] + arguments, timeout: 30)
            #expect(run.status != 0 && !run.timedOut, "\(arguments): \(run)")
            #expect(run.stderrText.contains(message), "\(arguments) should say '\(message)':\n\(run)")
        }
        let noRule = try Tools.roas(["serve", "--alert-webhook", "http://127.0.0.1:9/", "--alert-secret", Self.secret], timeout: 30)
        #expect(noRule.status != 0 && noRule.stderrText.contains("--alert-webhook needs at least one --alert rule"), "\(noRule)")
    }
}
