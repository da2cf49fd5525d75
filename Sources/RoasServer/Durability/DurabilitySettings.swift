import RoasRuntime

/// `roas serve --data-dir DIR`: where the write-ahead log and the checkpoints live, and how often
/// they are synced and taken.
public struct DurabilitySettings: Sendable {
    public var directory: String
    public var fsync: FsyncMode = .batch
    /// Milliseconds between checkpoints.
    public var checkpointEvery: Int64 = 30_000
    /// Bytes after which the log starts a new segment file.
    public var segmentBytes = 64 << 20
    /// `--truncate-damaged-log`: recovery cuts damage in the log's last segment off with every record
    /// after it, instead of refusing to start.
    public var truncatesDamagedLog = false

    public init(directory: String) {
        self.directory = directory
    }
}

/// What recovery found and did, for the log and the tests.
public struct RecoveryReport: Sendable {
    /// The LSN of the checkpoint it started from (0: none).
    public var checkpointLSN: UInt64 = 0
    /// Checkpoints that could not be read and were skipped, with why.
    public var skippedCheckpoints: [String] = []
    public var replayedRecords = 0
    public var replayedBytes = 0
    /// The torn or corrupt end of the log that was cut off, if any.
    public var droppedTail: String?
    /// Final rows already in the rows file that the replay did not write again.
    public var skippedRows = 0
    public var milliseconds: Int64 = 0
}
