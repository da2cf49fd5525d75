import Logging
import Prometheus
import RoasCore
import RoasRuntime
import Synchronization

/// The alert webhook families of `/metrics` (registered whether or not `--alert-webhook` is set, at 0).
final class AlertDeliveryMetrics: Sendable {
    /// Deliveries answered 2xx.
    let delivered: Counter
    /// Attempts that failed: no connection, a timeout, or an answer other than 2xx.
    let failedAttempts: Counter
    let pending: Gauge
    let droppedExpired: Counter
    let droppedRejected: Counter
    let droppedOverflow: Counter

    init(registry: PrometheusCollectorRegistry) {
        self.delivered = registry.counter(
            "roas_alert_deliveries_total", labels: [],
            help: "Alert webhooks delivered (--alert-webhook answered 2xx).")
        self.failedAttempts = registry.counter(
            "roas_alert_deliveries_failed_total", labels: [],
            help: "Alert webhook attempts that failed: no connection, a timeout, or an answer other than 2xx.")
        self.pending = registry.gauge("roas_alert_deliveries_pending", labels: [], help: "Alert webhooks queued and not yet delivered or dropped.")
        let help =
            "Alert webhooks given up: retried for --alert-retry-for (expired), refused with a 3xx or 4xx (rejected), or pushed out of a full --alert-queue (overflow)."
        self.droppedExpired = registry.counter("roas_alert_deliveries_dropped_total", labels: [("reason", "expired")], help: help)
        self.droppedRejected = registry.counter("roas_alert_deliveries_dropped_total", labels: [("reason", "rejected")], help: help)
        self.droppedOverflow = registry.counter("roas_alert_deliveries_dropped_total", labels: [("reason", "overflow")], help: help)
    }
}

/// The alerts waiting for `--alert-webhook`, in the order they fired: fed by the ingestor without
/// waiting (`offer`, inside its write of the rows), drained one at a time by `AlertWebhookService`.
/// With a data folder every queued alert is also in the outbox file (`AlertOutbox`), and alerts
/// whose webhook id is queued or was finished already are not queued again (recovery replays rows
/// whose alerts were queued before the crash). Bounded by `AlertWebhookSettings.queueLimit`: beyond
/// it the oldest waiting alert is dropped, counted and logged.
final class AlertWebhookQueue: Sendable {
    struct Entry: Sendable, Equatable {
        var sequence: UInt64
        /// `<alert id>.<state>`, the `webhook-id` of every attempt.
        var webhookID: String
        /// The alert as `--alerts` writes it: what is posted and signed.
        var body: [UInt8]
        /// Wall-clock milliseconds when it was first queued (kept across restarts by the outbox).
        var queuedAt: Int64
    }

    enum Outcome: Sendable, Equatable {
        case sent
        case dropped(reason: String)
    }

    let settings: AlertWebhookSettings
    let metrics: AlertDeliveryMetrics
    let logger: Logger
    let wallClock: @Sendable () -> Int64
    /// One element after each change a waiting deliverer should look at (new alerts, shutdown).
    let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let state: Mutex<State>

    private struct State {
        var entries: [Entry] = []
        /// Entries before it are done (the array is compacted now and then).
        var head = 0
        var nextSequence: UInt64 = 0
        var pendingIDs: Set<String> = []
        /// The latest finished webhook ids (at most `AlertOutbox.rememberedIDs`), oldest first from `finishedHead`.
        var finishedIDs: Set<String> = []
        var finishedOrder: [String] = []
        var finishedHead = 0
        var outbox: AlertOutboxFile?
        var outboxFailing = false
        var overflowDrops = 0
        /// The entry `front()` handed out and not yet finished.
        var inFlight: UInt64?

        var count: Int { self.entries.count - self.head }
        var pending: ArraySlice<Entry> { self.entries[self.head...] }
        var finished: ArraySlice<String> { self.finishedOrder[self.finishedHead...] }

        func isKnown(_ id: String) -> Bool { self.pendingIDs.contains(id) || self.finishedIDs.contains(id) }

        mutating func remember(_ id: String) {
            guard self.finishedIDs.insert(id).inserted else { return }
            self.finishedOrder.append(id)
            if self.finishedOrder.count - self.finishedHead > AlertOutbox.rememberedIDs {
                self.finishedIDs.remove(self.finishedOrder[self.finishedHead])
                self.finishedHead += 1
                if self.finishedHead >= AlertOutbox.rememberedIDs {
                    self.finishedOrder.removeFirst(self.finishedHead)
                    self.finishedHead = 0
                }
            }
        }

        mutating func compactEntries() {
            if self.head > 1024 && self.head * 2 > self.entries.count {
                self.entries.removeFirst(self.head)
                self.head = 0
            }
        }

        /// Drops the oldest entries beyond `limit`, never the one being attempted (`inFlight`).
        mutating func enforce(limit: Int) -> [Entry] {
            var dropped: [Entry] = []
            while self.count > limit {
                var index = self.head
                if self.entries[index].sequence == self.inFlight {
                    index += 1
                    guard index < self.entries.count else { break }
                }
                let entry = self.entries[index]
                // Moves the head past the dropped entry (keeping the one in flight at the head).
                self.entries[index] = self.entries[self.head]
                self.entries[self.head].body = []
                self.head += 1
                self.pendingIDs.remove(entry.webhookID)
                self.remember(entry.webhookID)
                dropped.append(entry)
            }
            self.compactEntries()
            return dropped
        }
    }

    init(settings: AlertWebhookSettings, metrics: AlertDeliveryMetrics, logger: Logger, wallClock: @escaping @Sendable () -> Int64) {
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        self.wallClock = wallClock
        (self.wakeups, self.wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.state = Mutex(State())
    }

    /// Whether queued alerts survive a restart (an outbox in a data folder is open).
    var isPersistent: Bool { self.state.withLock { $0.outbox != nil } }

    var count: Int { self.state.withLock { $0.count } }

    /// With `--data-dir`, at start, before the log is replayed: reads `alerts-outbox.ndjson`,
    /// queues its unsent alerts again (same ids, same bodies, same queue times), remembers the ids
    /// of finished ones, and rewrites the file to just that. Returns how many were queued again.
    @discardableResult
    func openOutbox(directory: String) throws -> Int {
        let contents = try AlertOutboxFile.read(directory: directory)
        if contents.damagedLines > 0 {
            self.logger.warning(
                "skipped unreadable lines of the alert outbox (a write cut by a crash)",
                metadata: ["file": "\(directory)/\(AlertOutbox.fileName)", "lines": "\(contents.damagedLines)"])
        }
        let limit = self.settings.queueLimit
        let (requeued, dropped, count) = try self.state.withLock { state in
            for id in contents.finished { state.remember(id) }
            var restored: [Entry] = []
            for record in contents.pending where !state.isKnown(record.id) {
                restored.append(Entry(sequence: 0, webhookID: record.id, body: record.body, queuedAt: record.at))
                state.pendingIDs.insert(record.id)
            }
            // Ahead of anything queued meanwhile (nothing is, in practice: this runs before input).
            let current = Array(state.pending)
            state.entries = []
            state.head = 0
            for var entry in restored + current {
                entry.sequence = state.nextSequence
                state.nextSequence += 1
                state.entries.append(entry)
            }
            let dropped = state.enforce(limit: limit)
            state.overflowDrops += dropped.count
            let bytes = AlertOutbox.compacted(finished: state.finished, pending: state.pending.map { ($0.webhookID, $0.queuedAt, $0.body) })
            state.outbox = try AlertOutboxFile(directory: directory, bytes: bytes, records: state.finished.count + state.count)
            return (restored.count, dropped.count, state.count)
        }
        if dropped > 0 {
            self.metrics.droppedOverflow.increment(by: Int64(dropped))
            self.logger.error("the alert outbox holds more than --alert-queue alerts; dropped the oldest", metadata: ["dropped": "\(dropped)"])
        }
        self.metrics.pending.record(count)
        if requeued > 0 {
            self.logger.notice("alerts not yet delivered before the restart are queued again", metadata: ["alerts": "\(requeued)"])
        }
        self.wake.yield()
        return requeued
    }

    /// Queues the alerts one write of the engine fired, in order, except those whose webhook id is
    /// queued or finished already. With an outbox their records are written (not yet synced) before
    /// this returns: call it before the rows that fired them are written, and `sync()` after.
    func offer(_ alerts: [Alert]) {
        guard !alerts.isEmpty else { return }
        let now = self.wallClock()
        let limit = self.settings.queueLimit
        let (added, dropped, totalDropped, count, failure, recovered) = self.state.withLock { state in
            var records: [AlertOutbox.Record] = []
            var added = 0
            for alert in alerts {
                let id = AlertWebhookSigner.webhookID(of: alert)
                guard !state.isKnown(id) else { continue }
                var body: [UInt8] = []
                alert.appendJSON(to: &body)
                state.entries.append(Entry(sequence: state.nextSequence, webhookID: id, body: body, queuedAt: now))
                state.nextSequence += 1
                state.pendingIDs.insert(id)
                records.append(.queued(id: id, at: now, body: body))
                added += 1
            }
            let dropped = state.enforce(limit: limit)
            state.overflowDrops += dropped.count
            records += dropped.map { .dropped(id: $0.webhookID, reason: "overflow") }
            var failure: String?
            var recovered = false
            if let outbox = state.outbox, !records.isEmpty {
                do {
                    try outbox.append(records)
                    recovered = state.outboxFailing
                    state.outboxFailing = false
                } catch {
                    // Logged once per failing spell; the alerts are still delivered from memory.
                    if !state.outboxFailing { failure = "\(error)" }
                    state.outboxFailing = true
                }
            }
            return (added, dropped, state.overflowDrops, state.count, failure, recovered)
        }
        self.metrics.pending.record(count)
        if !dropped.isEmpty {
            self.metrics.droppedOverflow.increment(by: Int64(dropped.count))
            // The first drop, then one line per 10,000, so a dead receiver does not flood the log.
            if totalDropped == dropped.count || totalDropped / 10_000 != (totalDropped - dropped.count) / 10_000 {
                self.logger.error(
                    "the alert webhook queue is full (--alert-queue): dropped the oldest alerts",
                    metadata: [
                        "limit": "\(limit)", "dropped_now": "\(dropped.count)", "dropped_since_start": "\(totalDropped)",
                        "webhook_id": "\(dropped[0].webhookID)",
                    ])
            }
        }
        if let failure {
            self.logger.error(
                "cannot write the alert outbox: queued alerts are delivered from memory but would not survive a crash",
                metadata: ["error": "\(failure)"])
        }
        if recovered { self.logger.notice("the alert outbox is written again") }
        if added > 0 { self.wake.yield() }
    }

    /// Makes what `offer` wrote to the outbox durable (one fdatasync per write of the engine).
    func sync() {
        let failure: String? = self.state.withLock { state in
            guard let outbox = state.outbox, outbox.isDirty else { return nil }
            do {
                try outbox.sync()
                return nil
            } catch {
                if state.outboxFailing { return nil }
                state.outboxFailing = true
                return "\(error)"
            }
        }
        if let failure {
            self.logger.error("cannot sync the alert outbox", metadata: ["error": "\(failure)"])
        }
    }

    /// The oldest waiting alert (the one to attempt next), or nil when none waits.
    func front() -> Entry? {
        self.state.withLock { state in
            let entry = state.count > 0 ? state.entries[state.head] : nil
            state.inFlight = entry?.sequence
            return entry
        }
    }

    /// Takes an alert off the queue: delivered, or given up (with an outbox, recorded there).
    func finish(_ entry: Entry, _ outcome: Outcome) {
        let count = self.state.withLock { state in
            state.inFlight = nil
            if let index = state.pending.firstIndex(where: { $0.sequence == entry.sequence }) {
                if index == state.head {
                    state.entries[index].body = []
                    state.head += 1
                } else {
                    state.entries.remove(at: index)
                }
            } else {
                // Pushed out by the queue bound while it was being attempted: already recorded.
                return state.count
            }
            state.compactEntries()
            state.pendingIDs.remove(entry.webhookID)
            state.remember(entry.webhookID)
            if let outbox = state.outbox {
                let record: AlertOutbox.Record =
                    switch outcome {
                    case .sent: .sent(id: entry.webhookID)
                    case .dropped(let reason): .dropped(id: entry.webhookID, reason: reason)
                    }
                // Not synced: a `sent` lost with the machine only means one more delivery of the same id.
                try? outbox.append([record])
                // Now and then, while few alerts wait, the file is rewritten to what is still needed.
                if outbox.records > 2 * state.count + 2 * AlertOutbox.rememberedIDs && state.count <= 10_000 {
                    let bytes = AlertOutbox.compacted(
                        finished: state.finished, pending: state.pending.map { ($0.webhookID, $0.queuedAt, $0.body) })
                    try? outbox.rewrite(bytes, records: state.finished.count + state.count)
                }
            }
            return state.count
        }
        self.metrics.pending.record(count)
    }

    /// Wakes the deliverer (at shutdown).
    func poke() { self.wake.yield() }
}
