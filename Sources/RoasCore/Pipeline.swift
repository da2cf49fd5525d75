/// The whole path from bytes to rows: framing, batch verification, parsing and the engine.
///
/// Feed it chunks of the input stream in order with `consume(_:)`, then call `finish()`; after each
/// call, take what it produced from `output`. It applies the spec's rejection order: `too_long`,
/// frame problems or `unsigned`, `malformed`, `unknown_type`/`invalid`, `unknown_currency` here;
/// `late` and `duplicate` in the engine.
public struct Pipeline {
    private var decoder: FrameDecoder
    private var stage: Stage

    /// - Parameters:
    ///   - secrets: with none, bare events are accepted and batch frames are `bad_signature`; with
    ///     some, events outside a verified batch are `unsigned`.
    ///   - tolerance: seconds a batch timestamp may be from `now`; 0 disables the check.
    ///   - now: wall-clock seconds since the epoch.
    public init(
        configuration: EngineConfiguration, secrets: [WebhookSecret] = [], tolerance: Int64 = 300,
        maximumLineLength: Int = 1 << 20, maximumBatchBytes: Int = 16 << 20,
        now: @escaping () -> Int64
    ) {
        self.decoder = FrameDecoder(maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes)
        self.stage = Stage(
            engine: Engine(configuration: configuration),
            verifier: BatchVerifier(secrets: secrets, tolerance: tolerance, now: now),
            parser: EventParser(currencies: configuration.currencies), maximumLineLength: maximumLineLength)
    }

    public var engine: Engine { self.stage.engine }
    public var statistics: Statistics { self.stage.engine.statistics }

    /// Rows and dead letters produced so far; the caller empties it after writing them.
    public var output: EngineOutput {
        get { self.stage.output }
        _modify { yield &self.stage.output }
    }

    /// Takes the next chunk of the stream.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        self.decoder.append(bytes)
        self.decoder.decode(into: &self.stage, isFinal: false)
        self.stage.engine.countLines(read: self.decoder.lineNumber, bytes: self.decoder.bytesRead)
    }

    public mutating func consume(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { self.consume($0) }
    }

    /// End of the stream: the rest is read as the last line or an incomplete frame, and the engine
    /// applies everything pending and closes every window.
    public mutating func finish() {
        self.decoder.decode(into: &self.stage, isFinal: true)
        self.stage.engine.countLines(read: self.decoder.lineNumber, bytes: self.decoder.bytesRead)
        self.stage.engine.finish(into: &self.stage.output)
    }

    /// Emits live updates of open windows (`--emit-every`).
    public mutating func emitUpdates() {
        self.stage.engine.emitUpdates(into: &self.stage.output)
    }

    public mutating func trackUpdates(_ enabled: Bool) {
        self.stage.engine.trackUpdates(enabled)
    }

    /// Verification, parsing and the engine, fed by the frame decoder.
    struct Stage: FrameHandler {
        var engine: Engine
        var verifier: BatchVerifier
        var parser: EventParser
        let maximumLineLength: Int
        var output = EngineOutput()

        mutating func handle(_ item: FrameItem) {
            switch item {
            case .line(let line, let number):
                let origin = Origin(line: number, batch: nil, raw: line)
                if self.verifier.hasSecrets {
                    self.engine.reject(
                        Rejection(.unsigned, "secrets are configured, so events must come in signed batches"),
                        origin: origin, into: &self.output)
                } else {
                    self.event(line, origin: origin)
                }
            case .blank:
                self.engine.countBlankLine()
            case .tooLong(let prefix, let number, let batch):
                self.engine.reject(
                    Rejection(.tooLong, "the line is longer than --max-line (\(self.maximumLineLength) bytes)"),
                    origin: Origin(line: number, batch: batch, raw: prefix), into: &self.output)
            case .rejected(let line, let number, let batch, let reason, let detail, let isHeader):
                if isHeader { self.engine.countRejectedBatch(reason) }
                self.engine.reject(Rejection(reason, detail), origin: Origin(line: number, batch: batch, raw: line), into: &self.output)
            case .batch(let header, let headerLine, let payload, let number):
                if let rejection = self.verifier.verify(header, payload: payload) {
                    self.rejectFrame(header, headerLine, payload, number, rejection)
                } else {
                    self.engine.countAcceptedBatch()
                    self.forEachPayloadLine(payload, after: number, batch: header.id) { stage, line, origin in
                        stage.event(line, origin: origin)
                    }
                }
            }
        }

        private mutating func tooLong(_ origin: Origin) {
            var origin = origin
            origin.raw = UnsafeRawBufferPointer(rebasing: origin.raw.prefix(FrameDecoder.prefixLength))
            self.engine.reject(
                Rejection(.tooLong, "the line is longer than --max-line (\(self.maximumLineLength) bytes)"),
                origin: origin, into: &self.output)
        }

        private mutating func rejectFrame(
            _ header: BatchHeader, _ headerLine: UnsafeRawBufferPointer, _ payload: UnsafeRawBufferPointer, _ number: Int,
            _ rejection: Rejection
        ) {
            self.engine.countRejectedBatch(rejection.reason)
            self.engine.reject(rejection, origin: Origin(line: number, batch: header.id, raw: headerLine), into: &self.output)
            self.forEachPayloadLine(payload, after: number, batch: header.id) { stage, _, origin in
                stage.engine.reject(rejection, origin: origin, into: &stage.output)
            }
        }

        /// Calls `body` with each payload line that is neither too long (dead-lettered) nor blank (counted).
        @inline(__always)
        private mutating func forEachPayloadLine(
            _ payload: UnsafeRawBufferPointer, after header: Int, batch: String,
            _ body: (inout Stage, UnsafeRawBufferPointer, Origin) -> Void
        ) {
            FrameDecoder.forEachLine(in: payload) { line, offset in
                let origin = Origin(line: header + 1 + offset, batch: batch, raw: line)
                if line.count > self.maximumLineLength {
                    self.tooLong(origin)
                } else if FrameDecoder.isBlank(line) {
                    self.engine.countBlankLine()
                } else {
                    body(&self, line, origin)
                }
            }
        }

        @inline(__always)
        private mutating func event(_ line: UnsafeRawBufferPointer, origin: Origin) {
            let result = self.parser.parse(line) { event in
                self.engine.accept(event, origin: origin, into: &self.output)
            }
            if case .failure(let rejection) = result {
                self.engine.reject(rejection, origin: origin, into: &self.output)
            }
        }
    }
}
