/// A creator's profile as of `time`: where a row's tier comes from.
struct CreatorProfile: Sendable, Equatable {
    var time: Int64
    var id: [UInt8]
    var followers: Int64

    /// (time, id bytewise): of two profiles at the same time, the greater id is the later one.
    func precedes(_ other: CreatorProfile) -> Bool {
        if self.time != other.time { return self.time < other.time }
        return self.id.lexicographicallyPrecedes(other.id)
    }
}

/// The key of a `--by tier` row: the tier (an index into `CreatorTier.allCases`, `unknownTier` for
/// creators without a profile, `noTier` for unattributed conversions) and the campaign handle.
struct TierKey: Hashable, Sendable {
    var tier: Int8
    var campaign: Int32

    static let unknownTier: Int8 = Int8(CreatorTier.allCases.count)
    static let noTier: Int8 = -1

    /// The row's `tier`: the tier's name, "unknown", or nil.
    var tierName: String? {
        switch self.tier {
        case TierKey.noTier: nil
        case TierKey.unknownTier: "unknown"
        default: CreatorTier.allCases[Int(self.tier)].rawValue
        }
    }
}

extension Engine {
    /// Records a creator's profile, keeping the creator's profiles in (time, id) order and dropping
    /// those no row can use any more: a row's tier is that of the latest profile before its window's
    /// end, and no row still to come ends before the next window to close.
    mutating func addProfile(_ event: ParsedEvent) {
        let creator = Int(self.creators.intern(event.creator))
        if self.profiles.count <= creator { self.profiles.append(contentsOf: repeatElement([], count: creator + 1 - self.profiles.count)) }
        let profile = CreatorProfile(time: event.time, id: Array(event.id), followers: event.amount)
        var list = self.profiles[creator]
        self.profiles[creator] = []
        var index = list.count
        while index > 0 && profile.precedes(list[index - 1]) { index -= 1 }
        if index > 0 && list[index - 1].time == profile.time && list[index - 1].id == profile.id {
            // The same (time, id) again (past the dedup horizon): the later one wins.
            list[index - 1] = profile
        } else {
            list.insert(profile, at: index)
            self.profileCount += 1
        }
        let nextWindowStart = self.windows.nextWindowStart
        if nextWindowStart != .min {
            let earliestEnd = nextWindowStart + self.configuration.window
            if let last = list.lastIndex(where: { $0.time < earliestEnd }), last > 0 {
                list.removeFirst(last)
                self.profileCount -= last
            }
        }
        self.profiles[creator] = list
        self.statistics.acceptedEvents[Int(EventKind.creator.rawValue)] += 1
    }

    /// The tier of `creator`'s latest profile before `end`, or nil when it has none.
    func tier(of creator: Int32, before end: Int64) -> CreatorTier? {
        guard Int(creator) < self.profiles.count else { return nil }
        let list = self.profiles[Int(creator)]
        var index = list.count - 1
        while index >= 0 && list[index].time >= end { index -= 1 }
        return index >= 0 ? CreatorTier(followers: list[index].followers) : nil
    }

    /// The tier roll-up key of a creator's row key in the window ending at `windowEnd`.
    func tierKey(_ key: RowKey, windowEnd: Int64) -> TierKey {
        let tier: Int8
        if key.creator < 0 {
            tier = TierKey.noTier
        } else if let known = self.tier(of: key.creator, before: windowEnd) {
            tier = Int8(CreatorTier.allCases.firstIndex(of: known)!)
        } else {
            tier = TierKey.unknownTier
        }
        return TierKey(tier: tier, campaign: key.campaign)
    }

    /// A window's rows rolled up by tier (and campaign): figures summed, reach merged (each user
    /// once across the tier's creators); in order of tier (nano to mega, unknown, then none), then
    /// campaign bytewise with nulls last.
    func rollUp(_ cells: [RowKey: WindowCell], start: Int64, order: RowOrder) -> [(key: TierKey, cell: WindowCell)] {
        let end = start + self.configuration.window
        var groups: [TierKey: WindowCell] = [:]
        // Creators in row order, so that the merge order (and so the sketch) does not depend on hashing.
        for key in cells.keys.sorted(by: { order.precedes($0, $1) }) {
            let cell = cells[key]!
            let group = self.tierKey(key, windowEnd: end)
            if groups[group] == nil { groups[group] = cell } else { groups[group]!.add(cell.figures, cell.reach) }
        }
        return groups.sorted { a, b in
            if a.key.tier != b.key.tier {
                if a.key.tier == TierKey.noTier { return false }
                if b.key.tier == TierKey.noTier { return true }
                return a.key.tier < b.key.tier
            }
            if a.key.campaign == b.key.campaign { return false }
            if a.key.campaign < 0 { return false }
            if b.key.campaign < 0 { return true }
            return self.campaigns.compare(a.key.campaign, b.key.campaign)
        }.map { (key: $0.key, cell: $0.value) }
    }
}

// MARK: Snapshots

extension Engine {
    /// Writes each creator's profiles (by handle) in order.
    func writeProfiles(to writer: inout SnapshotWriter) {
        writer.write(count: self.profiles.count)
        for list in self.profiles {
            writer.write(count: list.count)
            for profile in list {
                writer.write(profile.time)
                writer.write(bytes: profile.id)
                writer.write(profile.followers)
            }
        }
    }

    /// Reads what `writeProfiles(to:)` wrote: no more lists than creators, each in strict (time, id)
    /// order with follower counts a `creator` event may carry. Returns the lists and their total.
    static func readProfiles(from reader: inout SnapshotReader, creators: Int) throws -> ([[CreatorProfile]], Int) {
        let count = try reader.readCount(elementSize: 8)
        try SnapshotReader.require(count <= creators, "\(count) profile lists for \(creators) creators")
        var profiles: [[CreatorProfile]] = []
        profiles.reserveCapacity(count)
        var total = 0
        for _ in 0..<count {
            let length = try reader.readCount(elementSize: 8 + 8 + 8)
            var list: [CreatorProfile] = []
            list.reserveCapacity(length)
            for _ in 0..<length {
                let time = try reader.readTime("a profile time")
                let id = try reader.readBytes()
                try SnapshotReader.require(id.count >= 1 && id.count <= 256, "a profile id has \(id.count) bytes")
                let followers = try reader.read(Int64.self)
                try SnapshotReader.require(
                    followers >= 0 && followers <= CreatorTier.maximumFollowers, "a follower count is out of range")
                let profile = CreatorProfile(time: time, id: id, followers: followers)
                try SnapshotReader.require(list.last.map { $0.precedes(profile) } ?? true, "profiles are out of order")
                list.append(profile)
            }
            total += length
            profiles.append(list)
        }
        return (profiles, total)
    }
}
