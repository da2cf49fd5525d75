/// A link, purchase or refund waiting for the watermark, with what its dead letter would need.
struct PendingEvent: Comparable, Sendable {
    var time: Int64
    var kind: EventKind
    var id: [UInt8]
    var user: Int32
    var linked: Int32
    var order: [UInt8]
    var amount: Int64
    var currency: Int
    var line: Int
    var batch: String?
    var raw: [UInt8]

    /// Ties on time apply links first, then purchases, then refunds, then by id.
    var rank: Int {
        switch self.kind {
        case .link: 0
        case .purchase: 1
        default: 2
        }
    }

    static func < (lhs: PendingEvent, rhs: PendingEvent) -> Bool {
        if lhs.time != rhs.time { return lhs.time < rhs.time }
        if lhs.rank != rhs.rank { return lhs.rank < rhs.rank }
        return lhs.id.lexicographicallyPrecedes(rhs.id)
    }

    static func == (lhs: PendingEvent, rhs: PendingEvent) -> Bool {
        lhs.time == rhs.time && lhs.rank == rhs.rank && lhs.id == rhs.id
    }
}

/// An applied purchase: what it was worth and how it was credited, for its refunds.
struct Order: Sendable {
    /// Micro-units of `currency`.
    var amount: Int64
    var currency: Int
    /// Refunded so far, in micro-units of `currency`.
    var refunded: Int64
    /// Credited keys with their share of the order in micro-units (the shares add up to 1,000,000).
    var credits: [(key: RowKey, share: Int64)]
}
