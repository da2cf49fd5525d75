#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event id kept for ordering ties: its first 16 bytes inline, big-endian, the rest in an arena.
struct SortKey: Sendable {
    var high: UInt64
    var low: UInt64
    /// 64 bits rather than 32 so that the key, and `Touch`, have no padding: snapshots copy them as raw memory.
    var length: Int64
    /// Offset of the bytes past the 16th in the owner's `IDArena`; -1 when the id has at most 16 bytes.
    var tail: Int64

    @inline(__always)
    init(_ bytes: UnsafeRawBufferPointer, arena: inout IDArena, time: Int64) {
        var high: UInt64 = 0
        var low: UInt64 = 0
        let count = bytes.count
        for index in 0..<min(count, 16) {
            let byte = UInt64(bytes[index])
            if index < 8 { high |= byte << (56 - 8 * UInt64(index)) } else { low |= byte << (56 - 8 * UInt64(index - 8)) }
        }
        self.high = high
        self.low = low
        self.length = Int64(count)
        self.tail = count > 16 ? arena.append(UnsafeRawBufferPointer(rebasing: bytes[16...]), time: time) : -1
    }

    /// Bytewise order of the ids (a prefix sorts first); each id's tail is in its own arena.
    @inline(__always)
    static func compare(_ a: SortKey, in aArena: IDArena, _ b: SortKey, in bArena: IDArena) -> Int {
        if a.high != b.high { return a.high < b.high ? -1 : 1 }
        if a.low != b.low { return a.low < b.low ? -1 : 1 }
        if a.length > 16 && b.length > 16 {
            let order = IDArena.compare(aArena, a.tail, Int(a.length) - 16, bArena, b.tail, Int(b.length) - 16)
            if order != 0 { return order }
        }
        return a.length == b.length ? 0 : (a.length < b.length ? -1 : 1)
    }
}

/// Append-only storage for the tails of long ids, in chunks freed once event time has passed them.
struct IDArena: Sendable {
    private struct Chunk {
        var bytes: [UInt8]
        var base: Int64
        var newestTime: Int64
    }

    private var chunks: [Chunk] = []
    private var nextOffset: Int64 = 0
    static let chunkSize = 1 << 20

    mutating func append(_ bytes: UnsafeRawBufferPointer, time: Int64) -> Int64 {
        if self.chunks.isEmpty || self.chunks[self.chunks.count - 1].bytes.count + bytes.count > IDArena.chunkSize {
            var chunk = Chunk(bytes: [], base: self.nextOffset, newestTime: time)
            chunk.bytes.reserveCapacity(max(IDArena.chunkSize, bytes.count))
            self.chunks.append(chunk)
        }
        let last = self.chunks.count - 1
        let offset = self.chunks[last].base + Int64(self.chunks[last].bytes.count)
        self.chunks[last].bytes.append(contentsOf: bytes)
        self.chunks[last].newestTime = max(self.chunks[last].newestTime, time)
        self.nextOffset = offset + Int64(bytes.count)
        return offset
    }

    /// Frees chunks all of whose ids belong to events older than `time`.
    mutating func release(olderThan time: Int64) {
        var drop = 0
        while drop < self.chunks.count - 1, self.chunks[drop].newestTime < time { drop += 1 }
        if drop > 0 { self.chunks.removeFirst(drop) }
    }

    static func compare(_ leftArena: IDArena, _ a: Int64, _ aLength: Int, _ rightArena: IDArena, _ b: Int64, _ bLength: Int) -> Int {
        leftArena.withBytes(a, aLength) { left in
            rightArena.withBytes(b, bLength) { right in
                let common = min(left.count, right.count)
                let order = memcmp(left.baseAddress!, right.baseAddress!, common)
                if order != 0 { return order < 0 ? -1 : 1 }
                return left.count == right.count ? 0 : (left.count < right.count ? -1 : 1)
            }
        }
    }

    /// The index of the last chunk starting at or before `offset` (the chunks must not be empty).
    fileprivate func chunkIndex(holding offset: Int64) -> Int {
        var low = 0
        var high = self.chunks.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if self.chunks[middle].base <= offset { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// The offset the next id tail gets (the engine appends none past `SnapshotReader.counterLimit`).
    var end: Int64 { self.nextOffset }

    private func withBytes<R>(_ offset: Int64, _ length: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let chunk = self.chunks[self.chunkIndex(holding: offset)]
        let start = Int(offset - chunk.base)
        return chunk.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<(start + length)])) }
    }
}

/// A view or click kept for attribution: 56 bytes.
struct Touch: Sendable {
    var time: Int64
    var creator: Int32
    var campaign: Int32
    var id: SortKey
    /// The log position of the same identity's previous touch, or -1.
    var previous: Int64 = -1
}

/// The views (or the clicks) still within their lookback, in arrival order, chained per identity.
///
/// Appending is sequential and needs one 8-byte head per identity, with no allocation per identity.
/// Positions are global and only grow, so chains stay valid when the front is dropped. Because every
/// accepted event is at most the lateness older than any event that arrived before it, a walk back
/// along a chain can stop at the first touch more than the lateness before the range it wants.
struct TouchLog: Sendable {
    private var touches: [Touch] = []
    /// Global position of `touches[0]`.
    private var base: Int64 = 0
    /// Global position of the first retained touch.
    private var start: Int64 = 0
    /// Global position of each identity's latest touch, -1 for none.
    private var heads: [Int64] = []
    let lateness: Int64

    init(lateness: Int64) {
        self.lateness = lateness
    }

    var count: Int { self.touches.count - Int(self.start - self.base) }

    /// The global position the next touch gets. The engine appends no touch at or past
    /// `SnapshotReader.counterLimit`, so every log it writes reads back.
    var end: Int64 { self.base + Int64(self.touches.count) }

    /// An empty log whose first touch gets `position` (the state of a log that dropped that many).
    init(lateness: Int64, startingAt position: Int64) {
        self.init(lateness: lateness)
        self.base = position
        self.start = position
    }

    @inline(__always)
    mutating func append(_ touch: Touch, identity: Int32) {
        let index = Int(identity)
        if index >= self.heads.count {
            self.heads.append(contentsOf: repeatElement(-1, count: max(index + 1 - self.heads.count, self.heads.count / 2)))
        }
        var touch = touch
        touch.previous = self.heads[index]
        self.heads[index] = self.base + Int64(self.touches.count)
        self.touches.append(touch)
    }

    /// Drops touches from the front, in arrival order, while they are older than `cutoff`.
    mutating func evict(before cutoff: Int64) {
        var position = Int(self.start - self.base)
        while position < self.touches.count && self.touches[position].time < cutoff { position += 1 }
        self.start = self.base + Int64(position)
        // Compact when at least half the storage is dropped touches: amortised O(1) per touch.
        if position > 0 && position >= self.touches.count / 2 {
            self.touches.removeFirst(position)
            self.base = self.start
        }
    }

    /// Calls `body` with every retained touch of `identity` whose time is in `lower...upper`.
    @inline(__always)
    func forEach(of identity: Int32, in lower: Int64, _ upper: Int64, _ body: (Touch) -> Void) {
        guard Int(identity) < self.heads.count else { return }
        var position = self.heads[Int(identity)]
        let stop = Engine.subtract(lower, self.lateness)
        while position >= self.start {
            let touch = self.touches[Int(position - self.base)]
            if touch.time < stop { return }
            if touch.time >= lower && touch.time <= upper { body(touch) }
            position = touch.previous
        }
    }
}

// MARK: Snapshots

/// Integer fields only, no padding: 8 + 4 + 4 + (8 + 8 + 8 + 8) + 8 bytes.
extension Touch: SnapshotRaw {}

extension IDArena {
    var snapshotByteEstimate: Int { self.chunks.reduce(16) { $0 + 26 + $1.bytes.count } }

    /// The chunks held, and the offset the first starts at (above 0 once one has been freed).
    var chunkSpan: (count: Int, base: Int64) { (self.chunks.count, self.chunks.first?.base ?? 0) }

    /// Writes the chunks (base, newest time, bytes) and the next offset.
    func write(to writer: inout SnapshotWriter) {
        writer.write(count: self.chunks.count)
        for chunk in self.chunks {
            writer.write(chunk.base)
            writer.write(chunk.newestTime)
            writer.write(raw: chunk.bytes)
        }
        writer.write(self.nextOffset)
    }

    /// Reads what `write(to:)` wrote; the chunks must follow each other without gaps from a base of at least 0.
    init(from reader: inout SnapshotReader) throws {
        let count = try reader.readCount(elementSize: 8 + 8 + 2 + 8)
        var chunks: [Chunk] = []
        chunks.reserveCapacity(count)
        var end: Int64? = nil
        for _ in 0..<count {
            let base = try reader.read(Int64.self)
            let newestTime = try reader.readTime("the newest time of an id chunk")
            let bytes = try reader.readRaw(UInt8.self)
            try SnapshotReader.require(
                base >= 0 && base <= SnapshotReader.counterLimit && (end == nil || base == end),
                "an id chunk starts at \(base), not where the previous one ends")
            end = base + Int64(bytes.count)
            chunks.append(Chunk(bytes: bytes, base: base, newestTime: newestTime))
        }
        let nextOffset = try reader.read(Int64.self)
        try SnapshotReader.require(
            nextOffset == end ?? 0, "the next id offset \(nextOffset) is not the end of the last chunk")
        try SnapshotReader.require(nextOffset <= SnapshotReader.counterLimit, "the next id offset is out of range")
        // Appends go to the last chunk: give it the room `append` gives a new one.
        if !chunks.isEmpty { chunks[chunks.count - 1].bytes.reserveCapacity(IDArena.chunkSize) }
        self.init()
        self.chunks = chunks
        self.nextOffset = nextOffset
    }

    /// Whether `length` bytes from `offset` lie in the chunk `withBytes` would read them from.
    func holds(_ offset: Int64, _ length: Int64) -> Bool {
        guard !self.chunks.isEmpty, length >= 0 else { return false }
        let chunk = self.chunks[self.chunkIndex(holding: offset)]
        return offset >= chunk.base && offset - chunk.base <= Int64(chunk.bytes.count) - length
    }
}

extension TouchLog {
    var snapshotByteEstimate: Int { 28 + self.count * MemoryLayout<Touch>.stride + 8 * self.heads.count }

    /// Writes the retained touches (from `start`), their first position and the identities' heads.
    func write(to writer: inout SnapshotWriter) {
        writer.write(self.start)
        writer.write(raw: self.touches[Int(self.start - self.base)...])
        writer.write(raw: self.heads)
    }

    /// Reads what `write(to:)` wrote; positions must chain backwards within the log (see `validate`).
    init(from reader: inout SnapshotReader, lateness: Int64) throws {
        let start = try reader.read(Int64.self)
        let touches = try reader.readRaw(Touch.self)
        let heads = try reader.readRaw(Int64.self)
        try SnapshotReader.require(
            start >= 0 && start <= SnapshotReader.counterLimit - Int64(touches.count),
            "a touch log position is out of range")
        let end = start + Int64(touches.count)
        for head in heads {
            try SnapshotReader.require(
                head >= -1 && head < end, "an identity's latest touch \(head) is past the log's end")
        }
        for (index, touch) in touches.enumerated() {
            // Chains only go back, so a walk along one ends.
            try SnapshotReader.require(
                touch.previous >= -1 && touch.previous < start + Int64(index),
                "a touch's previous position is not before it")
        }
        self.init(lateness: lateness)
        self.touches = touches
        self.base = start
        self.start = start
        self.heads = heads
    }

    /// Checks what the log refers to outside itself: creator and campaign handles, and the id tails in
    /// `ids` of the touches a purchase may still reach (time at least `reachable`; older touches may
    /// legitimately point to chunks already freed, and are never compared).
    func validate(creators: Int, campaigns: Int, ids: IDArena, reachable: Int64) throws {
        for touch in self.touches[Int(self.start - self.base)...] {
            try SnapshotReader.require(
                (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(touch.time),
                "a touch time is out of range")
            try SnapshotReader.require(
                touch.creator >= 0 && Int(touch.creator) < creators && touch.campaign >= -1
                    && Int(touch.campaign) < campaigns,
                "a touch's creator or campaign handle is out of range")
            try SnapshotReader.require(touch.id.length >= 0, "a touch id length is negative")
            if touch.id.length > 16 && touch.time >= reachable {
                try SnapshotReader.require(
                    ids.holds(touch.id.tail, touch.id.length - 16), "a touch id's tail is outside the id arena")
            }
        }
    }
}
