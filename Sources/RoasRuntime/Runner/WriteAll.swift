import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writing every byte to a file descriptor: `write(2)` and `pwrite(2)` may write part of a buffer or
/// be interrupted (EINTR), so each is called until all is written or one fails. The one loop every
/// writer in roas uses (output sinks, the write-ahead log, checkpoints, the alert outbox, `roas gen`).
public enum WriteAll {
    /// Writes all of `bytes` to `descriptor` (at `offset` with `pwrite`, else where the descriptor
    /// stands): 0, or the `errno` of the call that failed (part may be written).
    public static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int? = nil) -> Int32 {
        guard let base = bytes.baseAddress else { return 0 }
        var done = 0
        while done < bytes.count {
            let count =
                offset.map { pwrite(descriptor, base + done, bytes.count - done, off_t($0 + done)) }
                ?? systemWrite(descriptor, base + done, bytes.count - done)
            if count < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += count
        }
        return 0
    }

    /// `write` for an array.
    public static func write(_ descriptor: Int32, _ bytes: [UInt8], at offset: Int? = nil) -> Int32 {
        bytes.withUnsafeBytes { Self.write(descriptor, $0, at: offset) }
    }

    /// The text of an `errno`.
    public static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

@inline(__always)
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(descriptor, bytes, count)
    #else
    Darwin.write(descriptor, bytes, count)
    #endif
}
