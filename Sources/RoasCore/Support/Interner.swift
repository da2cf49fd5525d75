import CRoasPrefetch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps byte strings (user ids, creators, campaigns) to dense `Int32` handles, without allocating per lookup.
///
/// Bytes live in one arena; an open-addressing table of `(hash tag, handle)` finds them. Handles are
/// stable for the life of the interner, so state elsewhere is keyed by small integers, not `String`s.
/// With `setPaged(true)` the arena, the offsets and the table are kept in pages (`PagedArray`): a
/// copy of the interner (a checkpoint being written) shares them, and a new string then copies only
/// the pages it writes to.
public struct Interner: Sendable {
    private var arena = PagedArray<UInt8>(pageShift: 16)
    private var offsets = PagedArray<Int>(repeating: 0, count: 1, pageShift: 13)
    /// Open addressing; a key of at most 16 bytes is kept in its slot too, so finding it reads the
    /// slot alone instead of the slot, the offsets and the arena (one or two cache lines, not three).
    private var slots: PagedArray<Slot>
    private var mask: Int
    /// Texts decoded so far, by handle: only the handles rows name (creators, campaigns), never users'.
    private var strings: [Int32: String] = [:]

    public init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        self.slots = PagedArray(repeating: Slot.empty, count: size, pageShift: Interner.slotPageShift)
        self.mask = size - 1
    }

    /// Pages of 256 slots (6 KiB): a new user writes a slot at random, and while a checkpoint holds
    /// the pages that copies the slot's page; with 96 KiB pages the first chunks after a checkpoint
    /// began copied hundreds of MB at 10M users (page faults: long applies).
    static let slotPageShift = 8

    /// `meta` is `hash tag (24 bits) << 40 | min(length, 255) << 32 | (handle + 1)`; 0 means empty.
    /// `first` and `last` hold a key of at most 16 bytes (`Slot.words`).
    fileprivate struct Slot: Sendable {
        var first: UInt64
        var last: UInt64
        var meta: UInt64

        static let empty = Slot(first: 0, last: 0, meta: 0)

        /// A key of at most 16 bytes as two words: bytes 0-7 and the last 8 (overlapping) when 8 or
        /// more, else the bytes packed into `first`. Equal words and lengths mean equal keys.
        @inline(__always)
        static func words(_ bytes: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
            let count = bytes.count
            guard count > 0 else { return (0, 0) }
            let base = bytes.baseAddress!
            if count >= 8 {
                return (base.loadUnaligned(as: UInt64.self), base.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self))
            }
            var word: UInt64 = 0
            for index in 0..<count { word |= UInt64(base.load(fromByteOffset: index, as: UInt8.self)) << (index * 8) }
            return (word, 0)
        }

        @inline(__always)
        static func meta(hash: UInt64, length: Int, handle: Int) -> UInt64 {
            (hash >> 40) << 40 | UInt64(min(length, 255)) << 32 | UInt64(handle + 1)
        }
    }

    /// Keeps the arena, the offsets and the table in pages (`PagedArray.setPaged`), or in one array each.
    mutating func setPaged(_ paged: Bool) {
        self.growth = nil
        self.arena.setPaged(paged)
        self.offsets.setPaged(paged)
        self.slots.setPaged(paged)
    }

    var isPaged: Bool { self.slots.isPaged }

    /// Pages replaced by copies of their own because a copy of the interner held them (for tests).
    var pagesCopied: Int { self.arena.pagesCopied + self.offsets.pagesCopied + self.slots.pagesCopied }

    /// The number of distinct strings interned.
    public var count: Int { self.offsets.count - 1 }

    /// True when `bytes` were interned.
    public func contains(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if case .found = self.find(bytes) { return true }
        return false
    }

    private enum Lookup {
        case found(Int32)
        /// Not interned: the empty slot it goes in, and the words that go there.
        case missing(index: Int, first: UInt64, last: UInt64)
    }

    @inline(__always)
    private func find(_ bytes: UnsafeRawBufferPointer) -> Lookup {
        self.find(bytes, hash: Interner.hash(bytes))
    }

    @inline(__always)
    private func find(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> Lookup {
        let probe = Slot.meta(hash: hash, length: bytes.count, handle: -1)
        let isShort = bytes.count <= 16
        let (first, last) = isShort ? Slot.words(bytes) : (0, 0)
        var index = Int(truncatingIfNeeded: hash) & self.mask
        while true {
            let slot = self.slots[index]
            if slot.meta == 0 { return .missing(index: index, first: first, last: last) }
            // Same tag and length (the low 32 bits are the handle).
            if slot.meta >> 32 == probe >> 32 {
                let handle = Int(truncatingIfNeeded: slot.meta & 0xffff_ffff) - 1
                if isShort ? (slot.first == first && slot.last == last) : self.equals(handle, bytes) {
                    return .found(Int32(truncatingIfNeeded: handle))
                }
            }
            index = (index + 1) & self.mask
        }
    }

    /// The handle of `bytes`, adding them when new.
    @inline(__always)
    public mutating func intern(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        self.intern(bytes, hash: Interner.hash(bytes))
    }

    /// The hash of the bytes the interner keys its table by (`ByteHash`, a fixed seed: the same in
    /// every process), so callers that need one (reach) do not hash the bytes again.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { ByteHash.hash(bytes, seed: 0x9e37_79b9_7f4a_7c15) }

    /// `intern(_:)` with `hash`, which must be `Interner.hash(bytes)`, computed ahead (the reading
    /// thread computes it for views and clicks; reach uses it too).
    @inline(__always)
    mutating func intern(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> Int32 {
        let (index, first, last): (Int, UInt64, UInt64)
        switch self.find(bytes, hash: hash) {
        case .found(let handle): return handle
        case .missing(let slot, let a, let b): (index, first, last) = (slot, a, b)
        }
        let handle = self.count
        self.arena.append(contentsOf: bytes.assumingMemoryBound(to: UInt8.self))
        self.offsets.append(self.arena.count)
        self.slots[index] = Slot(first: first, last: last, meta: Slot.meta(hash: hash, length: bytes.count, handle: handle))
        if self.count * 2 > self.slots.count { self.grow() }
        return Int32(truncatingIfNeeded: handle)
    }

    /// The handle `bytes` have, or would get if interned next.
    func prospectiveHandle(_ bytes: UnsafeRawBufferPointer, hash: UInt64) -> Int32 {
        if case .found(let handle) = self.find(bytes, hash: hash) { return handle }
        return Int32(truncatingIfNeeded: self.count)
    }

    /// Starts loading the slot where a lookup of the bytes whose `Interner.hash` is `hash` begins.
    @inline(__always)
    func prefetch(hash: UInt64) {
        self.slots.prefetch(Int(truncatingIfNeeded: hash) & self.mask)
    }

    /// The handle in the slot where a lookup of bytes of `length` whose hash is `hash` begins, when
    /// that slot's tag and length match: a guess, not a lookup (the bytes are not compared), for
    /// prefetching what the handle indexes. Call it after `prefetch(hash:)` has had time to load the slot.
    @inline(__always)
    func guessHandle(hash: UInt64, length: Int) -> Int32? {
        let meta = self.slots[Int(truncatingIfNeeded: hash) & self.mask].meta
        guard meta >> 32 == Slot.meta(hash: hash, length: length, handle: -1) >> 32 else { return nil }
        return Int32(truncatingIfNeeded: Int(truncatingIfNeeded: meta & 0xffff_ffff) - 1)
    }

    /// The handle of `string`, adding it when new.
    public mutating func intern(_ string: String) -> Int32 {
        var copy = string
        return copy.withUTF8 { self.intern(UnsafeRawBufferPointer($0)) }
    }

    /// The bytes of `handle`.
    public func withBytes<R>(of handle: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let start = self.offsets[Int(handle)]
        let end = self.offsets[Int(handle) + 1]
        return self.arena.withElements(from: start, to: end) { body(UnsafeRawBufferPointer($0)) }
    }

    /// The text of `handle` (decoded as UTF-8 once, then cached).
    public mutating func string(for handle: Int32) -> String {
        if let cached = self.strings[handle] { return cached }
        let made = self.withBytes(of: handle) { String(decoding: $0, as: UTF8.self) }
        self.strings[handle] = made
        return made
    }

    /// Orders two handles by their bytes (unsigned, bytewise; a prefix sorts first).
    public func compare(_ a: Int32, _ b: Int32) -> Bool {
        self.withBytes(of: a) { left in self.withBytes(of: b) { right in left.lexicographicallyPrecedes(right) } }
    }

    @inline(__always)
    private func equals(_ handle: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let start = self.offsets[handle]
        let length = self.offsets[handle + 1] - start
        guard length == bytes.count else { return false }
        if length == 0 { return true }
        return self.arena.withElements(from: start, to: start + length) { stored in
            let left = UnsafeRawPointer(stored.baseAddress!)
            let right = bytes.baseAddress!
            // Most ids are short: compare them in at most two overlapping 8-byte words, without a call.
            if length >= 8 && length <= 16 {
                return left.loadUnaligned(as: UInt64.self) == right.loadUnaligned(as: UInt64.self)
                    && left.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
                        == right.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
            }
            return memcmp(left, right, length) == 0
        }
    }

    /// A table of twice as many slots being filled beside the one lookups read, a few strings per
    /// new string, so that no single string pays for moving them all (at 10M users, a whole move
    /// took seconds). Lookups and snapshots read `slots`, which holds every string until the new
    /// table takes its place; a copy of the interner may drop it (`dropGrowth`).
    private struct Growth: Sendable {
        var slots: PagedArray<Slot>
        /// Handles below this are in `slots` already.
        var moved = 0
    }

    private var growth: Growth?

    /// A table of at most this many slots is replaced at once when it fills (a millisecond or so).
    static let wholeGrowthSlots = 1 << 16
    /// Strings moved into the new table for each string interned while it fills: the table the
    /// lookups read is at most about 8/15 full when the move ends.
    static let stringsMovedPerString = 16
    /// Empty slots the new table gets for each string interned before the strings move (24 KiB: a
    /// few microseconds, where a chunk of a thousand new users took tens of milliseconds with 96 KiB).
    static let emptySlotsPerString = 1024

    /// Grows the table (`count * 2 > slots.count`): a step of the move to a table of twice the slots,
    /// or the whole move when the table is small or has come near full (`isNearlyFull`: only when
    /// growths were dropped before they ended).
    @inline(never)
    private mutating func grow() {
        let size = self.slots.count * 2
        // Taken out, so that this is the new table's only holder while it is filled.
        var growth =
            self.growth.take()
            ?? Growth(slots: PagedArray(pageShift: Interner.slotPageShift, paged: self.slots.isPaged))
        growth.slots.reserveCapacity(size)
        let whole = self.slots.count <= Interner.wholeGrowthSlots || Interner.isNearlyFull(count: self.count, slots: self.slots.count)
        // First the new table's empty slots, `emptySlotsPerString` at a time, then the strings, in
        // handle order.
        if growth.slots.count < size {
            growth.slots.append(
                repeating: .empty, count: whole ? size - growth.slots.count : min(Interner.emptySlotsPerString, size - growth.slots.count))
            if growth.slots.count < size {
                self.growth = growth
                return
            }
        }
        let end = whole ? self.count : min(self.count, growth.moved + Interner.stringsMovedPerString)
        let mask = size - 1
        var from = growth.moved
        // A batch at a time: the slots first, each one's place in the new table prefetched, then the
        // places filled, so that their cache misses overlap instead of following one another.
        withUnsafeTemporaryAllocation(of: (Slot, Int).self, capacity: Interner.stringsMovedPerString) { moving in
            while from < end {
                let to = min(end, from + Interner.stringsMovedPerString)
                for handle in from..<to {
                    let (slot, hash) = self.slot(of: handle)
                    let index = Int(truncatingIfNeeded: hash) & mask
                    growth.slots.prefetchForWrite(index)
                    moving.initializeElement(at: handle - from, to: (slot, index))
                }
                for (slot, first) in moving[0..<(to - from)] {
                    var index = first
                    while growth.slots[index].meta != 0 { index = (index + 1) & mask }
                    growth.slots[index] = slot
                }
                from = to
            }
        }
        growth.moved = end
        if end < self.count {
            self.growth = growth
            return
        }
        self.slots = growth.slots
        self.mask = mask
    }

    /// The slot of `handle`'s string, and its hash.
    @inline(__always)
    private func slot(of handle: Int) -> (Slot, UInt64) {
        self.withBytes(of: Int32(handle)) { bytes in
            let hash = Interner.hash(bytes)
            let (first, last) = bytes.count <= 16 ? Slot.words(bytes) : (0, 0)
            return (Slot(first: first, last: last, meta: Slot.meta(hash: hash, length: bytes.count, handle: handle)), hash)
        }
    }

    /// True when `count` strings fill at least 9/16 of `slots`: the most a table may hold (in a
    /// snapshot too), a growth in progress or not.
    @inline(__always)
    static func isNearlyFull(count: Int, slots: Int) -> Bool { count * 16 >= slots * 9 }

    /// Forgets a growth in progress (the next string starts it over): for a copy that only writes a
    /// snapshot, which would otherwise hold the new table's pages while the interner fills them.
    mutating func dropGrowth() { self.growth = nil }

    /// The slots of the table lookups read (for tests).
    var tableSize: Int { self.slots.count }

    /// True while a table twice the size is being filled (for tests).
    var isGrowing: Bool { self.growth != nil }
}

// MARK: Snapshots

/// Integer fields only, no padding: 8 + 8 + 8 bytes.
extension Interner.Slot: SnapshotRaw {}

extension Interner {
    var snapshotByteEstimate: Int {
        20 + self.arena.count + 8 * self.offsets.count
            + SnapshotWriter.tableByteCount(
                slots: self.slots.count, occupied: self.count, stride: MemoryLayout<Slot>.stride)
    }

    /// Writes the bytes, their offsets and the table; the decoded-string cache is not kept.
    func write(to writer: inout SnapshotWriter) {
        self.arena.withParts { writer.write(rawParts: $0) }
        self.offsets.withParts { writer.write(rawParts: $0) }
        self.slots.withParts { parts in writer.write(table: parts, occupied: self.count) { $0.meta == 0 } }
    }

    /// Reads what `write(to:)` wrote: offsets that rise from 0 to the arena's end, and a power-of-two
    /// table at most half full whose every occupied slot holds a handle below the count.
    init(from reader: inout SnapshotReader) throws {
        let arena = try reader.readRaw(UInt8.self)
        let offsets = try reader.readRaw(Int.self)
        try SnapshotReader.require(
            offsets.first == 0 && offsets.last == arena.count, "interned offsets do not span the arena")
        for index in 1..<offsets.count {
            try SnapshotReader.require(offsets[index - 1] <= offsets[index], "interned offsets go backwards")
        }
        let count = offsets.count - 1
        try SnapshotReader.require(count < Int(Int32.max), "too many interned strings")
        let (slots, occupied) = try reader.readTable(empty: Slot.empty) {
            $0.meta == 0
        } check: { slot in
            let handle = Int(truncatingIfNeeded: slot.meta & 0xffff_ffff) - 1
            try SnapshotReader.require(handle >= 0 && handle < count, "an interner slot's handle is out of range")
        }
        let size = slots.count
        try SnapshotReader.require(
            size >= 16 && size & (size - 1) == 0, "the interner's table size \(size) is not a power of two from 16")
        try SnapshotReader.require(occupied == count, "the interner's table holds \(occupied) strings, not \(count)")
        try SnapshotReader.require(!Interner.isNearlyFull(count: count, slots: size), "the interner's table is 9/16 full or more")
        self.init(capacity: 1)
        self.arena = PagedArray(arena, pageShift: self.arena.pageShift)
        self.offsets = PagedArray(offsets, pageShift: self.offsets.pageShift)
        self.slots = PagedArray(slots, pageShift: Interner.slotPageShift)
        self.mask = size - 1
    }
}
