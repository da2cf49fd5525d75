import FuzzSupport

// Fuzz target `frames`: a byte stream through `FrameDecoder` (lines, blank lines, too-long lines,
// batch frames and their headers) and `ChunkParser` (verification and parsing, as `roas run
// --threads 2` and `roas serve` use it), fed once whole, once cut where the input says, and, when
// short, one byte at a time. Checks:
// - every way of cutting gives the same items (lines, reasons, details, batch ids, headers,
//   payloads, line numbers), the same parsed entries, batch outcomes and journal, and the same
//   line and byte counts;
// - items are numbered one line after another, a frame taking its header and payload lines;
//   lines have no newline and respect --max-line; a frame's payload has the header's length, ends
//   in a newline and respects --max-batch, and its header line reads back as that header;
// - the accounting: events + rejected lines + blank lines + accepted batch headers = lines read;
// - a webhook request (`ChunkParser.batch`) with the stream as its body accounts for its lines too.
//
// Layout: flags, --max-line and --max-batch choices, the number of cuts (`& 15`), two bytes per
// cut, then the stream. Flags: 1 a secret (the sample's) is configured, 2 keep raw lines,
// 4 journal, 8 also send the stream as a webhook body, 16 sign that body.
@testable import RoasCore

let now: @Sendable () -> Int64 = { 1_795_255_200 }
let lineLimits = [1 << 20, 8, 16, 64, 100, 1023, 1024, 1025, 4096]
let batchLimits = [16 << 20, 1, 16, 100, 1000, 4096]

enum Item: Equatable {
    case line([UInt8], Int)
    case blank(Int)
    case tooLong([UInt8], Int, String?)
    case rejected([UInt8], Int, String?, Reason, String, Bool)
    case batch(BatchHeader, [UInt8], [UInt8], Int)
}

struct Recorder: FrameHandler {
    var items: [Item] = []

    mutating func handle(_ item: FrameItem) {
        switch item {
        case .line(let bytes, let number): self.items.append(.line(Array(bytes), number))
        case .blank(let number): self.items.append(.blank(number))
        case .tooLong(let prefix, let number, let batch): self.items.append(.tooLong(Array(prefix), number, batch))
        case .rejected(let bytes, let number, let batch, let reason, let detail, let isHeader):
            self.items.append(.rejected(Array(bytes), number, batch, reason, detail, isHeader))
        case .batch(let header, let line, let payload, let number):
            self.items.append(.batch(header, Array(line), Array(payload), number))
        }
    }
}

struct Decoded: Equatable {
    var items: [Item]
    var lines: Int
    var bytes: Int
}

func decode(_ stream: UnsafeRawBufferPointer, _ ranges: [Range<Int>], maximumLine: Int, maximumBatch: Int) -> Decoded {
    var decoder = FrameDecoder(maximumLineLength: maximumLine, maximumBatchBytes: maximumBatch)
    var recorder = Recorder()
    for range in ranges {
        decoder.append(UnsafeRawBufferPointer(rebasing: stream[range]))
        decoder.decode(into: &recorder)
    }
    decoder.decode(into: &recorder, isFinal: true)
    require(decoder.bufferedBytes == 0, "\(decoder.bufferedBytes) bytes left in the decoder at the end")
    return Decoded(items: recorder.items, lines: decoder.lineNumber, bytes: decoder.bytesRead)
}

/// A parsed entry with its chunk's indices resolved, comparable across chunkings.
enum Entry: Equatable {
    case event(EventKind, Int64, Int64, Int32, Int, String?, [[UInt8]])
    case reject(Reason, String, Int, String?, [UInt8]?)
    case blank
    case acceptedBatch
    case rejectedBatch(Reason)
    /// Lines counted without a record each (blank lines when the reason is nil).
    case counted(Reason?, Int)
}

struct Parsed: Equatable {
    var entries: [Entry] = []
    var outcomes: [BatchOutcome] = []
    var journal: [UInt8] = []
    var lines = 0
    var bytes = 0

    mutating func add(_ chunk: ParsedChunk) {
        func field(_ field: ParsedChunk.Field) -> [UInt8]? {
            field.count < 0
                ? nil : chunk.bytes.withUnsafeBytes { Array($0[Int(field.offset)..<Int(field.offset + field.count)]) }
        }
        func batch(_ index: Int32) -> String? { index < 0 ? nil : chunk.batches[Int(index)] }
        var events = chunk.events.makeIterator()
        var rejects = chunk.rejects.makeIterator()
        for entry in chunk.entries {
            switch entry {
            case .event:
                let e = events.next()!
                let fields = [e.id, e.user, e.linked, e.creator, e.campaign, e.order, e.raw].map { field($0) ?? [0xFF] }
                self.entries.append(.event(e.kind, e.time, e.amount, e.currency, e.line, batch(e.batch), fields))
            case .reject:
                let r = rejects.next()!
                self.entries.append(.reject(r.rejection.reason, r.rejection.detail, r.line, batch(r.batch), field(r.raw)))
            case .blank: self.entries.append(.blank)
            case .acceptedBatch: self.entries.append(.acceptedBatch)
            case .rejectedBatch(let reason): self.entries.append(.rejectedBatch(reason))
            case .counted(let reason, let lines): self.entries.append(.counted(reason, lines))
            }
        }
        self.outcomes += chunk.batchOutcomes
        self.journal += chunk.journal
        self.lines += chunk.linesRead
        self.bytes += chunk.bytesRead
    }

    /// Lines accounted for: events, rejected lines, blank lines and accepted batch headers, and the
    /// lines of a big rejected batch counted without a record each.
    var accounted: Int {
        self.entries.reduce(0) { count, entry in
            switch entry {
            case .event, .reject, .blank, .acceptedBatch: count + 1
            case .rejectedBatch: count
            case .counted(_, let lines): count + lines
            }
        }
    }
}

struct Options {
    var secrets: [WebhookSecret]
    var configuration: EngineConfiguration
    var journals: Bool
    var maximumLine: Int
    var maximumBatch: Int

    func parser() -> ChunkParser {
        ChunkParser(
            configuration: self.configuration, secrets: self.secrets, tolerance: 0, maximumLineLength: self.maximumLine,
            maximumBatchBytes: self.maximumBatch, capacity: 4096, journals: self.journals, now: now)
    }
}

func parse(_ stream: UnsafeRawBufferPointer, _ ranges: [Range<Int>], _ options: Options) -> Parsed {
    var parser = options.parser()
    var parsed = Parsed()
    for range in ranges { parsed.add(parser.consume(UnsafeRawBufferPointer(rebasing: stream[range]))) }
    parsed.add(parser.finish())
    return parsed
}

func checkItems(_ decoded: Decoded, _ stream: UnsafeRawBufferPointer, maximumLine: Int, maximumBatch: Int) {
    var next = 1
    for item in decoded.items {
        switch item {
        case .line(let bytes, let number):
            require(number == next, "line \(number), expected \(next)")
            require(!bytes.contains(0x0A) && bytes.count <= maximumLine, "a line item holds a newline or is too long")
            require(!bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 }, "a blank line reported as a line")
            next += 1
        case .blank(let number):
            require(number == next, "blank line \(number), expected \(next)")
            next += 1
        case .tooLong(let prefix, let number, _):
            require(number == next, "too-long line \(number), expected \(next)")
            require(prefix.count <= FrameDecoder.prefixLength && !prefix.contains(0x0A), "a too-long prefix")
            next += 1
        case .rejected(let bytes, let number, _, let reason, _, let isHeader):
            require(number == next, "rejected line \(number), expected \(next)")
            require(reason == .badFrame, "the decoder rejects with \(reason)")
            require(!bytes.contains(0x0A), "a rejected line holds a newline")
            if isHeader {
                require(bytes.withUnsafeBytes { BatchHeader.looksLikeHeader($0) }, "a rejected header that is no header")
            }
            next += 1
        case .batch(let header, let line, let payload, let number):
            require(number == next, "batch at line \(number), expected \(next)")
            require(payload.count == header.bytes && header.bytes > 0 && header.bytes <= maximumBatch, "a frame's payload length")
            require(payload.last == 0x0A, "a frame's payload does not end in a newline")
            require(!line.contains(0x0A) && line.count <= maximumLine, "a frame's header line")
            guard case .header(let again) = line.withUnsafeBytes({ BatchHeader.parse($0) }), again == header else {
                fail("a frame's header line does not read back as its header")
            }
            require(!header.id.isEmpty && header.id.utf8.count <= 256 && !header.id.contains("."), "a frame's id")
            next += 1 + payload.withUnsafeBytes { FrameDecoder.countLines($0) }
        }
    }
    require(decoded.lines == next - 1, "the decoder counts \(decoded.lines) lines, its items \(next - 1)")
    require(decoded.bytes == stream.count, "the decoder read \(decoded.bytes) of \(stream.count) bytes")
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var input = FuzzInput(data, size)
    let flags = input.byte()
    let maximumLine = lineLimits[Int(input.byte()) % lineLimits.count]
    let maximumBatch = batchLimits[Int(input.byte()) % batchLimits.count]
    let cutCount = Int(input.byte() & 15)
    let cutBytes = input.bytes(cutCount * 2)
    let stream = input.rest()
    var cutInput = FuzzInput(cutBytes)
    let cuts = cutPositions(&cutInput, count: cutCount, length: stream.count)

    var configuration = EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: Sample.rates))
    configuration.keepsDeadLetters = flags & 2 != 0
    let options = Options(
        secrets: flags & 1 != 0 ? [Sample.secret] : [], configuration: configuration, journals: flags & 4 != 0,
        maximumLine: maximumLine, maximumBatch: maximumBatch)

    // The frame decoder.
    let whole = decode(stream, [0..<stream.count], maximumLine: maximumLine, maximumBatch: maximumBatch)
    checkItems(whole, stream, maximumLine: maximumLine, maximumBatch: maximumBatch)
    let ranges = chunks(length: stream.count, cuts: cuts)
    let cut = decode(stream, ranges, maximumLine: maximumLine, maximumBatch: maximumBatch)
    require(cut == whole, "the decoder's items depend on the cuts \(cuts)")
    var byteRanges: [Range<Int>] = []
    if stream.count <= 600 {
        byteRanges = (0..<stream.count).map { $0..<($0 + 1) }
        let bytewise = decode(stream, byteRanges, maximumLine: maximumLine, maximumBatch: maximumBatch)
        require(bytewise == whole, "the decoder's items differ when fed one byte at a time")
    }

    // The chunk parser.
    let parsedWhole = parse(stream, [0..<stream.count], options)
    require(parsedWhole.lines == whole.lines && parsedWhole.bytes == stream.count, "the parser's line and byte counts")
    require(parsedWhole.accounted == parsedWhole.lines, "\(parsedWhole.accounted) lines accounted for, \(parsedWhole.lines) read")
    let parsedCut = parse(stream, ranges, options)
    require(parsedCut == parsedWhole, "the parsed entries depend on the cuts \(cuts)")
    if !byteRanges.isEmpty && stream.count <= 200 {
        require(parse(stream, byteRanges, options) == parsedWhole, "the parsed entries differ when fed one byte at a time")
    }

    // The stream as the body of one webhook request.
    if flags & 8 != 0 {
        var parser = options.parser()
        let id = "hook-\(stream.count)"
        let signature =
            flags & 16 != 0
            ? WebhookSigner(secrets: [Sample.secret]).signature(id: id, timestamp: now(), body: stream) : "v1,AAAA"
        let header = BatchHeader(id: id, timestamp: now(), signature: signature, bytes: stream.count)
        let (rejection, chunk) = parser.batch(header, payload: stream)
        var parsed = Parsed()
        parsed.add(chunk)
        require(parsed.accounted == parsed.lines, "webhook: \(parsed.accounted) lines accounted for, \(parsed.lines) read")
        require(parsed.outcomes.count == 1 && parsed.outcomes[0].rejection == rejection, "webhook: its outcome")
        if flags & 1 != 0 && flags & 16 != 0 {
            require(rejection == nil, "webhook: a correctly signed body is rejected: \(rejection!)")
        }
    }
    return 0
}

fuzzMain(fuzzOne)
