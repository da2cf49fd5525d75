import Foundation

/// Where an event goes on a partitioned log (`roas serve --nats`): views, clicks and sign-ups by the
/// user who sent them, purchases and refunds by order (a refund carries no user; this keeps
/// `duplicate_order` and `over_refund` on one partition), spend, engagement and creator profiles by
/// creator, and links to every partition. A line that is not an event (or, split from a parsed
/// chunk, that its parser refused) goes to partition 0, so that the part holding it still gets its
/// dead letter.
///
/// The partition is a stable hash of the key, the same in every process: the log's partitions are
/// not the touch partitions of one engine (which follow the order users were first seen).
public enum LogRoute: Equatable, Sendable {
    case partition(Int)
    case every

    /// The route of `line` among `partitions` (a power of two).
    public static func of(_ line: UnsafeRawBufferPointer, parser: EventParser, partitions: Int) -> LogRoute {
        let routed = parser.parse(line) { event -> LogRoute in
            let key: UnsafeRawBufferPointer
            switch Key(event.kind) {
            case .user: key = event.user
            case .order: key = event.order
            case .creator: key = event.creator
            case nil: return .every
            }
            return .partition(LogRoute.partition(ofKey: key, partitions: partitions))
        }
        if case .success(let route) = routed { return route }
        return .partition(0)
    }

    /// The field an event of a kind is routed by; nil for a link (every partition).
    enum Key {
        case user, order, creator

        init?(_ kind: EventKind) {
            switch kind {
            case .view, .click, .signup: self = .user
            case .purchase, .refund: self = .order
            case .spend, .engagement, .creator: self = .creator
            case .link: return nil
            }
        }
    }

    /// The partition of a key (a user, an order or a creator) among `partitions` (a power of two).
    public static func partition(ofKey key: UnsafeRawBufferPointer, partitions: Int) -> Int {
        Int(truncatingIfNeeded: ByteHash.hash(key, seed: LogRoute.seed) & UInt64(partitions - 1))
    }

    /// Not `Interner.hash`'s seed: a partition's users still spread over its interner's slots.
    static let seed: UInt64 = 0x5bd1_e995_c6a4_a793
}

/// One partition's share of a signed batch, the unit `roas serve --nats` puts on the log: a header
/// line naming the batch (its header as a frame's), the partition, how many lines the batch's
/// payload has and which of them follow, then those lines.
///
/// ```text
/// {"part":{"batch":{"id":"b-1","timestamp":1764000000,"signature":"v1,…","bytes":812},"partition":3,"partitions":16,"lines":9,"take":[0,4,7]}}
/// {"type":"view",…}
/// ```
///
/// Every line of the batch is in at least one part (a link in all of them), so the parts of a batch
/// give back its payload line by line (`LogPartAssembler`). A part too large for one message of the
/// log is cut into pieces (`cut(maximumBytes:)`), each with some of its lines and `"piece":[k,n]`.
/// Schema: schemas/log-part.schema.json.
public struct LogPart: Sendable, Equatable {
    // Read-only outside: every way of making a part (`init`, `split`, `init(decoding:)`) checks that
    // `take` and the lines of `body` agree, so `LogPartAssembler` need not count them again.
    public internal(set) var header: BatchHeader
    public internal(set) var partition: Int
    public internal(set) var partitions: Int
    /// Lines in the batch's payload.
    public internal(set) var lineCount: Int
    /// The payload's line numbers (from 0) this part holds, increasing.
    public internal(set) var take: [Int]
    /// Those lines, each ending in a newline: one buffer rather than an array per line.
    public internal(set) var body: [UInt8]
    /// Which piece of its partition's share this is, from 0, and of how many (1: the whole share).
    public internal(set) var piece: Int = 0
    public internal(set) var pieces: Int = 1

    /// A part holding `lines`, the payload's lines numbered `take`.
    /// - Throws: `Invalid` when they are not one line per number, increasing and within `lineCount`,
    ///   or `partition` is not one of `partitions`.
    public init(header: BatchHeader, partition: Int, partitions: Int, lineCount: Int, take: [Int], lines: [[UInt8]]) throws {
        guard (0..<partitions).contains(partition), take.count == lines.count, zip(take, take.dropFirst()).allSatisfy({ $0 < $1 }),
            take.allSatisfy({ (0..<lineCount).contains($0) }), lines.allSatisfy({ !$0.contains(0x0A) })
        else { throw Invalid("part \(partition) of batch \(header.id): its lines and take do not match") }
        self.init(empty: header, partition: partition, partitions: partitions)
        self.lineCount = lineCount
        self.take = take
        for line in lines { self.append(line) }
    }

    /// A part without lines (`split` fills it).
    init(empty header: BatchHeader, partition: Int, partitions: Int) {
        self.header = header
        self.partition = partition
        self.partitions = partitions
        self.lineCount = 0
        self.take = []
        self.body = []
    }

    /// The lines of `body`, without their newlines.
    public var lines: [[UInt8]] {
        var lines: [[UInt8]] = []
        _ = self.body.withUnsafeBytes { body in
            LogPart.forEachLine(in: body) { lines.append(Array(body[$0])) }
        }
        return lines
    }

    @inline(__always)
    mutating func append(_ line: some Collection<UInt8>) {
        self.body.append(contentsOf: line)
        self.body.append(0x0A)
    }

    /// Calls `body` with the range of each newline-ended line of `bytes`; returns false when the
    /// last line has no newline.
    @discardableResult
    static func forEachLine(in bytes: UnsafeRawBufferPointer, _ body: (Range<Int>) -> Void) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var position = 0
        while position < bytes.count {
            guard let found = memchr(base + position, 0x0A, bytes.count - position) else { return false }
            let stop = base.distance(to: UnsafeRawPointer(found))
            body(position..<stop)
            position = stop + 1
        }
        return true
    }

    /// The log's deduplication id of this part: `<batch id>/<partition>` (a batch id holds no '.'),
    /// and `<batch id>/<partition>-<piece>` for a piece of a cut one.
    public var logID: String {
        self.pieces == 1 ? "\(self.header.id)/\(self.partition)" : "\(self.header.id)/\(self.partition)-\(self.piece)"
    }

    /// Largest number of pieces a part may be cut into (as many as the lines a batch may have).
    static let maximumPieces = 1 << 24

    /// This part as pieces whose encodings (`encoded`) are at most about `maximumBytes` each (a
    /// line larger than that makes a piece alone), or itself when it fits. The pieces hold its lines
    /// in order; `LogPartAssembler` waits for all of them.
    public func cut(maximumBytes: Int) -> [LogPart] {
        let headerBytes = self.header.json.utf8.count + 120
        guard self.pieces == 1, headerBytes + self.take.count * 9 + self.body.count > maximumBytes else { return [self] }
        var pieces: [LogPart] = []
        var current = LogPart(empty: self.header, partition: self.partition, partitions: self.partitions)
        current.lineCount = self.lineCount
        var bytes = headerBytes
        var next = 0
        self.body.withUnsafeBytes { body in
            _ = LogPart.forEachLine(in: body) { range in
                let cost = range.count + 1 + 9
                if !current.take.isEmpty && bytes + cost > maximumBytes {
                    pieces.append(current)
                    current.take = []
                    current.body = []
                    bytes = headerBytes
                }
                current.take.append(self.take[next])
                current.append(body[range])
                bytes += cost
                next += 1
            }
        }
        pieces.append(current)
        for index in pieces.indices {
            pieces[index].piece = index
            pieces[index].pieces = pieces.count
        }
        return pieces
    }

    /// A message of the log: the parts of one or more batches that go to one partition, one after
    /// another (`parts(decoding:)` reads them back).
    public struct Message: Sendable, Equatable {
        public var partition: Int
        /// The log's deduplication id: the part's `logID` when it holds one part, and for several
        /// `<first batch id>/<partition>.<parts>.<16 hex digits: a hash of every batch id>` (a batch
        /// id holds no '.'), so that the same batches sent again in the same message are
        /// recognised, and other messages are not taken for them.
        public var id: String
        /// The parts' encodings (`encoded`), one after another.
        public var bytes: [UInt8]
    }

    /// `parts` (of batches in their order, each batch's parts of `partitions`) as messages: for each
    /// partition in turn, its parts in the order given, in as few messages as fit `maximumBytes`
    /// (a part larger than that alone). A reader puts each batch together when its last part
    /// comes, so the batches are still whole in the order given.
    public static func messages(of parts: [LogPart], partitions: Int, maximumBytes: Int) -> [Message] {
        var messages: [Message] = []
        self.forEachMessage(of: parts, partitions: partitions, maximumBytes: maximumBytes) { partition, id, bytes in
            messages.append(Message(partition: partition, id: id, bytes: Array(bytes)))
        }
        return messages
    }

    /// `messages(of:partitions:maximumBytes:)` one at a time, each built in one buffer kept from one
    /// message to the next and handed to `body` (its partition, id and bytes) only while `body` runs:
    /// the edge compresses each from there, with no array of about half a megabyte made and freed
    /// per message.
    public static func forEachMessage(
        of parts: [LogPart], partitions: Int, maximumBytes: Int,
        _ body: (_ partition: Int, _ id: String, _ bytes: UnsafeRawBufferPointer) -> Void
    ) {
        var byPartition: [[LogPart]] = Array(repeating: [], count: partitions)
        for part in parts { byPartition[part.partition].append(part) }
        var bytes: [UInt8] = []
        var carried: [UInt8] = []
        for (partition, group) in byPartition.enumerated() {
            var ids: [String] = []
            var single = ""
            func close() {
                guard let first = ids.first else { return }
                var id = single
                if ids.count > 1 {
                    id = "\(first)/\(partition)"
                    let joined = Array(ids.joined(separator: "\n").utf8)
                    let hash = joined.withUnsafeBytes { ByteHash.hash($0, seed: LogPart.messageSeed) }
                    let hex = String(hash, radix: 16)
                    id += ".\(ids.count)." + String(repeating: "0", count: 16 - hex.count) + hex
                }
                bytes.withUnsafeBytes { body(partition, id, $0) }
                bytes.removeAll(keepingCapacity: true)
                ids = []
            }
            for part in group {
                let before = bytes.count
                if before == 0 { bytes.reserveCapacity(min(maximumBytes + (1 << 12), part.encodedByteEstimate * group.count)) }
                part.encode(into: &bytes)
                if !ids.isEmpty && bytes.count > maximumBytes {
                    // Over the limit with this part: the message closes without it, which begins the next.
                    carried.removeAll(keepingCapacity: true)
                    carried.append(contentsOf: bytes[before...])
                    bytes.removeSubrange(before...)
                    close()
                    bytes.append(contentsOf: carried)
                }
                if ids.isEmpty { single = part.logID }
                // A piece's id names it: messages starting with other pieces of one batch differ.
                ids.append(part.pieces == 1 ? part.header.id : part.logID)
            }
            close()
        }
    }

    static let messageSeed: UInt64 = 0x9e37_79b9_7f4a_7c15

    /// Splits a batch's payload into `partitions` parts (a power of two), every part present, an
    /// empty one too: a reader knows a batch is whole when it has all of them.
    /// - Parameter routes: each line's route, when known (`ParsedChunk.Routes`); else each line is
    ///   parsed for it (`LogRoute.of`).
    public static func split(
        _ header: BatchHeader, payload: UnsafeRawBufferPointer, partitions: Int, parser: EventParser, routes: [LogRoute]? = nil
    ) -> [LogPart] {
        // Each part's share of the payload, with room for an uneven spread, so that bodies are not
        // moved again and again as they grow.
        let share = payload.count / partitions
        var parts = (0..<partitions).map { partition in
            var part = LogPart(empty: header, partition: partition, partitions: partitions)
            part.body.reserveCapacity(share + share / 2 + 256)
            return part
        }
        var count = 0
        FrameDecoder.forEachLine(in: payload) { line, number in
            count = number + 1
            switch routes?[number] ?? LogRoute.of(line, parser: parser, partitions: partitions) {
            case .partition(let partition):
                parts[partition].take.append(number)
                parts[partition].append(line)
            case .every:
                for partition in parts.indices {
                    parts[partition].take.append(number)
                    parts[partition].append(line)
                }
            }
        }
        for partition in parts.indices { parts[partition].lineCount = count }
        return parts
    }

    /// The parts of every batch in a chunk's journal (`ParsedChunk.journal`: accepted batches as
    /// frames), batch after batch. A bare line (an unsigned event, taken only without secrets) has
    /// no batch to belong to: it is counted in `bareLines` and left out.
    public static func split(
        journal: [UInt8], partitions: Int, parser: EventParser
    ) -> (parts: [LogPart], bareLines: Int) {
        self.split(journal: journal, partitions: partitions, parser: parser, routes: nil)
    }

    /// The same for a parsed chunk, each line routed by what its parser found on it (`ParsedChunk.Routes`:
    /// the key of an event, partition 0 for a line it rejected or a blank one) rather than parsed
    /// again; a batch whose lines the chunk does not account for one by one is parsed again.
    public static func split(chunk: ParsedChunk, partitions: Int, parser: EventParser) -> (parts: [LogPart], bareLines: Int) {
        self.split(journal: chunk.journal, partitions: partitions, parser: parser, routes: ParsedChunk.Routes(chunk, partitions: partitions))
    }

    private static func split(
        journal: [UInt8], partitions: Int, parser: EventParser, routes: ParsedChunk.Routes?
    ) -> (parts: [LogPart], bareLines: Int) {
        struct Collector: FrameHandler {
            let partitions: Int
            let parser: EventParser
            var routes: ParsedChunk.Routes?
            var parts: [LogPart] = []
            var bareLines = 0
            mutating func handle(_ item: FrameItem) {
                switch item {
                case .batch(let header, _, let payload, _):
                    var lines = 0
                    FrameDecoder.forEachLine(in: payload) { _, _ in lines += 1 }
                    let known = self.routes?.nextBatch(lines: lines)
                    self.parts += LogPart.split(
                        header, payload: payload, partitions: self.partitions, parser: self.parser, routes: known)
                case .line, .tooLong, .rejected: self.bareLines += 1
                case .blank: break
                }
            }
        }
        var collector = Collector(partitions: partitions, parser: parser, routes: routes)
        var decoder = FrameDecoder(maximumLineLength: 1 << 30, maximumBatchBytes: 1 << 30)
        journal.withUnsafeBytes { decoder.decode(appending: $0, into: &collector, isFinal: true) }
        return (collector.parts, collector.bareLines)
    }

    /// The part as a log message.
    public var encoded: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(self.encodedByteEstimate)
        self.encode(into: &output)
        return output
    }

    /// About the bytes of `encoded` (at least them, but for a take of numbers over 5 digits).
    var encodedByteEstimate: Int { 256 + self.header.json.utf8.count + self.take.count * 6 + self.body.count }

    /// Appends `encoded` to `output` (a message of several parts).
    func encode(into output: inout [UInt8]) {
        JSONText.append("{\"part\":", to: &output)
        JSONText.append(self.header.json, to: &output)
        output.removeLast()  // the header's closing brace: the part's members follow
        JSONText.append(
            ",\"partition\":\(self.partition),\"partitions\":\(self.partitions),\"lines\":\(self.lineCount),", to: &output)
        if self.pieces > 1 { JSONText.append("\"piece\":[\(self.piece),\(self.pieces)],", to: &output) }
        JSONText.append("\"take\":[", to: &output)
        for (index, number) in self.take.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append(String(number), to: &output)
        }
        JSONText.append("]}}\n", to: &output)
        output.append(contentsOf: self.body)
    }

    /// Why a log message is not a part.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Reads a log message written by `encoded`: its header line with the strict scanner events
    /// are read with (one pass, no allocation but the batch header's strings and `take`), then
    /// the lines as they are.
    /// - Throws: `Invalid` when it is not one part (`parts(decoding:)` reads several).
    public init(decoding message: UnsafeRawBufferPointer) throws {
        var length = 0
        try self.init(decodingFirstOf: message, length: &length)
        guard length == message.count else { throw Invalid("more lines than the \(self.take.count) in take") }
    }

    /// The parts of a message of the log (`messages(of:partitions:maximumBytes:)`, or one part's
    /// `encoded`), in their order.
    /// - Throws: `Invalid` when one of them is not a part, or they are not all of one partition.
    public static func parts(decoding message: UnsafeRawBufferPointer) throws -> [LogPart] {
        var parts: [LogPart] = []
        var start = 0
        repeat {
            var length = 0
            let part = try LogPart(decodingFirstOf: UnsafeRawBufferPointer(rebasing: message[start...]), length: &length)
            if let first = parts.first, part.partition != first.partition || part.partitions != first.partitions {
                throw Invalid("a message holds parts of partitions \(first.partition) and \(part.partition)")
            }
            parts.append(part)
            start += length
        } while start < message.count
        return parts
    }

    /// Reads the part `message` begins with: its header line, then as many lines as its `take`
    /// holds; `length` is the bytes it took.
    private init(decodingFirstOf message: UnsafeRawBufferPointer, length: inout Int) throws {
        guard let base = message.baseAddress, let found = memchr(base, 0x0A, message.count) else {
            throw Invalid("no header line")
        }
        let newline = base.distance(to: UnsafeRawPointer(found))
        let line = UnsafeRawBufferPointer(rebasing: message[..<newline])
        let shape = "the header line is not {\"part\":{\"batch\":{…},\"partition\",\"partitions\",\"lines\",\"take\"}}"
        @inline(__always) func named(_ span: JSONSpan, in bytes: UnsafeRawBufferPointer, _ name: StaticString) -> Bool {
            !span.flag && span.end - span.start == name.utf8CodeUnitCount
                && memcmp(bytes.baseAddress! + span.start, name.utf8Start, name.utf8CodeUnitCount) == 0
        }
        var partSpan = JSONSpan()
        var scanner = JSONScanner(line)
        let outer = scanner.scanObject { key, value in
            if named(key, in: line, "part") && value.kind == .object { partSpan = value }
        }
        guard outer == .object, partSpan.kind == .object else { throw Invalid(shape) }
        let part = UnsafeRawBufferPointer(rebasing: line[partSpan.start..<partSpan.end])
        var batch = JSONSpan()
        var numbers: [JSONSpan] = Array(repeating: JSONSpan(), count: 3)
        var takeSpan = JSONSpan()
        var pieceSpan = JSONSpan()
        var inner = JSONScanner(part)
        _ = inner.scanObject { key, value in
            if named(key, in: part, "batch") {
                batch = value
            } else if named(key, in: part, "partition") {
                numbers[0] = value
            } else if named(key, in: part, "partitions") {
                numbers[1] = value
            } else if named(key, in: part, "lines") {
                numbers[2] = value
            } else if named(key, in: part, "take") {
                takeSpan = value
            } else if named(key, in: part, "piece") {
                pieceSpan = value
            }
        }
        let values = numbers.map { span -> Int? in
            guard span.kind == .number, !span.flag else { return nil }
            return EventParser.integer(UnsafeRawBufferPointer(rebasing: part[span.start..<span.end])).map { Int($0) }
        }
        guard batch.kind == .object, takeSpan.kind == .array, let partition = values[0], let partitions = values[1],
            let lineCount = values[2]
        else { throw Invalid(shape) }
        guard partitions >= 1, partitions <= 1024, partitions & (partitions - 1) == 0, (0..<partitions).contains(partition),
            (0...(1 << 24)).contains(lineCount)
        else {
            throw Invalid("partition \(partition) of \(partitions), \(lineCount) lines")
        }
        // The batch's header, read by the rules of a frame's header line.
        var headerLine = Array("{\"batch\":".utf8)
        headerLine.append(contentsOf: part[batch.start..<batch.end])
        headerLine.append(UInt8(ascii: "}"))
        guard case .header(let header) = headerLine.withUnsafeBytes({ BatchHeader.parse($0) }) else {
            throw Invalid("the part's batch is not a batch header")
        }
        self.header = header
        self.partition = partition
        self.partitions = partitions
        self.lineCount = lineCount
        if pieceSpan.kind != .absent {
            let numbers =
                pieceSpan.kind == .array
                ? try? Self.integers(UnsafeRawBufferPointer(rebasing: part[(pieceSpan.start + 1)..<(pieceSpan.end - 1)])) : nil
            guard let numbers, numbers.count == 2, (2...Self.maximumPieces).contains(numbers[1]), numbers[0] < numbers[1] else {
                throw Invalid("piece is not [k,n] with 0 <= k < n and 2 <= n <= \(Self.maximumPieces)")
            }
            (self.piece, self.pieces) = (numbers[0], numbers[1])
        }
        self.take = try Self.integers(UnsafeRawBufferPointer(rebasing: part[(takeSpan.start + 1)..<(takeSpan.end - 1)]))
        var previous = -1
        for number in self.take {
            guard number > previous else { throw Invalid("take is not increasing") }
            previous = number
        }
        guard previous < lineCount else { throw Invalid("take outside 0..<\(lineCount)") }
        var end = newline + 1
        for _ in 0..<self.take.count {
            guard end < message.count, let found = memchr(base + end, 0x0A, message.count - end) else {
                throw Invalid("fewer lines than the \(self.take.count) in take, or the last has no newline")
            }
            end = base.distance(to: UnsafeRawPointer(found)) + 1
        }
        self.body = Array(message[(newline + 1)..<end])
        length = end
    }

    /// The non-negative integers of a JSON array's inside (`0,4,7`), as the scanner validated it.
    private static func integers(_ bytes: UnsafeRawBufferPointer) throws -> [Int] {
        var numbers: [Int] = []
        numbers.reserveCapacity(bytes.count / 3)
        var value = 0
        var digits = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard digits < 9 else { throw Invalid("a take number over 9 digits") }
                value = value * 10 + Int(byte &- UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: ","):
                guard digits > 0 else { throw Invalid("take holds something other than numbers") }
                numbers.append(value)
                (value, digits) = (0, 0)
            case 0x20, 0x09, 0x0A, 0x0D:
                continue
            default:
                throw Invalid("take holds something other than non-negative integers")
            }
        }
        if digits > 0 { numbers.append(value) } else if !numbers.isEmpty { throw Invalid("take ends in a comma") }
        return numbers
    }
}

/// Puts batches back together from their parts, in the order parts arrive: a batch is given once
/// all of its parts came, as the frame (header line, payload) `roas run` and the write-ahead log's
/// replay read. A part of a batch already given (a resend the log did not recognise) is ignored.
public struct LogPartAssembler: Sendable {
    /// The parts a batch has so far, and how many pieces each of its partitions' shares has.
    private struct Waiting {
        /// By `partition << 32 | piece`.
        var parts: [Int: LogPart] = [:]
        var pieces: [Int: Int] = [:]
        var expected = 0
    }
    private var waiting: [String: Waiting] = [:]
    /// The log sequence of the first part of each batch in `waiting`: a reader that starts again
    /// from the smallest reads every part of the batches not yet given (`resumeSequence(after:)`).
    private var firstSequences: [String: UInt64] = [:]
    /// Batch ids given, so a late copy of a part does not start the batch again: the newest ones,
    /// and the generation before (at most `remembered` each), so memory stays bounded on a long
    /// stream. A copy of an older batch is put together again; its events are then the engine's
    /// duplicates, within its dedup horizon.
    private var given: Set<String> = []
    private var givenBefore: Set<String> = []
    private let remembered: Int
    /// Parts ignored because their batch was already given.
    public private(set) var repeated = 0

    public init(remembered: Int = 1 << 18) {
        self.remembered = max(1, remembered)
    }

    /// An assembler that goes on from a checkpoint: the batch ids it remembered then
    /// (`rememberedIDs`), the older generation first.
    public init(remembered: Int = 1 << 18, older: [String], newer: [String]) {
        self.init(remembered: remembered)
        self.givenBefore = Set(older)
        self.given = Set(newer)
    }

    /// Batches started and not yet whole.
    public var incomplete: Int { self.waiting.count }

    /// The batch ids given that a late copy of a part is recognised by: the older generation, then
    /// the newer one (for a checkpoint; `init(remembered:older:newer:)` takes them back).
    public var rememberedIDs: (older: [String], newer: [String]) { (Array(self.givenBefore), Array(self.given)) }

    /// Where a reader that has taken every part up to sequence `last` must start again to miss
    /// nothing this assembler has not given yet: the first part of the oldest batch still waiting
    /// for parts, or the part after `last`. Parts read again of batches given meanwhile are
    /// recognised by their ids and ignored.
    public func resumeSequence(after last: UInt64) -> UInt64 {
        self.firstSequences.values.min().map { min($0, last + 1) } ?? last + 1
    }

    /// Takes one part; returns the batch's frame when it is the last part missing.
    /// - Parameter sequence: where the part is on the log (0 when that does not matter), for
    ///   `resumeSequence(after:)`.
    /// - Throws: `LogPart.Invalid` when the part disagrees with the parts of its batch before it.
    public mutating func add(_ part: LogPart, sequence: UInt64 = 0) throws -> [UInt8]? {
        var frame: [UInt8] = []
        return try self.add(part, sequence: sequence, appendingTo: &frame) ? frame : nil
    }

    /// `add(_:sequence:)` that appends the batch's frame, when whole, to `frames` (a reader's chunk
    /// of frames) rather than making an array of it; returns whether it did.
    @discardableResult
    public mutating func add(_ part: LogPart, sequence: UInt64 = 0, appendingTo frames: inout [UInt8]) throws -> Bool {
        let id = part.header.id
        guard !self.given.contains(id) && !self.givenBefore.contains(id) else {
            self.repeated += 1
            return false
        }
        var batch = self.waiting[id] ?? Waiting()
        if let first = batch.parts.values.first {
            guard first.partitions == part.partitions, first.lineCount == part.lineCount,
                first.header.timestamp == part.header.timestamp, batch.pieces[part.partition].map({ $0 == part.pieces }) ?? true
            else { throw LogPart.Invalid("part \(part.partition) of batch \(id) disagrees with the parts before it") }
        }
        if batch.pieces[part.partition] == nil {
            batch.pieces[part.partition] = part.pieces
            batch.expected += part.pieces
        }
        batch.parts[part.partition << 32 | part.piece] = part
        if self.firstSequences[id] == nil { self.firstSequences[id] = sequence }
        guard batch.pieces.count == part.partitions, batch.parts.count == batch.expected else {
            self.waiting[id] = batch
            return false
        }
        let parts = batch.parts
        self.waiting[id] = nil
        self.firstSequences[id] = nil
        if self.given.count >= self.remembered {
            self.givenBefore = self.given
            self.given.removeAll(keepingCapacity: true)
        }
        self.given.insert(id)
        // Where each line of the payload is: which part, and its range in that part's body.
        let pieces = Array(parts.values)
        var found = [(piece: Int32, start: Int32, end: Int32)](repeating: (-1, 0, 0), count: part.lineCount)
        for (index, piece) in pieces.enumerated() {
            var next = 0
            _ = piece.body.withUnsafeBytes { body in
                LogPart.forEachLine(in: body) { range in
                    found[piece.take[next]] = (Int32(index), Int32(range.lowerBound), Int32(range.upperBound))
                    next += 1
                }
            }
        }
        // The payload's size first (the header line names it), then the frame written in place.
        var bytes = 0
        for (number, place) in found.enumerated() {
            guard place.piece >= 0 else { throw LogPart.Invalid("line \(number) of batch \(id) is in none of its parts") }
            bytes += Int(place.end - place.start) + 1
        }
        var header = part.header
        header.bytes = bytes
        frames.append(contentsOf: header.json.utf8)
        frames.append(0x0A)
        let payloadStart = frames.count
        frames.append(contentsOf: repeatElement(0, count: bytes))
        frames.withUnsafeMutableBytes { output in
            var at = payloadStart
            for place in found {
                pieces[Int(place.piece)].body.withUnsafeBytes { body in
                    let count = Int(place.end - place.start)
                    if count > 0 {
                        (output.baseAddress! + at).copyMemory(from: body.baseAddress! + Int(place.start), byteCount: count)
                    }
                    at += count
                }
                output[at] = 0x0A
                at += 1
            }
        }
        return true
    }
}
