import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// Rows, amounts, ratios and times are written byte by byte (`Row.appendJSON`); these tests hold
/// that writing to the `String`-built text it replaced, kept here as the reference.
@Suite("Row text")
struct RowTextTests {
    // MARK: The reference: the String-built writers as they were

    static func referenceMicros(_ micros: Int64) -> String {
        let negative = micros < 0
        let magnitude = micros.magnitude
        let whole = magnitude / 1_000_000
        var fraction = magnitude % 1_000_000
        var text = negative ? "-\(whole)" : "\(whole)"
        if fraction != 0 {
            var digits = 6
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text
    }

    static func referencePad(_ value: Int64, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }

    static func referenceRatio(_ value: Double?) -> String {
        guard let value else { return "null" }
        if let micros = Int64(exactly: (value * 1_000_000).rounded(.toNearestOrEven)) { return referenceMicros(micros) }
        let whole = value.rounded(.toNearestOrEven)
        if let units = Int64(exactly: whole) { return String(units) }
        return whole < 0 ? String(Int64.min) : String(Int64.max)
    }

    static func referenceJSON(_ row: Row) -> String {
        var text = row.model.map { "{\"model\":\"\($0)\",\"window_start\":" } ?? "{\"window_start\":"
        text += "\"\(Timestamp.format(milliseconds: row.windowStart))\""
        text += ",\"window_end\":\"\(Timestamp.format(milliseconds: row.windowEnd))\",\"creator\":"
        text += row.creator.map { JSONText.quoted($0) } ?? "null"
        text += ",\"campaign\":" + (row.campaign.map { JSONText.quoted($0) } ?? "null")
        let f = row.figures
        text +=
            ",\"views\":\(f.views),\"clicks\":\(f.clicks),\"conversions\":\(referenceMicros(f.conversions))"
            + ",\"revenue\":\(referenceMicros(f.revenue)),\"refunds\":\(referenceMicros(f.refunds))"
            + ",\"spend\":\(referenceMicros(f.spend)),\"roas\":\(referenceRatio(row.roas))"
            + ",\"ctr\":\(referenceRatio(row.ctr)),\"cvr\":\(referenceRatio(row.cvr)),\"aov\":\(referenceRatio(row.aov))"
            + ",\"cpa\":\(referenceRatio(row.cpa)),\"net_revenue\":\(referenceMicros(row.netRevenue))"
            + ",\"roi\":\(referenceRatio(row.roi)),\"reach\":\(row.reach),\"engagements\":\(f.engagements)"
            + ",\"engagement_rate\":\(referenceRatio(row.engagementRate)),\"leads\":\(referenceMicros(f.leads))"
            + ",\"cpl\":\(referenceRatio(row.cpl)),\"tier\":"
        text += row.tier.map { JSONText.quoted($0) } ?? "null"
        return text + ",\"final\":\(row.isFinal)}"
    }

    // MARK: Random values, with the edges often

    static let edges: [Int64] = [
        0, 1, -1, 9, 10, 999_999, 1_000_000, -1_000_000, 1_000_001, 100_000, 120_000, Int64.max, Int64.min,
        Int64.max - 1, Int64.min + 1, 9_223_372_036_854_000_000,
    ]

    static func integer(_ random: inout SplitMix64) -> Int64 {
        switch random.next() % 4 {
        case 0: return random.pick(edges)
        case 1: return Int64.random(in: -1_000_000_000...1_000_000_000, using: &random)
        case 2: return Int64.random(in: 0...1_000_000, using: &random) * 10
        default: return Int64(bitPattern: random.next())
        }
    }

    static func ratio(_ random: inout SplitMix64) -> Double? {
        switch random.next() % 6 {
        case 0: return nil
        case 1: return random.pick([0, -0.0, .nan, .infinity, -.infinity, 9.2e12, -9.3e12, 1e300, 5e-7, 4.9999995e-7])
        case 2: return Double(Int64.random(in: 0...100_000_000, using: &random)) / 1_000_000
        case 3: return Double(integer(&random)) / Double(max(1, Int64.random(in: 1...1_000_000, using: &random)))
        default: return Double(bitPattern: random.next())
        }
    }

    @Test(arguments: 0..<8 as Range<UInt64>)
    func amountsAndPaddedIntegersMatchTheReference(seed: UInt64) {
        for index in 0..<5000 {
            var random = SplitMix64(seed: seed, case: index)
            let value = Self.integer(&random)
            #expect(Micros.text(value) == Self.referenceMicros(value), "\(value)")
            let width = Int.random(in: 0...6, using: &random)
            var bytes: [UInt8] = []
            JSONText.append(value, width: width, to: &bytes)
            #expect(String(decoding: bytes, as: UTF8.self) == Self.referencePad(value, width), "\(value) width \(width)")
        }
    }

    @Test(arguments: 0..<8 as Range<UInt64>)
    func ratiosMatchTheReference(seed: UInt64) {
        for index in 0..<5000 {
            var random = SplitMix64(seed: seed, case: index)
            let value = Self.ratio(&random)
            #expect(Row.roasText(value) == Self.referenceRatio(value), "\(String(describing: value))")
        }
    }

    @Test(arguments: 0..<8 as Range<UInt64>)
    func rowsMatchTheReference(seed: UInt64) {
        let names = ["@a", "c-1", "quote\"d", "back\\slash", "tab\there", "ünï", "new\nline", ""]
        for index in 0..<1000 {
            var random = SplitMix64(seed: seed, case: index)
            var figures = Aggregate()
            figures.views = random.chance(0.3) ? Self.integer(&random) : Int64.random(in: 0...1000, using: &random)
            figures.clicks = random.chance(0.3) ? Self.integer(&random) : Int64.random(in: 0...100, using: &random)
            figures.conversions = Self.integer(&random)
            figures.revenue = abs(Self.integer(&random) / 2)
            figures.refunds = random.chance(0.5) ? 0 : abs(Self.integer(&random) / 2)
            figures.spend = random.chance(0.3) ? 0 : abs(Self.integer(&random) / 2)
            figures.engagements = Int64.random(in: 0...1000, using: &random)
            figures.leads = random.chance(0.5) ? 0 : Self.integer(&random)
            let start = Int64.random(in: -62_167_219_200_000...253_402_300_799_999, using: &random)
            let row = Row(
                model: random.chance(0.3) ? random.pick(AttributionModel.allCases).rawValue : nil,
                windowStart: random.chance(0.5) ? start - start % 1000 : start,
                windowEnd: start &+ Int64.random(in: 0...86_400_000, using: &random),
                creator: random.chance(0.2) ? nil : random.pick(names),
                campaign: random.chance(0.5) ? nil : random.pick(names), figures: figures,
                reach: Int64.random(in: 0...1_000_000, using: &random),
                tier: random.chance(0.5) ? nil : random.pick(["nano", "micro", "unknown"]), isFinal: random.chance(0.5))
            #expect(row.json == Self.referenceJSON(row), "seed \(seed) case \(index)")
        }
    }
}
