import CRoasPrefetch

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Append-only storage for the ids of retained touches, in chunks freed once event time has passed them.
///
/// Each id is a record, never split across chunks. A touch holds the record's offset; ids are only
/// read to break ties on time and to answer attribution queries, which are rare next to appends.
/// A record starts with a LEB128 header `h`:
/// - `h` even: a whole id of `h >> 1` bytes follows;
/// - `h` odd: a shared id, which takes its first bytes from the last whole record before it in the
///   same chunk (its restart): one byte, the distance back to the restart's start (1 to 255), a
///   LEB128 count of bytes taken from the restart's id, then the rest of the id, `h >> 1` bytes.
///
/// Event ids that a stream numbers ("v-9999998") share most of their bytes with the ids appended
/// just before them: the generator's 9-byte ids take 6 bytes instead of 10. A record is shared only
/// when that is shorter; the next whole record becomes the restart once the distance would pass 255.
struct IDArena: Sendable {
    /// A chunk's bytes are allocated ahead (`bytes.count` is its capacity) and filled up to `used`,
    /// so an append writes in place: no array growth check per byte.
    private struct Chunk {
        var bytes: [UInt8]
        var used = 0
        var base: Int64
        var newestTime: Int64
        /// Where the chunk's last whole record starts, or -1 when it holds none; and where its id lies.
        var restart = -1
        var restartID = 0..<0

        /// A chunk holding `bytes` (`used`: all of them) or, `used` 0, with room for that many.
        init(bytes: [UInt8], used: Int, base: Int64, newestTime: Int64) {
            self.bytes = bytes
            self.used = used
            self.base = base
            self.newestTime = newestTime
        }

        /// Writes the record of `id`, sharing bytes with the restart when that is shorter; returns
        /// where it starts, or nil when the chunk (grown to at most `chunkSize`) has no room for it.
        @inline(__always)
        mutating func append(_ id: UnsafeRawBufferPointer, whole: Int) -> Int? {
            let position = self.used
            var shared = -1
            var size = whole
            let back = position - self.restart
            if self.restart >= 0 && back <= IDArena.maximumBack {
                let common = self.bytes.withUnsafeBytes {
                    IDArena.commonPrefix(id, UnsafeRawBufferPointer(rebasing: $0[self.restartID]))
                }
                let rest = id.count - common
                let sharedSize = IDArena.lebSize(rest << 1 | 1) + 1 + IDArena.lebSize(common) + rest
                if sharedSize < whole {
                    shared = common
                    size = sharedSize
                }
            }
            if position + size > self.bytes.count {
                // An arena's first chunk grows as it fills, up to `chunkSize`; a record larger than
                // that gets a chunk of its own.
                let capacity: Int
                if position + size <= IDArena.chunkSize {
                    capacity = min(max(self.bytes.count * 2, position + size), IDArena.chunkSize)
                } else if position == 0 {
                    capacity = size
                } else {
                    return nil
                }
                self.bytes.append(contentsOf: repeatElement(0, count: capacity - self.bytes.count))
            }
            self.bytes.withUnsafeMutableBytes { raw in
                var at = position
                if shared >= 0 {
                    IDArena.writeLEB((id.count - shared) << 1 | 1, to: raw, at: &at)
                    raw[at] = UInt8(truncatingIfNeeded: back)
                    at += 1
                    IDArena.writeLEB(shared, to: raw, at: &at)
                    let rest = id.count - shared
                    if rest > 0 { (raw.baseAddress! + at).copyMemory(from: id.baseAddress! + shared, byteCount: rest) }
                } else {
                    IDArena.writeLEB(id.count << 1, to: raw, at: &at)
                    if id.count > 0 { (raw.baseAddress! + at).copyMemory(from: id.baseAddress!, byteCount: id.count) }
                }
            }
            if shared < 0 {
                self.restart = position
                self.restartID = (position + size - id.count)..<(position + size)
            }
            self.used = position + size
            return position
        }

        /// The bytes written.
        @inline(__always)
        func withBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
            self.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[0..<self.used])) }
        }
    }

    private var chunks: [Chunk] = []
    private var nextOffset: Int64 = 0
    /// 64 KiB: an engine holds two arenas per partition (`--partitions`), each with a chunk
    /// being filled and one the lookbacks are leaving.
    static let chunkSize = 1 << 16
    /// The bytes an arena's first chunk starts with (it grows as it fills: a small engine holds a
    /// few ids, not 64 KiB).
    static let firstChunkSize = 256
    /// The most bytes a LEB128 header or count takes (ids are lines' fields, shorter than 2^34).
    static let maximumLengthBytes = 5
    /// How far back a shared record's restart may start.
    static let maximumBack = 255

    /// The most bytes the record of an id of `count` bytes takes (a whole record).
    @inline(__always)
    static func recordSize(_ count: Int) -> Int { IDArena.lebSize(count << 1) + count }

    @inline(__always)
    private static func lebSize(_ value: Int) -> Int {
        var size = 1
        var rest = value >> 7
        while rest > 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    /// Appends the record of `bytes`, an id of an event at `time`; returns its offset.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer, time: Int64) -> Int64 {
        let whole = IDArena.recordSize(bytes.count)
        let last: Int
        let position: Int
        if !self.chunks.isEmpty, let found = self.chunks[self.chunks.count - 1].append(bytes, whole: whole) {
            last = self.chunks.count - 1
            position = found
        } else {
            var chunk = Chunk(
                bytes: [UInt8](repeating: 0, count: self.nextOffset == 0 ? IDArena.firstChunkSize : IDArena.chunkSize),
                used: 0, base: self.nextOffset, newestTime: time)
            position = chunk.append(bytes, whole: whole)!
            self.chunks.append(chunk)
            last = self.chunks.count - 1
        }
        if time > self.chunks[last].newestTime { self.chunks[last].newestTime = time }
        let base = self.chunks[last].base
        self.nextOffset = base + Int64(self.chunks[last].used)
        return base + Int64(position)
    }

    @inline(__always)
    private static func writeLEB(_ value: Int, to raw: UnsafeMutableRawBufferPointer, at position: inout Int) {
        var value = value
        while value >= 0x80 {
            raw[position] = UInt8(truncatingIfNeeded: value) | 0x80
            position += 1
            value >>= 7
        }
        raw[position] = UInt8(value)
        position += 1
    }

    /// How many first bytes `a` and `b` have in common.
    @inline(__always)
    private static func commonPrefix(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
        let count = min(a.count, b.count)
        var index = 0
        while index + 8 <= count {
            let difference =
                a.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                ^ b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if difference != 0 { return index + difference.littleEndian.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < count && a[index] == b[index] { index += 1 }
        return index
    }

    /// Frees chunks all of whose ids belong to events older than `time`.
    mutating func release(olderThan time: Int64) {
        var drop = 0
        while drop < self.chunks.count - 1, self.chunks[drop].newestTime < time { drop += 1 }
        if drop > 0 { self.chunks.removeFirst(drop) }
    }

    /// Bytewise order of the ids at `a` in `leftArena` and `b` in `rightArena` (a prefix sorts first).
    static func compare(_ leftArena: IDArena, _ a: Int64, _ rightArena: IDArena, _ b: Int64) -> Int {
        leftArena.withID(at: a) { left in
            rightArena.withID(at: b) { right in
                let common = min(left.count, right.count)
                if common > 0 {
                    let order = memcmp(left.baseAddress!, right.baseAddress!, common)
                    if order != 0 { return order < 0 ? -1 : 1 }
                }
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

    /// The offset the next id gets (the engine appends none past `SnapshotReader.counterLimit`).
    var end: Int64 { self.nextOffset }

    /// Reads a LEB128 value at `position` in `chunk`, moving `position` past it; nil when it runs out.
    private static func readLEB(_ chunk: UnsafeRawBufferPointer, _ position: inout Int) -> Int? {
        var value = 0
        var shift = 0
        while true {
            guard position >= 0, position < chunk.count, shift < 7 * IDArena.maximumLengthBytes else { return nil }
            let byte = Int(chunk[position])
            position += 1
            value |= (byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
    }

    /// The record at `start` in `chunk`, or nil when it does not lie whole in it (or a shared one's
    /// restart is not a whole record before it holding the bytes it takes). The id is the bytes at
    /// `prefix` (empty for a whole record) followed by those at `rest`.
    private static func record(at start: Int, in chunk: UnsafeRawBufferPointer)
        -> (whole: Bool, prefix: Range<Int>, rest: Range<Int>)?
    {
        var position = start
        guard let header = IDArena.readLEB(chunk, &position) else { return nil }
        let length = header >> 1
        if header & 1 == 0 {
            guard length <= chunk.count - position else { return nil }
            return (true, 0..<0, position..<(position + length))
        }
        guard position < chunk.count else { return nil }
        let back = Int(chunk[position])
        position += 1
        var restart = start - back
        guard back >= 1, let shared = IDArena.readLEB(chunk, &position), length <= chunk.count - position,
            let restartHeader = IDArena.readLEB(chunk, &restart), restartHeader & 1 == 0,
            shared <= restartHeader >> 1, restart + (restartHeader >> 1) <= start
        else { return nil }
        return (false, restart..<(restart + shared), position..<(position + length))
    }

    /// Calls `body` with the id bytes of the record at `offset`, which must be one this arena holds.
    func withID<R>(at offset: Int64, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let chunk = self.chunks[self.chunkIndex(holding: offset)]
        return chunk.withBytes { bytes in
            let record = IDArena.record(at: Int(offset - chunk.base), in: bytes)!
            if record.whole { return body(UnsafeRawBufferPointer(rebasing: bytes[record.rest])) }
            let count = record.prefix.count + record.rest.count
            return withUnsafeTemporaryAllocation(byteCount: max(count, 1), alignment: 1) { buffer in
                let id = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
                id.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[record.prefix]))
                UnsafeMutableRawBufferPointer(rebasing: id[record.prefix.count...])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[record.rest]))
                return body(UnsafeRawBufferPointer(id))
            }
        }
    }

    /// Where the last whole record of `chunk` starts and where its id lies (start -1 when it holds
    /// none); nil when its records do not read.
    fileprivate static func lastWholeRecord(in chunk: UnsafeRawBufferPointer) -> (start: Int, id: Range<Int>)? {
        var position = 0
        var last = (start: -1, id: 0..<0)
        while position < chunk.count {
            guard let record = IDArena.record(at: position, in: chunk) else { return nil }
            if record.whole { last = (position, record.rest) }
            position = record.rest.upperBound
        }
        return last
    }
}

/// A view or click kept for attribution, as `TouchLog.touch(at:)` gives it; its id in the owner's
/// `IDArena`.
struct Touch: Sendable {
    var time: Int64
    var creator: Int32
    var campaign: Int32
    /// How many positions back the same identity's previous touch is; 0 for none.
    var previous: UInt32
    /// The offset of the id's record in the owner's `IDArena`, from the page's `idBase`.
    var id: UInt32
}

/// A touch as its page holds it: 20 bytes, its time an offset from the page's `timeBase`.
struct PagedTouch: Sendable {
    /// The time's offset from the page's `timeBase`; `PagedTouch.far` when it does not fit in 32
    /// bits (the page's `farTimes` then holds the time).
    var offset: Int32
    var creator: Int32
    var campaign: Int32
    var previous: UInt32
    var id: UInt32

    static let far = Int32.min
}

/// The views (or the clicks) still within their lookback, in arrival order, chained per identity.
///
/// Touches live in pages of `pageSize` (2,048, 40 KiB): appending never copies what is held (no
/// array doubling), eviction frees whole pages from the front, and a copy of the log (a checkpoint
/// taken while the engine runs on) shares every page until one is written to, which is only the
/// last. A touch stores its time as an offset from its page's first touch's, its id's offset from
/// its page's first and its chain link as a distance, in 32 bits each: a page's ids span at most
/// `pageSize` ids of at most `maximumIDBytes`, and the log holds fewer than 2^32 touches
/// (`hasRoom`), so a link to a retained touch always fits; a time more than 24 days from its page's
/// first (a page filled over weeks of event time) is kept whole beside the page.
/// Appending needs one 8-byte head per identity, with no allocation per identity. Positions are
/// global and only grow, so chains stay valid when the front is dropped. Because every accepted
/// event is at most the lateness older than any event that arrived before it, a walk back along a
/// chain can stop at the first touch more than the lateness before the range it wants.
struct TouchLog: Sendable {
    /// Pages of 2,048 touches (40 KiB): an engine holds two logs per partition (`--partitions`),
    /// each with a page being filled and one the lookbacks are leaving.
    static let pageShift: Int64 = 11
    static let pageSize = 1 << Int(pageShift)
    static let pageMask: Int64 = (1 << pageShift) - 1
    /// The longest id a touch may have (events' ids are at most 256 bytes): a page's ids then span
    /// less than 2^32 bytes of the arena.
    static let maximumIDBytes = 1 << 16
    /// The most touches the log holds at once.
    static let maximumCount = Int(UInt32.max) - 1

    fileprivate struct Page: Sendable {
        var touches: [PagedTouch]
        /// The arena offset touches' `id`s count from.
        var idBase: Int64
        /// The time touches' `offset`s count from: the first touch's.
        var timeBase: Int64
        /// The times of the touches (by index in the page) whose offset is `PagedTouch.far`.
        var farTimes: [Int32: Int64] = [:]

        @inline(__always)
        func time(at index: Int) -> Int64 { self.time(of: self.touches[index], at: index) }

        /// The time of `held`, the touch at `index`, already read: its offset from `timeBase`, or
        /// its far time.
        @inline(__always)
        func time(of held: PagedTouch, at index: Int) -> Int64 {
            held.offset == PagedTouch.far ? self.farTimes[Int32(index)]! : self.timeBase + Int64(held.offset)
        }
    }

    /// `pages[i]` holds the positions from `(firstPage + i) << pageShift` on; a first page started
    /// mid-way (a log restored, or begun, at a position that is not a page's first) is padded.
    private var pages: [Page] = []
    private var firstPage: Int64 = 0
    /// Global position of the first retained touch.
    private var start: Int64 = 0
    /// Global position the next touch gets.
    private var next: Int64 = 0
    /// Global position of each identity's latest touch, -1 for none. Paged with the engine's state
    /// (`setPaged`): a copy of the engine (a checkpoint being written) shares the pages, and an
    /// append then copies one page of heads, not all of them (about 160 MB over every log at 10M users).
    /// Pages of 512 heads (4 KiB): each touch writes its identity's head, at random, so the first
    /// chunk after a checkpoint began copied nearly every page of 64 KiB ones.
    private var heads = PagedArray<Int64>(pageShift: 9)
    let lateness: Int64

    init(lateness: Int64) {
        self.lateness = lateness
    }

    var count: Int { Int(self.next - self.start) }

    /// Keeps the chain heads in pages, or in one array (`PagedArray.setPaged`).
    mutating func setPaged(_ paged: Bool) { self.heads.setPaged(paged) }

    /// The global position the next touch gets. The engine appends no touch at or past
    /// `SnapshotReader.counterLimit`, so every log it writes reads back.
    var end: Int64 { self.next }

    /// An empty log whose first touch gets `position` (the state of a log that dropped that many).
    init(lateness: Int64, startingAt position: Int64) {
        self.init(lateness: lateness)
        self.firstPage = position >> TouchLog.pageShift
        self.start = position
        self.next = position
    }

    /// Starts loading the chain head of `identity`, which `append` reads (a hint: any value is safe).
    @inline(__always)
    func prefetchHead(of identity: Int32) {
        let index = Int(identity)
        guard index >= 0 && index < self.heads.count else { return }
        self.heads.prefetchForWrite(index)
    }

    /// The touch at `position` and its id's arena offset.
    @inline(__always)
    func touch(at position: Int64) -> (touch: Touch, id: Int64) {
        let page = Int((position >> TouchLog.pageShift) - self.firstPage)
        let index = Int(position & TouchLog.pageMask)
        let held = self.pages[page].touches[index]
        let touch = Touch(
            time: self.pages[page].time(of: held, at: index), creator: held.creator, campaign: held.campaign,
            previous: held.previous, id: held.id)
        return (touch, self.pages[page].idBase + Int64(held.id))
    }

    /// Appends a touch whose id's record is at `id` in the arena (ids are appended in the order of
    /// their touches, so offsets only grow).
    @inline(__always)
    mutating func append(time: Int64, creator: Int32, campaign: Int32, id: Int64, identity: Int32) {
        let index = Int(identity)
        if index >= self.heads.count {
            self.heads.append(repeating: -1, count: max(index + 1 - self.heads.count, self.heads.count / 2))
        }
        let previous = self.heads.exchange(index, with: self.next)
        let link = previous >= self.start ? UInt32(truncatingIfNeeded: self.next - previous) : 0
        if self.next & TouchLog.pageMask == 0 || self.pages.isEmpty { self.openPage(idBase: id, timeBase: time) }
        let last = self.pages.count - 1
        let (difference, overflow) = time.subtractingReportingOverflow(self.pages[last].timeBase)
        var offset = PagedTouch.far
        if !overflow, difference > Int64(PagedTouch.far), difference <= Int64(Int32.max) {
            offset = Int32(difference)
        } else {
            self.pages[last].farTimes[Int32(self.pages[last].touches.count)] = time
        }
        self.pages[last].touches.append(
            PagedTouch(
                offset: offset, creator: creator, campaign: campaign, previous: link,
                id: UInt32(truncatingIfNeeded: id - self.pages[last].idBase)))
        self.next += 1
    }

    private mutating func openPage(idBase: Int64, timeBase: Int64) {
        if self.pages.isEmpty { self.firstPage = self.next >> TouchLog.pageShift }
        var page = Page(touches: [], idBase: idBase, timeBase: timeBase)
        // A log's first page grows as it fills (a small engine holds a few touches, not 40 KiB);
        // the pages after it are taken whole.
        if !self.pages.isEmpty || self.next >= TouchLog.pageSize { page.touches.reserveCapacity(TouchLog.pageSize) }
        // Positions before `next` on its page are never read: padding.
        let padding = Int(self.next & TouchLog.pageMask)
        if padding > 0 {
            page.touches.append(
                contentsOf: repeatElement(
                    PagedTouch(offset: 0, creator: 0, campaign: -1, previous: 0, id: 0), count: padding))
        }
        self.pages.append(page)
    }

    /// Drops touches from the front, in arrival order, while they are older than `cutoff`, and frees
    /// the pages that hold none that are left.
    mutating func evict(before cutoff: Int64) {
        var position = self.start
        while position < self.next
            && self.pages[Int((position >> TouchLog.pageShift) - self.firstPage)]
                .time(at: Int(position & TouchLog.pageMask)) < cutoff
        {
            position += 1
        }
        self.start = position
        // An emptied log lets go of its last page too, as a log restored from a snapshot has none:
        // the next touch opens a page either way, so that both write the same bytes.
        let drop =
            position == self.next
            ? self.pages.count : Int(min((position >> TouchLog.pageShift) - self.firstPage, Int64(self.pages.count)))
        if drop > 0 {
            self.pages.removeFirst(drop)
            self.firstPage += Int64(drop)
        }
    }

    /// Calls `body` with every retained touch of `identity` whose time is in `lower...upper`, and
    /// its id's arena offset.
    @inline(__always)
    func forEach(of identity: Int32, in lower: Int64, _ upper: Int64, _ body: (Touch, Int64) -> Void) {
        guard Int(identity) < self.heads.count else { return }
        var position = self.heads[Int(identity)]
        let stop = Engine.subtract(lower, self.lateness)
        while position >= self.start {
            let (touch, id) = self.touch(at: position)
            if touch.time < stop { return }
            if touch.time >= lower && touch.time <= upper { body(touch, id) }
            if touch.previous == 0 { return }
            position -= Int64(touch.previous)
        }
    }

    /// `forEach(of:in:_:_:)` for a search of the latest touch: `body` returns the time of the best
    /// touch found so far (`floor`, at first), and the walk stops at the first touch more than the
    /// lateness older than it. No touch appended before that one can be as late as the best: each
    /// touch was admitted at or after the watermark, which is at least the newest time seen minus
    /// the lateness, so a touch appended earlier is at most the lateness later than one appended
    /// after it. A walk then covers about a lateness' worth of an identity's touches, however many
    /// it has.
    func forEach(
        of identity: Int32, in lower: Int64, _ upper: Int64, floor: Int64, _ body: (Touch, Int64) -> Int64
    ) {
        guard Int(identity) < self.heads.count else { return }
        var position = self.heads[Int(identity)]
        let stop = Engine.subtract(lower, self.lateness)
        var floor = floor
        while position >= self.start {
            let (touch, id) = self.touch(at: position)
            if touch.time < stop || touch.time < Engine.subtract(floor, self.lateness) { return }
            if touch.time >= lower && touch.time <= upper { floor = max(floor, body(touch, id)) }
            if touch.previous == 0 { return }
            position -= Int64(touch.previous)
        }
    }

    /// The pages held, for tests.
    var pageCount: Int { self.pages.count }
}

// MARK: Snapshots

/// Integer fields only, no padding: 5 x 4 bytes.
extension PagedTouch: SnapshotRaw {}

extension IDArena {
    var snapshotByteEstimate: Int { self.chunks.reduce(16) { $0 + 26 + $1.used } }

    /// The chunks held, and the offset the first starts at (above 0 once one has been freed).
    var chunkSpan: (count: Int, base: Int64) { (self.chunks.count, self.chunks.first?.base ?? 0) }

    /// Writes the chunks (base, newest time, bytes) and the next offset.
    func write(to writer: inout SnapshotWriter) {
        writer.write(count: self.chunks.count)
        for chunk in self.chunks {
            writer.write(chunk.base)
            writer.write(chunk.newestTime)
            writer.write(raw: chunk.bytes[0..<chunk.used])
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
            chunks.append(Chunk(bytes: bytes, used: bytes.count, base: base, newestTime: newestTime))
        }
        let nextOffset = try reader.read(Int64.self)
        try SnapshotReader.require(
            nextOffset == end ?? 0, "the next id offset \(nextOffset) is not the end of the last chunk")
        try SnapshotReader.require(nextOffset <= SnapshotReader.counterLimit, "the next id offset is out of range")
        // Appends go to the last chunk: they share bytes with its last whole record, as they would
        // have in the arena written.
        if let last = chunks.indices.last {
            guard let restart = chunks[last].withBytes({ IDArena.lastWholeRecord(in: $0) }) else {
                throw SnapshotError.invalid("the last id chunk's records do not read")
            }
            chunks[last].restart = restart.start
            chunks[last].restartID = restart.id
        }
        self.init()
        self.chunks = chunks
        self.nextOffset = nextOffset
    }

    /// Whether a whole id record starts at `offset` in a chunk held (so `withID(at:)` can read it).
    func holdsRecord(at offset: Int64) -> Bool {
        guard !self.chunks.isEmpty else { return false }
        let chunk = self.chunks[self.chunkIndex(holding: offset)]
        guard offset >= chunk.base, offset - chunk.base < Int64(chunk.used) else { return false }
        return chunk.withBytes { IDArena.record(at: Int(offset - chunk.base), in: $0) != nil }
    }
}

extension TouchLog {
    var snapshotByteEstimate: Int {
        44 + self.count * MemoryLayout<PagedTouch>.stride
            + self.pages.reduce(0) { $0 + 24 + 12 * $1.farTimes.count } + 8 * self.heads.count
    }

    /// The pages holding retained touches: the index of the first, and how many.
    private var retainedPages: Range<Int> {
        guard self.start < self.next else { return 0..<0 }
        return Int((self.start >> TouchLog.pageShift) - self.firstPage)..<self.pages.count
    }

    /// The retained touches, page by page, with the page (whose first retained touch is `from`).
    private var retained: [(page: Page, from: Int)] {
        let pages = self.retainedPages
        return pages.map { index in
            (self.pages[index], index == pages.lowerBound ? Int(self.start & TouchLog.pageMask) : 0)
        }
    }

    /// Writes the retained touches (from `start`), their first position, the id and time bases of
    /// the pages holding them, the times kept whole (page, index in it and time, in order) and the
    /// identities' heads.
    func write(to writer: inout SnapshotWriter) {
        writer.write(self.start)
        let retained = self.retained
        writer.write(rawParts: retained.map { $0.page.touches[$0.from...] })
        writer.write(raw: retained.map(\.page.idBase))
        writer.write(raw: retained.map(\.page.timeBase))
        var far: [Int64] = []
        for (number, (page, from)) in retained.enumerated() {
            for (index, time) in page.farTimes.sorted(by: { $0.key < $1.key }) where Int(index) >= from {
                far += [Int64(number), Int64(index), time]
            }
        }
        writer.write(raw: far)
        self.heads.withParts { writer.write(rawParts: $0) }
    }

    /// Reads what `write(to:)` wrote: one id base per page the touches span, heads within the log.
    init(from reader: inout SnapshotReader, lateness: Int64) throws {
        let start = try reader.read(Int64.self)
        let touches = try reader.readRaw(PagedTouch.self)
        let idBases = try reader.readRaw(Int64.self)
        let timeBases = try reader.readRaw(Int64.self)
        let far = try reader.readRaw(Int64.self)
        let heads = try reader.readRaw(Int64.self)
        try SnapshotReader.require(
            start >= 0 && start <= SnapshotReader.counterLimit - Int64(touches.count)
                && touches.count <= TouchLog.maximumCount,
            "a touch log position is out of range")
        let end = start + Int64(touches.count)
        let pageCount = touches.isEmpty ? 0 : Int(((end - 1) >> TouchLog.pageShift) - (start >> TouchLog.pageShift) + 1)
        try SnapshotReader.require(
            idBases.count == pageCount, "\(idBases.count) id bases for touches on \(pageCount) pages")
        try SnapshotReader.require(
            timeBases.count == pageCount, "\(timeBases.count) time bases for touches on \(pageCount) pages")
        for base in idBases {
            try SnapshotReader.require(
                base >= 0 && base <= SnapshotReader.counterLimit, "a touch page's id base is out of range")
        }
        for base in timeBases {
            try SnapshotReader.require(
                (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(base), "a touch page's time base is out of range")
        }
        try SnapshotReader.require(far.count % 3 == 0, "the whole touch times are not in threes")
        for head in heads {
            try SnapshotReader.require(
                head >= -1 && head < end, "an identity's latest touch \(head) is past the log's end")
        }
        // Chains only go back (a link is a distance), so a walk along one ends.
        self.init(lateness: lateness, startingAt: start)
        var position = start
        var consumed = 0
        var farAt = 0
        for (number, (idBase, timeBase)) in zip(idBases, timeBases).enumerated() {
            self.openPage(idBase: idBase, timeBase: timeBase)
            let from = Int(position & TouchLog.pageMask)
            let taken = min(TouchLog.pageSize - from, touches.count - consumed)
            let last = self.pages.count - 1
            self.pages[last].touches.append(contentsOf: touches[consumed..<(consumed + taken)])
            // The whole times of this page, in order, each for a touch marked far, and one for each.
            var previous = -1
            while farAt < far.count && far[farAt] == Int64(number) {
                let index = far[farAt + 1]
                try SnapshotReader.require(
                    index > Int64(previous) && index >= Int64(from) && index < Int64(from + taken)
                        && self.pages[last].touches[Int(index)].offset == PagedTouch.far,
                    "a whole touch time is for no touch marked far")
                let time = far[farAt + 2]
                try SnapshotReader.require(
                    (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(time), "a touch time is out of range")
                self.pages[last].farTimes[Int32(index)] = time
                previous = Int(index)
                farAt += 3
            }
            let marked = self.pages[last].touches[from...].lazy.filter { $0.offset == PagedTouch.far }.count
            try SnapshotReader.require(
                marked == self.pages[last].farTimes.count, "a touch marked far has no whole time")
            consumed += taken
            position += Int64(taken)
            self.next = position
        }
        try SnapshotReader.require(farAt == far.count, "a whole touch time is for a page the log does not hold")
        self.heads = PagedArray(heads, pageShift: self.heads.pageShift)
    }

    /// Checks what the log refers to outside itself: creator and campaign handles, and the ids in
    /// `ids` of the touches a purchase may still reach (time at least `reachable`; older touches may
    /// legitimately point to chunks already freed, and are never compared).
    func validate(creators: Int, campaigns: Int, ids: IDArena, reachable: Int64) throws {
        for (page, from) in self.retained {
            for index in from..<page.touches.count {
                let touch = page.touches[index]
                let time = page.time(at: index)
                try SnapshotReader.require(
                    (-SnapshotReader.timeLimit...SnapshotReader.timeLimit).contains(time), "a touch time is out of range")
                try SnapshotReader.require(
                    touch.creator >= 0 && Int(touch.creator) < creators && touch.campaign >= -1
                        && Int(touch.campaign) < campaigns,
                    "a touch's creator or campaign handle is out of range")
                if time >= reachable {
                    try SnapshotReader.require(
                        ids.holdsRecord(at: page.idBase + Int64(touch.id)), "a touch's id is outside the id arena")
                }
            }
        }
    }
}
