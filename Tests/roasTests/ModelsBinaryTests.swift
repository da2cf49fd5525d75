import Foundation
import RoasTestSupport
import Testing

/// `roas run --models`: every model in one pass, each model's rows those of its own `--model` run.
@Suite("roas run --models", .ownThread)
struct ModelsBinaryTests {
    static let models = ["last-touch", "first-touch", "linear", "time-decay", "position"]

    /// A `roas gen` stream with dirty lines, refunds, Amazon-linked buyers, sign-ups and profiles: the
    /// rows of `--models all`, filtered by model and without the field, equal each `--model` run byte
    /// for byte, in the same order; the dead letters are the same; the rows match the row schema.
    @Test(arguments: [["--by", "creator,campaign"], ["--by", "tier", "--window", "2h", "--slide", "1h"]])
    func eachModelEqualsItsOwnRun(_ options: [String]) throws {
        let generated = try Tools.roas([
            "gen", "--seed", "11", "--events", "60000", "--users", "3000", "--creators", "60", "--dirty-fraction", "0.02",
        ])
        try #require(generated.status == 0, "\(generated)")
        let input = try Tools.temporaryFile("models-input.ndjson", generated.stdout)
        defer { try? FileManager.default.removeItem(atPath: input) }
        func run(_ arguments: [String]) throws -> (rows: [String], deadLetters: String) {
            let deadLetters = Tools.temporaryPath("models-dead.ndjson")
            defer { try? FileManager.default.removeItem(atPath: deadLetters) }
            let result = try Tools.roas(
                ["run", "--input", input, "--summary", "none", "--dead-letter", deadLetters, "--view-lookback", "3h"]
                    + options + arguments)
            try #require(result.status == 0, "\(result)")
            let dead = String(decoding: FileManager.default.contents(atPath: deadLetters) ?? Data(), as: UTF8.self)
            return (result.stdoutLines, dead)
        }
        let together = try run(["--models", "all"])
        #expect(together.deadLetters.contains("\"reason\":\"malformed\""))
        var separate = 0
        for model in Self.models {
            let alone = try run(["--model", model])
            let prefix = "{\"model\":\"\(model)\","
            let own = together.rows.filter { $0.hasPrefix(prefix) }.map { "{" + $0.dropFirst(prefix.count) }
            #expect(own.count == alone.rows.count, "\(model): \(own.count) rows, \(alone.rows.count) alone")
            if let index = zip(own, alone.rows).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("\(model): row \(index) differs:\n\(own[index])\n\(alone.rows[index])")
            }
            #expect(together.deadLetters == alone.deadLetters, "\(model): dead letters differ")
            separate += alone.rows.count
        }
        #expect(together.rows.count == separate)
        // The models disagree on this stream, or the comparison proves little.
        let revenue = { (model: String) in
            together.rows.filter { $0.hasPrefix("{\"model\":\"\(model)\"") }.map { line in
                line.split(separator: ",").filter { $0.hasPrefix("\"revenue\":") }.joined()
            }
        }
        #expect(revenue("last-touch") != revenue("linear"))
        let check = try Tools.validate(Array(together.rows.prefix(400)), against: "row.schema.json")
        #expect(check.status == 0, "\(check)")
    }

    @Test("--model and --models exclude each other; --models names real models, each once")
    func badModelOptions() throws {
        for (arguments, message) in [
            (["--model", "linear", "--models", "all"], "give --model or --models, not both"),
            (["--models", "linear,u-shaped"], "--models lists models from"),
            (["--models", "linear,linear"], "--models lists a model twice"),
            (["--models", ""], "--models lists models from"),
        ] {
            let result = try Tools.roas(["run", "--sample"] + arguments)
            #expect(result.status != 0 && result.stderrText.contains(message), "\(arguments): \(result)")
            #expect(result.stdoutLines.isEmpty)
        }
    }

    @Test("--models with --alert: each model's rows have their own alerts, with the model named")
    func alertsPerModel() throws {
        let alertsPath = Tools.temporaryPath("models-alerts.ndjson")
        defer { try? FileManager.default.removeItem(atPath: alertsPath) }
        let result = try Tools.roas([
            "run", "--sample", "--summary", "none", "--models", "last-touch,linear", "--alert", "roas < 1", "--alerts", alertsPath,
        ])
        try #require(result.status == 0, "\(result)")
        let lines = String(decoding: FileManager.default.contents(atPath: alertsPath) ?? Data(), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        let check = try Tools.validate(lines, against: "alert.schema.json")
        #expect(check.status == 0, "\(check)")
        let alerts = try lines.map { try Tools.object($0) }
        #expect(Set(alerts.compactMap { $0["model"] as? String }) == ["last-touch", "linear"], "\(lines)")
        // The same rule and key under two models are two alerts with two ids.
        let ids = alerts.filter { $0["state"] as? String == "firing" }.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count)
    }
}
