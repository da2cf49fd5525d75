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

    public init() {}

    @inline(__always)
    mutating func add(_ other: Aggregate) {
        self.views += other.views
        self.clicks += other.clicks
        self.conversions += other.conversions
        self.revenue += other.revenue
        self.refunds += other.refunds
        self.spend += other.spend
    }
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

/// Aggregates per pane (one slide long) and key; windows are the sum of their panes.
///
/// A hopping window of k slides costs one pane update per event and k pane reads per row at
/// emission, instead of k window updates per event. With `window == slide` panes are the windows.
struct WindowStore: Sendable {
    let window: Int64
    let slide: Int64
    private(set) var panes: [Int64: [RowKey: Aggregate]] = [:]
    /// Pane starts in ascending order.
    private var paneStarts: [Int64] = []
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

    var paneCount: Int { self.panes.count }

    @inline(__always)
    func paneStart(of time: Int64) -> Int64 {
        let remainder = time % self.slide
        return remainder >= 0 ? time - remainder : time - remainder - self.slide
    }

    @inline(__always)
    mutating func update(time: Int64, key: RowKey, _ body: (inout Aggregate) -> Void) {
        let pane = self.paneStart(of: time)
        if self.panes[pane] == nil { self.addPane(pane) }
        body(&self.panes[pane, default: [:]][key, default: Aggregate()])
        if self.tracksChanges { self.changed.insert(PaneKey(pane: pane, key: key)) }
    }

    private mutating func addPane(_ pane: Int64) {
        self.panes[pane] = [:]
        var index = self.paneStarts.count
        while index > 0 && self.paneStarts[index - 1] > pane { index -= 1 }
        self.paneStarts.insert(pane, at: index)
    }

    /// The sum over the panes of the window starting at `start`, by key.
    func window(startingAt start: Int64) -> [RowKey: Aggregate] {
        var merged: [RowKey: Aggregate] = [:]
        var pane = start
        while pane < start + self.window {
            if let figures = self.panes[pane] {
                if self.window == self.slide { return figures }
                for (key, aggregate) in figures { merged[key, default: Aggregate()].add(aggregate) }
            }
            pane += self.slide
        }
        return merged
    }

    /// The figures of one key in the window starting at `start`.
    func figures(of key: RowKey, inWindowStartingAt start: Int64) -> Aggregate? {
        var total: Aggregate? = nil
        var pane = start
        while pane < start + self.window {
            if let aggregate = self.panes[pane]?[key] {
                if total == nil { total = aggregate } else { total!.add(aggregate) }
            }
            pane += self.slide
        }
        return total
    }

    /// Emits, in order of start, every window with activity that ends at or before `watermark`,
    /// then forgets panes no open window needs.
    mutating func close(upTo watermark: Int64, _ emit: (Int64, [RowKey: Aggregate]) -> Void) {
        while let earliest = self.paneStarts.first {
            let start = max(earliest - self.window + self.slide, self.nextWindowStart)
            guard watermark != .min, watermark == .max || start <= watermark - self.window else { break }
            let figures = self.window(startingAt: start)
            if !figures.isEmpty { emit(start, figures) }
            self.nextWindowStart = start + self.slide
            var drop = 0
            while drop < self.paneStarts.count && self.paneStarts[drop] < self.nextWindowStart {
                self.panes[self.paneStarts[drop]] = nil
                drop += 1
            }
            if drop > 0 { self.paneStarts.removeFirst(drop) }
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
