/// Money and fractional counts as exact integers of micro-units (1e-6).
///
/// Sums of integers do not depend on the order they are added in, so the rows do not depend on
/// arrival order; splitting by shares uses the largest-remainder method, so parts add up exactly.
public enum Micros {
    public static let one: Int64 = 1_000_000

    /// `12.5`, `10`, `0.333333`: at most six decimals, no trailing zeros.
    public static func text(_ micros: Int64) -> String {
        var output: [UInt8] = []
        self.append(micros, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends `text(micros)`'s bytes.
    @inline(__always)
    static func append(_ micros: Int64, to output: inout [UInt8]) {
        let magnitude = micros.magnitude
        if micros < 0 { output.append(UInt8(ascii: "-")) }
        // The whole part of Int64.min's magnitude (9,223,372,036,854) fits an Int64.
        JSONText.append(Int64(magnitude / 1_000_000), to: &output)
        var fraction = magnitude % 1_000_000
        guard fraction != 0 else { return }
        var digits = 6
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        output.append(UInt8(ascii: "."))
        JSONText.append(Int64(fraction), width: digits, to: &output)
    }

    /// `amount` converted at `rate`, rounded half to even; nil when the result does not fit an `Int64`.
    @inline(__always)
    public static func convert(_ amount: Int64, rate: Double) -> Int64? {
        if rate == 1 { return amount }
        return Int64(exactly: (Double(amount) * rate).rounded(.toNearestOrEven))
    }

    /// Splits `total` in proportion to `weights` so that the parts add up to `total` exactly.
    ///
    /// Each part is the floor of its exact share; the units left over go to the largest fractional
    /// remainders, ties to the earlier weight. Weights need not be normalised. A part of weight 0
    /// (or less) gets nothing and no part is negative: shares computed in doubles can round up, so
    /// each floor is capped by what is left of the total (and a share of a total near `Int64.max`
    /// cannot trap when converted back). Weights that do not add up to a positive finite number
    /// split the total evenly, so nothing is lost.
    public static func allocate(_ total: Int64, weights: [Double]) -> [Int64] {
        if weights.count == 1 { return [total] }
        guard !weights.isEmpty else { return [] }
        if total < 0 {
            // Never the case for money or conversions; kept exact all the same.
            guard total != .min else { return [total] + [Int64](repeating: 0, count: weights.count - 1) }
            return allocate(-total, weights: weights).map { -$0 }
        }
        let sum = weights.reduce(0) { $0 + max($1, 0) }
        guard sum > 0 && sum.isFinite else { return allocate(total, weights: weights.map { _ in 1 }) }
        var parts = [Int64](repeating: 0, count: weights.count)
        var remainders = [(Double, Int)]()
        remainders.reserveCapacity(weights.count)
        var assigned: Int64 = 0
        let whole = Double(total)
        for (index, weight) in weights.enumerated() where weight > 0 {
            let exact = whole * (weight / sum)
            let floor = exact.rounded(.down)
            // `floor < whole <= 2^63` converts; otherwise the share is the whole total.
            let part = floor < whole ? Int64(floor) : total
            parts[index] = min(part, total - assigned)
            assigned += parts[index]
            remainders.append((exact - floor, index))
        }
        var left = total - assigned
        if left > 0 {
            remainders.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
            var cursor = 0
            while left > 0 {
                parts[remainders[cursor % remainders.count].1] += 1
                left -= 1
                cursor += 1
            }
        }
        return parts
    }
}
