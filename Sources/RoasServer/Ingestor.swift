import Foundation
import Logging
import RoasCore
import RoasRuntime
import Synchronization

/// Counters shared by the ingest paths without going through the engine's actor.
final class IngestGauges: Sendable {
    /// Chunks parsed and waiting for the engine.
    let queuedChunks = Atomic<Int>(0)
    let connections = Atomic<Int>(0)
}

/// The one engine of `roas serve`: TCP connections and webhook requests parse on their own tasks and
/// hand whole parsed chunks here, where they apply in arrival order, exactly as `roas run` applies
/// the chunks of its reading thread. Rows and dead letters go to the outputs of `roas run`; rows also
/// feed the live board (`/v1/roas`) and the event stream (`/v1/stream`).
actor Ingestor {
    /// What one chunk came to, for a webhook's answer.
    struct Applied: Sendable {
        var accepted: Int
        var rejected: Int
    }

    var sink: EngineSink
    let settings: ServeSettings
    let rows: ByteSink
    let deadLetters: ByteSink?
    /// `--sink postgres://…`: final rows, and live rows with `--emit-every`, also go there.
    let postgres: PostgresRowSink?
    let hub: StreamHub
    let metrics: ServeMetrics
    let gauges: IngestGauges
    /// `--max-inflight-bytes`, shared by webhook requests and TCP connections.
    let inflight: InflightBudget
    /// Batch ids accepted on any connection or request, for `replayed_batch`.
    let accepted = AcceptedBatches()
    private var board: LiveBoard
    /// `--alert`: the rules' state, where alerts are written, and the latest resolved ones (`/v1/alerts`).
    private var alerts: AlertEvaluator
    let alertLog: ByteSink?
    private var recentlyResolved: [Alert] = []
    /// `--alert-webhook`: the alerts waiting for delivery (AlertWebhookService sends them).
    let webhooks: AlertWebhookQueue?
    static let keptResolvedAlerts = 100
    /// Monotonic milliseconds of the last chunk holding an event.
    var lastEventAt: Int64
    private var reported = Statistics()
    private var rateSample: (time: Int64, events: Int)
    private var eventsPerSecond = 0.0
    private(set) var isFinished = false
    /// Live rows that went to the board and the stream only (no `--emit-every`).
    private var unwrittenUpdates = 0
    /// `--data-dir`: the write-ahead log and checkpoints (see Ingestor+Durability.swift).
    var durable: DurableState?
    /// Recovery: final rows the rows file already holds past the checkpoint, not to write again.
    var finalRowsToSkip = 0
    /// Recovery: reads the log's records back (trusted: verified when they arrived).
    var replayParser: ChunkParser?

    init(
        settings: ServeSettings, rows: sending ByteSink, deadLetters: sending ByteSink?, postgres: PostgresRowSink?,
        alertLog: sending ByteSink? = nil
    ) {
        self.alerts = AlertEvaluator(rules: settings.alertRules, slide: settings.run.configuration.slide)
        self.alertLog = alertLog
        let configuration = settings.run.configuration
        self.board = LiveBoard(totalsModel: configuration.labelsModels ? configuration.models[0].rawValue : nil)
        var engine = Engine(configuration: settings.run.configuration)
        engine.trackUpdates(true)
        self.sink = EngineSink(engine: engine)
        self.settings = settings
        self.rows = rows
        self.deadLetters = deadLetters
        self.postgres = postgres
        let metrics = ServeMetrics(alertRules: settings.alertRules.map(\.text))
        self.metrics = metrics
        self.webhooks = settings.alertWebhook.map {
            AlertWebhookQueue(
                settings: $0, metrics: metrics.alertDeliveries, logger: Logger(label: "roas"), wallClock: settings.wallClock)
        }
        self.hub = StreamHub(bufferedBytes: settings.streamBufferBytes, metrics: self.metrics)
        self.inflight = InflightBudget(limit: settings.maximumInflightBytes)
        self.gauges = IngestGauges()
        let now = SystemClock.monotonicMilliseconds()
        self.lastEventAt = now
        self.rateSample = (now, 0)
    }

    /// Applies one parsed chunk; with `--data-dir`, only once what it took in is in the write-ahead
    /// log and durable (and in log order). Throws when the outputs cannot be written, the log cannot
    /// be (`ServeError.notDurable`: nothing of the chunk applied) or the engine has finished.
    func apply(_ chunk: ParsedChunk) async throws -> Applied {
        try await self.completion(of: try self.submit(chunk))
    }

    /// What `submit` did with a chunk.
    enum Submission: Sendable {
        /// Applied at once (no data folder).
        case applied(Applied)
        /// In the write-ahead log, applied once durable.
        case logged(DurableTicket)

        var epoch: UInt64? {
            if case .logged(let ticket) = self { return ticket.epoch }
            return nil
        }
    }

    /// The first half of `apply`, without suspending, so chunks submitted one after the other apply
    /// in that order: applies the chunk, or with `--data-dir` appends it to the log. A TCP
    /// connection submits its next chunk while the one before waits in `completion(of:)`.
    ///
    /// - Parameter previous: the sender's previous submission, when this chunk must follow it in
    ///   the log: it is refused (`notDurable`) if a log write failed since.
    func submit(_ chunk: ParsedChunk, after previous: Submission? = nil) throws -> Submission {
        guard !self.isFinished else { throw ServeError.finished }
        if self.durable != nil { return .logged(try self.enqueueDurably(.chunk(chunk), after: previous?.epoch)) }
        return .applied(try self.applyNow(chunk))
    }

    /// The second half of `apply`: waits until the chunk is durable and applied (`--data-dir`), and
    /// while too many rows wait for the database sink (back-pressure on the caller).
    func completion(of submission: Submission) async throws -> Applied {
        let applied: Applied
        switch submission {
        case .applied(let result): applied = result
        case .logged(let ticket): applied = try await self.completion(of: ticket)
        }
        await self.postgres?.waitForRoom()
        return applied
    }

    /// Applies a chunk at once (without a data folder, or once it is durable).
    func applyNow(_ chunk: ParsedChunk) throws -> Applied {
        let lateBefore = self.sink.engine.statistics.deadLetters(.late)
        let duplicateBefore = self.sink.engine.statistics.deadLetters(.duplicate)
        self.sink.replay(chunk)
        let statistics = self.sink.engine.statistics
        let refused = statistics.deadLetters(.late) - lateBefore + statistics.deadLetters(.duplicate) - duplicateBefore
        let events = chunk.eventCount
        if events > 0 { self.lastEventAt = SystemClock.monotonicMilliseconds() }
        // A window just closed: bring the board's open rows up to date now rather than at the next
        // tick, so /v1/roas never shows the closed row in place of the window that follows it.
        if self.sink.output.rows.contains(where: \.isFinal) { self.sink.emitUpdates() }
        try self.write()
        return Applied(accepted: events - refused, rejected: chunk.rejectedCount + refused)
    }

    /// The periodic work: the idle close, live rows of open windows, checkpoints, metrics and the
    /// stats event.
    func tick() async throws {
        guard !self.isFinished else { return }
        let now = SystemClock.monotonicMilliseconds()
        if now - self.lastEventAt >= self.settings.idleClose {
            let target = self.settings.wallClock() - self.settings.run.configuration.lateness
            if target > self.sink.engine.watermark {
                if self.durable != nil {
                    // Logged like input, so that recovery closes the same windows at the same point.
                    _ = try await self.applyDurably(.advance(target))
                } else {
                    self.sink.advanceIdle(to: target)
                }
            }
        }
        // No wait for the database sink here: metrics and the idle close go on during an outage, and
        // with ingest waiting, what a tick adds is bounded (live rows of keys changed since the last).
        self.hub.dropLagging()
        self.sink.emitUpdates()
        try self.write()
        let events = self.sink.engine.statistics.acceptedEventCount
        if now > self.rateSample.time {
            self.eventsPerSecond = Double(events - self.rateSample.events) * 1000 / Double(now - self.rateSample.time)
        }
        self.rateSample = (now, events)
        self.recordMetrics()
        self.hub.publish(event: "stats", data: self.statsJSON())
    }

    /// End of input (shutdown): everything pending applies, every window closes and is written.
    /// With `--data-dir`, windows stay open instead: what was accepted is checkpointed, and the next
    /// start resumes from there.
    func finish() async throws -> StreamRunner.Result {
        if !self.isFinished {
            self.isFinished = true
            if self.durable != nil {
                try await self.finishDurably()
                return StreamRunner.Result(statistics: self.statistics, state: self.sink.engine.stateSizes)
            }
            self.sink.finish()
            try self.write()
            try self.rows.flush()
            try self.deadLetters?.flush()
            self.recordMetrics()
            self.hub.publish(event: "stats", data: self.statsJSON())
            self.hub.finish()
        }
        return StreamRunner.Result(statistics: self.statistics, state: self.sink.engine.stateSizes)
    }

    /// The engine's counts, with `updateRows` counting only live rows written to the output.
    var statistics: Statistics {
        var statistics = self.sink.engine.statistics
        statistics.updateRows -= self.unwrittenUpdates
        return statistics
    }

    // MARK: Views

    /// `GET /v1/roas`.
    func snapshot(_ query: LiveBoard.Query) -> [UInt8] {
        let configuration = self.settings.run.configuration
        var output: [UInt8] = []
        JSONText.append("{\"generated_at\":\"\(Timestamp.format(milliseconds: self.settings.wallClock()))\"", to: &output)
        JSONText.append(",\"watermark\":\(self.watermarkJSON)", to: &output)
        JSONText.append(",\"model\":\"\(query.model ?? configuration.model.rawValue)\"", to: &output)
        JSONText.append(",\"models\":[\(Self.modelList(configuration))]", to: &output)
        JSONText.append(",\"window\":\"\(DurationText.text(configuration.window))\"", to: &output)
        JSONText.append(",\"slide\":\"\(DurationText.text(configuration.slide))\"", to: &output)
        let by = (configuration.byTier ? "tier" : "creator") + (configuration.byCampaign ? ",campaign" : "")
        JSONText.append(",\"by\":\"\(by)\",\"rows\":[", to: &output)
        for (index, item) in self.board.rows(query).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append("{\"creator\":", to: &output)
            Self.appendOptional(item.key.creator, to: &output)
            JSONText.append(",\"campaign\":", to: &output)
            Self.appendOptional(item.key.campaign, to: &output)
            JSONText.append(",\"tier\":", to: &output)
            Self.appendOptional(item.entry.shown?.tier, to: &output)
            JSONText.append(",\"open\":", to: &output)
            if let row = item.entry.current { row.appendJSON(to: &output) } else { JSONText.append("null", to: &output) }
            JSONText.append(",\"closed\":", to: &output)
            if let row = item.entry.closed { row.appendJSON(to: &output) } else { JSONText.append("null", to: &output) }
            output.append(UInt8(ascii: "}"))
        }
        JSONText.append("],\"recent_windows\":[", to: &output)
        for (index, total) in self.board.recentWindows.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            let f = total.figures
            JSONText.append(
                "{\"window_start\":\"\(Timestamp.format(milliseconds: total.start))\""
                    + ",\"window_end\":\"\(Timestamp.format(milliseconds: total.end))\""
                    + ",\"revenue\":\(Micros.text(f.revenue)),\"refunds\":\(Micros.text(f.refunds))"
                    + ",\"spend\":\(Micros.text(f.spend)),\"conversions\":\(Micros.text(f.conversions))}", to: &output)
        }
        JSONText.append("],\"stats\":", to: &output)
        output.append(contentsOf: self.statsJSON())
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// The models of `--models` (the one of `--model`) as JSON strings, comma-separated.
    static func modelList(_ configuration: EngineConfiguration) -> String {
        configuration.models.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
    }

    /// `GET /v1/spread`: per key, its ROAS under each model of `--models`, widest spread first.
    func spreadJSON(campaign: String?, tier: String?, limit: Int) -> [UInt8] {
        let configuration = self.settings.run.configuration
        var output: [UInt8] = []
        JSONText.append("{\"generated_at\":\"\(Timestamp.format(milliseconds: self.settings.wallClock()))\"", to: &output)
        JSONText.append(",\"models\":[\(Self.modelList(configuration))],\"rows\":[", to: &output)
        let models = configuration.labelsModels ? configuration.models.map(\.rawValue) : []
        for (index, spread) in self.board.spreads(models: models, campaign: campaign, tier: tier, limit: limit).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append("{\"creator\":", to: &output)
            Self.appendOptional(spread.creator, to: &output)
            JSONText.append(",\"campaign\":", to: &output)
            Self.appendOptional(spread.campaign, to: &output)
            JSONText.append(",\"tier\":", to: &output)
            Self.appendOptional(spread.tier, to: &output)
            JSONText.append(",\"roas\":{", to: &output)
            for (position, item) in spread.roas.enumerated() {
                JSONText.append((position > 0 ? "," : "") + "\"\(item.model)\":\(Row.roasText(item.roas))", to: &output)
            }
            JSONText.append(
                "},\"lowest\":{\"model\":\"\(spread.lowest.model)\",\"roas\":\(Row.roasText(spread.lowest.roas))}"
                    + ",\"highest\":{\"model\":\"\(spread.highest.model)\",\"roas\":\(Row.roasText(spread.highest.roas))}"
                    + ",\"spread\":\(Row.roasText(spread.spread))}", to: &output)
        }
        JSONText.append("]}", to: &output)
        return output
    }

    /// `GET /v1/alerts`: the alerts firing now (oldest first window first) and the latest resolved ones.
    func alertsJSON() -> [UInt8] {
        var output: [UInt8] = []
        JSONText.append("{\"rules\":[", to: &output)
        for (index, rule) in self.alerts.rules.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(rule.text.utf8, to: &output)
        }
        func ordered(_ alerts: some Collection<Alert>) -> [Alert] {
            alerts.sorted { a, b in
                a.firstWindowStart != b.firstWindowStart ? a.firstWindowStart < b.firstWindowStart : a.id < b.id
            }
        }
        for (name, alerts) in [("firing", ordered(self.alerts.firing.values)), ("pending", ordered(self.alerts.pending.values))] {
            JSONText.append("],\"\(name)\":[", to: &output)
            for (index, alert) in alerts.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                alert.appendJSON(to: &output)
            }
        }
        JSONText.append("],\"resolved\":[", to: &output)
        for (index, alert) in self.recentlyResolved.reversed().enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            alert.appendJSON(to: &output)
        }
        JSONText.append("]}", to: &output)
        return output
    }

    private static func appendOptional(_ text: String?, to output: inout [UInt8]) {
        if let text { JSONText.appendQuoted(text.utf8, to: &output) } else { JSONText.append("null", to: &output) }
    }

    private var watermarkJSON: String {
        let watermark = self.sink.engine.watermark
        guard watermark != .min && watermark != .max else { return "null" }
        return "\"\(Timestamp.format(milliseconds: watermark))\""
    }

    /// The `stats` event of `/v1/stream`, also the `stats` member of `/v1/roas`.
    func statsJSON() -> [UInt8] {
        let statistics = self.sink.engine.statistics
        let rate = (self.eventsPerSecond * 10).rounded() / 10
        return Array(
            ("{\"time\":\"\(Timestamp.format(milliseconds: self.settings.wallClock()))\",\"watermark\":\(self.watermarkJSON)"
                + ",\"events_per_second\":\(rate),\"accepted_events\":\(statistics.acceptedEventCount)"
                + ",\"dead_letters\":\(statistics.deadLetterCount),\"accepted_batches\":\(statistics.acceptedBatches)"
                + ",\"rejected_batches\":\(statistics.rejectedBatches.reduce(0, +))"
                + ",\"connections\":\(self.gauges.connections.load(ordering: .relaxed))}").utf8)
    }

    func recordMetrics() {
        let statistics = self.sink.engine.statistics
        self.metrics.record(from: self.reported, to: statistics)
        self.reported = statistics
        self.metrics.record(self.sink.engine.stateSizes)
        self.metrics.eventsPerSecond.record(self.eventsPerSecond)
        let watermark = self.sink.engine.watermark
        if watermark != .min && watermark != .max {
            self.metrics.watermarkLag.record(Double(self.settings.wallClock() - watermark) / 1000)
        }
        self.metrics.connections.record(self.gauges.connections.load(ordering: .relaxed))
        self.metrics.queuedChunks.record(self.gauges.queuedChunks.load(ordering: .relaxed))
        self.metrics.streamSubscribers.record(self.hub.subscriberCount)
        self.metrics.inflightBytes.record(self.inflight.used)
        if !self.metrics.alertsFiring.isEmpty {
            var counts = [Int](repeating: 0, count: self.alerts.rules.count)
            for alert in self.alerts.firing.values {
                if let index = self.alerts.rules.firstIndex(where: { $0.text == alert.rule }) { counts[index] += 1 }
            }
            for (gauge, count) in zip(self.metrics.alertsFiring, counts) { gauge.record(count) }
        }
        if let log = self.durable?.log { self.metrics.record(log) }
        if let postgres = self.postgres { self.metrics.record(postgres) }
    }

    /// Writes out what the engine produced; rows also go to the board and the stream.
    func write() throws {
        guard !self.sink.output.isEmpty else { return }
        let writesUpdates = self.settings.run.emitEvery != nil
        var wroteRow = false
        var events: [(name: String, data: [UInt8])] = []
        if let postgres = self.postgres {
            // Replayed rows too (recovery): the upsert makes writing a row again harmless.
            let rows = writesUpdates ? self.sink.output.rows : self.sink.output.rows.filter(\.isFinal)
            if !rows.isEmpty { postgres.append(rows) }
        }
        for row in self.sink.output.rows {
            // Queued for --alert-webhook (in the outbox with --data-dir) before the row can reach the
            // rows file, so that a crash never leaves a written row whose alerts were not queued;
            // alerts of replayed rows too: the queue skips webhook ids it has queued or sent.
            let fired = self.alerts.observe(row)
            // Pending alerts (live rows) are shown, not sent: a webhook receives firing and resolved.
            self.webhooks?.offer(fired.filter { $0.state != .pending })
            var json: [UInt8] = []
            row.appendJSON(to: &json)
            let skipped = row.isFinal && self.finalRowsToSkip > 0
            if skipped {
                // Recovery: this final row was written before the crash (same log, same rows).
                self.finalRowsToSkip -= 1
            } else if row.isFinal || writesUpdates {
                try self.rows.writeLine { $0.append(contentsOf: json) }
                wroteRow = true
            } else {
                self.unwrittenUpdates += 1
            }
            self.board.absorb(row)
            events.append(("row", json))
            // Recovery replays final rows already written: their alerts were written then too, so
            // they only rebuild the rules' state.
            let replayed = row.isFinal && skipped
            for alert in fired where !replayed {
                var alertJSON: [UInt8] = []
                alert.appendJSON(to: &alertJSON)
                // Pending alerts reach the file with live rows, as in `roas run --emit-every`.
                if alert.state != .pending || writesUpdates {
                    try self.alertLog?.writeLine { $0.append(contentsOf: alertJSON) }
                }
                events.append(("alert", alertJSON))
                if alert.state == .resolved {
                    self.recentlyResolved.append(alert)
                    if self.recentlyResolved.count > Self.keptResolvedAlerts { self.recentlyResolved.removeFirst() }
                }
            }
        }
        try self.alertLog?.flush()
        self.webhooks?.sync()
        self.hub.publish(events)
        if wroteRow { try self.rows.flush() }
        if let deadLetters = self.deadLetters {
            for letter in self.sink.output.deadLetters {
                try deadLetters.writeLine { letter.appendJSON(to: &$0) }
            }
            if !self.sink.output.deadLetters.isEmpty { try deadLetters.flush() }
        }
        self.sink.output.removeAll()
    }
}

enum ServeError: Error, CustomStringConvertible {
    case finished
    /// The write-ahead log could not take the input (`--data-dir`): nothing of it was applied.
    case notDurable(String)

    var description: String {
        switch self {
        case .finished: "the server is shutting down"
        case .notDurable(let reason): "the input could not be made durable: \(reason)"
        }
    }
}
