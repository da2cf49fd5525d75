#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A count of distinct users (issue 14's `reach`): a HyperLogLog-family sketch that is exact for small
/// counts.
///
/// Up to `sparseLimit` distinct users it keeps their 64-bit hashes in a small open-addressing table
/// (probed by the hash's own low bits: the hash is already well mixed, so it is not hashed again) and the count is exact
/// (barring a 64-bit hash collision). Past that it switches to `2^precision` = 16,384 registers of one
/// byte each (16 KiB) and estimates with Ertl's improved estimator ("New cardinality estimation
/// algorithms for HyperLogLog sketches", 2017), which needs no bias tables and is unbiased over the
/// whole range. Its relative standard error is 1.04 / sqrt(16384) ≈ 0.81%, so 2% is about 2.5
/// standard errors. Two sketches merge (union) whatever their representation.
///
/// Each (pane, key) of the engine's windows holds one; a window's reach merges its panes' sketches,
/// and a `--by tier` roll-up merges its creators'.
public struct ReachSketch: Sendable, Equatable {
    public static let precision = 14
    public static let registerCount = 1 << precision
    /// Distinct hashes kept exactly before switching to registers.
    public static let sparseLimit = 1024
    /// Bits of the hash left after the register index.
    static let remainingBits = 64 - precision

    /// The distinct hashes while exact: open addressing, 0 for an empty slot (a hash of 0 is kept
    /// in `hasZero`), at most half full; empty until the first insert.
    private var table: [UInt64] = []
    private var hasZero = false
    private var sparseCount = 0
    private var registers: [UInt8] = []

    public init() {}

    public var isExact: Bool { self.registers.isEmpty }

    /// The user's hash: the interner's hash of the bytes (`Interner.hash`), then MurmurHash3's 64-bit
    /// finalizer. Stable across runs and machines (unlike `Hasher`), so sketches can be stored and
    /// merged; the engine takes the interner's hash of the user and only mixes it.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { mix(Interner.hash(bytes)) }

    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        Array(bytes).withUnsafeBytes { hash($0) }
    }

    /// MurmurHash3's fmix64.
    @inline(__always)
    static func mix(_ input: UInt64) -> UInt64 {
        var value = input
        value ^= value >> 33
        value = value &* 0xff51_afd7_ed55_8ccd
        value ^= value >> 33
        value = value &* 0xc4ce_b9fe_1a85_ec53
        value ^= value >> 33
        return value
    }

    public mutating func insert(user: String) { self.insert(hash: ReachSketch.hash(Array(user.utf8))) }

    @inline(__always)
    public mutating func insert(hash: UInt64) {
        guard self.registers.isEmpty else { return ReachSketch.update(&self.registers, hash) }
        if hash == 0 {
            if self.hasZero { return }
            self.hasZero = true
        } else {
            if self.table.isEmpty { self.table = [UInt64](repeating: 0, count: 8) }
            let mask = self.table.count - 1
            var slot = Int(truncatingIfNeeded: hash) & mask
            while true {
                let entry = self.table[slot]
                if entry == hash { return }
                if entry == 0 { break }
                slot = (slot + 1) & mask
            }
            self.table[slot] = hash
        }
        self.sparseCount += 1
        if self.sparseCount > ReachSketch.sparseLimit {
            self.densify()
        } else if self.sparseCount * 2 > self.table.count {
            self.growTable()
        }
    }

    private mutating func growTable() {
        let old = self.table
        self.table = [UInt64](repeating: 0, count: old.count * 2)
        let mask = self.table.count - 1
        for hash in old where hash != 0 {
            var slot = Int(truncatingIfNeeded: hash) & mask
            while self.table[slot] != 0 { slot = (slot + 1) & mask }
            self.table[slot] = hash
        }
    }

    /// The distinct hashes while exact, in table order.
    private var sparseHashes: [UInt64] {
        var hashes = self.table.filter { $0 != 0 }
        if self.hasZero { hashes.append(0) }
        return hashes
    }

    public static func == (a: ReachSketch, b: ReachSketch) -> Bool {
        a.registers == b.registers && a.sparseCount == b.sparseCount && a.sparseHashes.sorted() == b.sparseHashes.sorted()
    }

    @inline(__always)
    static func update(_ registers: inout [UInt8], _ hash: UInt64) {
        let index = Int(hash >> UInt64(remainingBits))
        let rest = hash << UInt64(precision)
        // Leading zeros of the remaining bits, plus one: 1 ... remainingBits + 1.
        let rank = UInt8(min(rest.leadingZeroBitCount, remainingBits) + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    private mutating func densify() {
        var registers = [UInt8](repeating: 0, count: ReachSketch.registerCount)
        for hash in self.sparseHashes { ReachSketch.update(&registers, hash) }
        self.registers = registers
        self.table = []
        self.hasZero = false
        self.sparseCount = 0
    }

    /// Adds every user of `other` (the union).
    public mutating func merge(_ other: ReachSketch) {
        if other.registers.isEmpty {
            // `sparseHashes`' order, without making the array: a window of 24 panes merges 24
            // sketches per key, and that array was most of a hopping window's allocations.
            for hash in other.table where hash != 0 { self.insert(hash: hash) }
            if other.hasZero { self.insert(hash: 0) }
            return
        }
        if self.registers.isEmpty { self.densify() }
        for index in 0..<ReachSketch.registerCount where other.registers[index] > self.registers[index] {
            self.registers[index] = other.registers[index]
        }
    }

    /// The number of distinct users: exact in the sparse representation, estimated after.
    public var count: Int64 {
        if self.registers.isEmpty { return Int64(self.sparseCount) }
        return Int64(ReachSketch.estimate(self.registers).rounded(.toNearestOrEven))
    }

    /// Ertl's improved raw estimator (algorithm 6 of the paper).
    static func estimate(_ registers: [UInt8]) -> Double {
        let q = remainingBits
        var histogram = [Int](repeating: 0, count: q + 2)
        for register in registers { histogram[Int(register)] += 1 }
        let m = Double(registers.count)
        var z = m * tau(1 - Double(histogram[q + 1]) / m)
        for k in stride(from: q, through: 1, by: -1) {
            z = 0.5 * (z + Double(histogram[k]))
        }
        z += m * sigma(Double(histogram[0]) / m)
        let alphaInfinity = 1 / (2 * log(2.0))
        return alphaInfinity * m * m / z
    }

    static func sigma(_ input: Double) -> Double {
        if input == 1 { return .infinity }
        var x = input
        var y = 1.0
        var z = x
        while true {
            x *= x
            let previous = z
            z += x * y
            y += y
            if z == previous { return z }
        }
    }

    static func tau(_ input: Double) -> Double {
        if input == 0 || input == 1 { return 0 }
        var x = input
        var y = 1.0
        var z = 1 - x
        while true {
            x = x.squareRoot()
            let previous = z
            y *= 0.5
            z -= (1 - x) * (1 - x) * y
            if z == previous { return z / 3 }
        }
    }
}

// MARK: Snapshots

extension ReachSketch {
    var snapshotByteEstimate: Int {
        self.registers.isEmpty ? 11 + 8 * self.sparseCount : 11 + ReachSketch.registerCount
    }

    /// A sparse sketch as its hashes in ascending order, or the registers.
    func write(to writer: inout SnapshotWriter) {
        if self.registers.isEmpty {
            writer.write(UInt8(0))
            writer.write(raw: self.sparseHashes.sorted())
        } else {
            writer.write(UInt8(1))
            writer.write(raw: self.registers)
        }
    }

    /// Reads what `write(to:)` wrote: at most `sparseLimit` distinct hashes in ascending order, or
    /// `registerCount` registers of at most `remainingBits + 1`.
    init(from reader: inout SnapshotReader) throws {
        self.init()
        switch try reader.read(UInt8.self) {
        case 0:
            let hashes = try reader.readRaw(UInt64.self)
            try SnapshotReader.require(hashes.count <= ReachSketch.sparseLimit, "a reach sketch holds \(hashes.count) hashes")
            for index in hashes.indices.dropFirst() {
                try SnapshotReader.require(hashes[index - 1] < hashes[index], "a reach sketch's hashes are out of order")
            }
            for hash in hashes { self.insert(hash: hash) }
        case 1:
            let registers = try reader.readRaw(UInt8.self)
            try SnapshotReader.require(
                registers.count == ReachSketch.registerCount
                    && registers.allSatisfy { $0 <= UInt8(ReachSketch.remainingBits + 1) },
                "a reach sketch's registers are invalid")
            self.registers = registers
        case let kind:
            throw SnapshotError.invalid("a reach sketch has kind \(kind)")
        }
    }
}
