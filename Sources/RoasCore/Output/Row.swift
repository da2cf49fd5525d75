/// One output row: the figures of one key in one window.
public struct Row: Sendable, Equatable {
    /// With `--models`, the attribution model whose credit split gave the row; nil with `--model`.
    public var model: String?
    public var windowStart: Int64
    public var windowEnd: Int64
    /// nil for unattributed revenue.
    public var creator: String?
    public var campaign: String?
    public var figures: Aggregate
    /// Distinct users who viewed or clicked in the window (`ReachSketch`: exact up to 1,024).
    public var reach: Int64
    /// The creator's tier as of the window's end ("nano", "micro", "macro", "mega"), nil without a
    /// profile; on a `--by tier` row the tier rolled up, "unknown" for creators without a profile.
    public var tier: String?
    /// True once the watermark has passed the window's end; false for live updates.
    public var isFinal: Bool

    public init(
        model: String? = nil, windowStart: Int64, windowEnd: Int64, creator: String?, campaign: String?, figures: Aggregate,
        reach: Int64 = 0, tier: String? = nil, isFinal: Bool
    ) {
        self.model = model
        self.windowStart = windowStart
        self.windowEnd = windowEnd
        self.creator = creator
        self.campaign = campaign
        self.figures = figures
        self.reach = reach
        self.tier = tier
        self.isFinal = isFinal
    }

    /// (revenue - refunds) / spend, or nil when spend is 0.
    public var roas: Double? {
        self.figures.spend == 0 ? nil : Double(self.figures.revenue - self.figures.refunds) / Double(self.figures.spend)
    }

    /// Revenue less refunds, in micro-units (negative when refunds of earlier purchases exceed it).
    /// Both are from 0 to `Int64.max`, so the difference cannot overflow.
    public var netRevenue: Int64 { self.figures.revenue - self.figures.refunds }

    /// (net revenue - spend) / spend, or nil when spend is 0.
    public var roi: Double? {
        guard self.figures.spend != 0 else { return nil }
        // The difference overflows only when refunds far exceed revenue; it is then computed in Double.
        let (difference, overflow) = self.netRevenue.subtractingReportingOverflow(self.figures.spend)
        let numerator = overflow ? Double(self.netRevenue) - Double(self.figures.spend) : Double(difference)
        return numerator / Double(self.figures.spend)
    }

    /// Click-through rate: clicks / views, or nil when views is 0.
    public var ctr: Double? { Row.ratio(Double(self.figures.clicks), Double(self.figures.views)) }

    /// Conversion rate: conversions / clicks, or nil when clicks is 0 (conversions are micro-units).
    public var cvr: Double? {
        Row.ratio(Double(self.figures.conversions), Double(self.figures.clicks) * Double(Micros.one))
    }

    /// Average order value: revenue / conversions, or nil when conversions is 0.
    public var aov: Double? { Row.ratio(Double(self.figures.revenue), Double(self.figures.conversions)) }

    /// Cost per acquisition: spend / conversions, or nil when conversions is 0.
    public var cpa: Double? { Row.ratio(Double(self.figures.spend), Double(self.figures.conversions)) }

    /// Engagements / views, or nil when views is 0.
    public var engagementRate: Double? { Row.ratio(Double(self.figures.engagements), Double(self.figures.views)) }

    /// Cost per lead: spend / leads, or nil when leads is 0 (both micro-units).
    public var cpl: Double? { Row.ratio(Double(self.figures.spend), Double(self.figures.leads)) }

    /// `numerator / denominator`, or nil when the denominator is 0 (the null rule of every ratio).
    @inline(__always)
    static func ratio(_ numerator: Double, _ denominator: Double) -> Double? {
        denominator == 0 ? nil : numerator / denominator
    }

    /// A ratio (`roas`, `ctr`, ...) printed with at most six decimals, or null.
    public static func roasText(_ value: Double?) -> String {
        var output: [UInt8] = []
        self.appendRatio(value, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends `roasText(value)`'s bytes.
    @inline(__always)
    static func appendRatio(_ value: Double?, to output: inout [UInt8]) {
        guard let value else { return JSONText.append("null", to: &output) }
        if let micros = Int64(exactly: (value * 1_000_000).rounded(.toNearestOrEven)) {
            return Micros.append(micros, to: &output)
        }
        // Beyond 9.2 * 10^12 (revenue of 10^12 over a spend of 0.000001, say): whole units, no decimals.
        let whole = value.rounded(.toNearestOrEven)
        if let units = Int64(exactly: whole) { return JSONText.append(units, to: &output) }
        JSONText.append(whole < 0 ? Int64.min : Int64.max, to: &output)
    }

    /// The row as one line of JSON (no newline). Written byte by byte, without a `String`: a
    /// window's close writes a row per creator, and interpolating them took a fifth of a run
    /// with many rows.
    public func appendJSON(to output: inout [UInt8]) {
        @inline(__always) func quoted(_ text: String?) {
            if let text { JSONText.appendQuoted(text.utf8, to: &output) } else { JSONText.append("null", to: &output) }
        }
        if let model = self.model {
            // First, so that removing `"model":"...",` gives the row of a `--model` run byte for byte.
            JSONText.append("{\"model\":\"", to: &output)
            output.append(contentsOf: model.utf8)
            JSONText.append("\",\"window_start\":\"", to: &output)
        } else {
            JSONText.append("{\"window_start\":\"", to: &output)
        }
        Timestamp.append(milliseconds: self.windowStart, to: &output)
        JSONText.append("\",\"window_end\":\"", to: &output)
        Timestamp.append(milliseconds: self.windowEnd, to: &output)
        JSONText.append("\",\"creator\":", to: &output)
        quoted(self.creator)
        JSONText.append(",\"campaign\":", to: &output)
        quoted(self.campaign)
        let f = self.figures
        JSONText.append(",\"views\":", to: &output)
        JSONText.append(f.views, to: &output)
        JSONText.append(",\"clicks\":", to: &output)
        JSONText.append(f.clicks, to: &output)
        JSONText.append(",\"conversions\":", to: &output)
        Micros.append(f.conversions, to: &output)
        JSONText.append(",\"revenue\":", to: &output)
        Micros.append(f.revenue, to: &output)
        JSONText.append(",\"refunds\":", to: &output)
        Micros.append(f.refunds, to: &output)
        JSONText.append(",\"spend\":", to: &output)
        Micros.append(f.spend, to: &output)
        JSONText.append(",\"roas\":", to: &output)
        Row.appendRatio(self.roas, to: &output)
        JSONText.append(",\"ctr\":", to: &output)
        Row.appendRatio(self.ctr, to: &output)
        JSONText.append(",\"cvr\":", to: &output)
        Row.appendRatio(self.cvr, to: &output)
        JSONText.append(",\"aov\":", to: &output)
        Row.appendRatio(self.aov, to: &output)
        JSONText.append(",\"cpa\":", to: &output)
        Row.appendRatio(self.cpa, to: &output)
        JSONText.append(",\"net_revenue\":", to: &output)
        Micros.append(self.netRevenue, to: &output)
        JSONText.append(",\"roi\":", to: &output)
        Row.appendRatio(self.roi, to: &output)
        JSONText.append(",\"reach\":", to: &output)
        JSONText.append(self.reach, to: &output)
        JSONText.append(",\"engagements\":", to: &output)
        JSONText.append(f.engagements, to: &output)
        JSONText.append(",\"engagement_rate\":", to: &output)
        Row.appendRatio(self.engagementRate, to: &output)
        JSONText.append(",\"leads\":", to: &output)
        Micros.append(f.leads, to: &output)
        JSONText.append(",\"cpl\":", to: &output)
        Row.appendRatio(self.cpl, to: &output)
        JSONText.append(",\"tier\":", to: &output)
        quoted(self.tier)
        JSONText.append(self.isFinal ? ",\"final\":true}" : ",\"final\":false}", to: &output)
    }

    public var json: String {
        var output: [UInt8] = []
        self.appendJSON(to: &output)
        return String(decoding: output, as: UTF8.self)
    }
}

/// A rejected line: why, where it came from, and the line itself.
public struct DeadLetter: Sendable, Equatable {
    public var reason: Reason
    /// The id of the batch the line came in, or nil for a line outside any batch.
    public var batch: String?
    /// Physical line number in the input, from 1.
    public var line: Int
    /// The raw line without its newline (for `too_long`, its first 1 KiB).
    public var raw: [UInt8]
    /// A short human explanation.
    public var detail: String
    /// On the header line of a rejected batch whose payload is over `TruncatedPayload.prefixBytes`:
    /// what is kept of the payload instead of a record per line.
    public var payload: TruncatedPayload?

    public init(reason: Reason, batch: String?, line: Int, raw: [UInt8], detail: String, payload: TruncatedPayload? = nil) {
        self.reason = reason
        self.batch = batch
        self.line = line
        self.raw = raw
        self.detail = detail
        self.payload = payload
    }

    public func appendJSON(to output: inout [UInt8]) {
        JSONText.append("{\"reason\":\"\(self.reason.rawValue)\",\"batch\":", to: &output)
        if let batch = self.batch { JSONText.appendQuoted(batch.utf8, to: &output) } else { JSONText.append("null", to: &output) }
        JSONText.append(",\"line\":\(self.line),\"raw\":", to: &output)
        JSONText.appendQuoted(self.raw, to: &output)
        JSONText.append(",\"detail\":", to: &output)
        JSONText.appendQuoted(self.detail.utf8, to: &output)
        self.payload?.appendJSONMembers(to: &output)
        output.append(UInt8(ascii: "}"))
    }

    public var json: String {
        var output: [UInt8] = []
        self.appendJSON(to: &output)
        return String(decoding: output, as: UTF8.self)
    }
}

/// What the engine produced since it was last drained.
public struct EngineOutput: Sendable {
    public var rows: [Row] = []
    public var deadLetters: [DeadLetter] = []

    public init() {}

    public var isEmpty: Bool { self.rows.isEmpty && self.deadLetters.isEmpty }

    public mutating func removeAll() {
        self.rows.removeAll(keepingCapacity: true)
        self.deadLetters.removeAll(keepingCapacity: true)
    }
}
