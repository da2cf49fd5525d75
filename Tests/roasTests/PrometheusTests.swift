import Foundation
import Testing

/// `GET /metrics` as Prometheus users check it (`promtool check metrics`), and the alerting rules
/// of deploy/prometheus (`promtool check rules`, `promtool test rules`). promtool comes with
/// Debian's `prometheus` package, which .ci/run installs.
@Suite("Prometheus: /metrics lints clean, the alerting rules check and pass their tests", .serialized, .ownThread)
struct PrometheusTests {
    static let rules = Tools.root.appendingPathComponent("deploy/prometheus/roas-alerts.yml").path
    static let ruleTests = Tools.root.appendingPathComponent("deploy/prometheus/roas-alerts.test.yml").path

    static func promtool() throws -> URL {
        guard let found = Tools.onPath("promtool") else {
            throw ToolFailure("promtool is not on PATH; install it with: apt-get install --no-install-recommends prometheus")
        }
        return found
    }

    /// The value of the sample `series` (name and labels exactly as exposed) in a Prometheus text.
    static func value(of series: String, in text: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test("/metrics of a server that took webhooks with a data folder: promtool finds nothing; every family has HELP and TYPE")
    func metricsLintClean() throws {
        let promtool = try Self.promtool()
        let folder = Tools.temporaryPath("prometheus")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let secret = ServeBinaryTests.secret
        let server = try ServeBinaryTests.Server([
            "--secret", secret, "--tolerance", "0", "--data-dir", folder + "/data", "--output", folder + "/rows.ndjson",
        ])
        let url = "http://127.0.0.1:\(server.httpPort)/v1/events"
        let gen = try Tools.roas([
            "gen", "--seed", "5", "--events", "3000", "--users", "300", "--creators", "10", "--secret", secret,
            "--batch-size", "500", "--http", url,
        ])
        try #require(gen.status == 0, "\(gen)")

        // The engine's counts reach the registry at each live tick (every second).
        var (status, body) = (0, Data())
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        repeat {
            (status, body) = try ServeBinaryTests.get("http://127.0.0.1:\(server.httpPort)/metrics")
            text = String(decoding: body, as: UTF8.self)
            try #require(status == 200, "\(text)")
            if Self.value(of: "roas_batches_accepted_total", in: text) == 6 { break }
            Thread.sleep(forTimeInterval: 0.2)
        } while Date() < deadline
        let stopped = server.stop()
        #expect(stopped.status == 0, "\(stopped)")

        let lint = try Tools.run(promtool, ["check", "metrics"], stdin: body)
        #expect(lint.status == 0 && lint.stdoutText.isEmpty && lint.stderrText.isEmpty, "\(lint)\n\(text)")

        // The same rules, so that a failure here says which family breaks them.
        var types: [String: String] = [:]
        var helped: Set<String> = []
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 3)
            guard words.count >= 4, words[0] == "#" else { continue }
            if words[1] == "TYPE" { types[String(words[2])] = String(words[3]) }
            if words[1] == "HELP" { helped.insert(String(words[2])) }
        }
        #expect(types.count >= 30, "\(types.keys.sorted())")
        #expect(Set(types.keys) == helped, "families without HELP: \(Set(types.keys).subtracting(helped).sorted())")
        for (family, type) in types where type == "counter" {
            #expect(family.hasSuffix("_total"), "the counter \(family) does not end in _total")
        }
        // The log's running totals are counters now, and they moved.
        for family in ["roas_wal_written_bytes_total", "roas_wal_syncs_total", "roas_wal_failed_writes_total"] {
            #expect(types[family] == "counter", "\(family): \(types[family] ?? "missing")")
        }
        #expect((Self.value(of: "roas_wal_written_bytes_total", in: text) ?? 0) > 0, "\(text)")
        #expect(Self.value(of: #"roas_webhook_requests_total{status="202"}"#, in: text) == 6, "\(text)")
        #expect(Self.value(of: #"roas_webhook_requests_total{status="409"}"#, in: text) == 0, "\(text)")
        #expect(Self.value(of: "roas_batches_accepted_total", in: text) == 6, "\(text)")
    }

    @Test("deploy/prometheus/roas-alerts.yml: promtool check rules and promtool test rules pass")
    func alertingRules() throws {
        let promtool = try Self.promtool()
        let check = try Tools.run(promtool, ["check", "rules", Self.rules])
        #expect(check.status == 0 && check.stdoutText.contains("SUCCESS"), "\(check)")
        let tests = try Tools.run(promtool, ["test", "rules", Self.ruleTests])
        #expect(tests.status == 0 && tests.stdoutText.contains("SUCCESS"), "\(tests)")
    }
}
