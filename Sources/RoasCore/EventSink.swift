/// Where verified and parsed lines go: the engine directly, or a batch handed to another thread.
public protocol EventSink {
    /// A parsed event that passed every check up to `unknown_currency`.
    mutating func accept(_ event: ParsedEvent, origin: Origin)
    mutating func reject(_ rejection: Rejection, origin: Origin)
    mutating func countBlankLine()
    mutating func countAcceptedBatch()
    mutating func countRejectedBatch(_ reason: Reason)
    /// `lines` lines rejected with `reason` that get no record of their own: the payload lines of a
    /// rejected batch whose header line's record keeps a `TruncatedPayload` instead.
    mutating func countDeadLetters(_ reason: Reason, lines: Int)
    /// `lines` blank lines at once (in such a payload).
    mutating func countBlankLines(_ lines: Int)
    /// A batch passed verification; its lines follow. `headerLine` is the frame's header line (or
    /// the webhook's headers as one) and `payload` all of its bytes.
    /// `digest` is `AcceptedBatches.digest(of: payload)`, as the verifier computed it.
    mutating func batchAccepted(
        _ header: BatchHeader, headerLine: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, digest: UInt64)
    /// A batch (a frame or a webhook request) was rejected whole; `id` is nil when unreadable.
    mutating func batchRejected(id: String?, timestamp: Int64?, rejection: Rejection)
}

extension EventSink {
    public mutating func batchAccepted(
        _ header: BatchHeader, headerLine: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, digest: UInt64
    ) {}
    public mutating func batchRejected(id: String?, timestamp: Int64?, rejection: Rejection) {}
}

/// The engine as an `EventSink`, with what it has produced and not yet handed on.
public struct EngineSink: EventSink {
    public var engine: Engine
    public var output = EngineOutput()

    public init(engine: Engine) {
        self.engine = engine
    }

    @inline(__always)
    public mutating func accept(_ event: ParsedEvent, origin: Origin) {
        self.engine.accept(event, origin: origin, into: &self.output)
    }

    @inline(__always)
    mutating func accept(_ event: ParsedEvent, hashes: Engine.EventHashes, origin: Origin) {
        self.engine.accept(event, hashes: hashes, origin: origin, into: &self.output)
    }

    public mutating func reject(_ rejection: Rejection, origin: Origin) {
        self.engine.reject(rejection, origin: origin, into: &self.output)
    }

    /// `Engine.advanceIdle(to:into:)` into this sink's output.
    public mutating func advanceIdle(to time: Int64) {
        self.engine.advanceIdle(to: time, into: &self.output)
    }

    /// `Engine.emitUpdates(into:)` into this sink's output.
    public mutating func emitUpdates() {
        self.engine.emitUpdates(into: &self.output)
    }

    /// `Engine.finish(into:)` into this sink's output.
    public mutating func finish() {
        self.engine.finish(into: &self.output)
    }

    public mutating func countBlankLine() { self.engine.countBlankLine() }
    public mutating func countAcceptedBatch() { self.engine.countAcceptedBatch() }
    public mutating func countRejectedBatch(_ reason: Reason) { self.engine.countRejectedBatch(reason) }
    public mutating func countDeadLetters(_ reason: Reason, lines: Int) {
        self.engine.statistics.deadLetters[reason.index] += lines
    }
    public mutating func countBlankLines(_ lines: Int) { self.engine.statistics.blankLines += lines }
}
