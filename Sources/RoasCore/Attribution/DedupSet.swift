/// The event ids seen within the dedup horizon, as 128-bit fingerprints with their event time.
///
/// An open-addressing table of 24-byte entries kept at most half full; expired entries are dropped
/// when the table would grow. A lookup ignores entries older than the horizon, so the answer depends
/// only on the watermark, not on when the table was last cleaned.
/// Memory: 48-144 bytes per id seen within the horizon (the table holds 2 to 6 times the live count:
/// it is rebuilt at half full and doubled when over a third is still live).
struct DedupSet: Sendable {
    fileprivate struct Entry: Sendable {
        var high: UInt64
        var low: UInt64
        var time: Int64
    }

    private var entries: [Entry]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size < capacity { size <<= 1 }
        self.entries = Array(repeating: Entry(high: 0, low: 0, time: .min), count: size)
        self.mask = size - 1
    }

    /// Records `fingerprint` at `time` unless an entry not older than `cutoff` holds it already.
    ///
    /// - Returns: false when it is a duplicate.
    @inline(__always)
    mutating func insert(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64) -> Bool {
        var index = Int(truncatingIfNeeded: fingerprint.high) & self.mask
        var reusable = -1
        while true {
            let entry = self.entries[index]
            if entry.time == .min { break }
            if entry.high == fingerprint.high && entry.low == fingerprint.low {
                if entry.time >= cutoff { return false }
                reusable = index
                break
            }
            index = (index + 1) & self.mask
        }
        if reusable >= 0 {
            self.entries[reusable].time = time
            return true
        }
        self.entries[index] = Entry(high: fingerprint.high, low: fingerprint.low, time: time)
        self.count += 1
        if self.count * 2 > self.entries.count { self.rebuild(cutoff: cutoff) }
        return true
    }

    private mutating func rebuild(cutoff: Int64) {
        let live = self.entries.filter { $0.time != .min && $0.time >= cutoff }
        var size = self.entries.count
        if live.count * 3 > size { size *= 2 }
        self.entries = Array(repeating: Entry(high: 0, low: 0, time: .min), count: size)
        self.mask = size - 1
        for entry in live {
            var index = Int(truncatingIfNeeded: entry.high) & self.mask
            while self.entries[index].time != .min { index = (index + 1) & self.mask }
            self.entries[index] = entry
        }
        self.count = live.count
    }
}

// MARK: Snapshots

/// Integer fields only, no padding: 8 + 8 + 8 bytes.
extension DedupSet.Entry: SnapshotRaw {}

extension DedupSet {
    var snapshotByteEstimate: Int {
        SnapshotWriter.tableByteCount(
            slots: self.entries.count, occupied: self.count, stride: MemoryLayout<Entry>.stride)
    }

    /// Writes the table (its slots, or its size and occupied slots when sparse).
    func write(to writer: inout SnapshotWriter) {
        writer.write(table: self.entries, occupied: self.count) { $0.time == .min }
    }

    /// Reads what `write(to:)` wrote: a table of a power-of-two size at most half full, whose
    /// entries' times are in range, so that probing always reaches an empty slot.
    init(from reader: inout SnapshotReader) throws {
        let (entries, occupied) = try reader.readTable(empty: Entry(high: 0, low: 0, time: .min)) {
            $0.time == .min
        } check: { entry in
            try SnapshotReader.require(
                (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(entry.time),
                "a dedup time is out of range")
        }
        let size = entries.count
        try SnapshotReader.require(
            size >= 16 && size & (size - 1) == 0, "the dedup table's size \(size) is not a power of two from 16")
        try SnapshotReader.require(occupied * 2 <= size, "the dedup table is more than half full")
        self.init(capacity: 16)
        self.entries = entries
        self.mask = size - 1
        self.count = occupied
    }
}
