import CZstd
import Synchronization

/// How `roas serve --nats` writes each message of parts to the log (`--log-compression`): as the
/// parts' bytes (`none`), or as one Zstandard frame of them (`zstd`, the default). NDJSON events
/// shrink about 6x at level 1, and the brokers' work grows with the bytes each message carries: it
/// is written on every replica and sent to every reader.
///
/// Readers need no setting: a message that begins with Zstandard's magic number is a frame, and a
/// part's own bytes begin with `{`, so one stream may hold both (an edge started with the other
/// setting appends beside the first).
public enum LogCompression: String, CaseIterable, Sendable {
    case none
    case zstd

    /// Zstandard's level: 1 is its fastest standard level, and the level of Kafka's producers'
    /// default for zstd (3) compresses the edge's parts only about 3% smaller at the same speed
    /// here; the edge's CPU is the cluster's second cost after the brokers'.
    static let level: Int32 = 1

    /// The most bytes a frame may declare: a part holds at most one batch (`--max-batch`, at most
    /// 1 GiB) and its header line.
    public static let maximumContentBytes = (1 << 30) + (1 << 20)

    /// Why a message of the log does not decompress.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// `bytes` as this setting writes them to the log.
    public func encode(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .none: return bytes
        case .zstd: return bytes.withUnsafeBytes { LogCompression.compress($0) }
        }
    }

    /// `encode` of bytes held elsewhere (a message built in a reused buffer).
    public func encode(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        switch self {
        case .none: return Array(bytes)
        case .zstd: return LogCompression.compress(bytes)
        }
    }

    /// A Zstandard frame of `bytes`, with their length and a checksum of them (XXH64's low 32
    /// bits, which `decode` checks) in the frame.
    public static func compress(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { LogCompression.compress($0) }
    }

    /// `compress` of bytes held elsewhere. The frame is written into the context's own buffer (of
    /// `ZSTD_compressBound` bytes, kept from one message to the next) and copied out at its size, so
    /// each message costs no fresh buffer of about its plain size, most of it never written.
    public static func compress(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        let context = Contexts.shared.take()
        defer { Contexts.shared.give(context) }
        let bound = ZSTD_compressBound(bytes.count)
        let scratch = context.scratch(bound)
        let written = ZSTD_compress2(context.pointer, scratch, bound, bytes.baseAddress, bytes.count)
        // Only a destination smaller than ZSTD_compressBound or an allocation failure makes
        // ZSTD_compress2 fail; the first cannot happen here.
        precondition(ZSTD_isError(written) == 0, "zstd: \(String(cString: ZSTD_getErrorName(written)))")
        return Array(UnsafeRawBufferPointer(start: scratch, count: written))
    }

    /// Compression contexts set to `level` with checksums, kept for reuse (making one per part
    /// would allocate its tables each time); one per thread compressing at once.
    final class Contexts: Sendable {
        /// A context and the buffer frames are written into; used by one thread at a time (taken
        /// from the pool, then given back).
        final class Context: @unchecked Sendable {
            let pointer: OpaquePointer
            private var buffer: UnsafeMutableRawPointer?
            private var capacity = 0

            init(pointer: OpaquePointer) { self.pointer = pointer }

            /// The buffer, with room for at least `bytes`. Kept up to 4 MiB: a larger one is
            /// freed when a smaller one is asked for.
            func scratch(_ bytes: Int) -> UnsafeMutableRawPointer {
                if bytes > self.capacity || (self.capacity > 4 << 20 && bytes <= 4 << 20) {
                    self.buffer?.deallocate()
                    self.capacity = max(bytes, 1)
                    self.buffer = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
                }
                return self.buffer!
            }
        }
        static let shared = Contexts()
        private let idle = Mutex<[Context]>([])

        func take() -> Context {
            if let context = self.idle.withLock({ $0.popLast() }) { return context }
            guard let pointer = ZSTD_createCCtx() else { fatalError("zstd: cannot allocate a compression context") }
            ZSTD_CCtx_setParameter(pointer, ZSTD_c_compressionLevel, LogCompression.level)
            ZSTD_CCtx_setParameter(pointer, ZSTD_c_checksumFlag, 1)
            return Context(pointer: pointer)
        }

        func give(_ context: Context) { self.idle.withLock { $0.append(context) } }
    }

    /// Whether a message is a Zstandard frame (its first four bytes are the magic number
    /// 0xFD2FB528, little-endian).
    public static func isFrame(_ message: UnsafeRawBufferPointer) -> Bool {
        message.count >= 4 && message[0] == 0x28 && message[1] == 0xB5 && message[2] == 0x2F && message[3] == 0xFD
    }

    /// What a message of the log holds: the bytes of a frame, or the message itself when it is not
    /// one (`none`, or an idle advance).
    /// - Throws: `Invalid` for a frame that does not decompress, declares no size or more than
    ///   `maximumContentBytes`, holds another size than it declares, or is followed by other bytes.
    public static func decode(_ message: [UInt8]) throws -> [UInt8] {
        guard message.withUnsafeBytes({ LogCompression.isFrame($0) }) else { return message }
        return try message.withUnsafeBytes { message -> [UInt8] in
            let declared = ZSTD_getFrameContentSize(message.baseAddress, message.count)
            // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest UInt64s.
            guard declared <= UInt64(LogCompression.maximumContentBytes) else {
                let why = declared >= UInt64.max - 1 ? "declares no content size" : "declares \(declared) bytes, over the limit"
                throw Invalid("a zstd message \(why)")
            }
            let frameSize = ZSTD_findFrameCompressedSize(message.baseAddress, message.count)
            guard ZSTD_isError(frameSize) == 0 else {
                throw Invalid("a zstd message is not whole: \(String(cString: ZSTD_getErrorName(frameSize)))")
            }
            guard frameSize == message.count else {
                throw Invalid("a zstd message holds \(message.count - frameSize) bytes after its frame")
            }
            let capacity = Int(declared)
            return try [UInt8](unsafeUninitializedCapacity: max(capacity, 1)) { buffer, count in
                let written = ZSTD_decompress(buffer.baseAddress, capacity, message.baseAddress, message.count)
                guard ZSTD_isError(written) == 0 else {
                    throw Invalid("a zstd message does not decompress: \(String(cString: ZSTD_getErrorName(written)))")
                }
                guard written == capacity else { throw Invalid("a zstd message holds \(written) bytes, not the \(capacity) it declares") }
                count = written
            }
        }
    }
}
