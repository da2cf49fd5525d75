/// Event time: RFC 3339 parsing and UTC printing of epoch milliseconds, without Foundation.
public enum Timestamp {
    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    @inline(__always)
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let monthIndex = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysInMonth(year: Int64, month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Epoch milliseconds of an RFC 3339 date-time (`2026-11-21T10:00:00.5+01:00`), or nil.
    ///
    /// `T`/`t` separate date and time; the offset is `Z`, `z` or `±HH:MM`. A fraction may have any
    /// number of digits and is truncated to the millisecond. A leap second (`:60`) counts as the
    /// following second, as POSIX time does.
    public static func parseRFC3339(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        let count = bytes.count
        guard count >= 20 else { return nil }
        @inline(__always) func digits(_ at: Int, _ length: Int) -> Int64? {
            var value: Int64 = 0
            for index in at..<(at + length) {
                let byte = bytes[index]
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"), let month = digits(5, 2),
            bytes[7] == UInt8(ascii: "-"), let day = digits(8, 2),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
            bytes[16] == UInt8(ascii: ":"), let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month), hour <= 23,
            minute <= 59, second <= 60
        else { return nil }
        var index = 19
        var millisecond: Int64 = 0
        if index < count && bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                if index - start < 3 { millisecond = millisecond * 10 + Int64(bytes[index] - 0x30) }
                index += 1
            }
            guard index > start else { return nil }
            for _ in 0..<max(0, 3 - (index - start)) { millisecond *= 10 }
        }
        guard index < count else { return nil }
        var offsetMinutes: Int64 = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let negative = bytes[index] == UInt8(ascii: "-")
            guard index + 6 == count, let offsetHour = digits(index + 1, 2), bytes[index + 3] == UInt8(ascii: ":"),
                let offsetMinute = digits(index + 4, 2), offsetHour <= 23, offsetMinute <= 59
            else { return nil }
            offsetMinutes = (offsetHour * 60 + offsetMinute) * (negative ? -1 : 1)
            index += 6
        default:
            return nil
        }
        guard index == count else { return nil }
        let seconds =
            days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
            - offsetMinutes * 60
        return seconds * 1000 + millisecond
    }

    /// `2026-11-21T10:00:00Z` for whole seconds, `2026-11-21T10:00:00.250Z` otherwise.
    public static func format(milliseconds: Int64) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(24)
        self.append(milliseconds: milliseconds, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends `format(milliseconds:)`'s bytes.
    static func append(milliseconds: Int64, to output: inout [UInt8]) {
        var seconds = milliseconds / 1000
        var millisecond = milliseconds % 1000
        if millisecond < 0 {
            millisecond += 1000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = civil(days: days)
        JSONText.append(year, width: 4, to: &output)
        output.append(UInt8(ascii: "-"))
        JSONText.append(month, width: 2, to: &output)
        output.append(UInt8(ascii: "-"))
        JSONText.append(day, width: 2, to: &output)
        output.append(UInt8(ascii: "T"))
        JSONText.append(secondOfDay / 3600, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        JSONText.append(secondOfDay / 60 % 60, width: 2, to: &output)
        output.append(UInt8(ascii: ":"))
        JSONText.append(secondOfDay % 60, width: 2, to: &output)
        if millisecond != 0 {
            output.append(UInt8(ascii: "."))
            JSONText.append(millisecond, width: 3, to: &output)
        }
        output.append(UInt8(ascii: "Z"))
    }
}
