import Foundation
import Testing

@testable import RoasCore

/// `JSONScanner` against Foundation's `JSONSerialization`. The deliberate differences are listed on
/// `FoundationJSON` and checked one by one in `foundationBehaviour`; the property tests skip or
/// special-case exactly those inputs.
@Suite struct JSONScannerTests {
    // MARK: Foundation's behaviour, and the documented differences

    struct Known: CustomTestStringConvertible, Sendable {
        var bytes: [UInt8]
        var foundation: Bool
        var scanner: Bool
        var testDescription: String { bytes.debugText }

        init(_ text: String, foundation: Bool, scanner: Bool) {
            self.bytes = Array(text.utf8)
            self.foundation = foundation
            self.scanner = scanner
        }

        init(bytes: [UInt8], foundation: Bool, scanner: Bool) {
            self.bytes = bytes
            self.foundation = foundation
            self.scanner = scanner
        }
    }

    static let knownBehaviour: [Known] = [
        // Both reject: unpaired surrogates (RFC 8259 §8.2; the scanner's doc comment).
        Known(#""\ud800""#, foundation: false, scanner: false),
        Known(#""\udc00""#, foundation: false, scanner: false),
        Known(#""\ud800\u0041""#, foundation: false, scanner: false),
        Known(#""\ud800\ud800""#, foundation: false, scanner: false),
        Known(#""a\ud800""#, foundation: false, scanner: false),
        Known(#""\ud800x""#, foundation: false, scanner: false),
        Known(#""\ud83d\ude00""#, foundation: true, scanner: true),
        Known(#""\uDBFF\uDFFF""#, foundation: true, scanner: true),
        // Both reject invalid UTF-8.
        Known(bytes: [0x22, 0xFF, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xC0, 0x80, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xED, 0xA0, 0x80, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xE2, 0x82, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0x80, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22], foundation: false, scanner: false),
        Known(bytes: [0x22, 0xEF, 0xBF, 0xBF, 0x22], foundation: true, scanner: true),
        Known(bytes: [0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22], foundation: true, scanner: true),
        // Both reject leading zeros and the other broken number forms.
        Known("01", foundation: false, scanner: false),
        Known("-01", foundation: false, scanner: false),
        Known("[01.5]", foundation: false, scanner: false),
        Known("00", foundation: false, scanner: false),
        Known("1.", foundation: false, scanner: false),
        Known(".5", foundation: false, scanner: false),
        Known("1e", foundation: false, scanner: false),
        Known("1e+", foundation: false, scanner: false),
        Known("+1", foundation: false, scanner: false),
        Known("-", foundation: false, scanner: false),
        Known("NaN", foundation: false, scanner: false),
        Known("-Infinity", foundation: false, scanner: false),
        Known("-0", foundation: true, scanner: true),
        Known("[-0.0e-0]", foundation: true, scanner: true),
        Known("1E+5", foundation: true, scanner: true),
        Known("123456789012345678901234567890.5", foundation: true, scanner: true),
        Known("1e-400", foundation: true, scanner: true),
        // Both reject control characters, bad escapes, comments, single quotes, bare words, garbage.
        Known("\"\t\"", foundation: false, scanner: false),
        Known(#""\x""#, foundation: false, scanner: false),
        Known(#""\U0041""#, foundation: false, scanner: false),
        Known(#""\u00""#, foundation: false, scanner: false),
        Known("\"\u{7F}\"", foundation: true, scanner: true),
        Known(#""\u0000""#, foundation: true, scanner: true),
        Known("/* c */1", foundation: false, scanner: false),
        Known("{'a':1}", foundation: false, scanner: false),
        Known("{a:1}", foundation: false, scanner: false),
        Known("[1 2]", foundation: false, scanner: false),
        Known("[,1]", foundation: false, scanner: false),
        Known("[1,,]", foundation: false, scanner: false),
        Known("1 2", foundation: false, scanner: false),
        Known("", foundation: false, scanner: false),
        Known(" ", foundation: false, scanner: false),
        Known("\u{0C}1", foundation: false, scanner: false),
        Known("\u{A0}1", foundation: false, scanner: false),
        Known("\r\n1\r\n", foundation: true, scanner: true),
        Known(#"{"a":1,"a":2}"#, foundation: true, scanner: true),
        // Difference 1: trailing commas.
        Known("[1,]", foundation: true, scanner: false),
        Known("[1 , ]", foundation: true, scanner: false),
        Known("{\"a\":1,\n}", foundation: true, scanner: false),
        Known(#"{"a":[1,],}"#, foundation: true, scanner: false),
        // Difference 2: nesting deeper than 128 (Foundation: 512).
        Known(String(repeating: "[", count: 128) + String(repeating: "]", count: 128), foundation: true, scanner: true),
        Known(String(repeating: "[", count: 129) + String(repeating: "]", count: 129), foundation: true, scanner: false),
        Known(String(repeating: "[", count: 512) + String(repeating: "]", count: 512), foundation: true, scanner: false),
        Known(String(repeating: "[", count: 513) + String(repeating: "]", count: 513), foundation: false, scanner: false),
        // Difference 3: a UTF-8 byte order mark.
        Known("\u{FEFF}1", foundation: true, scanner: false),
        Known("\u{FEFF}{}", foundation: true, scanner: false),
        Known(" \u{FEFF}1", foundation: false, scanner: false),
        // Difference 4: UTF-16 and UTF-32.
        Known(bytes: [0x00, 0x31], foundation: true, scanner: false),
        Known(bytes: [0x31, 0x00], foundation: true, scanner: false),
        Known(bytes: [0x00, 0x00, 0x00, 0x31], foundation: true, scanner: false),
        Known(bytes: [0xFF, 0xFE, 0x31, 0x00], foundation: true, scanner: false),
        Known(bytes: [0xFE, 0xFF, 0x00, 0x31], foundation: true, scanner: false),
        Known(bytes: [0x31, 0x32, 0x33, 0x34, 0x00], foundation: false, scanner: false),
        // Difference 5: numbers that overflow a Double.
        Known("1e400", foundation: false, scanner: true),
        Known("[-1e309]", foundation: false, scanner: true),
        Known("1.7976931348623159e308", foundation: false, scanner: true),
        Known("1" + String(repeating: "0", count: 400), foundation: false, scanner: true),
        Known("1.7976931348623157e308", foundation: true, scanner: true),
    ]

    @Test(arguments: knownBehaviour)
    func foundationBehaviour(_ known: Known) {
        #expect(FoundationJSON.accepts(known.bytes) == known.foundation, "Foundation")
        #expect(Scan.validate(known.bytes) == known.scanner, "JSONScanner")
    }

    // MARK: Hand-written scanner cases

    static let valid: [String] = [
        "null", "true", "false", "0", "-0", "0.0", "1e5", "1E-5", "-12.5e+3", "\"\"", "\"a\"", "[]", "{}", " [ ] ",
        "[1,[2,{\"a\":[]}]]", "{\"\":0}", #""\"\\\/\b\f\n\r\t""#, #""\u00e9\u00E9""#, "\"é😀\"", "\t{\"a\" :\r\n1}\n",
    ]

    static let invalid: [String] = [
        "nul", "nulls", "True", "[", "]", "{", "}", "[}", "{]", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{1:1}", "{\"a\":1 \"b\":2}",
        "\"", "\"abc", "\"\\\"", "[\"a\":1]", "{,}", "[,]", "-a", "0x10", "1_000", "1e5.5", "--1", "1.e5", "\"\\u12\"",
        "\"\\uZZZZ\"", "{\"a\":1}}", "[]]", "\u{0B}1",
    ]

    @Test(arguments: valid)
    func acceptsValid(_ text: String) {
        #expect(Scan.validate(Array(text.utf8)))
    }

    @Test(arguments: invalid)
    func rejectsInvalid(_ text: String) {
        #expect(!Scan.validate(Array(text.utf8)))
    }

    @Test func depthLimitIsExact() {
        let depth = JSONScanner.maximumDepth
        #expect(depth == 128)
        let arrays = { (count: Int) in Array((String(repeating: "[", count: count) + String(repeating: "]", count: count)).utf8) }
        let objects = { (count: Int) in
            Array((String(repeating: "{\"k\":", count: count - 1) + "{}" + String(repeating: "}", count: count - 1)).utf8)
        }
        #expect(Scan.validate(arrays(depth)))
        #expect(!Scan.validate(arrays(depth + 1)))
        #expect(Scan.validate(objects(depth)))
        #expect(!Scan.validate(objects(depth + 1)))
        // scanObject counts its own object as the first level.
        #expect(Scan.object(objects(depth)).0 == .object)
        #expect(Scan.object(objects(depth + 1)).0 == .malformed)
        #expect(Scan.object(arrays(depth + 1)).0 == .malformed)
        // A deep document must not blow the stack.
        #expect(!Scan.validate(arrays(100_000)))
    }

    // MARK: Property: validateDocument agrees with JSONSerialization

    enum Agreement {
        case agreed(valid: Bool)
        case byteOrderMark, otherEncoding, trailingComma, tooDeep, overflowingNumber
    }

    /// Compares the scanner with Foundation on one input; records an issue unless they agree or
    /// the input shows one of the documented differences (and nothing else).
    static func compare(_ bytes: [UInt8], _ context: @autoclosure () -> String) -> Agreement {
        let scanner = Scan.validate(bytes)
        // Difference 4: Foundation may read another encoding; the scanner reads UTF-8 only.
        if FoundationJSON.mayDetectOtherEncoding(bytes) {
            #expect(!scanner, "\(context()): scanner accepted non-UTF-8 input \(bytes.debugText)")
            return .otherEncoding
        }
        // Difference 3: Foundation skips a UTF-8 byte order mark; the scanner rejects it, and must
        // otherwise agree on the rest.
        if bytes.starts(with: FoundationJSON.byteOrderMark) {
            #expect(!scanner, "\(context()): scanner accepted a byte order mark \(bytes.debugText)")
            let rest = Array(bytes.dropFirst(3))
            if FoundationJSON.mayDetectOtherEncoding(rest) { return .byteOrderMark }
            _ = self.compare(rest, context() + " (after the byte order mark)")
            return .byteOrderMark
        }
        let foundation = FoundationJSON.accepts(bytes)
        if scanner == foundation { return .agreed(valid: scanner) }
        if foundation {
            // Difference 2: deeper than the scanner's limit (Foundation allows 512).
            let depth = FoundationJSON.nestingDepth(bytes)
            if depth > JSONScanner.maximumDepth && depth <= 512 { return .tooDeep }
            // Difference 1: trailing commas; without them the scanner must accept.
            let fixed = FoundationJSON.removingTrailingCommas(bytes)
            if fixed != bytes && Scan.validate(fixed) { return .trailingComma }
        } else {
            // Difference 5: a number overflowing a Double; with it replaced Foundation must accept.
            let fixed = FoundationJSON.replacingOverflowingNumbers(bytes)
            if fixed != bytes && FoundationJSON.accepts(fixed) { return .overflowingNumber }
        }
        let message =
            "\(context()): JSONScanner says \(scanner ? "valid" : "invalid"), JSONSerialization says "
            + "\(foundation ? "valid" : "invalid"): \(bytes.debugText)"
        Issue.record(Comment(rawValue: message))
        return .agreed(valid: scanner)
    }

    static let seeds = 0..<200 as Range<UInt64>

    @Test(arguments: seeds)
    func validateDocumentAgreesWithFoundation(seed: UInt64) {
        var valid = 0
        var invalid = 0
        var differences = 0
        for index in 0..<250 {
            var generator = JSONGenerator(SplitMix64(seed: seed, case: index))
            let context = "seed \(seed) case \(index)"
            var text: [UInt8]
            var plain = false
            switch generator.random.int(0..<40) {
            case 0:
                // Nesting around the limits of both parsers.
                let depth = generator.random.pick([127, 128, 129, 130, 200, 511, 512, 513])
                text = generator.nested(depth: depth - 1)
            case 1:
                text = FoundationJSON.byteOrderMark + generator.text(generator.value())
            case 2:
                // A trailing comma somewhere.
                text = generator.text(.array([generator.value(), generator.value()]))
                text.insert(UInt8(ascii: ","), at: text.lastIndex(of: UInt8(ascii: "]"))!)
            default:
                text = generator.text(generator.value())
                plain = true
            }
            // Every plain generated text is valid JSON (Foundation refusing only overflowing numbers).
            let agreement = JSONScannerTests.compare(text, context + " (generated)")
            if plain, case .agreed(let isValid) = agreement {
                #expect(isValid, "\(context): generated text rejected: \(text.debugText)")
            }
            for round in 0..<3 {
                let mutated = generator.mutate(text)
                switch JSONScannerTests.compare(mutated, context + " mutation \(round)") {
                case .agreed(let isValid): if isValid { valid += 1 } else { invalid += 1 }
                default: differences += 1
                }
            }
        }
        // The mutations must exercise both answers.
        #expect(valid > 30 && invalid > 250, "seed \(seed): \(valid) valid, \(invalid) invalid, \(differences) differences")
    }

    @Test func documentedDifferencesAreReachedByTheGenerator() {
        var reached: [String: Int] = [:]
        for seed in 0..<UInt64(20) {
            for index in 0..<300 {
                var generator = JSONGenerator(SplitMix64(seed: seed, case: index))
                let text = generator.text(generator.value())
                for _ in 0..<3 {
                    let agreement = JSONScannerTests.compare(generator.mutate(text), "seed \(seed) case \(index)")
                    if case .agreed = agreement { continue }
                    reached["\(agreement)", default: 0] += 1
                }
            }
        }
        // Mutations alone reach these differences (the others come from dedicated generated inputs).
        #expect(reached["trailingComma", default: 0] > 0, "\(reached)")
        #expect(reached["overflowingNumber", default: 0] > 0, "\(reached)")
    }

    // MARK: Property: scanObject reports exactly the top-level members

    @Test(arguments: seeds)
    func scanObjectReportsTheTopLevelMembers(seed: UInt64) throws {
        for index in 0..<30 {
            var generator = JSONGenerator(SplitMix64(seed: seed, case: index))
            let context = "seed \(seed) case \(index)"
            let value = generator.object(members: 0...8)
            guard case .object(let model) = value else { continue }
            var layout: [MemberLayout] = []
            let text = generator.text(value, layout: &layout)
            let (result, members) = Scan.object(text)
            try #require(result == .object, "\(context): \(text.debugText)")
            try #require(members.count == model.count, "\(context): \(members.count) members for \(model.count)")
            guard let parsed = FoundationJSON.parse(text) as? [String: Any] else {
                // Foundation refuses numbers that overflow a Double (difference 5).
                #expect(FoundationJSON.accepts(FoundationJSON.replacingOverflowingNumbers(text)), "\(context)")
                continue
            }
            var lastValue: [String: [UInt8]] = [:]
            // Keys as Foundation decodes them (difference 6): from the text without the U+FEFF it drops.
            let quirk = FoundationJSON.foundationDecodingQuirk(text)
            let (quirkResult, quirkMembers) = Scan.object(quirk)
            try #require(quirkResult == .object && quirkMembers.count == members.count, "\(context)")
            for (position, member) in members.enumerated() {
                let expected = layout[position]
                #expect(member.key.kind == .string)
                #expect(member.key.start..<member.key.end == expected.key, "\(context) member \(position) key span")
                #expect(member.value.start..<member.value.end == expected.value, "\(context) member \(position) value span")
                let rawKey = Array(text[member.key.start..<member.key.end])
                #expect(member.key.flag == rawKey.contains(UInt8(ascii: "\\")), "\(context) key flag")
                let key = Scan.string(text, member.key)
                #expect(key == Array(String(String.UnicodeScalarView(model[position].key)).utf8), "\(context) key bytes")
                let valueText = Scan.text(text, member.value)
                switch model[position].value {
                case .null: #expect(member.value.kind == .null)
                case .bool: #expect(member.value.kind == .boolean)
                case .number(let literal):
                    #expect(member.value.kind == .number)
                    #expect(member.value.flag == literal.contains(where: { ".eE".contains($0) }), "\(context) number flag")
                case .string:
                    #expect(member.value.kind == .string)
                    #expect(member.value.flag == valueText.dropFirst().dropLast().contains(UInt8(ascii: "\\")))
                case .array: #expect(member.value.kind == .array)
                case .object: #expect(member.value.kind == .object)
                }
                let foundationKey = Scan.string(quirk, quirkMembers[position].key)
                lastValue[String(decoding: foundationKey, as: UTF8.self)] = valueText
            }
            // Against Foundation: the same keys (after duplicates, the last one wins in both), the same values
            // (Foundation reads each value span as it reads the value inside the object).
            #expect(Set(parsed.keys) == Set(lastValue.keys), "\(context): keys")
            for (key, valueText) in lastValue {
                guard let reference = parsed[key] else { continue }
                let ours = try #require(FoundationJSON.parse(valueText), "\(context): the span of \(key) is not JSON")
                #expect(FoundationJSON.canonical(ours) == FoundationJSON.canonical(reference), "\(context): value of \(key)")
            }
        }
    }

    @Test(arguments: seeds)
    func scanObjectResultMatchesValidateDocument(seed: UInt64) {
        for index in 0..<100 {
            var generator = JSONGenerator(SplitMix64(seed: seed, case: index))
            let value = generator.random.chance(0.7) ? generator.object() : generator.value()
            var text = generator.text(value)
            if generator.random.chance(0.7) { text = generator.mutate(text) }
            let valid = Scan.validate(text)
            let isObject = text.first(where: { !FoundationJSON.isWhitespace($0) }) == UInt8(ascii: "{")
            let expected: JSONScanner.ScanResult = !valid ? .malformed : isObject ? .object : .notObject
            #expect(Scan.object(text).0 == expected, "seed \(seed) case \(index): \(text.debugText)")
        }
    }

    @Test func duplicateKeysAreAllReported() throws {
        let text = Array(#"{"a":1,"b":[true],"a":"x","\u0061":null, "a" : {"a":2}}"#.utf8)
        let (result, members) = Scan.object(text)
        #expect(result == .object)
        let keys = members.map { String(decoding: Scan.string(text, $0.key), as: UTF8.self) }
        #expect(keys == ["a", "b", "a", "a", "a"])
        #expect(members.map(\.value.kind) == [.number, .array, .string, .null, .object])
        #expect(members[3].key.flag)
        // Members of nested objects are not reported.
        #expect(Scan.object(Array(#"{"o":{"a":1,"b":2}}"#.utf8)).1.count == 1)
    }

    @Test func scanObjectKinds() {
        #expect(Scan.object(Array(" {} ".utf8)).0 == .object)
        #expect(Scan.object(Array("[]".utf8)).0 == .notObject)
        #expect(Scan.object(Array("\"{\"".utf8)).0 == .notObject)
        #expect(Scan.object(Array("1".utf8)).0 == .notObject)
        #expect(Scan.object(Array("".utf8)).0 == .malformed)
        #expect(Scan.object(Array("   ".utf8)).0 == .malformed)
        #expect(Scan.object(Array("{".utf8)).0 == .malformed)
        #expect(Scan.object(Array("{} x".utf8)).0 == .malformed)
        #expect(Scan.object(Array("{\"a\":1,}".utf8)).0 == .malformed)
        #expect(Scan.object(Array("[".utf8)).0 == .malformed)
    }

    // MARK: Property: unescape decodes as JSONSerialization does

    @Test(arguments: seeds)
    func unescapeDecodesLikeFoundation(seed: UInt64) throws {
        for index in 0..<60 {
            var generator = JSONGenerator(SplitMix64(seed: seed, case: index))
            let scalars = generator.scalars(maximumCount: 24)
            var text: [UInt8] = []
            _ = generator.write(string: scalars, to: &text)
            let context = "seed \(seed) case \(index): \(text.debugText)"
            let (result, members) = Scan.object(Array("{".utf8) + text + Array(":".utf8) + text + Array("}".utf8))
            try #require(result == .object, "\(context)")
            let reference = try #require(FoundationJSON.parse(text) as? String, "\(context)")
            let object = Array("{".utf8) + text + Array(":".utf8) + text + Array("}".utf8)
            let model = Array(String(String.UnicodeScalarView(scalars)).utf8)
            #expect(Scan.string(object, members[0].key) == model, "\(context): key")
            #expect(Scan.string(object, members[0].value) == model, "\(context): value")
            // unescape also decodes spans without escapes (it copies them).
            var copied: [UInt8] = []
            object.withUnsafeBytes { JSONScanner.unescape($0, members[0].value, into: &copied) }
            #expect(copied == model, "\(context): unescape")
            // Against Foundation, but for the U+FEFF it drops (difference 6).
            let quirk = FoundationJSON.foundationDecodingQuirk(text)
            let (_, quirkMembers) = Scan.object(Array("{\"k\":".utf8) + quirk + Array("}".utf8))
            let decoded = Scan.string(Array("{\"k\":".utf8) + quirk + Array("}".utf8), quirkMembers[0].value)
            #expect(decoded == Array(reference.utf8), "\(context): Foundation decodes \(Array(reference.utf8).debugText)")
        }
    }

    /// Difference 6, as found: Foundation drops one raw U+FEFF right after the opening quote or an
    /// escape sequence; the scanner keeps every character.
    static let byteOrderMarkStrings: [(text: String, foundation: String, scanner: String)] = [
        ("\"\u{FEFF}a\"", "a", "\u{FEFF}a"),
        ("\"\\n\u{FEFF}b\"", "\nb", "\n\u{FEFF}b"),
        ("\"\\u0041\u{FEFF}b\"", "Ab", "A\u{FEFF}b"),
        ("\"\u{FEFF}\u{FEFF}a\"", "\u{FEFF}a", "\u{FEFF}\u{FEFF}a"),
        ("\"a\u{FEFF}b\"", "a\u{FEFF}b", "a\u{FEFF}b"),
        ("\"\\ufeffb\"", "\u{FEFF}b", "\u{FEFF}b"),
    ]

    @Test(arguments: byteOrderMarkStrings)
    func foundationDropsAByteOrderMarkAfterAnEscape(_ text: String, _ foundation: String, _ scanner: String) throws {
        let bytes = Array(text.utf8)
        let parsed = try #require(FoundationJSON.parse(bytes) as? String)
        #expect(Array(parsed.utf8) == Array(foundation.utf8), "Foundation")
        let object = Array("{\"k\":".utf8) + bytes + Array("}".utf8)
        #expect(Scan.string(object, Scan.object(object).1[0].value) == Array(scanner.utf8), "JSONScanner")
        // The test's model of the quirk.
        let quirk = Array("{\"k\":".utf8) + FoundationJSON.foundationDecodingQuirk(bytes) + Array("}".utf8)
        #expect(Scan.string(quirk, Scan.object(quirk).1[0].value) == Array(foundation.utf8), "foundationDecodingQuirk")
    }

    @Test func unescapeEveryEscape() {
        let text = Array(#"{"k":"\"\\\/\b\f\n\r\t\u0000\u001F\u007f\u00e9\u20AC\uFFFF\ud83d\ude00\uDBFF\uDFFFx"}"#.utf8)
        let (_, members) = Scan.object(text)
        let expected = Array("\"\\/\u{8}\u{C}\n\r\t\u{0}\u{1F}\u{7F}é€\u{FFFF}😀\u{10FFFF}x".utf8)
        #expect(Scan.string(text, members[0].value) == expected)
    }
}
