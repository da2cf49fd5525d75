/// Money and fractional counts as exact integers of micro-units (1e-6).
///
/// Sums of integers do not depend on the order they are added in, so the rows do not depend on
/// arrival order; splitting by shares uses the largest-remainder method, so parts add up exactly.
public enum Micros {
    public static let one: Int64 = 1_000_000

    /// `12.5`, `10`, `0.333333`: at most six decimals, no trailing zeros.
    public static func text(_ micros: Int64) -> String {
        let negative = micros < 0
        let magnitude = micros.magnitude
        let whole = magnitude / 1_000_000
        var fraction = magnitude % 1_000_000
        var text = negative ? "-\(whole)" : "\(whole)"
        if fraction != 0 {
            var digits = 6
            while fraction % 10 == 0 {
                fraction /= 10
                digits -= 1
            }
            let fractionText = String(fraction)
            text += "." + String(repeating: "0", count: digits - fractionText.count) + fractionText
        }
        return text
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
    /// remainders, ties to the earlier weight. Weights need not be normalised.
    public static func allocate(_ total: Int64, weights: [Double]) -> [Int64] {
        if weights.count == 1 { return [total] }
        let sum = weights.reduce(0, +)
        guard sum > 0 else { return weights.map { _ in 0 } }
        var parts = [Int64](repeating: 0, count: weights.count)
        var remainders = [(Double, Int)]()
        remainders.reserveCapacity(weights.count)
        var assigned: Int64 = 0
        for (index, weight) in weights.enumerated() {
            let exact = Double(total) * (weight / sum)
            let floor = exact.rounded(.down)
            parts[index] = Int64(floor)
            assigned += parts[index]
            remainders.append((exact - floor, index))
        }
        var left = total - assigned
        if left != 0 {
            remainders.sort { $0.0 != $1.0 ? $0.0 > $1.0 : $0.1 < $1.1 }
            var cursor = 0
            let step: Int64 = left > 0 ? 1 : -1
            while left != 0 {
                parts[remainders[cursor % remainders.count].1] += step
                left -= step
                cursor += 1
            }
        }
        return parts
    }
}
