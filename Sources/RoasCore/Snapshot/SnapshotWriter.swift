/// Appends values to a snapshot as bytes, for `SnapshotReader` to read back in the same order.
///
/// Integers are little-endian and fixed width; counts and lengths are `UInt64`; byte arrays and
/// strings carry their length first; an optional is a presence byte (0 or 1) then the value. Arrays
/// of `SnapshotRaw` elements (integer fields only, no padding) are copied as raw memory, after their
/// element stride.
public struct SnapshotWriter: Sendable {
    /// What has been written so far (with a `SnapshotOutput`, since the last time it took them).
    public private(set) var bytes: [UInt8]
    /// Where the bytes go once they pass `flushBytes`, so that a snapshot written to a
    /// file is never whole in memory; nil: they stay in `bytes`.
    private let output: (any SnapshotOutput)?
    /// How many bytes a writer with an output holds before it hands them on.
    public static let flushBytes = 4 << 20

    /// Starts an empty snapshot with room for `capacity` bytes.
    public init(reservingCapacity capacity: Int = 0) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
        self.output = nil
    }

    /// Starts an empty snapshot whose bytes go to `output` as they are written, a few MiB at a time;
    /// call `flush()` at the end.
    public init(output: any SnapshotOutput) {
        self.bytes = []
        self.bytes.reserveCapacity(SnapshotWriter.flushBytes + (1 << 16))
        self.output = output
    }

    /// Hands what is held to the output (none: keeps it).
    public mutating func flush() {
        guard let output = self.output, !self.bytes.isEmpty else { return }
        self.bytes.withUnsafeBytes { output.take($0) }
        self.bytes.removeAll(keepingCapacity: true)
    }

    @inline(__always)
    private mutating func flushIfFull() {
        if self.output != nil && self.bytes.count >= SnapshotWriter.flushBytes { self.flush() }
    }

    /// Writes `value` as `MemoryLayout<T>.size` little-endian bytes.
    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { self.bytes.append(contentsOf: $0) }
        self.flushIfFull()
    }

    /// Appends `bytes` as they are, without their length (a magic number).
    public mutating func append(_ bytes: some Collection<UInt8>) {
        self.bytes.append(contentsOf: bytes)
        self.flushIfFull()
    }

    /// Writes 1 for true, 0 for false.
    public mutating func write(_ value: Bool) {
        self.bytes.append(value ? 1 : 0)
    }

    /// Writes the IEEE 754 bit pattern of `value`.
    public mutating func write(_ value: Double) {
        self.write(value.bitPattern)
    }

    /// Writes a count or length as a `UInt64`.
    public mutating func write(count: Int) {
        self.write(UInt64(count))
    }

    /// Writes the length of `bytes`, then the bytes.
    public mutating func write(bytes: some Collection<UInt8>) {
        self.write(count: bytes.count)
        self.bytes.append(contentsOf: bytes)
        self.flushIfFull()
    }

    /// Writes the UTF-8 bytes of `string` with their length.
    public mutating func write(_ string: String) {
        var copy = string
        copy.withUTF8 { self.write(bytes: $0) }
    }

    /// Writes 0 for nil, else 1 and then the value by `body`.
    public mutating func write<T>(_ value: T?, _ body: (inout SnapshotWriter, T) -> Void) {
        guard let value else { return self.write(false) }
        self.write(true)
        body(&self, value)
    }

    /// Writes the element stride (`UInt16`), the count, then the elements as raw memory: one copy.
    ///
    /// Unlike the integers above, these take the host's byte order (little-endian on x86-64 and arm64);
    /// a snapshot records which.
    mutating func write<T: SnapshotRaw>(raw elements: some Collection<T>) {
        self.write(UInt16(MemoryLayout<T>.stride))
        self.write(count: elements.count)
        let copied: Void? = elements.withContiguousStorageIfAvailable {
            self.bytes.append(contentsOf: UnsafeRawBufferPointer($0))
        }
        if copied == nil { Array(elements).withUnsafeBytes { self.bytes.append(contentsOf: $0) } }
        self.flushIfFull()
    }

    /// Writes the elements of `parts`, one after another, exactly as `write(raw:)` writes them joined.
    mutating func write<T: SnapshotRaw, Part: Collection<T>>(rawParts parts: [Part]) {
        self.write(UInt16(MemoryLayout<T>.stride))
        self.write(count: parts.reduce(0) { $0 + $1.count })
        for part in parts {
            let copied: Void? = part.withContiguousStorageIfAvailable { self.bytes.append(contentsOf: UnsafeRawBufferPointer($0)) }
            if copied == nil { Array(part).withUnsafeBytes { self.bytes.append(contentsOf: $0) } }
            self.flushIfFull()
        }
    }

    /// The bytes `write(table:occupied:isEmpty:)` takes for a table of `slots` slots of `stride` bytes.
    static func tableByteCount(slots: Int, occupied: Int, stride: Int) -> Int {
        if occupied * 4 >= slots || slots > SnapshotReader.maximumSparseTable { return 11 + slots * stride }
        return 19 + occupied * (8 + stride)
    }

    /// Writes a hash table of `SnapshotRaw` slots, whole when at least a quarter full, else as its
    /// size and the occupied slots with their positions (a table made large up front stays small here).
    mutating func write<T: SnapshotRaw>(table slots: [T], occupied: Int, isEmpty: (T) -> Bool) {
        self.write(table: [slots], occupied: occupied, isEmpty: isEmpty)
    }

    /// `write(table:occupied:isEmpty:)` for a table kept in pages: the same bytes as for the pages joined.
    mutating func write<T: SnapshotRaw, Page: Collection<T>>(table pages: [Page], occupied: Int, isEmpty: (T) -> Bool) {
        let count = pages.reduce(0) { $0 + $1.count }
        if occupied * 4 >= count || count > SnapshotReader.maximumSparseTable {
            self.write(UInt8(0))
            self.write(rawParts: pages)
            return
        }
        self.write(UInt8(1))
        self.write(count: count)
        self.write(count: occupied)
        self.write(UInt16(MemoryLayout<T>.stride))
        var index = 0
        for page in pages {
            for slot in page {
                if !isEmpty(slot) {
                    self.write(UInt64(index))
                    withUnsafeBytes(of: slot) { self.bytes.append(contentsOf: $0) }
                }
                index += 1
            }
        }
        self.flushIfFull()
    }
}

/// Where a streamed snapshot's bytes go (a checkpoint file): `take` is called with them in order, a
/// few MiB at a time (`SnapshotWriter.flushBytes`), on the writing thread.
public protocol SnapshotOutput: AnyObject, Sendable {
    /// The next bytes of the snapshot.
    func take(_ bytes: UnsafeRawBufferPointer)
}
