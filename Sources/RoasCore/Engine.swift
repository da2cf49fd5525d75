import HeapModule

/// Where a line came from, for its dead-letter record.
public struct Origin {
    public var line: Int
    public var raw: UnsafeRawBufferPointer
    /// The id of the batch the line came in; nil for a bare line.
    public var batch: String? {
        get { self.batchAt?.pointee ?? self.ownedBatch }
        set {
            self.ownedBatch = newValue
            self.batchAt = nil
        }
    }
    private var ownedBatch: String?
    /// Where the caller keeps the batch's id, for as long as this origin is used: the reading and
    /// engine threads make an origin per line, and a copied `String` would cost two atomic
    /// reference-count operations per line (about a tenth of `roas run`'s time, measured).
    private(set) var batchAt: UnsafePointer<String>?

    public init(line: Int, batch: String?, raw: UnsafeRawBufferPointer) {
        self.line = line
        self.ownedBatch = batch
        self.raw = raw
    }

    /// An origin whose batch id is read from `batchAt` (nil: a bare line), which must stay valid
    /// while the origin is in use.
    init(line: Int, batchAt: UnsafePointer<String>?, raw: UnsafeRawBufferPointer) {
        self.line = line
        self.batchAt = batchAt
        self.raw = raw
    }

    /// True when the line came in a batch.
    var isInBatch: Bool { self.batchAt != nil || self.ownedBatch != nil }
}

/// The attribution engine: a plain value that takes parsed events in arrival order and produces
/// final rows as the watermark passes window ends.
///
/// Event time (see docs/attribution.md, "Event time"): the watermark is the greatest accepted time minus the
/// lateness; an event older than the watermark is `late`. Views, clicks and spend count on arrival;
/// links, purchases and refunds wait in a heap and apply in (time, link < purchase < refund, id) order
/// once the watermark reaches them, so the result does not depend on arrival order within the
/// lateness. State is keyed by interned identity handles and evicted as the watermark advances.
public struct Engine: Sendable {
    public private(set) var configuration: EngineConfiguration
    /// Greatest accepted time minus the lateness; `Int64.min` before the first event, `.max` at the end.
    public var watermark: Int64 { self.admission.watermark }
    /// The `late` and `duplicate` checks and the watermark they use (the engine's watermark).
    var admission: Admission
    public internal(set) var statistics = Statistics()

    var users = Interner()
    var creators = Interner()
    var campaigns = Interner()
    /// The byte order of `creators` and `campaigns` (`rowOrder()`): made from them, not in snapshots.
    var creatorOrder = NameOrder()
    var campaignOrder = NameOrder()
    /// The views and clicks, in `configuration.partitions` partitions by identity handle (handle
    /// modulo the count; `TouchPartition`).
    var store: PartitionStore
    /// Where `store` keeps the partitions: the per-touch paths index it without loading the
    /// reference (a retain and a release per touch). Follows every change of `store`.
    var partitionsAt: PartitionAddress
    /// log2 of the partition count: an identity's partition is its handle's low bits, its index
    /// there the rest.
    let partitionShift: Int
    /// With `--workers` over 1: the threads that run the partitions, what is queued for them
    /// (`queues`, handed over by `flushPartitions` as jobs, `submitted` until the next `settle`),
    /// the queries queued per partition since then, the purchases and sign-ups whose touches they
    /// are looking up (`deferred`), and what the engine knows of the partitions meanwhile.
    let workers: PartitionWorkers?
    var queues: [PartitionQueue] = []
    var submitted: [PartitionJob] = []
    var queryCounts: [Int] = []
    var queuedOperations = 0
    var deferred: [DeferredCredit] = []
    var unresolvedOrders: Set<[UInt8]> = []
    /// Touches held at the last `settle` and appended since (with workers, for `stateSizes`).
    var touchesAtSettle = 0
    var touchesSinceSettle = 0
    /// Touches and id-record bytes appended to every partition since the engine began (restored
    /// engines included): while these are below the logs' limits, every partition has room.
    var appendedTouches: Int64 = 0
    var appendedIDBytes: Int64 = 0
    /// With workers: per pane start, the credited conversions, revenue and leads added to any key,
    /// so that a purchase whose addition fits even the pane's total (`creditsSurelyFit`) can be
    /// accepted before its credits are known.
    var creditTotals: [Int64: Aggregate] = [:]
    var identities = IdentityGraph()
    var pending = Heap<PendingEvent>()
    var orders: [[UInt8]: Order] = [:]
    /// Every figure of every key by pane; with `--models`, only the figures shared by every model
    /// (views, clicks, spend, engagements and reach), the credited ones being in `credited`.
    var windows: WindowStore
    /// With `--models`, the credited figures (conversions, revenue, refunds, leads) of each model, in
    /// the order of `configuration.models`; empty without it. A model's rows are the union of its
    /// store and `windows`, key by key: the rows a `--model` run of it alone would give.
    var credited: [WindowStore] = []
    /// Creator profiles by creator handle, in (time, id) order: the tiers of the creator's rows.
    var profiles: [[CreatorProfile]] = []
    /// Profiles held, over all creators (they count towards `--max-keys`).
    var profileCount = 0
    var nextSweep: Int64 = .min
    private let sweepInterval: Int64
    /// The largest conversions, revenue, refunds or spend one key's pane may hold: a window sums
    /// `window / slide` panes, so its figures stay within `Int64.max`. An event that would pass it is
    /// dead-lettered `overflow` before it applies.
    let paneLimit: Int64

    public init(configuration: EngineConfiguration) {
        self.configuration = configuration
        self.windows = WindowStore(window: configuration.window, slide: configuration.slide)
        if configuration.labelsModels {
            self.credited = configuration.models.map { _ in
                WindowStore(window: configuration.window, slide: configuration.slide)
            }
        }
        self.admission = Admission(
            lateness: configuration.lateness, dedupHorizon: configuration.dedupHorizon, paged: configuration.pagedState)
        let partitions = max(1, configuration.partitions)
        self.store = PartitionStore(
            Array(repeating: TouchPartition(lateness: configuration.lateness), count: partitions))
        self.partitionsAt = PartitionAddress(self.store)
        self.partitionShift = partitions.trailingZeroBitCount
        if configuration.workers > 1 {
            self.workers = PartitionWorkers(count: min(configuration.workers, partitions))
            self.queues = Array(repeating: PartitionQueue(), count: partitions)
            self.queryCounts = Array(repeating: 0, count: partitions)
        } else {
            self.workers = nil
        }
        // Eviction only looks at the front of the touch logs: cheap enough to run every second of event time.
        self.sweepInterval = 1000
        self.paneLimit = WindowStore.paneLimit(window: configuration.window, slide: configuration.slide)
        if configuration.pagedState { self.setPagedState(true) }
    }

    /// Keep track of changed open windows, for `emitUpdates(into:)`.
    public mutating func trackUpdates(_ enabled: Bool) {
        self.windows.tracksChanges = enabled
        for index in self.credited.indices { self.credited[index].tracksChanges = enabled }
    }

    // MARK: Counting lines that never reach the engine's state

    public mutating func countLines(read lines: Int, bytes: Int) {
        self.statistics.linesRead = lines
        self.statistics.bytesRead = bytes
    }

    public mutating func addLines(read lines: Int, bytes: Int) {
        self.statistics.linesRead += lines
        self.statistics.bytesRead += bytes
    }

    public mutating func countBlankLine() {
        self.statistics.blankLines += 1
    }

    public mutating func countAcceptedBatch() {
        self.statistics.acceptedBatches += 1
    }

    public mutating func countRejectedBatch(_ reason: Reason) {
        self.statistics.rejectedBatches[reason.index] += 1
    }

    /// Records a rejected line.
    public mutating func reject(_ rejection: Rejection, origin: Origin, into output: inout EngineOutput) {
        self.statistics.deadLetters[rejection.reason.index] += 1
        if self.configuration.keepsDeadLetters {
            output.deadLetters.append(
                DeadLetter(
                    reason: rejection.reason, batch: origin.batch, line: origin.line, raw: Array(origin.raw),
                    detail: rejection.detail, payload: rejection.payload))
        }
    }

    // MARK: Events

    /// Takes one parsed event: checks `late` then `duplicate`, applies or queues it, then advances the
    /// watermark, applying what it reaches and emitting the windows it closes.
    @inline(__always)
    public mutating func accept(_ event: ParsedEvent, origin: Origin, into output: inout EngineOutput) {
        self.accept(event, hashes: Engine.hashes(of: event), origin: origin, into: &output)
    }

    /// The hashes the engine looks an event up by: its id's fingerprint (the dedup set) and, for a
    /// view or a click, `Interner.hash` of its user (unspecified for other kinds). The reading thread
    /// computes them ahead (`ParsedChunk`), and the engine's thread prefetches by them.
    struct EventHashes: Sendable {
        var id: Fingerprint
        var user: UInt64
    }

    @inline(__always)
    static func hashes(of event: ParsedEvent) -> EventHashes {
        EventHashes(
            id: Fingerprint(event.id), user: event.kind == .view || event.kind == .click ? Interner.hash(event.user) : 0)
    }

    /// The first step, some events before `prefetch`: starts loading where the dedup set keeps the
    /// page of the slot accepting an event with `hashes` will read (`prefetch` reads its address).
    @inline(__always)
    mutating func prefetchDedupPage(_ hashes: EventHashes) {
        self.admission.prefetchPage(hashes.id)
    }

    /// Starts loading the dedup slot and user slot that accepting an event with `hashes` will read
    /// first: called a few events ahead, it overlaps those cache misses with the work in between.
    /// Mutating only so that a caller holding the engine in place does not copy it to call this.
    @inline(__always)
    mutating func prefetch(_ hashes: EventHashes) {
        self.admission.prefetch(hashes.id)
        self.users.prefetch(hash: hashes.user)
    }

    /// The second step, called for a view or click some events after `prefetch` loaded its user's
    /// slot: starts loading the head of the user's touch chain, which adding the touch reads (a
    /// random read into a table of a slot per user, the costliest of a touch once the slot is
    /// loaded). Uses the slot's handle without comparing bytes: a wrong guess only wastes a load.
    @inline(__always)
    mutating func prefetchTouchHead(userHash: UInt64, userLength: Int, isClick: Bool) {
        guard self.workers == nil, let user = self.users.guessHandle(hash: userHash, length: userLength) else { return }
        let (partition, local) = self.partition(of: user)
        self.partitionsAt.base[partition].prefetchHead(of: local, isClick: isClick)
    }

    /// `accept(_:origin:into:)` with the event's hashes computed ahead (`hashes(of:)`).
    @inline(__always)
    mutating func accept(_ event: ParsedEvent, hashes: EventHashes, origin: Origin, into output: inout EngineOutput) {
        if let rejection = self.admission.check(time: event.time, fingerprint: hashes.id) {
            self.reject(rejection, origin: origin, into: &output)
            return
        }
        if self.keyCount > self.configuration.maximumKeys - 4 && self.addsKeysPastLimit(event) {
            self.reject(
                Rejection(.tooManyKeys, "the engine holds --max-keys (\(self.configuration.maximumKeys)) keys"),
                origin: origin, into: &output)
            return
        }
        switch event.kind {
        case .view, .click:
            self.addTouch(event, userHash: hashes.user, origin: origin, into: &output)
        case .spend:
            let creator = self.creators.intern(event.creator)
            let campaign = self.campaignHandle(event.campaign)
            let key = self.rowKey(creator, campaign)
            guard let amount = Micros.convert(event.amount, rate: self.configuration.currencies.rates[event.currency]),
                self.windows.paneFigures(at: event.time, key: key).canAdd(Aggregate(spend: amount), limit: self.paneLimit)
            else {
                return self.reject(Engine.overflow, origin: origin, into: &output)
            }
            self.windows.update(time: event.time, key: key) { $0.spend += amount }
            self.statistics.acceptedEvents[Int(EventKind.spend.rawValue)] += 1
        case .engagement:
            let creator = self.creators.intern(event.creator)
            let key = self.rowKey(creator, self.campaignHandle(event.campaign))
            self.windows.update(time: event.time, key: key) { $0.engagements += 1 }
            self.statistics.acceptedEvents[Int(EventKind.engagement.rawValue)] += 1
        case .creator:
            self.addProfile(event)
        case .purchase, .refund, .link, .signup:
            self.enqueue(event, origin: origin)
        }
        if let watermark = self.admission.observe(event.time) { self.advance(to: watermark, into: &output) }
    }

    /// Keeps the large tables in pages, or not (`EngineConfiguration.pagedState`): `roas serve
    /// --data-dir` replays its log without pages, which cost each event time, and pages the tables
    /// before it takes input. The paged tables: the dedup set's, the user interner's, the touch
    /// logs' chain heads and the identity graph's parents. Changes no result.
    public mutating func setPagedState(_ paged: Bool) {
        self.configuration.pagedState = paged
        self.admission.setDedupPaged(paged)
        self.users.setPaged(paged)
        self.identities.setPaged(paged)
        self.settle()
        self.uniquePartitions()
        for index in 0..<self.store.count { self.partitionsAt.base[index].setPaged(paged) }
    }

    /// A copy to write a snapshot from while this engine goes on (a checkpoint, on another thread):
    /// it shares the state's pages, without the work in progress that a snapshot leaves out (a
    /// growth of the user table or of a dedup shard), whose pages the copy would otherwise keep this
    /// engine from filling in place.
    public var checkpointCopy: Engine {
        var copy = self
        copy.admission.dropDedupGrowth()
        copy.users.dropGrowth()
        copy.creators.dropGrowth()
        copy.campaigns.dropGrowth()
        return copy
    }

    /// End of input: the watermark becomes +infinity, everything pending applies and every window closes.
    public mutating func finish(into output: inout EngineOutput) {
        self.advance(to: .max, into: &output)
        self.settle()
    }

    /// Moves the watermark forward to `time` without an event (`roas serve --idle-close`: the wall
    /// clock standing in for a stream that went quiet), applying what it reaches and closing windows.
    public mutating func advanceIdle(to time: Int64, into output: inout EngineOutput) {
        if time > self.watermark { self.advance(to: time, into: &output) }
    }

    /// Emits the changed rows of open windows as live updates (`final: false`), in order of window,
    /// then model, then key.
    public mutating func emitUpdates(into output: inout EngineOutput) {
        self.settle()
        let shared = self.windows.takeChanges()
        var rows: [Row] = []
        for model in self.modelIndices {
            var changes = shared
            if !self.credited.isEmpty {
                let own = self.credited[model].takeChanges()
                if !own.isEmpty {
                    var seen = Set(changes.map { WindowStore.PaneKey(pane: $0.start, key: $0.key) })
                    for change in own where seen.insert(WindowStore.PaneKey(pane: change.start, key: change.key)).inserted {
                        changes.append(change)
                    }
                }
            }
            guard !changes.isEmpty else { continue }
            if self.configuration.byTier {
                // A changed creator changes its tier's row: each such row is rolled up from its whole window.
                var groups: [Int64: Set<TierKey>] = [:]
                for change in changes {
                    groups[change.start, default: []].insert(
                        self.tierKey(change.key, windowEnd: change.start + self.configuration.window))
                }
                for start in groups.keys.sorted() {
                    let changed = groups[start]!
                    let rolled = self.rollUp(self.cells(startingAt: start, model: model), start: start, order: self.rowOrder())
                        .filter { changed.contains($0.key) }
                    for (key, cell) in rolled {
                        rows.append(self.makeRow(start: start, tierKey: key, cell: cell, model: model, isFinal: false))
                    }
                }
            } else {
                var cells: [(start: Int64, key: RowKey, cell: WindowCell)] = []
                for change in changes {
                    if let cell = self.cell(of: change.key, startingAt: change.start, model: model) {
                        cells.append((change.start, change.key, cell))
                    }
                }
                let rowOrder = self.rowOrder()
                cells.sort { a, b in a.start != b.start ? a.start < b.start : rowOrder.precedes(a.key, b.key) }
                for cell in cells {
                    rows.append(self.makeRow(start: cell.start, key: cell.key, cell: cell.cell, model: model, isFinal: false))
                }
            }
        }
        if self.credited.count > 1 {
            // Window first, then model: a stable sort keeps each model's rows in their order.
            let indexed = rows.enumerated().map { ($0.offset, $0.element) }
            rows = indexed.sorted { a, b in
                a.1.windowStart != b.1.windowStart ? a.1.windowStart < b.1.windowStart : a.0 < b.0
            }.map(\.1)
        }
        output.rows.append(contentsOf: rows)
        self.statistics.updateRows += rows.count
    }

    /// The models' positions in `configuration.models` (just 0 without `--models`).
    var modelIndices: Range<Int> { 0..<max(1, self.credited.count) }

    /// The cells of the window starting at `start` under `model`: with `--models`, its credited
    /// figures added to the shared ones, key by key.
    func cells(startingAt start: Int64, model: Int) -> [RowKey: WindowCell] {
        let shared = self.windows.window(startingAt: start)
        guard !self.credited.isEmpty else { return shared }
        return Engine.merge(shared, self.credited[model].window(startingAt: start))
    }

    /// One key's cell in the window starting at `start` under `model`, or nil when it has none.
    func cell(of key: RowKey, startingAt start: Int64, model: Int) -> WindowCell? {
        let shared = self.windows.figures(of: key, inWindowStartingAt: start)
        guard !self.credited.isEmpty, let own = self.credited[model].figures(of: key, inWindowStartingAt: start) else {
            return shared
        }
        guard var cell = shared else { return own }
        cell.figures.add(own.figures)
        return cell
    }

    /// Shared cells with a model's credited ones added (the credited stores hold no reach).
    static func merge(_ shared: [RowKey: WindowCell], _ own: [RowKey: WindowCell]) -> [RowKey: WindowCell] {
        var merged = shared
        for (key, cell) in own {
            if merged[key] == nil { merged[key] = cell } else { merged[key]!.figures.add(cell.figures) }
        }
        return merged
    }

    /// Changes `key`'s credited figures (conversions, revenue, refunds, leads) under `model` in the
    /// pane holding `time`.
    @inline(__always)
    mutating func updateCredited(_ model: Int, time: Int64, key: RowKey, _ body: (inout Aggregate) -> Void) {
        if self.credited.isEmpty {
            self.windows.update(time: time, key: key, body)
        } else {
            self.credited[model].update(time: time, key: key, body)
        }
    }

    // MARK: State figures

    /// Sizes of the engine's state, for the summary and metrics.
    public struct StateSizes: Sendable {
        public var identities: Int
        public var touches: Int
        public var pending: Int
        public var orders: Int
        public var dedupIDs: Int
        public var openPanes: Int
    }

    public var stateSizes: StateSizes {
        StateSizes(
            identities: self.users.count,
            touches: self.workers == nil
                ? self.store.partitions.reduce(0) { $0 + $1.count } : self.touchesAtSettle + self.touchesSinceSettle,
            pending: self.pending.count, orders: self.orders.count,
            dedupIDs: self.admission.dedupCount,
            openPanes: self.windows.paneCount)
    }

    // MARK: Internals

    /// Keys the state holds for good: users, creators, campaigns, orders (with the events that
    /// wait and may add one) and creator profiles, which `--max-keys` caps.
    public var keyCount: Int {
        self.users.count + self.creators.count + self.campaigns.count + self.orders.count + self.pending.count
            + self.profileCount
    }

    /// True when the keys `event` would add take `keyCount` past `--max-keys`.
    private func addsKeysPastLimit(_ event: ParsedEvent) -> Bool {
        var added = 0
        func count(_ interner: Interner, _ bytes: UnsafeRawBufferPointer?) {
            if let bytes, !interner.contains(bytes) { added += 1 }
        }
        switch event.kind {
        case .view, .click:
            count(self.users, event.user)
            count(self.creators, event.creator)
            count(self.campaigns, event.campaign)
        case .spend, .engagement:
            count(self.creators, event.creator)
            count(self.campaigns, event.campaign)
        case .creator:
            count(self.creators, event.creator)
            added += 1
        case .purchase, .link, .refund, .signup:
            // Each waits in `pending` (one key) and interns its user and linked user.
            added += 1
            if event.kind != .refund { count(self.users, event.user) }
            if event.kind == .link && !event.linked.elementsEqual(event.user) { count(self.users, event.linked) }
        }
        return self.keyCount + added > self.configuration.maximumKeys
    }

    /// The rejection of an event whose amounts cannot be represented: converted to the base currency
    /// it does not fit an `Int64` of micro-units, or a figure of a row would pass `paneLimit`.
    static let overflow = Rejection(
        .overflow, "the amount cannot be represented: a row's figure would exceed the largest sum roas keeps")

    /// True when adding each of `additions` (money and conversions) to its key's pane at `time` keeps
    /// every figure within `paneLimit`, so no window sum can overflow. Keys may repeat.
    func fits(_ additions: [(key: RowKey, figures: Aggregate)], at time: Int64, model: Int) -> Bool {
        var totals = KeyedSums<Aggregate>()
        for addition in additions {
            // Each part alone within the limit, so that two parts of one key compare without overflow.
            guard Aggregate().canAdd(addition.figures, limit: self.paneLimit) else { return false }
            if let index = totals.position(of: addition.key) {
                guard totals.entries[index].value.canAdd(addition.figures, limit: self.paneLimit) else { return false }
                totals.entries[index].value.add(addition.figures)
            } else {
                totals.append(addition.key, addition.figures)
            }
        }
        for total in totals.entries {
            let fitsPane =
                self.credited.isEmpty
                ? self.windows.paneFigures(at: time, key: total.key).canAdd(total.value, limit: self.paneLimit)
                : self.credited[model].paneFigures(at: time, key: total.key).canAdd(total.value, limit: self.paneLimit)
            guard fitsPane else { return false }
        }
        return true
    }

    @inline(__always)
    static func subtract(_ time: Int64, _ amount: Int64) -> Int64 {
        if time == .min || time == .max { return time }
        let (result, overflow) = time.subtractingReportingOverflow(amount)
        return overflow ? .min : result
    }

    @inline(__always)
    func rowKey(_ creator: Int32, _ campaign: Int32) -> RowKey {
        RowKey(creator: creator, campaign: self.configuration.byCampaign ? campaign : -1)
    }

    @inline(__always)
    mutating func campaignHandle(_ bytes: UnsafeRawBufferPointer?) -> Int32 {
        guard let bytes else { return -1 }
        return self.campaigns.intern(bytes)
    }

    static let touchLimit = Rejection(
        .overflow,
        "the engine's touch log has reached a limit (2^62 views or clicks, or id bytes, since it began; 2^32 held; "
            + "ids over 64 KiB)")

    /// Whether the touch log and id arena of `event`'s kind in the partition of its user can take
    /// it without a position past what a snapshot holds (`SnapshotReader.counterLimit`): out of
    /// reach of a real stream, but a snapshot read near the limit must not go on to write one that
    /// does not read back. Also within what a touch's 32-bit fields hold (`TouchLog`): fewer than
    /// 2^32 touches held, ids of at most 64 KiB (events' ids are at most 256 bytes). The limits are
    /// a partition's; while the engine has appended fewer touches and id bytes than they allow in
    /// all, the answer is yes without looking (with workers, looking means waiting for them).
    @inline(__always)
    /// `record`: the bytes the id's record takes (`IDArena.recordSize`).
    mutating func hasRoom(forTouch event: ParsedEvent, userHash: UInt64, record: Int64) -> Bool {
        guard event.id.count <= TouchLog.maximumIDBytes else { return false }
        if self.appendedTouches < Int64(TouchLog.maximumCount)
            && self.appendedIDBytes <= SnapshotReader.counterLimit - record
        {
            return true
        }
        self.settle()
        let (partition, _) = self.partition(of: self.users.prospectiveHandle(event.user, hash: userHash))
        let held = self.store.base[partition]
        let isClick = event.kind == .click
        let (end, count) = isClick ? (held.clicks.end, held.clicks.count) : (held.views.end, held.views.count)
        let ids = isClick ? held.clickIDs.end : held.viewIDs.end
        return end < SnapshotReader.counterLimit && count < TouchLog.maximumCount
            && ids <= SnapshotReader.counterLimit - record
    }

    /// The partition of the identity with handle `user`, and the identity's index there.
    @inline(__always)
    func partition(of user: Int32) -> (partition: Int, local: Int32) {
        (Int(user) & ((1 << self.partitionShift) - 1), user >> Int32(self.partitionShift))
    }

    @inline(__always)
    private mutating func addTouch(
        _ event: ParsedEvent, userHash: UInt64, origin: Origin, into output: inout EngineOutput
    ) {
        let record = Int64(IDArena.recordSize(event.id.count))
        guard self.hasRoom(forTouch: event, userHash: userHash, record: record) else {
            return self.reject(Engine.touchLimit, origin: origin, into: &output)
        }
        // Reach takes the interner's hash of the user, mixed, rather than a second pass over the bytes.
        let user = self.users.intern(event.user, hash: userHash)
        let (partition, local) = self.partition(of: user)
        self.appendedTouches += 1
        self.appendedIDBytes += record
        let creator = self.creators.intern(event.creator)
        let campaign = self.campaignHandle(event.campaign)
        let key = self.rowKey(creator, campaign)
        let reached = ReachSketch.mix(userHash)
        let isClick = event.kind == .click
        if self.workers != nil {
            self.queues[partition].appendTouch(
                time: event.time, creator: creator, campaign: campaign, local: local, id: event.id, isClick: isClick)
            self.touchesSinceSettle += 1
            self.queuedOperations += 1
            if self.queuedOperations >= Engine.flushThreshold { self.flushPartitions() }
        } else {
            self.uniquePartitions()
            self.partitionsAt.base[partition].append(
                isClick: isClick, time: event.time, creator: creator, campaign: campaign, local: local, id: event.id)
        }
        if isClick {
            self.windows.update(time: event.time, key: key, user: reached) { $0.clicks += 1 }
        } else {
            self.windows.update(time: event.time, key: key, user: reached) { $0.views += 1 }
        }
        self.statistics.acceptedEvents[Int(event.kind.rawValue)] += 1
    }

    private mutating func enqueue(_ event: ParsedEvent, origin: Origin) {
        var user: Int32 = -1
        var linked: Int32 = -1
        if event.kind != .refund { user = self.users.intern(event.user) }
        if event.kind == .link { linked = self.users.intern(event.linked) }
        self.pending.insert(
            PendingEvent(
                time: event.time, kind: event.kind, id: Array(event.id), user: user, linked: linked,
                order: Array(event.order), amount: event.amount, currency: event.currency, line: origin.line,
                batch: origin.batch, raw: self.configuration.keepsDeadLetters ? Array(origin.raw) : []))
        self.statistics.pendingEvents += 1
    }

    private mutating func advance(to watermark: Int64, into output: inout EngineOutput) {
        self.admission.raise(to: watermark)
        while let next = self.pending.min, next.time <= watermark {
            let event = self.pending.removeMin()
            self.statistics.pendingEvents -= 1
            self.apply(event, into: &output)
        }
        // A purchase whose credits are still being looked up must be counted before a window
        // holding it closes: the first to close ends a slide after its pane starts.
        if let first = self.deferred.first,
            watermark == .max || self.windows.paneStart(of: first.time) <= Engine.subtract(watermark, self.configuration.slide)
        {
            self.settle()
        }
        var closed: [(Int64, WindowColumns)] = []
        self.windows.close(upTo: watermark) { start, cells in closed.append((start, cells)) }
        if self.credited.isEmpty {
            for (start, cells) in closed { self.emitFinal(start: start, cells: cells, model: 0, into: &output) }
        } else {
            // Each window once, in order, with every model's rows (model by model) after one another.
            var byModel: [[Int64: [RowKey: WindowCell]]] = []
            var starts = Set(closed.map(\.0))
            for model in self.credited.indices {
                var own: [Int64: [RowKey: WindowCell]] = [:]
                self.credited[model].close(upTo: watermark) { start, cells in own[start] = cells.dictionary }
                starts.formUnion(own.keys)
                byModel.append(own)
            }
            let shared = Dictionary(closed.map { ($0.0, $0.1.dictionary) }, uniquingKeysWith: { a, _ in a })
            for start in starts.sorted() {
                for model in self.credited.indices {
                    let cells = Engine.merge(shared[start] ?? [:], byModel[model][start] ?? [:])
                    if !cells.isEmpty { self.emitFinal(start: start, cells: WindowColumns(cells), model: model, into: &output) }
                }
            }
        }
        if watermark != .max && watermark >= self.nextSweep {
            self.sweep()
            self.nextSweep = Engine.subtract(watermark, -self.sweepInterval)
        }
    }

    /// Drops touches the lookbacks no longer reach and ids no touch needs.
    private mutating func sweep() {
        let clickCutoff = Engine.subtract(self.watermark, self.configuration.clickLookback)
        let viewCutoff = Engine.subtract(self.watermark, self.configuration.viewLookback)
        if self.workers != nil {
            for partition in 0..<self.store.count {
                self.queues[partition].ops.append(.evict(clicksBefore: clickCutoff, viewsBefore: viewCutoff))
            }
            self.queuedOperations += self.store.count
            // Credit totals of panes no purchase to come can fall in (they apply after the watermark).
            let firstPane = self.windows.paneStart(of: self.watermark)
            if self.creditTotals.keys.contains(where: { $0 < firstPane }) {
                self.creditTotals = self.creditTotals.filter { $0.key >= firstPane }
            }
        } else {
            self.uniquePartitions()
            for partition in 0..<self.store.count {
                self.partitionsAt.base[partition].evict(clicksBefore: clickCutoff, viewsBefore: viewCutoff)
            }
        }
    }

    private mutating func emitFinal(
        start: Int64, cells: WindowColumns, model: Int, into output: inout EngineOutput
    ) {
        if self.configuration.byTier {
            let rolled = self.rollUp(cells.dictionary, start: start, order: self.rowOrder())
            for (key, cell) in rolled {
                output.rows.append(self.makeRow(start: start, tierKey: key, cell: cell, model: model, isFinal: true))
            }
            self.statistics.finalRows += rolled.count
            return
        }
        let rowOrder = self.rowOrder()
        let order = cells.keys.indices.sorted { rowOrder.precedes(cells.keys[$0], cells.keys[$1]) }
        for index in order {
            output.rows.append(self.makeRow(start: start, key: cells.keys[index], cell: cells.cells[index], model: model, isFinal: true))
        }
        self.statistics.finalRows += order.count
    }

    /// Row order within a window: creator, then campaign, bytewise, nulls last, as ranks brought up
    /// to date with the names interned since the last call. A window's rows then sort by comparing
    /// integers: comparing names' bytes through the engine made each comparison copy the engine (a
    /// retain and a release of each of its buffers), 40% of the simple job's time at 5,000 creators.
    mutating func rowOrder() -> RowOrder {
        self.creatorOrder.update(self.creators)
        self.campaignOrder.update(self.campaigns)
        return RowOrder(creators: self.creatorOrder.ranks, campaigns: self.campaignOrder.ranks)
    }

    /// Row order within a window (`rowOrder()`).
    struct RowOrder {
        /// By handle, its rank in byte order among the names interned when the order was made.
        let creators: [Int32]
        let campaigns: [Int32]

        func precedes(_ a: RowKey, _ b: RowKey) -> Bool {
            if a.creator != b.creator { return RowOrder.precedes(a.creator, b.creator, by: self.creators) }
            if a.campaign != b.campaign { return RowOrder.precedes(a.campaign, b.campaign, by: self.campaigns) }
            return false
        }

        private static func precedes(_ a: Int32, _ b: Int32, by ranks: [Int32]) -> Bool {
            if a < 0 { return false }
            if b < 0 { return true }
            return ranks[Int(a)] < ranks[Int(b)]
        }
    }

    /// The `model` field of rows under the model at `index`: its name with `--models`, nil without.
    private func modelName(_ index: Int) -> String? {
        self.configuration.labelsModels ? self.configuration.models[index].rawValue : nil
    }

    private mutating func makeRow(start: Int64, key: RowKey, cell: WindowCell, model: Int, isFinal: Bool) -> Row {
        let end = start + self.configuration.window
        return Row(
            model: self.modelName(model),
            windowStart: start, windowEnd: end,
            creator: key.creator < 0 ? nil : self.creators.string(for: key.creator),
            campaign: key.campaign < 0 ? nil : self.campaigns.string(for: key.campaign), figures: cell.figures,
            reach: cell.reach.count, tier: key.creator < 0 ? nil : self.tier(of: key.creator, before: end)?.rawValue,
            isFinal: isFinal)
    }

    private mutating func makeRow(start: Int64, tierKey key: TierKey, cell: WindowCell, model: Int, isFinal: Bool) -> Row {
        Row(
            model: self.modelName(model),
            windowStart: start, windowEnd: start + self.configuration.window, creator: nil,
            campaign: key.campaign < 0 ? nil : self.campaigns.string(for: key.campaign), figures: cell.figures,
            reach: cell.reach.count, tier: key.tierName, isFinal: isFinal)
    }
}

/// Sums by row key, in the order keys first appear: a purchase's credits, one per qualifying touch,
/// summed per key. A linear search while there are few keys (the usual purchase has a handful of
/// touches), a dictionary beyond, so that a purchase with thousands of touches (an identity that
/// sends most of a stream, under linear or position) costs a step per touch, not per touch and key.
struct KeyedSums<Value> {
    var entries: [(key: RowKey, value: Value)] = []
    private var index: [RowKey: Int] = [:]
    private static var linearLimit: Int { 16 }

    /// Where `key`'s sum is in `entries`, if it has one.
    @inline(__always)
    func position(of key: RowKey) -> Int? {
        if self.entries.count <= KeyedSums.linearLimit { return self.entries.firstIndex { $0.key == key } }
        return self.index[key]
    }

    /// Adds a sum for a key that has none.
    mutating func append(_ key: RowKey, _ value: Value) {
        self.entries.append((key, value))
        if self.entries.count == KeyedSums.linearLimit + 1 {
            for (position, entry) in self.entries.enumerated() { self.index[entry.key] = position }
        } else if self.entries.count > KeyedSums.linearLimit + 1 {
            self.index[key] = self.entries.count - 1
        }
    }
}
