#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads what `SnapshotWriter` wrote, checking every length against the bytes left before using it.
///
/// Every read throws `SnapshotError.truncated` when the bytes end too soon and
/// `SnapshotError.invalid` when a value cannot be one the writer wrote, so malformed or hostile
/// input never traps and never makes it allocate more than a small multiple of its own size.
/// The reader does not own its bytes: they must outlive it.
public struct SnapshotReader {
    /// The largest hash table a snapshot may give as a size and its occupied slots: 2^20 slots.
    static let maximumSparseTable = 1 << 20
    /// Event times are within 2^61 ms (73 million years) of the epoch, so sums and differences of
    /// two of them, or of one and a window, never overflow.
    static let timeLimit: Int64 = 1 << 61
    /// Counters and figures stay below 2^62, so adding what a few more events bring never overflows.
    static let counterLimit: Int64 = 1 << 62

    private let buffer: UnsafeRawBufferPointer
    /// Bytes read so far.
    public private(set) var offset = 0

    /// Reads `buffer` from its start.
    public init(_ buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    /// Bytes not read yet.
    public var remaining: Int { self.buffer.count - self.offset }

    /// The next `count` bytes.
    ///
    /// - Throws: `SnapshotError.truncated` when fewer are left.
    public mutating func read(bytes count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= self.remaining else { throw SnapshotError.truncated }
        let bytes = UnsafeRawBufferPointer(rebasing: self.buffer[self.offset..<(self.offset + count)])
        self.offset += count
        return bytes
    }

    /// Reads a little-endian integer of `MemoryLayout<T>.size` bytes.
    public mutating func read<T: FixedWidthInteger>(_ type: T.Type = T.self) throws -> T {
        let bytes = try self.read(bytes: MemoryLayout<T>.size)
        var value = T.zero
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: bytes) }
        return T(littleEndian: value)
    }

    /// Reads a Boolean byte.
    ///
    /// - Throws: `SnapshotError.invalid` for a byte other than 0 and 1.
    public mutating func readBool() throws -> Bool {
        switch try self.read(UInt8.self) {
        case 0: return false
        case 1: return true
        case let byte: throw SnapshotError.invalid("a Boolean byte is \(byte)")
        }
    }

    /// Reads the IEEE 754 bit pattern of a `Double`.
    public mutating func readDouble() throws -> Double {
        Double(bitPattern: try self.read(UInt64.self))
    }

    /// Reads a count of elements of which each takes at least `elementSize` bytes further on.
    ///
    /// - Throws: `SnapshotError.truncated` when the bytes left cannot hold that many elements, so
    ///   that a count can be trusted for `reserveCapacity` or an allocation.
    public mutating func readCount(elementSize: Int) throws -> Int {
        let count = try self.read(UInt64.self)
        guard count <= UInt64(self.remaining / max(elementSize, 1)) else { throw SnapshotError.truncated }
        return Int(count)
    }

    /// Reads a length-prefixed byte array.
    public mutating func readBytes() throws -> [UInt8] {
        let count = try self.readCount(elementSize: 1)
        return Array(try self.read(bytes: count))
    }

    /// Reads a length-prefixed UTF-8 string.
    ///
    /// - Throws: `SnapshotError.invalid` when the bytes are not UTF-8.
    public mutating func readString() throws -> String {
        let count = try self.readCount(elementSize: 1)
        guard let string = String(validating: try self.read(bytes: count), as: UTF8.self) else {
            throw SnapshotError.invalid("a string is not UTF-8")
        }
        return string
    }

    /// Reads a presence byte, then the value by `body` when it is 1.
    public mutating func readOptional<T>(_ body: (inout SnapshotReader) throws -> T) throws -> T? {
        try self.readBool() ? try body(&self) : nil
    }

    /// Reads bytes that must equal `expected`, such as a magic number.
    public mutating func expect(_ expected: [UInt8], _ what: String) throws {
        guard try self.read(bytes: expected.count).elementsEqual(expected) else {
            throw SnapshotError.invalid("\(what) is missing")
        }
    }

    /// Checks that every byte has been read.
    public func expectEnd() throws {
        guard self.remaining == 0 else {
            throw SnapshotError.invalid("\(self.remaining) bytes follow the end of the snapshot")
        }
    }

    /// Throws `SnapshotError.invalid(message)` unless `condition` holds.
    @inline(__always)
    static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw SnapshotError.invalid(message()) }
    }

    /// Reads an event time: within `timeLimit` of the epoch, or with `sentinels` also `Int64.min`
    /// or `Int64.max` (before the first event, after the end).
    mutating func readTime(_ what: @autoclosure () -> String, sentinels: Bool = false) throws -> Int64 {
        let time = try self.read(Int64.self)
        try Self.require(
            (-Self.timeLimit...Self.timeLimit).contains(time) || (sentinels && (time == .min || time == .max)),
            "\(what()) \(time) is out of range")
        return time
    }

    /// Reads a counter: from 0 to `counterLimit`.
    mutating func readCounter(_ what: @autoclosure () -> String) throws -> Int {
        let value = try self.read(Int64.self)
        try Self.require((0...Self.counterLimit).contains(value), "\(what()) \(value) is out of range")
        return Int(value)
    }

    /// Reads what `SnapshotWriter.write(raw:)` wrote: one copy into a new array.
    ///
    /// - Throws: `SnapshotError.invalid` when the element stride differs from this build's.
    mutating func readRaw<T: SnapshotRaw>(_ type: T.Type) throws -> [T] {
        let stride = MemoryLayout<T>.stride
        let written = Int(try self.read(UInt16.self))
        try Self.require(written == stride, "elements of \(T.self) take \(written) bytes, \(stride) in this build")
        let count = try self.readCount(elementSize: stride)
        let bytes = try self.read(bytes: count * stride)
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: bytes) }
            initialized = count
        }
    }

    /// Reads what `SnapshotWriter.write(table:occupied:isEmpty:)` wrote: the slots and how many are
    /// occupied, calling `check` with each occupied slot (a sparse table's empty slots are not visited).
    mutating func readTable<T: SnapshotRaw>(
        empty: T, isEmpty: (T) -> Bool, check: (T) throws -> Void
    ) throws -> (slots: [T], occupied: Int) {
        switch try self.read(UInt8.self) {
        case 0:
            let slots = try self.readRaw(T.self)
            var occupied = 0
            for slot in slots where !isEmpty(slot) {
                try check(slot)
                occupied += 1
            }
            return (slots, occupied)
        case 1:
            let size = try self.read(UInt64.self)
            try Self.require(size <= UInt64(Self.maximumSparseTable), "a table of \(size) slots is given sparse")
            let stride = MemoryLayout<T>.stride
            let occupied = try self.readCount(elementSize: 8 + stride)
            let written = Int(try self.read(UInt16.self))
            try Self.require(written == stride, "elements of \(T.self) take \(written) bytes, \(stride) in this build")
            var slots = Self.table(of: Int(size), empty)
            var previous = -1
            for _ in 0..<occupied {
                let index = try self.read(UInt64.self)
                try Self.require(index < size && Int(index) > previous, "a table slot position is out of order")
                previous = Int(index)
                var slot = empty
                let bytes = try self.read(bytes: stride)
                withUnsafeMutableBytes(of: &slot) { $0.copyMemory(from: bytes) }
                try Self.require(!isEmpty(slot), "a table lists an empty slot")
                try check(slot)
                slots[previous] = slot
            }
            return (slots, occupied)
        case let mode:
            throw SnapshotError.invalid("unknown table encoding \(mode)")
        }
    }

    /// `count` copies of `empty`, by `memset` when its bytes are all zero (fast in debug builds too).
    static func table<T: SnapshotRaw>(of count: Int, _ empty: T) -> [T] {
        let isZero = withUnsafeBytes(of: empty) { $0.allSatisfy { $0 == 0 } }
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            if isZero {
                if count > 0 { memset(buffer.baseAddress!, 0, count * MemoryLayout<T>.stride) }
            } else {
                buffer.initialize(repeating: empty)
            }
            initialized = count
        }
    }
}
