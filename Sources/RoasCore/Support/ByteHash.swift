/// A fast 64-bit hash of a byte string (multiply-fold mixing, in the style of wyhash).
///
/// Used for the engine's own hash tables (interned ids, the dedup set). It is seeded so that two
/// independent seeds give the two halves of a 128-bit fingerprint.
@usableFromInline
struct ByteHash {
    @inline(__always)
    static func fold(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let product = a.multipliedFullWidth(by: b)
        return product.high ^ product.low
    }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let count = bytes.count
        // Empty bytes hash alike whether or not they have an address (an empty array's has one).
        guard count > 0, let base = bytes.baseAddress else { return fold(seed ^ 0xa076_1d64_78bd_642f, 0xe703_7ed1_a0b4_28db) }
        var state = seed ^ 0xa076_1d64_78bd_642f
        var offset = 0
        while offset + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            state = fold(state ^ word, 0xe703_7ed1_a0b4_28db)
            offset += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while offset < count {
            tail |= UInt64(base.load(fromByteOffset: offset, as: UInt8.self)) << shift
            shift &+= 8
            offset += 1
        }
        state = fold(state ^ tail, 0x8ebc_6af0_9c88_c6e3 ^ UInt64(truncatingIfNeeded: count))
        return fold(state, 0x5899_65cc_7537_4cc3)
    }
}

/// A 128-bit fingerprint of a byte string: two independently seeded 64-bit hashes.
struct Fingerprint: Hashable, Sendable {
    var high: UInt64
    var low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    init(_ bytes: UnsafeRawBufferPointer) {
        self.high = ByteHash.hash(bytes, seed: 0x243f_6a88_85a3_08d3)
        self.low = ByteHash.hash(bytes, seed: 0x1319_8a2e_0370_7344)
    }
}
