/// The first checks of an accepted event, `late` then `duplicate`, and the watermark they use.
struct Admission: Sendable {
    let lateness: Int64
    let dedupHorizon: Int64
    /// Greatest admitted time minus the lateness (or a later time it was raised to); `.min` first.
    private(set) var watermark: Int64 = .min
    private var newestTime: Int64 = .min
    private var dedup: DedupSet

    /// - Parameter paged: the dedup set's tables in pages (`EngineConfiguration.pagedState`).
    init(lateness: Int64, dedupHorizon: Int64, paged: Bool = false) {
        self.lateness = lateness
        self.dedupHorizon = dedupHorizon
        self.dedup = DedupSet(
            timeBits: Admission.dedupTimeBits(lateness: lateness, dedupHorizon: dedupHorizon), paged: paged)
    }

    /// An admitted id's time is at most the lateness after the watermark, which is the horizon after
    /// the dedup cutoff.
    static func dedupTimeBits(lateness: Int64, dedupHorizon: Int64) -> Int {
        let (span, overflow) = lateness.addingReportingOverflow(dedupHorizon)
        return DedupSet.timeBits(span: overflow ? .max : span)
    }

    var dedupCount: Int { self.dedup.count }

    /// Whether the dedup set keeps its tables in pages.
    var dedupIsPaged: Bool { self.dedup.isPaged }

    /// Ids the dedup set keeps beside pages a copy of it holds (`DedupSet.overlayCount`).
    var dedupOverlayCount: Int { self.dedup.overlayCount }

    /// Keeps the dedup set's tables in pages, or in one array each (`DedupSet.setPaged`).
    mutating func setDedupPaged(_ paged: Bool) { self.dedup.setPaged(paged) }

    /// Forgets the dedup set's growths in progress (`DedupSet.dropGrowth`): for a copy that only writes a snapshot.
    mutating func dropDedupGrowth() { self.dedup.dropGrowth() }

    /// Starts loading where `check` will look for `fingerprint` (a hint; see `Engine.prefetch`).
    @inline(__always)
    func prefetch(_ fingerprint: Fingerprint) { self.dedup.prefetch(fingerprint) }

    /// The step before `prefetch`, some events earlier (see `DedupSet.prefetchPage`).
    @inline(__always)
    func prefetchPage(_ fingerprint: Fingerprint) { self.dedup.prefetchPage(fingerprint) }

    /// nil when the event whose id has `fingerprint` is admitted (the id is then remembered), else
    /// why not. The late check uses the watermark as it stood before this event.
    @inline(__always)
    mutating func check(time: Int64, fingerprint: Fingerprint) -> Rejection? {
        if time < self.watermark {
            return Rejection(.late, "ts \(time) is before the watermark \(self.watermark)")
        }
        let cutoff = Engine.subtract(self.watermark, self.dedupHorizon)
        guard self.dedup.insert(fingerprint, time: time, cutoff: cutoff) else {
            return Rejection(.duplicate, "event id seen within the dedup horizon")
        }
        return nil
    }

    /// An admitted event's time; returns the new watermark when it moved.
    @inline(__always)
    mutating func observe(_ time: Int64) -> Int64? {
        guard time > self.newestTime else { return nil }
        self.newestTime = time
        let watermark = Engine.subtract(time, self.lateness)
        guard watermark > self.watermark else { return nil }
        self.watermark = watermark
        return watermark
    }

    /// The watermark moved without an event (idle close, end of input); a no-op after `observe`.
    mutating func raise(to watermark: Int64) {
        if watermark > self.watermark { self.watermark = watermark }
    }
}

// MARK: Snapshots

extension Admission {
    var snapshotByteEstimate: Int { 16 + self.dedup.snapshotByteEstimate }

    /// Writes the watermark, the newest admitted time and the ids within the dedup horizon.
    func write(to writer: inout SnapshotWriter) {
        writer.write(self.watermark)
        writer.write(self.newestTime)
        self.dedup.write(to: &writer)
    }

    /// Reads what `write(to:)` wrote; the watermark may not trail the newest time by more than the lateness.
    init(from reader: inout SnapshotReader, lateness: Int64, dedupHorizon: Int64, paged: Bool = false) throws {
        let watermark = try reader.readTime("the watermark", sentinels: true)
        let newestTime = try reader.readTime("the newest event time", sentinels: true)
        try SnapshotReader.require(newestTime != .max, "the newest event time is the end of time")
        try SnapshotReader.require(
            watermark >= Engine.subtract(newestTime, lateness),
            "the watermark trails the newest event by more than the lateness")
        let dedup = try DedupSet(
            from: &reader, timeBits: Admission.dedupTimeBits(lateness: lateness, dedupHorizon: dedupHorizon),
            paged: paged)
        self.init(lateness: lateness, dedupHorizon: dedupHorizon, paged: paged)
        self.watermark = watermark
        self.newestTime = newestTime
        self.dedup = dedup
    }
}
