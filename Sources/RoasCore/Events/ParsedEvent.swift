/// One event read from a line. Its byte fields point into the line or the parser's scratch memory and
/// are valid until the parser reads the next line; the engine copies what it keeps.
public struct ParsedEvent {
    public var kind: EventKind
    /// Event time, epoch milliseconds.
    public var time: Int64
    public var id: UnsafeRawBufferPointer
    /// The acting identity (view, click, purchase, link, engagement, signup); empty otherwise.
    public var user: UnsafeRawBufferPointer
    /// The other identity of a link.
    public var linked: UnsafeRawBufferPointer
    /// View, click, spend, engagement, creator.
    public var creator: UnsafeRawBufferPointer
    /// Optional on view, click, spend, engagement; nil when absent or null.
    public var campaign: UnsafeRawBufferPointer?
    /// Purchase, refund.
    public var order: UnsafeRawBufferPointer
    /// Purchase, refund, spend: micro-units of `currency`. Creator: the follower count.
    public var amount: Int64
    /// Index into the engine's `CurrencyTable`; 0 is the base currency.
    public var currency: Int

    public static var empty: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    public init(
        kind: EventKind, time: Int64, id: UnsafeRawBufferPointer, user: UnsafeRawBufferPointer = empty,
        linked: UnsafeRawBufferPointer = empty, creator: UnsafeRawBufferPointer = empty,
        campaign: UnsafeRawBufferPointer? = nil, order: UnsafeRawBufferPointer = empty, amount: Int64 = 0,
        currency: Int = 0
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
}
