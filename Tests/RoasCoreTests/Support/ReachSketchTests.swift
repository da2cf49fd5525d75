import Testing

@testable import RoasCore

/// The reach sketch against exact counts on seeded streams (issue 14).
@Suite("Reach sketch")
struct ReachSketchTests {
    /// `distinct` user ids, distinct per seed.
    static func users(distinct: Int, seed: UInt64) -> [String] {
        (0..<distinct).map { "u\(seed)-\($0)" }
    }

    @Test("exact up to the sparse limit, with repeats")
    func exactWhenSmall() {
        for distinct in [0, 1, 2, 17, 500, ReachSketch.sparseLimit] {
            var sketch = ReachSketch()
            for _ in 0..<3 {
                for user in Self.users(distinct: distinct, seed: 1) { sketch.insert(user: user) }
            }
            #expect(sketch.isExact)
            #expect(sketch.count == Int64(distinct))
        }
    }

    @Test(
        "within 2% of the exact count from 1,025 to 10^6 users",
        arguments: [
            (1_025, UInt64(2)), (5_000, 3), (20_000, 4), (50_000, 5), (100_000, 6), (1_000_000, 7),
        ])
    func estimated(distinct: Int, seed: UInt64) {
        var sketch = ReachSketch()
        for index in 0..<distinct {
            sketch.insert(user: "u\(seed)-\(index)")
            if index % 3 == 0 { sketch.insert(user: "u\(seed)-\(index)") }
        }
        #expect(!sketch.isExact)
        let error = abs(Double(sketch.count) - Double(distinct)) / Double(distinct)
        #expect(error <= 0.02, "\(distinct) users estimated \(sketch.count)")
    }

    @Test("merging panes counts each user once")
    func merge() {
        // Three overlapping panes: users 0..<800, 400..<1200, 1000..<30000.
        var a = ReachSketch()
        var b = ReachSketch()
        var c = ReachSketch()
        for index in 0..<800 { a.insert(user: "u\(index)") }
        for index in 400..<1200 { b.insert(user: "u\(index)") }
        for index in 1000..<30_000 { c.insert(user: "u\(index)") }
        var small = a
        small.merge(a)
        #expect(small.count == 800)
        var ab = a
        ab.merge(b)
        #expect(!ab.isExact)  // past the sparse limit: estimated
        #expect(abs(Double(ab.count) - 1200) / 1200 <= 0.02)
        var abc = ab
        abc.merge(c)
        var cba = c
        cba.merge(b)
        cba.merge(a)
        #expect(abc == cba)
        #expect(abs(Double(abc.count) - 30_000) / 30_000 <= 0.02)
    }

    @Test("merging exact sketches stays exact, the zero hash (kept apart from the table) included")
    func mergeExact() {
        var a = ReachSketch()
        var b = ReachSketch()
        var both = ReachSketch()
        for hash: UInt64 in [0, 1, 2, 3, 1 << 40] {
            a.insert(hash: hash)
            both.insert(hash: hash)
        }
        for hash: UInt64 in [2, 3, 4, 0, .max] {
            b.insert(hash: hash)
            both.insert(hash: hash)
        }
        var merged = a
        merged.merge(b)
        #expect(merged.isExact)
        #expect(merged.count == 7)
        #expect(merged == both)
        var empty = ReachSketch()
        empty.merge(b)
        #expect(empty == b)
        #expect(empty.count == 5)
        var noZero = ReachSketch()
        noZero.insert(hash: 9)
        noZero.merge(ReachSketch())
        #expect(noZero.count == 1)
    }

    @Test("the hash is stable across runs")
    func stableHash() {
        // The interner's fixed-seed hash, mixed (the engine reuses the interner's hash of each user).
        #expect(ReachSketch.hash("".utf8) == ReachSketch.mix(Interner.hash(UnsafeRawBufferPointer(start: nil, count: 0))))
        #expect(ReachSketch.hash("".utf8) == ReachSketch.hash(UnsafeRawBufferPointer(start: nil, count: 0)))
        // A fixed value: sketches written by one build must merge with another's.
        #expect(ReachSketch.hash("u1".utf8) == 0x8c13_3ba5_0beb_0d09)
        #expect(ReachSketch.hash("u1".utf8) == ReachSketch.hash(Array("u1".utf8)))
        #expect(ReachSketch.hash("u1".utf8) != ReachSketch.hash("u2".utf8))
    }
}
