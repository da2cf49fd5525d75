import HeapModule

extension Engine {
    /// The first bytes of every snapshot.
    static let snapshotMagic: [UInt8] = Array("ROASSNP1".utf8)
    /// The layout version `snapshot()` writes and `init(snapshot:configuration:)` reads.
    /// 2: engagements, leads, reach sketches and creator profiles (issue 14); `--by tier`.
    /// 3: compact touches (32 bytes, every id in the id arena) and the dedup table in 64 shards.
    /// 4: the touches in partitions (`--partitions`), each with its own id arenas.
    /// 5: dedup entries of 16 bytes (a time offset from each shard's epoch), ids far ahead beside them.
    /// 6: id records that share their first bytes with the chunk's last whole record.
    public static let snapshotVersion: UInt32 = 6
    /// Arrays of `SnapshotRaw` values are copied in the host's byte order: 1 little-endian, 2 big-endian.
    static var snapshotByteOrder: UInt8 {
        #if _endian(big)
        2
        #else
        1
        #endif
    }

    /// The engine's whole state as bytes, for `init(snapshot:configuration:)` to continue from
    /// exactly where this engine stands (a crash-recovery checkpoint).
    ///
    /// Deterministic: equal states give equal bytes. Output not yet drained from an `EngineOutput`
    /// is not part of the engine, and the decoded-string caches are not kept. With workers, the
    /// engine must be settled (`settle()`) first.
    /// - Complexity: O(n) in the size of the state, plus sorting the pending events and the orders.
    public func snapshot() -> [UInt8] {
        var writer = SnapshotWriter(reservingCapacity: self.snapshotByteEstimate)
        self.writeSnapshot(into: &writer)
        return writer.bytes
    }

    /// Writes `snapshot()` into `writer`: magic, version, byte order, the options that change
    /// results, then the state.
    public func writeSnapshot(into writer: inout SnapshotWriter) {
        writer.append(Engine.snapshotMagic)
        writer.write(Engine.snapshotVersion)
        writer.write(Engine.snapshotByteOrder)
        self.configuration.writeSnapshot(to: &writer)
        self.admission.write(to: &writer)
        self.statistics.write(to: &writer)
        self.users.write(to: &writer)
        self.creators.write(to: &writer)
        self.campaigns.write(to: &writer)
        precondition(self.deferred.isEmpty && self.queuedOperations == 0, "a snapshot of an engine not settled")
        writer.write(count: self.store.count)
        for partition in self.store.partitions {
            partition.clickIDs.write(to: &writer)
            partition.viewIDs.write(to: &writer)
            partition.clicks.write(to: &writer)
            partition.views.write(to: &writer)
        }
        self.identities.write(to: &writer)
        // In order, so that the bytes do not depend on the heap's layout.
        let pending = self.pending.unordered.sorted()
        writer.write(count: pending.count)
        for event in pending { event.write(to: &writer) }
        let orders = self.orders.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        writer.write(count: orders.count)
        for (key, order) in orders {
            writer.write(bytes: key)
            order.write(to: &writer)
        }
        self.windows.write(to: &writer)
        writer.write(self.nextSweep)
        self.writeProfiles(to: &writer)
        // With `--models` only, so that a `--model` snapshot keeps the bytes of layout 2.
        for store in self.credited { store.write(to: &writer) }
    }

    /// An engine that continues from `snapshot`, as the engine that took it would have.
    ///
    /// Every length, handle, position and enum value is checked before use, so that corrupt or
    /// hostile bytes throw rather than trap, now or later while the engine runs.
    /// - Throws: `SnapshotError.configurationMismatch` when `configuration` differs from the
    ///   snapshot's in an option that changes results (naming each); `SnapshotError.truncated` or
    ///   `SnapshotError.invalid` when the bytes are not a whole snapshot this build can read.
    public init(snapshot: UnsafeRawBufferPointer, configuration: EngineConfiguration) throws {
        do {
            try configuration.validate()
        } catch {
            throw SnapshotError.invalid("the configuration is invalid: \(error)")
        }
        var reader = SnapshotReader(snapshot)
        try reader.expect(Engine.snapshotMagic, "the magic number ROASSNP1")
        let version = try reader.read(UInt32.self)
        // Versions 1 ... current - 1 were written by earlier releases; others are not a snapshot.
        guard version == Engine.snapshotVersion else {
            if version >= 1 && version < Engine.snapshotVersion { throw SnapshotError.unsupportedVersion(version) }
            throw SnapshotError.invalid("layout version \(version); this build reads \(Engine.snapshotVersion)")
        }
        let byteOrder = try reader.read(UInt8.self)
        try SnapshotReader.require(
            byteOrder == Engine.snapshotByteOrder,
            "written with byte order \(byteOrder), this host's is \(Engine.snapshotByteOrder)")
        try configuration.checkSnapshot(from: &reader)
        let admission = try Admission(
            from: &reader, lateness: configuration.lateness, dedupHorizon: configuration.dedupHorizon,
            paged: configuration.pagedState)
        let statistics = try Statistics(from: &reader)
        let users = try Interner(from: &reader)
        let creators = try Interner(from: &reader)
        let campaigns = try Interner(from: &reader)
        let handles = SnapshotHandles(
            users: users.count, creators: creators.count, campaigns: campaigns.count,
            currencies: configuration.currencies.codes.count)
        let partitionCount = try reader.read(UInt64.self)
        guard partitionCount == UInt64(configuration.partitions) else {
            guard
                partitionCount >= 1 && partitionCount <= UInt64(EngineConfiguration.maximumPartitions)
                    && partitionCount & (partitionCount - 1) == 0
            else { throw SnapshotError.invalid("\(partitionCount) touch partitions") }
            throw SnapshotError.configurationMismatch(
                "--partitions \(partitionCount) in the snapshot, \(configuration.partitions) now")
        }
        var partitions: [TouchPartition] = []
        for _ in 0..<configuration.partitions {
            let clickIDs = try IDArena(from: &reader)
            let viewIDs = try IDArena(from: &reader)
            let clicks = try TouchLog(from: &reader, lateness: configuration.lateness)
            let views = try TouchLog(from: &reader, lateness: configuration.lateness)
            // Purchases to come are no earlier than the watermark, so they reach no touch older than this.
            try clicks.validate(
                creators: creators.count, campaigns: campaigns.count, ids: clickIDs,
                reachable: Engine.subtract(admission.watermark, configuration.clickLookback))
            try views.validate(
                creators: creators.count, campaigns: campaigns.count, ids: viewIDs,
                reachable: Engine.subtract(admission.watermark, configuration.viewLookback))
            partitions.append(TouchPartition(clicks: clicks, views: views, clickIDs: clickIDs, viewIDs: viewIDs))
        }
        let identities = try IdentityGraph(from: &reader, identities: users.count)
        let pendingCount = try reader.readCount(elementSize: PendingEvent.minimumSnapshotSize)
        try SnapshotReader.require(
            pendingCount == statistics.pendingEvents,
            "\(pendingCount) pending events, \(statistics.pendingEvents) in the statistics")
        var pending: [PendingEvent] = []
        pending.reserveCapacity(pendingCount)
        for _ in 0..<pendingCount {
            pending.append(try PendingEvent(from: &reader, handles: handles, watermark: admission.watermark))
        }
        let orderCount = try reader.readCount(elementSize: Order.minimumSnapshotSize)
        var orders: [[UInt8]: Order] = [:]
        orders.reserveCapacity(orderCount)
        var previous: [UInt8]? = nil
        for _ in 0..<orderCount {
            let key = try reader.readBytes()
            try SnapshotReader.require(
                previous.map { $0.lexicographicallyPrecedes(key) } ?? true, "orders are out of order")
            orders[key] = try Order(
                from: &reader, handles: handles, models: configuration.labelsModels ? configuration.models.count : 1)
            previous = key
        }
        let windows = try WindowStore(
            from: &reader, window: configuration.window, slide: configuration.slide, handles: handles)
        let nextSweep = try reader.readTime("the next sweep", sentinels: true)
        let (profiles, profileCount) = try Engine.readProfiles(from: &reader, creators: creators.count)
        var credited: [WindowStore] = []
        if configuration.labelsModels {
            for _ in configuration.models {
                credited.append(
                    try WindowStore(from: &reader, window: configuration.window, slide: configuration.slide, handles: handles))
            }
        }
        try reader.expectEnd()

        self.init(configuration: configuration)
        self.admission = admission
        self.statistics = statistics
        self.users = users
        self.creators = creators
        self.campaigns = campaigns
        self.store = PartitionStore(partitions)
        self.partitionsAt = PartitionAddress(self.store)
        self.appendedTouches = partitions.reduce(0) { $0 + $1.clicks.end + $1.views.end }
        self.appendedIDBytes = partitions.reduce(0) { $0 + $1.clickIDs.end + $1.viewIDs.end }
        self.touchesAtSettle = partitions.reduce(0) { $0 + $1.count }
        self.identities = identities
        self.pending = Heap(pending)
        self.orders = orders
        self.windows = windows
        self.credited = credited
        self.nextSweep = nextSweep
        self.profiles = profiles
        self.profileCount = profileCount
        // With workers, purchases are accepted ahead of their credits against these.
        self.rebuildCreditTotals()
        if configuration.pagedState { self.setPagedState(true) }
    }

    /// `init(snapshot:configuration:)` from an array.
    public init(snapshot: [UInt8], configuration: EngineConfiguration) throws {
        self = try snapshot.withUnsafeBytes { try Engine(snapshot: $0, configuration: configuration) }
    }

    /// About how many bytes `snapshot()` will take (a little more, rarely less), from sizes the
    /// state keeps anyway: the room `snapshot()` reserves.
    public var snapshotByteEstimate: Int {
        4096 + self.admission.snapshotByteEstimate + self.users.snapshotByteEstimate
            + self.creators.snapshotByteEstimate + self.campaigns.snapshotByteEstimate
            + self.store.partitions.reduce(8) {
                $0 + $1.clickIDs.snapshotByteEstimate + $1.viewIDs.snapshotByteEstimate
                    + $1.clicks.snapshotByteEstimate + $1.views.snapshotByteEstimate
            }
            + self.identities.snapshotByteEstimate + self.windows.snapshotByteEstimate
            + self.credited.reduce(0) { $0 + $1.snapshotByteEstimate }
            + self.pending.unordered.reduce(0) {
                $0 + 75 + $1.id.count + $1.order.count + $1.raw.count + ($1.batch?.utf8.count ?? 0)
            }
            + self.orders.reduce(0) {
                $0 + 48 + $1.key.count + 16 * $1.value.credits.count
                    + $1.value.otherCredits.reduce(0) { $0 + 8 + 16 * $1.count }
            }
            + self.profiles.reduce(8) { $0 + 8 + $1.reduce(0) { $0 + 24 + $1.id.count } }
    }
}
