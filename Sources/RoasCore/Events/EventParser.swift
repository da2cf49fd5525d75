#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns one NDJSON line into a `ParsedEvent`, or the rejection that applies first.
///
/// Checks run in the order of the spec: `malformed` (any RFC 8259 violation), then `unknown_type` /
/// `invalid`, then `unknown_currency`. It allocates nothing per line: strings with escapes are
/// decoded into scratch memory that the next line reuses.
///
/// Documented choices: a repeated known key (`"ts"` twice) is `invalid`, a repeated unknown key is
/// ignored; JSON `null` for an optional field (`campaign`, `currency`) means absent; required strings
/// must be non-empty; `ts` is an integer literal of epoch milliseconds (no fraction or exponent) or an
/// RFC 3339 string, from 1970-01-01 to 8999-12-31; `amount` is rounded half to even to micro-units and may
/// not exceed 10^12.
public struct EventParser {
    public let currencies: CurrencyTable
    /// The decoded strings and the value span of each known key, of the line being parsed. Held in
    /// a class so that `parse` need not be `mutating`: a mutating parse copied the parser (six
    /// reference counts) around each call it made that the compiler could not see into.
    private let scratch: ScratchMemory
    private var slots: UnsafeMutablePointer<JSONSpan> { self.scratch.slots }

    public init(currencies: CurrencyTable) {
        self.currencies = currencies
        self.scratch = ScratchMemory()
    }

    enum Field: Int, CaseIterable {
        case type, id, ts, user, linked, creator, campaign, order, amount, currency
        case action, followers, value, platform

        static let count = Field.allCases.count
    }

    /// 1970-01-01T00:00:00Z.
    static let minimumTime: Int64 = 0
    /// 8999-12-31T23:59:59.999Z: with windows of at most a year, every window stays within RFC 3339's years.
    static let maximumTime: Int64 = 221_845_392_000_000 - 1
    static let maximumAmount: Int64 = 1_000_000_000_000 * Micros.one

    @inline(__always)
    static func field(_ key: UnsafeRawBufferPointer) -> Field? {
        @inline(__always) func equals(_ word: StaticString) -> Bool {
            memcmp(key.baseAddress!, word.utf8Start, key.count) == 0
        }
        switch key.count {
        case 2:
            if equals("id") { return .id }
            if equals("ts") { return .ts }
        case 4:
            if equals("type") { return .type }
            if equals("user") { return .user }
        case 5:
            if equals("order") { return .order }
            if equals("value") { return .value }
        case 6:
            if equals("linked") { return .linked }
            if equals("amount") { return .amount }
            if equals("action") { return .action }
        case 7:
            if equals("creator") { return .creator }
        case 8:
            if equals("campaign") { return .campaign }
            if equals("currency") { return .currency }
            if equals("platform") { return .platform }
        case 9:
            if equals("followers") { return .followers }
        default:
            break
        }
        return nil
    }

    /// Parses `line` (no newline) and calls `body` with the event, or returns the rejection.
    @inline(__always)
    public func parse<R>(
        _ line: UnsafeRawBufferPointer, _ body: (ParsedEvent) -> R
    ) -> Result<R, Rejection> {
        self.scratch.reset(minimumCapacity: line.count)
        let slots = self.slots
        for index in 0..<Field.count { slots[index].kind = .absent }
        var duplicate: Field? = nil
        var scanner = JSONScanner(line)
        // The parser holds it for the whole call: no reference count per line.
        unowned(unsafe) let scratch = self.scratch
        let result = scanner.scanObject { key, value in
            let keyBytes: UnsafeRawBufferPointer
            if key.flag {
                keyBytes = scratch.unescape(line, key)
            } else {
                keyBytes = UnsafeRawBufferPointer(rebasing: line[key.start..<key.end])
            }
            guard keyBytes.count >= 2, let field = EventParser.field(keyBytes) else { return }
            if slots[field.rawValue].kind != .absent { duplicate = duplicate ?? field }
            slots[field.rawValue] = value
        }
        switch result {
        case .malformed: return .failure(Rejection(.malformed, "not valid JSON (RFC 8259)"))
        case .notObject: return .failure(Rejection(.invalid, "an event must be a JSON object"))
        case .object: break
        }
        let typeSpan = self.slots[Field.type.rawValue]
        guard typeSpan.kind == .string else {
            return .failure(Rejection(.invalid, typeSpan.kind == .absent ? "missing type" : "type must be a string"))
        }
        guard let kind = EventParser.kind(self.string(line, typeSpan)) else {
            return .failure(Rejection(.unknownType, "type must be view, click, purchase, refund, link, spend, engagement, signup or creator"))
        }
        if let duplicate { return .failure(Rejection(.invalid, "duplicate key \(duplicate)")) }

        let id = self.string(line, self.slots[Field.id.rawValue])
        guard self.slots[Field.id.rawValue].kind == .string, id.count >= 1, id.count <= 256 else {
            return .failure(Rejection(.invalid, "id must be a string of 1 to 256 bytes"))
        }
        guard let time = self.time(line, self.slots[Field.ts.rawValue]) else {
            return .failure(
                Rejection(.invalid, "ts must be integer epoch milliseconds or an RFC 3339 string with offset, from 1970 to 8999"))
        }
        var event = ParsedEvent(kind: kind, time: time, id: id)
        switch kind {
        case .view, .click:
            guard let user = self.required(line, .user) else { return .failure(self.missing(.user)) }
            guard let creator = self.required(line, .creator) else { return .failure(self.missing(.creator)) }
            event.user = user
            event.creator = creator
            guard self.optional(line, .campaign, into: &event.campaign) else { return .failure(self.missing(.campaign)) }
        case .link:
            guard let user = self.required(line, .user) else { return .failure(self.missing(.user)) }
            guard let linked = self.required(line, .linked) else { return .failure(self.missing(.linked)) }
            event.user = user
            event.linked = linked
        case .purchase, .refund:
            if kind == .purchase {
                guard let user = self.required(line, .user) else { return .failure(self.missing(.user)) }
                event.user = user
            }
            guard let order = self.required(line, .order) else { return .failure(self.missing(.order)) }
            event.order = order
        case .spend:
            guard let creator = self.required(line, .creator) else { return .failure(self.missing(.creator)) }
            event.creator = creator
            guard self.optional(line, .campaign, into: &event.campaign) else { return .failure(self.missing(.campaign)) }
        case .engagement:
            guard let user = self.required(line, .user) else { return .failure(self.missing(.user)) }
            guard let creator = self.required(line, .creator) else { return .failure(self.missing(.creator)) }
            event.user = user
            event.creator = creator
            guard self.optional(line, .campaign, into: &event.campaign) else { return .failure(self.missing(.campaign)) }
            let action = self.slots[Field.action.rawValue]
            guard action.kind == .string, EventParser.isAction(self.string(line, action)) else {
                return .failure(Rejection(.invalid, "action must be like, comment, share, save or follow"))
            }
        case .signup:
            guard let user = self.required(line, .user) else { return .failure(self.missing(.user)) }
            event.user = user
            // An optional value, checked like an amount but not kept: a lead's value is not revenue.
            let value = self.slots[Field.value.rawValue]
            if value.kind != .absent && value.kind != .null {
                guard value.kind == .number, let micros = EventParser.micros(line, value),
                    micros <= EventParser.maximumAmount
                else {
                    return .failure(Rejection(.invalid, "value must be a JSON number between 0 and 10^12"))
                }
            }
        case .creator:
            guard let creator = self.required(line, .creator) else { return .failure(self.missing(.creator)) }
            event.creator = creator
            let followers = self.slots[Field.followers.rawValue]
            guard followers.kind == .number, !followers.flag,
                let count = EventParser.integer(UnsafeRawBufferPointer(rebasing: line[followers.start..<followers.end])),
                count >= 0, count <= CreatorTier.maximumFollowers
            else {
                return .failure(Rejection(.invalid, "followers must be an integer from 0 to 10^12"))
            }
            event.amount = count
            var platform: UnsafeRawBufferPointer? = nil
            guard self.optional(line, .platform, into: &platform) else { return .failure(self.missing(.platform)) }
        }
        if kind == .signup {
            // The value's currency is checked like an amount's, and not kept either.
            if case .failure(let rejection) = self.currency(line) { return .failure(rejection) }
        }
        if kind == .purchase || kind == .refund || kind == .spend {
            let amountSpan = self.slots[Field.amount.rawValue]
            guard amountSpan.kind == .number, let amount = EventParser.micros(line, amountSpan),
                amount <= EventParser.maximumAmount
            else {
                return .failure(Rejection(.invalid, "amount must be a JSON number between 0 and 10^12"))
            }
            event.amount = amount
            switch self.currency(line) {
            case .success(let index): event.currency = index
            case .failure(let rejection): return .failure(rejection)
            }
        }
        return .success(body(event))
    }

    /// The optional `currency`: its index in the table (0, the base, when absent or null), or the
    /// rejection of a value that is no non-empty string (`invalid`) or not in the table (`unknown_currency`).
    @inline(__always)
    private func currency(_ line: UnsafeRawBufferPointer) -> Result<Int, Rejection> {
        var currency: UnsafeRawBufferPointer? = nil
        guard self.optional(line, .currency, into: &currency) else { return .failure(self.missing(.currency)) }
        guard let currency else { return .success(0) }
        guard let index = self.currencies.index(of: currency) else {
            return .failure(Rejection(.unknownCurrency, "currency is not the base currency or in the rates"))
        }
        return .success(index)
    }

    private func missing(_ field: Field) -> Rejection {
        switch self.slots[field.rawValue].kind {
        case .absent: Rejection(.invalid, "missing \(field)")
        default: Rejection(.invalid, "\(field) must be a non-empty string")
        }
    }

    @inline(__always)
    private func string(_ line: UnsafeRawBufferPointer, _ span: JSONSpan) -> UnsafeRawBufferPointer {
        guard span.kind == .string else { return ParsedEvent.empty }
        if span.flag { return self.scratch.unescape(line, span) }
        return UnsafeRawBufferPointer(rebasing: line[span.start..<span.end])
    }

    @inline(__always)
    private func required(_ line: UnsafeRawBufferPointer, _ field: Field) -> UnsafeRawBufferPointer? {
        let span = self.slots[field.rawValue]
        guard span.kind == .string else { return nil }
        let bytes = self.string(line, span)
        return bytes.isEmpty ? nil : bytes
    }

    /// False when the field is present but neither null nor a non-empty string.
    @inline(__always)
    private func optional(
        _ line: UnsafeRawBufferPointer, _ field: Field, into value: inout UnsafeRawBufferPointer?
    ) -> Bool {
        let span = self.slots[field.rawValue]
        switch span.kind {
        case .absent, .null:
            return true
        case .string:
            let bytes = self.string(line, span)
            guard !bytes.isEmpty else { return false }
            value = bytes
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func kind(_ bytes: UnsafeRawBufferPointer) -> EventKind? {
        @inline(__always) func equals(_ word: StaticString) -> Bool {
            memcmp(bytes.baseAddress!, word.utf8Start, bytes.count) == 0
        }
        switch bytes.count {
        case 4:
            if equals("view") { return .view }
            if equals("link") { return .link }
        case 5:
            if equals("click") { return .click }
            if equals("spend") { return .spend }
        case 6:
            if equals("refund") { return .refund }
            if equals("signup") { return .signup }
        case 7:
            if equals("creator") { return .creator }
        case 8:
            if equals("purchase") { return .purchase }
        case 10:
            if equals("engagement") { return .engagement }
        default:
            break
        }
        return nil
    }

    /// The `action` of an engagement: like, comment, share, save or follow.
    static func isAction(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for word in EventParser.actions where bytes.elementsEqual(word.utf8) { return true }
        return false
    }

    static let actions = ["like", "comment", "share", "save", "follow"]

    @inline(__always)
    private func time(_ line: UnsafeRawBufferPointer, _ span: JSONSpan) -> Int64? {
        let value: Int64?
        switch span.kind {
        case .number:
            guard !span.flag else { return nil }
            value = EventParser.integer(UnsafeRawBufferPointer(rebasing: line[span.start..<span.end]))
        case .string:
            value = Timestamp.parseRFC3339(self.string(line, span))
        default:
            return nil
        }
        guard let value, value >= EventParser.minimumTime, value <= EventParser.maximumTime else { return nil }
        return value
    }

    /// An integer literal (`-?[0-9]+`, already validated) or nil on overflow.
    @inline(__always)
    static func integer(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard bytes.count - index <= 18 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            value = value * 10 + Int64(bytes[index] &- 0x30)
            index += 1
        }
        return negative ? -value : value
    }

    /// Micro-units of a validated JSON number, rounded half to even; nil when negative (other than
    /// `-0`) or too large for an `Int64`.
    ///
    /// Exact for any literal: the micro-unit integer is read straight from the digit sequence with the
    /// decimal point moved by the exponent, and the first digit past it (with any non-zero after it)
    /// decides the rounding.
    static func micros(_ line: UnsafeRawBufferPointer, _ span: JSONSpan) -> Int64? {
        var index = span.start
        let end = span.end
        var negative = false
        if line[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let digitsStart = index
        var integerDigits = 0
        while index < end, line[index] >= 0x30, line[index] <= 0x39 {
            integerDigits += 1
            index += 1
        }
        var fractionDigits = 0
        if index < end && line[index] == UInt8(ascii: ".") {
            index += 1
            while index < end, line[index] >= 0x30, line[index] <= 0x39 {
                fractionDigits += 1
                index += 1
            }
        }
        var exponent = 0
        if index < end {
            index += 1
            var exponentNegative = false
            if line[index] == UInt8(ascii: "+") || line[index] == UInt8(ascii: "-") {
                exponentNegative = line[index] == UInt8(ascii: "-")
                index += 1
            }
            while index < end {
                if exponent < 1_000_000 { exponent = exponent * 10 + Int(line[index] - 0x30) }
                index += 1
            }
            if exponentNegative { exponent = -exponent }
        }
        let total = integerDigits + fractionDigits
        @inline(__always) func digit(_ position: Int) -> UInt64 {
            let offset = position < integerDigits ? position : position + 1
            return UInt64(line[digitsStart + offset] - 0x30)
        }
        var isZero = true
        for position in 0..<total where digit(position) != 0 {
            isZero = false
            break
        }
        if isZero { return 0 }
        if negative { return nil }
        // Digits [0, cut) form the micro-unit integer; digit `cut` and those after it round it.
        let cut = integerDigits + exponent + 6
        var result: UInt64 = 0
        if cut > 0 {
            for position in 0..<min(cut, total) {
                let (shifted, overflowA) = result.multipliedReportingOverflow(by: 10)
                let (next, overflowB) = shifted.addingReportingOverflow(digit(position))
                guard !overflowA, !overflowB else { return nil }
                result = next
            }
            if cut > total {
                for _ in total..<cut {
                    let (shifted, overflow) = result.multipliedReportingOverflow(by: 10)
                    guard !overflow else { return nil }
                    result = shifted
                }
            }
        }
        if cut < total {
            let first: UInt64 = cut >= 0 ? digit(cut) : 0
            var sticky = false
            for position in max(0, cut + 1)..<total where digit(position) != 0 {
                sticky = true
                break
            }
            if first > 5 || (first == 5 && (sticky || result % 2 == 1)) {
                let (rounded, overflow) = result.addingReportingOverflow(1)
                guard !overflow else { return nil }
                result = rounded
            }
        }
        guard result <= UInt64(Int64.max) else { return nil }
        return Int64(result)
    }
}

/// Scratch memory for decoded strings; reset per line, never reallocated during one.
final class ScratchMemory {
    private var memory: UnsafeMutableRawPointer
    private var capacity: Int
    private var used = 0
    private var buffer: [UInt8] = []
    /// The value span of each of `EventParser.Field`'s keys.
    let slots: UnsafeMutablePointer<JSONSpan>

    init() {
        self.capacity = 4096
        self.memory = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 16)
        self.slots = UnsafeMutablePointer<JSONSpan>.allocate(capacity: EventParser.Field.count)
        self.slots.initialize(repeating: JSONSpan(), count: EventParser.Field.count)
    }

    deinit {
        self.memory.deallocate()
        self.slots.deallocate()
    }

    /// Makes room for the strings of a line of `minimumCapacity` bytes (decoded text is never longer).
    @inline(__always)
    func reset(minimumCapacity: Int) {
        self.used = 0
        if minimumCapacity > self.capacity {
            self.memory.deallocate()
            self.capacity = max(minimumCapacity, self.capacity * 2)
            self.memory = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
        }
    }

    func unescape(_ line: UnsafeRawBufferPointer, _ span: JSONSpan) -> UnsafeRawBufferPointer {
        self.buffer.removeAll(keepingCapacity: true)
        JSONScanner.unescape(line, span, into: &self.buffer)
        let start = self.memory + self.used
        let count = self.buffer.count
        precondition(self.used + count <= self.capacity, "decoded text is never longer than its line")
        self.buffer.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: count) }
        self.used += count
        return UnsafeRawBufferPointer(start: start, count: count)
    }
}

/// Each parser owns its scratch memory; it is never shared between threads.
@available(*, unavailable)
extension ScratchMemory: Sendable {}
