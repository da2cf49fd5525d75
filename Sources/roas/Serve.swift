import ArgumentParser
import Foundation
import Logging
import RoasCore
import RoasRuntime
import RoasScaleOut
import RoasServer

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Runs the engine as a service: TCP and webhook ingest, live ROAS, a dashboard and metrics.",
        discussion: """
            The same engine, formats and dead-letter rules as `roas run`. Final rows go to stdout (or --output)
            as they close. HTTP: POST /v1/events (Standard Webhooks), GET / (dashboard), /v1/roas, /v1/stream
            (Server-Sent Events), /metrics (Prometheus), /healthz, /readyz. SIGTERM or SIGINT: stop accepting,
            apply what was accepted, close every window as at the end of stdin, print the summary, exit 0.
            With --data-dir: accepted input goes to a write-ahead log and is acknowledged once durable (HTTP 202,
            TCP {"ack":ID} lines), checkpoints are taken, and a restart (also after a crash) resumes where it
            stopped, writing each final row to --output exactly once; SIGTERM then checkpoints and keeps
            windows open for the next start. --sink postgres://USER@HOST:PORT/DB upserts rows into PostgreSQL
            (idempotent, so replays after a crash change nothing); while it is down, rows wait in a bounded
            queue and ingest waits for it.
            """
    )

    @OptionGroup var options: EngineOptions

    @Option(help: "Accept the framed stream of `roas run` on TCP at HOST:PORT (port 0: any free port).")
    var listenTcp: String?

    @Option(help: "Serve HTTP (webhooks, dashboard, API, metrics) at HOST:PORT (port 0: any free port).")
    var listenHttp: String = "127.0.0.1:8080"

    @Flag(help: "Do not serve HTTP (TCP ingest only).")
    var noHttp = false

    @Option(help: "Most TCP connections at once; more are refused with an error line.")
    var maxConnections: Int = 1024

    @Option(
        help:
            "Close a TCP connection whose sender sent nothing for this long while roas waited to read (a half-sent frame is then bad_frame); back-pressure does not count; 0: never."
    )
    var idleTimeout: String = "60s"

    @Option(help: "When no event arrives for this long, the watermark follows the wall clock (minus the lateness) so windows close.")
    var idleClose: String = "30s"

    @Option(help: "Bearer token required by the read endpoints (also from the ROAS_API_TOKEN environment variable).")
    var apiToken: String?

    @Option(help: "Write final rows to this file instead of stdout.")
    var output: String?

    @Option(help: "Write dead-letter records (NDJSON) to this file; by default they are only counted.")
    var deadLetter: String?

    @Option(help: "Also write rows of open windows (final:false) every DURATION; /v1/stream gets them every second regardless.")
    var emitEvery: String?

    @Option(help: "Parsed chunks waiting for the engine beyond which webhooks answer 503 with Retry-After.")
    var maxQueued: Int = 64

    // Limits against unauthenticated clients (README: "Options of roas serve").
    @Option(help: "Most HTTP connections at once; more are answered 503 and closed at once.")
    var maxHttpConnections: Int = 1024

    @Option(help: "HTTP: time to receive a request's head, to receive its whole body, and to keep an idle connection open.")
    var httpTimeout: String = "30s"

    @Option(
        help:
            "Bytes of webhook bodies and TCP frames held in memory at once (as read and as parsed); webhooks get 503 beyond it, TCP reading pauses. At least twice --max-batch."
    )
    var maxInflightBytes: Int = 256 << 20

    @Option(help: "Bytes of events a /v1/stream subscriber may have waiting; one further behind is dropped.")
    var streamBuffer: Int = 1 << 20

    @Option(help: "Keep a write-ahead log and checkpoints in this folder: acknowledge input once durable, resume after a restart or crash.")
    var dataDir: String?

    @Option(
        help: ArgumentHelp(
            "Scale out: append each verified batch, split by --partitions, to this NATS JetStream cluster (comma-separated URLs) instead of an engine of its own; roas worker computes the rows.",
            valueName: "urls"))
    var nats: String?

    @Option(help: "With --nats: the JetStream stream to append to (made if absent, with the engine options recorded).")
    var stream: String = "roas"

    @Option(help: "With --nats: copies of the stream the cluster keeps when it makes it (default: 3, or 1 with fewer URLs).")
    var replicas: Int?

    @Option(
        help: ArgumentHelp(
            "With --nats: how messages of parts are written to the stream: zstd (one Zstandard frame each, about 6x fewer bytes for the brokers to replicate and deliver) or none. Workers read both.",
            valueName: "zstd|none"))
    var logCompression: LogCompression = .zstd

    @Flag(
        help:
            "With --nats: also read the stream back into this server's engine, as a roas worker does, so that the dashboard, /v1/roas, /v1/stream, --output and the summary show the cluster's rows (costs what a worker costs)."
    )
    var follow = false

    @Option(
        help:
            "With --data-dir: batch (one fsync covers what arrived meanwhile), always (one fsync per record) or interval:DURATION (acknowledge after write, fsync every DURATION)."
    )
    var fsync: String = "batch"

    @Option(help: "With --data-dir: snapshot the engine this often; the log before the snapshot is then deleted.")
    var checkpointEvery: String = "30s"

    @Flag(
        help:
            "With --data-dir: start even when the log is damaged before its end, dropping the damaged record and every record after it (acknowledged input is lost; the log line says what)."
    )
    var truncateDamagedLog = false

    @Option(
        name: .customLong("max-future"), parsing: .unconditional,
        help:
            "Dead-letter (future) events whose time is further ahead than this of the batch's signed timestamp, or of the clock for bare events; 0: off."
    )
    var maxFuture: String = "1h"

    @Option(
        help:
            "Also write rows to PostgreSQL 15+ (postgres://USER[:PASSWORD]@HOST[:PORT]/DB): final rows upserted into roas_rows, live rows (with --emit-every) into roas_live_rows."
    )
    var sink: String?

    @Option(help: "With --sink: rows that may wait for PostgreSQL before ingest waits too.")
    var sinkQueue: Int = 100_000

    @Option(help: "Summary on stderr at exit: text, json or none.")
    var summary: String = "text"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(
        name: .customLong("alert"),
        help: "An alert rule on final rows, e.g. 'roas < 1 for 2 windows'; repeatable. Alerts go to /v1/alerts, /v1/stream and --alerts.")
    var alertRules: [String] = []

    @Option(help: "A file of alert rules, one per line (blank lines and # comments skipped), besides any --alert.")
    var alertRulesFile: String?

    @Option(help: "Also write alerts (NDJSON, schemas/alert.schema.json) to this file.")
    var alerts: String?

    @Option(help: "POST each alert (firing and resolved) to this http or https URL, signed with Standard Webhooks; needs --alert-secret.")
    var alertWebhook: String?

    @Option(help: "The whsec_<base64> secret signing --alert-webhook deliveries (also from the ROAS_ALERT_SECRET environment variable).")
    var alertSecret: String?

    @Option(help: "With --alert-webhook: how long one delivery attempt may take before it is retried.")
    var alertTimeout: String = "10s"

    @Option(help: "With --alert-webhook: how long after it was queued an undelivered alert is retried before it is dropped.")
    var alertRetryFor: String = "1h"

    @Option(help: "With --alert-webhook: alerts that may wait for delivery; beyond it the oldest is dropped.")
    var alertQueue: Int = 100_000

    @Option(help: ArgumentHelp("With --alert-webhook: the first retry's delay, doubling up to 5 minutes (for tests).", visibility: .hidden))
    var alertRetryBase: String = "1s"

    func validate() throws {
        try self.options.validateFlags(summary: self.summary)
        if let tcp = self.listenTcp, ListenAddress(tcp) == nil {
            throw ValidationError("--listen-tcp must be HOST:PORT, got '\(tcp)'")
        }
        if ListenAddress(self.listenHttp) == nil {
            throw ValidationError("--listen-http must be HOST:PORT, got '\(self.listenHttp)'")
        }
        if self.noHttp && self.listenTcp == nil { throw ValidationError("--no-http needs --listen-tcp") }
        guard self.maxConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard self.maxQueued > 0 else { throw ValidationError("--max-queued must be positive") }
        guard self.sinkQueue > 0 else { throw ValidationError("--sink-queue must be positive") }
        if self.nats != nil {
            if self.dataDir != nil { throw ValidationError("--nats and --data-dir: the stream is the log of an edge; choose one") }
            if let problem = LogLayout.invalidStreamName(self.stream) { throw ValidationError(problem) }
            if let replicas = self.replicas, !(1...5).contains(replicas) { throw ValidationError("--replicas must be 1 to 5") }
        } else if self.replicas != nil {
            throw ValidationError("--replicas needs --nats")
        } else if self.logCompression != .zstd {
            throw ValidationError("--log-compression needs --nats")
        } else if self.follow {
            throw ValidationError("--follow needs --nats")
        }
        if self.truncateDamagedLog && self.dataDir == nil { throw ValidationError("--truncate-damaged-log needs --data-dir") }
        _ = try self.options.futureLimit(self.maxFuture)
        guard self.maxHttpConnections > 0 else { throw ValidationError("--max-http-connections must be positive") }
        guard self.streamBuffer > 0 else { throw ValidationError("--stream-buffer must be positive") }
        guard FsyncMode(argument: self.fsync) != nil else {
            throw ValidationError("--fsync must be batch, always or interval:DURATION (interval:100ms), got '\(self.fsync)'")
        }
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        let rules = try Run.alertRules(self.alertRules, file: self.alertRulesFile)
        if self.alerts != nil && rules.isEmpty { throw ValidationError("--alerts needs at least one --alert rule") }
        _ = try self.alertWebhookSettings()
    }

    /// `--alert-webhook` and its options, checked; nil without it.
    func alertWebhookSettings() throws -> AlertWebhookSettings? {
        guard let webhook = self.alertWebhook else {
            if self.alertSecret != nil { throw ValidationError("--alert-secret needs --alert-webhook") }
            return nil
        }
        if try Run.alertRules(self.alertRules, file: self.alertRulesFile).isEmpty {
            throw ValidationError("--alert-webhook needs at least one --alert rule")
        }
        guard let url = AlertWebhookURL(webhook) else {
            throw ValidationError("--alert-webhook must be an http or https URL (http[s]://HOST[:PORT][/PATH]), got '\(webhook)'")
        }
        guard let secretText = self.alertSecret ?? ProcessInfo.processInfo.environment["ROAS_ALERT_SECRET"] else {
            throw ValidationError("--alert-webhook needs --alert-secret whsec_<base64> (or ROAS_ALERT_SECRET)")
        }
        let secret: WebhookSecret
        do {
            secret = try WebhookSecret(secretText)
        } catch let error as RoasError {
            throw ValidationError("--alert-secret: \(error.message)")
        }
        var settings = AlertWebhookSettings(url: url, secret: secret)
        settings.timeout = try self.options.duration(self.alertTimeout, "--alert-timeout")
        settings.retry.giveUpAfter = try self.options.duration(self.alertRetryFor, "--alert-retry-for")
        settings.retry.base = try self.options.duration(self.alertRetryBase, "--alert-retry-base")
        guard settings.timeout > 0 else { throw ValidationError("--alert-timeout must be positive") }
        guard settings.retry.giveUpAfter > 0 else { throw ValidationError("--alert-retry-for must be positive") }
        guard settings.retry.base > 0 else { throw ValidationError("--alert-retry-base must be positive") }
        guard self.alertQueue > 0 else { throw ValidationError("--alert-queue must be positive") }
        settings.queueLimit = self.alertQueue
        return settings
    }

    func run() async throws {
        try await reportingFailuresAsync { try await self.runChecked() }
    }

    private func runChecked() async throws {
        let level = Logger.Level(rawValue: self.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "roas")

        let run = try self.options.makeRunSettings(
            keepsDeadLetters: self.deadLetter != nil, emitEvery: self.emitEvery, maxFuture: self.maxFuture)
        var settings = ServeSettings(run: run)
        settings.tcp = self.listenTcp.flatMap(ListenAddress.init)
        settings.http = self.noHttp ? nil : ListenAddress(self.listenHttp)
        settings.maximumConnections = self.maxConnections
        settings.connectionIdleTimeout = try self.options.duration(self.idleTimeout, "--idle-timeout")
        settings.idleClose = try self.options.duration(self.idleClose, "--idle-close")
        settings.apiToken = self.apiToken ?? ProcessInfo.processInfo.environment["ROAS_API_TOKEN"]
        settings.maximumQueuedChunks = self.maxQueued
        if let every = run.emitEvery { settings.liveEvery = every }
        settings.maximumHTTPConnections = self.maxHttpConnections
        settings.httpTimeout = try self.options.duration(self.httpTimeout, "--http-timeout")
        guard settings.httpTimeout > 0 else {
            throw ValidationError("--http-timeout must be positive: it is what cuts off slow and idle HTTP clients")
        }
        guard self.maxInflightBytes / 2 >= run.maximumBatchBytes else {
            throw ValidationError(
                "--max-inflight-bytes (\(self.maxInflightBytes)) must be at least twice --max-batch (\(run.maximumBatchBytes)), so that a batch of any allowed size can be read"
            )
        }
        settings.maximumInflightBytes = self.maxInflightBytes
        settings.streamBufferBytes = self.streamBuffer
        settings.alertRules = try Run.alertRules(self.alertRules, file: self.alertRulesFile)
        settings.alertWebhook = try self.alertWebhookSettings()

        if let nats = self.nats {
            guard !run.secrets.isEmpty else {
                throw ValidationError("--nats needs --secret or --secrets-file: the edge takes signed batches only")
            }
            let urls = nats.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }
            // Blocks while it connects: nothing else runs yet.
            try settings.openLog(
                urls: urls, stream: self.stream, replicas: self.replicas ?? (urls.count >= 3 ? 3 : 1), compression: self.logCompression)
            if self.follow { try settings.followLog(urls: urls, stream: self.stream) }
            logger.info("appending input to stream \(self.stream) on \(nats) in \(run.configuration.partitions) partitions")
        }
        // A data folder with state resumes: its rows and dead-letter files are continued, not emptied.
        var resumes = false
        if let directory = self.dataDir {
            var durability = DurabilitySettings(directory: directory)
            durability.fsync = FsyncMode(argument: self.fsync) ?? .batch
            durability.checkpointEvery = try self.options.duration(self.checkpointEvery, "--checkpoint-every")
            durability.truncatesDamagedLog = self.truncateDamagedLog
            guard durability.checkpointEvery > 0 else { throw ValidationError("--checkpoint-every must be positive") }
            settings.durability = durability
            resumes = RoasService.hasState(directory: directory)
            // A file-size limit makes writes fail (EFBIG) rather than kill the process: the log reports it.
            signal(SIGXFSZ, SIG_IGN)
        }
        let rows = try self.output.map { try ByteSink(path: $0, truncates: !resumes) } ?? ByteSink(descriptor: STDOUT_FILENO)
        let deadLetters = try self.deadLetter.map { try ByteSink(path: $0, truncates: !resumes) }
        let postgres = try self.sink.map { try PostgresRowSink(url: $0, logger: logger, maximumQueuedRows: self.sinkQueue) }
        let alertLog = try self.alerts.map { try ByteSink(path: $0, truncates: !resumes) }
        let server = RoasService(
            settings: settings, rows: rows, deadLetters: deadLetters, postgres: postgres, alertLog: alertLog, logger: logger)
        let started = SystemClock.monotonicMilliseconds()
        let recovered: RecoveryReport?
        do {
            recovered = try await server.recover()
        } catch let error as WALError {
            throw RoasError(.input, "cannot recover \(self.dataDir ?? ""): \(error)")
        }
        if let report = recovered {
            var line = "roas serve: recovered from checkpoint \(report.checkpointLSN), replayed \(report.replayedRecords) log records"
            line += " (\(report.replayedBytes) bytes) in \(report.milliseconds) ms, \(report.skippedRows) rows already written"
            if let tail = report.droppedTail { line += "; dropped a torn log tail: \(tail)" }
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        let result = try await server.run { bound in
            // One line per listener on stderr, in a fixed form scripts (and the tests) can read.
            var lines = ""
            if let tcp = bound.tcp { lines += "roas serve: tcp listening on \(tcp)\n" }
            if let http = bound.http { lines += "roas serve: http listening on \(http)\n" }
            FileHandle.standardError.write(Data(lines.utf8))
        }
        let seconds = Double(SystemClock.monotonicMilliseconds() - started) / 1000
        let summary = Summary(statistics: result.statistics, state: result.state, seconds: seconds)
        summary.write(as: self.summary)
    }
}

extension LogCompression: ExpressibleByArgument {}
