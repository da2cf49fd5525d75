@testable import RoasCore

/// A `ParsedEvent` copied out of the parser's memory, comparable in tests.
struct EventCopy: Equatable, CustomStringConvertible {
    var kind: EventKind
    var time: Int64
    var id: String
    var user: String = ""
    var linked: String = ""
    var creator: String = ""
    var campaign: String? = nil
    var order: String = ""
    var amount: Int64 = 0
    var currency: Int = 0

    init(
        _ kind: EventKind, time: Int64, id: String, user: String = "", linked: String = "", creator: String = "",
        campaign: String? = nil, order: String = "", amount: Int64 = 0, currency: Int = 0
    ) {
        self.kind = kind
        self.time = time
        self.id = id
        self.user = user
        self.linked = linked
        self.creator = creator
        self.campaign = campaign
        self.order = order
        self.amount = amount
        self.currency = currency
    }

    init(_ event: ParsedEvent) {
        func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
        self.kind = event.kind
        self.time = event.time
        self.id = text(event.id)
        self.user = text(event.user)
        self.linked = text(event.linked)
        self.creator = text(event.creator)
        self.campaign = event.campaign.map(text)
        self.order = text(event.order)
        self.amount = event.amount
        self.currency = event.currency
    }

    var description: String {
        "\(kind.name) t=\(time) id=\(id) user=\(user) linked=\(linked) creator=\(creator) "
            + "campaign=\(campaign ?? "nil") order=\(order) amount=\(amount) currency=\(currency)"
    }
}

/// What parsing one line gave.
enum ParseOutcome: Equatable, CustomStringConvertible {
    case event(EventCopy)
    case rejected(Reason)

    var description: String {
        switch self {
        case .event(let event): "event(\(event))"
        case .rejected(let reason): "rejected(\(reason.rawValue))"
        }
    }

    var reason: Reason? {
        if case .rejected(let reason) = self { return reason }
        return nil
    }
}

extension EventParser {
    /// The test currencies: USD (base, index 0), EUR (1), JPY (2).
    static func forTests() -> EventParser {
        EventParser(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1, "JPY": 0.0067]))
    }

    mutating func outcome(_ line: [UInt8]) -> ParseOutcome {
        let result = line.withUnsafeBytes { buffer in self.parse(buffer) { EventCopy($0) } }
        switch result {
        case .success(let event): return .event(event)
        case .failure(let rejection): return .rejected(rejection.reason)
        }
    }

    mutating func outcome(_ line: String) -> ParseOutcome {
        self.outcome(Array(line.utf8))
    }
}
