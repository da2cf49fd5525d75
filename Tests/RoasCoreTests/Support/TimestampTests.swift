import Foundation
import Testing

@testable import RoasCore

/// `Timestamp` against Foundation's `ISO8601DateFormatter`.
///
/// Documented differences from ISO8601DateFormatter on Linux (checked in `foundationBehaviour`):
/// - Foundation uses the Julian calendar before 1582-10-15 (ICU's Gregorian cut-over); RFC 3339 and
///   roas use the proleptic Gregorian calendar, so dates before 1583 are checked by the 400-year
///   period of the Gregorian calendar against a shifted date instead;
/// - Foundation is lenient about impossible values (Feb 30, Apr 31 and hour 24 roll over, offset
///   +24:00 is read), which roas rejects; these are checked by hand-written cases;
/// - Foundation rejects lower-case `t`/`z` and leap seconds (`:60`), which RFC 3339 allows and roas
///   reads (a leap second as the following second);
/// - the formatter with `.withFractionalSeconds` needs a fraction and the one without refuses it.
@Suite struct TimestampTests {
    static func parse(_ text: String) -> Int64? {
        Array(text.utf8).withUnsafeBytes { Timestamp.parseRFC3339($0) }
    }

    static func formatters() -> (plain: ISO8601DateFormatter, fractional: ISO8601DateFormatter) {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return (plain, fractional)
    }

    /// Foundation's epoch milliseconds for `text` (fraction of at most three digits).
    static func foundation(_ text: String, _ formatters: (plain: ISO8601DateFormatter, fractional: ISO8601DateFormatter))
        -> Int64?
    {
        let formatter = text.contains(".") ? formatters.fractional : formatters.plain
        guard let date = formatter.date(from: text) else { return nil }
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    @Test func foundationBehaviour() {
        let formatters = Self.formatters()
        // Julian before the cut-over: two days apart from the proleptic Gregorian 0001-01-01.
        #expect(Self.foundation("0001-01-01T00:00:00Z", formatters) == -62_135_769_600_000)
        #expect(Self.parse("0001-01-01T00:00:00Z") == -62_135_596_800_000)
        #expect(Self.foundation("1582-10-15T00:00:00Z", formatters) == Self.parse("1582-10-15T00:00:00Z"))
        // Lenient where roas is strict.
        #expect(Self.foundation("2024-02-30T00:00:00Z", formatters) == Self.parse("2024-03-01T00:00:00Z"))
        #expect(Self.parse("2024-02-30T00:00:00Z") == nil)
        #expect(Self.foundation("2024-01-01T24:00:00Z", formatters) == Self.parse("2024-01-02T00:00:00Z"))
        #expect(Self.parse("2024-01-01T24:00:00Z") == nil)
        #expect(Self.foundation("2024-01-01T10:00:00+24:00", formatters) != nil)
        #expect(Self.parse("2024-01-01T10:00:00+24:00") == nil)
        // Strict where RFC 3339 is lenient.
        #expect(Self.foundation("2024-01-01t10:00:00z", formatters) == nil)
        #expect(Self.parse("2024-01-01t10:00:00z") == Self.parse("2024-01-01T10:00:00Z"))
        #expect(Self.foundation("2024-06-30T23:59:60Z", formatters) == nil)
        #expect(Self.parse("2024-06-30T23:59:60Z") == Self.parse("2024-07-01T00:00:00Z"))
    }

    /// A random valid RFC 3339 text: the date in `years`, any fraction length, `Z` or an offset.
    static func randomText(_ random: inout SplitMix64, years: ClosedRange<Int64>) -> (text: String, fraction: String) {
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let year = Int64(random.int(Int(years.lowerBound)...Int(years.upperBound)))
        let month = Int64(random.int(1...12))
        let day = Int64(random.int(1...Int(Timestamp.daysInMonth(year: year, month: month))))
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T"
        text += "\(pad(Int64(random.int(0...23)), 2)):\(pad(Int64(random.int(0...59)), 2)):\(pad(Int64(random.int(0...59)), 2))"
        var fraction = ""
        if random.chance(0.6) {
            fraction = String((0..<random.int(1...9)).map { _ in Character(String(random.int(0...9))) })
        }
        text += fraction.isEmpty ? "" : "." + fraction
        if random.chance(0.3) {
            text += "Z"
        } else {
            text += random.pick(["+", "-"]) + pad(Int64(random.int(0...23)), 2) + ":" + pad(Int64(random.int(0...59)), 2)
        }
        return (text, fraction)
    }

    /// The text with its fraction cut to three digits (what roas keeps), for Foundation.
    static func truncatedFraction(_ text: String, _ fraction: String) -> String {
        guard fraction.count > 3 else { return text }
        return text.replacingOccurrences(of: "." + fraction, with: "." + fraction.prefix(3))
    }

    @Test(arguments: 0..<40 as Range<UInt64>)
    func agreesWithFoundation(seed: UInt64) throws {
        let formatters = Self.formatters()
        for index in 0..<100 {
            var random = SplitMix64(seed: seed, case: index)
            // From the first whole year of the Gregorian calendar in Foundation.
            let (text, fraction) = Self.randomText(&random, years: 1583...9999)
            let parsed = Self.parse(text)
            let reference = Self.foundation(Self.truncatedFraction(text, fraction), formatters)
            try #require(reference != nil, "seed \(seed) case \(index): Foundation refused \(text)")
            #expect(parsed == reference, "seed \(seed) case \(index): \(text)")
        }
    }

    @Test(arguments: 0..<20 as Range<UInt64>)
    func earlyYearsFollowTheProlepticGregorianCalendar(seed: UInt64) {
        let formatters = Self.formatters()
        let period: Int64 = 146_097 * 86_400_000  // 400 Gregorian years, in milliseconds
        for index in 0..<100 {
            var random = SplitMix64(seed: seed, case: index)
            let (text, fraction) = Self.randomText(&random, years: 0...1582)
            let year = Int64(text.prefix(4))!
            let shifts = (1600 - year + 399) / 400
            let shiftedYear = String(year + 400 * shifts)
            let shifted = shiftedYear + text.dropFirst(4)
            let reference = Self.foundation(Self.truncatedFraction(shifted, fraction), formatters)
            let parsed = Self.parse(text)
            #expect(parsed != nil && reference != nil && parsed! + shifts * period == reference!, "seed \(seed) case \(index): \(text)")
        }
    }

    static let invalid: [String] = [
        "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2024-02-30T00:00:00Z",
        "2024-04-31T00:00:00Z", "2024-06-31T00:00:00Z", "2024-09-31T00:00:00Z", "2024-11-31T00:00:00Z",
        "2024-01-32T00:00:00Z", "2024-01-00T00:00:00Z", "2024-00-01T00:00:00Z", "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z", "2024-01-01T23:59:61Z", "2024-01-01T10:00:00+24:00",
        "2024-01-01T10:00:00+23:60", "2024-01-01T10:00:00", "2024-01-01T10:00:00.Z", "2024-01-01T10:00:00,5Z",
        "2024-01-01T10:00Z", "2024-01-01 10:00:00Z", "2024-01-01T10:00:00+0100", "2024-01-01T10:00:00+01",
        "2024-01-01T10:00:00Z ", " 2024-01-01T10:00:00Z", "2024-01-01T10:00:00ZZ", "2024-01-01T10:00:00+01:00Z",
        "2024-1-01T10:00:00Z", "24-01-01T10:00:00Z", "+2024-01-01T10:00:00Z", "2024-01-01T1a:00:00Z",
        "2024/01/01T10:00:00Z", "2024-01-01X10:00:00Z", "2024-01-01T10:00:00.123", "2024-01-01T10:00:00.1a3Z",
        "20240101T100000Z", "", "Z", "2024-01-01T10:00:00-1:00", "2024-01-01T10:00:00+01:0a", "2024-01-01T10:00:00.5+",
    ]

    @Test(arguments: invalid)
    func rejectsInvalid(_ text: String) {
        #expect(Self.parse(text) == nil)
    }

    static let valid: [(String, Int64)] = [
        ("1970-01-01T00:00:00Z", 0), ("1970-01-01T00:00:00.001Z", 1), ("1969-12-31T23:59:59.999Z", -1),
        ("1969-12-31T23:59:59.9999999Z", -1), ("1970-01-01T00:00:00.1239Z", 123), ("1970-01-01T00:00:00.5Z", 500),
        ("1970-01-01T00:00:00.05Z", 50), ("1970-01-01T00:00:00.999999999999999999999Z", 999),
        ("1970-01-01T01:00:00+01:00", 0), ("1969-12-31T23:00:00-01:00", 0), ("1970-01-01T00:00:00-00:00", 0),
        ("1970-01-01T23:59:00+23:59", 0), ("2000-02-29T00:00:00Z", 951_782_400_000), ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("0000-02-29T00:00:00Z", -62_162_121_600_000), ("0000-01-01T00:00:00Z", -62_167_219_200_000),
        ("9999-12-31T23:59:59.999Z", 253_402_300_799_999), ("2016-12-31T23:59:60Z", 1_483_228_800_000),
        ("2026-11-21t10:00:00z", 1_795_255_200_000),
    ]

    @Test(arguments: valid)
    func parsesValid(_ text: String, _ expected: Int64) {
        #expect(Self.parse(text) == expected)
    }

    static let formatted: [(Int64, String)] = [
        (0, "1970-01-01T00:00:00Z"), (250, "1970-01-01T00:00:00.250Z"), (1, "1970-01-01T00:00:00.001Z"),
        (-1, "1969-12-31T23:59:59.999Z"), (-1000, "1969-12-31T23:59:59Z"), (1_795_255_200_000, "2026-11-21T10:00:00Z"),
        (-62_167_219_200_000, "0000-01-01T00:00:00Z"), (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        (951_868_799_999, "2000-02-29T23:59:59.999Z"),
    ]

    @Test(arguments: formatted)
    func formats(_ milliseconds: Int64, _ expected: String) {
        #expect(Timestamp.format(milliseconds: milliseconds) == expected)
    }

    @Test(arguments: 0..<20 as Range<UInt64>)
    func formatRoundTripsThroughParse(seed: UInt64) {
        let formatters = Self.formatters()
        let low: Int64 = -62_167_219_200_000
        let high: Int64 = 253_402_300_799_999
        for index in 0..<500 {
            var random = SplitMix64(seed: seed, case: index)
            var milliseconds = Int64.random(in: low...high, using: &random)
            if random.chance(0.3) { milliseconds -= milliseconds % 1000 }
            if random.chance(0.05) { milliseconds = random.pick([low, high, 0, -1, 1, low + 999, high - 999]) }
            let text = Timestamp.format(milliseconds: milliseconds)
            #expect(Self.parse(text) == milliseconds, "seed \(seed) case \(index): \(milliseconds) -> \(text)")
            // Foundation reads the same instant back (Gregorian years only).
            if milliseconds >= -12_219_292_800_000 {
                #expect(Self.foundation(text, formatters) == milliseconds, "seed \(seed) case \(index): \(text)")
            }
        }
    }
}
