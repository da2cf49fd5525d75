import RoasCore

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
    /// The path, when opened by path.
    public let path: String?
    /// Where the next flushed byte lands: bytes flushed so far, plus the offset the sink started at.
    public private(set) var position: Int

    public init(descriptor: Int32, closesDescriptor: Bool = false, path: String? = nil, position: Int = 0) {
        self.descriptor = descriptor
        self.closesDescriptor = closesDescriptor
        self.path = path
        self.position = position
        self.buffer.reserveCapacity(1 << 17)
    }

    /// Opens the file at `path` for writing, creating it; `truncates: false` keeps what it holds
    /// and writes after it (the recovery of `roas serve --data-dir`).
    public convenience init(path: String, truncates: Bool = true) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | (truncates ? O_TRUNC : O_APPEND), 0o644)
        guard descriptor >= 0 else {
            throw RoasError(.output, "cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        let end = truncates ? 0 : Int(lseek(descriptor, 0, SEEK_END))
        self.init(descriptor: descriptor, closesDescriptor: true, path: path, position: max(end, 0))
    }

    /// Whether the descriptor is a regular file (so it can be read back and cut on recovery).
    public var isRegularFile: Bool {
        var info = stat()
        return fstat(self.descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Cuts the file to `length` bytes (dropping what is after it) and writes after that.
    public func truncate(to length: Int) throws {
        try self.flush()
        guard ftruncate(self.descriptor, off_t(length)) == 0 else {
            throw RoasError(.output, "cannot cut output to \(length) bytes: \(String(cString: strerror(errno)))")
        }
        self.position = length
    }

    /// Flushes, then makes what was written durable (fsync).
    public func sync() throws {
        try self.flush()
        guard self.isRegularFile else { return }
        if fsync(self.descriptor) != 0 {
            throw RoasError(.output, "cannot sync output: \(String(cString: strerror(errno)))")
        }
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
        let count = self.buffer.count
        let error = WriteAll.write(self.descriptor, self.buffer)
        guard error == 0 else { throw RoasError(.output, "cannot write output: \(WriteAll.errorText(error))") }
        self.position += count
        self.buffer.removeAll(keepingCapacity: true)
    }
}
