import RoasCore

/// The figures behind the generated stream (documented in docs/generator.md, "The model").
public enum GeneratorModel {
    /// Creator tiers by followers, with their typical engagement rate and their cost.
    public enum Tier: Int, CaseIterable, Sendable {
        case nano, micro, macro, mega

        public var name: String {
            switch self {
            case .nano: "nano"
            case .micro: "micro"
            case .macro: "macro"
            case .mega: "mega"
            }
        }

        /// Share of creators in the tier.
        public var share: Double {
            switch self {
            case .nano: 0.60
            case .micro: 0.30
            case .macro: 0.08
            case .mega: 0.02
            }
        }

        /// Followers, drawn log-uniformly in this range.
        public var followers: ClosedRange<Double> {
            switch self {
            case .nano: 1_000...10_000
            case .micro: 10_000...100_000
            case .macro: 100_000...1_000_000
            case .mega: 1_000_000...20_000_000
            }
        }

        /// Engagement rate, drawn uniformly in this range.
        public var engagement: ClosedRange<Double> {
            switch self {
            case .nano: 0.05...0.10
            case .micro: 0.02...0.05
            case .macro: 0.01...0.02
            case .mega: 0.003...0.01
            }
        }

        /// Flat fee in USD paid at each UTC day start.
        public var dailyFee: Int64 {
            switch self {
            case .nano: 20
            case .micro: 100
            case .macro: 600
            case .mega: 3000
            }
        }

        /// CPM (USD per 1000 views).
        public var cpm: Int64 {
            switch self {
            case .nano: 4
            case .micro: 6
            case .macro: 8
            case .mega: 10
            }
        }
    }

    /// Engagement actions and their weights (an engagement follows a view at the creator's engagement rate).
    public static let actions: [(name: String, weight: Double)] = [
        ("like", 0.70), ("comment", 0.10), ("share", 0.08), ("save", 0.07), ("follow", 0.05),
    ]
    /// Delay of an engagement after its view, in milliseconds.
    public static let engagementDelay: ClosedRange<Double> = 2_000...60_000
    /// Share of clicks followed by a sign-up (a newsletter or account: a lead), and its delay.
    public static let signupRate = 0.05
    public static let signupDelay: ClosedRange<Double> = 30_000...1_800_000
    /// Platforms of creator profiles, by creator index.
    public static let platforms = ["tiktok", "instagram", "youtube"]

    /// Events per user per second of event time (about 170 a day).
    public static let eventsPerUserSecond = 0.002
    /// Exponent of the Zipf weight 1/rank^s of a creator's popularity.
    public static let zipfExponent = 1.0
    /// Share of creators that run a campaign (the others post organically: `campaign` absent).
    public static let campaignShare = 0.8
    /// Creators per campaign, on average.
    public static let creatorsPerCampaign = 20
    /// View-to-click rate range; the per-creator rate sits in it by engagement.
    public static let clickRate: ClosedRange<Double> = 0.01...0.03
    /// Click-to-purchase rate range, likewise.
    public static let purchaseRate: ClosedRange<Double> = 0.02...0.05
    /// A view without a click leads to a purchase with probability clickRate x purchaseRate x this.
    public static let viewThroughFactor = 0.25
    /// Weight of engagement (against a random draw) in placing a creator's rates in their ranges.
    public static let engagementWeight = 0.6
    /// Share of purchasing users who shop on Amazon: linked tt: -> amz: before their first purchase.
    public static let amazonShare = 0.30
    /// Share of orders refunded.
    public static let refundShare = 0.065
    /// Share of refunds that are full (the others refund 10-90% of the order).
    public static let fullRefundShare = 0.6
    /// Order value: log-normal with this median (in the order's currency) and sigma.
    public static let orderMedian = 35.0
    public static let orderSigma = 0.6
    /// A CPM spend is booked every this many views of a creator: views/1000 x CPM.
    public static let cpmViews = 500
    /// Delays, in milliseconds.
    public static let clickDelay: ClosedRange<Double> = 1_000...30_000
    public static let clickToCheckout: ClosedRange<Double> = 20_000...3_600_000
    public static let viewToCheckout: ClosedRange<Double> = 300_000...72_000_000
    public static let checkoutToPurchase: ClosedRange<Int64> = 10_000...120_000
    public static let refundDelay: ClosedRange<Double> = 86_400_000...1_209_600_000
    /// Shortest click-to-checkout or view-to-checkout delay when the stream is too short for the one drawn.
    public static let shortestFollowUp: Int64 = 20_000
    /// Shortest refund delay when the stream is too short for the one drawn.
    public static let shortestRefundDelay: Int64 = 60_000
}
