import Foundation

@testable import RoasCore

/// Foundation's `JSONSerialization` as the reference for `JSONScanner`, and the documented places
/// where the two deliberately differ.
///
/// What Foundation on Linux (swift-corelibs-foundation over swift-foundation's parser, Swift 6.3) does,
/// checked by `JSONScannerTests.foundationBehaviour`:
/// - agrees with the scanner on unpaired surrogate escapes (`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`)
///   and on invalid UTF-8 (overlongs, encoded surrogates, bytes past U+10FFFF, truncated sequences):
///   both reject;
/// - agrees on leading zeros (`01`, `-01`), `1.`, `.5`, `1e`, `+1`, control characters in strings,
///   bad escapes, comments, `NaN`/`Infinity`, trailing garbage: both reject;
/// - is more lenient where the scanner follows RFC 8259 strictly (the scanner rejects, Foundation accepts):
///   1. trailing commas: `[1,]`, `{"a":1 , }`;
///   2. nesting: Foundation allows 512 levels, the scanner `JSONScanner.maximumDepth` (128);
///   3. a UTF-8 byte order mark before the text (RFC 8259 §8.1: implementations must not add one);
///   4. other encodings: Foundation detects UTF-16/UTF-32 from NUL bytes among the first four bytes or
///      a `FE FF`/`FF FE` mark; the scanner reads UTF-8 only (RFC 8259 §8.1);
/// - is stricter where the scanner checks only the grammar: Foundation rejects a number whose value
///   overflows a `Double` (`1e400`, "not representable in Swift"); the scanner accepts it, leaving
///   the range to the caller (`EventParser` rejects such amounts and timestamps itself);
/// - decodes strings differently in one case (a Foundation bug; `JSONScanner.unescape` keeps the
///   character, as RFC 8259 requires): 6. a raw (unescaped) U+FEFF right after the opening quote or
///   right after an escape sequence is dropped (`"\n<U+FEFF>b"` reads as "\nb"; `"a<U+FEFF>b"` and
///   `"\ufeff"` keep it). `foundationDecodingQuirk` removes exactly those, so decoded strings are
///   compared as `unescape(quirk(text)) == Foundation(text)` and `unescape(text) == the generated value`.
enum FoundationJSON {
    static func accepts(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
    }

    static func parse(_ bytes: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    /// Canonical bytes of a parsed value, to compare two parsed values.
    static func canonical(_ value: Any) -> [UInt8]? {
        guard let data = try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys]) else { return nil }
        return Array(data)
    }

    static let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]

    /// True when Foundation might read the bytes as UTF-16 or UTF-32 (difference 4).
    static func mayDetectOtherEncoding(_ bytes: [UInt8]) -> Bool {
        bytes.prefix(4).contains(0) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE])
    }

    /// The deepest nesting of arrays and objects, counting brackets outside strings (exact for valid texts).
    static func nestingDepth(_ bytes: [UInt8]) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for byte in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// Calls `body` with each byte and whether it is outside a string (quotes count as inside).
    private static func forEachByte(_ bytes: [UInt8], _ body: (Int, Bool) -> Void) {
        var inString = false
        var escaped = false
        for (index, byte) in bytes.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
                body(index, false)
            } else if byte == UInt8(ascii: "\"") {
                inString = true
                body(index, false)
            } else {
                body(index, true)
            }
        }
    }

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// The text without commas that are followed (after whitespace) by `]` or `}` (difference 1).
    static func removingTrailingCommas(_ bytes: [UInt8]) -> [UInt8] {
        var drop = Set<Int>()
        self.forEachByte(bytes) { index, outside in
            guard outside, bytes[index] == UInt8(ascii: ",") else { return }
            var next = index + 1
            while next < bytes.count && self.isWhitespace(bytes[next]) { next += 1 }
            if next < bytes.count && (bytes[next] == UInt8(ascii: "]") || bytes[next] == UInt8(ascii: "}")) {
                drop.insert(index)
            }
        }
        return bytes.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
    }

    /// The text without the raw U+FEFF characters Foundation drops when decoding strings (difference 6):
    /// one right after each opening quote and each escape sequence.
    static func foundationDecodingQuirk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        var inString = false
        func dropMark() {
            if index + 2 < bytes.count && bytes[index] == 0xEF && bytes[index + 1] == 0xBB && bytes[index + 2] == 0xBF {
                index += 3
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            output.append(byte)
            index += 1
            if !inString {
                if byte == UInt8(ascii: "\"") {
                    inString = true
                    dropMark()
                }
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            } else if byte == UInt8(ascii: "\\") && index < bytes.count {
                let escape = bytes[index]
                let length = escape == UInt8(ascii: "u") ? 5 : 1
                output += bytes[index..<min(bytes.count, index + length)]
                index += length
                dropMark()
            }
        }
        return output
    }

    /// The text with every number literal whose value overflows a `Double` replaced by `0` (difference 5).
    static func replacingOverflowingNumbers(_ bytes: [UInt8]) -> [UInt8] {
        var outside = [Bool](repeating: false, count: bytes.count)
        self.forEachByte(bytes) { index, isOutside in outside[index] = isOutside }
        var output: [UInt8] = []
        var index = 0
        let numberBytes = Set(Array("0123456789+-.eE".utf8))
        while index < bytes.count {
            let byte = bytes[index]
            guard outside[index], byte == UInt8(ascii: "-") || (byte >= 0x30 && byte <= 0x39) else {
                output.append(byte)
                index += 1
                continue
            }
            var end = index
            while end < bytes.count && outside[end] && numberBytes.contains(bytes[end]) { end += 1 }
            let literal = String(decoding: bytes[index..<end], as: UTF8.self)
            if let value = Double(literal), value.isInfinite {
                output.append(UInt8(ascii: "0"))
            } else {
                output += bytes[index..<end]
            }
            index = end
        }
        return output
    }
}

/// Runs the scanner over byte arrays.
enum Scan {
    static func validate(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var scanner = JSONScanner(buffer)
            return scanner.validateDocument()
        }
    }

    struct Member {
        var key: JSONSpan
        var value: JSONSpan
    }

    static func object(_ bytes: [UInt8]) -> (JSONScanner.ScanResult, [Member]) {
        bytes.withUnsafeBytes { buffer in
            var scanner = JSONScanner(buffer)
            var members: [Member] = []
            let result = scanner.scanObject { key, value in members.append(Member(key: key, value: value)) }
            return (result, members)
        }
    }

    /// The decoded bytes of a string span.
    static func string(_ bytes: [UInt8], _ span: JSONSpan) -> [UInt8] {
        guard span.flag else { return Array(bytes[span.start..<span.end]) }
        return bytes.withUnsafeBytes { buffer in
            var output: [UInt8] = []
            JSONScanner.unescape(buffer, span, into: &output)
            return output
        }
    }

    /// A value's whole text (quotes included for strings).
    static func text(_ bytes: [UInt8], _ span: JSONSpan) -> [UInt8] {
        span.kind == .string ? Array(bytes[(span.start - 1)...span.end]) : Array(bytes[span.start..<span.end])
    }
}
