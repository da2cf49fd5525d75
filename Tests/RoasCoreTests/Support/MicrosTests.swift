import Testing

@testable import RoasCore

/// `Micros.allocate` splits a purchase's revenue and its one conversion over the touches that earned
/// them: the parts must add up to the total exactly and never be negative, whatever the weights.
struct MicrosAllocateTests {
    /// Checks one split: exact sum, no negative part, a part of weight 0 gets nothing, and no part is
    /// further than two units plus the double rounding of the total from its exact share.
    static func check(_ total: Int64, _ weights: [Double]) {
        let parts = Micros.allocate(total, weights: weights)
        #expect(parts.count == weights.count)
        #expect(parts.reduce(0, +) == total, "\(total) over \(weights): \(parts)")
        #expect(parts.allSatisfy { $0 >= 0 }, "\(total) over \(weights): \(parts)")
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return }
        let slack = 2 + Double(total) * 0x1p-50 * Double(weights.count)
        for (part, weight) in zip(parts, weights) {
            let exact = Double(total) * (weight / sum)
            #expect(abs(Double(part) - exact) <= slack, "\(total) over \(weights): \(parts)")
            if weight == 0 { #expect(part == 0, "\(total) over \(weights): \(parts)") }
        }
    }

    /// Found by the engine fuzz target (time-decay, a half-life of 1 ms, a purchase of 10^12): the
    /// rounded-up shares of two heavy touches passed the total, and the units taken back went round
    /// every touch, so touches of weight 0 got -1 (a negative figure on a row, and then an overflow
    /// trap in the check that guards the row sums).
    @Test func roundingNeverGivesNegativeParts() {
        Self.check(1_000_000_000_000_000_000, [0.5000000000000001, 0.5000000000000001, 0, 0, 0])
        Self.check(1_000_000_000_000_000_000, [1, 1, 1, 0, .leastNonzeroMagnitude, 1e-300])
        Self.check(999_999_999_999_999_999, [0.3, 0.3, 0.4, 0])
        Self.check(Micros.one, [1, 0, 0])
    }

    @Test(arguments: 0..<40 as Range<UInt64>)
    func randomSplits(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let count = 1 + Int(random.next() % 8)
            let weights = (0..<count).map { _ -> Double in
                switch random.next() % 6 {
                case 0: 0
                case 1: Double.leastNonzeroMagnitude
                case 2: Double(random.next() % 1000) / 7
                case 3: 1
                case 4: Double(bitPattern: 0x3FE0_0000_0000_0000 | (random.next() & 0xF))  // just over 0.5
                default: Double(random.next() >> 11) * 0x1p-53
                }
            }
            let total: Int64 =
                switch random.next() % 4 {
                case 0: Micros.one
                case 1: Int64(random.next() % 1_000_000_000)
                case 2: Int64.max - Int64(random.next() % 1000)
                default: Int64(random.next() >> 1)
                }
            Self.check(total, weights)
        }
    }
}
