import Testing

@testable import RoasCore

/// The user interner's growth past `Interner.wholeGrowthSlots`: a table twice the size filled a few
/// strings at a time beside the one lookups read, so that no string pays for moving them all.
@Suite("Interner growth")
struct InternerTests {
    static func string(_ number: Int) -> [UInt8] { PagedArrayTests.string(UInt64(number)) }

    static func restored(_ bytes: [UInt8]) throws -> Interner {
        try bytes.withUnsafeBytes { raw in
            var reader = SnapshotReader(raw)
            return try Interner(from: &reader)
        }
    }

    /// Every string interned has the handle of its first appearance, and one never interned the next
    /// handle, whether the table is growing or not.
    static func expectLookups(_ interner: Interner, strings: Int, probe: Int, _ context: String) {
        for number in [0, probe / 2, probe, max(strings - 1, 0)] where number < strings {
            let got = Self.string(number).withUnsafeBytes { interner.prospectiveHandle($0, hash: Interner.hash($0)) }
            #expect(got == Int32(number), "\(context): string \(number)")
        }
        let missing = Self.string(10_000_000 + probe).withUnsafeBytes { interner.prospectiveHandle($0, hash: Interner.hash($0)) }
        #expect(missing == Int32(strings), "\(context): a string never interned")
    }

    /// 300,000 distinct strings, paged and not, with a copy held and snapshots taken while the table
    /// grows: the growths past 2^16 slots span thousands of strings each (the step that ends one moves
    /// at most `stringsMovedPerString`), lookups stay right throughout, a snapshot taken mid-growth
    /// reads back and goes on to the same handles, a held copy does not change, and once grown the
    /// table is the one the names in handle order make (the same snapshot bytes as an interner
    /// restored mid-growth and grown on, and as one made large enough up front never to grow).
    @Test(arguments: [false, true])
    func aLargeTableGrowsAFewStringsAtATime(paged: Bool) throws {
        var interner = Interner(capacity: 16)
        interner.setPaged(paged)
        var spans: [Int] = []
        var growingSince: Int? = nil
        var midGrowth: (interner: Interner, bytes: [UInt8], count: Int)? = nil
        for number in 0..<300_000 {
            let handle = Self.string(number).withUnsafeBytes { interner.intern($0) }
            #expect(handle == Int32(number))
            if interner.isGrowing, growingSince == nil { growingSince = number }
            if !interner.isGrowing, let since = growingSince {
                spans.append(number - since)
                growingSince = nil
            }
            if interner.isGrowing, number % 5_003 == 0 {
                Self.expectLookups(interner, strings: number + 1, probe: number - 1_000, "growing at \(number)")
                if midGrowth == nil {
                    var writer = SnapshotWriter()
                    interner.write(to: &writer)
                    midGrowth = (interner, writer.bytes, number + 1)
                }
            }
        }
        #expect(!interner.isGrowing)
        // 2^17 to 2^18 slots at 65,537 strings, 2^18 to 2^19 at 131,073 and 2^19 to 2^20 at 262,145.
        #expect(spans.count == 3, "\(spans)")
        #expect(spans.allSatisfy { $0 > 4_000 }, "each growth spread over thousands of strings: \(spans)")
        Self.expectLookups(interner, strings: 300_000, probe: 123_456, "grown")

        // The copy held since mid-growth is as it was, and its snapshot reads back and grows on alike.
        let held = try #require(midGrowth)
        var writer = SnapshotWriter()
        held.interner.write(to: &writer)
        #expect(writer.bytes == held.bytes, "a held copy did not change")
        var restored = try Self.restored(held.bytes)
        #expect(restored.count == held.count && !restored.isGrowing)
        restored.setPaged(paged)
        for number in held.count..<300_000 {
            #expect(Self.string(number).withUnsafeBytes { restored.intern($0) } == Int32(number))
        }
        #expect(!restored.isGrowing)
        var final = SnapshotWriter()
        interner.write(to: &final)
        var again = SnapshotWriter()
        restored.write(to: &again)
        #expect(final.bytes == again.bytes, "the same table whatever the growth went through")
        // And the table an interner made that large up front holds, never grown: the names in handle order.
        var unGrown = Interner(capacity: 300_000)
        for number in 0..<300_000 { _ = Self.string(number).withUnsafeBytes { unGrown.intern($0) } }
        #expect(unGrown.tableSize == interner.tableSize)
        var whole = SnapshotWriter()
        unGrown.write(to: &whole)
        #expect(final.bytes == whole.bytes, "the table of a never-grown interner")
    }

    /// A growth dropped after every string (`dropGrowth`, as a checkpoint's copy does) starts over
    /// each time, so the table fills past half: at 9/16 the whole growth is done at once, and no
    /// snapshot is ever refused for too full a table.
    @Test func aTableNeverFillsPastNineSixteenths() throws {
        var interner = Interner(capacity: 16)
        var wholeGrowths = 0
        for number in 0..<140_000 {
            let slotsBefore = interner.tableSize
            #expect(Self.string(number).withUnsafeBytes { interner.intern($0) } == Int32(number))
            interner.dropGrowth()
            if interner.tableSize != slotsBefore && slotsBefore >= Interner.wholeGrowthSlots * 2 { wholeGrowths += 1 }
            #expect(!Interner.isNearlyFull(count: interner.count, slots: interner.tableSize), "at \(number)")
            if number % 9_001 == 0 || number == 73_727 {
                var writer = SnapshotWriter()
                interner.write(to: &writer)
                let restored = try Self.restored(writer.bytes)
                Self.expectLookups(restored, strings: number + 1, probe: number / 3, "restored at \(number)")
            }
        }
        #expect(wholeGrowths == 1, "the table of 2^17 slots grew whole once 9/16 full")
        Self.expectLookups(interner, strings: 140_000, probe: 70_000, "after")
    }
}
