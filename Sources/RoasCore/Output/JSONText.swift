/// Writing JSON text by hand, for the output formats.
public enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var output = [UInt8]()
        output.reserveCapacity(text.utf8.count + 2)
        self.appendQuoted(text.utf8, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends bytes as a JSON string literal; invalid UTF-8 becomes U+FFFD.
    public static func appendQuoted<Bytes: Collection<UInt8>>(_ bytes: Bytes, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        var needsRepair = false
        for byte in bytes where byte >= 0x80 {
            needsRepair = true
            break
        }
        if needsRepair {
            let repaired = String(decoding: bytes, as: UTF8.self)
            for byte in repaired.utf8 { self.appendEscaped(byte, to: &output) }
        } else {
            for byte in bytes { self.appendEscaped(byte, to: &output) }
        }
        output.append(UInt8(ascii: "\""))
    }

    @inline(__always)
    static func appendEscaped(_ byte: UInt8, to output: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0..<0x20:
            let hex = Array("0123456789abcdef".utf8)
            output.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 15)]])
        default: output.append(byte)
        }
    }

    public static func append(_ text: String, to output: inout [UInt8]) {
        output.append(contentsOf: text.utf8)
    }

    /// Appends literal text without making a `String` (rows are written a million at a time).
    @inline(__always)
    static func append(_ text: StaticString, to output: inout [UInt8]) {
        output.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends `value` in decimal, as `String(value)` writes it, left-padded with zeros to `width`
    /// characters (a minus sign counting as one).
    @inline(__always)
    static func append(_ value: Int64, width: Int = 0, to output: inout [UInt8]) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var magnitude = value.magnitude
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                count += 1
                buffer[24 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                count += 1
                buffer[24 - count] = UInt8(ascii: "-")
            }
            for _ in count..<max(count, width) { output.append(UInt8(ascii: "0")) }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }
}
