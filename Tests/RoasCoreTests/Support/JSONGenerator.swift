/// A JSON value as the random generator builds it; numbers keep their literal text.
indirect enum JSONValue {
    case null
    case bool(Bool)
    case number(String)
    case string([Unicode.Scalar])
    case array([JSONValue])
    case object([(key: [Unicode.Scalar], value: JSONValue)])

    var isObject: Bool {
        if case .object = self { return true }
        return false
    }
}

/// Where the serializer put one member of the top-level object: the key's bytes between the quotes
/// and the value's bytes (for a string, between the quotes as `JSONSpan` reports it).
struct MemberLayout {
    var key: Range<Int>
    var value: Range<Int>
}

/// Random JSON values, texts and invalid mutations of them, all from one seeded generator.
struct JSONGenerator {
    var random: SplitMix64

    init(_ random: SplitMix64) {
        self.random = random
    }

    // MARK: Values

    mutating func value(depth: Int = 0, maximumDepth: Int = 5) -> JSONValue {
        let containers = depth < maximumDepth
        switch self.random.int(0..<(containers ? 10 : 7)) {
        case 0: return .null
        case 1: return .bool(self.random.chance(0.5))
        case 2, 3: return .number(self.numberLiteral())
        case 4, 5, 6: return .string(self.scalars())
        case 7, 8: return .array((0..<self.random.int(0...4)).map { _ in self.value(depth: depth + 1, maximumDepth: maximumDepth) })
        default: return self.object(depth: depth, maximumDepth: maximumDepth)
        }
    }

    mutating func object(depth: Int = 0, maximumDepth: Int = 5, members: ClosedRange<Int> = 0...5) -> JSONValue {
        var list: [(key: [Unicode.Scalar], value: JSONValue)] = []
        for _ in 0..<self.random.int(members) {
            // Keys come from a small pool half the time, so objects often repeat a key.
            let key: [Unicode.Scalar]
            if !list.isEmpty && self.random.chance(0.1) {
                key = self.random.pick(list).key
            } else if self.random.chance(0.5) {
                key = Array(self.random.pick(["a", "b", "id", "ts", "type", "é", "😀", "", "a\u{0}b", "\"\\/"]).unicodeScalars)
            } else {
                key = self.scalars()
            }
            list.append((key, self.value(depth: depth + 1, maximumDepth: maximumDepth)))
        }
        return .object(list)
    }

    /// Any number of the RFC 8259 grammar `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    mutating func numberLiteral() -> String {
        var text = self.random.chance(0.3) ? "-" : ""
        if self.random.chance(0.25) {
            text += "0"
        } else {
            text += self.digits(count: 1, nonZeroFirst: true)
            let more = self.random.chance(0.1) ? self.random.int(15...45) : self.random.int(0...6)
            text += self.digits(count: more)
        }
        if self.random.chance(0.4) {
            text += "." + self.digits(count: self.random.chance(0.1) ? self.random.int(15...40) : self.random.int(1...6))
        }
        if self.random.chance(0.3) {
            text += self.random.chance(0.5) ? "e" : "E"
            text += self.random.pick(["", "+", "-"])
            // Mostly exponents a Double can hold; sometimes ones that overflow it (a documented difference).
            let exponent = self.random.chance(0.03) ? self.random.int(300...2000) : self.random.int(0...40)
            text += (self.random.chance(0.1) ? "00" : "") + String(exponent)
        }
        return text
    }

    mutating func digits(count: Int, nonZeroFirst: Bool = false) -> String {
        var text = ""
        for index in 0..<count {
            let low = nonZeroFirst && index == 0 ? 1 : 0
            text.unicodeScalars.append(Unicode.Scalar(UInt8(0x30 + self.random.int(low...9))))
        }
        return text
    }

    /// A string's scalars: ASCII, the characters JSON must or may escape, and every UTF-8 length.
    mutating func scalars(maximumCount: Int = 8) -> [Unicode.Scalar] {
        (0..<self.random.int(0...maximumCount)).map { _ in self.scalar() }
    }

    mutating func scalar() -> Unicode.Scalar {
        let value: UInt32
        switch self.random.int(0..<10) {
        case 0, 1, 2: value = UInt32(self.random.int(0x20...0x7E))
        case 3: value = self.random.pick([0x22, 0x5C, 0x2F, 0x08, 0x0C, 0x0A, 0x0D, 0x09, 0x00, 0x1F, 0x7F])
        case 4: value = UInt32(self.random.int(0x00...0x1F))
        case 5: value = UInt32(self.random.int(0x80...0x7FF))
        case 6: value = self.random.chance(0.5) ? UInt32(self.random.int(0x800...0xD7FF)) : UInt32(self.random.int(0xE000...0xFFFF))
        case 7: value = UInt32(self.random.int(0x10000...0x10FFFF))
        case 8: value = self.random.pick([0xFEFF, 0xFFFD, 0xFFFF, 0xD7FF, 0xE000, 0x10000, 0x10FFFF, 0x2028, 0x0080, 0x07FF, 0x0800])
        default: value = UInt32(self.random.int(0x61...0x7A))
        }
        return Unicode.Scalar(value)!
    }

    // MARK: Text

    /// Serializes `value` with random whitespace and random spellings of every string character
    /// (raw, short escape, `\u` in either case, surrogate pairs). Reports the layout of the
    /// top-level object's members when `value` is an object.
    mutating func text(_ value: JSONValue, layout: inout [MemberLayout]) -> [UInt8] {
        var output: [UInt8] = []
        self.space(&output)
        self.write(value, to: &output, layout: &layout, topLevel: true)
        self.space(&output)
        return output
    }

    mutating func text(_ value: JSONValue) -> [UInt8] {
        var layout: [MemberLayout] = []
        return self.text(value, layout: &layout)
    }

    mutating func space(_ output: inout [UInt8]) {
        guard self.random.chance(0.3) else { return }
        for _ in 0..<self.random.int(1...3) { output.append(self.random.pick([0x20, 0x0A, 0x0D, 0x09])) }
    }

    private mutating func write(_ value: JSONValue, to output: inout [UInt8], layout: inout [MemberLayout], topLevel: Bool) {
        switch value {
        case .null: output += Array("null".utf8)
        case .bool(let flag): output += Array((flag ? "true" : "false").utf8)
        case .number(let literal): output += Array(literal.utf8)
        case .string(let scalars): _ = self.write(string: scalars, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            self.space(&output)
            for (index, element) in elements.enumerated() {
                if index > 0 {
                    output.append(UInt8(ascii: ","))
                    self.space(&output)
                }
                var ignored: [MemberLayout] = []
                self.write(element, to: &output, layout: &ignored, topLevel: false)
                self.space(&output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            self.space(&output)
            for (index, member) in members.enumerated() {
                if index > 0 {
                    output.append(UInt8(ascii: ","))
                    self.space(&output)
                }
                let key = self.write(string: member.key, to: &output)
                self.space(&output)
                output.append(UInt8(ascii: ":"))
                self.space(&output)
                var start = output.count
                var ignored: [MemberLayout] = []
                self.write(member.value, to: &output, layout: &ignored, topLevel: false)
                var end = output.count
                if case .string = member.value {
                    start += 1
                    end -= 1
                }
                if topLevel { layout.append(MemberLayout(key: key, value: start..<end)) }
                self.space(&output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    /// Writes a quoted string; returns the range between the quotes.
    mutating func write(string scalars: [Unicode.Scalar], to output: inout [UInt8]) -> Range<Int> {
        output.append(UInt8(ascii: "\""))
        let start = output.count
        for scalar in scalars { self.write(scalar: scalar, to: &output) }
        let end = output.count
        output.append(UInt8(ascii: "\""))
        return start..<end
    }

    mutating func write(scalar: Unicode.Scalar, to output: inout [UInt8]) {
        let value = scalar.value
        let short: UInt8? =
            switch value {
            case 0x22: UInt8(ascii: "\"")
            case 0x5C: UInt8(ascii: "\\")
            case 0x2F: UInt8(ascii: "/")
            case 0x08: UInt8(ascii: "b")
            case 0x0C: UInt8(ascii: "f")
            case 0x0A: UInt8(ascii: "n")
            case 0x0D: UInt8(ascii: "r")
            case 0x09: UInt8(ascii: "t")
            default: nil
            }
        let mustEscape = value < 0x20 || value == 0x22 || value == 0x5C
        if !mustEscape && self.random.chance(0.7) {
            output += Array(String(scalar).utf8)
        } else if let short, self.random.chance(0.6) {
            output += [UInt8(ascii: "\\"), short]
        } else if value >= 0x10000 {
            let offset = value - 0x10000
            self.writeHex(0xD800 + (offset >> 10), to: &output)
            self.writeHex(0xDC00 + (offset & 0x3FF), to: &output)
        } else {
            self.writeHex(value, to: &output)
        }
    }

    mutating func writeHex(_ unit: UInt32, to output: inout [UInt8]) {
        let upper = self.random.chance(0.5)
        let digits = Array((upper ? "0123456789ABCDEF" : "0123456789abcdef").utf8)
        output += [UInt8(ascii: "\\"), UInt8(ascii: "u")]
        for shift in stride(from: 12, through: 0, by: -4) { output.append(digits[Int(unit >> UInt32(shift) & 0xF)]) }
    }

    // MARK: Invalid texts

    /// Bytes that make interesting edits: structure, escapes, number parts and bad UTF-8.
    static let interestingBytes: [UInt8] =
        Array("{}[]:,\"\\/ubfnrtu0123456789-+.eEaxlsTN \t\n\r".utf8)
        + [0x00, 0x01, 0x1F, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]

    /// One to three random edits: delete, insert, replace, flip a bit, truncate, duplicate a range.
    mutating func mutate(_ bytes: [UInt8]) -> [UInt8] {
        var bytes = bytes
        for _ in 0..<self.random.int(1...3) {
            let count = bytes.count
            switch self.random.int(0..<8) {
            case 0 where count > 0:
                bytes.remove(at: self.random.int(0..<count))
            case 1:
                let insert = self.random.chance(0.8) ? self.random.pick(JSONGenerator.interestingBytes) : self.random.byte()
                bytes.insert(insert, at: self.random.int(0...count))
            case 2 where count > 0:
                bytes[self.random.int(0..<count)] = self.random.pick(JSONGenerator.interestingBytes)
            case 3 where count > 0:
                bytes[self.random.int(0..<count)] ^= 1 << UInt8(self.random.int(0..<8))
            case 4 where count > 0:
                bytes.removeLast(self.random.int(1...min(count, 4)))
            case 5 where count > 1:
                let start = self.random.int(0..<count)
                let end = self.random.int(start...min(count, start + 8))
                bytes.insert(contentsOf: bytes[start..<end], at: self.random.int(0...count))
            case 6 where count > 1:
                let start = self.random.int(0..<count)
                bytes.removeSubrange(start..<min(count, start + self.random.int(1...6)))
            default:
                // A single token that is almost right.
                let token = self.random.pick([
                    "\\u", "\\ud800", "\\udc00", "\\uD83D\\uDE00", "\\ud83d\\u0041", "\\x", "\\u12", "01", "-", "1.",
                    ".5", "1e", "1e+", "tru", "nul", "falsee", ",]", ",}", "[,", "{,", ":", "\"", "\u{FEFF}", "1e999",
                ])
                bytes.insert(contentsOf: Array(token.utf8), at: self.random.int(0...count))
            }
        }
        return bytes
    }

    /// `depth` nested arrays/objects around a scalar.
    mutating func nested(depth: Int) -> [UInt8] {
        var open: [UInt8] = []
        var close: [UInt8] = []
        for _ in 0..<depth {
            if self.random.chance(0.5) {
                open += Array("[".utf8)
                close.insert(UInt8(ascii: "]"), at: 0)
            } else {
                open += Array("{\"k\":".utf8)
                close.insert(UInt8(ascii: "}"), at: 0)
            }
        }
        return open + Array((self.random.chance(0.5) ? "1" : "[]").utf8) + close
    }
}
