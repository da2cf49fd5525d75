import RoasCore

/// What `/v1/roas` shows: per key (creator, campaign; with `--by tier` tier, campaign), its open
/// windows' live rows and its most recently closed row; and the totals of recently closed windows.
/// Built from the rows the engine emits.
struct LiveBoard {
    struct Key: Hashable {
        var creator: String?
        var campaign: String?
        /// The tier of a roll-up row (no creator); nil for a creator's rows, whose tier may change.
        var rollUp: String?

        init(creator: String?, campaign: String?, rollUp: String? = nil) {
            self.creator = creator
            self.campaign = campaign
            self.rollUp = rollUp
        }

        init(_ row: Row) {
            self.init(creator: row.creator, campaign: row.campaign, rollUp: row.creator == nil ? row.tier : nil)
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

    mutating func absorb(_ row: Row) {
        let key = Key(row)
        if row.isFinal {
            self.entries[key, default: Entry()].open[row.windowStart] = nil
            self.entries[key, default: Entry()].closed = row
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
            entry.shown != nil && (query.creator == nil || key.creator == query.creator)
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
            let x = a.entry.shown!, y = b.entry.shown!
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
}
