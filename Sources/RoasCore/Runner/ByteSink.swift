#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffered writer to a file descriptor.
public final class ByteSink {
    public let descriptor: Int32
    private let closesDescriptor: Bool
    private var buffer: [UInt8] = []
    private let flushThreshold = 1 << 16

    public init(descriptor: Int32, closesDescriptor: Bool = false) {
        self.descriptor = descriptor
        self.closesDescriptor = closesDescriptor
        self.buffer.reserveCapacity(1 << 17)
    }

    /// Opens (creating or truncating) the file at `path` for writing.
    public convenience init(path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else {
            throw RoasError(.output, "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        self.init(descriptor: descriptor, closesDescriptor: true)
    }

    deinit {
        try? self.flush()
        if self.closesDescriptor { close(self.descriptor) }
    }

    /// Appends one line; `body` writes it without its newline.
    @inline(__always)
    public func writeLine(_ body: (inout [UInt8]) -> Void) throws {
        body(&self.buffer)
        self.buffer.append(0x0A)
        if self.buffer.count >= self.flushThreshold { try self.flush() }
    }

    public func flush() throws {
        var written = 0
        let count = self.buffer.count
        while written < count {
            let result = self.buffer.withUnsafeBytes { write(self.descriptor, $0.baseAddress! + written, count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                throw RoasError(.output, "cannot write output: \(String(cString: strerror(errno)))")
            }
            written += result
        }
        self.buffer.removeAll(keepingCapacity: true)
    }
}
