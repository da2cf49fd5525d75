import ArgumentParser
import Foundation
import RoasCore
import RoasGen
import RoasRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Gen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Generates a realistic, seeded creator-commerce event stream (a load generator for roas run).",
        discussion: """
            Writes NDJSON events (view, click, purchase, refund, link, spend), or signed batch frames with \
            --secret, that roas run accepts with no dead letter unless fault options ask for some. The same \
            seed and options give the same bytes (batch timestamps are the wall clock). See \
            docs/generator.md for the model and its figures.
            """
    )

    @Option(help: "Seed of the stream.")
    var seed: UInt64 = 1

    @Option(help: "Number of event lines to write (default 1000000, unless --duration is given).")
    var events: Int?

    @Option(help: "Span of event time to cover instead of a number of events, such as 1h or 7d.")
    var duration: String?

    @Option(help: "Number of creators.")
    var creators: Int = 1000

    @Option(help: "Number of users; the event rate is 0.002 events per user per second of event time.")
    var users: Int = 100_000

    @Option(help: "Event time of the start: RFC 3339 or epoch milliseconds.")
    var start: String = "2026-11-21T00:00:00Z"

    @Option(help: "Wall-clock pacing in event lines per second (default: as fast as possible).")
    var rate: Double?

    @Option(help: "Arrival order differs from event time by less than this.")
    var disorder: String = "2s"

    @Option(help: "The lateness of the roas run the stream is for; --disorder must stay below it.")
    var lateness: String = "5s"

    @Option(help: "Share of event lines sent later than the lateness (dead-lettered late).")
    var lateFraction: Double = 0

    @Option(help: "Share of malformed or invalid lines (malformed, invalid, unknown_type).")
    var dirtyFraction: Double = 0

    @Option(help: "Wrap events into batch frames signed with this whsec_ secret (Standard Webhooks).")
    var secret: String?

    @Option(help: "Event lines per batch frame.")
    var batchSize: Int = 1000

    @Option(help: "Share of batches signed with a wrong key (dead-lettered bad_signature); needs --secret.")
    var badBatchFraction: Double = 0

    @Option(help: "Order currencies and weights, such as USD:70,EUR:20,GBP:10 (default: that mix with --rates-file, USD alone without).")
    var currencies: String?

    @Option(help: "Write the stream to this file instead of stdout.")
    var output: String?

    @Option(help: "Send the stream to a running `roas serve --listen-tcp` at HOST:PORT instead of stdout.")
    var tcp: String?

    @Option(
        help: "POST each batch to a running `roas serve` webhook URL (http://HOST:PORT/v1/events) with Standard Webhooks headers; needs --secret.")
    var http: String?

    @Option(help: "HTTP connections at once with --http.")
    var connections: Int = 4

    @Option(help: "Write the rates JSON matching the currencies here (pass it to roas run --rates).")
    var ratesFile: String?

    @Flag(help: "Show a progress line on stderr (default: when stderr is a terminal).")
    var progress = false

    func makeConfiguration() throws -> GeneratorConfiguration {
        var configuration = GeneratorConfiguration()
        configuration.seed = self.seed
        if let duration = self.duration {
            guard self.events == nil else { throw ValidationError("--events and --duration exclude each other") }
            guard let milliseconds = DurationText.milliseconds(duration), milliseconds > 0 else {
                throw ValidationError("--duration must be a positive duration such as 30m, 6h or 7d, got '\(duration)'")
            }
            configuration.events = nil
            configuration.duration = milliseconds
        } else {
            configuration.events = self.events ?? 1_000_000
        }
        configuration.creators = self.creators
        configuration.users = self.users
        if let milliseconds = Int64(self.start) {
            configuration.start = milliseconds
        } else if let milliseconds = Array(self.start.utf8).withUnsafeBytes({ Timestamp.parseRFC3339($0) }) {
            configuration.start = milliseconds
        } else {
            throw ValidationError("--start must be RFC 3339 (2026-11-21T00:00:00Z) or epoch milliseconds, got '\(self.start)'")
        }
        for (text, flag) in [(self.disorder, "--disorder"), (self.lateness, "--lateness")] {
            guard DurationText.milliseconds(text) != nil else {
                throw ValidationError("\(flag) must be a duration such as 500ms, 2s or 0, got '\(text)'")
            }
        }
        configuration.disorder = DurationText.milliseconds(self.disorder)!
        configuration.lateness = DurationText.milliseconds(self.lateness)!
        configuration.lateFraction = self.lateFraction
        configuration.dirtyFraction = self.dirtyFraction
        configuration.badBatchFraction = self.badBatchFraction
        configuration.batchSize = self.batchSize
        do {
            configuration.secret = try self.secret.map { try WebhookSecret($0) }
            if let currencies = self.currencies {
                configuration.currencies = try GeneratorConfiguration.currencies(currencies)
            } else if self.ratesFile != nil {
                configuration.currencies = GeneratorConfiguration.defaultCurrencyMix
            }
            try configuration.validate()
        } catch let error as RoasError {
            throw ValidationError(error.message)
        }
        if let rate = self.rate, !(rate.isFinite && rate > 0) { throw ValidationError("--rate must be positive") }
        let destinations = [self.output != nil, self.tcp != nil, self.http != nil].filter { $0 }.count
        if destinations > 1 { throw ValidationError("--output, --tcp and --http exclude each other") }
        if let tcp = self.tcp, ListenAddress(tcp) == nil { throw ValidationError("--tcp must be HOST:PORT, got '\(tcp)'") }
        if let http = self.http {
            guard WebhookSender(url: http) != nil else {
                throw ValidationError("--http must be a URL such as http://127.0.0.1:8080/v1/events, got '\(http)'")
            }
            guard configuration.secret != nil else { throw ValidationError("--http needs --secret: webhooks are signed batches") }
        }
        guard self.connections > 0 else { throw ValidationError("--connections must be positive") }
        return configuration
    }

    func validate() throws {
        _ = try self.makeConfiguration()
    }

    func run() async throws {
        try await reportingFailuresAsync { try await self.generate() }
    }

    private func generate() async throws {
        let configuration = try self.makeConfiguration()
        if let path = self.ratesFile {
            guard FileManager.default.createFile(atPath: path, contents: Data(configuration.ratesJSON.utf8)) else {
                throw RoasError(.output, "cannot write the rates file \(path)")
            }
        }
        if let tcp = self.tcp.flatMap(ListenAddress.init) {
            do {
                let answers = try await TCPSender.withConnection(host: tcp.host, port: tcp.port) { write in
                    try await self.generate(configuration) { try await write($0) }
                }
                if answers != TCPSender.Answers() {
                    // roas serve --data-dir acknowledges each batch.
                    FileHandle.standardError.write(
                        Data("roas gen: \(answers.acks) batches acknowledged (\(answers.duplicates) duplicates), \(answers.nacks) not\n".utf8))
                }
            } catch let error as RoasError {
                throw error
            } catch {
                throw RoasError(.output, "cannot send to \(tcp): \(error)")
            }
            return
        }
        if let url = self.http, let sender = WebhookSender(url: url) {
            do {
                try await self.pace(configuration) { generator, step in
                    let (batches, more) = generator.fillBatches(bytes: 1 << 20, lines: step)
                    try await sender.send(batches, connections: self.connections)
                    return more
                }
            } catch let error as RoasError {
                throw error
            } catch {
                throw RoasError(.output, "cannot post to \(url): \(error)")
            }
            let answers = sender.answers.statuses.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }
            FileHandle.standardError.write(
                Data("roas gen: webhook answers: \(answers.joined(separator: ", ")); 503 retried \(sender.answers.retries)\n".utf8))
            return
        }
        let descriptor: Int32
        if let path = self.output {
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard descriptor >= 0 else {
                throw RoasError(.output, "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
            }
        } else {
            descriptor = STDOUT_FILENO
        }
        defer { if descriptor != STDOUT_FILENO { close(descriptor) } }
        try await self.generate(configuration) { try Gen.write($0, to: descriptor) }
    }

    /// Generates the stream in parts of about 1 MiB (or 20 ms of --rate), handing each to `emit`.
    private func generate(_ configuration: GeneratorConfiguration, emit: ([UInt8]) async throws -> Void) async throws {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(1 << 20)
        try await self.pace(configuration) { generator, step in
            buffer.removeAll(keepingCapacity: true)
            let more = generator.fill(&buffer, bytes: 1 << 20, lines: step)
            try await emit(buffer)
            return more
        }
    }

    /// Runs the generator one part at a time (`part` makes and sends it, and says whether the
    /// stream goes on), pacing the parts to `--rate` and reporting progress.
    private func pace(
        _ configuration: GeneratorConfiguration,
        part: (inout EventGenerator, _ lines: Int) async throws -> Bool
    ) async throws {
        var generator = try EventGenerator(configuration: configuration)
        let showsProgress = self.progress || isatty(STDERR_FILENO) == 1
        let started = Gen.monotonicSeconds
        var nextProgress = started + 0.25
        // Paced: small steps of about 20 ms of lines each, then sleep until they are due.
        let step = self.rate.map { max(1, Int($0 / 50)) } ?? Int.max
        var more = true
        while more {
            more = try await part(&generator, step)
            let now = Gen.monotonicSeconds
            if let rate = self.rate {
                let due = started + Double(generator.statistics.lines) / rate
                if due > now { try await Task.sleep(for: .seconds(min(1.0, due - now))) }
            }
            if showsProgress && now >= nextProgress {
                nextProgress = now + 0.25
                Gen.report(generator.statistics, seconds: now - started, final: false)
            }
        }
        if showsProgress { Gen.report(generator.statistics, seconds: Gen.monotonicSeconds - started, final: true) }
    }

    private static func report(_ statistics: GeneratorStatistics, seconds: Double, final: Bool) {
        let lines = Double(statistics.lines)
        let rate = seconds > 0 ? lines / seconds : 0
        var text = String(
            format: "\rroas gen: %.0f events, %.1f MB, %.1f s, %.3f M events/s", lines, Double(statistics.bytes) / 1e6,
            seconds, rate / 1e6)
        if final {
            if let first = statistics.firstTime, let last = statistics.lastTime {
                text += ", event time \(Timestamp.format(milliseconds: first)) to \(Timestamp.format(milliseconds: last))"
            }
            text += "\n"
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    private static var monotonicSeconds: Double { Double(SystemClock.monotonicNanoseconds()) / 1e9 }

    private static func write(_ bytes: [UInt8], to descriptor: Int32) throws {
        let error = WriteAll.write(descriptor, bytes)
        guard error == 0 else { throw RoasError(.output, "cannot write the stream: \(WriteAll.errorText(error))") }
    }
}
