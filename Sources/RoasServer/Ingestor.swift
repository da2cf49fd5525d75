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
        /// `--nats`: batches the log can never take (a line larger than its messages), by id, with
        /// why: nothing of them was applied, and resending them will not help.
        var refused: [String: String] = [:]
    }

    /// The engine and its sinks: the live views first (`LiveOutput`), then the rows file and the
    /// dead letters, as `roas run` writes them.
    var host: EngineHost
    let settings: ServeSettings
    let rows: ByteSink
    let deadLetters: ByteSink?
    let live: LiveOutput
    let rowFile: RowFileOutput
    /// `--sink postgres://…`: final rows, and live rows with `--emit-every`, also go there.
    let postgres: PostgresRowSink?
    let hub: StreamHub
    let metrics: ServeMetrics
    let gauges: IngestGauges
    /// `--max-inflight-bytes`, shared by webhook requests and TCP connections.
    let inflight: InflightBudget
    /// Batch ids accepted on any connection or request, for `replayed_batch`.
    let accepted = AcceptedBatches()
    /// `--alert-webhook`: the alerts waiting for delivery (AlertWebhookService sends them).
    let webhooks: AlertWebhookQueue?
    /// Monotonic milliseconds of the last chunk holding an event.
    var lastEventAt: Int64
    /// `--nats`: the last idle advance the stream holds (the edge has no watermark of its own), and
    /// whether events came since.
    private var publishedAdvance = Int64.min
    private var eventsSinceAdvance = true
    private var reported = Statistics()
    private var rateSample: (time: Int64, events: Int)
    private var eventsPerSecond = 0.0
    private(set) var isFinished = false
    /// `--follow`: whether the follower has ended, and who waits for that (`finish()`).
    var followEnded = false
    var followWaiters: [CheckedContinuation<Void, Never>] = []
    /// `--data-dir`: the write-ahead log and checkpoints (see Ingestor+Durability.swift).
    var durable: DurableState?
    /// Recovery: final rows the rows file already holds past the checkpoint, not to write again
    /// (nor their alerts to the alert log).
    var finalRowsToSkip: Int {
        get { self.host.recovered.remaining }
        set { self.host.recovered = RecoveredRows(remaining: newValue) }
    }

    init(
        settings: ServeSettings, rows: sending ByteSink, deadLetters: sending ByteSink?, postgres: PostgresRowSink?,
        alertLog: sending ByteSink? = nil
    ) {
        var settings = settings
        // Checkpoints are written while the engine runs on: paged tables keep its copies small.
        settings.run.configuration.pagedState = settings.durability != nil
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
        let hub = StreamHub(bufferedBytes: settings.streamBufferBytes, metrics: self.metrics)
        self.hub = hub
        self.live = LiveOutput(settings: settings, postgres: postgres, hub: hub, alertLog: alertLog, webhooks: self.webhooks)
        self.rowFile = RowFileOutput(rows: rows, writesUpdates: settings.run.emitEvery != nil)
        var outputs: [any EngineOutputSink] = [self.live, self.rowFile]
        if let deadLetters { outputs.append(DeadLetterFileOutput(deadLetters: deadLetters, flushesEachStep: true)) }
        // Live rows for the board and the stream every tick, written to the file only with --emit-every.
        self.host = EngineHost(configuration: settings.run.configuration, updatesEvery: settings.liveEvery, outputs: outputs)
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
        /// `--nats`: split into parts for the replicated log; done once the log holds them all.
        /// `applied` is what the answer says; `batches` the ids to forget if the log fails.
        case published(LogEdge.Ticket, applied: Applied, batches: [String])

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
        if let edge = self.settings.edge {
            // The workers decide what is late or a duplicate; here only what parsing rejected counts.
            let batches = chunk.batchOutcomes.compactMap { $0.rejection == nil ? $0.id : nil }
            if chunk.eventCount > 0 {
                self.lastEventAt = SystemClock.monotonicMilliseconds()
                self.eventsSinceAdvance = true
            }
            let (ticket, refused) = edge.submit(chunk)
            var applied = Applied(accepted: chunk.eventCount, rejected: chunk.rejectedCount)
            if !refused.isEmpty {
                // Never on the log: their ids are free, their events not taken.
                for id in refused.keys { self.accepted.remove(id) }
                let events = chunk.events(ofBatches: Set(refused.keys))
                applied = Applied(accepted: applied.accepted - events, rejected: applied.rejected + events, refused: refused)
                Logger(label: "roas").warning("refused, too large for the log: \(refused.values.sorted().joined(separator: "; "))")
            }
            return .published(ticket, applied: applied, batches: batches.filter { refused[$0] == nil })
        }
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
        case .published(let ticket, let result, let batches):
            do {
                try await ticket.wait()
            } catch {
                // Nothing is acknowledged that the log does not hold: the ids are free for the resend.
                for id in batches { self.accepted.remove(id) }
                Logger(label: "roas").warning("log append failed, answering not_durable: \(error)")
                throw ServeError.notDurable("the log did not take every part: \(error)")
            }
            applied = result
        }
        await self.postgres?.waitForRoom()
        return applied
    }

    /// Applies a chunk at once (without a data folder, or once it is durable).
    func applyNow(_ chunk: ParsedChunk) throws -> Applied {
        let lateBefore = self.host.engine.statistics.deadLetters(.late)
        let duplicateBefore = self.host.engine.statistics.deadLetters(.duplicate)
        // A window that closes brings the board's open rows up to date at once rather than at the
        // next tick, so /v1/roas never shows the closed row in place of the window that follows it.
        try self.host.apply(chunk, updatesAfterClosedWindows: true)
        let statistics = self.host.engine.statistics
        let refused = statistics.deadLetters(.late) - lateBefore + statistics.deadLetters(.duplicate) - duplicateBefore
        let events = chunk.eventCount
        if events > 0 { self.lastEventAt = SystemClock.monotonicMilliseconds() }
        return Applied(accepted: events - refused, rejected: chunk.rejectedCount + refused)
    }

    /// The periodic work: the idle close, live rows of open windows, checkpoints, metrics and the
    /// stats event.
    func tick() async throws {
        guard !self.isFinished else { return }
        let now = SystemClock.monotonicMilliseconds()
        if now - self.lastEventAt >= self.settings.idleClose {
            let target = self.settings.wallClock() - self.settings.run.configuration.lateness
            if let edge = self.settings.edge {
                // On the stream, so that every worker closes the same windows at the same point: the
                // first tick of an idle spell (it lets what waits for the watermark apply), then only
                // when the target passes a window boundary (windows end on multiples of the slide), not
                // a message per tick while idle.
                let slide = self.settings.run.configuration.slide
                let crossesBoundary =
                    self.publishedAdvance == .min
                    || target.floorDivided(by: slide) > self.publishedAdvance.floorDivided(by: slide)
                if target > self.publishedAdvance && (self.eventsSinceAdvance || crossesBoundary) {
                    do {
                        try await edge.submitAdvance(to: target).wait()
                        self.publishedAdvance = target
                        self.eventsSinceAdvance = false
                    } catch {
                        Logger(label: "roas").warning("cannot append the idle advance to the log (tried again next tick): \(error)")
                    }
                }
            } else if target > self.host.engine.watermark {
                if self.durable != nil {
                    // Logged like input, so that recovery closes the same windows at the same point.
                    _ = try await self.applyDurably(.advance(target))
                } else {
                    try self.host.advanceIdle(to: target)
                }
            }
        }
        // No wait for the database sink here: metrics and the idle close go on during an outage, and
        // with ingest waiting, what a tick adds is bounded (live rows of keys changed since the last).
        self.hub.dropLagging()
        try self.host.tick(now: now)
        let events = self.host.engine.statistics.acceptedEventCount
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
    func finish() async throws -> RunResult {
        if !self.isFinished {
            self.isFinished = true
            // Nothing more is submitted: the edge's append thread ends once what is queued is appended.
            self.settings.edge?.close()
            await self.finishFollowing()
            if self.durable != nil {
                try await self.finishDurably()
                return RunResult(statistics: self.statistics, state: self.host.engine.stateSizes)
            }
            _ = try self.host.finish()
            self.recordMetrics()
            self.hub.publish(event: "stats", data: self.statsJSON())
            self.hub.finish()
        }
        return RunResult(statistics: self.statistics, state: self.host.engine.stateSizes)
    }

    /// The engine's counts, with `updateRows` counting only live rows written to the output.
    var statistics: Statistics {
        var statistics = self.host.engine.statistics
        statistics.updateRows -= self.rowFile.unwrittenUpdates
        return statistics
    }

    // MARK: Views (rendered by LiveViews.swift from values)

    /// `GET /v1/roas`.
    func snapshot(_ query: LiveBoard.Query) -> [UInt8] {
        self.live.roasJSON(
            query, configuration: self.settings.run.configuration, generatedAt: self.settings.wallClock(),
            watermark: self.host.engine.watermark, stats: self.stats)
    }

    /// `GET /v1/spread`: per key, its ROAS under each model of `--models`, widest spread first.
    func spreadJSON(campaign: String?, tier: String?, limit: Int) -> [UInt8] {
        self.live.spreadJSON(
            configuration: self.settings.run.configuration, generatedAt: self.settings.wallClock(), campaign: campaign,
            tier: tier, limit: limit)
    }

    /// `GET /v1/alerts`: the alerts firing now (oldest first window first) and the latest resolved ones.
    func alertsJSON() -> [UInt8] {
        self.live.alertsJSON()
    }

    /// The `stats` event of `/v1/stream`, also the `stats` member of `/v1/roas`.
    func statsJSON() -> [UInt8] {
        self.stats.json
    }

    /// The figures of the `stats` event, now.
    private var stats: ServeStats {
        let statistics = self.host.engine.statistics
        return ServeStats(
            time: self.settings.wallClock(), watermark: self.host.engine.watermark, eventsPerSecond: self.eventsPerSecond,
            acceptedEvents: statistics.acceptedEventCount, deadLetters: statistics.deadLetterCount,
            acceptedBatches: statistics.acceptedBatches, rejectedBatches: statistics.rejectedBatches.reduce(0, +),
            connections: self.gauges.connections.load(ordering: .relaxed))
    }

    func recordMetrics() {
        let statistics = self.host.engine.statistics
        self.metrics.record(from: self.reported, to: statistics)
        self.reported = statistics
        self.metrics.record(self.host.engine.stateSizes)
        self.metrics.eventsPerSecond.record(self.eventsPerSecond)
        let watermark = self.host.engine.watermark
        if watermark != .min && watermark != .max {
            self.metrics.watermarkLag.record(Double(self.settings.wallClock() - watermark) / 1000)
        }
        self.metrics.connections.record(self.gauges.connections.load(ordering: .relaxed))
        self.metrics.queuedChunks.record(self.gauges.queuedChunks.load(ordering: .relaxed))
        self.metrics.streamSubscribers.record(self.hub.subscriberCount)
        self.metrics.inflightBytes.record(self.inflight.used)
        if !self.metrics.alertsFiring.isEmpty {
            var counts = [Int](repeating: 0, count: self.live.alerts.rules.count)
            for alert in self.live.alerts.firing.values {
                if let index = self.live.alerts.rules.firstIndex(where: { $0.text == alert.rule }) { counts[index] += 1 }
            }
            for (gauge, count) in zip(self.metrics.alertsFiring, counts) { gauge.record(count) }
        }
        if let log = self.durable?.folder.log { self.metrics.record(log) }
        if let postgres = self.postgres { self.metrics.record(postgres) }
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

extension Int64 {
    /// The quotient rounded down (toward minus infinity), for `divisor > 0`.
    fileprivate func floorDivided(by divisor: Int64) -> Int64 {
        let quotient = self / divisor
        return self % divisor < 0 ? quotient - 1 : quotient
    }
}
