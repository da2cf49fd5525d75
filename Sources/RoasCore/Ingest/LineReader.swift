/// Verification and parsing of what the frame decoder finds, in the spec's rejection order:
/// `too_long`, frame problems or `unsigned`, `malformed`, `unknown_type`/`invalid`,
/// `unknown_currency`. The sink (the engine) then checks `late` and `duplicate`.
public struct LineReader<Sink: EventSink>: FrameHandler {
    public var sink: Sink
    var verifier: BatchVerifier
    var parser: EventParser
    let maximumLineLength: Int
    /// `--max-future` in milliseconds: events further ahead than this of their batch's timestamp (of
    /// the wall clock for bare events) are `future`; nil for no check.
    let maximumFuture: Int64?
    /// The timestamp of the batch being read, in milliseconds: the clock its events are checked
    /// against, so that replaying the log decides exactly as on arrival.
    private var batchMilliseconds: Int64 = 0

    public init(
        sink: Sink, verifier: BatchVerifier, parser: EventParser, maximumLineLength: Int, maximumFuture: Int64? = nil
    ) {
        self.sink = sink
        self.verifier = verifier
        self.parser = parser
        self.maximumLineLength = maximumLineLength
        self.maximumFuture = maximumFuture
    }

    public mutating func handle(_ item: FrameItem) {
        switch item {
        case .line(let line, let number):
            let origin = Origin(line: number, batch: nil, raw: line)
            if self.verifier.hasSecrets && !self.verifier.isTrusted {
                self.sink.reject(
                    Rejection(.unsigned, "secrets are configured, so events must come in signed batches"), origin: origin)
            } else {
                self.event(line, origin: origin)
            }
        case .blank:
            self.sink.countBlankLine()
        case .tooLong(let prefix, let number, let batch):
            self.sink.reject(self.tooLongRejection, origin: Origin(line: number, batch: batch, raw: prefix))
        case .rejected(let line, let number, let batch, let reason, let detail, let isHeader):
            if isHeader {
                self.sink.countRejectedBatch(reason)
                self.sink.batchRejected(id: batch, timestamp: nil, rejection: Rejection(reason, detail))
            }
            self.sink.reject(Rejection(reason, detail), origin: Origin(line: number, batch: batch, raw: line))
        case .batch(let header, let headerLine, let payload, let number):
            self.batch(header, headerLine: headerLine, payload: payload, line: number)
        }
    }

    /// Verifies a batch (a frame, or a webhook request whose headers make `header`), then dead-letters
    /// all its lines with the batch's rejection or parses them. Returns the rejection, if any.
    @discardableResult
    public mutating func batch(
        _ header: BatchHeader, headerLine: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, line number: Int
    ) -> Rejection? {
        let (rejection, digest) = self.verifier.verify(header, payload: payload)
        if let rejection {
            self.sink.countRejectedBatch(rejection.reason)
            self.sink.batchRejected(id: header.id, timestamp: header.timestamp, rejection: rejection)
            if payload.count > TruncatedPayload.prefixBytes {
                self.rejectTruncated(rejection, headerLine: headerLine, payload: payload, line: number, batch: header.id)
                return rejection
            }
            self.sink.reject(rejection, origin: Origin(line: number, batch: header.id, raw: headerLine))
            self.forEachPayloadLine(payload, after: number, batch: header.id) { reader, _, origin in
                reader.sink.reject(rejection, origin: origin)
            }
            return rejection
        }
        self.sink.countAcceptedBatch()
        self.sink.batchAccepted(header, headerLine: headerLine, payload: payload, digest: digest)
        let (milliseconds, overflow) = header.timestamp.multipliedReportingOverflow(by: 1000)
        self.batchMilliseconds = overflow ? (header.timestamp < 0 ? .min : .max) : milliseconds
        self.forEachPayloadLine(payload, after: number, batch: header.id) { reader, line, origin in
            reader.event(line, origin: origin)
        }
        return nil
    }

    /// The latest event time `--max-future` lets through for a line: `limit` past the batch's
    /// timestamp, or past the clock for a bare event (not checked again when the log replays a bare
    /// event, which was taken when it arrived); nil for no bound.
    private func futureBound(_ limit: Int64, _ origin: Origin) -> Int64? {
        let reference: Int64
        if origin.isInBatch {
            reference = self.batchMilliseconds
        } else if self.verifier.isTrusted {
            return nil
        } else {
            reference = self.verifier.now().multipliedReportingOverflow(by: 1000).partialValue
        }
        let (bound, overflow) = reference.addingReportingOverflow(limit)
        return overflow ? nil : bound
    }

    static func futureRejection(_ limit: Int64, inBatch: Bool) -> Rejection {
        let whose = inBatch ? "the batch's timestamp" : "the clock"
        return Rejection(.future, "the event time is more than --max-future (\(DurationText.text(limit))) ahead of \(whose)")
    }

    /// The dead letters of a rejected batch with a payload over `TruncatedPayload.prefixBytes`: one
    /// record, the header line's, keeping the payload's prefix, length and SHA-256; its lines are
    /// counted as they would be with a record each (too long, blank, or the batch's reason).
    private mutating func rejectTruncated(
        _ rejection: Rejection, headerLine: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, line number: Int,
        batch: String
    ) {
        var tooLong = 0
        var blank = 0
        var rejected = 0
        FrameDecoder.forEachLine(in: payload) { line, _ in
            if line.count > self.maximumLineLength {
                tooLong += 1
            } else if FrameDecoder.isBlank(line) {
                blank += 1
            } else {
                rejected += 1
            }
        }
        var kept = rejection
        kept.payload = TruncatedPayload(payload: payload, omittedLines: tooLong + blank + rejected)
        self.sink.reject(kept, origin: Origin(line: number, batch: batch, raw: headerLine))
        if rejected > 0 { self.sink.countDeadLetters(rejection.reason, lines: rejected) }
        if tooLong > 0 { self.sink.countDeadLetters(.tooLong, lines: tooLong) }
        if blank > 0 { self.sink.countBlankLines(blank) }
    }

    private var tooLongRejection: Rejection {
        Rejection(.tooLong, "the line is longer than --max-line (\(self.maximumLineLength) bytes)")
    }

    /// Calls `body` with each payload line that is neither too long (dead-lettered) nor blank (counted).
    @inline(__always)
    private mutating func forEachPayloadLine(
        _ payload: UnsafeRawBufferPointer, after header: Int, batch: String,
        _ body: (inout LineReader, UnsafeRawBufferPointer, Origin) -> Void
    ) {
        withUnsafePointer(to: batch) { batchAt in
            FrameDecoder.forEachLine(in: payload) { line, offset in
                let origin = Origin(line: header + 1 + offset, batchAt: batchAt, raw: line)
                if line.count > self.maximumLineLength {
                    let prefix = UnsafeRawBufferPointer(rebasing: line.prefix(FrameDecoder.prefixLength))
                    self.sink.reject(self.tooLongRejection, origin: Origin(line: origin.line, batchAt: batchAt, raw: prefix))
                } else if FrameDecoder.isBlank(line) {
                    self.sink.countBlankLine()
                } else {
                    body(&self, line, origin)
                }
            }
        }
    }

    @inline(__always)
    private mutating func event(_ line: UnsafeRawBufferPointer, origin: Origin) {
        let limit = self.maximumFuture
        let bound = limit.flatMap { self.futureBound($0, origin) }
        // The event's buffers stay valid until the next line is parsed.
        switch self.parser.parse(line, { $0 }) {
        case .success(let event):
            if let bound, let limit, event.time > bound {
                self.sink.reject(LineReader.futureRejection(limit, inBatch: origin.isInBatch), origin: origin)
            } else {
                self.sink.accept(event, origin: origin)
            }
        case .failure(let rejection):
            self.sink.reject(rejection, origin: origin)
        }
    }
}
