import RoasCore
import RoasRuntime

/// What `/v1/roas` shows: per key (creator, campaign; with `--by tier` tier, campaign), its open
/// windows' live rows and its most recently closed row; and the totals of recently closed windows.
/// Built from the rows the engine emits; with `--models`, each model's rows are entries of their own.
struct LiveBoard {
    struct Key: Hashable {
        /// With `--models`, the model of the key's rows.
        var model: String?
        var creator: String?
        var campaign: String?
        /// The tier of a roll-up row (no creator); nil for a creator's rows, whose tier may change.
        var rollUp: String?

        init(model: String? = nil, creator: String?, campaign: String?, rollUp: String? = nil) {
            self.model = model
            self.creator = creator
            self.campaign = campaign
            self.rollUp = rollUp
        }

        init(_ row: Row) {
            self.init(
                model: row.model, creator: row.creator, campaign: row.campaign,
                rollUp: row.creator == nil ? row.tier : nil)
        }
    }

    struct Entry {
        /// Live rows of open windows by window start.
        var open: [Int64: Row] = [:]
        var closed: Row?

        /// The open window that closes next (with hopping windows, the one covering the most data).
        var current: Row? { self.open.min { $0.key < $1.key }?.value }
        /// What the board ranks the key by: its current open row, else its last closed row.
        var shown: Row? { self.current ?? self.closed }
    }

    struct WindowTotal {
        var start: Int64
        var end: Int64
        var figures = Aggregate()
    }

    private(set) var entries: [Key: Entry] = [:]
    /// Totals of closed windows by start, at most `keptWindows`.
    private(set) var recent: [Int64: WindowTotal] = [:]
    let keptWindows = 48
    /// The model whose rows the window totals add up (nil without `--models`): every model credits
    /// each purchase once, so a window's totals are the same under each, and one is counted.
    let totalsModel: String?

    init(totalsModel: String? = nil) {
        self.totalsModel = totalsModel
    }

    mutating func absorb(_ row: Row) {
        let key = Key(row)
        if row.isFinal {
            self.entries[key, default: Entry()].open[row.windowStart] = nil
            self.entries[key, default: Entry()].closed = row
            guard row.model == self.totalsModel else { return }
            var total = self.recent[row.windowStart] ?? WindowTotal(start: row.windowStart, end: row.windowEnd)
            total.figures.add(row.figures)
            self.recent[row.windowStart] = total
            if self.recent.count > self.keptWindows, let oldest = self.recent.keys.min() {
                self.recent[oldest] = nil
            }
        } else {
            self.entries[key, default: Entry()].open[row.windowStart] = row
        }
    }

    enum Order: String, Sendable {
        case roas, revenue, spend
    }

    struct Query: Sendable {
        /// With `--models`, the model whose rows are shown (the first listed unless `?model=`).
        var model: String?
        var creator: String?
        var campaign: String?
        /// The tier of the row shown ("unknown" for a roll-up of creators without a profile).
        var tier: String?
        var limit = 100
        var order = Order.roas
    }

    /// The entries matching `query`, best first.
    func rows(_ query: Query) -> [(key: Key, entry: Entry)] {
        var selected = self.entries.filter { key, entry in
            entry.shown != nil && key.model == query.model && (query.creator == nil || key.creator == query.creator)
                && (query.campaign == nil || key.campaign == query.campaign)
                && (query.tier == nil || LiveBoard.tier(key, entry) == query.tier)
        }.map { (key: $0.key, entry: $0.value) }
        func figure(_ row: Row) -> Double? {
            switch query.order {
            case .roas: row.roas
            case .revenue: Double(row.figures.revenue - row.figures.refunds)
            case .spend: Double(row.figures.spend)
            }
        }
        selected.sort { a, b in
            let x = a.entry.shown!
            let y = b.entry.shown!
            switch (figure(x), figure(y)) {
            case (let p?, let q?) where p != q: return p > q
            case (.some, nil): return true
            case (nil, .some): return false
            default:
                if x.figures.revenue != y.figures.revenue { return x.figures.revenue > y.figures.revenue }
                return (a.key.creator ?? "\u{10FFFF}", a.key.campaign ?? "") < (b.key.creator ?? "\u{10FFFF}", b.key.campaign ?? "")
            }
        }
        return Array(selected.prefix(max(0, query.limit)))
    }

    /// The tier `?tier=` matches: the shown row's, or "unknown" for a creator without a profile.
    static func tier(_ key: Key, _ entry: Entry) -> String? {
        entry.shown?.tier ?? (key.creator != nil ? "unknown" : nil)
    }

    var recentWindows: [WindowTotal] { self.recent.values.sorted { $0.start < $1.start } }

    /// One key's ROAS under each model, for the spread view.
    struct Spread {
        var creator: String?
        var campaign: String?
        var tier: String?
        /// The shown row's ROAS by model, in the order of `--models` (nil: no spend, or no row).
        var roas: [(model: String, roas: Double?)]
        var lowest: (model: String, roas: Double)
        var highest: (model: String, roas: Double)
        var spread: Double { self.highest.roas - self.lowest.roas }
    }

    /// `GET /v1/spread`: per key, the lowest and highest ROAS across `models` (of the row each
    /// model's entry shows), widest spread first; keys with a ROAS under fewer than two models are left out.
    func spreads(models: [String], campaign: String?, tier: String?, limit: Int) -> [Spread] {
        var byKey: [Key: [String: Entry]] = [:]
        for (key, entry) in self.entries where entry.shown != nil {
            guard let model = key.model, campaign == nil || key.campaign == campaign,
                tier == nil || LiveBoard.tier(key, entry) == tier
            else { continue }
            var plain = key
            plain.model = nil
            byKey[plain, default: [:]][model] = entry
        }
        var result: [Spread] = []
        for (key, entries) in byKey {
            let roas = models.map { model in (model: model, roas: entries[model]?.shown?.roas) }
            let known = roas.compactMap { item in item.roas.map { (model: item.model, roas: $0) } }
            guard known.count >= 2, let lowest = known.min(by: { $0.roas < $1.roas }),
                let highest = known.max(by: { $0.roas < $1.roas })
            else { continue }
            let shown = entries.values.compactMap(\.shown).first
            result.append(
                Spread(
                    creator: key.creator, campaign: key.campaign,
                    tier: shown?.tier ?? (key.creator != nil ? "unknown" : nil), roas: roas, lowest: lowest, highest: highest))
        }
        result.sort { a, b in
            a.spread != b.spread
                ? a.spread > b.spread
                : (a.creator ?? "\u{10FFFF}", a.campaign ?? "") < (b.creator ?? "\u{10FFFF}", b.campaign ?? "")
        }
        return Array(result.prefix(max(0, limit)))
    }
}
