/// A creator's tier by follower count (issue 14): nano under 10,000, micro 10,000 to under 100,000,
/// macro 100,000 to under 1,000,000, mega 1,000,000 and over. A boundary value belongs to the higher tier.
///
/// Not yet wired into the parser, the engine or rows: this is the classification and the typical
/// engagement-rate ranges that the `creator` event, the row's `tier`, `roas gen` and the dashboard's
/// low-engagement mark will share.
public enum CreatorTier: String, Sendable, CaseIterable, Comparable {
    case nano, micro, macro, mega

    /// The largest follower count a `creator` event may carry (10^12); above it the event is `invalid`.
    public static let maximumFollowers: Int64 = 1_000_000_000_000

    /// The tier of `followers`, or nil when it is negative or over `maximumFollowers`.
    public init?(followers: Int64) {
        guard followers >= 0, followers <= CreatorTier.maximumFollowers else { return nil }
        switch followers {
        case ..<10_000: self = .nano
        case ..<100_000: self = .micro
        case ..<1_000_000: self = .macro
        default: self = .mega
        }
    }

    /// The tier's typical engagement rate (engagements / views): nano 5-10%, micro 2-5%, macro 1-2%,
    /// mega under 1%. `lowerBound` is the rate under which a creator is marked as low-engagement.
    public var typicalEngagementRate: ClosedRange<Double> {
        switch self {
        case .nano: 0.05...0.10
        case .micro: 0.02...0.05
        case .macro: 0.01...0.02
        case .mega: 0.0...0.01
        }
    }

    /// True when `rate` is below the tier's typical range (never for mega, whose range starts at 0).
    public func isLowEngagement(_ rate: Double) -> Bool { rate < self.typicalEngagementRate.lowerBound }

    public static func < (lhs: CreatorTier, rhs: CreatorTier) -> Bool {
        CreatorTier.allCases.firstIndex(of: lhs)! < CreatorTier.allCases.firstIndex(of: rhs)!
    }
}
