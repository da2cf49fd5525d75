/// Counts of everything the run read and did; every input line lands in exactly one of
/// accepted (events and batch headers), dead-lettered, blank, or still pending.
public struct Statistics: Sendable, Equatable {
    public var linesRead = 0
    public var bytesRead = 0
    public var blankLines = 0
    /// Applied events by kind (`EventKind.rawValue`).
    public var acceptedEvents = [Int](repeating: 0, count: EventKind.allCases.count)
    /// Accepted batch frames (each has one header line).
    public var acceptedBatches = 0
    /// Rejected batch frames by reason (`Reason.index`).
    public var rejectedBatches = [Int](repeating: 0, count: Reason.allCases.count)
    /// Dead-lettered lines by reason (`Reason.index`).
    public var deadLetters = [Int](repeating: 0, count: Reason.allCases.count)
    /// Accepted links, purchases and refunds waiting for the watermark.
    public var pendingEvents = 0
    public var finalRows = 0
    public var updateRows = 0

    public init() {}

    public var acceptedEventCount: Int { self.acceptedEvents.reduce(0, +) }
    public var deadLetterCount: Int { self.deadLetters.reduce(0, +) }
    /// Lines accepted: applied events plus accepted batch headers.
    public var acceptedLines: Int { self.acceptedEventCount + self.acceptedBatches }

    /// True when every line read is accounted for.
    public var balances: Bool {
        self.acceptedLines + self.deadLetterCount + self.blankLines + self.pendingEvents == self.linesRead
    }

    public func accepted(_ kind: EventKind) -> Int { self.acceptedEvents[Int(kind.rawValue)] }
    public func deadLetters(_ reason: Reason) -> Int { self.deadLetters[reason.index] }
    public func rejectedBatches(_ reason: Reason) -> Int { self.rejectedBatches[reason.index] }
}

extension Reason {
    /// Position in `Reason.allCases`, for counter arrays.
    public var index: Int {
        switch self {
        case .tooLong: 0
        case .badFrame: 1
        case .badSignature: 2
        case .staleBatch: 3
        case .replayedBatch: 4
        case .unsigned: 5
        case .malformed: 6
        case .unknownType: 7
        case .invalid: 8
        case .unknownCurrency: 9
        case .late: 10
        case .duplicate: 11
        case .duplicateOrder: 12
        case .unknownOrder: 13
        case .overRefund: 14
        case .conflict: 15
        case .future: 16
        case .tooManyKeys: 17
        case .overflow: 18
        }
    }
}

// MARK: Snapshots

extension Statistics {
    /// Writes every counter as an `Int64`; the arrays with their counts. A counter saturates at
    /// `SnapshotReader.counterLimit` (2^62, out of reach of any real run), so that a snapshot the
    /// engine writes always reads back, even after a snapshot read with a counter at the limit was
    /// run on (a fuzz finding: 7 more final rows made one unreadable).
    func write(to writer: inout SnapshotWriter) {
        let counter = { (value: Int) in Int64(min(value, Int(SnapshotReader.counterLimit))) }
        for value in [self.linesRead, self.bytesRead, self.blankLines, self.acceptedBatches] {
            writer.write(counter(value))
        }
        for value in [self.pendingEvents, self.finalRows, self.updateRows] { writer.write(counter(value)) }
        for counters in [self.acceptedEvents, self.rejectedBatches, self.deadLetters] {
            writer.write(count: counters.count)
            for value in counters { writer.write(counter(value)) }
        }
    }

    /// Reads what `write(to:)` wrote: counters from 0 to 2^62, one per event kind or reason.
    init(from reader: inout SnapshotReader) throws {
        self.init()
        self.linesRead = try reader.readCounter("lines read")
        self.bytesRead = try reader.readCounter("bytes read")
        self.blankLines = try reader.readCounter("blank lines")
        self.acceptedBatches = try reader.readCounter("accepted batches")
        self.pendingEvents = try reader.readCounter("pending events")
        self.finalRows = try reader.readCounter("final rows")
        self.updateRows = try reader.readCounter("update rows")
        for (path, name) in [
            (\Statistics.acceptedEvents, "accepted events"), (\.rejectedBatches, "rejected batches"),
            (\.deadLetters, "dead letters"),
        ] {
            let expected = self[keyPath: path].count
            let count = try reader.readCount(elementSize: 8)
            // Reasons are only ever added at the end: an older snapshot has fewer counters, which start at 0.
            try SnapshotReader.require(
                count == expected || (path != \Statistics.acceptedEvents && count >= 15 && count < expected),
                "\(count) counters of \(name), not \(expected)")
            for index in 0..<count { self[keyPath: path][index] = try reader.readCounter(name) }
        }
    }
}
