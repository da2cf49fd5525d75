/// The figures of one key in one pane or window.
public struct Aggregate: Sendable, Equatable {
    public var views: Int64 = 0
    public var clicks: Int64 = 0
    /// Micro-conversions: a purchase split over touches gives each its share of 1,000,000.
    public var conversions: Int64 = 0
    /// Micro-units of the base currency.
    public var revenue: Int64 = 0
    public var refunds: Int64 = 0
    public var spend: Int64 = 0
    /// Engagement events (likes, comments, shares, saves, follows).
    public var engagements: Int64 = 0
    /// Micro-leads: a sign-up split over touches gives each its share of 1,000,000, like `conversions`.
    public var leads: Int64 = 0

    public init() {}

    init(conversions: Int64 = 0, revenue: Int64 = 0, refunds: Int64 = 0, spend: Int64 = 0, leads: Int64 = 0) {
        self.conversions = conversions
        self.revenue = revenue
        self.refunds = refunds
        self.spend = spend
        self.leads = leads
    }

    /// True when adding `other`'s conversions, revenue, refunds, spend and leads (the figures one
    /// event can add large amounts to; views, clicks and engagements grow by one) keeps each within
    /// `limit`. Both hold figures from 0 to `limit`, so the comparison cannot overflow.
    func canAdd(_ other: Aggregate, limit: Int64) -> Bool {
        other.conversions <= limit - self.conversions && other.revenue <= limit - self.revenue
            && other.refunds <= limit - self.refunds && other.spend <= limit - self.spend
            && other.leads <= limit - self.leads
    }

    @inline(__always)
    public mutating func add(_ other: Aggregate) {
        self.views += other.views
        self.clicks += other.clicks
        self.conversions += other.conversions
        self.revenue += other.revenue
        self.refunds += other.refunds
        self.spend += other.spend
        self.engagements += other.engagements
        self.leads += other.leads
    }
}

/// The figures of one key in one window, with its distinct viewers and clickers.
struct WindowCell: Sendable {
    var figures = Aggregate()
    var reach = ReachSketch()

    mutating func add(_ figures: Aggregate, _ reach: ReachSketch) {
        self.figures.add(figures)
        self.reach.merge(reach)
    }
}

/// The cells of one window, key by key: parallel arrays, each key once, in no particular order.
struct WindowColumns: Sendable {
    var keys: [RowKey] = []
    var cells: [WindowCell] = []

    var isEmpty: Bool { self.keys.isEmpty }

    init() {}

    init(_ dictionary: [RowKey: WindowCell]) {
        self.keys = Array(dictionary.keys)
        self.cells = Array(dictionary.values)
    }

    var dictionary: [RowKey: WindowCell] { Dictionary(uniqueKeysWithValues: zip(self.keys, self.cells)) }
}

/// A row key: creator and campaign handles, -1 for null. Packed into one integer for hashing.
struct RowKey: Hashable, Sendable {
    var packed: UInt64

    @inline(__always)
    init(creator: Int32, campaign: Int32) {
        self.packed = UInt64(UInt32(bitPattern: creator)) << 32 | UInt64(UInt32(bitPattern: campaign))
    }

    var creator: Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: self.packed >> 32)) }
    var campaign: Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: self.packed)) }
}

/// The figures of one pane by key: an open-addressing table with a multiplicative hash, so an
/// update costs one probe (usually in cache: there are few keys) instead of a `Hasher` round.
struct PaneTable: Sendable {
    private(set) var keys: [RowKey] = []
    private(set) var figures: [Aggregate] = []
    /// The distinct users who viewed or clicked, by key (parallel to `figures`).
    private(set) var reach: [ReachSketch] = []
    /// Index + 1 into `keys`/`figures`; 0 is empty.
    private var slots: [Int32]
    private var shift: UInt64

    init() {
        self.slots = Array(repeating: 0, count: 16)
        self.shift = 64 - 4
    }

    var count: Int { self.keys.count }

    @inline(__always)
    private func slot(of key: RowKey) -> Int {
        Int(truncatingIfNeeded: (key.packed &* 0x9E37_79B9_7F4A_7C15) >> self.shift)
    }

    /// The position of `key`, or nil.
    @inline(__always)
    func find(_ key: RowKey) -> Int? {
        var slot = self.slot(of: key)
        let mask = self.slots.count - 1
        while true {
            let entry = Int(self.slots[slot])
            if entry == 0 { return nil }
            if self.keys[entry - 1] == key { return entry - 1 }
            slot = (slot + 1) & mask
        }
    }

    /// Changes the figures of `key`, adding it when new, and counts `user` (a hash) in its reach.
    @inline(__always)
    mutating func update(_ key: RowKey, user: UInt64?, _ body: (inout Aggregate) -> Void) {
        var slot = self.slot(of: key)
        let mask = self.slots.count - 1
        while true {
            let entry = Int(self.slots[slot])
            if entry == 0 { break }
            if self.keys[entry - 1] == key {
                body(&self.figures[entry - 1])
                if let user { self.reach[entry - 1].insert(hash: user) }
                return
            }
            slot = (slot + 1) & mask
        }
        self.keys.append(key)
        self.figures.append(Aggregate())
        self.reach.append(ReachSketch())
        body(&self.figures[self.figures.count - 1])
        if let user { self.reach[self.reach.count - 1].insert(hash: user) }
        self.slots[slot] = Int32(self.keys.count)
        if self.keys.count * 2 > self.slots.count { self.grow() }
    }

    private mutating func grow() {
        self.slots = Array(repeating: 0, count: self.slots.count * 2)
        self.shift -= 1
        let mask = self.slots.count - 1
        for (index, key) in self.keys.enumerated() {
            var slot = self.slot(of: key)
            while self.slots[slot] != 0 { slot = (slot + 1) & mask }
            self.slots[slot] = Int32(index + 1)
        }
    }
}

/// Aggregates per pane (one slide long) and key; windows are the sum of their panes.
///
/// A hopping window of k slides costs one pane update per event and k pane reads per row at
/// emission, instead of k window updates per event. With `window == slide` panes are the windows.
struct WindowStore: Sendable {
    let window: Int64
    let slide: Int64
    /// Open panes in ascending order of start.
    private var panes: [(start: Int64, table: PaneTable)] = []
    /// Windows starting before this have been emitted as final.
    private(set) var nextWindowStart: Int64 = .min
    /// Panes and keys changed since the last live update.
    private(set) var changed: Set<PaneKey> = []
    var tracksChanges = false

    struct PaneKey: Hashable, Sendable {
        var pane: Int64
        var key: RowKey
    }

    init(window: Int64, slide: Int64) {
        self.window = window
        self.slide = slide
    }

    /// The largest figure one key's pane may hold: a window sums `window / slide` panes, so its
    /// figures stay within `Int64.max` (see `Engine.fits`).
    static func paneLimit(window: Int64, slide: Int64) -> Int64 {
        Int64.max / max(1, window / max(1, slide))
    }

    var paneCount: Int { self.panes.count }

    @inline(__always)
    func paneStart(of time: Int64) -> Int64 {
        let remainder = time % self.slide
        return remainder >= 0 ? time - remainder : time - remainder - self.slide
    }

    /// The position of the pane starting at `start`, searched from the newest (where events mostly go).
    @inline(__always)
    private func paneIndex(_ start: Int64) -> Int? {
        var index = self.panes.count - 1
        while index >= 0 {
            let candidate = self.panes[index].start
            if candidate == start { return index }
            if candidate < start { return nil }
            index -= 1
        }
        return nil
    }

    /// Changes the figures of `key` in the pane holding `time`; `user` (a `ReachSketch.hash`) counts
    /// in its reach.
    @inline(__always)
    mutating func update(time: Int64, key: RowKey, user: UInt64? = nil, _ body: (inout Aggregate) -> Void) {
        let pane = self.paneStart(of: time)
        let index = self.paneIndex(pane) ?? self.addPane(pane)
        self.panes[index].table.update(key, user: user, body)
        if self.tracksChanges { self.changed.insert(PaneKey(pane: pane, key: key)) }
    }

    private mutating func addPane(_ start: Int64) -> Int {
        var index = self.panes.count
        while index > 0 && self.panes[index - 1].start > start { index -= 1 }
        self.panes.insert((start, PaneTable()), at: index)
        return index
    }

    /// Per pane start, the conversions, revenue and leads of every key summed (a bound on what
    /// any key's pane holds; `Engine.creditTotals`).
    func creditSums() -> [Int64: Aggregate] {
        var sums: [Int64: Aggregate] = [:]
        for pane in self.panes {
            var sum = Aggregate()
            for figures in pane.table.figures {
                // Each within the pane limit, and at most `window / slide` panes' limits sum to
                // Int64.max; saturate rather than trap on a sum over many keys.
                sum.conversions = Engine.saturatingAdd(sum.conversions, figures.conversions)
                sum.revenue = Engine.saturatingAdd(sum.revenue, figures.revenue)
                sum.leads = Engine.saturatingAdd(sum.leads, figures.leads)
            }
            sums[pane.start] = sum
        }
        return sums
    }

    /// The figures of `key` in the pane that holds `time`; zero when it has none yet.
    func paneFigures(at time: Int64, key: RowKey) -> Aggregate {
        guard let index = self.paneIndex(self.paneStart(of: time)), let slot = self.panes[index].table.find(key) else {
            return Aggregate()
        }
        return self.panes[index].table.figures[slot]
    }

    /// The sum over the panes of the window starting at `start`, by key.
    func window(startingAt start: Int64) -> [RowKey: WindowCell] { self.columns(startingAt: start).dictionary }

    /// The sum over the panes of the window starting at `start`, as parallel arrays. A window of one
    /// pane (tumbling windows) takes that pane's keys as they are: no hashing per key, which is most
    /// of what closing a window with many rows costs.
    func columns(startingAt start: Int64) -> WindowColumns {
        var columns = WindowColumns()
        // Where each key is in `columns`, made once a second pane has keys to add.
        var positions: [RowKey: Int]? = nil
        for pane in self.panes where pane.start >= start && pane.start < start + self.window {
            let table = pane.table
            if columns.keys.isEmpty {
                // A pane's keys are distinct. Its sketches are shared (copy on write), not merged into empty ones.
                columns.keys = table.keys
                columns.cells = table.keys.indices.map { WindowCell(figures: table.figures[$0], reach: table.reach[$0]) }
                continue
            }
            if positions == nil {
                positions = Dictionary(uniqueKeysWithValues: zip(columns.keys, columns.keys.indices))
            }
            for index in table.keys.indices {
                let key = table.keys[index]
                if let at = positions![key] {
                    columns.cells[at].add(table.figures[index], table.reach[index])
                } else {
                    positions![key] = columns.keys.count
                    columns.keys.append(key)
                    columns.cells.append(WindowCell(figures: table.figures[index], reach: table.reach[index]))
                }
            }
        }
        return columns
    }

    /// The figures of one key in the window starting at `start`.
    func figures(of key: RowKey, inWindowStartingAt start: Int64) -> WindowCell? {
        var total: WindowCell? = nil
        for pane in self.panes where pane.start >= start && pane.start < start + self.window {
            if let index = pane.table.find(key) {
                if total == nil {
                    total = WindowCell(figures: pane.table.figures[index], reach: pane.table.reach[index])
                } else {
                    total!.add(pane.table.figures[index], pane.table.reach[index])
                }
            }
        }
        return total
    }

    /// Emits, in order of start, every window with activity that ends at or before `watermark`,
    /// then forgets panes no open window needs.
    mutating func close(upTo watermark: Int64, _ emit: (Int64, WindowColumns) -> Void) {
        while let earliest = self.panes.first?.start {
            let start = max(earliest - self.window + self.slide, self.nextWindowStart)
            guard watermark != .min, watermark == .max || start <= watermark - self.window else { break }
            let figures = self.columns(startingAt: start)
            if !figures.isEmpty { emit(start, figures) }
            self.nextWindowStart = start + self.slide
            var drop = 0
            while drop < self.panes.count && self.panes[drop].start < self.nextWindowStart { drop += 1 }
            if drop > 0 { self.panes.removeFirst(drop) }
        }
    }

    /// The open windows holding a changed pane, with the changed keys; clears the change set.
    mutating func takeChanges() -> [(start: Int64, key: RowKey)] {
        var seen = Set<PaneKey>()
        var result: [(start: Int64, key: RowKey)] = []
        for change in self.changed {
            var start = max(change.pane - self.window + self.slide, self.nextWindowStart)
            while start <= change.pane {
                if seen.insert(PaneKey(pane: start, key: change.key)).inserted { result.append((start, change.key)) }
                start += self.slide
            }
        }
        self.changed.removeAll(keepingCapacity: true)
        return result
    }
}

// MARK: Snapshots

/// Eight `Int64`s, no padding.
extension Aggregate: SnapshotRaw {}

/// One `UInt64`.
extension RowKey: SnapshotRaw {}

extension PaneTable {
    /// Writes the keys, their figures and the table size; the slots are rebuilt on reading.
    func write(to writer: inout SnapshotWriter) {
        writer.write(raw: self.keys)
        writer.write(raw: self.figures)
        for sketch in self.reach { sketch.write(to: &writer) }
        writer.write(count: self.slots.count)
    }

    /// Reads what `write(to:)` wrote. Keys are added in index order, as `update` and `grow` add
    /// them, so the rebuilt slots are the ones written.
    init(from reader: inout SnapshotReader, handles: SnapshotHandles, limit: Int64) throws {
        let keys = try reader.readRaw(RowKey.self)
        let figures = try reader.readRaw(Aggregate.self)
        try SnapshotReader.require(
            keys.count == figures.count, "a pane has \(keys.count) keys and \(figures.count) figures")
        var reach: [ReachSketch] = []
        reach.reserveCapacity(keys.count)
        for _ in keys { reach.append(try ReachSketch(from: &reader)) }
        let size = try reader.read(UInt64.self)
        try SnapshotReader.require(
            keys.count == figures.count, "a pane has \(keys.count) keys and \(figures.count) figures")
        // The size `update` gives `count` keys: the least power of two from 16 that is at least twice the count.
        try SnapshotReader.require(
            size >= 16 && size & (size - 1) == 0 && UInt64(keys.count) * 2 <= size
                && size <= max(16, UInt64(keys.count) * 4),
            "a pane table of \(keys.count) keys has \(size) slots")
        for key in keys { try handles.check(key) }
        let range = 0...limit
        for figure in figures {
            try SnapshotReader.require(
                range.contains(figure.views) && range.contains(figure.clicks) && range.contains(figure.conversions)
                    && range.contains(figure.revenue) && range.contains(figure.refunds) && range.contains(figure.spend)
                    && range.contains(figure.engagements) && range.contains(figure.leads),
                "a pane figure is out of range")
        }
        self.init()
        self.keys = keys
        self.figures = figures
        self.reach = reach
        self.slots = Array(repeating: 0, count: Int(size))
        self.shift = UInt64(64 - size.trailingZeroBitCount)
        let mask = Int(size) - 1
        for (index, key) in keys.enumerated() {
            var slot = self.slot(of: key)
            while self.slots[slot] != 0 {
                // `update` adds a key once; a window's rows are made from each pane's keys as they are.
                try SnapshotReader.require(self.keys[Int(self.slots[slot]) - 1] != key, "a pane holds a key twice")
                slot = (slot + 1) & mask
            }
            self.slots[slot] = Int32(index + 1)
        }
    }
}

extension WindowStore {
    var snapshotByteEstimate: Int {
        self.panes.reduce(25 + 16 * self.changed.count) {
            $0 + 38 + 72 * $1.table.count + $1.table.reach.reduce(0) { $0 + $1.snapshotByteEstimate }
        }
    }

    /// Writes the open panes, the next window to close, the changed keys (in order) and whether changes are tracked.
    func write(to writer: inout SnapshotWriter) {
        writer.write(count: self.panes.count)
        for pane in self.panes {
            writer.write(pane.start)
            pane.table.write(to: &writer)
        }
        writer.write(self.nextWindowStart)
        let changed = self.changed.sorted { $0.pane != $1.pane ? $0.pane < $1.pane : $0.key.packed < $1.key.packed }
        writer.write(count: changed.count)
        for change in changed {
            writer.write(change.pane)
            writer.write(change.key.packed)
        }
        writer.write(self.tracksChanges)
    }

    /// Reads what `write(to:)` wrote: panes aligned to the slide, in ascending order of start.
    init(from reader: inout SnapshotReader, window: Int64, slide: Int64, handles: SnapshotHandles) throws {
        self.init(window: window, slide: slide)
        let count = try reader.readCount(elementSize: 8 + 3 * (2 + 8) + 8)
        self.panes.reserveCapacity(count)
        for _ in 0..<count {
            let start = try reader.readTime("a pane start")
            try SnapshotReader.require(self.paneStart(of: start) == start, "a pane start is not aligned to the slide")
            try SnapshotReader.require(self.panes.last.map { $0.start < start } ?? true, "panes are out of order")
            self.panes.append((start, try PaneTable(from: &reader, handles: handles, limit: WindowStore.paneLimit(window: window, slide: slide))))
        }
        self.nextWindowStart = try reader.readTime("the next window start", sentinels: true)
        try SnapshotReader.require(self.nextWindowStart != .max, "the next window start is the end of time")
        let changes = try reader.readCount(elementSize: 16)
        self.changed.reserveCapacity(changes)
        for _ in 0..<changes {
            let pane = try reader.readTime("a changed pane")
            var key = RowKey(creator: -1, campaign: -1)
            key.packed = try reader.read(UInt64.self)
            try SnapshotReader.require(
                self.changed.insert(PaneKey(pane: pane, key: key)).inserted, "a changed key is listed twice")
        }
        self.tracksChanges = try reader.readBool()
    }
}
