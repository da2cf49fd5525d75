import Testing

@testable import RoasCore

/// The tier of a follower count, at and around each threshold (issue 14).
@Suite("Creator tiers")
struct CreatorTierTests {
    @Test("thresholds: a boundary value belongs to the higher tier")
    func thresholds() {
        #expect(CreatorTier(followers: 0) == .nano)
        #expect(CreatorTier(followers: 9_999) == .nano)
        #expect(CreatorTier(followers: 10_000) == .micro)
        #expect(CreatorTier(followers: 99_999) == .micro)
        #expect(CreatorTier(followers: 100_000) == .macro)
        #expect(CreatorTier(followers: 999_999) == .macro)
        #expect(CreatorTier(followers: 1_000_000) == .mega)
        #expect(CreatorTier(followers: 1_000_000_000_000) == .mega)
    }

    @Test("negative or over 10^12 has no tier")
    func outOfRange() {
        #expect(CreatorTier(followers: -1) == nil)
        #expect(CreatorTier(followers: 1_000_000_000_001) == nil)
        #expect(CreatorTier(followers: .max) == nil)
        #expect(CreatorTier(followers: .min) == nil)
    }

    @Test("typical engagement ranges and the low-engagement mark")
    func engagementRanges() {
        #expect(CreatorTier.nano.typicalEngagementRate == 0.05...0.10)
        #expect(CreatorTier.micro.typicalEngagementRate == 0.02...0.05)
        #expect(CreatorTier.macro.typicalEngagementRate == 0.01...0.02)
        #expect(CreatorTier.mega.typicalEngagementRate == 0.0...0.01)
        #expect(CreatorTier.nano.isLowEngagement(0.049))
        #expect(!CreatorTier.nano.isLowEngagement(0.05))
        #expect(CreatorTier.micro.isLowEngagement(0.019))
        #expect(!CreatorTier.macro.isLowEngagement(0.01))
        #expect(!CreatorTier.mega.isLowEngagement(0))
    }

    @Test("order and raw values")
    func order() {
        #expect(CreatorTier.allCases.sorted() == [.nano, .micro, .macro, .mega])
        #expect(CreatorTier.allCases.map(\.rawValue) == ["nano", "micro", "macro", "mega"])
    }
}
