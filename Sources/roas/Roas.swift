import ArgumentParser
import Foundation
import RoasCore
import RoasRuntime

@main
struct Roas: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roas",
        abstract: "Attributes creator-commerce events to creators and emits rolling ROAS.",
        discussion: "Read docs/formats.md for the formats. Start with: roas run --sample",
        version: "0.1.0",
        subcommands: [Run.self, Serve.self, Worker.self, SampleCommand.self, Gen.self, Inspect.self]
    )
}

/// Runs a command's work: a `RoasError` (bad input files, unreachable outputs) is printed as
/// `roas: <message>` on stderr and the command exits with status 2.
func reportingFailures(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as RoasError {
        FileHandle.standardError.write(Data("roas: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}

/// `reportingFailures` for async work.
func reportingFailuresAsync(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as RoasError {
        FileHandle.standardError.write(Data("roas: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}

/// Flags shared by everything that runs the engine.
struct EngineOptions: ParsableArguments {
    @Option(name: .customLong("secret"), help: "A signing secret, whsec_<base64>; repeat for key rotation.")
    var secrets: [String] = []

    @Option(help: "A file with one whsec_ secret per line (# comments allowed).")
    var secretsFile: String?

    @Option(parsing: .unconditional, help: "Largest allowed |now - batch timestamp|, as seconds or a duration; 0 disables (replaying archives).")
    var tolerance: String = "300s"

    @Option(parsing: .unconditional, help: "Longest line in bytes; longer lines are dead-lettered too_long.")
    var maxLine: Int = 1 << 20

    @Option(parsing: .unconditional, help: "Largest batch payload in bytes; larger frames are bad_frame.")
    var maxBatch: Int = 16 << 20

    @Option(help: "Attribution model: last-touch, first-touch, linear, time-decay, position.")
    var model: String = AttributionModel.lastTouch.rawValue

    @Option(help: "Several models in one pass, side by side: a comma-separated list, or all; rows gain a \"model\" field.")
    var models: String?

    @Option(parsing: .unconditional, help: "How far back a click qualifies for a purchase.")
    var clickLookback: String = "7d"

    @Option(parsing: .unconditional, help: "How far back a view qualifies for a purchase.")
    var viewLookback: String = "1d"

    @Option(parsing: .unconditional, help: "Half-life of the time-decay model.")
    var halfLife: String = "7d"

    @Option(parsing: .unconditional, help: "Window length; windows are aligned to the Unix epoch in UTC.")
    var window: String = "1h"

    @Option(parsing: .unconditional, help: "Hop between windows for hopping windows (window must be a multiple); default: tumbling.")
    var slide: String?

    @Option(help: "Row key: creator, creator,campaign, tier or tier,campaign (rows rolled up by creator tier).")
    var by: String = "creator"

    @Option(parsing: .unconditional, help: "Allowed disorder: the watermark is the greatest event time seen minus this.")
    var lateness: String = "5s"

    @Option(parsing: .unconditional, help: "How long (event time) an event id is remembered to drop duplicates.")
    var dedupHorizon: String = "24h"

    @Option(help: "Currency of the output figures (ISO 4217).")
    var baseCurrency: String = "USD"

    @Option(help: "JSON file of rates to the base currency, {\"EUR\":1.08} = base units per unit.")
    var rates: String?

    @Option(
        parsing: .unconditional,
        help: "Most keys (users, creators, campaigns, orders) the state holds; events that would add more are too_many_keys.")
    var maxKeys: Int = 20_000_000

    @Option(
        parsing: .unconditional,
        help: """
            Touch partitions (a power of two, 1 to 1024): views and clicks are kept by user in this many parts; \
            recorded in checkpoints. Does not change rows.
            """)
    var partitions: Int = 16

    @Option(
        parsing: .unconditional,
        help: """
            Threads that keep the partitions, the engine's own included (at most --partitions); default: the cores \
            beyond two (reading and writing have a thread each), at least 1. Does not change rows.
            """)
    var workers: Int?

    func duration(_ text: String, _ flag: String) throws -> Int64 {
        guard let value = DurationText.milliseconds(text) else {
            throw ValidationError("\(flag) must be a duration such as 500ms, 5s, 1h30m or 7d, got '\(text)'")
        }
        return value
    }

    /// The engine configuration the flags describe, with the rates file read.
    func makeConfiguration(extraRates: [String: Double] = [:]) throws -> EngineConfiguration {
        var rates = extraRates
        if let path = self.rates {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw RoasError(.rates, "cannot read the rates file \(path)")
            }
            // Decoded as numbers: on Linux a `JSONSerialization` number 0 or 1 also casts to `Bool`,
            // so `{"EUR":1}` was refused as "not a number".
            do {
                for (code, rate) in try JSONDecoder().decode([String: Double].self, from: data) { rates[code] = rate }
            } catch DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty {
                throw RoasError(.rates, "rates file \(path): the rate of \(context.codingPath[0].stringValue) must be a number")
            } catch DecodingError.valueNotFound(_, let context) where !context.codingPath.isEmpty {
                throw RoasError(.rates, "rates file \(path): the rate of \(context.codingPath[0].stringValue) must be a number")
            } catch {
                throw RoasError(.rates, "the rates file \(path) must be a JSON object such as {\"EUR\":1.08}")
            }
        }
        var configuration = EngineConfiguration(currencies: try CurrencyTable(base: self.baseCurrency, rates: rates))
        let names = AttributionModel.allCases.map(\.rawValue).joined(separator: ", ")
        if let list = self.models {
            // (--model last-touch, the default, cannot be told from no --model.)
            guard self.model == AttributionModel.lastTouch.rawValue else {
                throw ValidationError("give --model or --models, not both")
            }
            if list == "all" {
                configuration.models = AttributionModel.allCases
            } else {
                configuration.models = try list.split(separator: ",", omittingEmptySubsequences: false).map {
                    guard let model = AttributionModel(rawValue: String($0)) else {
                        throw ValidationError("--models lists models from \(names) (or is all), got '\($0)'")
                    }
                    return model
                }
            }
            configuration.labelsModels = true
        } else {
            guard let model = AttributionModel(rawValue: self.model) else {
                throw ValidationError("--model must be one of \(names), got '\(self.model)'")
            }
            configuration.model = model
        }
        configuration.clickLookback = try self.duration(self.clickLookback, "--click-lookback")
        configuration.viewLookback = try self.duration(self.viewLookback, "--view-lookback")
        configuration.halfLife = try self.duration(self.halfLife, "--half-life")
        configuration.window = try self.duration(self.window, "--window")
        configuration.slide = try self.slide.map { try self.duration($0, "--slide") } ?? configuration.window
        configuration.lateness = try self.duration(self.lateness, "--lateness")
        configuration.dedupHorizon = try self.duration(self.dedupHorizon, "--dedup-horizon")
        configuration.maximumKeys = self.maxKeys
        configuration.partitions = self.partitions
        // By default a worker per core left once the reading and writing threads have one each
        // (on two cores a second worker made `roas run` slower: Benchmarks/README.md), as many as
        // there are partitions at most.
        configuration.workers =
            self.workers ?? min(max(1, ProcessInfo.processInfo.activeProcessorCount - 2), max(1, self.partitions))
        switch self.by {
        case "creator": (configuration.byTier, configuration.byCampaign) = (false, false)
        case "creator,campaign": (configuration.byTier, configuration.byCampaign) = (false, true)
        case "tier": (configuration.byTier, configuration.byCampaign) = (true, false)
        case "tier,campaign": (configuration.byTier, configuration.byCampaign) = (true, true)
        default: throw ValidationError("--by must be creator, creator,campaign, tier or tier,campaign, got '\(self.by)'")
        }
        do {
            try configuration.validate()
        } catch let error as RoasError {
            throw ValidationError(error.message)
        }
        return configuration
    }

    /// Tolerance in seconds: a plain number is seconds, otherwise a duration.
    func toleranceSeconds() throws -> Int64 {
        if let seconds = Int64(self.tolerance), seconds >= 0 && seconds <= EngineConfiguration.maximumDuration / 1000 {
            return seconds
        }
        return try self.duration(self.tolerance, "--tolerance") / 1000
    }

    func loadSecrets() throws -> [WebhookSecret] {
        var secrets = try self.secrets.map { try WebhookSecret($0) }
        if let path = self.secretsFile { secrets += try WebhookSecret.load(file: path) }
        return secrets
    }

    /// `--max-future` in milliseconds, nil for `0` (off).
    func futureLimit(_ text: String) throws -> Int64? {
        guard let value = DurationText.milliseconds(text), value <= EngineConfiguration.maximumDuration else {
            throw ValidationError("--max-future must be a duration of at most 10000000d (0: off), got '\(text)'")
        }
        return value > 0 ? value : nil
    }

    /// The settings of a run (or of `roas serve`'s engine) that these flags describe.
    func makeRunSettings(
        keepsDeadLetters: Bool, emitEvery: String?, maxFuture: String, extraRates: [String: Double] = [:]
    ) throws -> RunSettings {
        var configuration = try self.makeConfiguration(extraRates: extraRates)
        configuration.keepsDeadLetters = keepsDeadLetters
        var settings = RunSettings(configuration: configuration)
        settings.secrets = try self.loadSecrets()
        settings.tolerance = try self.toleranceSeconds()
        settings.maximumLineLength = self.maxLine
        settings.maximumBatchBytes = self.maxBatch
        settings.emitEvery = try emitEvery.map { try self.duration($0, "--emit-every") }
        settings.maximumFuture = try self.futureLimit(maxFuture)
        if let every = settings.emitEvery, every <= 0 { throw ValidationError("--emit-every must be positive") }
        return settings
    }

    /// Flag mistakes, reported with usage; file problems (rates, secrets) are reported when running.
    func validateFlags(summary: String) throws {
        try self.validateLimits()
        do {
            _ = try self.makeConfiguration()
        } catch is RoasError {}
        guard ["text", "json", "none"].contains(summary) else {
            throw ValidationError("--summary must be text, json or none")
        }
    }

    /// The largest `--max-line` and `--max-batch`: a frame's bytes must fit the parser's 32-bit offsets.
    static let maximumBytes = 1 << 30

    func validateLimits() throws {
        guard self.maxLine > 0 && self.maxLine <= Self.maximumBytes else {
            throw ValidationError("--max-line must be from 1 to \(Self.maximumBytes) bytes, got \(self.maxLine)")
        }
        guard self.maxBatch > 0 && self.maxBatch <= Self.maximumBytes else {
            throw ValidationError("--max-batch must be from 1 to \(Self.maximumBytes) bytes, got \(self.maxBatch)")
        }
        let milliseconds = Int64(self.tolerance).map { $0.multipliedReportingOverflow(by: 1000) }
        guard let value = milliseconds.map({ $0.overflow ? Int64.max : $0.partialValue }) ?? DurationText.milliseconds(self.tolerance),
            value >= 0 && value <= EngineConfiguration.maximumDuration
        else {
            throw ValidationError("--tolerance must be seconds or a duration of at most 10000000d, got '\(self.tolerance)'")
        }
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Reads an NDJSON event stream (bare events or signed batches) and writes ROAS rows.",
        discussion: """
            Input: stdin (or --input). Output: one JSON row per creator and window on stdout (or --output).
            Rejected lines go to --dead-letter with their reason; a summary goes to stderr.
            Exit status 0 when the input was processed: rejected lines are data, not failures.
            """
    )

    @OptionGroup var options: EngineOptions

    @Option(help: "Read this file instead of stdin.")
    var input: String?

    @Option(help: "Write rows to this file instead of stdout.")
    var output: String?

    @Option(help: "Write dead-letter records (NDJSON) to this file; by default they are only counted.")
    var deadLetter: String?

    @Option(help: "Also emit changed rows of open windows (final:false) every DURATION of wall-clock time.")
    var emitEvery: String?

    @Option(help: "Summary on stderr: text, json or none.")
    var summary: String = "text"

    @Flag(help: "Run on the built-in sample stream (signed with the sample secret) instead of stdin.")
    var sample = false

    @Option(help: "1: one thread; 2: framing, signatures and parsing on a second thread (same rows).")
    var threads: Int = 2

    @Option(
        name: .customLong("alert"),
        help: "An alert rule on final rows, e.g. 'roas < 1 for 2 windows', 'spend > 500 and conversions == 0'; repeatable.")
    var alertRules: [String] = []

    @Option(help: "A file of alert rules, one per line (blank lines and # comments skipped), besides any --alert.")
    var alertRulesFile: String?

    @Option(help: "Write alerts (NDJSON, schemas/alert.schema.json) to this file; default: stderr.")
    var alerts: String?

    @Option(
        parsing: .unconditional,
        help: "Dead-letter (future) events further ahead than this of their batch's signed timestamp, or of the clock for bare events; 0: off.")
    var maxFuture: String = "0"

    func validate() throws {
        try self.options.validateFlags(summary: self.summary)
        if self.sample && self.input != nil { throw ValidationError("--sample and --input exclude each other") }
        // Opening an output empties it: never one that is the input or the other output.
        let files = [
            ("--input", self.input), ("--output", self.output), ("--dead-letter", self.deadLetter), ("--alerts", self.alerts),
        ]
        for (index, (flag, path)) in files.enumerated() {
            for (otherFlag, otherPath) in files[(index + 1)...] {
                if let path, let otherPath, Self.sameFile(path, otherPath) {
                    throw ValidationError("\(flag) and \(otherFlag) name the same file (\(path)); writing would destroy it")
                }
            }
        }
        guard self.threads == 1 || self.threads == 2 else { throw ValidationError("--threads must be 1 or 2") }
        _ = try self.options.futureLimit(self.maxFuture)
        if try self.parsedAlertRules().isEmpty && self.alerts != nil { throw ValidationError("--alerts needs at least one --alert rule") }
    }

    func parsedAlertRules() throws -> [AlertRule] { try Run.alertRules(self.alertRules, file: self.alertRulesFile) }

    /// `--alert` rules, then those of `--alert-rules-file` (one a line; blank lines and `#` comments
    /// skipped), or a validation error naming the rule (and the file and line) and the position of its mistake.
    static func alertRules(_ texts: [String], file: String? = nil) throws -> [AlertRule] {
        var rules = try texts.map { text in
            do {
                return try AlertRule(text)
            } catch {
                throw ValidationError("--alert: \(error)")
            }
        }
        guard let file else { return rules }
        guard let data = FileManager.default.contents(atPath: file), let content = String(data: data, encoding: .utf8) else {
            throw ValidationError("--alert-rules-file: cannot read \(file) as UTF-8 text")
        }
        for (index, line) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty || text.hasPrefix("#") { continue }
            do {
                rules.append(try AlertRule(text))
            } catch {
                throw ValidationError("--alert-rules-file \(file), line \(index + 1): \(error)")
            }
        }
        return rules
    }

    /// True when both paths name one file: the same text, or the same device and inode.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }

    func run() throws {
        try reportingFailures { try self.runChecked() }
    }

    private func runChecked() throws {
        var settings = try self.options.makeRunSettings(
            keepsDeadLetters: self.deadLetter != nil, emitEvery: self.emitEvery, maxFuture: self.maxFuture,
            extraRates: self.sample ? Sample.rates : [:])
        if self.sample && settings.secrets.isEmpty { settings.secrets = [Sample.secret] }
        settings.threads = self.threads

        let inputDescriptor: Int32
        var sampleFile: String? = nil
        if self.sample {
            let path = NSTemporaryDirectory() + "roas-sample-\(getpid()).ndjson"
            let now = SystemClock.wallClockSeconds()
            guard FileManager.default.createFile(atPath: path, contents: Data(Sample.stream(now: now))) else {
                throw RoasError(.input, "cannot write the sample stream to \(path)")
            }
            sampleFile = path
            inputDescriptor = open(path, O_RDONLY)
        } else if let path = self.input {
            inputDescriptor = open(path, O_RDONLY)
            guard inputDescriptor >= 0 else {
                throw RoasError(.input, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
        } else {
            inputDescriptor = STDIN_FILENO
        }
        defer {
            if inputDescriptor != STDIN_FILENO { close(inputDescriptor) }
            if let sampleFile { try? FileManager.default.removeItem(atPath: sampleFile) }
        }

        let rows = try self.output.map { try ByteSink(path: $0) } ?? ByteSink(descriptor: STDOUT_FILENO)
        let deadLetters = try self.deadLetter.map { try ByteSink(path: $0) }
        let rules = try self.parsedAlertRules()
        let alerts =
            try rules.isEmpty
            ? nil
            : AlertOutput(
                evaluator: AlertEvaluator(rules: rules, slide: settings.configuration.slide),
                sink: self.alerts.map { try ByteSink(path: $0) } ?? ByteSink(descriptor: STDERR_FILENO))
        let runner = StreamRunner(settings: settings, rows: rows, deadLetters: deadLetters, alerts: alerts)
        let started = SystemClock.monotonicMilliseconds()
        let result = try runner.run(input: inputDescriptor)
        let seconds = Double(SystemClock.monotonicMilliseconds() - started) / 1000
        let summary = Summary(statistics: result.statistics, state: result.state, seconds: seconds)
        summary.write(as: self.summary)
    }
}

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Prints the built-in sample stream (what `roas run --sample` reads), signed now."
    )

    @Flag(help: "Print the sample secret instead of the stream.")
    var secret = false

    func run() throws {
        if self.secret {
            print(Sample.secret.text)
            return
        }
        let bytes = Sample.stream(now: SystemClock.wallClockSeconds())
        FileHandle.standardOutput.write(Data(bytes))
    }
}

extension Summary {
    /// Writes the summary to stderr as `--summary` asks: text, json or none.
    func write(as format: String) {
        switch format {
        case "json": FileHandle.standardError.write(Data(self.json.utf8))
        case "text": FileHandle.standardError.write(Data(self.text.utf8))
        default: break
        }
    }
}
