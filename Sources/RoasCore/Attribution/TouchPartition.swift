/// One partition of the touches: the views and clicks of the identities whose handle is congruent
/// to the partition's number modulo the partition count (`--partitions`), and their ids.
///
/// An identity's touches all live in one partition, chained there in arrival order, so that a
/// partition answers for its identities alone: the engine asks the partitions of a purchase's
/// identity group for their qualifying touches (`answer(_:into:)`) and combines the answers. An
/// identity's index within its partition is its handle divided by the partition count, so the
/// partitions' chain heads are dense.
struct TouchPartition: Sendable {
    var clicks: TouchLog
    var views: TouchLog
    var clickIDs = IDArena()
    var viewIDs = IDArena()

    init(lateness: Int64) {
        self.clicks = TouchLog(lateness: lateness)
        self.views = TouchLog(lateness: lateness)
    }

    init(clicks: TouchLog, views: TouchLog, clickIDs: IDArena, viewIDs: IDArena) {
        self.clicks = clicks
        self.views = views
        self.clickIDs = clickIDs
        self.viewIDs = viewIDs
    }

    var count: Int { self.clicks.count + self.views.count }

    /// Keeps the logs' chain heads in pages, or in one array each (`PagedArray.setPaged`).
    mutating func setPaged(_ paged: Bool) {
        self.clicks.setPaged(paged)
        self.views.setPaged(paged)
    }

    /// Appends a view or click of the identity at `local` (its index in this partition).
    @inline(__always)
    mutating func append(
        isClick: Bool, time: Int64, creator: Int32, campaign: Int32, local: Int32, id: UnsafeRawBufferPointer
    ) {
        if isClick {
            let offset = self.clickIDs.append(id, time: time)
            self.clicks.append(time: time, creator: creator, campaign: campaign, id: offset, identity: local)
        } else {
            let offset = self.viewIDs.append(id, time: time)
            self.views.append(time: time, creator: creator, campaign: campaign, id: offset, identity: local)
        }
    }

    /// Drops the touches and ids the lookbacks no longer reach.
    mutating func evict(clicksBefore clickCutoff: Int64, viewsBefore viewCutoff: Int64) {
        self.clicks.evict(before: clickCutoff)
        self.views.evict(before: viewCutoff)
        self.clickIDs.release(olderThan: clickCutoff)
        self.viewIDs.release(olderThan: viewCutoff)
    }

    /// Starts loading the chain head `append` will read for the identity at `local`. Mutating
    /// only so that a call on a partition held in place does not copy it.
    @inline(__always)
    mutating func prefetchHead(of local: Int32, isClick: Bool) {
        if isClick { self.clicks.prefetchHead(of: local) } else { self.views.prefetchHead(of: local) }
    }

    /// Adds to `found` the touches of the identity at `query.local` that a purchase at `query.time`
    /// may credit: with `latestOnly`, its latest qualifying click and its latest qualifying view (in
    /// (time, id) order; what last touch picks from), else every qualifying touch.
    func answer(_ query: TouchQuery, into found: inout FoundTouches) {
        let clickFrom = Engine.subtract(query.time, query.clickLookback)
        let viewFrom = Engine.subtract(query.time, query.viewLookback)
        if query.latestOnly {
            if let click = self.latest(in: self.clicks, ids: self.clickIDs, of: query.local, from: clickFrom, to: query.time) {
                self.clickIDs.withID(at: click.id) { found.append(click.touch, id: $0, isClick: true) }
            }
            if let view = self.latest(in: self.views, ids: self.viewIDs, of: query.local, from: viewFrom, to: query.time) {
                self.viewIDs.withID(at: view.id) { found.append(view.touch, id: $0, isClick: false) }
            }
            return
        }
        self.clicks.forEach(of: query.local, in: clickFrom, query.time) { touch, id in
            self.clickIDs.withID(at: id) { found.append(touch, id: $0, isClick: true) }
        }
        self.views.forEach(of: query.local, in: viewFrom, query.time) { touch, id in
            self.viewIDs.withID(at: id) { found.append(touch, id: $0, isClick: false) }
        }
    }

    /// The latest touch of `local` in `log` with a time in `lower...upper`, by walks that stop once
    /// no older touch can be later (`TouchLog.forEach(of:in:_:floor:_:)`), and its id's bytes.
    private func latest(in log: TouchLog, ids: IDArena, of local: Int32, from lower: Int64, to upper: Int64)
        -> (touch: Touch, id: Int64)?
    {
        var best: (touch: Touch, id: Int64)? = nil
        log.forEach(of: local, in: lower, upper, floor: .min) { touch, id in
            if let current = best {
                if touch.time > current.touch.time
                    || (touch.time == current.touch.time && IDArena.compare(ids, current.id, ids, id) < 0)
                {
                    best = (touch, id)
                }
            } else {
                best = (touch, id)
            }
            return best!.touch.time
        }
        return best
    }
}

/// A purchase's (or sign-up's) question to the partition of one identity of its group.
struct TouchQuery: Sendable {
    var local: Int32
    var time: Int64
    var clickLookback: Int64
    var viewLookback: Int64
    var latestOnly: Bool
}

/// A touch a partition found for a query; its id's bytes are in the `FoundTouches` holding it.
struct FoundTouch: Sendable {
    var touch: Touch
    var idStart: Int32
    var idCount: Int32
    var isClick: Bool
}

/// The touches partitions found for a purchase, their ids' bytes in one buffer (a purchase of an
/// identity with thousands of touches makes one allocation, not one per touch).
struct FoundTouches: Sendable {
    var touches: [FoundTouch] = []
    var ids: [UInt8] = []

    @inline(__always)
    mutating func append(_ touch: Touch, id: UnsafeRawBufferPointer, isClick: Bool) {
        self.touches.append(
            FoundTouch(
                touch: touch, idStart: Int32(truncatingIfNeeded: self.ids.count),
                idCount: Int32(truncatingIfNeeded: id.count), isClick: isClick))
        self.ids.append(contentsOf: id)
    }

    mutating func append(contentsOf other: FoundTouches) {
        let shift = Int32(truncatingIfNeeded: self.ids.count)
        self.touches.append(
            contentsOf: other.touches.map {
                var moved = $0
                moved.idStart += shift
                return moved
            })
        self.ids.append(contentsOf: other.ids)
    }

    /// (time, id bytewise) order; ids of retained touches are unique at a given time (the dedup
    /// horizon covers the lateness), so this orders any two touches of a purchase.
    func precedes(_ a: FoundTouch, _ b: FoundTouch) -> Bool {
        if a.touch.time != b.touch.time { return a.touch.time < b.touch.time }
        return self.ids.withUnsafeBytes { ids in
            let left = UnsafeRawBufferPointer(rebasing: ids[Int(a.idStart)..<Int(a.idStart + a.idCount)])
            let right = UnsafeRawBufferPointer(rebasing: ids[Int(b.idStart)..<Int(b.idStart + b.idCount)])
            return left.lexicographicallyPrecedes(right)
        }
    }
}
