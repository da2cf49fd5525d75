import RoasCore

/// When the write-ahead log calls `fdatasync`, and so what `WriteAheadLog.waitDurable` promises.
public enum FsyncMode: Sendable, Equatable, CustomStringConvertible {
    /// Group commit: the committer writes everything pending, syncs once, then completes those waiters.
    case batch
    /// One write and one sync per record: the slowest mode, for comparison.
    case always
    /// Waiters complete right after `write` (durable against a process crash, not an OS crash);
    /// the log is synced at most every `milliseconds`.
    case interval(milliseconds: Int64)

    /// Parses `batch`, `always` or `interval:DURATION` (`interval:250ms`, `interval:1s`; see `DurationText`).
    ///
    /// An interval must be positive.
    public init?(argument: String) {
        switch argument {
        case "batch": self = .batch
        case "always": self = .always
        default:
            let prefix = "interval:"
            guard argument.hasPrefix(prefix),
                let milliseconds = DurationText.milliseconds(String(argument.dropFirst(prefix.count))),
                milliseconds > 0
            else { return nil }
            self = .interval(milliseconds: milliseconds)
        }
    }

    /// The text `init(argument:)` reads back.
    public var description: String {
        switch self {
        case .batch: "batch"
        case .always: "always"
        case .interval(let milliseconds): "interval:\(DurationText.text(milliseconds))"
        }
    }
}
