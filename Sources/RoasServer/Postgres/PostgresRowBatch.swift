import RoasCore
import RoasRuntime

/// A batch of rows as the parallel arrays the upsert binds, one row per (table, key).
///
/// When a key repeats within the batch (live updates of one window, or a replay), the last row
/// wins, as it would if the rows were written one by one in order.
struct PostgresRowBatch: Sendable {
    var windowStarts: [Int64] = []
    var windowEnds: [Int64] = []
    var creators: [String] = []
    var creatorIsNull: [Bool] = []
    var campaigns: [String] = []
    var campaignIsNull: [Bool] = []
    var views: [Int64] = []
    var clicks: [Int64] = []
    var conversions: [Int64] = []
    var revenue: [Int64] = []
    var refunds: [Int64] = []
    var spend: [Int64] = []
    var roas: [Double] = []
    var roasIsNull: [Bool] = []
    /// The ratios added with the KPIs; NaN for null (a ratio is never NaN: its denominator is not 0).
    var ctr: [Double] = []
    var cvr: [Double] = []
    var aov: [Double] = []
    var cpa: [Double] = []
    var roi: [Double] = []
    var netRevenue: [Int64] = []
    var reach: [Int64] = []
    var engagements: [Int64] = []
    var engagementRate: [Double] = []
    var leads: [Int64] = []
    var cpl: [Double] = []
    var tiers: [String] = []
    var tierIsNull: [Bool] = []
    /// The tier of a `--by tier` roll-up row, '' otherwise (see `PostgresRowStatements`).
    var tierKeys: [String] = []
    /// With `--models`, the row's model; '' otherwise (a key column too).
    var models: [String] = []
    var isFinal: [Bool] = []

    private struct Key: Hashable {
        var isFinal: Bool
        var windowStart: Int64
        var windowEnd: Int64
        var creator: String?
        var campaign: String?
        var tierKey: String
        var model: String?

        // Keyed as stored, so that two names differing only in a replaced NUL stay one key.
        init(_ row: Row) {
            self.isFinal = row.isFinal
            self.windowStart = row.windowStart
            self.windowEnd = row.windowEnd
            self.creator = row.creator.map(PostgresRowBatch.storable)
            self.campaign = row.campaign.map(PostgresRowBatch.storable)
            self.tierKey = PostgresRowBatch.tierKey(row)
            self.model = row.model
        }
    }

    /// The number of rows after removing repeated keys.
    var count: Int { self.windowStarts.count }

    init(_ rows: some Collection<Row>) {
        var last: [Key: Int] = [:]
        last.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated() {
            last[Key(row)] = index
        }
        self.reserve(last.count)
        for (index, row) in rows.enumerated() where last[Key(row)] == index {
            self.append(row)
        }
    }

    private mutating func reserve(_ count: Int) {
        self.windowStarts.reserveCapacity(count)
        self.windowEnds.reserveCapacity(count)
        self.creators.reserveCapacity(count)
        self.creatorIsNull.reserveCapacity(count)
        self.campaigns.reserveCapacity(count)
        self.campaignIsNull.reserveCapacity(count)
        self.views.reserveCapacity(count)
        self.clicks.reserveCapacity(count)
        self.conversions.reserveCapacity(count)
        self.revenue.reserveCapacity(count)
        self.refunds.reserveCapacity(count)
        self.spend.reserveCapacity(count)
        self.roas.reserveCapacity(count)
        self.roasIsNull.reserveCapacity(count)
        for path in [\Self.ctr, \.cvr, \.aov, \.cpa, \.roi, \.engagementRate, \.cpl] { self[keyPath: path].reserveCapacity(count) }
        for path in [\Self.netRevenue, \.reach, \.engagements, \.leads] { self[keyPath: path].reserveCapacity(count) }
        self.tiers.reserveCapacity(count)
        self.tierIsNull.reserveCapacity(count)
        self.tierKeys.reserveCapacity(count)
        self.models.reserveCapacity(count)
        self.isFinal.reserveCapacity(count)
    }

    private mutating func append(_ row: Row) {
        self.windowStarts.append(row.windowStart)
        self.windowEnds.append(row.windowEnd)
        self.creators.append(row.creator.map(Self.storable) ?? "")
        self.creatorIsNull.append(row.creator == nil)
        self.campaigns.append(row.campaign.map(Self.storable) ?? "")
        self.campaignIsNull.append(row.campaign == nil)
        self.views.append(row.figures.views)
        self.clicks.append(row.figures.clicks)
        self.conversions.append(row.figures.conversions)
        self.revenue.append(row.figures.revenue)
        self.refunds.append(row.figures.refunds)
        self.spend.append(row.figures.spend)
        let roas = row.roas
        self.roas.append(roas ?? 0)
        self.roasIsNull.append(roas == nil)
        self.ctr.append(row.ctr ?? .nan)
        self.cvr.append(row.cvr ?? .nan)
        self.aov.append(row.aov ?? .nan)
        self.cpa.append(row.cpa ?? .nan)
        self.roi.append(row.roi ?? .nan)
        self.netRevenue.append(row.netRevenue)
        self.reach.append(row.reach)
        self.engagements.append(row.figures.engagements)
        self.engagementRate.append(row.engagementRate ?? .nan)
        self.leads.append(row.figures.leads)
        self.cpl.append(row.cpl ?? .nan)
        self.tiers.append(row.tier ?? "")
        self.tierIsNull.append(row.tier == nil)
        self.tierKeys.append(Self.tierKey(row))
        self.models.append(row.model ?? "")
        self.isFinal.append(row.isFinal)
    }

    /// A roll-up row (no creator, a tier) is keyed by its tier; every other row by ''.
    static func tierKey(_ row: Row) -> String {
        row.creator == nil ? row.tier ?? "" : ""
    }

    /// PostgreSQL `text` cannot hold NUL, which JSON can (`\u0000`): such a character becomes
    /// U+FFFD rather than failing the batch forever.
    static func storable(_ text: String) -> String {
        guard text.utf8.contains(0) else { return text }
        return String(text.unicodeScalars.map { $0 == "\0" ? "\u{FFFD}" : Character($0) })
    }
}
