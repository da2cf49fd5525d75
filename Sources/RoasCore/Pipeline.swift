/// The whole path from bytes to rows on one thread: framing, batch verification, parsing and the engine.
///
/// Feed it chunks of the input stream in order with `consume(_:)`, then call `finish()`; after each
/// call, take what it produced from `output`.
public struct Pipeline {
    private var decoder: FrameDecoder
    private var reader: LineReader<EngineSink>

    /// - Parameters:
    ///   - secrets: with none, bare events are accepted and batch frames are `bad_signature`; with
    ///     some, events outside a verified batch are `unsigned`.
    ///   - tolerance: seconds a batch timestamp may be from `now`; 0 disables the check.
    ///   - maximumFuture: `--max-future` in milliseconds (see `LineReader`); nil for no check.
    ///   - now: wall-clock seconds since the epoch.
    public init(
        configuration: EngineConfiguration, secrets: [WebhookSecret] = [], tolerance: Int64 = 300,
        maximumLineLength: Int = 1 << 20, maximumBatchBytes: Int = 16 << 20, maximumFuture: Int64? = nil,
        now: @escaping @Sendable () -> Int64
    ) {
        self.decoder = FrameDecoder(maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes)
        self.reader = LineReader(
            sink: EngineSink(engine: Engine(configuration: configuration)),
            verifier: BatchVerifier(secrets: secrets, tolerance: tolerance, now: now),
            parser: EventParser(currencies: configuration.currencies), maximumLineLength: maximumLineLength,
            maximumFuture: maximumFuture)
    }

    public var engine: Engine { self.reader.sink.engine }
    public var statistics: Statistics { self.reader.sink.engine.statistics }

    /// Rows and dead letters produced so far; the caller empties it after writing them.
    public var output: EngineOutput {
        get { self.reader.sink.output }
        _modify { yield &self.reader.sink.output }
    }

    /// Takes the next chunk of the stream.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        self.decoder.decode(appending: bytes, into: &self.reader, isFinal: false)
        self.reader.sink.engine.countLines(read: self.decoder.lineNumber, bytes: self.decoder.bytesRead)
        self.reader.sink.engine.flushPartitions()
    }

    public mutating func consume(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.consume($0) }
    }

    /// End of the stream: the rest is read as the last line or an incomplete frame, and the engine
    /// applies everything pending and closes every window.
    public mutating func finish() {
        self.decoder.decode(into: &self.reader, isFinal: true)
        self.reader.sink.engine.countLines(read: self.decoder.lineNumber, bytes: self.decoder.bytesRead)
        self.reader.sink.engine.finish(into: &self.reader.sink.output)
    }

    /// Emits live updates of open windows (`--emit-every`).
    public mutating func emitUpdates() {
        self.reader.sink.engine.emitUpdates(into: &self.reader.sink.output)
    }

    public mutating func trackUpdates(_ enabled: Bool) {
        self.reader.sink.engine.trackUpdates(enabled)
    }
}
