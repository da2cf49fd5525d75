#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An event id kept for ordering ties: its first 16 bytes inline, big-endian, the rest in an arena.
struct SortKey: Sendable {
    var high: UInt64
    var low: UInt64
    var length: Int32
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
        self.length = Int32(count)
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

    private func withBytes<R>(_ offset: Int64, _ length: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        var low = 0
        var high = self.chunks.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if self.chunks[middle].base <= offset { low = middle } else { high = middle - 1 }
        }
        let chunk = self.chunks[low]
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
