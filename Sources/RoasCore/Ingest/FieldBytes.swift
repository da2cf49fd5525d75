/// The bytes of a parsed chunk's fields (ids, users, creators, ...), one after another.
///
/// A growable buffer like `[UInt8]`, but an append of a few bytes is copied inline: a field is
/// most often 4 to 16 bytes, and `Array.append(contentsOf:)` called `memmove` for each: 218 of the
/// 5,666 `perf` samples of the DuckDB comparison's simple job, an eighth of the reading thread's.
/// Copy on write, as an array.
struct FieldBytes: @unchecked Sendable {
    // @unchecked: the storage is only written while uniquely referenced (`append` and
    // `reserveCapacity` reallocate otherwise).
    private var storage: ManagedBuffer<Int, UInt8>

    init(capacity: Int = 0) {
        self.storage = ManagedBuffer<Int, UInt8>.create(minimumCapacity: capacity) { _ in 0 }
    }

    var count: Int { self.storage.header }
    var capacity: Int { self.storage.capacity }

    mutating func reserveCapacity(_ capacity: Int) {
        if capacity > self.storage.capacity || !isKnownUniquelyReferenced(&self.storage) {
            self.reallocate(max(capacity, self.count))
        }
    }

    /// Appends `bytes`; returns the offset they start at.
    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) -> Int {
        let offset = self.storage.header
        let count = bytes.count
        if offset + count > self.storage.capacity || !isKnownUniquelyReferenced(&self.storage) {
            self.reallocate(max(offset + count, self.storage.capacity * 2, 64))
        }
        if let from = bytes.baseAddress {
            self.storage.withUnsafeMutablePointerToElements { elements in
                FieldBytes.copy(UnsafeMutableRawPointer(elements + offset), from, count)
            }
        }
        self.storage.header = offset + count
        return offset
    }

    func withUnsafeBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try self.storage.withUnsafeMutablePointerToElements { elements in
            try body(UnsafeRawBufferPointer(start: elements, count: self.storage.header))
        }
    }

    private mutating func reallocate(_ capacity: Int) {
        let count = self.count
        let new = ManagedBuffer<Int, UInt8>.create(minimumCapacity: capacity) { _ in count }
        new.withUnsafeMutablePointerToElements { to in
            self.storage.withUnsafeMutablePointerToElements { from in to.update(from: from, count: count) }
        }
        self.storage = new
    }

    /// Copies `count` bytes: up to 16 with two overlapping loads and stores, more with `copyMemory`.
    @inline(__always)
    static func copy(_ to: UnsafeMutableRawPointer, _ from: UnsafeRawPointer, _ count: Int) {
        if count >= 8 {
            guard count <= 16 else { return to.copyMemory(from: from, byteCount: count) }
            let head = from.loadUnaligned(as: UInt64.self)
            let tail = from.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
            to.storeBytes(of: head, as: UInt64.self)
            to.storeBytes(of: tail, toByteOffset: count - 8, as: UInt64.self)
        } else if count >= 4 {
            let head = from.loadUnaligned(as: UInt32.self)
            let tail = from.loadUnaligned(fromByteOffset: count - 4, as: UInt32.self)
            to.storeBytes(of: head, as: UInt32.self)
            to.storeBytes(of: tail, toByteOffset: count - 4, as: UInt32.self)
        } else {
            for index in 0..<count {
                to.storeBytes(of: from.load(fromByteOffset: index, as: UInt8.self), toByteOffset: index, as: UInt8.self)
            }
        }
    }
}
