import Metrics
import Prometheus
import RoasCore

/// The metrics of `GET /metrics`, through swift-metrics into this server's own Prometheus registry
/// (not the process-wide `MetricsSystem`, so that several servers can live in one process, as in tests).
final class ServeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let acceptedEvents: [Metrics.Counter]
    private let deadLetters: [Metrics.Counter]
    private let acceptedBatches: Metrics.Counter
    private let rejectedBatches: [Metrics.Counter]
    private let lateEvents: Metrics.Counter
    private let linesRead: Metrics.Counter
    private let bytesRead: Metrics.Counter
    let webhookRequests: [Int: Metrics.Counter]
    let watermarkLag: Metrics.Gauge
    let eventsPerSecond: Metrics.Gauge
    let openWindows: Metrics.Gauge
    let identities: Metrics.Gauge
    let touches: Metrics.Gauge
    let pending: Metrics.Gauge
    let orders: Metrics.Gauge
    let dedupIDs: Metrics.Gauge
    let connections: Metrics.Gauge
    let queuedChunks: Metrics.Gauge
    let streamSubscribers: Metrics.Gauge
    let streamSubscribersDropped: Metrics.Counter
    let httpConnections: Metrics.Gauge
    let httpConnectionsRefused: Metrics.Counter
    let inflightBytes: Metrics.Gauge
    let checkpoints: Metrics.Counter
    let checkpointSeconds: Metrics.Gauge
    let checkpointBytes: Metrics.Gauge
    private let walBytes: Metrics.Gauge
    private let walSyncs: Metrics.Gauge
    private let walFailedWrites: Metrics.Gauge
    private let sinkQueuedRows: Metrics.Gauge
    private let sinkDeliveredRows: Metrics.Gauge

    init() {
        let factory = PrometheusMetricsFactory(registry: self.registry)
        self.acceptedEvents = EventKind.allCases.map {
            Metrics.Counter(label: "roas_events_accepted_total", dimensions: [("type", $0.name)], factory: factory)
        }
        self.deadLetters = Reason.allCases.map {
            Metrics.Counter(label: "roas_dead_letters_total", dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        self.acceptedBatches = Metrics.Counter(label: "roas_batches_accepted_total", factory: factory)
        self.rejectedBatches = Reason.allCases.map {
            Metrics.Counter(label: "roas_batches_rejected_total", dimensions: [("reason", $0.rawValue)], factory: factory)
        }
        self.lateEvents = Metrics.Counter(label: "roas_late_events_total", factory: factory)
        self.linesRead = Metrics.Counter(label: "roas_lines_read_total", factory: factory)
        self.bytesRead = Metrics.Counter(label: "roas_bytes_read_total", factory: factory)
        self.webhookRequests = Dictionary(
            uniqueKeysWithValues: [200, 202, 400, 401, 413, 503].map {
                ($0, Metrics.Counter(label: "roas_webhook_requests_total", dimensions: [("status", "\($0)")], factory: factory))
            })
        self.watermarkLag = Metrics.Gauge(label: "roas_watermark_lag_seconds", factory: factory)
        self.eventsPerSecond = Metrics.Gauge(label: "roas_events_per_second", factory: factory)
        self.openWindows = Metrics.Gauge(label: "roas_open_window_panes", factory: factory)
        self.identities = Metrics.Gauge(label: "roas_state_identities", factory: factory)
        self.touches = Metrics.Gauge(label: "roas_state_touches", factory: factory)
        self.pending = Metrics.Gauge(label: "roas_state_pending_events", factory: factory)
        self.orders = Metrics.Gauge(label: "roas_state_orders", factory: factory)
        self.dedupIDs = Metrics.Gauge(label: "roas_state_dedup_ids", factory: factory)
        self.connections = Metrics.Gauge(label: "roas_tcp_connections", factory: factory)
        self.queuedChunks = Metrics.Gauge(label: "roas_queued_chunks", factory: factory)
        self.streamSubscribers = Metrics.Gauge(label: "roas_stream_subscribers", factory: factory)
        self.streamSubscribersDropped = Metrics.Counter(label: "roas_stream_subscribers_dropped_total", factory: factory)
        self.httpConnections = Metrics.Gauge(label: "roas_http_connections", factory: factory)
        self.httpConnectionsRefused = Metrics.Counter(label: "roas_http_connections_refused_total", factory: factory)
        self.inflightBytes = Metrics.Gauge(label: "roas_inflight_bytes", factory: factory)
        self.checkpoints = Metrics.Counter(label: "roas_checkpoints_total", factory: factory)
        self.checkpointSeconds = Metrics.Gauge(label: "roas_checkpoint_last_seconds", factory: factory)
        self.checkpointBytes = Metrics.Gauge(label: "roas_checkpoint_last_bytes", factory: factory)
        self.walBytes = Metrics.Gauge(label: "roas_wal_written_bytes", factory: factory)
        self.walSyncs = Metrics.Gauge(label: "roas_wal_syncs", factory: factory)
        self.walFailedWrites = Metrics.Gauge(label: "roas_wal_failed_writes", factory: factory)
        self.sinkQueuedRows = Metrics.Gauge(label: "roas_sink_queued_rows", factory: factory)
        self.sinkDeliveredRows = Metrics.Gauge(label: "roas_sink_delivered_rows", factory: factory)
    }

    /// Adds what changed between two snapshots of the engine's counts.
    func record(from old: Statistics, to new: Statistics) {
        for (index, counter) in self.acceptedEvents.enumerated() where new.acceptedEvents[index] > old.acceptedEvents[index] {
            counter.increment(by: new.acceptedEvents[index] - old.acceptedEvents[index])
        }
        for (index, counter) in self.deadLetters.enumerated() where new.deadLetters[index] > old.deadLetters[index] {
            counter.increment(by: new.deadLetters[index] - old.deadLetters[index])
        }
        for (index, counter) in self.rejectedBatches.enumerated()
        where new.rejectedBatches[index] > old.rejectedBatches[index] {
            counter.increment(by: new.rejectedBatches[index] - old.rejectedBatches[index])
        }
        if new.acceptedBatches > old.acceptedBatches { self.acceptedBatches.increment(by: new.acceptedBatches - old.acceptedBatches) }
        let late = new.deadLetters(.late) - old.deadLetters(.late)
        if late > 0 { self.lateEvents.increment(by: late) }
        if new.linesRead > old.linesRead { self.linesRead.increment(by: new.linesRead - old.linesRead) }
        if new.bytesRead > old.bytesRead { self.bytesRead.increment(by: new.bytesRead - old.bytesRead) }
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
        self.walBytes.record(log.bytesWritten)
        self.walSyncs.record(log.syncs)
        self.walFailedWrites.record(log.failedGroups)
    }

    func record(_ sink: PostgresRowSink) {
        self.sinkQueuedRows.record(sink.queuedRows)
        self.sinkDeliveredRows.record(sink.deliveredSequence)
    }

    /// The Prometheus text exposition.
    func text() -> [UInt8] {
        var buffer: [UInt8] = []
        self.registry.emit(into: &buffer)
        return buffer
    }
}
