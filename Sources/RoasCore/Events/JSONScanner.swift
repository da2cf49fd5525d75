/// Where a JSON value sits in a line, and what kind it is.
public struct JSONSpan: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case absent, string, number, object, array, boolean, null
    }

    public var kind: Kind = .absent
    /// For strings: the first byte after the opening quote; otherwise the value's first byte.
    public var start: Int = 0
    /// Exclusive: for strings, the closing quote.
    public var end: Int = 0
    /// Strings: the value holds a backslash escape. Numbers: the literal has a fraction or exponent.
    public var flag: Bool = false

    public init() {}
}

/// A strict RFC 8259 scanner for one JSON text held in memory, built for NDJSON lines.
///
/// It validates the whole text (grammar, escapes, `\u` surrogate pairs, UTF-8, control characters,
/// numbers, nesting up to `maximumDepth`) in one pass without allocating, and reports the spans of
/// the members of the top-level object whose keys the caller asks for. It does not build values.
///
/// Choices where RFC 8259 leaves room: an unpaired surrogate escape (`"\ud800"`) and invalid UTF-8
/// are errors (RFC 8259 section 8.2 calls such text non-interoperable); nesting deeper than
/// `maximumDepth` is an error; duplicate keys are reported to the caller, which decides.
public struct JSONScanner {
    public static let maximumDepth = 128

    @usableFromInline let base: UnsafePointer<UInt8>
    @usableFromInline let end: Int
    @usableFromInline var index: Int

    @inlinable
    public init(_ bytes: UnsafeRawBufferPointer) {
        // An empty buffer may have no base address; any valid pointer will do as nothing is read.
        self.base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        self.end = bytes.count
        self.index = 0
    }

    @inline(__always) @usableFromInline
    mutating func skipWhitespace() {
        while self.index < self.end {
            let byte = self.base[self.index]
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            self.index += 1
        }
    }

    /// Validates the whole text as any JSON value.
    public mutating func validateDocument() -> Bool {
        self.skipWhitespace()
        guard self.scanValue(depth: 0) else { return false }
        self.skipWhitespace()
        return self.index == self.end
    }

    /// Validates the whole text as a JSON object, calling `member` with each key span (raw, between the
    /// quotes; `hasEscapes` set when it holds a backslash) and value span.
    ///
    /// - Returns: `.object` when the text is a valid object, `.notObject` when it is valid JSON of
    ///   another kind, `.malformed` otherwise.
    @inline(__always)
    public mutating func scanObject(
        _ member: (_ key: JSONSpan, _ value: JSONSpan) -> Void
    ) -> ScanResult {
        self.skipWhitespace()
        guard self.index < self.end else { return .malformed }
        guard self.base[self.index] == UInt8(ascii: "{") else {
            return self.validateDocument() ? .notObject : .malformed
        }
        self.index += 1
        self.skipWhitespace()
        guard self.index < self.end else { return .malformed }
        if self.base[self.index] == UInt8(ascii: "}") {
            self.index += 1
        } else {
            while true {
                guard self.index < self.end, self.base[self.index] == UInt8(ascii: "\"") else { return .malformed }
                var key = JSONSpan()
                guard self.scanString(into: &key) else { return .malformed }
                self.skipWhitespace()
                guard self.index < self.end, self.base[self.index] == UInt8(ascii: ":") else { return .malformed }
                self.index += 1
                self.skipWhitespace()
                var value = JSONSpan()
                guard self.scanValue(into: &value, depth: 1) else { return .malformed }
                member(key, value)
                self.skipWhitespace()
                guard self.index < self.end else { return .malformed }
                let byte = self.base[self.index]
                self.index += 1
                if byte == UInt8(ascii: ",") {
                    self.skipWhitespace()
                    continue
                }
                guard byte == UInt8(ascii: "}") else { return .malformed }
                break
            }
        }
        self.skipWhitespace()
        return self.index == self.end ? .object : .malformed
    }

    public enum ScanResult: Sendable, Equatable {
        case object, notObject, malformed
    }

    @usableFromInline
    mutating func scanValue(depth: Int) -> Bool {
        var span = JSONSpan()
        return self.scanValue(into: &span, depth: depth)
    }

    @usableFromInline
    mutating func scanValue(into span: inout JSONSpan, depth: Int) -> Bool {
        guard self.index < self.end else { return false }
        let byte = self.base[self.index]
        switch byte {
        case UInt8(ascii: "\""):
            return self.scanString(into: &span)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            span.kind = .number
            span.start = self.index
            guard self.scanNumber(fractional: &span.flag) else { return false }
            span.end = self.index
            return true
        case UInt8(ascii: "{"):
            guard depth < JSONScanner.maximumDepth else { return false }
            span.kind = .object
            span.start = self.index
            guard self.skipObject(depth: depth + 1) else { return false }
            span.end = self.index
            return true
        case UInt8(ascii: "["):
            guard depth < JSONScanner.maximumDepth else { return false }
            span.kind = .array
            span.start = self.index
            guard self.skipArray(depth: depth + 1) else { return false }
            span.end = self.index
            return true
        case UInt8(ascii: "t"):
            span.kind = .boolean
            span.start = self.index
            guard self.literal("true") else { return false }
            span.end = self.index
            return true
        case UInt8(ascii: "f"):
            span.kind = .boolean
            span.start = self.index
            guard self.literal("false") else { return false }
            span.end = self.index
            return true
        case UInt8(ascii: "n"):
            span.kind = .null
            span.start = self.index
            guard self.literal("null") else { return false }
            span.end = self.index
            return true
        default:
            return false
        }
    }

    @inline(__always)
    mutating func literal(_ word: StaticString) -> Bool {
        let length = word.utf8CodeUnitCount
        guard self.end - self.index >= length else { return false }
        for offset in 0..<length where self.base[self.index + offset] != word.utf8Start[offset] { return false }
        self.index += length
        return true
    }

    mutating func skipObject(depth: Int) -> Bool {
        self.index += 1
        self.skipWhitespace()
        guard self.index < self.end else { return false }
        if self.base[self.index] == UInt8(ascii: "}") {
            self.index += 1
            return true
        }
        while true {
            guard self.index < self.end, self.base[self.index] == UInt8(ascii: "\"") else { return false }
            var key = JSONSpan()
            guard self.scanString(into: &key) else { return false }
            self.skipWhitespace()
            guard self.index < self.end, self.base[self.index] == UInt8(ascii: ":") else { return false }
            self.index += 1
            self.skipWhitespace()
            guard self.scanValue(depth: depth) else { return false }
            self.skipWhitespace()
            guard self.index < self.end else { return false }
            let byte = self.base[self.index]
            self.index += 1
            if byte == UInt8(ascii: "}") { return true }
            guard byte == UInt8(ascii: ",") else { return false }
            self.skipWhitespace()
        }
    }

    mutating func skipArray(depth: Int) -> Bool {
        self.index += 1
        self.skipWhitespace()
        guard self.index < self.end else { return false }
        if self.base[self.index] == UInt8(ascii: "]") {
            self.index += 1
            return true
        }
        while true {
            guard self.scanValue(depth: depth) else { return false }
            self.skipWhitespace()
            guard self.index < self.end else { return false }
            let byte = self.base[self.index]
            self.index += 1
            if byte == UInt8(ascii: "]") { return true }
            guard byte == UInt8(ascii: ",") else { return false }
            self.skipWhitespace()
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    @inline(__always) @usableFromInline
    mutating func scanNumber(fractional: inout Bool) -> Bool {
        if self.base[self.index] == UInt8(ascii: "-") {
            self.index += 1
            guard self.index < self.end else { return false }
        }
        let first = self.base[self.index]
        if first == UInt8(ascii: "0") {
            self.index += 1
        } else if first >= UInt8(ascii: "1") && first <= UInt8(ascii: "9") {
            self.index += 1
            self.skipDigits()
        } else {
            return false
        }
        if self.index < self.end && self.base[self.index] == UInt8(ascii: ".") {
            fractional = true
            self.index += 1
            guard self.skipDigits() > 0 else { return false }
        }
        if self.index < self.end && (self.base[self.index] | 0x20) == UInt8(ascii: "e") {
            fractional = true
            self.index += 1
            guard self.index < self.end else { return false }
            if self.base[self.index] == UInt8(ascii: "+") || self.base[self.index] == UInt8(ascii: "-") {
                self.index += 1
            }
            guard self.skipDigits() > 0 else { return false }
        }
        return true
    }

    @inline(__always) @discardableResult
    mutating func skipDigits() -> Int {
        let start = self.index
        while self.index < self.end {
            let byte = self.base[self.index]
            guard byte >= 0x30 && byte <= 0x39 else { break }
            self.index += 1
        }
        return self.index - start
    }

    /// Scans a string whose opening quote is at `index`.
    @inline(__always) @usableFromInline
    mutating func scanString(into span: inout JSONSpan) -> Bool {
        self.index += 1
        span.kind = .string
        span.start = self.index
        while self.index < self.end {
            let byte = self.base[self.index]
            if byte == UInt8(ascii: "\"") {
                span.end = self.index
                self.index += 1
                return true
            }
            if byte >= 0x20 && byte < 0x80 && byte != UInt8(ascii: "\\") {
                self.index += 1
                continue
            }
            if byte == UInt8(ascii: "\\") {
                span.flag = true
                guard self.scanEscape() else { return false }
                continue
            }
            if byte < 0x20 { return false }
            guard self.scanMultibyte() else { return false }
        }
        return false
    }

    mutating func scanEscape() -> Bool {
        self.index += 1
        guard self.index < self.end else { return false }
        switch self.base[self.index] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            self.index += 1
            return true
        case UInt8(ascii: "u"):
            self.index += 1
            guard let unit = self.hex4() else { return false }
            if unit >= 0xDC00 && unit <= 0xDFFF { return false }
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard self.end - self.index >= 6, self.base[self.index] == UInt8(ascii: "\\"),
                    self.base[self.index + 1] == UInt8(ascii: "u")
                else { return false }
                self.index += 2
                guard let low = self.hex4(), low >= 0xDC00 && low <= 0xDFFF else { return false }
            }
            return true
        default:
            return false
        }
    }

    @inline(__always)
    mutating func hex4() -> UInt32? {
        guard self.end - self.index >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = JSONScanner.hexValue(self.base[self.index]) else { return nil }
            value = value << 4 | digit
            self.index += 1
        }
        return value
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - 0x30)
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - 0x61 + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - 0x41 + 10)
        default: return nil
        }
    }

    /// Validates one UTF-8 sequence of two to four bytes (no overlongs, surrogates or values past U+10FFFF).
    mutating func scanMultibyte() -> Bool {
        let lead = self.base[self.index]
        let remaining = self.end - self.index
        @inline(__always) func continuation(_ offset: Int) -> Bool {
            offset < remaining && self.base[self.index + offset] & 0xC0 == 0x80
        }
        switch lead {
        case 0xC2...0xDF:
            guard continuation(1) else { return false }
            self.index += 2
        case 0xE0...0xEF:
            guard continuation(1), continuation(2) else { return false }
            let second = self.base[self.index + 1]
            if lead == 0xE0 && second < 0xA0 { return false }
            if lead == 0xED && second > 0x9F { return false }
            self.index += 3
        case 0xF0...0xF4:
            guard continuation(1), continuation(2), continuation(3) else { return false }
            let second = self.base[self.index + 1]
            if lead == 0xF0 && second < 0x90 { return false }
            if lead == 0xF4 && second > 0x8F { return false }
            self.index += 4
        default:
            return false
        }
        return true
    }
}

extension JSONScanner {
    /// Writes the decoded bytes of a string span that holds escapes to `output` (the span was validated).
    public static func unescape(_ bytes: UnsafeRawBufferPointer, _ span: JSONSpan, into output: inout [UInt8]) {
        var index = span.start
        while index < span.end {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex(bytes, index)
                index += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    let low = hex(bytes, index + 2)
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                appendUTF8(scalar, to: &output)
            default: output.append(escape)
            }
        }
    }

    static func hex(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 { value = value << 4 | (hexValue(bytes[at + offset]) ?? 0) }
        return value
    }

    static func appendUTF8(_ scalar: UInt32, to output: inout [UInt8]) {
        switch scalar {
        case 0..<0x80:
            output.append(UInt8(scalar))
        case 0x80..<0x800:
            output.append(UInt8(0xC0 | scalar >> 6))
            output.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            output.append(UInt8(0xE0 | scalar >> 12))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        default:
            output.append(UInt8(0xF0 | scalar >> 18))
            output.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
