import RoasCore

/// Everything a run needs besides its input and outputs.
public struct RunSettings: Sendable {
    public var configuration: EngineConfiguration
    public var secrets: [WebhookSecret] = []
    /// Seconds; 0 disables the staleness check.
    public var tolerance: Int64 = 300
    public var maximumLineLength = 1 << 20
    public var maximumBatchBytes = 16 << 20
    /// Wall-clock seconds since the epoch, for batch staleness.
    public var now: @Sendable () -> Int64 = { SystemClock.wallClockSeconds() }
    /// `--max-future`, in milliseconds: events further ahead of their batch's timestamp (of
    /// the clock, for bare events) are dead-lettered `future`; nil for no check.
    public var maximumFuture: Int64? = nil
    /// Milliseconds of wall-clock time between live updates; nil for none.
    public var emitEvery: Int64? = nil
    /// 1: everything on the calling thread. 2: framing, signatures and parsing on a second thread,
    /// handing whole parsed chunks to the engine on the calling thread. The rows are the same.
    public var threads = 2
    public var chunkSize = 1 << 20

    public init(configuration: EngineConfiguration) {
        self.configuration = configuration
    }
}

extension ChunkParser {
    /// A parser of the input `settings` describe: its engine options, secrets, tolerance, limits,
    /// `--max-future` and clock (what `roas run` and each `roas serve` connection and request use).
    public init(
        settings: RunSettings, accepted: AcceptedBatches = AcceptedBatches(), capacity: Int = 1 << 21,
        journals: Bool = false
    ) {
        self.init(
            configuration: settings.configuration, secrets: settings.secrets, tolerance: settings.tolerance,
            maximumLineLength: settings.maximumLineLength, maximumBatchBytes: settings.maximumBatchBytes,
            accepted: accepted, capacity: capacity, journals: journals, maximumFuture: settings.maximumFuture,
            now: settings.now)
    }

    /// A parser of `roas serve`'s write-ahead log being replayed: records verified when they
    /// arrived (no staleness check, no signature check, limits only as large as a record can be).
    public init(replaying settings: RunSettings, configuration: EngineConfiguration, accepted: AcceptedBatches) {
        self.init(
            configuration: configuration, secrets: settings.secrets, tolerance: 0,
            maximumLineLength: max(settings.maximumLineLength, 1 << 30),
            maximumBatchBytes: max(settings.maximumBatchBytes, 1 << 30), accepted: accepted, capacity: 1 << 20,
            isTrusted: true, maximumFuture: settings.maximumFuture, now: settings.now)
    }
}
