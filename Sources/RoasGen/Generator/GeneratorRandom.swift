import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// xoshiro256** (Blackman & Vigna 2018), seeded through SplitMix64: small, fast and reproducible on
/// every platform, so a seed names one stream of bytes.
struct GeneratorRandom {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// A generator for `seed` and `stream`; different streams of one seed are independent.
    init(seed: UInt64, stream: UInt64 = 0) {
        var mixer = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        func splitMix() -> UInt64 {
            mixer &+= 0x9E37_79B9_7F4A_7C15
            return GeneratorRandom.mix(mixer)
        }
        self.s0 = splitMix()
        self.s1 = splitMix()
        self.s2 = splitMix()
        self.s3 = splitMix()
    }

    /// SplitMix64's finaliser: a bijection of `UInt64` that scrambles every bit.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((self.s1 &* 5) << 7 | (self.s1 &* 5) >> 57) &* 9
        let t = self.s1 << 17
        self.s2 ^= self.s0
        self.s3 ^= self.s1
        self.s1 ^= self.s2
        self.s0 ^= self.s3
        self.s2 ^= t
        self.s3 = self.s3 << 45 | self.s3 >> 19
        return result
    }

    /// Uniform in [0, 1), 53 bits.
    @inline(__always)
    mutating func unit() -> Double {
        Double(self.next() >> 11) * 0x1.0p-53
    }

    /// Uniform in 0..<bound (Lemire's multiply-shift; the bias is below 2^-32 for the bounds used here).
    @inline(__always)
    mutating func below(_ bound: Int) -> Int {
        Int(truncatingIfNeeded: UInt64(bound).multipliedFullWidth(by: self.next()).high)
    }

    /// Uniform in [low, high].
    @inline(__always)
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * self.unit()
    }

    /// Integer uniform in [low, high].
    @inline(__always)
    mutating func uniform(_ low: Int64, _ high: Int64) -> Int64 {
        low + Int64(self.below(Int(high - low + 1)))
    }

    /// Log-uniform in [low, high]: every factor of ten is equally likely.
    @inline(__always)
    mutating func logUniform(_ low: Double, _ high: Double) -> Double {
        low * exp(self.unit() * log(high / low))
    }

    /// Exponential with the given mean.
    @inline(__always)
    mutating func exponential(mean: Double) -> Double {
        -mean * log(1 - self.unit())
    }

    /// Standard normal (Box-Muller; one of the pair is dropped, normals are rare here).
    mutating func normal() -> Double {
        let u = 1 - self.unit()
        let v = self.unit()
        return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
    }

    /// True with probability `probability`.
    @inline(__always)
    mutating func chance(_ probability: Double) -> Bool {
        self.unit() < probability
    }
}

/// Bernoulli trials with an exact long-run rate: exactly one hit at a random position in each stride
/// of 1/rate trials, so after n trials the hit count is rate x n within one, while the positions still
/// look random. Used wherever docs/generator.md promises a share (faults, links, refunds).
struct Quota {
    let rate: Double
    private var trial: Int64 = 0
    private var hits: Int64 = 0
    private var nextHit: Int64 = .max

    init(rate: Double, random: inout GeneratorRandom) {
        self.rate = rate
        if rate > 0 { self.nextHit = Quota.position(0, rate: rate, random: &random) }
    }

    private static func position(_ hit: Int64, rate: Double, random: inout GeneratorRandom) -> Int64 {
        let exact = (Double(hit) + random.unit()) / rate
        return exact >= 9.0e18 ? .max : Int64(exact)
    }

    /// Takes one trial.
    @inline(__always)
    mutating func next(_ random: inout GeneratorRandom) -> Bool {
        defer { self.trial += 1 }
        guard self.trial >= self.nextHit else { return false }
        self.hits += 1
        self.nextHit = max(self.trial + 1, Quota.position(self.hits, rate: self.rate, random: &random))
        return true
    }

    /// Whether trial `index` (counted by the caller) is a hit; calls must come with growing indices.
    @inline(__always)
    mutating func hit(at index: Int64, _ random: inout GeneratorRandom) -> Bool {
        guard index >= self.nextHit else { return false }
        self.hits += 1
        self.nextHit = max(index + 1, Quota.position(self.hits, rate: self.rate, random: &random))
        return true
    }
}

/// Stratified draws from a categorical distribution: each block of `blockSize` draws takes one
/// uniform from each of `blockSize` equal strata of [0, 1), in random order, so the shares of a few
/// hundred draws already match the weights closely.
struct StratifiedChoice {
    private let cumulative: [Double]
    private var order: [Int]
    private var cursor: Int

    init(weights: [Double], blockSize: Int = 20) {
        let total = weights.reduce(0, +)
        var sum = 0.0
        self.cumulative = weights.map { weight in
            sum += weight / total
            return sum
        }
        self.order = Array(0..<blockSize)
        self.cursor = blockSize
    }

    mutating func next(_ random: inout GeneratorRandom) -> Int {
        if self.cursor == self.order.count {
            for index in stride(from: self.order.count - 1, to: 0, by: -1) {
                self.order.swapAt(index, random.below(index + 1))
            }
            self.cursor = 0
        }
        let value = (Double(self.order[self.cursor]) + random.unit()) / Double(self.order.count)
        self.cursor += 1
        for (index, bound) in self.cumulative.enumerated() where value < bound { return index }
        return self.cumulative.count - 1
    }
}

/// Walker's alias method (Vose's construction): O(1) draws from fixed weights.
struct AliasTable {
    private let probability: [Double]
    private let alias: [Int32]

    init(weights: [Double]) {
        let count = weights.count
        let total = weights.reduce(0, +)
        var scaled = weights.map { $0 / total * Double(count) }
        var probability = [Double](repeating: 1, count: count)
        var alias = [Int32](repeating: 0, count: count)
        var small: [Int] = []
        var large: [Int] = []
        for index in 0..<count {
            if scaled[index] < 1 { small.append(index) } else { large.append(index) }
        }
        while let less = small.popLast(), let more = large.last {
            probability[less] = scaled[less]
            alias[less] = Int32(more)
            scaled[more] -= 1 - scaled[less]
            if scaled[more] < 1 {
                large.removeLast()
                small.append(more)
            }
        }
        for index in large + small {
            probability[index] = 1
            alias[index] = Int32(index)
        }
        self.probability = probability
        self.alias = alias
    }

    @inline(__always)
    func draw(_ random: inout GeneratorRandom) -> Int {
        let bits = random.next()
        let index = Int(truncatingIfNeeded: UInt64(self.probability.count).multipliedFullWidth(by: bits).high)
        // The low bits are independent of the index drawn from the high product.
        let unit = Double(bits & 0xF_FFFF_FFFF) * 0x1.0p-36
        return unit < self.probability[index] ? index : Int(self.alias[index])
    }
}
