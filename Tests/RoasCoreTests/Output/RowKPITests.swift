import Testing

@testable import RoasCore

/// The derived fields of a row, computed by hand.
@Suite("Row KPIs")
struct RowKPITests {
    static func row(
        views: Int64 = 0, clicks: Int64 = 0, conversions: Int64 = 0, revenue: Int64 = 0, refunds: Int64 = 0,
        spend: Int64 = 0
    ) -> Row {
        var figures = Aggregate()
        figures.views = views
        figures.clicks = clicks
        figures.conversions = conversions
        figures.revenue = revenue
        figures.refunds = refunds
        figures.spend = spend
        return Row(windowStart: t0, windowEnd: t0 + hour, creator: "@a", campaign: nil, figures: figures, isFinal: true)
    }

    /// The KPI members of the row's JSON, in order.
    static func kpiJSON(_ row: Row) -> String {
        let json = row.json
        let start = json.range(of: ",\"ctr\":")!.lowerBound
        let end = json.range(of: ",\"reach\":")!.lowerBound
        return String(json[start..<end])
    }

    @Test("8 views, 2 clicks, 1.5 conversions, 45 revenue, 5 refunds, 20 spend")
    func everyRatio() {
        let row = Self.row(
            views: 8, clicks: 2, conversions: 1_500_000, revenue: micros("45"), refunds: micros("5"), spend: micros("20"))
        #expect(row.ctr == 0.25)
        #expect(row.cvr == 0.75)
        #expect(row.aov == 30)
        #expect(row.cpa == 20 / 1.5)
        #expect(row.netRevenue == micros("40"))
        #expect(row.roi == 1)
        #expect(row.roas == 2)
        // cpa 13.333... rounded to six decimals like roas.
        #expect(Self.kpiJSON(row) == #","ctr":0.25,"cvr":0.75,"aov":30,"cpa":13.333333,"net_revenue":40,"roi":1"#)
    }

    @Test("every ratio is null when its denominator is 0; net revenue is 0")
    func nullsWithoutDenominators() {
        let row = Self.row()
        #expect(row.ctr == nil && row.cvr == nil && row.aov == nil && row.cpa == nil && row.roi == nil)
        #expect(Self.kpiJSON(row) == #","ctr":null,"cvr":null,"aov":null,"cpa":null,"net_revenue":0,"roi":null"#)
    }

    @Test("each null rule alone: views, clicks, conversions, spend")
    func eachNullRule() {
        // Clicks without views (the views fell in another window): ctr null, cvr set.
        #expect(
            Self.kpiJSON(Self.row(clicks: 3, conversions: 1_000_000, revenue: micros("10")))
                == #","ctr":null,"cvr":0.333333,"aov":10,"cpa":0,"net_revenue":10,"roi":null"#)
        // A view-through purchase: no clicks, so cvr null; aov and cpa set.
        #expect(
            Self.kpiJSON(Self.row(views: 3, conversions: 1_000_000, revenue: micros("10"), spend: micros("4")))
                == #","ctr":0,"cvr":null,"aov":10,"cpa":4,"net_revenue":10,"roi":1.5"#)
        // Spend without conversions: aov and cpa null, roi -1.
        #expect(
            Self.kpiJSON(Self.row(views: 3, clicks: 2, spend: micros("4")))
                == #","ctr":0.666667,"cvr":0,"aov":null,"cpa":null,"net_revenue":0,"roi":-1"#)
    }

    @Test("refunds above revenue: a negative net revenue and ROI")
    func negativeNetRevenue() {
        let row = Self.row(refunds: micros("10"), spend: micros("4"))
        #expect(row.netRevenue == -micros("10"))
        #expect(row.roi == -3.5)
        #expect(Self.kpiJSON(row) == #","ctr":null,"cvr":null,"aov":null,"cpa":null,"net_revenue":-10,"roi":-3.5"#)
    }

    @Test("ROI of extreme figures does not trap: the difference is taken in Double when it would overflow")
    func extremeROI() {
        let row = Self.row(revenue: 0, refunds: .max, spend: .max)
        #expect(row.netRevenue == -.max)
        #expect(row.roi == -2)
        let big = Self.row(conversions: 1, revenue: .max, spend: 1)
        #expect(big.aov == Double(Int64.max))
        #expect(big.json.contains(#""aov":9223372036854775807"#))
    }

    @Test("conversions split by a model give fractional rates")
    func fractionalConversions() {
        let row = Self.row(clicks: 3, conversions: 333_333, revenue: micros("33.333333"), spend: micros("1"))
        #expect(Self.kpiJSON(row) == #","ctr":null,"cvr":0.111111,"aov":100.000099,"cpa":3.000003,"net_revenue":33.333333,"roi":32.333333"#)
    }
}
