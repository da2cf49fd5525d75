/// The kinds of event roas reads. New kinds are only ever added at the end (their raw values are
/// counter positions in snapshots).
public enum EventKind: UInt8, CaseIterable, Sendable, Comparable {
    case view, click, purchase, refund, link, spend
    /// An interaction with a creator's content (like, comment, share, save, follow): counted, never credited.
    case engagement
    /// A lead, attributed like a purchase and counted in `leads`.
    case signup
    /// A creator's profile (follower count) as of its time: the tier of the creator's rows.
    case creator

    /// The wire name, as in the `type` field.
    public var name: String {
        switch self {
        case .view: "view"
        case .click: "click"
        case .purchase: "purchase"
        case .refund: "refund"
        case .link: "link"
        case .spend: "spend"
        case .engagement: "engagement"
        case .signup: "signup"
        case .creator: "creator"
        }
    }

    public static func < (lhs: EventKind, rhs: EventKind) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Why a line or a batch was rejected: the `reason` of a dead-letter record.
public enum Reason: String, CaseIterable, Sendable, Comparable {
    case tooLong = "too_long"
    case badFrame = "bad_frame"
    case badSignature = "bad_signature"
    case staleBatch = "stale_batch"
    case replayedBatch = "replayed_batch"
    case unsigned
    case malformed
    case unknownType = "unknown_type"
    case invalid
    case unknownCurrency = "unknown_currency"
    case late
    case duplicate
    case duplicateOrder = "duplicate_order"
    case unknownOrder = "unknown_order"
    case overRefund = "over_refund"
    /// A batch id already accepted, sent again with a different body (a resend must be byte-identical).
    case conflict
    /// An event further ahead of the clock than `--max-future` (`roas serve`).
    case future
    /// An event that would add a key (user, creator or campaign) past `--max-keys`.
    case tooManyKeys = "too_many_keys"
    /// An event whose amounts cannot be represented (see `Engine.paneLimit`).
    case overflow

    public static func < (lhs: Reason, rhs: Reason) -> Bool {
        lhs.index < rhs.index
    }
}

/// A rejection found while reading a line: the reason and a short human explanation.
public struct Rejection: Error, Sendable, Equatable {
    public var reason: Reason
    public var detail: String
    /// For the header line of a rejected batch with a large payload: what its dead letter keeps of it.
    public var payload: TruncatedPayload?

    public init(_ reason: Reason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}
