/// Parses and prints durations such as `5s`, `1h30m`, `7d`, `250ms`, `0` as milliseconds.
public enum DurationText {
    /// Milliseconds of `text`, or nil when it is not a duration.
    ///
    /// Units: `ms`, `s`, `m`, `h`, `d`, `w`; parts add up (`1h30m`). A bare `0` is zero.
    public static func milliseconds(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        var total: Int64 = 0
        var number: Int64? = nil
        var bytes = Array(text.utf8)[...]
        guard !bytes.isEmpty else { return nil }
        while let byte = bytes.first {
            if byte >= 0x30 && byte <= 0x39 {
                let (shifted, overflowA) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (next, overflowB) = shifted.addingReportingOverflow(Int64(byte - 0x30))
                guard !overflowA && !overflowB else { return nil }
                number = next
                bytes = bytes.dropFirst()
                continue
            }
            guard let value = number else { return nil }
            let unit: Int64
            if bytes.starts(with: "ms".utf8) {
                unit = 1
                bytes = bytes.dropFirst(2)
            } else {
                switch byte {
                case UInt8(ascii: "s"): unit = 1000
                case UInt8(ascii: "m"): unit = 60_000
                case UInt8(ascii: "h"): unit = 3_600_000
                case UInt8(ascii: "d"): unit = 86_400_000
                case UInt8(ascii: "w"): unit = 604_800_000
                default: return nil
                }
                bytes = bytes.dropFirst()
            }
            let (part, overflowA) = value.multipliedReportingOverflow(by: unit)
            let (sum, overflowB) = total.addingReportingOverflow(part)
            guard !overflowA && !overflowB else { return nil }
            total = sum
            number = nil
        }
        guard number == nil else { return nil }
        return total
    }

    /// The shortest text for `milliseconds` in the units above (`90m` prints as `1h30m`).
    public static func text(_ milliseconds: Int64) -> String {
        if milliseconds == 0 { return "0" }
        var rest = milliseconds
        var text = ""
        for (unit, name) in [(Int64(86_400_000), "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")] {
            if rest >= unit {
                text += "\(rest / unit)\(name)"
                rest %= unit
            }
        }
        return text
    }
}
