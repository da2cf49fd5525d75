import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// `NameOrder`: the ranks that windows' rows sort by are the names' byte order, however the names
/// arrived and in however many steps the order was brought up to date.
@Suite("Name order")
struct NameOrderTests {
    /// Names of random bytes and lengths (0 to 6, so that prefixes, empty names and bytes over 0x7f
    /// all occur), interned in random steps; after each step the ranks sort the handles exactly as
    /// their bytes do.
    @Test(arguments: 0..<20)
    func ranksFollowTheBytesWhateverTheSteps(seed: Int) {
        var generator = SplitMix64(seed: UInt64(seed))
        var interner = Interner()
        var order = NameOrder()
        var names: [[UInt8]] = []
        for _ in 0..<(1 + Int(generator.next() % 8)) {
            for _ in 0..<Int(generator.next() % 200) {
                let length = Int(generator.next() % 7)
                let name = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next() % 5 == 0 ? 0xc3 : 0x61 + generator.next() % 4) }
                let handle = name.withUnsafeBytes { interner.intern($0) }
                if Int(handle) == names.count { names.append(name) }
                #expect(names[Int(handle)] == name)
            }
            order.update(interner)
            #expect(order.ranks.count == names.count)
            let byRank = names.indices.sorted { order.ranks[$0] < order.ranks[$1] }
            let byBytes = names.indices.sorted { names[$0].lexicographicallyPrecedes(names[$1]) }
            #expect(byRank == byBytes)
            #expect(order.sorted.map(Int.init) == byBytes)
        }
    }

    /// Rows of a window: creator, then campaign, bytewise, nulls last.
    @Test func rowsSortByCreatorThenCampaignWithNullsLast() {
        var creators = Interner()
        var campaigns = Interner()
        let b = creators.intern("b")
        let a = creators.intern("a")
        let ab = creators.intern("ab")
        let spring = campaigns.intern("spring")
        let fall = campaigns.intern("fall")
        var creatorOrder = NameOrder()
        var campaignOrder = NameOrder()
        creatorOrder.update(creators)
        campaignOrder.update(campaigns)
        let order = Engine.RowOrder(creators: creatorOrder.ranks, campaigns: campaignOrder.ranks)
        let keys = [
            RowKey(creator: -1, campaign: fall), RowKey(creator: b, campaign: -1), RowKey(creator: ab, campaign: spring),
            RowKey(creator: a, campaign: spring), RowKey(creator: a, campaign: -1), RowKey(creator: a, campaign: fall),
        ]
        let sorted = keys.sorted { order.precedes($0, $1) }
        #expect(
            sorted == [
                RowKey(creator: a, campaign: fall), RowKey(creator: a, campaign: spring), RowKey(creator: a, campaign: -1),
                RowKey(creator: ab, campaign: spring), RowKey(creator: b, campaign: -1), RowKey(creator: -1, campaign: fall),
            ])
    }
}
