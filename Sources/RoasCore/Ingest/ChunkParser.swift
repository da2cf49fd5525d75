/// The reading side of an engine that runs elsewhere: framing, batch verification and parsing of one
/// input stream into `ParsedChunk`s, which the engine's side applies with `EngineSink.replay(_:)`.
///
/// `roas run --threads 2` uses one for stdin on its reading thread; `roas serve` uses one per TCP
/// connection and one per webhook request, all sharing the `AcceptedBatches` of the engine.
public struct ChunkParser {
    private var decoder: FrameDecoder
    private var lines: LineReader<ChunkRecorder>
    private var takenLines = 0
    private var takenBytes = 0

    /// - Parameters:
    ///   - keepsRawLines: copy raw lines into the chunks, for dead letters.
    ///   - capacity: bytes to reserve for a chunk's copied fields (the entries get a sixteenth of it).
    ///   - journals: fill each chunk's `journal` (the write-ahead log of `roas serve --data-dir`).
    ///   - isTrusted: the input is such a journal being replayed (see `BatchVerifier.isTrusted`).
    public init(
        configuration: EngineConfiguration, secrets: [WebhookSecret], tolerance: Int64,
        maximumLineLength: Int, maximumBatchBytes: Int, accepted: AcceptedBatches = AcceptedBatches(),
        capacity: Int = 1 << 21, journals: Bool = false, isTrusted: Bool = false, maximumFuture: Int64? = nil,
        now: @escaping @Sendable () -> Int64
    ) {
        self.decoder = FrameDecoder(maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes)
        self.lines = LineReader(
            sink: ChunkRecorder(keepsRawLines: configuration.keepsDeadLetters, journals: journals, capacity: capacity),
            verifier: BatchVerifier(
                secrets: secrets, tolerance: tolerance, accepted: accepted, isTrusted: isTrusted, now: now),
            parser: EventParser(currencies: configuration.currencies), maximumLineLength: maximumLineLength,
            maximumFuture: maximumFuture)
    }

    /// Numbers the next line `line + 1`, as if `line` lines had been read before (`roas worker`
    /// going on from a checkpoint: its dead letters then name the lines an uninterrupted one would).
    public mutating func continueNumbering(after line: Int) {
        self.decoder.continueNumbering(after: line)
        self.takenLines = line
    }

    /// Bytes read and held for the rest of a line or frame.
    public var bufferedBytes: Int { self.decoder.bufferedBytes }

    /// The memory held for them (`FrameDecoder.heldBytes`), for `roas serve --max-inflight-bytes`.
    public var heldBytes: Int { self.decoder.heldBytes }

    /// Parses the next chunk of the stream; a frame or line cut by the chunk's end waits for the next.
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> ParsedChunk {
        self.decoder.decode(appending: bytes, into: &self.lines, isFinal: false)
        return self.take()
    }

    /// End of the stream: the rest is read as the last line, or dead-lettered as an incomplete frame.
    public mutating func finish() -> ParsedChunk {
        self.decoder.decode(into: &self.lines, isFinal: true)
        return self.take()
    }

    /// One webhook request: its Standard Webhooks headers make `header` and its body is the payload,
    /// numbered as line 0 (the header) and lines 1... Returns the batch's rejection, if any.
    public mutating func batch(_ header: BatchHeader, payload: UnsafeRawBufferPointer) -> (Rejection?, ParsedChunk) {
        let headerLine = Array(header.json.utf8)
        let rejection = headerLine.withUnsafeBytes { line in
            self.lines.batch(header, headerLine: line, payload: payload, line: 0)
        }
        var count = 1
        FrameDecoder.forEachLine(in: payload) { _, _ in count += 1 }
        var chunk = self.take()
        chunk.linesRead += count
        chunk.bytesRead += payload.count
        return (rejection, chunk)
    }

    private mutating func take() -> ParsedChunk {
        let chunk = self.lines.sink.take(
            linesRead: self.decoder.lineNumber - self.takenLines, bytesRead: self.decoder.bytesRead - self.takenBytes)
        self.takenLines = self.decoder.lineNumber
        self.takenBytes = self.decoder.bytesRead
        return chunk
    }
}
