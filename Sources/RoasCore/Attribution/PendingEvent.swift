/// A link, purchase, sign-up or refund waiting for the watermark, with what its dead letter would need.
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

    /// Ties on time apply links first, then purchases, then refunds, then sign-ups, then by id.
    var rank: Int {
        switch self.kind {
        case .link: 0
        case .purchase: 1
        case .refund: 2
        default: 3
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
    /// With `--models`, the credits of the second and later models (`credits` holds the first's).
    var otherCredits: [[(key: RowKey, share: Int64)]] = []
}

// MARK: Snapshots

extension PendingEvent {
    /// The fewest bytes one event takes in a snapshot, to bound a count before reserving room.
    static let minimumSnapshotSize = 8 + 1 + 8 + 4 + 4 + 8 + 8 + 8 + 8 + 1 + 8

    /// Writes every field, the raw line (for a dead letter) included.
    func write(to writer: inout SnapshotWriter) {
        writer.write(self.time)
        writer.write(self.kind.rawValue)
        writer.write(bytes: self.id)
        writer.write(self.user)
        writer.write(self.linked)
        writer.write(bytes: self.order)
        writer.write(self.amount)
        writer.write(Int64(self.currency))
        writer.write(Int64(self.line))
        writer.write(self.batch) { $0.write($1) }
        writer.write(bytes: self.raw)
    }

    /// Reads what `write(to:)` wrote: a link, purchase, sign-up or refund no earlier than `watermark`, with
    /// the identity handles its kind needs (a refund has none), an amount the parser accepts and a
    /// known currency.
    init(from reader: inout SnapshotReader, handles: SnapshotHandles, watermark: Int64) throws {
        let time = try reader.readTime("a pending event time")
        try SnapshotReader.require(time >= watermark, "a pending event is before the watermark")
        let rawKind = try reader.read(UInt8.self)
        guard let kind = EventKind(rawValue: rawKind),
            kind == .link || kind == .purchase || kind == .refund || kind == .signup
        else {
            throw SnapshotError.invalid("a pending event has kind \(rawKind)")
        }
        let id = try reader.readBytes()
        let user = try reader.read(Int32.self)
        let linked = try reader.read(Int32.self)
        let users = 0..<Int32(clamping: handles.users)
        switch kind {
        case .link:
            try SnapshotReader.require(
                users.contains(user) && users.contains(linked), "a link's identities are out of range")
        case .purchase, .signup:
            try SnapshotReader.require(users.contains(user) && linked == -1, "a purchase's identity is out of range")
        default: try SnapshotReader.require(user == -1 && linked == -1, "a refund has an identity")
        }
        let order = try reader.readBytes()
        let amount = try reader.read(Int64.self)
        try SnapshotReader.require(
            amount >= 0 && amount <= EventParser.maximumAmount, "a pending amount is out of range")
        let currency = Int(truncatingIfNeeded: try reader.read(Int64.self))
        try handles.checkCurrency(currency)
        let line = Int(truncatingIfNeeded: try reader.read(Int64.self))
        let batch = try reader.readOptional { try $0.readString() }
        let raw = try reader.readBytes()
        self.init(
            time: time, kind: kind, id: id, user: user, linked: linked, order: order, amount: amount,
            currency: currency,
            line: line, batch: batch, raw: raw)
    }
}

extension Order {
    /// The fewest bytes one order takes in a snapshot, with its key.
    static let minimumSnapshotSize = 8 + 8 + 8 + 8 + 8 + 16

    /// Writes the amount, currency, refunds so far and the credited keys with their shares.
    func write(to writer: inout SnapshotWriter) {
        writer.write(self.amount)
        writer.write(Int64(self.currency))
        writer.write(self.refunded)
        for credits in [self.credits] + self.otherCredits {
            writer.write(count: credits.count)
            for credit in credits {
                writer.write(credit.key.packed)
                writer.write(credit.share)
            }
        }
    }

    /// Reads what `write(to:)` wrote: an amount the parser accepts, refunds up to it, and for each of
    /// `models` at least one credited key, with shares that add up to one conversion (or to 0).
    init(from reader: inout SnapshotReader, handles: SnapshotHandles, models: Int = 1) throws {
        let amount = try reader.read(Int64.self)
        try SnapshotReader.require(
            amount >= 0 && amount <= EventParser.maximumAmount, "an order amount is out of range")
        let currency = Int(truncatingIfNeeded: try reader.read(Int64.self))
        try handles.checkCurrency(currency)
        let refunded = try reader.read(Int64.self)
        try SnapshotReader.require(refunded >= 0 && refunded <= amount, "an order's refunds exceed its amount")
        var lists: [[(key: RowKey, share: Int64)]] = []
        for _ in 0..<max(1, models) { lists.append(try Order.readCredits(from: &reader, handles: handles)) }
        self.init(
            amount: amount, currency: currency, refunded: refunded, credits: lists[0], otherCredits: Array(lists.dropFirst()))
    }

    /// One model's credited keys and shares.
    private static func readCredits(from reader: inout SnapshotReader, handles: SnapshotHandles) throws
        -> [(key: RowKey, share: Int64)]
    {
        let count = try reader.readCount(elementSize: 16)
        try SnapshotReader.require(count >= 1, "an order has no credited key")
        var credits: [(key: RowKey, share: Int64)] = []
        credits.reserveCapacity(count)
        var total: Int64 = 0
        for _ in 0..<count {
            var key = RowKey(creator: -1, campaign: -1)
            key.packed = try reader.read(UInt64.self)
            try handles.check(key)
            let share = try reader.read(Int64.self)
            try SnapshotReader.require(share >= 0 && share <= Micros.one, "an order's share is out of range")
            total += share
            credits.append((key, share))
        }
        // Zero when every time-decay weight underflowed (a half-life far shorter than the touch's age).
        try SnapshotReader.require(
            total == Micros.one || total == 0, "an order's shares add up to \(total), not one conversion")
        return credits
    }
}
