import FuzzSupport

// Fuzz target `json`: any bytes as one NDJSON line through `JSONScanner`, `EventParser` and
// `Timestamp.parseRFC3339`. Never a trap, and:
// - scanner: `validateDocument` and `scanObject` agree; member spans lie in the text, are of the
//   kind they say, and each value span is a valid JSON text by itself; strings unescape to UTF-8
//   no longer than their source; a valid text stays valid padded with whitespace and, up to the
//   nesting limit, wrapped in an array or an object (where the value span is exactly the text);
// - parser: the outcome (event or rejection reason) is that of a reference written from the
//   documented rules (docs/formats.md, "Events"): malformed, an object, type, duplicate known keys,
//   id of 1-256 bytes, ts as integer milliseconds or RFC 3339 from 1970 to 8999, the fields each
//   kind requires, amount from 0 to 10^12 rounded half to even to micro-units, currency; an
//   accepted event's fields are exactly the decoded members and lie in the documented ranges;
//   parsing the same line again gives the same event;
// - timestamps: a parsed time in the accepted range formats and parses back to itself.
@testable import RoasCore

let currencies = try! CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27])
nonisolated(unsafe) var parser = EventParser(currencies: currencies)

/// The largest number of nested arrays and objects in a valid JSON text.
func nesting(_ bytes: UnsafeRawBufferPointer) -> Int {
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

func validates(_ bytes: some Collection<UInt8>) -> Bool {
    Array(bytes).withUnsafeBytes { buffer in
        var scanner = JSONScanner(buffer)
        return scanner.validateDocument()
    }
}

func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 }

struct Member {
    var key: [UInt8]
    var value: JSONSpan
}

func decoded(_ text: UnsafeRawBufferPointer, _ span: JSONSpan) -> [UInt8] {
    guard span.flag else { return Array(text[span.start..<span.end]) }
    var output: [UInt8] = []
    JSONScanner.unescape(text, span, into: &output)
    return output
}

/// Checks the scanner on `text`; returns its members when it is an object.
func checkScanner(_ text: UnsafeRawBufferPointer) -> (valid: Bool, members: [Member]?) {
    var scanner = JSONScanner(text)
    let valid = scanner.validateDocument()
    var spans: [(JSONSpan, JSONSpan)] = []
    var objectScanner = JSONScanner(text)
    let result = objectScanner.scanObject { key, value in spans.append((key, value)) }
    let first = text.first(where: { !isWhitespace($0) })
    switch result {
    case .malformed: require(!valid, "scanObject says malformed, validateDocument valid")
    case .notObject: require(valid && first != UInt8(ascii: "{"), "scanObject says not an object")
    case .object: require(valid && first == UInt8(ascii: "{"), "scanObject says object, validateDocument invalid")
    }
    guard valid else { return (false, nil) }

    func checkString(_ span: JSONSpan) -> [UInt8] {
        require(span.start >= 1 && span.start <= span.end && span.end < text.count, "a string span out of bounds")
        require(text[span.start - 1] == UInt8(ascii: "\"") && text[span.end] == UInt8(ascii: "\""), "a string span without its quotes")
        let raw = text[span.start..<span.end]
        require(span.flag == raw.contains(UInt8(ascii: "\\")), "a string's escape flag is wrong")
        let value = decoded(text, span)
        require(value.count <= raw.count, "an unescaped string is longer than its source")
        require(String(validating: value, as: UTF8.self) != nil, "a string unescapes to invalid UTF-8: \(describe(value))")
        return value
    }

    var members: [Member]? = nil
    if result == .object {
        var list: [Member] = []
        for (key, value) in spans {
            require(key.kind == .string, "a key span is not a string")
            let name = checkString(key)
            require(value.kind != .absent, "a member value is absent")
            if value.kind == .string {
                _ = checkString(value)
                require(validates(text[(value.start - 1)...value.end]), "a string value is not valid by itself")
            } else {
                require(value.start < value.end && value.end <= text.count, "a value span out of bounds")
                let bytes = text[value.start..<value.end]
                require(validates(bytes), "a member value is not valid by itself: \(describe(bytes))")
                let head = bytes.first!
                switch value.kind {
                case .number:
                    require(head == UInt8(ascii: "-") || (head >= 0x30 && head <= 0x39), "a number span")
                    require(value.flag == bytes.contains { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }, "a number's flag")
                case .object: require(head == UInt8(ascii: "{") && bytes.last == UInt8(ascii: "}"), "an object span")
                case .array: require(head == UInt8(ascii: "[") && bytes.last == UInt8(ascii: "]"), "an array span")
                case .boolean: require(bytes.elementsEqual("true".utf8) || bytes.elementsEqual("false".utf8), "a boolean span")
                case .null: require(bytes.elementsEqual("null".utf8), "a null span")
                default: fail("a value span of kind \(value.kind)")
                }
            }
            list.append(Member(key: name, value: value))
        }
        members = list
    }

    // Metamorphic: padding keeps a valid text valid; wrapping adds one level of nesting.
    require(validates([0x20, 0x0A] + Array(text) + [0x09, 0x0D]), "a valid text padded with whitespace is invalid")
    let depthAllowed = nesting(text) < JSONScanner.maximumDepth
    require(validates([UInt8(ascii: "[")] + Array(text) + [UInt8(ascii: "]")]) == depthAllowed, "wrapping in [] at nesting \(nesting(text))")
    let prefix = Array(#"{"k":"#.utf8)
    let wrapped = prefix + Array(text) + [UInt8(ascii: "}")]
    wrapped.withUnsafeBytes { outer in
        var wrapper = JSONScanner(outer)
        var inner: [JSONSpan] = []
        let result = wrapper.scanObject { _, value in inner.append(value) }
        require((result == .object) == depthAllowed, "wrapping in an object at nesting \(nesting(text))")
        guard depthAllowed else { return }
        require(inner.count == 1, "a wrapped text gives \(inner.count) members")
        var start = prefix.count
        while isWhitespace(outer[start]) { start += 1 }
        var end = outer.count - 1
        while isWhitespace(outer[end - 1]) { end -= 1 }
        let span = inner[0]
        if span.kind == .string {
            require(span.start == start + 1 && span.end == end - 1, "a wrapped string's span")
        } else {
            require(span.start == start && span.end == end, "a wrapped value's span")
        }
    }
    return (true, members)
}

// MARK: The reference

/// What the documented rules make of a line.
enum Expected: Equatable {
    case rejected(Reason)
    case event(EventKind)
}

let knownFields = [
    "type", "id", "ts", "user", "linked", "creator", "campaign", "order", "amount", "currency", "action", "followers",
    "value", "platform",
]

/// Micro-units of a valid JSON number literal, rounded half to even, from its digits as text;
/// nil when negative (other than zero) or over `Int64.max`.
func referenceMicros(_ literal: [UInt8]) -> Int64? {
    var index = 0
    var negative = false
    if literal[0] == UInt8(ascii: "-") {
        negative = true
        index = 1
    }
    var digits: [UInt8] = []
    var pointShift = 0
    while index < literal.count, literal[index] >= 0x30, literal[index] <= 0x39 {
        digits.append(literal[index] - 0x30)
        index += 1
    }
    if index < literal.count, literal[index] == UInt8(ascii: ".") {
        index += 1
        while index < literal.count, literal[index] >= 0x30, literal[index] <= 0x39 {
            digits.append(literal[index] - 0x30)
            pointShift -= 1
            index += 1
        }
    }
    var exponent = 0
    if index < literal.count {
        index += 1
        var sign = 1
        if literal[index] == UInt8(ascii: "-") { sign = -1 }
        if literal[index] == UInt8(ascii: "-") || literal[index] == UInt8(ascii: "+") { index += 1 }
        while index < literal.count {
            if exponent < 10_000_000 { exponent = exponent * 10 + Int(literal[index] - 0x30) }
            index += 1
        }
        exponent *= sign
    }
    while let first = digits.first, first == 0 { digits.removeFirst() }
    if digits.isEmpty { return 0 }
    if negative { return nil }
    // value = digits * 10^(pointShift + exponent); micros = value * 10^6.
    let scale = pointShift + exponent + 6
    if scale >= 0 {
        guard digits.count + scale <= 19 else { return nil }
        var value: Int64 = 0
        for digit in digits + [UInt8](repeating: 0, count: scale) {
            let (a, o1) = value.multipliedReportingOverflow(by: 10)
            let (b, o2) = a.addingReportingOverflow(Int64(digit))
            if o1 || o2 { return nil }
            value = b
        }
        return value
    }
    let kept = digits.count + scale  // digits before the cut
    // The cut lies before a zero (the point moved far left): the value rounds down to 0 micro-units.
    if kept < 0 { return 0 }
    var value: Int64 = 0
    if kept > 0 {
        guard kept <= 19 else { return nil }
        for digit in digits[0..<kept] {
            let (a, o1) = value.multipliedReportingOverflow(by: 10)
            let (b, o2) = a.addingReportingOverflow(Int64(digit))
            if o1 || o2 { return nil }
            value = b
        }
    }
    let dropped = Array(digits[kept...])
    let first = dropped[0]
    let sticky = dropped.dropFirst().contains { $0 != 0 }
    if first > 5 || (first == 5 && (sticky || value % 2 == 1)) {
        let (rounded, overflow) = value.addingReportingOverflow(1)
        if overflow { return nil }
        value = rounded
    }
    return value
}

struct ReferenceEvent {
    var kind: EventKind
    var time: Int64
    var fields: [String: [UInt8]] = [:]
    var amount: Int64 = 0
    var currency = 0
}

func reference(_ text: UnsafeRawBufferPointer, valid: Bool, members: [Member]?) -> (Expected, ReferenceEvent?) {
    guard valid else { return (.rejected(.malformed), nil) }
    guard let members else { return (.rejected(.invalid), nil) }
    var slots: [String: JSONSpan] = [:]
    var duplicate = false
    for member in members {
        guard let name = String(validating: member.key, as: UTF8.self), knownFields.contains(name) else { continue }
        if slots[name] != nil { duplicate = true }
        slots[name] = member.value
    }
    func string(_ name: String) -> [UInt8]? {
        guard let span = slots[name], span.kind == .string else { return nil }
        return decoded(text, span)
    }
    guard let typeSpan = slots["type"], typeSpan.kind == .string else { return (.rejected(.invalid), nil) }
    let typeName = decoded(text, typeSpan)
    guard let kind = EventKind.allCases.first(where: { Array($0.name.utf8) == typeName }) else {
        return (.rejected(.unknownType), nil)
    }
    if duplicate { return (.rejected(.invalid), nil) }
    guard let id = string("id"), id.count >= 1, id.count <= 256 else { return (.rejected(.invalid), nil) }
    var time: Int64? = nil
    if let span = slots["ts"] {
        if span.kind == .number && !span.flag {
            let literal = Array(text[span.start..<span.end])
            let digits = literal.first == UInt8(ascii: "-") ? literal.count - 1 : literal.count
            if digits <= 18 {
                time = Int64(String(decoding: literal, as: UTF8.self))
            }
        } else if span.kind == .string {
            time = decoded(text, span).withUnsafeBytes { Timestamp.parseRFC3339($0) }
        }
    }
    guard let time, time >= 0, time <= EventParser.maximumTime else { return (.rejected(.invalid), nil) }
    var event = ReferenceEvent(kind: kind, time: time)
    event.fields["id"] = id
    func required(_ name: String) -> Bool {
        guard let value = string(name), !value.isEmpty else { return false }
        event.fields[name] = value
        return true
    }
    func optional(_ name: String) -> Bool {
        guard let span = slots[name] else { return true }
        switch span.kind {
        case .null: return true
        case .string:
            let value = decoded(text, span)
            guard !value.isEmpty else { return false }
            event.fields[name] = value
            return true
        default: return false
        }
    }
    let needs: [String]
    switch kind {
    case .view, .click: needs = ["user", "creator", "campaign?"]
    case .link: needs = ["user", "linked"]
    case .purchase: needs = ["user", "order"]
    case .refund: needs = ["order"]
    case .spend: needs = ["creator", "campaign?"]
    case .engagement: needs = ["user", "creator", "campaign?"]
    case .signup: needs = ["user"]
    case .creator: needs = ["creator"]
    }
    for name in needs {
        let ok = name.hasSuffix("?") ? optional(String(name.dropLast())) : required(name)
        guard ok else { return (.rejected(.invalid), nil) }
    }
    switch kind {
    case .engagement:
        guard let action = string("action"), ["like", "comment", "share", "save", "follow"].contains(where: { Array($0.utf8) == action })
        else { return (.rejected(.invalid), nil) }
    case .signup:
        // An optional value, checked like an amount and not kept; then an optional known currency.
        if let span = slots["value"], span.kind != .null {
            guard span.kind == .number, let micros = referenceMicros(Array(text[span.start..<span.end])),
                micros <= EventParser.maximumAmount
            else { return (.rejected(.invalid), nil) }
        }
        guard optional("currency") else { return (.rejected(.invalid), nil) }
        if let code = event.fields["currency"], !currencies.codes.contains(where: { Array($0.utf8) == code }) {
            return (.rejected(.unknownCurrency), nil)
        }
        event.fields["currency"] = nil
    case .creator:
        guard let span = slots["followers"], span.kind == .number, !span.flag else { return (.rejected(.invalid), nil) }
        let literal = Array(text[span.start..<span.end])
        let digits = literal.first == UInt8(ascii: "-") ? literal.count - 1 : literal.count
        guard digits <= 18, let followers = Int64(String(decoding: literal, as: UTF8.self)), followers >= 0,
            followers <= 1_000_000_000_000
        else { return (.rejected(.invalid), nil) }
        event.amount = followers
        guard optional("platform") else { return (.rejected(.invalid), nil) }
        event.fields["platform"] = nil
    default: break
    }
    if kind == .purchase || kind == .refund || kind == .spend {
        guard let span = slots["amount"], span.kind == .number,
            let micros = referenceMicros(Array(text[span.start..<span.end])), micros <= EventParser.maximumAmount
        else { return (.rejected(.invalid), nil) }
        event.amount = micros
        guard optional("currency") else { return (.rejected(.invalid), nil) }
        if let code = event.fields["currency"] {
            guard let index = currencies.codes.firstIndex(where: { Array($0.utf8) == code }) else {
                return (.rejected(.unknownCurrency), nil)
            }
            event.currency = index
        }
        event.fields["currency"] = nil
    }
    return (.event(kind), event)
}

// MARK: The parser against the reference

struct Parsed: Equatable {
    var kind: EventKind
    var time: Int64
    var id: [UInt8]
    var user: [UInt8]
    var linked: [UInt8]
    var creator: [UInt8]
    var campaign: [UInt8]?
    var order: [UInt8]
    var amount: Int64
    var currency: Int

    init(_ event: ParsedEvent) {
        self.kind = event.kind
        self.time = event.time
        self.id = Array(event.id)
        self.user = Array(event.user)
        self.linked = Array(event.linked)
        self.creator = Array(event.creator)
        self.campaign = event.campaign.map { Array($0) }
        self.order = Array(event.order)
        self.amount = event.amount
        self.currency = event.currency
    }
}

func parse(_ text: UnsafeRawBufferPointer) -> Result<Parsed, Rejection> {
    parser.parse(text) { Parsed($0) }
}

func checkParser(_ text: UnsafeRawBufferPointer, valid: Bool, members: [Member]?) {
    let result = parse(text)
    let (expected, referenceEvent) = reference(text, valid: valid, members: members)
    switch result {
    case .failure(let rejection):
        require(expected == .rejected(rejection.reason), "the parser says \(rejection.reason) (\(rejection.detail)), the reference \(expected)")
    case .success(let event):
        require(expected == .event(event.kind), "the parser accepts a \(event.kind), the reference says \(expected)")
        let reference = referenceEvent!
        require(event.time == reference.time, "ts \(event.time), the reference \(reference.time)")
        require(event.time >= 0 && event.time <= EventParser.maximumTime, "ts out of range")
        require(event.id == reference.fields["id"]! && event.id.count >= 1 && event.id.count <= 256, "id \(describe(event.id))")
        for (name, value) in [("user", event.user), ("linked", event.linked), ("creator", event.creator), ("order", event.order)] {
            require(value == (reference.fields[name] ?? []), "\(name) \(describe(value)), the reference \(describe(reference.fields[name] ?? []))")
        }
        require(event.campaign == reference.fields["campaign"], "campaign \(describe(event.campaign ?? []))")
        require(event.amount == reference.amount, "amount \(event.amount) micro-units, the reference \(reference.amount)")
        require(event.amount >= 0 && event.amount <= EventParser.maximumAmount, "amount out of range")
        require(event.currency == reference.currency && event.currency < currencies.codes.count, "currency \(event.currency)")
        for value in [event.id, event.user, event.linked, event.creator, event.order, event.campaign ?? []] {
            require(String(validating: value, as: UTF8.self) != nil, "a field is not UTF-8")
        }
        // The scratch memory is reused: parsing again gives the same event.
        guard case .success(let again) = parse(text), again == event else { fail("parsing the same line twice differs") }
    }
}

func checkTimestamp(_ text: UnsafeRawBufferPointer) {
    guard let time = Timestamp.parseRFC3339(text), time >= 0, time <= EventParser.maximumTime else { return }
    let formatted = Timestamp.format(milliseconds: time)
    var copy = formatted
    let back = copy.withUTF8 { Timestamp.parseRFC3339(UnsafeRawBufferPointer($0)) }
    require(back == time, "\(describe(text)) is \(time) ms, formatted \(formatted), read back \(back.map(String.init) ?? "nil")")
}

@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    let (valid, members) = checkScanner(text)
    checkParser(text, valid: valid, members: members)
    checkTimestamp(text)
    return 0
}

fuzzMain(fuzzOne)
