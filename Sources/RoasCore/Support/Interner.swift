#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps byte strings (user ids, creators, campaigns) to dense `Int32` handles, without allocating per lookup.
///
/// Bytes live in one arena; an open-addressing table of `(hash tag, handle)` finds them. Handles are
/// stable for the life of the interner, so state elsewhere is keyed by small integers, not `String`s.
public struct Interner: Sendable {
    private var arena: [UInt8] = []
    private var offsets: [Int] = [0]
    /// Each slot is `hash tag << 32 | (handle + 1)`; 0 means empty.
    private var slots: [UInt64]
    private var mask: Int
    private var strings: [String?] = []

    public init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        self.slots = Array(repeating: 0, count: size)
        self.mask = size - 1
    }

    /// The number of distinct strings interned.
    public var count: Int { self.offsets.count - 1 }

    /// The handle of `bytes`, adding them when new.
    @inline(__always)
    public mutating func intern(_ bytes: UnsafeRawBufferPointer) -> Int32 {
        let hash = ByteHash.hash(bytes, seed: 0x9e37_79b9_7f4a_7c15)
        let tag = hash >> 32
        var index = Int(truncatingIfNeeded: hash) & self.mask
        while true {
            let slot = self.slots[index]
            if slot == 0 { break }
            if slot >> 32 == tag {
                let handle = Int(truncatingIfNeeded: slot & 0xffff_ffff) - 1
                if self.equals(handle, bytes) { return Int32(truncatingIfNeeded: handle) }
            }
            index = (index + 1) & self.mask
        }
        let handle = self.count
        self.arena.append(contentsOf: bytes)
        self.offsets.append(self.arena.count)
        self.strings.append(nil)
        self.slots[index] = tag << 32 | UInt64(handle + 1)
        if self.count * 2 > self.slots.count { self.grow() }
        return Int32(truncatingIfNeeded: handle)
    }

    /// The handle of `string`, adding it when new.
    public mutating func intern(_ string: String) -> Int32 {
        var copy = string
        return copy.withUTF8 { self.intern(UnsafeRawBufferPointer($0)) }
    }

    /// The bytes of `handle`.
    public func withBytes<R>(of handle: Int32, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let start = self.offsets[Int(handle)]
        let end = self.offsets[Int(handle) + 1]
        return self.arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }

    /// The text of `handle` (decoded as UTF-8 once, then cached).
    public mutating func string(for handle: Int32) -> String {
        if let cached = self.strings[Int(handle)] { return cached }
        let made = self.withBytes(of: handle) { String(decoding: $0, as: UTF8.self) }
        self.strings[Int(handle)] = made
        return made
    }

    /// Orders two handles by their bytes (unsigned, bytewise; a prefix sorts first).
    public func compare(_ a: Int32, _ b: Int32) -> Bool {
        self.withBytes(of: a) { left in self.withBytes(of: b) { right in left.lexicographicallyPrecedes(right) } }
    }

    @inline(__always)
    private func equals(_ handle: Int, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let start = self.offsets[handle]
        let length = self.offsets[handle + 1] - start
        guard length == bytes.count else { return false }
        if length == 0 { return true }
        return self.arena.withUnsafeBytes { arena in
            let left = arena.baseAddress! + start
            let right = bytes.baseAddress!
            // Most ids are short: compare them in at most two overlapping 8-byte words, without a call.
            if length >= 8 && length <= 16 {
                return left.loadUnaligned(as: UInt64.self) == right.loadUnaligned(as: UInt64.self)
                    && left.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
                        == right.loadUnaligned(fromByteOffset: length - 8, as: UInt64.self)
            }
            return memcmp(left, right, length) == 0
        }
    }

    private mutating func grow() {
        let size = self.slots.count * 2
        var slots = [UInt64](repeating: 0, count: size)
        let mask = size - 1
        for handle in 0..<self.count {
            let hash = self.withBytes(of: Int32(handle)) { ByteHash.hash($0, seed: 0x9e37_79b9_7f4a_7c15) }
            var index = Int(truncatingIfNeeded: hash) & mask
            while slots[index] != 0 { index = (index + 1) & mask }
            slots[index] = (hash >> 32) << 32 | UInt64(handle + 1)
        }
        self.slots = slots
        self.mask = mask
    }
}
