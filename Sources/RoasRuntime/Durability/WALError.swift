import RoasCore

/// A failure of the write-ahead log.
public enum WALError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The log was closed before the call.
    case closed
    /// Writing or syncing the group that held the record failed (`"<what>: <strerror>"`); the record
    /// is not in the log.
    case write(String)
    /// An unreadable record or segment header where the log must be intact (any segment but the last):
    /// acknowledged data is damaged. `offset` is the byte offset in the file at `path`.
    case corrupt(path: String, offset: Int, reason: String)
    /// A file-system call outside group commit failed: creating the directory or a segment, listing,
    /// reading, truncating or deleting segments.
    case io(String)
    /// A payload longer than `WriteAheadLog.maximumPayloadBytes`.
    case recordTooLarge(Int)
    /// `waitDurable` was given an LSN this log has not assigned.
    case unknownLSN(UInt64)

    /// The failure in a sentence, for logs and HTTP error bodies.
    public var description: String {
        switch self {
        case .closed: "the write-ahead log is closed"
        case .write(let message): "write-ahead log write failed: \(message)"
        case .corrupt(let path, let offset, let reason):
            "write-ahead log corrupt: \(path) at offset \(offset): \(reason)"
        case .io(let message): "write-ahead log: \(message)"
        case .recordTooLarge(let count): "write-ahead log record of \(count) bytes is too large"
        case .unknownLSN(let lsn): "write-ahead log LSN \(lsn) was never assigned"
        }
    }
}
