import ArgumentParser
import Foundation
import Logging
import RoasCore
import RoasRuntime
import RoasScaleOut
import RoasServer

/// `roas worker`: computes rows from the stream a `roas serve --nats` edge appends to.
struct Worker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute rows from the NATS JetStream stream a roas serve --nats edge appends to (README: Scale out).",
        discussion: """
            Run one per member, with the engine options the edge was started with (checked against the \
            ones the stream records): member I of N writes the rows of the creators it owns; together \
            the members write the rows one roas run writes over the same batches.
            """
    )

    @OptionGroup var options: EngineOptions

    @Option(help: ArgumentHelp("The NATS JetStream cluster (comma-separated URLs).", valueName: "urls"))
    var nats: String

    @Option(help: "The stream the edge appends to.")
    var stream: String = "roas"

    @Option(help: ArgumentHelp("This worker's member number and the number of members, I/N (1/1: every row).", valueName: "I/N"))
    var member: String = "1/1"

    @Option(help: "Write rows to this file instead of stdout.")
    var output: String?

    @Option(help: "Write dead-letter records (NDJSON) to this file (member 1 only); by default they are only counted.")
    var deadLetter: String?

    @Option(
        help:
            "Finish (close every window, as at the end of roas run's input) and exit once no part arrived for this long; default: run until SIGTERM or SIGINT, which finish the same way."
    )
    var idleExit: String?

    @Option(
        name: .customLong("max-future"), parsing: .unconditional,
        help:
            "As the edge's --max-future (the same default): events further ahead than this of their batch's signed timestamp are dead-lettered (future); 0: off."
    )
    var maxFuture: String = "1h"

    @Option(
        help: ArgumentHelp(
            "Keep checkpoints in this folder: started again, the worker goes on from the newest (its --output and --dead-letter files cut back to match) instead of reading the stream from its start.",
            valueName: "dir"))
    var dataDir: String?

    @Option(help: "With --data-dir: how often to write a checkpoint (default: 30s).")
    var checkpointEvery: String?

    @Option(
        help: ArgumentHelp(
            "Also upsert the rows this member owns into PostgreSQL (roas_rows, as roas serve --sink does); with --data-dir each checkpoint waits until the database holds the rows before it.",
            valueName: "postgres://user[:password]@host[:port]/database"))
    var sink: String?

    @Option(help: "Summary on stderr at exit: text, json or none.")
    var summary: String = "text"

    /// `--member I/N` as (member from 0, members).
    static func member(_ text: String) -> (Int, Int)? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let member = Int(parts[0]), let members = Int(parts[1]), members >= 1, members <= 1024,
            (1...members).contains(member)
        else { return nil }
        return (member - 1, members)
    }

    func validate() throws {
        try self.options.validateFlags(summary: self.summary)
        if let problem = LogLayout.invalidStreamName(self.stream) { throw ValidationError(problem) }
        if self.checkpointEvery != nil && self.dataDir == nil { throw ValidationError("--checkpoint-every needs --data-dir") }
        guard Self.member(self.member) != nil else {
            throw ValidationError("--member must be I/N with 1 <= I <= N <= 1024, got '\(self.member)'")
        }
    }

    func run() throws {
        try reportingFailures { try self.runChecked() }
    }

    private func runChecked() throws {
        let run = try self.options.makeRunSettings(keepsDeadLetters: self.deadLetter != nil, emitEvery: nil, maxFuture: self.maxFuture)
        guard let (member, members) = Self.member(self.member) else { throw ValidationError("--member") }
        let urls = self.nats.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
        var settings = LogWorker.Settings(urls: urls, stream: self.stream, member: member, members: members, run: run)
        settings.idleExit = try self.idleExit.map { try self.options.duration($0, "--idle-exit") }
        settings.dataDirectory = self.dataDir
        if let every = self.checkpointEvery {
            settings.checkpointEvery = try self.options.duration(every, "--checkpoint-every")
            guard settings.checkpointEvery > 0 else { throw ValidationError("--checkpoint-every must be positive") }
        }
        // With a data folder the files are kept: the worker cuts them back to its checkpoint.
        let truncates = self.dataDir == nil
        let rows = try self.output.map { try ByteSink(path: $0, truncates: truncates) } ?? ByteSink(descriptor: STDOUT_FILENO)
        let deadLetters = try self.deadLetter.map { try ByteSink(path: $0, truncates: truncates) }
        var outputs: [any EngineOutputSink] = []
        var delivery: Task<Void, any Error>?
        if let url = self.sink {
            let postgres = try PostgresRowSink(url: url, logger: Logger(label: "roas"))
            delivery = Task { try await postgres.run() }
            outputs.append(PostgresRowOutput(sink: postgres, writesUpdates: false, owns: LogWorker.owns(settings)))
        }
        // The rows are in the database once the worker has returned (its outputs were flushed).
        defer { delivery?.cancel() }
        let started = SystemClock.monotonicMilliseconds()
        let result = try LogWorker(settings: settings, rows: rows, deadLetters: deadLetters, sinks: outputs).run()
        let seconds = Double(SystemClock.monotonicMilliseconds() - started) / 1000
        Summary(statistics: result.statistics, state: result.state, seconds: seconds).write(as: self.summary)
    }
}
