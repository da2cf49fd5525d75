import CRoasPrefetch

/// The event ids seen within the dedup horizon, as 128-bit fingerprints with their event time.
///
/// 64 open-addressing tables (shards, chosen by a fingerprint's top 6 bits) of 24-byte entries, each
/// kept at most 70% full; expired entries are dropped when a shard would pass that. A lookup ignores
/// entries older than the horizon, so the answer depends only on the watermark, not on when a shard
/// was last cleaned. Shards grow one at a time, so growing never holds two copies of the whole set,
/// and a copy of the set (a checkpoint taken while the engine runs on) copies only the shards written.
/// Memory: 34-96 bytes per id seen within the horizon (a shard holds 1.4 to 4 times its live count:
/// it is rebuilt at 70% full and doubled when over half is still live); 34-69 while the set grows.
struct DedupSet: Sendable {
    fileprivate struct Entry: Sendable {
        var high: UInt64
        var low: UInt64
        var time: Int64

        static let empty = Entry(high: 0, low: 0, time: .min)
    }

    fileprivate struct Shard: Sendable {
        var entries: [Entry]
        var mask: Int
        var count = 0
        /// Where `entries` was when last written, for `prefetch` alone: reading the array's
        /// address from a shard in `shards` copies the array (a retain and a release, a few per
        /// cent of the engine's time). A stale address (a copy-on-write since, or a table
        /// rebuilt) only wastes a prefetch, which never faults. An address's bits, so that the
        /// shard stays `Sendable`.
        var base: UInt = 0

        init(size: Int) {
            self.entries = Array(repeating: Entry.empty, count: size)
            self.mask = size - 1
        }

        /// Writes `entry` at `index` and notes where the table is.
        @inline(__always)
        mutating func write(_ entry: Entry, at index: Int) {
            self.entries.withUnsafeMutableBufferPointer { table in
                table[index] = entry
                self.base = UInt(bitPattern: table.baseAddress)
            }
        }

        @inline(__always)
        mutating func insert(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64) -> Bool {
            var index = Int(truncatingIfNeeded: fingerprint.high) & self.mask
            while true {
                let entry = self.entries[index]
                if entry.time == .min { break }
                if entry.high == fingerprint.high && entry.low == fingerprint.low {
                    if entry.time >= cutoff { return false }
                    self.write(Entry(high: entry.high, low: entry.low, time: time), at: index)
                    return true
                }
                index = (index + 1) & self.mask
            }
            self.write(Entry(high: fingerprint.high, low: fingerprint.low, time: time), at: index)
            self.count += 1
            if self.count * 10 > self.entries.count * 7 { self.rebuild(cutoff: cutoff) }
            return true
        }

        /// Keeps the entries not older than `cutoff`, in a table twice the size when over half are.
        private mutating func rebuild(cutoff: Int64) {
            var live = 0
            for entry in self.entries where entry.time != .min && entry.time >= cutoff { live += 1 }
            let size = live * 2 > self.entries.count ? self.entries.count * 2 : self.entries.count
            let old = self.entries
            self.entries = Array(repeating: Entry.empty, count: size)
            self.mask = size - 1
            for entry in old where entry.time != .min && entry.time >= cutoff {
                var index = Int(truncatingIfNeeded: entry.high) & self.mask
                while self.entries[index].time != .min { index = (index + 1) & self.mask }
                self.entries[index] = entry
            }
            self.count = live
            self.base = self.entries.withUnsafeMutableBufferPointer { UInt(bitPattern: $0.baseAddress) }
        }
    }

    static let shardBits = 6
    static let shardCount = 1 << shardBits
    private var shards: [Shard]

    init(capacity: Int = 1 << 12) {
        var size = 16
        while size * DedupSet.shardCount < capacity { size <<= 1 }
        self.shards = Array(repeating: Shard(size: size), count: DedupSet.shardCount)
    }

    /// Ids held, expired ones not yet dropped included.
    var count: Int { self.shards.reduce(0) { $0 + $1.count } }

    /// Records `fingerprint` at `time` unless an entry not older than `cutoff` holds it already.
    ///
    /// - Returns: false when it is a duplicate.
    @inline(__always)
    mutating func insert(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64) -> Bool {
        self.shards[DedupSet.shard(of: fingerprint)].insert(fingerprint, time: time, cutoff: cutoff)
    }

    @inline(__always)
    private static func shard(of fingerprint: Fingerprint) -> Int {
        Int(truncatingIfNeeded: fingerprint.high >> UInt64(64 - DedupSet.shardBits))
    }

    /// Starts loading the slot where `insert` will first look for `fingerprint`.
    @inline(__always)
    func prefetch(_ fingerprint: Fingerprint) {
        let shard = DedupSet.shard(of: fingerprint)
        let slot = Int(truncatingIfNeeded: fingerprint.high) & self.shards[shard].mask
        guard let base = UnsafeRawPointer(bitPattern: self.shards[shard].base) else { return }
        roas_prefetch(base + slot * MemoryLayout<Entry>.stride)
    }
}

// MARK: Snapshots

/// Integer fields only, no padding: 8 + 8 + 8 bytes.
extension DedupSet.Entry: SnapshotRaw {}

extension DedupSet {
    var snapshotByteEstimate: Int {
        self.shards.reduce(8) {
            $0
                + SnapshotWriter.tableByteCount(
                    slots: $1.entries.count, occupied: $1.count, stride: MemoryLayout<Entry>.stride)
        }
    }

    /// Writes the number of shards, then each shard's table (its slots, or its size and occupied
    /// slots when sparse).
    func write(to writer: inout SnapshotWriter) {
        writer.write(count: self.shards.count)
        for shard in self.shards { writer.write(table: shard.entries, occupied: shard.count) { $0.time == .min } }
    }

    /// Reads what `write(to:)` wrote: 64 tables, each of a power-of-two size at most 70% full (so
    /// that probing always reaches an empty slot), whose entries' times are in range and whose
    /// fingerprints belong to that shard.
    init(from reader: inout SnapshotReader) throws {
        let count = try reader.read(UInt64.self)
        try SnapshotReader.require(
            count == UInt64(DedupSet.shardCount), "the dedup set has \(count) shards, not \(DedupSet.shardCount)")
        var shards: [Shard] = []
        shards.reserveCapacity(DedupSet.shardCount)
        for number in 0..<DedupSet.shardCount {
            let (entries, occupied) = try reader.readTable(empty: Entry.empty) {
                $0.time == .min
            } check: { entry in
                try SnapshotReader.require(
                    (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(entry.time),
                    "a dedup time is out of range")
                try SnapshotReader.require(
                    Int(truncatingIfNeeded: entry.high >> UInt64(64 - DedupSet.shardBits)) == number,
                    "a dedup entry is in another shard than its fingerprint's")
            }
            let size = entries.count
            try SnapshotReader.require(
                size >= 16 && size & (size - 1) == 0, "a dedup table's size \(size) is not a power of two from 16")
            try SnapshotReader.require(occupied * 10 <= size * 7, "a dedup table is more than 70% full")
            var shard = Shard(size: 16)
            shard.entries = entries
            shard.mask = size - 1
            shard.count = occupied
            shards.append(shard)
        }
        self.shards = shards
    }
}
