import Foundation
import Logging
import NIOCore
import NIOPosix
import Prometheus
import RoasGen
import RoasRuntime
import RoasTestSupport
import Testing

@testable import RoasCore
@testable import RoasServer

/// The parts of `--alert-webhook`: the signer, the retry schedule, the URL, the outbox file, the
/// queue (dedupe, bound, restart) and the client's failures, without the binary (AlertWebhookBinaryTests
/// runs the whole thing against a Python receiver).
@Suite("Alert webhooks")
struct AlertWebhookTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let hour: Int64 = 3_600_000
    static let t0: Int64 = 1_795_257_000_000

    static func alert(_ creator: String, _ state: Alert.State, start: Int64 = t0) -> Alert {
        var figures = Aggregate()
        figures.spend = 20_000_000
        let row = Row(windowStart: start, windowEnd: start + hour, creator: creator, campaign: nil, figures: figures, isFinal: true)
        let id = "a-" + String(repeating: "0", count: 15) + String(creator.count % 10)
        return Alert(id: id, rule: "roas < 1", state: state, firstWindowStart: start, row: row)
    }

    static func folder() throws -> String {
        let path = NSTemporaryDirectory() + "roas-alert-webhooks-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func queue(limit: Int = 100_000, clock: @escaping @Sendable () -> Int64 = { t0 }) throws -> AlertWebhookQueue {
        var settings = AlertWebhookSettings(
            url: try #require(AlertWebhookURL("http://127.0.0.1:9/hook")), secret: try WebhookSecret(Self.secret))
        settings.queueLimit = limit
        return AlertWebhookQueue(
            settings: settings, metrics: AlertDeliveryMetrics(registry: PrometheusCollectorRegistry()),
            logger: Logger(label: "test"), wallClock: clock)
    }

    // MARK: Signer

    @Test("the signer: the Standard Webhooks spec vector, and an alert signed by Python's standardwebhooks")
    func signer() throws {
        let signer = AlertWebhookSigner(secret: try WebhookSecret(Self.secret))
        // The spec's test vector.
        #expect(
            signer.signature(webhookID: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Array(#"{"test": 2432232314}"#.utf8))
                == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        // Webhook("whsec_MfKQ…").sign("a-0123456789abcdef.firing", 1795257000, body) in standardwebhooks 1.1.0.
        let body = Array(#"{"id":"a-0123456789abcdef","rule":"roas < 1","state":"firing","creator":"@café"}"#.utf8)
        let headers = signer.headers(webhookID: "a-0123456789abcdef.firing", timestamp: 1_795_257_000, body: body)
        #expect(headers.map(\.name) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers.map(\.value) == ["a-0123456789abcdef.firing", "1795257000", "v1,5fFeAbVcb6qonOLae/W9fBwoyCKpu9mvfR4DPe7LEpI="])
        // Any change to the id, the time or the body changes it.
        #expect(signer.signature(webhookID: "a-0123456789abcdef.resolved", timestamp: 1_795_257_000, body: body) != headers[2].value)
        #expect(signer.signature(webhookID: "a-0123456789abcdef.firing", timestamp: 1_795_257_001, body: body) != headers[2].value)
        #expect(signer.signature(webhookID: "a-0123456789abcdef.firing", timestamp: 1_795_257_000, body: body + [32]) != headers[2].value)
        #expect(AlertWebhookSigner.webhookID(of: Self.alert("@a", .resolved)) == "a-0000000000000002.resolved")
    }

    // MARK: Retries

    @Test("the backoff doubles from the base to the 5-minute cap, jitter only shortens it; answers sort into deliver, retry, reject")
    func backoff() {
        var policy = AlertRetryPolicy()
        #expect(
            (1...12).map { policy.delay(afterFailures: $0, random: 0) }
                == [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128_000, 256_000, 300_000, 300_000, 300_000])
        #expect(policy.delay(afterFailures: 1_000_000, random: 0) == 300_000)
        #expect(policy.delay(afterFailures: 1, random: 1) == 800)
        #expect(policy.delay(afterFailures: 10, random: 0.5) == 270_000)
        for failures in 1...20 {
            let delay = policy.delay(afterFailures: failures, random: Double.random(in: 0..<1))
            let nominal: Int64 = min(300_000, Int64(1000) << Int64(min(failures - 1, 30)))
            #expect(delay <= nominal && delay >= nominal * 8 / 10)
        }
        policy.base = 50
        #expect((1...4).map { policy.delay(afterFailures: $0, random: 0) } == [50, 100, 200, 400])
        #expect(policy.giveUpAfter == 3_600_000)

        for status in [200, 201, 202, 204, 299] { #expect(AlertRetryPolicy.verdict(status: status) == .delivered) }
        for status in [408, 429, 500, 502, 503, 504, 599, 100] { #expect(AlertRetryPolicy.verdict(status: status) == .retry, "\(status)") }
        for status in [301, 302, 400, 401, 403, 404, 410, 413, 422] { #expect(AlertRetryPolicy.verdict(status: status) == .reject, "\(status)") }
    }

    @Test("--alert-webhook URLs: http and https, default ports, path and query kept; others refused")
    func urls() throws {
        let plain = try #require(AlertWebhookURL("http://127.0.0.1:8099/hooks/roas?x=1"))
        #expect(!plain.isTLS && plain.host == "127.0.0.1" && plain.port == 8099 && plain.target == "/hooks/roas?x=1")
        #expect(plain.hostHeader == "127.0.0.1:8099" && plain.description == "http://127.0.0.1:8099/hooks/roas")
        let tls = try #require(AlertWebhookURL("HTTPS://alerts.example.com"))
        #expect(tls.isTLS && tls.port == 443 && tls.target == "/" && tls.hostHeader == "alerts.example.com")
        let v6 = try #require(AlertWebhookURL("http://[::1]:81/a"))
        #expect(v6.host == "::1" && v6.hostHeader == "[::1]:81")
        for bad in [
            "ftp://example.com/", "example.com/hook", "http://", "http:///path", "https://user:pw@example.com/", "http://a b/", "", "http://h:0/",
            "http://h:70000/",
        ] {
            #expect(AlertWebhookURL(bad) == nil, "\(bad)")
        }
    }

    // MARK: Outbox

    @Test("outbox records read back exactly; a torn last line is skipped; sent and dropped finish a queued id")
    func outboxRecords() {
        let body = Array(#"{"id":"a-1","state":"firing","row":{"creator":"@a \"quoted\"","roas":0.5}}"#.utf8)
        let records: [AlertOutbox.Record] = [
            .queued(id: "a-1.firing", at: 5, body: body), .queued(id: "a-2.firing", at: 6, body: Array("{}".utf8)),
            .sent(id: "a-1.firing"), .queued(id: "a-3.firing", at: 7, body: Array(#"{"x":1}"#.utf8)),
            .dropped(id: "a-2.firing", reason: "rejected"), .queued(id: "a-1.firing", at: 9, body: body),
        ]
        for record in records {
            let line = AlertOutbox.line(record)
            #expect(line.last == 0x0A)
            #expect(AlertOutbox.parse(line.dropLast()) == record)
            // Each line is JSON.
            #expect((try? JSONSerialization.jsonObject(with: Data(line))) != nil)
        }
        #expect(AlertOutbox.parse(ArraySlice(#"{"sent":"a\"b"}"#.utf8)) == nil)
        var file = records.flatMap(AlertOutbox.line)
        file += Array(#"{"queued":"a-4.firing","at":8,"body":{"id"#.utf8)  // cut by a crash
        let contents = AlertOutbox.contents(of: file)
        #expect(contents.pending.map(\.id) == ["a-3.firing"])
        #expect(contents.pending.first?.at == 7 && contents.pending.first?.body == Array(#"{"x":1}"#.utf8))
        #expect(contents.finished == ["a-1.firing", "a-2.firing"])
        #expect(contents.damagedLines == 1)
        let compacted = AlertOutbox.compacted(finished: contents.finished, pending: contents.pending)
        #expect(AlertOutbox.contents(of: compacted) == AlertOutbox.Contents(pending: contents.pending, finished: contents.finished))
    }

    @Test("the queue: in order, each webhook id once, bounded (oldest dropped, not the one in flight)")
    func queueOrderAndBound() throws {
        let queue = try Self.queue(limit: 3)
        queue.offer([Self.alert("@a", .firing), Self.alert("@bb", .firing)])
        queue.offer([Self.alert("@a", .firing), Self.alert("@a", .resolved)])  // the first is known
        #expect(queue.count == 3)
        let first = try #require(queue.front())
        #expect(first.webhookID == "a-0000000000000002.firing")
        #expect(String(decoding: first.body, as: UTF8.self) == Self.alert("@a", .firing).json)
        queue.offer([Self.alert("@ccc", .firing)])  // over the bound: @bb goes, not @a (in flight)
        #expect(queue.count == 3)
        queue.finish(first, .sent)
        var order: [String] = []
        while let entry = queue.front() {
            order.append(entry.webhookID)
            queue.finish(entry, .sent)
        }
        #expect(order == ["a-0000000000000002.resolved", "a-0000000000000004.firing"])
        // Finished ids are remembered: offered again (a replay), they are not queued.
        queue.offer([Self.alert("@a", .resolved), Self.alert("@bb", .firing)])
        #expect(queue.count == 0)
    }

    @Test("with an outbox: unsent alerts are queued again after a restart with the same id, body and time; sent ones are not")
    func outboxRestart() throws {
        let folder = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let before = try Self.queue(clock: { Self.t0 + 1234 })
        #expect(try before.openOutbox(directory: folder) == 0)
        #expect(before.isPersistent)
        before.offer([Self.alert("@a", .firing), Self.alert("@bb", .firing), Self.alert("@ccc", .firing)])
        before.sync()
        let sent = try #require(before.front())
        before.finish(sent, .sent)
        let refused = try #require(before.front())
        before.finish(refused, .dropped(reason: "rejected"))
        // A crash: nothing is closed or flushed beyond what the queue wrote.
        let after = try Self.queue(clock: { Self.t0 + 99_999 })
        #expect(try after.openOutbox(directory: folder) == 1)
        let again = try #require(after.front())
        #expect(again.webhookID == "a-0000000000000004.firing" && again.queuedAt == Self.t0 + 1234)
        #expect(String(decoding: again.body, as: UTF8.self) == Self.alert("@ccc", .firing).json)
        // Recovery replays the rows of all three: none is queued twice.
        after.offer([Self.alert("@a", .firing), Self.alert("@bb", .firing), Self.alert("@ccc", .firing)])
        #expect(after.count == 1)
        after.finish(again, .sent)
        // A third start: nothing left to send, and the file was compacted to the finished ids.
        let third = try Self.queue()
        #expect(try third.openOutbox(directory: folder) == 0)
        let text = try String(contentsOfFile: folder + "/" + AlertOutbox.fileName, encoding: .utf8)
        #expect(text.split(separator: "\n").count == 3 && !text.contains("queued"), "\(text)")
        third.offer([Self.alert("@a", .firing)])
        #expect(third.count == 0)
    }

    // MARK: Client

    @Test("the client: a refused connection and a receiver that never answers fail (after the timeout), a status is returned")
    func clientFailures() async throws {
        // Nothing listens on a port just released.
        let closedPort = try freeLoopbackPort()
        let refused = try AlertWebhookClient(url: try #require(AlertWebhookURL("http://127.0.0.1:\(closedPort)/")), timeout: 2000)
        await #expect(throws: AlertWebhookClient.Failure.self) { try await refused.post(body: [], headers: []) }

        // A listener that accepts and never answers.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = try #require(silent.localAddress?.port)
        let hanging = try AlertWebhookClient(url: try #require(AlertWebhookURL("http://127.0.0.1:\(port)/")), timeout: 300)
        let started = ContinuousClock.now
        await #expect(throws: AlertWebhookClient.Failure.timedOut(milliseconds: 300)) {
            try await hanging.post(body: Array("{}".utf8), headers: [])
        }
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(290) && took < .seconds(5), "\(took)")
    }
}
