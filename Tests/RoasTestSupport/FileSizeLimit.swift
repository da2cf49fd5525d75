import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Lowers the process's soft RLIMIT_FSIZE, with SIGXFSZ ignored so that crossing it makes
/// write(2) fail with EFBIG ("File too large") instead of killing the process.
public final class FileSizeLimit {
    #if os(Linux)
    private static let resource = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
    #else
    private static let resource = RLIMIT_FSIZE
    #endif
    private var saved = rlimit()
    private let savedHandler: (@convention(c) (Int32) -> Void)?
    private var isRestored = false

    public init(bytes: Int) throws {
        self.savedHandler = signal(SIGXFSZ, SIG_IGN)
        guard getrlimit(Self.resource, &self.saved) == 0 else { throw POSIXError(.EINVAL) }
        var lowered = self.saved
        lowered.rlim_cur = rlim_t(bytes)
        guard setrlimit(Self.resource, &lowered) == 0 else { throw POSIXError(.EPERM) }
    }

    public func restore() {
        guard !self.isRestored else { return }
        self.isRestored = true
        _ = setrlimit(Self.resource, &self.saved)
        _ = signal(SIGXFSZ, self.savedHandler)
    }
}
