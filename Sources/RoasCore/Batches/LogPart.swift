import Foundation

/// Where an event goes on a partitioned log (`roas serve --nats`): views, clicks and sign-ups by the
/// user who sent them, purchases and refunds by order (a refund carries no user; this keeps
/// `duplicate_order` and `over_refund` on one partition), spend, engagement and creator profiles by
/// creator, and links to every partition. A line that is not an event goes to partition 0, so that
/// the part holding it still gets its dead letter.
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
            switch event.kind {
            case .view, .click, .signup: key = event.user
            case .purchase, .refund: key = event.order
            case .spend, .engagement, .creator: key = event.creator
            case .link: return .every
            }
            return .partition(LogRoute.partition(ofKey: key, partitions: partitions))
        }
        if case .success(let route) = routed { return route }
        return .partition(0)
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
/// give back its payload line by line (`LogPartAssembler`). Schema: schemas/log-part.schema.json.
public struct LogPart: Sendable, Equatable {
    public var header: BatchHeader
    public var partition: Int
    public var partitions: Int
    /// Lines in the batch's payload.
    public var lineCount: Int
    /// The payload's line numbers (from 0) this part holds, increasing.
    public var take: [Int]
    /// Those lines, without newlines.
    public var lines: [[UInt8]]

    public init(header: BatchHeader, partition: Int, partitions: Int, lineCount: Int, take: [Int], lines: [[UInt8]]) {
        self.header = header
        self.partition = partition
        self.partitions = partitions
        self.lineCount = lineCount
        self.take = take
        self.lines = lines
    }

    /// The log's deduplication id of this part: `<batch id>/<partition>` (a batch id holds no '.').
    public var logID: String { "\(self.header.id)/\(self.partition)" }

    /// Splits a batch's payload into `partitions` parts (a power of two), every part present, an
    /// empty one too: a reader knows a batch is whole when it has all of them.
    public static func split(
        _ header: BatchHeader, payload: UnsafeRawBufferPointer, partitions: Int, parser: EventParser
    ) -> [LogPart] {
        var parts = (0..<partitions).map {
            LogPart(header: header, partition: $0, partitions: partitions, lineCount: 0, take: [], lines: [])
        }
        var count = 0
        FrameDecoder.forEachLine(in: payload) { line, number in
            count = number + 1
            switch LogRoute.of(line, parser: parser, partitions: partitions) {
            case .partition(let partition):
                parts[partition].take.append(number)
                parts[partition].lines.append(Array(line))
            case .every:
                for partition in parts.indices {
                    parts[partition].take.append(number)
                    parts[partition].lines.append(Array(line))
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
        struct Collector: FrameHandler {
            let partitions: Int
            let parser: EventParser
            var parts: [LogPart] = []
            var bareLines = 0
            mutating func handle(_ item: FrameItem) {
                switch item {
                case .batch(let header, _, let payload, _):
                    self.parts += LogPart.split(header, payload: payload, partitions: self.partitions, parser: self.parser)
                case .line, .tooLong, .rejected: self.bareLines += 1
                case .blank: break
                }
            }
        }
        var collector = Collector(partitions: partitions, parser: parser)
        var decoder = FrameDecoder(maximumLineLength: 1 << 30, maximumBatchBytes: 1 << 30)
        journal.withUnsafeBytes { decoder.append($0) }
        decoder.decode(into: &collector, isFinal: true)
        return (collector.parts, collector.bareLines)
    }

    /// The part as a log message.
    public var encoded: [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(self.lines.reduce(256 + self.take.count * 6) { $0 + $1.count + 1 })
        JSONText.append("{\"part\":", to: &output)
        JSONText.append(self.header.json, to: &output)
        output.removeLast()  // the header's closing brace: the part's members follow
        JSONText.append(
            ",\"partition\":\(self.partition),\"partitions\":\(self.partitions),\"lines\":\(self.lineCount),\"take\":[",
            to: &output)
        for (index, number) in self.take.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append(String(number), to: &output)
        }
        JSONText.append("]}}\n", to: &output)
        for line in self.lines {
            output.append(contentsOf: line)
            output.append(0x0A)
        }
        return output
    }

    /// Why a log message is not a part.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Reads a log message written by `encoded`.
    public init(decoding message: UnsafeRawBufferPointer) throws {
        guard let end = message.firstIndex(of: 0x0A) else { throw Invalid("no header line") }
        let object = try? JSONSerialization.jsonObject(with: Data(message[..<end]))
        guard let part = (object as? [String: Any])?["part"] as? [String: Any],
            let batch = part["batch"] as? [String: Any], let id = batch["id"] as? String,
            let timestamp = (batch["timestamp"] as? NSNumber)?.int64Value, let signature = batch["signature"] as? String,
            let bytes = (batch["bytes"] as? NSNumber)?.intValue,
            let partition = (part["partition"] as? NSNumber)?.intValue,
            let partitions = (part["partitions"] as? NSNumber)?.intValue,
            let lineCount = (part["lines"] as? NSNumber)?.intValue, let take = part["take"] as? [NSNumber]
        else { throw Invalid("the header line is not {\"part\":{\"batch\":{…},\"partition\",\"partitions\",\"lines\",\"take\"}}") }
        guard partitions >= 1, partitions & (partitions - 1) == 0, (0..<partitions).contains(partition),
            (0...(1 << 24)).contains(lineCount)
        else {
            throw Invalid("partition \(partition) of \(partitions), \(lineCount) lines")
        }
        self.header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: bytes)
        self.partition = partition
        self.partitions = partitions
        self.lineCount = lineCount
        self.take = take.map(\.intValue)
        for (previous, next) in zip(self.take, self.take.dropFirst()) where next <= previous {
            throw Invalid("take is not increasing")
        }
        guard self.take.allSatisfy({ (0..<lineCount).contains($0) }) else { throw Invalid("take outside 0..<\(lineCount)") }
        var lines: [[UInt8]] = []
        lines.reserveCapacity(self.take.count)
        var position = end + 1
        while position < message.count {
            let stop = message[position...].firstIndex(of: 0x0A) ?? message.count
            lines.append(Array(message[position..<stop]))
            position = stop + 1
        }
        guard lines.count == self.take.count else {
            throw Invalid("\(lines.count) lines for \(self.take.count) in take")
        }
        self.lines = lines
    }
}

/// Puts batches back together from their parts, in the order parts arrive: a batch is given once
/// all of its parts came, as the frame (header line, payload) `roas run` and the write-ahead log's
/// replay read. A part of a batch already given (a resend the log did not recognise) is ignored.
public struct LogPartAssembler: Sendable {
    private var waiting: [String: [Int: LogPart]] = [:]
    /// Batch ids given, so a late copy of a part does not start the batch again.
    private var given: Set<String> = []
    /// Parts ignored because their batch was already given.
    public private(set) var repeated = 0

    public init() {}

    /// Batches started and not yet whole.
    public var incomplete: Int { self.waiting.count }

    /// Takes one part; returns the batch's frame when it is the last part missing.
    /// - Throws: `LogPart.Invalid` when the part disagrees with the parts of its batch before it.
    public mutating func add(_ part: LogPart) throws -> [UInt8]? {
        let id = part.header.id
        guard !self.given.contains(id) else {
            self.repeated += 1
            return nil
        }
        var parts = self.waiting[id, default: [:]]
        if let first = parts.values.first {
            guard first.partitions == part.partitions, first.lineCount == part.lineCount,
                first.header.timestamp == part.header.timestamp
            else { throw LogPart.Invalid("part \(part.partition) of batch \(id) disagrees with the parts before it") }
        }
        parts[part.partition] = part
        guard parts.count == part.partitions else {
            self.waiting[id] = parts
            return nil
        }
        self.waiting[id] = nil
        self.given.insert(id)
        var lines: [[UInt8]?] = Array(repeating: nil, count: part.lineCount)
        for piece in parts.values {
            for (number, line) in zip(piece.take, piece.lines) { lines[number] = line }
        }
        var payload: [UInt8] = []
        for (number, line) in lines.enumerated() {
            guard let line else { throw LogPart.Invalid("line \(number) of batch \(id) is in none of its parts") }
            payload.append(contentsOf: line)
            payload.append(0x0A)
        }
        var header = part.header
        header.bytes = payload.count
        var frame = Array(header.json.utf8)
        frame.append(0x0A)
        frame.append(contentsOf: payload)
        return frame
    }
}
