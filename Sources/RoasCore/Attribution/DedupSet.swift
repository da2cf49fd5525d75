import CRoasPrefetch

/// The event ids seen within the dedup horizon, as fingerprints with their event time.
///
/// 64 open-addressing tables (shards, chosen by a fingerprint's top 6 bits) of 16-byte entries,
/// each kept at most 64-70% full (by shard: `fullPermille(shard:)`); expired entries are dropped
/// when a shard would pass that. An entry holds a fingerprint's high 64 bits, then in one word the
/// top `64 - timeBits` bits of its low 64 and the event time as an offset from its shard's `epoch`:
/// `timeBits` is 32, or more when the dedup horizon plus the lateness needs more than 31 bits of
/// milliseconds (`DedupSet.timeBits(span:)`), so ids are told apart by at least 96 - 6 bits beyond
/// their shard (two of 10 million ids within the horizon share those with a chance of about
/// 10^-14). A shard moves its epoch up to the cutoff (`rebase`) when an id's time no longer fits,
/// about once per `2^timeBits` ms minus the horizon of stream time; the rare time that does not fit
/// even then (an event far ahead of every other) is kept exactly in `far`, a dictionary beside the
/// shards.
///
/// A lookup ignores entries older than the cutoff, so the answer depends only on the cutoffs given,
/// which never decrease, not on when a shard was last cleaned. A shard's table past
/// `wholeRebuildSlots` grows beside itself, a few slots per id taken (`Shard.grow`), so that no
/// id pays for moving a million; shards reach their limits at different fullness, so a growth
/// holds two tables of one shard, a few at most, never two copies of the whole set. With `paged` (an engine that checkpoints while it runs:
/// `roas serve --data-dir`; `roas worker --data-dir` does not page yet), each table is kept in pages
/// of 256 entries (4 KiB), so that a copy of the set (a checkpoint being written) shares them. Under load nearly
/// every page gets an id while a large checkpoint is written, so copying a page the first time the
/// engine writes to it would copy nearly the whole set; instead, an id whose page the copy holds is
/// kept beside the tables (`overlay`, 48-96 bytes an id), and moved into its page a few per id
/// taken once the copy is gone. Past `overlayLimit` ids, or a sixteenth of the ids the set held when
/// the copy was taken if that is more, the pages are copied after all. Pages cost
/// each lookup a few more cache lines (about 6-10% of `roas run`'s CPU time on the reference
/// workload), so an engine that never checkpoints keeps each table in one array.
///
/// Memory: 23-64 bytes per id seen within the horizon (a shard holds 1.4 to 4 times its live count:
/// it is rebuilt at 64-70% full and doubled when over half is still live); 23-50 while the set
/// grows, plus the new tables of the shards growing at the time.
struct DedupSet: Sendable {
    fileprivate struct Entry: Sendable {
        var high: UInt64
        /// The fingerprint's low bits above `timeBits`, then the time's offset from the epoch plus 1
        /// (0: an empty slot).
        var tail: UInt64

        static let empty = Entry(high: 0, tail: 0)
    }

    /// What a shard did with an id.
    fileprivate enum Outcome {
        case duplicate, inserted
        /// Not a duplicate, but its time is not within reach of the shard's epoch.
        case outOfReach
        /// Not a duplicate, but its page is shared with a copy of the set: nothing was written.
        case held
    }

    /// A shard's table of entries: one array (`FlatEntries`) or pages (`PagedEntries`).
    fileprivate protocol EntryTable: Sendable {
        /// `count` empty entries.
        init(count: Int)
        /// `entries` as a table.
        init(_ entries: [Entry])
        /// No entries yet, room for `capacity` (`appendEmpty`).
        init(reserving capacity: Int)
        /// Adds `count` empty entries at the end (whole pages when paged).
        mutating func appendEmpty(_ count: Int)
        var count: Int { get }
        subscript(index: Int) -> Entry { get }
        /// Writes `entry` at `index` and notes where it is (for `prefetch(at:)`). A page that a copy
        /// of the set also holds is copied first when `copying`, else left as it is: false then.
        mutating func write(_ entry: Entry, at index: Int, copying: Bool) -> Bool
        /// Starts loading the slot at `index` where it was when last written (nothing when not known).
        func prefetch(at index: Int)
        /// Starts loading what `prefetch(at:)` reads to find the slot (nothing for one array).
        func prefetchPage(of index: Int)
        /// Pages replaced by a copy of their own since the shard was made (0 for one array), for tests.
        var copies: Int { get set }
        /// Calls `body` with the entries in parts, in order.
        func withParts<R>(_ body: ([UnsafeBufferPointer<Entry>]) throws -> R) rethrows -> R
    }

    /// A table of entries in one array.
    fileprivate struct FlatEntries: EntryTable {
        private(set) var entries: [Entry]
        /// Where `entries` was when last written, for `DedupSet.prefetch` alone: reading the array's
        /// address from a shard in `shards` copies the array (a retain and a release, a few per
        /// cent of the engine's time). A stale address (a copy-on-write since, or a table rebuilt)
        /// only wastes a prefetch, which never faults. An address's bits, so that the table stays
        /// `Sendable`.
        private var base: UInt = 0

        init(count: Int) { self.init(Array(repeating: Entry.empty, count: count)) }

        init(_ entries: [Entry]) {
            self.entries = entries
            self.base = self.entries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        }

        init(reserving capacity: Int) {
            self.entries = []
            self.entries.reserveCapacity(capacity)
        }

        mutating func appendEmpty(_ count: Int) {
            self.entries.append(contentsOf: repeatElement(Entry.empty, count: count))
            self.base = self.entries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        }

        var count: Int { self.entries.count }

        @inline(__always)
        subscript(index: Int) -> Entry { self.entries[index] }

        /// Always writes (copying the array when it is shared).
        @inline(__always)
        mutating func write(_ entry: Entry, at index: Int, copying: Bool) -> Bool {
            self.entries.withUnsafeMutableBufferPointer { table in
                table[index] = entry
                self.base = UInt(bitPattern: table.baseAddress)
            }
            return true
        }

        @inline(__always)
        func prefetch(at index: Int) {
            if let base = UnsafeRawPointer(bitPattern: self.base) { roas_prefetch(base + index * MemoryLayout<Entry>.stride) }
        }

        @inline(__always)
        func prefetchPage(of index: Int) {}

        var copies: Int {
            get { 0 }
            set {}
        }

        func withParts<R>(_ body: ([UnsafeBufferPointer<Entry>]) throws -> R) rethrows -> R {
            try self.entries.withUnsafeBufferPointer { try body([$0]) }
        }
    }

    /// A page of `PagedEntries`: its size, then its entries, in one object. Written only while one
    /// table alone holds it; a page a copy of the set also holds is replaced by a copy, or not
    /// written at all (`DedupSet.overlay`).
    fileprivate final class EntryPage: ManagedBuffer<Int, Entry> {
        /// A page holding `entries`.
        static func make(_ entries: UnsafeBufferPointer<Entry>) -> EntryPage {
            let page = unsafeDowncast(EntryPage.create(minimumCapacity: entries.count) { _ in entries.count }, to: EntryPage.self)
            page.withUnsafeMutablePointerToElements { elements in
                if let source = entries.baseAddress { elements.initialize(from: source, count: entries.count) }
            }
            return page
        }

        /// A page of `count` empty entries.
        static func make(empty count: Int) -> EntryPage {
            let page = unsafeDowncast(EntryPage.create(minimumCapacity: count) { _ in count }, to: EntryPage.self)
            page.withUnsafeMutablePointerToElements { $0.initialize(repeating: Entry.empty, count: count) }
            return page
        }

        /// Where the entries are: fixed for the page's life.
        var address: UInt { self.withUnsafeMutablePointerToElements { UInt(bitPattern: $0) } }

        deinit {
            _ = self.withUnsafeMutablePointers { count, elements in elements.deinitialize(count: count.pointee) }
        }
    }

    /// A reference to a page. The engine's thread writes a page only while its table alone holds
    /// it; a copy of the set being written on another thread only reads the pages it holds.
    fileprivate struct PageReference: @unchecked Sendable {
        var page: EntryPage
    }

    /// A table of entries in pages of `pageSize` (one smaller page when the table is smaller).
    fileprivate struct PagedEntries: EntryTable {
        static let pageShift = 8
        static let pageSize = 1 << pageShift
        static let pageMask = pageSize - 1

        private(set) var pages: [PageReference]
        /// Where each page keeps its entries (`EntryPage.address`), read and written through: an
        /// address's bits, so that the table stays `Sendable`.
        private(set) var bases: [UInt]
        /// Where `bases` keeps its elements (for `DedupSet.prefetchPage` alone, stale after a
        /// copy-on-write until the next page is replaced).
        private(set) var basesAddress: UInt = 0
        private(set) var count: Int
        /// Pages replaced by a copy of their own (`write` with `copying`), for tests.
        var copies = 0

        /// `count` empty entries.
        init(count: Int) {
            let size = min(count, PagedEntries.pageSize)
            self.pages = (0..<max(1, count >> PagedEntries.pageShift)).map { _ in PageReference(page: .make(empty: size)) }
            self.bases = self.pages.map(\.page.address)
            self.count = count
            self.noteAddresses()
        }

        /// `entries`, paged.
        init(_ entries: [Entry]) {
            let size = max(1, min(entries.count, PagedEntries.pageSize))
            self.pages = entries.withUnsafeBufferPointer { all in
                stride(from: 0, to: max(entries.count, 1), by: size).map {
                    PageReference(page: .make(UnsafeBufferPointer(rebasing: all[$0..<min($0 + size, entries.count)])))
                }
            }
            self.bases = self.pages.map(\.page.address)
            self.count = entries.count
            self.noteAddresses()
        }

        init(reserving capacity: Int) {
            self.pages = []
            self.pages.reserveCapacity(capacity >> PagedEntries.pageShift)
            self.bases = []
            self.bases.reserveCapacity(capacity >> PagedEntries.pageShift)
            self.count = 0
            self.noteAddresses()
        }

        mutating func appendEmpty(_ count: Int) {
            precondition(count & PagedEntries.pageMask == 0, "paged entries are added a page at a time")
            for _ in 0..<(count >> PagedEntries.pageShift) {
                let page = EntryPage.make(empty: PagedEntries.pageSize)
                self.pages.append(PageReference(page: page))
                self.bases.append(page.address)
            }
            self.count += count
            self.noteAddresses()
        }

        private mutating func noteAddresses() {
            self.basesAddress = self.bases.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        }

        @inline(__always)
        subscript(index: Int) -> Entry {
            UnsafePointer<Entry>(bitPattern: self.bases[index >> PagedEntries.pageShift]).unsafelyUnwrapped[
                index & PagedEntries.pageMask]
        }

        /// Writes `entry` at `index` when this table alone holds its page (or, when `copying`,
        /// once the page is replaced by a copy of its own).
        @inline(__always)
        mutating func write(_ entry: Entry, at index: Int, copying: Bool) -> Bool {
            let page = index >> PagedEntries.pageShift
            if !isKnownUniquelyReferenced(&self.pages[page].page) {
                guard copying else { return false }
                let copy = self.pages[page].page.withUnsafeMutablePointers { count, elements in
                    EntryPage.make(UnsafeBufferPointer(start: elements, count: count.pointee))
                }
                self.pages[page].page = copy
                self.bases[page] = copy.address
                self.copies += 1
                self.noteAddresses()
            }
            UnsafeMutablePointer<Entry>(bitPattern: self.bases[page]).unsafelyUnwrapped[index & PagedEntries.pageMask] = entry
            return true
        }

        /// Starts loading where `bases` keeps page `index`'s address.
        @inline(__always)
        func prefetchPage(of index: Int) {
            let offset = (index >> PagedEntries.pageShift) * MemoryLayout<UInt>.stride
            if let bases = UnsafeRawPointer(bitPattern: self.basesAddress) { roas_prefetch(bases + offset) }
        }

        /// Starts loading the slot at `index`, and the page's reference count (which a write
        /// reads; the entries follow 24 bytes of object header and size): another cache line than
        /// the slot's.
        @inline(__always)
        func prefetch(at index: Int) {
            guard let base = UnsafeRawPointer(bitPattern: self.bases[index >> PagedEntries.pageShift]) else { return }
            roas_prefetch(base - 16)
            roas_prefetch(base + (index & PagedEntries.pageMask) * MemoryLayout<Entry>.stride)
        }

        func withParts<R>(_ body: ([UnsafeBufferPointer<Entry>]) throws -> R) rethrows -> R {
            let size = min(self.count, PagedEntries.pageSize)
            return try withExtendedLifetime(self.pages) {
                try body(self.bases.map { UnsafeBufferPointer(start: UnsafePointer<Entry>(bitPattern: $0), count: size) })
            }
        }
    }

    /// Ids with their times in open-addressing tables, one per shard (`DedupSet.shard(of:)`), each
    /// found by the fingerprint's high bits (no hashing: they are random) and at most half full; the
    /// empty slot's time is `Int64.min`, which no event has. A table doubles alone, so a doubling
    /// moves a 64th of the ids (one table of a million ids took 0.1 s, a pause of ingest while a
    /// checkpoint was written). Ids are moved out by scanning the slots in order (`scan`), not
    /// removed one by one. Once all are moved, the tables are kept for the next checkpoint, marked
    /// stale (`reset`) and emptied one by one as ids come again: tables made anew at each checkpoint
    /// doubled from 64 slots to tens of thousands again, each doubling on fresh pages (about a
    /// second of page faults per 60M-event run on this machine).
    fileprivate struct Overlay: Sendable {
        struct Slot: Sendable {
            var high: UInt64
            var low: UInt64
            var time: Int64
        }

        /// One shard's table.
        struct Table: Sendable {
            var slots: [Slot] = []
            var count = 0
            /// The slots are left from before the last `Overlay.reset`: none of them counts.
            var stale = false

            /// The slots that count: none while stale.
            var live: Int { self.stale ? 0 : self.slots.count }

            /// The time `fingerprint` was kept with, or nil.
            @inline(__always)
            func time(of fingerprint: Fingerprint) -> Int64? {
                guard !self.stale else { return nil }
                return self.slots.withUnsafeBufferPointer { slots in
                    guard slots.count > 0 else { return nil }
                    let mask = slots.count - 1
                    var index = Int(truncatingIfNeeded: fingerprint.high) & mask
                    while slots[index].time != .min {
                        if slots[index].high == fingerprint.high && slots[index].low == fingerprint.low { return slots[index].time }
                        index = (index + 1) & mask
                    }
                    return nil
                }
            }

            /// Keeps `fingerprint` at `time` (a later time replaces an earlier one); true when it was
            /// not there.
            mutating func set(_ fingerprint: Fingerprint, time: Int64) -> Bool {
                if self.stale {
                    self.slots.withUnsafeMutableBufferPointer { $0.update(repeating: Overlay.empty) }
                    self.count = 0
                    self.stale = false
                }
                if self.slots.isEmpty { self.slots = Array(repeating: Overlay.empty, count: 64) }
                let mask = self.slots.count - 1
                var index = Int(truncatingIfNeeded: fingerprint.high) & mask
                while self.slots[index].time != .min {
                    if self.slots[index].high == fingerprint.high && self.slots[index].low == fingerprint.low {
                        self.slots[index].time = max(self.slots[index].time, time)
                        return false
                    }
                    index = (index + 1) & mask
                }
                self.slots[index] = Slot(high: fingerprint.high, low: fingerprint.low, time: time)
                self.count += 1
                if self.count * 2 > self.slots.count { self.grow() }
                return true
            }

            private mutating func grow() {
                let old = self.slots
                self = Table(slots: Array(repeating: Overlay.empty, count: old.count * 2), count: 0)
                for slot in old where slot.time != .min { _ = self.set(Fingerprint(high: slot.high, low: slot.low), time: slot.time) }
            }
        }

        static let empty = Slot(high: 0, low: 0, time: .min)
        /// By shard (`DedupSet.shard(of:)`); none until the first id.
        private(set) var tables: [Table] = []
        private(set) var count = 0
        /// Where moving ids into their pages goes on from (`DedupSet.fold`): a table, a slot in it.
        private(set) var scan = (table: 0, slot: 0)

        var isEmpty: Bool { self.count == 0 }

        /// The time `fingerprint` was kept with, or nil.
        @inline(__always)
        func time(of fingerprint: Fingerprint) -> Int64? {
            guard self.count > 0 else { return nil }
            return self.tables[DedupSet.shard(of: fingerprint)].time(of: fingerprint)
        }

        /// Keeps `fingerprint` at `time` (a later time replaces an earlier one). The scan starts
        /// over: the id may be in a slot it has passed, and a table that doubled moved its ids.
        mutating func set(_ fingerprint: Fingerprint, time: Int64) {
            if self.tables.isEmpty { self.tables = Array(repeating: Table(), count: DedupSet.shardCount) }
            // `Int64.min` marks an empty slot; no event's time is that early (the parser's limit).
            if self.tables[DedupSet.shard(of: fingerprint)].set(fingerprint, time: max(time, .min + 1)) { self.count += 1 }
            self.scan = (0, 0)
        }

        /// The slot at the scan, or nil once the scan has passed every table.
        func slotAtScan() -> Slot? {
            var (table, slot) = self.scan
            while table < self.tables.count {
                if slot < self.tables[table].live { return self.tables[table].slots[slot] }
                (table, slot) = (table + 1, 0)
            }
            return nil
        }

        /// Moves the scan one slot on.
        mutating func advanceScan() {
            self.scan.slot += 1
            while self.scan.table < self.tables.count && self.scan.slot >= self.tables[self.scan.table].live {
                self.scan = (self.scan.table + 1, 0)
            }
        }

        /// Holds no id any more, keeping the tables' slots (stale) for the ids of the next copy.
        mutating func reset() {
            for index in self.tables.indices where !self.tables[index].stale { self.tables[index].stale = true }
            self.count = 0
            self.scan = (0, 0)
        }

        /// Lets go of the stale tables' slots: for a copy of the set, which would otherwise keep the
        /// set from emptying them in place.
        mutating func dropStale() {
            for index in self.tables.indices where self.tables[index].stale && !self.tables[index].slots.isEmpty {
                self.tables[index] = Table()
            }
        }

        /// Starts loading the slot a lookup of `fingerprint` reads first.
        @inline(__always)
        func prefetch(_ fingerprint: Fingerprint) {
            guard self.count > 0, !self.tables[DedupSet.shard(of: fingerprint)].stale else { return }
            self.tables[DedupSet.shard(of: fingerprint)].slots.withUnsafeBufferPointer {
                if let base = $0.baseAddress { roas_prefetch(base + (Int(truncatingIfNeeded: fingerprint.high) & ($0.count - 1))) }
            }
        }

        /// Every id kept, with its time.
        var all: [(Fingerprint, Int64)] {
            self.tables.flatMap { table in
                table.slots[..<table.live].compactMap { $0.time == .min ? nil : (Fingerprint(high: $0.high, low: $0.low), $0.time) }
            }
        }
    }

    fileprivate struct Shard<Table: EntryTable>: Sendable {
        var entries: Table
        var mask: Int
        var count = 0
        /// The time an entry's offset counts from.
        var epoch: Int64 = 0
        /// The low `timeBits` bits of a tail: the time's offset plus 1.
        let stampMask: UInt64
        /// Thousandths of the table full past which it is rebuilt (`DedupSet.fullPermille(shard:)`).
        let fullPermille: Int
        /// Times the table was rebuilt since the shard was made, for tests.
        var rebuilds = 0
        /// A table being filled beside `entries` (`grow`), or nil.
        var growth: Growth?
        /// A table of more slots than this grows beside itself (`grow`); one of at most this many is
        /// rebuilt at once.
        let wholeRebuildSlots: Int

        /// A table filled a few slots per id taken, beside the one lookups read, which holds every
        /// id until the new one takes its place: first its empty slots, then the old table's live
        /// ids in slot order. An id written to an old slot the move has passed is written to the new
        /// table too. Not in snapshots (they write the old table); a copy of the set drops it
        /// (`DedupSet.dropGrowth`).
        struct Growth: Sendable {
            var entries: Table
            /// Slots the new table is to have.
            let size: Int
            /// The old table's slots below this are moved.
            var moved = 0
            /// Ids in `entries`.
            var count = 0

            /// Writes `entry` where its id is, or in the first empty slot from its place.
            mutating func place(_ entry: Entry, stampMask: UInt64) {
                let mask = self.size - 1
                let key = entry.tail & ~stampMask
                var index = Int(truncatingIfNeeded: entry.high) & mask
                while true {
                    let existing = self.entries[index]
                    if existing.tail & stampMask == 0 {
                        self.count += 1
                        break
                    }
                    if existing.high == entry.high && existing.tail & ~stampMask == key { break }
                    index = (index + 1) & mask
                }
                _ = self.entries.write(entry, at: index, copying: true)
            }
        }

        init(size: Int, stampMask: UInt64, fullPermille: Int, wholeRebuildSlots: Int) {
            self.entries = Table(count: size)
            self.mask = size - 1
            self.stampMask = stampMask
            self.fullPermille = fullPermille
            self.wholeRebuildSlots = wholeRebuildSlots
        }

        /// `other` with its table kept as `Table` keeps it (without its growth: it starts over).
        init<Other>(_ other: Shard<Other>) {
            self.entries = other.entries.withParts { Table(Array($0.joined())) }
            self.mask = other.mask
            self.count = other.count
            self.epoch = other.epoch
            self.stampMask = other.stampMask
            self.fullPermille = other.fullPermille
            self.wholeRebuildSlots = other.wholeRebuildSlots
        }

        /// The greatest offset from the epoch an entry can hold.
        var reach: Int64 { Int64(self.stampMask) - 1 }

        @inline(__always)
        func time(of entry: Entry) -> Int64 { self.epoch &+ Int64(entry.tail & self.stampMask) &- 1 }

        /// `time`'s offset from the epoch plus 1, or nil when it is out of reach.
        @inline(__always)
        func stamp(_ time: Int64) -> UInt64? {
            let (offset, overflow) = time.subtractingReportingOverflow(self.epoch)
            guard !overflow, offset >= 0, offset <= self.reach else { return nil }
            return UInt64(offset) + 1
        }

        /// Records `fingerprint` at `time` (see `DedupSet.insert`); `.held` when it would be written
        /// to a page a copy of the set holds and not `copying`, which writes nothing.
        @inline(__always)
        mutating func insert(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64, copying: Bool = true) -> Outcome {
            let key = fingerprint.low & ~self.stampMask
            var index = Int(truncatingIfNeeded: fingerprint.high) & self.mask
            var found: Int? = nil
            while true {
                let entry = self.entries[index]
                if entry.tail & self.stampMask == 0 { break }
                if entry.high == fingerprint.high && entry.tail & ~self.stampMask == key {
                    if self.time(of: entry) >= cutoff { return .duplicate }
                    found = index
                    break
                }
                index = (index + 1) & self.mask
            }
            // Already expired: nothing later can match it, as cutoffs never decrease.
            if time < cutoff { return .inserted }
            guard let stamp = self.stamp(time) else { return .outOfReach }
            let entry = Entry(high: fingerprint.high, tail: key | stamp)
            guard self.entries.write(entry, at: index, copying: copying) else { return .held }
            if found == nil { self.count += 1 }
            if self.growth != nil || (found == nil && self.count * 1000 > self.entries.count * self.fullPermille) {
                self.written(entry, at: index, cutoff: cutoff)
            }
            return .inserted
        }

        /// After `entry` was written at `index` while the table grows or once it is past its limit:
        /// writes it to the new table too when the move has passed its slot, then takes a step of
        /// the growth (or begins one, or rebuilds a small table at once).
        @inline(never)
        private mutating func written(_ entry: Entry, at index: Int, cutoff: Int64) {
            if let moved = self.growth?.moved {
                if index < moved { self.growth!.place(entry, stampMask: self.stampMask) }
                self.grow(cutoff: cutoff)
            } else if self.entries.count > self.wholeRebuildSlots {
                self.grow(cutoff: cutoff)
            } else {
                self.rebuild(cutoff: cutoff, epoch: self.epoch)
            }
        }

        /// Slots of the old table moved per id taken while a shard grows: the move ends before the
        /// old table is 3% fuller than when it began.
        static var slotsMovedPerInsert: Int { 32 }
        /// Empty slots the new table gets per id taken before the move (64 KiB, a few microseconds;
        /// whole pages).
        static var emptySlotsPerInsert: Int { 4096 }
        /// How full (in thousandths) the old table may get while a growth goes on before the rest of
        /// the growth is done at once: reached only when few of the ids taken are new.
        static var growingPermille: Int { DedupSet.mostPermille }

        /// A step of growing the table beside itself (`Growth`), begun when it passes its limit:
        /// the ids not older than `cutoff` move to a table twice the size when over half are (else
        /// of the same size), a few per id taken, so that no id pays for them all (a shard of a
        /// million ids took a quarter of a second, a pause of ingest). The step that ends the move
        /// puts the new table in the old one's place.
        @inline(never)
        private mutating func grow(cutoff: Int64) {
            var growth = self.growth.take() ?? self.newGrowth(cutoff: cutoff)
            let whole = self.count * 1000 > self.entries.count * Shard.growingPermille
            if growth.entries.count < growth.size {
                let missing = growth.size - growth.entries.count
                growth.entries.appendEmpty(whole ? missing : min(missing, Shard.emptySlotsPerInsert))
                if growth.entries.count < growth.size {
                    self.growth = growth
                    return
                }
            }
            let end = whole ? self.entries.count : min(self.entries.count, growth.moved + Shard.slotsMovedPerInsert)
            let mask = growth.size - 1
            // A batch at a time: the live entries and their places first, each place prefetched, then
            // the places filled, so that their cache misses overlap.
            withUnsafeTemporaryAllocation(of: (Entry, Int).self, capacity: Shard.slotsMovedPerInsert) { moving in
                var from = growth.moved
                while from < end {
                    let to = min(end, from + Shard.slotsMovedPerInsert)
                    var live = 0
                    for slot in from..<to {
                        let entry = self.entries[slot]
                        guard entry.tail & self.stampMask != 0 && self.time(of: entry) >= cutoff else { continue }
                        let index = Int(truncatingIfNeeded: entry.high) & mask
                        growth.entries.prefetch(at: index)
                        moving.initializeElement(at: live, to: (entry, index))
                        live += 1
                    }
                    for (entry, first) in moving[0..<live] {
                        var index = first
                        while growth.entries[index].tail & self.stampMask != 0 { index = (index + 1) & mask }
                        _ = growth.entries.write(entry, at: index, copying: true)
                    }
                    growth.count += live
                    from = to
                }
            }
            growth.moved = end
            if end < self.entries.count {
                self.growth = growth
                return
            }
            let copies = self.entries.copies
            self.entries = growth.entries
            self.entries.copies = copies
            self.rebuilds += 1
            self.mask = mask
            self.count = growth.count
        }

        /// The growth `grow` begins: twice the slots when over half the entries are not older than
        /// `cutoff`, else as many (counting them reads the table once, in order: a few milliseconds
        /// for a million ids).
        private func newGrowth(cutoff: Int64) -> Growth {
            var live = 0
            self.entries.withParts { parts in
                for part in parts {
                    for entry in part where entry.tail & self.stampMask != 0 && self.time(of: entry) >= cutoff { live += 1 }
                }
            }
            let size = live * 2 > self.entries.count ? self.entries.count * 2 : self.entries.count
            return Growth(entries: Table(reserving: size), size: size)
        }

        /// Moves the epoch so that `time` and every entry not older than `cutoff` are within reach,
        /// dropping the older ones; false (and nothing changed) when they span more than the reach.
        mutating func rebase(cutoff: Int64, including time: Int64) -> Bool {
            var lowest = time
            var highest = time
            self.entries.withParts { parts in
                for part in parts {
                    for entry in part where entry.tail & self.stampMask != 0 {
                        let entryTime = self.time(of: entry)
                        guard entryTime >= cutoff else { continue }
                        lowest = min(lowest, entryTime)
                        highest = max(highest, entryTime)
                    }
                }
            }
            // As low as it can be, so that later ids (never before the cutoff) rarely need another.
            let epoch = max(cutoff, Engine.subtract(highest, self.reach))
            guard epoch <= lowest else { return false }
            self.rebuild(cutoff: cutoff, epoch: epoch)
            return true
        }

        /// Keeps the entries not older than `cutoff`, counted from `epoch` (which they must be within
        /// reach of), in a table twice the size when over half are.
        private mutating func rebuild(cutoff: Int64, epoch: Int64) {
            self.growth = nil
            let (table, live) = self.entries.withParts { parts in
                var live = 0
                for part in parts {
                    for entry in part where entry.tail & self.stampMask != 0 && self.time(of: entry) >= cutoff { live += 1 }
                }
                let size = live * 2 > self.entries.count ? self.entries.count * 2 : self.entries.count
                // Built in one array (then paged, when paged): stores without a page lookup each.
                var table = Array(repeating: Entry.empty, count: size)
                let mask = size - 1
                for part in parts {
                    for entry in part where entry.tail & self.stampMask != 0 {
                        let entryTime = self.time(of: entry)
                        guard entryTime >= cutoff else { continue }
                        assert(entryTime >= epoch && entryTime - epoch <= self.reach, "a live entry out of the new epoch's reach")
                        let stamp = UInt64(entryTime - epoch) + 1
                        var index = Int(truncatingIfNeeded: entry.high) & mask
                        while table[index].tail & self.stampMask != 0 { index = (index + 1) & mask }
                        table[index] = Entry(high: entry.high, tail: entry.tail & ~self.stampMask | stamp)
                    }
                }
                return (table, live)
            }
            let copies = self.entries.copies
            self.entries = Table(table)
            self.entries.copies = copies
            self.rebuilds += 1
            self.mask = table.count - 1
            self.epoch = epoch
            self.count = live
        }
    }

    /// How full shard `shard`'s table may get before it is rebuilt: from 64% (shard 0) to 70%
    /// (the last). Ids spread evenly over the shards, so with one limit every shard would be rebuilt
    /// within the same few thousand ids (at 60M ids, over two seconds of rebuilds in a few chunks);
    /// spread, the rebuilds come one at a time (at 2M slots a shard, 120K ids apart). A narrow band,
    /// as a lower limit doubles a table sooner (55-70% cost the reference workload 14% more peak
    /// RSS); above half, so that a rebuild that keeps the size (over half the entries expired)
    /// leaves the table below its limit.
    static func fullPermille(shard: Int) -> Int { 640 + 60 * shard / (DedupSet.shardCount - 1) }

    /// The fullest a shard's table gets (in thousandths): while it grows beside itself (an id past it
    /// ends the growth at once), in a snapshot written then.
    static let mostPermille = 850

    static let shardBits = 6
    static let shardCount = 1 << shardBits
    /// The fewest bits of time an entry holds; see `timeBits(span:)`.
    static let minimumTimeBits = 32
    /// The shards, in one array each (`paged` false) or in pages (`paged` true); the other is empty.
    private var flat: [Shard<FlatEntries>] = []
    private var paged: [Shard<PagedEntries>] = []
    /// Whether the tables are kept in pages.
    private(set) var isPaged: Bool
    /// Bits of an entry's tail that hold its time (the rest hold fingerprint bits).
    let timeBits: Int
    /// Ids whose time was out of every reach of their shard, with their times.
    private var far: [Fingerprint: Int64] = [:]
    /// `far`'s size at which its expired ids are dropped.
    private var farLimit = 64
    /// Ids taken while the page they go to was shared with a copy of the set (a checkpoint being
    /// written), with their times: written there instead of copying the page, and moved into
    /// their pages (`fold`) a few per id taken once the copy is gone. Past `overlayBound` ids,
    /// pages are copied again.
    private var overlay = Overlay()
    /// The fewest ids `overlay` may hold (1 << 20 but in tests): copying it whole when a checkpoint
    /// is taken stays short.
    let overlayLimit: Int
    /// The most ids `overlay` may hold while the present copy is held: `overlayLimit`, or a
    /// sixteenth of the ids the set held when the first id went beside its pages, if more. A
    /// checkpoint of a large set takes long to write and many ids come meanwhile (at 60M ids and
    /// 400k new ids a second, 6M in 15 s): past 1M they went to their pages, which copied most of
    /// the set's pages (RSS 1.34-1.36x the RSS before those checkpoints). Beside the pages they cost
    /// 48-96 bytes each, against 4 KiB for each page copied; the bound keeps them to 3-6 bytes
    /// per id of the set.
    private var overlayBound: Int
    /// The share of the set's ids `overlayBound` allows beside the pages: one in this many.
    static let overlayShare = 16
    /// How many of `overlay`'s ids `insert` moves into their pages per id taken (scanning at most
    /// four times as many slots).
    static let foldsPerInsert = 4

    /// The bits of time an entry needs when ids arrive at most `span` ms after the cutoff (the dedup
    /// horizon plus the lateness): twice the span at least, so that a shard moves its epoch at most
    /// once per span of stream time; 32 at least, 56 at most.
    static func timeBits(span: Int64) -> Int {
        let doubled = span > Int64.max / 2 ? Int64.max : max(span, 0) * 2
        return min(56, max(DedupSet.minimumTimeBits, Int64.bitWidth - doubled.leadingZeroBitCount))
    }

    /// - Parameters:
    ///   - timeBits: as `timeBits(span:)` gives (a test may ask for fewer, to move epochs often).
    ///   - paged: whether to keep the tables in pages (for an engine that checkpoints while it runs).
    ///   - overlayLimit: the most ids kept beside pages a copy holds (`overlay`).
    ///   - wholeRebuildSlots: a shard's table of more slots grows beside itself (`Shard.grow`), one
    ///     of at most this many is rebuilt at once (a test may ask for smaller; at least a page).
    init(
        capacity: Int = 1 << 12, timeBits: Int = DedupSet.minimumTimeBits, paged: Bool = false, overlayLimit: Int = 1 << 20,
        wholeRebuildSlots: Int = DedupSet.wholeRebuildSlots
    ) {
        precondition((2...56).contains(timeBits), "a dedup entry's time takes 2 to 56 bits")
        precondition(wholeRebuildSlots >= PagedEntries.pageSize, "a dedup table grows beside itself by whole pages")
        var size = 16
        while size * DedupSet.shardCount < capacity { size <<= 1 }
        self.timeBits = timeBits
        self.isPaged = paged
        self.overlayLimit = overlayLimit
        self.overlayBound = overlayLimit
        let stampMask: UInt64 = (1 << UInt64(timeBits)) - 1
        let shards = (0..<DedupSet.shardCount).map { DedupSet.fullPermille(shard: $0) }
        if paged {
            self.paged = shards.map { Shard(size: size, stampMask: stampMask, fullPermille: $0, wholeRebuildSlots: wholeRebuildSlots) }
        } else {
            self.flat = shards.map { Shard(size: size, stampMask: stampMask, fullPermille: $0, wholeRebuildSlots: wholeRebuildSlots) }
        }
    }

    /// A shard's table of more slots than this (1 MiB of entries; 64 MiB over the 64 shards) grows
    /// beside itself (`Shard.grow`); one of at most this many is rebuilt at once (about a millisecond).
    static let wholeRebuildSlots = 1 << 16

    /// Forgets the growths in progress (each starts over at its shard's next id) and the overlay's
    /// stale tables: for a copy that only writes a snapshot, which would otherwise hold the tables
    /// while the set fills them.
    mutating func dropGrowth() {
        for index in self.flat.indices where self.flat[index].growth != nil { self.flat[index].growth = nil }
        for index in self.paged.indices where self.paged[index].growth != nil { self.paged[index].growth = nil }
        self.overlay.dropStale()
    }

    /// Shards whose table is growing beside itself (for tests).
    var growing: Int { self.flat.count { $0.growth != nil } + self.paged.count { $0.growth != nil } }

    /// Keeps the tables in pages (or in one array each), as `init(paged:)` does: `roas serve
    /// --data-dir` replays its log into tables in one array each, then pages them.
    mutating func setPaged(_ paged: Bool) {
        guard paged != self.isPaged else { return }
        if paged {
            self.paged = DedupSet.convert(&self.flat)
        } else {
            self.flat = DedupSet.convert(&self.paged)
        }
        self.isPaged = paged
    }

    /// `shards` kept as `To` keeps them, one at a time: each table is let go of once copied, so the
    /// set is never held twice.
    private static func convert<From, To>(_ shards: inout [Shard<From>]) -> [Shard<To>] {
        var converted: [Shard<To>] = []
        converted.reserveCapacity(shards.count)
        for index in shards.indices {
            converted.append(Shard(shards[index]))
            shards[index] = Shard(
                size: 16, stampMask: shards[index].stampMask, fullPermille: shards[index].fullPermille,
                wholeRebuildSlots: shards[index].wholeRebuildSlots)
        }
        shards = []
        return converted
    }

    /// Ids held, expired ones not yet dropped included (an id both in `overlay` and its page twice).
    var count: Int {
        self.flat.reduce(self.far.count + self.overlay.count) { $0 + $1.count } + self.paged.reduce(0) { $0 + $1.count }
    }

    /// Ids taken while their pages were shared, not yet moved into them.
    var overlayCount: Int { self.overlay.count }

    /// Slots the overlay's tables hold, stale ones included (for tests).
    var overlaySlots: Int { self.overlay.tables.reduce(0) { $0 + $1.slots.count } }

    /// Pages copied because a copy of the set held them when an id was written to them.
    var pagesCopied: Int { self.paged.reduce(0) { $0 + $1.entries.copies } }

    /// Tables rebuilt since the set was made (for tests).
    var rebuilds: Int { self.flat.reduce(0) { $0 + $1.rebuilds } + self.paged.reduce(0) { $0 + $1.rebuilds } }

    /// Records `fingerprint` at `time` unless an entry not older than `cutoff` holds it already.
    /// Cutoffs must never decrease from one call to the next.
    ///
    /// - Returns: false when it is a duplicate.
    @inline(__always)
    mutating func insert(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64) -> Bool {
        // While the copy is held, this retries the id at the scan's slot each time: a cached read.
        if !self.overlay.isEmpty { self.fold(cutoff: cutoff) }
        if !self.far.isEmpty, let farTime = self.far[fingerprint] {
            if farTime >= cutoff { return false }
            self.far[fingerprint] = nil
        }
        if !self.overlay.isEmpty, let heldTime = self.overlay.time(of: fingerprint), heldTime >= cutoff { return false }
        let outcome = self.place(fingerprint, time: time, cutoff: cutoff, copying: self.overlay.count >= self.overlayBound)
        if outcome == .held {
            if self.overlay.isEmpty { self.overlayBound = max(self.overlayLimit, self.count / DedupSet.overlayShare) }
            self.overlay.set(fingerprint, time: time)
        }
        return outcome != .duplicate
    }

    /// Records `fingerprint` in its shard (`Shard.insert`), moving the shard's epoch or keeping the
    /// id far when its time is out of reach: `.duplicate`, `.inserted` or `.held`.
    @inline(__always)
    private mutating func place(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64, copying: Bool) -> Outcome {
        let shard = DedupSet.shard(of: fingerprint)
        let outcome =
            self.isPaged
            ? self.paged[shard].insert(fingerprint, time: time, cutoff: cutoff, copying: copying)
            : self.flat[shard].insert(fingerprint, time: time, cutoff: cutoff)
        guard outcome == .outOfReach else { return outcome }
        let rebased =
            self.isPaged
            ? DedupSet.rebase(&self.paged[shard], fingerprint, time: time, cutoff: cutoff)
            : DedupSet.rebase(&self.flat[shard], fingerprint, time: time, cutoff: cutoff)
        if !rebased { self.keepFar(fingerprint, time: time, cutoff: cutoff) }
        return .inserted
    }

    /// Moves up to `foldsPerInsert` of `overlay`'s ids into their pages, scanning its slots in
    /// order; stops at one whose page is still shared. An id whose time is older than `cutoff` is
    /// passed over (no later id can match it). An id already in its page (taken again after its
    /// time here expired, or moved before the scan started over) keeps the page's time, the later.
    /// The overlay is emptied once the scan reaches its end.
    private mutating func fold(cutoff: Int64) {
        var moved = 0
        var visited = 0
        while moved < DedupSet.foldsPerInsert && visited < 4 * DedupSet.foldsPerInsert {
            guard let slot = self.overlay.slotAtScan() else {
                self.overlay.reset()
                return
            }
            if slot.time != .min && slot.time >= cutoff {
                let fingerprint = Fingerprint(high: slot.high, low: slot.low)
                if self.place(fingerprint, time: slot.time, cutoff: cutoff, copying: false) == .held { return }
                moved += 1
            }
            self.overlay.advanceScan()
            visited += 1
        }
        if self.overlay.slotAtScan() == nil { self.overlay.reset() }
    }

    /// The slow path of `insert` for a new id whose time is out of its shard's reach: moves the
    /// shard's epoch and inserts it, unless the shard cannot reach it then either.
    private static func rebase<Table>(
        _ shard: inout Shard<Table>, _ fingerprint: Fingerprint, time: Int64, cutoff: Int64
    ) -> Bool {
        guard shard.rebase(cutoff: cutoff, including: time) else { return false }
        // The rebuilt table's pages are new: this table alone holds them.
        let outcome = shard.insert(fingerprint, time: time, cutoff: cutoff, copying: false)
        assert(outcome == .inserted, "a rebased shard reaches the time it was rebased for")
        return true
    }

    /// Keeps an id whose time no shard epoch reaches beside the shards.
    private mutating func keepFar(_ fingerprint: Fingerprint, time: Int64, cutoff: Int64) {
        self.far[fingerprint] = time
        if self.far.count > self.farLimit {
            self.far = self.far.filter { $0.value >= cutoff }
            self.farLimit = max(64, self.far.count * 2)
        }
    }

    @inline(__always)
    fileprivate static func shard(of fingerprint: Fingerprint) -> Int {
        Int(truncatingIfNeeded: fingerprint.high >> UInt64(64 - DedupSet.shardBits))
    }

    /// Starts loading the slot where `insert` will first look for `fingerprint`.
    @inline(__always)
    func prefetch(_ fingerprint: Fingerprint) {
        if !self.overlay.isEmpty { self.overlay.prefetch(fingerprint) }
        let shard = DedupSet.shard(of: fingerprint)
        let slot = Int(truncatingIfNeeded: fingerprint.high)
        if self.isPaged {
            self.paged[shard].entries.prefetch(at: slot & self.paged[shard].mask)
        } else {
            self.flat[shard].entries.prefetch(at: slot & self.flat[shard].mask)
        }
    }

    /// The step before `prefetch`, some events earlier: with pages, starts loading where the shard
    /// keeps the reference and the address of the page `fingerprint`'s slot is on (which `prefetch`
    /// reads).
    @inline(__always)
    func prefetchPage(_ fingerprint: Fingerprint) {
        guard self.isPaged else { return }
        let shard = DedupSet.shard(of: fingerprint)
        self.paged[shard].entries.prefetchPage(of: Int(truncatingIfNeeded: fingerprint.high) & self.paged[shard].mask)
    }
}

// MARK: Snapshots

/// Integer fields only, no padding: 8 + 8 bytes.
extension DedupSet.Entry: SnapshotRaw {}

extension DedupSet {
    var snapshotByteEstimate: Int {
        func estimate<Table>(_ shards: [Shard<Table>]) -> Int {
            shards.reduce(0) {
                $0 + 8
                    + SnapshotWriter.tableByteCount(
                        slots: $1.entries.count, occupied: $1.count, stride: MemoryLayout<Entry>.stride)
            }
        }
        return 24 + (self.far.count + self.overlay.count) * 24 + estimate(self.flat) + estimate(self.paged)
    }

    /// Writes the number of shards and the bits of time in an entry, then each shard's epoch and table
    /// (its slots, or its size and occupied slots when sparse), then the ids kept beside the tables
    /// (far ids and those in `overlay`, the later time of an id in both) in fingerprint order.
    func write(to writer: inout SnapshotWriter) {
        func write<Table>(_ shards: [Shard<Table>]) {
            for shard in shards {
                writer.write(shard.epoch)
                shard.entries.withParts { parts in
                    writer.write(table: parts, occupied: shard.count) { $0.tail & shard.stampMask == 0 }
                }
            }
        }
        writer.write(count: DedupSet.shardCount)
        writer.write(UInt8(self.timeBits))
        write(self.flat)
        write(self.paged)
        let far = self.far.merging(self.overlay.all, uniquingKeysWith: max).sorted {
            ($0.key.high, $0.key.low) < ($1.key.high, $1.key.low)
        }
        writer.write(count: far.count)
        for (fingerprint, time) in far {
            writer.write(fingerprint.high)
            writer.write(fingerprint.low)
            writer.write(time)
        }
    }

    /// Reads what `write(to:)` wrote with `timeBits`: 64 tables, each of a power-of-two size at most
    /// 85% full (so that probing always reaches an empty slot; a table grows past 64-70% only while a
    /// growth goes on, which a snapshot leaves out), whose entries' times are in range and
    /// whose fingerprints belong to that shard, and far ids with times in range; in pages when `paged`.
    init(
        from reader: inout SnapshotReader, timeBits: Int = DedupSet.minimumTimeBits, paged: Bool = false,
        overlayLimit: Int = 1 << 20, wholeRebuildSlots: Int = DedupSet.wholeRebuildSlots
    ) throws {
        let count = try reader.read(UInt64.self)
        try SnapshotReader.require(
            count == UInt64(DedupSet.shardCount), "the dedup set has \(count) shards, not \(DedupSet.shardCount)")
        let written = Int(try reader.read(UInt8.self))
        try SnapshotReader.require(
            written == timeBits, "dedup entries hold \(written) bits of time, \(timeBits) with these options")
        self.init(capacity: 16, timeBits: timeBits, paged: paged, overlayLimit: overlayLimit, wholeRebuildSlots: wholeRebuildSlots)
        let stampMask: UInt64 = (1 << UInt64(timeBits)) - 1
        for number in 0..<DedupSet.shardCount {
            // Down to the reach below the earliest time (a shard's first epoch can be that).
            let epoch = try reader.read(Int64.self)
            let (entries, occupied) = try reader.readTable(empty: Entry.empty) {
                $0.tail & stampMask == 0
            } check: { entry in
                try SnapshotReader.require(
                    Int(truncatingIfNeeded: entry.high >> UInt64(64 - DedupSet.shardBits)) == number,
                    "a dedup entry is in another shard than its fingerprint's")
            }
            let size = entries.count
            try SnapshotReader.require(
                size >= 16 && size & (size - 1) == 0, "a dedup table's size \(size) is not a power of two from 16")
            try SnapshotReader.require(
                occupied * 1000 <= size * DedupSet.mostPermille, "a dedup table is more than \(DedupSet.mostPermille / 10)% full")
            try SnapshotReader.require(
                (-SnapshotReader.timeLimit - Int64(stampMask)...SnapshotReader.timeLimit).contains(epoch),
                "a dedup shard's epoch \(epoch) is out of range")
            func restore<Table>(_ shard: inout Shard<Table>) {
                shard.entries = Table(entries)
                shard.mask = size - 1
                shard.count = occupied
                shard.epoch = epoch
            }
            if paged { restore(&self.paged[number]) } else { restore(&self.flat[number]) }
        }
        let farCount = try reader.readCount(elementSize: 24)
        for _ in 0..<farCount {
            let fingerprint = Fingerprint(high: try reader.read(UInt64.self), low: try reader.read(UInt64.self))
            let time = try reader.readTime("a far dedup id's time")
            try SnapshotReader.require(self.overlay.time(of: fingerprint) == nil, "a far dedup id is given twice")
            self.overlay.set(fingerprint, time: time)
        }
        // The ids beside the tables are moved into them as ids are taken (`fold`), or kept far again
        // when still out of reach: the same answers as the set written.
    }
}
