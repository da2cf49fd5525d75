/// A numeric field of a row, as an alert rule names it (the row's JSON member name).
public enum RowField: String, CaseIterable, Sendable {
    case views, clicks, conversions, revenue, refunds, spend, roas, ctr, cvr, aov, cpa
    case netRevenue = "net_revenue"
    case roi, reach, engagements
    case engagementRate = "engagement_rate"
    case leads, cpl

    /// The field's value in `row` as its JSON shows it (money and conversions in units, not
    /// micro-units), or nil when the row's field is null.
    public func value(of row: Row) -> Double? {
        let f = row.figures
        let unit = Double(Micros.one)
        switch self {
        case .views: return Double(f.views)
        case .clicks: return Double(f.clicks)
        case .conversions: return Double(f.conversions) / unit
        case .revenue: return Double(f.revenue) / unit
        case .refunds: return Double(f.refunds) / unit
        case .spend: return Double(f.spend) / unit
        case .roas: return row.roas
        case .ctr: return row.ctr
        case .cvr: return row.cvr
        case .aov: return row.aov
        case .cpa: return row.cpa
        case .netRevenue: return Double(row.netRevenue) / unit
        case .roi: return row.roi
        case .reach: return Double(row.reach)
        case .engagements: return Double(f.engagements)
        case .engagementRate: return row.engagementRate
        case .leads: return Double(f.leads) / unit
        case .cpl: return row.cpl
        }
    }
}

/// An alert rule (`--alert`): comparisons of row fields with numbers joined by `and`, optionally
/// `for N windows` (that many consecutive final windows of the same key), e.g.
/// `roas < 1.0 for 2 windows`, `cpa > 40`, `spend > 500 and conversions == 0`.
///
/// A comparison with a null field (a ratio whose denominator is 0) is false.
public struct AlertRule: Sendable, Equatable {
    public enum Comparison: String, Sendable, CaseIterable {
        case lessOrEqual = "<="
        case greaterOrEqual = ">="
        case equal = "=="
        case notEqual = "!="
        case less = "<"
        case greater = ">"

        func holds(_ a: Double, _ b: Double) -> Bool {
            switch self {
            case .less: a < b
            case .lessOrEqual: a <= b
            case .greater: a > b
            case .greaterOrEqual: a >= b
            case .equal: a == b
            case .notEqual: a != b
            }
        }
    }

    public struct Condition: Sendable, Equatable {
        public var field: RowField
        public var comparison: Comparison
        public var value: Double
    }

    /// The rule as written (trimmed): its name in alerts and metrics.
    public let text: String
    public let conditions: [Condition]
    /// Consecutive final windows that must match before the alert fires (1 without `for`).
    public let windows: Int

    /// The most windows `for N windows` may ask for.
    public static let maximumWindows = 10_000

    /// A rule that could not be read: where (a 1-based character position in the rule) and why.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        public var rule: String
        public var position: Int
        public var message: String
        public var description: String { "alert rule '\(self.rule)': at position \(self.position): \(self.message)" }
    }

    public init(_ text: String) throws(ParseError) {
        let trimmed = text.trimmingWhitespace()
        var tokens = AlertTokens(trimmed)
        var conditions: [Condition] = []
        var windows = 1
        func fail(_ message: String, at token: AlertTokens.Token) -> ParseError {
            ParseError(rule: trimmed, position: token.position, message: message)
        }
        let names = RowField.allCases.map(\.rawValue).joined(separator: ", ")
        while true {
            let field = tokens.next()
            guard case .word(let name) = field.kind else {
                throw fail("expected a row field (\(names))", at: field)
            }
            guard let rowField = RowField(rawValue: name) else {
                throw fail("'\(name)' is not a numeric row field (\(names))", at: field)
            }
            let operation = tokens.next()
            guard case .symbol(let symbol) = operation.kind, let comparison = Comparison(rawValue: symbol) else {
                throw fail("expected a comparison (<, <=, >, >=, ==, !=) after \(name)", at: operation)
            }
            let number = tokens.next()
            guard case .number(let value) = number.kind else { throw fail("expected a number", at: number) }
            conditions.append(Condition(field: rowField, comparison: comparison, value: value))
            let after = tokens.next()
            switch after.kind {
            case .end:
                break
            case .word("and"):
                continue
            case .word("for"):
                let count = tokens.next()
                guard case .number(let value) = count.kind, value == value.rounded(), value >= 1,
                    value <= Double(AlertRule.maximumWindows)
                else { throw fail("expected a whole number of windows from 1 to \(AlertRule.maximumWindows)", at: count) }
                windows = Int(value)
                let unit = tokens.next()
                guard case .word(let word) = unit.kind, word == "windows" || word == "window" else {
                    throw fail("expected 'windows'", at: unit)
                }
                let end = tokens.next()
                guard case .end = end.kind else { throw fail("unexpected text after 'windows'", at: end) }
            default:
                throw fail("expected 'and', 'for N windows' or the end of the rule", at: after)
            }
            break
        }
        self.text = trimmed
        self.conditions = conditions
        self.windows = windows
    }

    /// True when every condition holds for `row`.
    public func matches(_ row: Row) -> Bool {
        self.conditions.allSatisfy { condition in
            guard let value = condition.field.value(of: row) else { return false }
            return condition.comparison.holds(value, condition.value)
        }
    }
}

/// The tokens of an alert rule: words, numbers, comparison symbols.
struct AlertTokens {
    enum Kind: Equatable {
        case word(String)
        case number(Double)
        case symbol(String)
        case invalid(Character)
        case end
    }

    struct Token {
        var kind: Kind
        /// 1-based character position.
        var position: Int
    }

    private let characters: [Character]
    private var index = 0

    init(_ text: String) { self.characters = Array(text) }

    mutating func next() -> Token {
        while self.index < self.characters.count && self.characters[self.index].isWhitespace { self.index += 1 }
        let start = self.index
        guard self.index < self.characters.count else { return Token(kind: .end, position: start + 1) }
        let first = self.characters[self.index]
        if first.isLetter || first == "_" {
            while self.index < self.characters.count && (self.characters[self.index].isLetter || self.characters[self.index] == "_") {
                self.index += 1
            }
            return Token(kind: .word(String(self.characters[start..<self.index]).lowercased()), position: start + 1)
        }
        if first.isASCII && (first.isNumber || first == "-" || first == ".") {
            self.index += 1
            while self.index < self.characters.count {
                let c = self.characters[self.index]
                let previous = self.characters[self.index - 1]
                guard
                    c.isASCII && (c.isNumber || c == "." || c == "e" || c == "E" || ((c == "-" || c == "+") && (previous == "e" || previous == "E")))
                else { break }
                self.index += 1
            }
            let literal = String(self.characters[start..<self.index])
            guard let value = Double(literal), value.isFinite else {
                return Token(kind: .invalid(first), position: start + 1)
            }
            return Token(kind: .number(value), position: start + 1)
        }
        for symbol in ["<=", ">=", "==", "!=", "<", ">"] {
            let count = symbol.count
            if self.index + count <= self.characters.count && String(self.characters[self.index..<self.index + count]) == symbol {
                self.index += count
                return Token(kind: .symbol(symbol), position: start + 1)
            }
        }
        self.index += 1
        return Token(kind: .invalid(first), position: start + 1)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let characters = Array(self)
        var start = 0
        var end = characters.count
        while start < end && characters[start].isWhitespace { start += 1 }
        while end > start && characters[end - 1].isWhitespace { end -= 1 }
        return String(characters[start..<end])
    }
}
