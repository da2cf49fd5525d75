import Prometheus
import RoasCore
import RoasRuntime
import Synchronization

/// The metrics of `GET /metrics`, in this server's own swift-prometheus registry (not a process-wide
/// one, so that several servers can live in one process, as in tests). Every family has HELP text,
/// counters end in `_total` and units are in the names, so `promtool check metrics` finds nothing
/// (a test runs it); `deploy/prometheus/roas-alerts.yml` holds alerting rules written against them.
final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let acceptedEvents: [Counter]
    private let deadLetters: [Counter]
    private let acceptedBatches: Counter
    private let rejectedBatches: [Counter]
    private let lateEvents: Counter
    private let linesRead: Counter
    private let bytesRead: Counter
    /// By the status codes `POST /v1/events` answers with.
    let webhookRequests: [Int: Counter]
    let watermarkLag: Gauge
    let eventsPerSecond: Gauge
    let openWindows: Gauge
    let identities: Gauge
    let touches: Gauge
    let pending: Gauge
    let orders: Gauge
    let dedupIDs: Gauge
    let connections: Gauge
    let queuedChunks: Gauge
    let streamSubscribers: Gauge
    let streamSubscribersDropped: Counter
    let httpConnections: Gauge
    let httpConnectionsRefused: Counter
    let inflightBytes: Gauge
    let checkpoints: Counter
    let checkpointSeconds: Gauge
    let checkpointBytes: Gauge
    private let walBytes: Counter
    private let walSyncs: Counter
    private let walFailedWrites: Counter
    private let sinkQueuedRows: Gauge
    private let sinkDeliveredRows: Counter
    /// `--alert-webhook`: deliveries, failed attempts, waiting and dropped alerts.
    let alertDeliveries: AlertDeliveryMetrics
    /// The log's and the sink's running totals as last recorded, to turn them into counter increments.
    private let totals = Mutex(Totals())

    private struct Totals {
        var walBytes = 0
        var walSyncs = 0
        var walFailedWrites = 0
        var sinkDeliveredRows = 0
    }

    /// The status codes `POST /v1/events` answers with (each has its series from the start, at 0).
    static let webhookStatuses = [200, 202, 400, 401, 409, 413, 500, 503]

    /// `roas_alerts_firing{rule}`, one series per `--alert` rule (none without rules).
    let alertsFiring: [Gauge]

    init(alertRules: [String] = []) {
        let registry = self.registry
        self.alertsFiring = alertRules.map {
            registry.gauge("roas_alerts_firing", labels: [("rule", $0)], help: "Alerts firing now (keys whose rows match), by --alert rule.")
        }
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            registry.counter(name, labels: labels, help: help)
        }
        func gauge(_ name: String, _ help: String) -> Gauge {
            registry.gauge(name, labels: [], help: help)
        }
        self.acceptedEvents = EventKind.allCases.map {
            counter("roas_events_accepted_total", "Events accepted by the engine, by event type.", [("type", $0.name)])
        }
        self.deadLetters = Reason.allCases.map {
            counter("roas_dead_letters_total", "Input lines dead-lettered, by reason.", [("reason", $0.rawValue)])
        }
        self.acceptedBatches = counter("roas_batches_accepted_total", "Signed batches verified and accepted.")
        self.rejectedBatches = Reason.allCases.map {
            counter("roas_batches_rejected_total", "Signed batches rejected whole, by reason.", [("reason", $0.rawValue)])
        }
        self.lateEvents = counter(
            "roas_late_events_total", "Events dead-lettered as late: older than the watermark minus the allowed lateness.")
        self.linesRead = counter("roas_lines_read_total", "Input lines read (TCP, webhooks and replay of the log).")
        self.bytesRead = counter("roas_bytes_read_total", "Input bytes read (TCP, webhooks and replay of the log).")
        self.webhookRequests = Dictionary(
            uniqueKeysWithValues: Self.webhookStatuses.map {
                ($0, counter("roas_webhook_requests_total", "POST /v1/events requests, by answer status.", [("status", "\($0)")]))
            })
        self.watermarkLag = gauge(
            "roas_watermark_lag_seconds", "Wall clock minus the event-time watermark, in seconds (set once an event arrived).")
        self.eventsPerSecond = gauge("roas_events_per_second", "Events accepted per second over the last live tick.")
        self.openWindows = gauge("roas_open_window_panes", "Window panes still open (not yet closed by the watermark).")
        self.identities = gauge("roas_state_identities", "Users known to the identity table.")
        self.touches = gauge("roas_state_touches", "Touches (views and clicks) kept for attribution.")
        self.pending = gauge("roas_state_pending_events", "Events waiting for the watermark before they are applied.")
        self.orders = gauge("roas_state_orders", "Orders kept for refunds.")
        self.dedupIDs = gauge("roas_state_dedup_ids", "Event ids kept to find duplicates.")
        self.connections = gauge("roas_tcp_connections", "Open TCP ingest connections.")
        self.queuedChunks = gauge("roas_queued_chunks", "Parsed chunks waiting for the engine.")
        self.streamSubscribers = gauge("roas_stream_subscribers", "Open /v1/stream subscriptions.")
        self.streamSubscribersDropped = counter(
            "roas_stream_subscribers_dropped_total", "/v1/stream subscribers dropped for falling over --stream-buffer behind.")
        self.httpConnections = gauge("roas_http_connections", "Open HTTP connections.")
        self.httpConnectionsRefused = counter(
            "roas_http_connections_refused_total", "HTTP connections refused (503) over --max-http-connections.")
        self.inflightBytes = gauge(
            "roas_inflight_bytes", "Bytes of input held and not yet applied, counted against --max-inflight-bytes.")
        self.checkpoints = counter("roas_checkpoints_total", "Checkpoints written (--data-dir).")
        self.checkpointSeconds = gauge("roas_checkpoint_last_seconds", "Time the last checkpoint took to write, in seconds.")
        self.checkpointBytes = gauge("roas_checkpoint_last_bytes", "Size of the last checkpoint, in bytes.")
        self.walBytes = counter("roas_wal_written_bytes_total", "Bytes written to the write-ahead log since the start.")
        self.walSyncs = counter("roas_wal_syncs_total", "fdatasync calls of the write-ahead log since the start.")
        self.walFailedWrites = counter(
            "roas_wal_failed_writes_total", "Write-ahead log group commits that failed (their input was answered not durable).")
        self.sinkQueuedRows = gauge("roas_sink_queued_rows", "Rows queued for PostgreSQL (--sink), not yet delivered.")
        self.sinkDeliveredRows = counter("roas_sink_delivered_rows_total", "Rows delivered to PostgreSQL (--sink) since the start.")
        self.alertDeliveries = AlertDeliveryMetrics(registry: registry)
    }

    /// Adds what changed between two snapshots of the engine's counts.
    func record(from old: Statistics, to new: Statistics) {
        for (index, counter) in self.acceptedEvents.enumerated() {
            counter.add(new.acceptedEvents[index] - old.acceptedEvents[index])
        }
        for (index, counter) in self.deadLetters.enumerated() {
            counter.add(new.deadLetters[index] - old.deadLetters[index])
        }
        for (index, counter) in self.rejectedBatches.enumerated() {
            counter.add(new.rejectedBatches[index] - old.rejectedBatches[index])
        }
        self.acceptedBatches.add(new.acceptedBatches - old.acceptedBatches)
        self.lateEvents.add(new.deadLetters(.late) - old.deadLetters(.late))
        self.linesRead.add(new.linesRead - old.linesRead)
        self.bytesRead.add(new.bytesRead - old.bytesRead)
    }

    func record(_ state: Engine.StateSizes) {
        self.openWindows.record(state.openPanes)
        self.identities.record(state.identities)
        self.touches.record(state.touches)
        self.pending.record(state.pending)
        self.orders.record(state.orders)
        self.dedupIDs.record(state.dedupIDs)
    }

    /// The write-ahead log's counts since the server started (`--data-dir`).
    func record(_ log: WriteAheadLog) {
        let (bytes, syncs, failed) = (log.bytesWritten, log.syncs, log.failedGroups)
        let added = self.totals.withLock { totals in
            defer { (totals.walBytes, totals.walSyncs, totals.walFailedWrites) = (bytes, syncs, failed) }
            return (bytes - totals.walBytes, syncs - totals.walSyncs, failed - totals.walFailedWrites)
        }
        self.walBytes.add(added.0)
        self.walSyncs.add(added.1)
        self.walFailedWrites.add(added.2)
    }

    func record(_ sink: PostgresRowSink) {
        self.sinkQueuedRows.record(sink.queuedRows)
        let delivered = Int(clamping: sink.deliveredSequence)
        let added = self.totals.withLock { totals in
            defer { totals.sinkDeliveredRows = delivered }
            return delivered - totals.sinkDeliveredRows
        }
        self.sinkDeliveredRows.add(added)
    }

    /// The Prometheus text exposition.
    func text() -> [UInt8] {
        var buffer: [UInt8] = []
        self.registry.emit(into: &buffer)
        return buffer
    }
}

extension Counter {
    /// Adds a running total's growth; a total that did not grow (or was reset) adds nothing.
    fileprivate func add(_ amount: Int) {
        if amount > 0 { self.increment(by: Int64(amount)) }
    }
}

extension Gauge {
    func record(_ value: some BinaryInteger) { self.set(to: Double(value)) }
}

extension PrometheusCollectorRegistry {
    /// A counter named `name` exactly (no unit suffix added), with its `# HELP` text.
    func counter(_ name: String, labels: [(String, String)], help: String) -> Counter {
        self.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A gauge named `name` exactly, with its `# HELP` text.
    func gauge(_ name: String, labels: [(String, String)], help: String) -> Gauge {
        self.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }
}
