import Foundation
import RoasTestSupport
import Testing

/// `roas run` refuses bad options with a message on stderr and documents every option.
@Suite("roas run options", .ownThread)
struct OptionTests {
    struct BadOption: CustomTestStringConvertible, Sendable {
        var arguments: [String]
        /// Text the message on stderr must hold.
        var message: [String]
        var testDescription: String { self.arguments.joined(separator: " ") }
    }

    static let badOptions: [BadOption] = [
        BadOption(arguments: ["--window", "0"], message: ["--window must be positive"]),
        BadOption(arguments: ["--window", "1 hour"], message: ["--window must be a duration", "1 hour"]),
        BadOption(arguments: ["--rates", "/nonexistent"], message: ["rates file", "/nonexistent"]),
        BadOption(arguments: ["--secret", "nope"], message: ["whsec_"]),
        BadOption(arguments: ["--secret", "whsec_!!!"], message: ["base64"]),
        BadOption(arguments: ["--secrets-file", "/nonexistent/secrets"], message: ["/nonexistent/secrets"]),
        BadOption(arguments: ["--model", "u-shaped"], message: ["--model must be one of", "last-touch"]),
        BadOption(arguments: ["--by", "campaign"], message: ["--by must be creator, creator,campaign, tier or tier,campaign"]),
        BadOption(arguments: ["--window", "1h", "--slide", "7m"], message: ["multiple of --slide"]),
        BadOption(arguments: ["--summary", "xml"], message: ["--summary must be text, json or none"]),
        BadOption(arguments: ["--base-currency", "usd"], message: ["usd", "ISO 4217"]),
        BadOption(arguments: ["--max-line", "0"], message: ["--max-line must be from 1"]),
        BadOption(arguments: ["--lateness", "-1s"], message: ["--lateness must be a duration"]),
        BadOption(arguments: ["--max-keys", "2000000000"], message: ["--max-keys must be from 16"]),
        BadOption(arguments: ["--max-future", "forever"], message: ["--max-future must be a duration"]),
        BadOption(arguments: ["--workers", "0"], message: ["--workers must be at least 1, not 0"]),
        BadOption(arguments: ["--partitions", "0"], message: ["--partitions must be a power of two from 1 to 1024, not 0"]),
        BadOption(arguments: ["--partitions", "24"], message: ["--partitions must be a power of two", "not 24"]),
        BadOption(
            arguments: ["--partitions", "2", "--workers", "3"],
            message: ["--workers 3 is more than --partitions 2: each worker needs a partition"]),
    ]

    @Test("a bad option exits non-zero with a clear message on stderr and writes no row", arguments: badOptions)
    func badOption(_ option: BadOption) throws {
        let event = #"{"type":"view","id":"v-1","ts":"2026-11-21T10:00:00Z","user":"u","creator":"@a"}"# + "\n"
        let run = try Tools.roas(["run"] + option.arguments, stdin: Data(event.utf8))
        #expect(run.status != 0, "\(run)")
        #expect(!run.timedOut, "\(run)")
        for text in option.message {
            #expect(run.stderrText.contains(text), "stderr should mention '\(text)':\n\(run)")
        }
        #expect(run.stdout.isEmpty, "\(run)")
    }

    @Test("a rates file that is not a JSON object of numbers is refused")
    func badRatesFile() throws {
        for content in [#"[1.08]"#, #"{"EUR":"1.08"}"#, #"{"EUR":-1}"#, #"{"euro":1.1}"#, "not json", #"{"EUR":true}"#, #"{"EUR":null}"#] {
            let path = try Tools.temporaryFile("rates.json", Data(content.utf8))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let run = try Tools.roas(["run", "--rates", path])
            #expect(run.status != 0, "\(content):\n\(run)")
            #expect(run.stderrText.contains("rate"), "\(content):\n\(run)")
        }
    }

    @Test("rates of 1 and 0.5 written as integers or decimals are read")
    func integerRates() throws {
        let path = try Tools.temporaryFile("rates.json", Data(#"{"EUR":1,"GBP":1.0,"JPY":0.5}"#.utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let events = """
            {"type":"click","id":"c","ts":"2026-03-01T12:00:00Z","user":"u","creator":"@a"}
            {"type":"purchase","id":"p1","ts":"2026-03-01T12:01:00Z","user":"u","order":"o1","amount":10,"currency":"EUR"}
            {"type":"purchase","id":"p2","ts":"2026-03-01T12:02:00Z","user":"u","order":"o2","amount":10,"currency":"GBP"}
            {"type":"purchase","id":"p3","ts":"2026-03-01T12:03:00Z","user":"u","order":"o3","amount":10,"currency":"JPY"}

            """
        let run = try Tools.roas(["run", "--rates", path, "--summary", "none"], stdin: Data(events.utf8))
        #expect(run.status == 0, "\(run)")
        #expect(run.stdoutText.contains(#""revenue":25"#), "\(run)")
    }

    /// Every option of `roas run` and the default its help must show (nil: no default).
    static let options: [(String, String?)] = [
        ("--secret", nil), ("--secrets-file", nil), ("--tolerance", "300s"), ("--max-line", "1048576"),
        ("--max-batch", "16777216"), ("--model", "last-touch"), ("--click-lookback", "7d"), ("--view-lookback", "1d"),
        ("--half-life", "7d"), ("--window", "1h"), ("--slide", nil), ("--by", "creator"), ("--lateness", "5s"),
        ("--dedup-horizon", "24h"), ("--base-currency", "USD"), ("--rates", nil), ("--input", nil), ("--output", nil),
        ("--dead-letter", nil), ("--emit-every", nil), ("--summary", "text"), ("--sample", nil), ("--threads", "2"), ("--version", nil),
        ("--max-keys", "20000000"), ("--partitions", "16"), ("--workers", nil), ("--max-future", "0"), ("--alert", nil),
        ("--alerts", nil), ("--alert-rules-file", nil), ("--models", nil),
        ("--help", nil),
    ]

    @Test("--alert-rules-file: rules one a line with comments give the alerts of the same --alert flags; a bad line is named")
    func alertRulesFile() throws {
        let rules = try Tools.temporaryFile(
            "rules.txt", lines: ["# creators who do not pay back", "roas < 1", "", "   cpl >= 80 and leads > 0  "])
        defer { try? FileManager.default.removeItem(atPath: rules) }
        let fromFile = try Tools.roas([
            "run", "--sample", "--summary", "none", "--alert-rules-file", rules, "--alerts", "/dev/stdout", "--output", "/dev/null",
        ])
        let fromFlags = try Tools.roas([
            "run", "--sample", "--summary", "none", "--alert", "roas < 1", "--alert", "cpl >= 80 and leads > 0", "--alerts",
            "/dev/stdout", "--output", "/dev/null",
        ])
        #expect(fromFile.status == 0 && fromFlags.status == 0, "\(fromFile)\n\(fromFlags)")
        #expect(fromFile.stdoutLines.count == 4 && fromFile.stdoutLines == fromFlags.stdoutLines, "\(fromFile)")

        let bad = try Tools.temporaryFile("bad-rules.txt", lines: ["roas < 1", "# fine", "spend >> 3"])
        defer { try? FileManager.default.removeItem(atPath: bad) }
        let refused = try Tools.roas(["run", "--sample", "--alert-rules-file", bad])
        #expect(refused.status == 64 && refused.stderrText.contains("\(bad), line 3"), "\(refused)")
        #expect(refused.stdoutLines.isEmpty)
        let missing = try Tools.roas(["run", "--sample", "--alert-rules-file", "/nonexistent/rules"])
        #expect(missing.status == 64 && missing.stderrText.contains("cannot read /nonexistent/rules"), "\(missing)")
    }

    @Test("roas run --help lists every option with its default")
    func help() throws {
        let run = try Tools.roas(["run", "--help"])
        #expect(run.status == 0, "\(run)")
        // Entries start with "  --name" (or "  -h, --help"); wrapped lines are indented further.
        let text = run.stdoutText
        let section = try #require(text.range(of: "OPTIONS:\n"), "no OPTIONS section:\n\(run)")
        var entries: [String: String] = [:]
        var current: String? = nil
        for line in text[section.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let indent = line.prefix { $0 == " " }.count
            if indent == 2, trimmed.hasPrefix("-") {
                let words = trimmed.split(separator: " ")
                let name = words.first { $0.hasPrefix("--") }.map { String($0.trimmingCharacters(in: [","])) }
                current = name
                if let name { entries[name] = trimmed }
            } else if let name = current, !trimmed.isEmpty, indent > 2 {
                entries[name, default: ""] += " " + trimmed
            } else if trimmed.isEmpty || indent < 2 {
                current = nil
            }
        }
        let expected = Self.options.map(\.0)
        #expect(Set(entries.keys) == Set(expected), "options in --help: \(entries.keys.sorted())")
        for (name, value) in Self.options {
            guard let entry = entries[name] else { continue }
            if let value {
                #expect(entry.contains("(default: \(value))"), "\(name) should show its default \(value): \(entry)")
            } else {
                #expect(!entry.contains("(default:"), "\(name) has no default, but help shows one: \(entry)")
            }
            #expect(entry.count > name.count + 10, "\(name) has no help text: \(entry)")
        }
        #expect(entries["--slide"]?.contains("tumbling") == true, "--slide should say it defaults to tumbling windows")
    }
}
