/// One record to append to a replicated log: its subject (which partition of the log it belongs to),
/// the id the log deduplicates it by, and its bytes.
///
/// The id makes appending idempotent: a record appended again with the same id, say after a failed
/// or timed-out append, is not stored twice while the log still remembers the id.
public struct LogEntry: Sendable, Equatable {
    public var subject: String
    public var id: String
    public var bytes: [UInt8]

    /// A record for `subject`, deduplicated by `id`.
    public init(subject: String, id: String, bytes: [UInt8]) {
        self.subject = subject
        self.id = id
        self.bytes = bytes
    }
}

/// Where the log holds an appended record: its sequence in the log, and whether the log already held
/// a record with that id (then `sequence` is the first copy's and nothing new was stored).
public struct LogAppend: Sendable, Equatable {
    public var sequence: UInt64
    public var duplicate: Bool

    /// The result of one append: `sequence` in the log, `duplicate` when the id was known.
    public init(sequence: UInt64, duplicate: Bool) {
        self.sequence = sequence
        self.duplicate = duplicate
    }
}

/// A record read back from a replicated log, with the sequence the log gave it.
public struct LogMessage: Sendable, Equatable {
    public var sequence: UInt64
    public var subject: String
    public var bytes: [UInt8]

    /// A message at `sequence` on `subject`.
    public init(sequence: UInt64, subject: String, bytes: [UInt8]) {
        self.sequence = sequence
        self.subject = subject
        self.bytes = bytes
    }
}

/// A durable, replicated, append-only log of records, independent of the system that stores it
/// (NATS JetStream today; Kafka could be another backend), so that several roas processes can share
/// their input and recover it after a crash.
///
/// Every method blocks its thread until the log's servers answer (or time out): call them from a
/// thread of your own, never from Swift's cooperative pool.
public protocol ReplicatedLog: Sendable {
    /// Appends every record, each with its deduplication id; returns, in order, the sequence at which
    /// the log's quorum holds each. A record whose id the log already holds within its duplicate
    /// window returns `duplicate == true` and the first copy's sequence, and is not stored twice.
    ///
    /// Throws `LogError` if any record is not confirmed: then the caller must not acknowledge anything
    /// to its sender (some records may be stored; appending them again with the same ids is safe).
    /// Several threads may append at once. Blocking.
    func append(_ records: [LogEntry]) throws -> [LogAppend]

    /// A reader of the messages whose subject matches `filter` (NATS wildcards: `*` one token, `>` the
    /// rest), starting at log sequence `sequence` (1 is the first). Blocking.
    func reader(filter: String, from sequence: UInt64) throws -> any LogReader

    /// The last message stored on exactly `subject`, or nil when there is none (for instance to find
    /// the settings a log was first used with). Blocking.
    func lastMessage(on subject: String) throws -> LogMessage?

    /// The sequence of the last message the log holds (0 when empty): where a reader that wants
    /// everything there is now stops. Blocking.
    func lastSequence() throws -> UInt64
}

/// Reads a replicated log in order. Use it from one thread at a time; `close()` it when done.
public protocol LogReader: AnyObject {
    /// Up to `max` next messages in log order; waits at most `timeout` for the first; `[]` when none
    /// came. Blocking.
    func next(max: Int, timeout: Duration) throws -> [LogMessage]

    /// Releases what the reader holds on the servers; `next` throws afterwards.
    func close()
}

/// Why a replicated log call failed: which servers, what failed and the client library's reason.
public struct LogError: Error, CustomStringConvertible, Sendable {
    /// The message, naming the servers, the operation and the cause.
    public let description: String
    /// Whether the same call may succeed later as it is (servers unreachable, a leader election, a
    /// timeout), rather than needing a change (conflicting settings, an invalid argument, a closed log).
    public let isTransient: Bool

    /// An error with the given message.
    public init(_ description: String, isTransient: Bool) {
        self.description = description
        self.isTransient = isTransient
    }
}
