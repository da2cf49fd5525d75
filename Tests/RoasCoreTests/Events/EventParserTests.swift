import Testing

@testable import RoasCore

/// The field rules of `EventParser` (see its doc comment) on small hand-written lines, and the
/// rounding of `EventParser.micros` against exact decimal arithmetic.
@Suite struct EventParserTests {
    /// The documented range of `ts`: 1970-01-01 to 8999-12-31 (checked in `timeRange`).
    static let minimumTime: Int64 = EventParser.minimumTime
    static let maximumTime: Int64 = EventParser.maximumTime

    func outcome(_ line: String) -> ParseOutcome {
        var parser = EventParser.forTests()
        return parser.outcome(line)
    }

    // MARK: Every type with its fields

    static let accepted: [(String, EventCopy)] = [
        (
            #"{"type":"view","id":"v1","ts":1000,"user":"u1","creator":"c1"}"#,
            EventCopy(.view, time: 1000, id: "v1", user: "u1", creator: "c1")
        ),
        (
            #"{"type":"click","id":"k1","ts":"1970-01-01T00:00:01Z","user":"u1","creator":"c1","campaign":"spring"}"#,
            EventCopy(.click, time: 1000, id: "k1", user: "u1", creator: "c1", campaign: "spring")
        ),
        (
            #"{"type":"view","id":"v1","ts":1,"user":"u1","creator":"c1","campaign":null}"#,
            EventCopy(.view, time: 1, id: "v1", user: "u1", creator: "c1")
        ),
        (
            #"{"type":"purchase","id":"p1","ts":5,"user":"u1","order":"o1","amount":12.5}"#,
            EventCopy(.purchase, time: 5, id: "p1", user: "u1", order: "o1", amount: 12_500_000)
        ),
        (
            #"{"type":"purchase","id":"p1","ts":5,"user":"u1","order":"o1","amount":3,"currency":"EUR"}"#,
            EventCopy(.purchase, time: 5, id: "p1", user: "u1", order: "o1", amount: 3_000_000, currency: 1)
        ),
        (
            #"{"type":"refund","id":"r1","ts":5,"order":"o1","amount":0,"currency":null}"#,
            EventCopy(.refund, time: 5, id: "r1", order: "o1", amount: 0)
        ),
        (
            #"{"type":"refund","id":"r1","ts":5,"order":"o1","amount":1,"currency":"JPY","user":"ignored"}"#,
            EventCopy(.refund, time: 5, id: "r1", order: "o1", amount: 1_000_000, currency: 2)
        ),
        (
            #"{"type":"link","id":"l1","ts":5,"user":"u1","linked":"u2"}"#,
            EventCopy(.link, time: 5, id: "l1", user: "u1", linked: "u2")
        ),
        (
            #"{"type":"spend","id":"s1","ts":7,"creator":"c1","amount":1e2,"currency":"USD"}"#,
            EventCopy(.spend, time: 7, id: "s1", creator: "c1", amount: 100_000_000, currency: 0)
        ),
        (
            #"{"type":"spend","id":"s1","ts":7,"creator":"c1","campaign":"x","amount":0.0000015}"#,
            EventCopy(.spend, time: 7, id: "s1", creator: "c1", campaign: "x", amount: 2)
        ),
        // Escapes are decoded, in keys and values; unknown keys (even repeated) are ignored.
        (
            #"{"t\u0079pe":"vi\u0065w","id":"\u00e9\ud83d\ude00","ts":0,"user":"a\"b","creator":"c\/d","x":1,"x":2}"#,
            EventCopy(.view, time: 0, id: "é😀", user: "a\"b", creator: "c/d")
        ),
        // Fields that do not belong to the type are not checked.
        (
            #"{"type":"view","id":"v","ts":0,"user":"u","creator":"c","amount":"free","currency":7,"order":[],"linked":5}"#,
            EventCopy(.view, time: 0, id: "v", user: "u", creator: "c")
        ),
        (
            #"{"type":"spend","id":"s","ts":0,"creator":"c","amount":1,"user":5}"#,
            EventCopy(.spend, time: 0, id: "s", creator: "c", amount: 1_000_000)
        ),
        // Whitespace anywhere JSON allows it.
        (
            " {\t\"type\" : \"link\" ,\r\n \"id\":\"l\",\"ts\":-0,\"user\":\"a\",\"linked\":\"b\"} ",
            EventCopy(.link, time: 0, id: "l", user: "a", linked: "b")
        ),
    ]

    @Test(arguments: accepted)
    func acceptsWellFormedEvents(_ line: String, _ expected: EventCopy) {
        #expect(outcome(line) == .event(expected))
    }

    // MARK: Required fields per type

    static let base: [EventKind: [String: String]] = [
        .view: ["id": #""v""#, "ts": "1", "user": #""u""#, "creator": #""c""#],
        .click: ["id": #""k""#, "ts": "1", "user": #""u""#, "creator": #""c""#],
        .purchase: ["id": #""p""#, "ts": "1", "user": #""u""#, "order": #""o""#, "amount": "1"],
        .refund: ["id": #""r""#, "ts": "1", "order": #""o""#, "amount": "1"],
        .link: ["id": #""l""#, "ts": "1", "user": #""u""#, "linked": #""w""#],
        .spend: ["id": #""s""#, "ts": "1", "creator": #""c""#, "amount": "1"],
        .engagement: ["id": #""e""#, "ts": "1", "user": #""u""#, "creator": #""c""#, "action": #""like""#],
        .signup: ["id": #""g""#, "ts": "1", "user": #""u""#],
        .creator: ["id": #""p""#, "ts": "1", "creator": #""c""#, "followers": "12000"],
    ]

    static func line(_ kind: EventKind, _ fields: [String: String]) -> String {
        let members = fields.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }
        return "{" + (["\"type\":\"\(kind.name)\""] + members).joined(separator: ",") + "}"
    }

    @Test(arguments: EventKind.allCases)
    func everyRequiredFieldIsRequired(_ kind: EventKind) {
        let fields = Self.base[kind]!
        #expect(outcome(Self.line(kind, fields)).reason == nil, "the base line is valid")
        for field in fields.keys {
            var without = fields
            without[field] = nil
            #expect(outcome(Self.line(kind, without)) == .rejected(.invalid), "\(kind) without \(field)")
            // Present but null, or of the wrong JSON type: also invalid (null only stands for absent
            // in optional fields).
            for wrong in ["null", "true", "[]", "{}", ["amount", "ts", "followers"].contains(field) ? #""1""# : "1"] {
                var changed = fields
                changed[field] = wrong
                #expect(outcome(Self.line(kind, changed)) == .rejected(.invalid), "\(kind) with \(field): \(wrong)")
            }
            // Required strings must not be empty (escaped or not).
            if !["amount", "ts", "followers"].contains(field) {
                var empty = fields
                empty[field] = #""""#
                #expect(outcome(Self.line(kind, empty)) == .rejected(.invalid), "\(kind) with \(field) empty")
            }
            // A repeated known key is invalid, even with the same value.
            let repeated = Self.line(kind, fields).dropLast() + ",\"\(field)\":\(fields[field]!)}"
            #expect(outcome(String(repeated)) == .rejected(.invalid), "\(kind) repeating \(field)")
        }
    }

    @Test(arguments: ["campaign", "currency"])
    func optionalFields(_ field: String) {
        let kind: EventKind = field == "campaign" ? .spend : .purchase
        let fields = Self.base[kind]!
        for (value, expected) in [
            ("null", nil), (#""""#, Reason.invalid), ("1", .invalid), ("[]", .invalid), ("false", .invalid),
            (field == "campaign" ? #""c""# : #""EUR""#, nil),
        ] as [(String, Reason?)] {
            var changed = fields
            changed[field] = value
            #expect(outcome(Self.line(kind, changed)).reason == expected, "\(field): \(value)")
        }
        var twice = fields
        twice[field] = "null"
        let repeated = Self.line(kind, twice).dropLast() + ",\"\(field)\":null}"
        #expect(outcome(String(repeated)) == .rejected(.invalid), "a repeated null \(field)")
    }

    @Test func repeatedKeys() {
        // A known key spelled with an escape is the same key.
        #expect(outcome(#"{"type":"link","id":"l","ts":1,"\u0074s":1,"user":"u","linked":"w"}"#) == .rejected(.invalid))
        // A known key that the type does not use still counts.
        #expect(outcome(#"{"type":"link","id":"l","ts":1,"user":"u","linked":"w","order":"a","order":"b"}"#) == .rejected(.invalid))
        #expect(outcome(#"{"type":"link","type":"link","id":"l","ts":1,"user":"u","linked":"w"}"#) == .rejected(.invalid))
        // Repeated unknown keys are ignored; keys are case-sensitive.
        #expect(outcome(#"{"type":"link","id":"l","ts":1,"user":"u","linked":"w","Ts":1,"Ts":2,"":0,"":1}"#).reason == nil)
    }

    // MARK: id, ts, amount, currency

    @Test func idLength() {
        let line = { (id: String) in #"{"type":"link","id":"# + id + #","ts":1,"user":"u","linked":"w"}"# }
        #expect(outcome(line("\"" + String(repeating: "x", count: 256) + "\"")).reason == nil)
        #expect(outcome(line("\"" + String(repeating: "x", count: 257) + "\"")) == .rejected(.invalid))
        // The length is of the decoded bytes: 128 × "é" (2 bytes each) written as \u00e9.
        #expect(outcome(line("\"" + String(repeating: "\\u00e9", count: 128) + "\"")).reason == nil)
        #expect(outcome(line("\"" + String(repeating: "\\u00e9", count: 128) + "x\"")) == .rejected(.invalid))
        #expect(outcome(line("\"\\u0000\"")).reason == nil)
        #expect(outcome(line("7")) == .rejected(.invalid))
    }

    @Test func timeRange() {
        func parse(_ text: String) -> Int64? { Array(text.utf8).withUnsafeBytes { Timestamp.parseRFC3339($0) } }
        #expect(EventParser.minimumTime == parse("1970-01-01T00:00:00Z"))
        #expect(EventParser.maximumTime == parse("8999-12-31T23:59:59.999Z"))
    }

    static let timestamps: [(String, Int64?)] = [
        ("0", 0), ("-0", 0), ("1700000000000", 1_700_000_000_000), ("-1", nil), ("-1700000000000", nil),
        ("\(minimumTime)", minimumTime), ("\(maximumTime)", maximumTime), ("\(maximumTime + 1)", nil),
        ("999999999999999999", nil), ("1000000000000000000", nil), ("-99999999999999999999", nil),
        // Integers only: no fraction or exponent, even when the value is whole.
        ("1.0", nil), ("1e3", nil), ("10E0", nil), ("0.5", nil),
        (#""2026-11-21T10:00:00.5+01:00""#, 1_795_251_600_500), (#""2026-11-21T09:00:00.500Z""#, 1_795_251_600_500),
        (#""2026-11-21t09:00:00z""#, 1_795_251_600_000),
        (#""1970-01-01T00:00:00Z""#, 0), (#""1970-01-01T00:00:00+00:01""#, nil), (#""1969-12-31T23:59:59.999Z""#, nil),
        (#""1970-01-01T01:00:00+01:00""#, 0), (#""0000-01-01T00:00:00Z""#, nil),
        (#""8999-12-31T23:59:59.999Z""#, maximumTime), (#""8999-12-31T23:59:59.999-00:01""#, nil),
        (#""8999-12-31T23:59:60Z""#, nil), (#""9000-01-01T00:00:00Z""#, nil), (#""9999-12-31T23:59:59Z""#, nil),
        // Escapes in the string are decoded first.
        (#""2026-11-21T09:00:00\u005a""#, 1_795_251_600_000),
        (#""2026-02-30T00:00:00Z""#, nil), (#""2026-11-21""#, nil), (#""""#, nil), (#""1700000000000""#, nil),
        ("true", nil), ("null", nil), ("[1]", nil),
    ]

    @Test(arguments: timestamps)
    func timestamp(_ ts: String, _ expected: Int64?) {
        let result = outcome(#"{"type":"link","id":"l","ts":"# + ts + #","user":"u","linked":"w"}"#)
        if let expected {
            #expect(result == .event(EventCopy(.link, time: expected, id: "l", user: "u", linked: "w")))
        } else {
            #expect(result == .rejected(.invalid))
        }
    }

    static let amounts: [(String, Int64?)] = [
        ("0", 0), ("-0", 0), ("-0.0", 0), ("0e5", 0), ("1", 1_000_000), ("12.5", 12_500_000), ("1E2", 100_000_000),
        ("0.000001", 1), ("0.0000005", 0), ("0.0000015", 2), ("0.0000025", 2), ("0.00000250001", 3),
        ("0.00000049999999999999999999", 0), ("0.0000005000000000000000000001", 1), ("1.5e-6", 2),
        ("12.3456785", 12_345_678), ("12.3456795", 12_345_680), ("123456.789e-3", 123_456_789),
        ("1e-400", 0), ("1000000000000", 1_000_000_000_000_000_000), ("1e12", 1_000_000_000_000_000_000),
        ("999999999999.9999994", 999_999_999_999_999_999), ("999999999999.9999995", 1_000_000_000_000_000_000),
        ("1000000000000.000001", nil), ("1000000000001", nil), ("1e13", nil), ("1e400", nil),
        ("-1", nil), ("-0.0000001", nil), ("-1e-30", nil),
        (#""1""#, nil), ("null", nil), ("true", nil), ("[1]", nil),
    ]

    @Test(arguments: amounts)
    func amount(_ amount: String, _ expected: Int64?) {
        let result = outcome(#"{"type":"refund","id":"r","ts":1,"order":"o","amount":"# + amount + "}")
        if let expected {
            #expect(result == .event(EventCopy(.refund, time: 1, id: "r", order: "o", amount: expected)))
        } else {
            #expect(result == .rejected(.invalid))
        }
    }

    static let currencies: [(String, Reason?)] = [
        (#""USD""#, nil), (#""EUR""#, nil), (#""JPY""#, nil), (#""\u0045UR""#, nil), ("null", nil),
        (#""GBP""#, .unknownCurrency), (#""usd""#, .unknownCurrency), (#""US""#, .unknownCurrency),
        (#""USDX""#, .unknownCurrency), (#""E\u00e9R""#, .unknownCurrency), (#"" USD""#, .unknownCurrency),
        (#""""#, .invalid), ("1", .invalid), ("{}", .invalid),
    ]

    @Test(arguments: currencies)
    func currency(_ currency: String, _ expected: Reason?) {
        for kind in [EventKind.purchase, .refund, .spend] {
            var fields = Self.base[kind]!
            fields["currency"] = currency
            #expect(outcome(Self.line(kind, fields)).reason == expected, "\(kind)")
        }
    }

    // MARK: Which rejection comes first

    static let precedence: [(String, Reason)] = [
        // malformed before everything.
        (#"{"type":"nope","ts":1"#, .malformed),
        (#"{"type":"view","id":"v","ts":1,"user":"u","creator":"c",}"#, .malformed),
        (#"{"type":"view","id":"v","ts":1,"user":"u","creator":"\ud800"}"#, .malformed),
        ("{\"type\":\"view\",\"id\":\"v\",\"ts\":1,\"user\":\"\u{1}\",\"creator\":\"c\"}", .malformed),
        ("", .malformed), ("   ", .malformed), ("nope", .malformed), (#"{"a":01}"#, .malformed),
        // Valid JSON that is not an object.
        ("[]", .invalid), (#""view""#, .invalid), ("null", .invalid), ("1", .invalid),
        // A missing or non-string type is invalid; an unknown one is unknown_type, before any other field rule.
        ("{}", .invalid), (#"{"id":"v","ts":1}"#, .invalid), (#"{"type":null}"#, .invalid), (#"{"type":["view"]}"#, .invalid),
        (#"{"Type":"view"}"#, .invalid),
        (#"{"type":"nope"}"#, .unknownType), (#"{"type":""}"#, .unknownType), (#"{"type":"View"}"#, .unknownType),
        (#"{"type":"view "}"#, .unknownType), (#"{"type":"purchases"}"#, .unknownType),
        (#"{"type":"nope","ts":1,"ts":2,"id":""}"#, .unknownType),
        (#"{"type":"view","type":"nope"}"#, .unknownType),
        // A repeated known key is invalid before the field rules and before unknown_currency.
        (#"{"type":"spend","id":"s","ts":1,"creator":"c","amount":1,"currency":"GBP","id":"s"}"#, .invalid),
        // invalid before unknown_currency.
        (#"{"type":"spend","id":"s","ts":1,"creator":"c","amount":-1,"currency":"GBP"}"#, .invalid),
        (#"{"type":"spend","id":"s","ts":1,"amount":1,"currency":"GBP"}"#, .invalid),
        (#"{"type":"spend","id":"s","ts":1.5,"creator":"c","amount":1,"currency":"GBP"}"#, .invalid),
        (#"{"type":"spend","id":"s","ts":1,"creator":"c","campaign":"","amount":1,"currency":"GBP"}"#, .invalid),
        (#"{"type":"spend","id":"s","ts":1,"creator":"c","amount":1,"currency":"GBP"}"#, .unknownCurrency),
    ]

    @Test(arguments: precedence)
    func rejectionPrecedence(_ line: String, _ expected: Reason) {
        #expect(outcome(line) == .rejected(expected))
    }

    @Test func parserCanBeReusedAcrossLinesOfAnyLength() {
        var parser = EventParser.forTests()
        let long = String(repeating: "\\u00e9", count: 2000)
        for round in 0..<3 {
            let short = #"{"type":"link","id":"\u0061","ts":1,"user":"u","linked":"w"}"#
            #expect(parser.outcome(short) == .event(EventCopy(.link, time: 1, id: "a", user: "u", linked: "w")))
            let line =
                #"{"type":"view","id":"v","ts":1,"user":""# + long + #"","creator":"\u0063","campaign":""#
                + long + #""}"#
            let expected = String(repeating: "é", count: 2000)
            #expect(
                parser.outcome(line)
                    == .event(EventCopy(.view, time: 1, id: "v", user: expected, creator: "c", campaign: expected)),
                "round \(round)")
        }
    }

    // MARK: integer

    @Test func integerLiterals() {
        func integer(_ text: String) -> Int64? {
            Array(text.utf8).withUnsafeBytes { EventParser.integer($0) }
        }
        #expect(integer("0") == 0)
        #expect(integer("-0") == 0)
        #expect(integer("42") == 42)
        #expect(integer("-42") == -42)
        #expect(integer("999999999999999999") == 999_999_999_999_999_999)
        #expect(integer("-999999999999999999") == -999_999_999_999_999_999)
        // 19 digits may overflow, so they are refused even when they would fit.
        #expect(integer("1000000000000000000") == nil)
        #expect(integer("9223372036854775808") == nil)
    }

    // MARK: Property: micros is correctly rounded

    /// Micro-units of a decimal literal, rounded half to even with exact arithmetic on its digits;
    /// `.some(nil)` when negative (not zero) or over `Int64.max`.
    static func exactMicros(_ literal: String) -> Int64? {
        var text = Substring(literal)
        let negative = text.hasPrefix("-")
        if negative { text = text.dropFirst() }
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...])!
            text = text[..<e]
        }
        var digits = String(text)
        if let dot = digits.firstIndex(of: ".") {
            exponent -= digits.distance(from: dot, to: digits.endIndex) - 1
            digits.remove(at: dot)
        }
        digits = String(digits.drop { $0 == "0" })
        if digits.isEmpty { return 0 }
        if negative { return nil }
        let scale = exponent + 6
        let maximum = String(Int64.max)
        func fits(_ number: String) -> Bool {
            number.count < maximum.count || (number.count == maximum.count && number <= maximum)
        }
        if scale >= 0 {
            guard digits.count + scale <= maximum.count else { return nil }
            let number = digits + String(repeating: "0", count: scale)
            return fits(number) ? Int64(number)! : nil
        }
        let cut = -scale
        let padded = String(repeating: "0", count: max(0, cut - digits.count)) + digits
        var quotient = String(padded.dropLast(cut).drop { $0 == "0" })
        if quotient.isEmpty { quotient = "0" }
        let remainder = String(padded.suffix(cut))
        let half = "5" + String(repeating: "0", count: cut - 1)
        guard fits(quotient) else { return nil }
        var value = UInt64(quotient)!
        if remainder > half || (remainder == half && value % 2 == 1) { value += 1 }
        return value <= UInt64(Int64.max) ? Int64(value) : nil
    }

    @Test func exactMicrosReference() {
        #expect(Self.exactMicros("0.0000025") == 2)
        #expect(Self.exactMicros("0.0000035") == 4)
        #expect(Self.exactMicros("12.5e-1") == 1_250_000)
        #expect(Self.exactMicros("-0.000") == 0)
        #expect(Self.exactMicros("9223372036854.775807") == Int64.max)
        #expect(Self.exactMicros("9223372036854.7758075") == nil)
        #expect(Self.exactMicros("9223372036854.7758065") == Int64.max - 1)
        #expect(Self.exactMicros("-1") == nil)
    }

    /// A decimal literal of the JSON grammar, with digit runs biased to 0, 4, 5, 9 (rounding edges),
    /// more than 18 significant digits, and exponents of every size.
    static func randomDecimal(_ random: inout SplitMix64) -> String {
        func digit() -> Character {
            Character(String(random.chance(0.6) ? random.pick([0, 0, 0, 4, 5, 9]) : random.int(0...9)))
        }
        func run(_ count: Int) -> String { String((0..<count).map { _ in digit() }) }
        var text = random.chance(0.1) ? "-" : ""
        switch random.int(0..<5) {
        case 4:
            // Around Int64.max micro-units (nil above it).
            text += "9223372036854." + String(random.int(770_000...779_999)) + run(random.int(0...6))
            return text
        case 0:
            // Close to the 10^12 maximum, below it (the value at or above 10^12 + 10^-6 is nil anyway).
            text += "999999999999." + run(random.int(1...20))
            return text
        case 1:
            // Just over the maximum by at least a micro-unit.
            text += "1000000000000." + String(random.int(1...9)) + run(random.int(0...20))
            return text
        default:
            break
        }
        if random.chance(0.3) {
            text += "0"
        } else {
            text += String(random.int(1...9)) + run(random.chance(0.2) ? random.int(15...30) : random.int(0...12))
        }
        if random.chance(0.6) {
            text += "." + run(random.chance(0.3) ? random.int(10...30) : random.int(1...9))
        }
        if random.chance(0.4) {
            text += random.pick(["e", "E"]) + random.pick(["", "+", "-"])
            let exponent = random.chance(0.05) ? random.int(20...200_000) : random.int(0...25)
            text += (random.chance(0.1) ? "0" : "") + String(exponent)
        }
        return text
    }

    @Test(arguments: 0..<100 as Range<UInt64>)
    func microsIsCorrectlyRounded(seed: UInt64) {
        var parser = EventParser.forTests()
        for index in 0..<200 {
            var random = SplitMix64(seed: seed, case: index)
            let literal = Self.randomDecimal(&random)
            let bytes = Array(literal.utf8)
            let context = "seed \(seed) case \(index): \(literal)"
            guard Scan.validate(bytes) else {
                Issue.record("\(context): the generator made an invalid literal")
                continue
            }
            var span = JSONSpan()
            span.kind = .number
            span.end = bytes.count
            span.flag = literal.contains { $0 == "." || $0 == "e" || $0 == "E" }
            let micros = bytes.withUnsafeBytes { EventParser.micros($0, span) }
            let exact = Self.exactMicros(literal)
            #expect(micros == exact, "\(context)")
            // Through the parser: accepted exactly when 0 <= rounded <= 10^18.
            let line = #"{"type":"spend","id":"s","ts":1,"creator":"c","amount":"# + literal + "}"
            let expected: ParseOutcome =
                if let exact, exact <= EventParser.maximumAmount {
                    .event(EventCopy(.spend, time: 1, id: "s", creator: "c", amount: exact))
                } else {
                    .rejected(.invalid)
                }
            #expect(parser.outcome(line) == expected, "\(context)")
        }
    }

    /// Amounts just above 10^12 that round (half to even, to micro-units) to exactly the maximum are
    /// accepted. (Found failing on the first commit, whose `micros` kept 18 significant digits and
    /// returned nil when a non-zero digit was dropped while the kept ones still needed scaling up.)
    @Test(arguments: ["1000000000000.0000001", "1000000000000.0000005", "1000000000000.00000049", "100000000000.000000001e1"])
    func amountsThatRoundToTheMaximum(_ literal: String) {
        let bytes = Array(literal.utf8)
        var span = JSONSpan()
        span.kind = .number
        span.end = bytes.count
        span.flag = true
        #expect(Self.exactMicros(literal) == EventParser.maximumAmount)
        #expect(bytes.withUnsafeBytes { EventParser.micros($0, span) } == EventParser.maximumAmount)
        let line = #"{"type":"refund","id":"r","ts":1,"order":"o","amount":"# + literal + "}"
        #expect(outcome(line) == .event(EventCopy(.refund, time: 1, id: "r", order: "o", amount: EventParser.maximumAmount)))
    }

    /// Micro-unit values at the top of UInt64 (2^64 - 1 = 18446744073709551615) that round up must give
    /// nil, not trap on the overflow of the rounding step: a trap would stop roas on one input line.
    /// Run in a child process so that a trap fails only this test.
    @Test func microsDoesNotTrapAtTheTopOfUInt64() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            for literal in [
                "18446744073709.5516155", "18446744073709.5516159", "18446744073709.55161550000001",
                "18446744073709551615.9e-6", "1844674407370955161.59e-5", "18446744073709.551615", "18446744073709.551616",
                "9223372036854.7758075", "9223372036854.7758074",
            ] {
                let bytes = Array(literal.utf8)
                var span = JSONSpan()
                span.kind = .number
                span.end = bytes.count
                span.flag = true
                let micros = bytes.withUnsafeBytes { EventParser.micros($0, span) }
                let expected: Int64? = literal == "9223372036854.7758074" ? Int64.max : nil
                precondition(micros == expected, "\(literal): \(String(describing: micros))")
            }
        }
        if let result, !result.standardErrorContent.isEmpty {
            Issue.record("the child process wrote: \(String(decoding: result.standardErrorContent.suffix(2000), as: UTF8.self))")
        }
    }
}
