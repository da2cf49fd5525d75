/// Reads typed values from a fuzz input, front to back; past its end every read gives zeros.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var position = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        self.bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    }

    public var remaining: Int { self.bytes.count - self.position }
    public var isAtEnd: Bool { self.position >= self.bytes.count }

    public mutating func byte() -> UInt8 {
        guard self.position < self.bytes.count else { return 0 }
        defer { self.position += 1 }
        return self.bytes[self.position]
    }

    public mutating func uint16() -> UInt16 {
        UInt16(self.byte()) | UInt16(self.byte()) << 8
    }

    public mutating func uint32() -> UInt32 {
        UInt32(self.uint16()) | UInt32(self.uint16()) << 16
    }

    public mutating func uint64() -> UInt64 {
        UInt64(self.uint32()) | UInt64(self.uint32()) << 32
    }

    /// Up to `count` bytes (fewer at the end).
    public mutating func bytes(_ count: Int) -> UnsafeRawBufferPointer {
        let taken = max(0, min(count, self.remaining))
        defer { self.position += taken }
        return UnsafeRawBufferPointer(rebasing: self.bytes[self.position..<(self.position + taken)])
    }

    /// Everything not read yet.
    public mutating func rest() -> UnsafeRawBufferPointer {
        self.bytes(self.remaining)
    }

    /// One of `options`, by the next byte.
    public mutating func pick<T>(_ options: [T]) -> T {
        options[Int(self.byte()) % options.count]
    }
}

/// A small deterministic generator (SplitMix64), for choices derived from a seed in the input.
public struct SplitMix {
    private var state: UInt64

    public init(seed: UInt64) {
        self.state = seed
    }

    public mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in `0..<bound` (bound > 0).
    public mutating func below(_ bound: Int) -> Int {
        Int(self.next() % UInt64(bound))
    }
}

/// `count` sorted cut positions in `0...length` from `input` (each a 16-bit value modulo length + 1).
public func cutPositions(_ input: inout FuzzInput, count: Int, length: Int) -> [Int] {
    (0..<count).map { _ in Int(input.uint16()) % (length + 1) }.sorted()
}

/// Splits `0..<length` at `cuts` (sorted) into consecutive ranges; empty ranges are kept, as a
/// zero-byte read is a chunk too.
public func chunks(length: Int, cuts: [Int]) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var start = 0
    for cut in cuts {
        let end = max(start, min(cut, length))
        ranges.append(start..<end)
        start = end
    }
    ranges.append(start..<length)
    return ranges
}
