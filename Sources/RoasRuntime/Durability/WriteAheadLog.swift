import Dispatch
import Foundation
import RoasCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The write-ahead log of `roas serve --data-dir DIR`: records appended in LSN order to segment files
/// in `DIR/wal`, made durable by group commit on one dedicated thread.
///
/// `append` copies a record into a pending buffer, gives it the next LSN and returns at once;
/// `waitDurable` suspends until the committer has written (and, per `FsyncMode`, synced) the group
/// that holds it. The committer thread does all blocking file I/O, never the cooperative pool. A group
/// whose write or sync fails is cut from the file and its waiters get the error, and so does every
/// record appended before the failure was known (none of them is written): a sender with several
/// records in flight never has a later one in the log without the earlier. Appends chained with
/// `append(kind:payload:unlessFailedSince:)` are refused after such a failure. The log goes on with
/// the next record, so LSNs may have gaps but never repeat. Open a log only after `replay`, at the
/// report's `nextLSN`, and call `close()`: the committer thread keeps the log alive until then.
public final class WriteAheadLog: Sendable {
    /// The largest payload `append` takes.
    public static let maximumPayloadBytes = 1 << 30

    /// The data directory; segments live in its `wal` subdirectory.
    public let directory: String
    /// When the log syncs, and so what `waitDurable` promises.
    public let fsync: FsyncMode
    /// A segment that has passed this size is followed by a new one.
    public let segmentBytes: Int

    let walDirectory: String
    let state: Mutex<State>
    /// Signalled when work arrives for an idle committer.
    let wakeUp = DispatchSemaphore(value: 0)
    /// Left by the committer thread when it ends.
    let stopped = DispatchGroup()

    /// A run of records the committer is done with: durable per the mode, or failed.
    public struct ResolvedGroup: Sendable, Equatable {
        /// The group's first and last LSN; groups come in order, and together cover every LSN.
        public var first: UInt64
        public var last: UInt64
        /// Why the group failed (nothing of it is in the log); nil when it is durable.
        public var failure: String?

        public init(first: UInt64, last: UInt64, failure: String?) {
            self.first = first
            self.last = last
            self.failure = failure
        }
    }

    /// A range of LSNs whose group failed, with the error its waiters get.
    struct Failure {
        var first: UInt64
        var last: UInt64
        var message: String
    }

    /// What appenders, waiters and the committer share.
    struct State {
        /// Encoded records, CRC fields still zero (the committer fills them in off the appenders' path).
        var pending: [UInt8] = []
        /// The end offset of each pending record in `pending`.
        var pendingEnds: [Int] = []
        /// The LSN of the first pending record; the others follow without gaps.
        var pendingFirstLSN: UInt64
        var nextLSN: UInt64
        var rollRequests: [(lsn: UInt64, ticket: RollTicket)] = []
        var isClosing = false
        var committerIsIdle = false
        var waiters: [UInt64: [CheckedContinuation<Void, any Error>]] = [:]
        /// Every LSN up to here belongs to a group that is done, durable or failed.
        var resolvedLSN: UInt64
        var durableLSN: UInt64
        var syncedLSN: UInt64
        /// Failed LSN ranges, ascending; the oldest are forgotten past `maximumFailures`.
        var failures: [Failure] = []
        var forgottenFailuresThrough: UInt64 = 0
        var currentSegmentFirstLSN: UInt64
        var failedGroups = 0
        /// Counts failures; a chained append refuses when it moved since the sender's previous one.
        var failureEpoch: UInt64 = 0
        /// Records up to here were appended before the last failure was known: not to be written.
        var failedThrough: UInt64 = 0
        /// Why that failure happened, for the records it condemns.
        var failedBecause = ""
        var lastError: String? = nil
        var closeError: String? = nil
        var bytesWritten = 0
        var recordsWritten = 0
        var syncs = 0
        var syncNanoseconds: UInt64 = 0
        /// With `followsGroups`: groups resolved and not yet taken by `nextResolvedGroups()`, and
        /// the follower waiting for more.
        var resolvedGroups: [ResolvedGroup]? = nil
        var groupsFollower: CheckedContinuation<[ResolvedGroup]?, Never>? = nil
        /// The committer has ended: no group follows.
        var isStopped = false

        static let maximumFailures = 1024

        /// The outcome of `lsn` when its group is done; nil while it is pending.
        func outcome(of lsn: UInt64) -> Result<Void, WALError>? {
            guard lsn < self.nextLSN else { return .failure(.unknownLSN(lsn)) }
            guard lsn <= self.resolvedLSN else { return nil }
            for failure in self.failures.reversed() {
                if failure.last < lsn { break }
                if failure.first <= lsn { return .failure(.write(failure.message)) }
            }
            if lsn <= self.forgottenFailuresThrough {
                // Never report as durable what may not be: after many failures the oldest are dropped.
                return .failure(.write("the outcome of LSN \(lsn) is no longer known (too many failed groups since)"))
            }
            return .success(())
        }

        mutating func recordFailure(first: UInt64, last: UInt64, message: String) {
            if let previous = self.failures.last, previous.last &+ 1 == first, previous.message == message {
                self.failures[self.failures.count - 1].last = last
            } else {
                self.failures.append(Failure(first: first, last: last, message: message))
            }
            if self.failures.count > Self.maximumFailures {
                let dropped = self.failures.count / 2
                self.forgottenFailuresThrough = self.failures[dropped - 1].last
                self.failures.removeFirst(dropped)
            }
        }
    }

    /// A `roll()` waiting for the committer.
    final class RollTicket: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let result = Mutex<Result<UInt64, WALError>?>(nil)

        func complete(_ result: Result<UInt64, WALError>) {
            self.result.withLock { $0 = result }
            self.done.signal()
        }

        func wait() throws -> UInt64 {
            self.done.wait()
            return try self.result.withLock { $0! }.get()
        }
    }

    /// Creates `DIR/wal` if needed and starts a new segment at `nextLSN`, never appending to an old file.
    ///
    /// Trailing segments that start at or after `nextLSN` but hold no record (a crash right after a
    /// roll) are deleted first.
    /// - Parameters:
    ///   - directory: the data directory `DIR`.
    ///   - nextLSN: the first LSN to assign, at least 1: `ReplayReport.nextLSN` of the replay before.
    ///   - fsync: when to sync.
    ///   - segmentBytes: the size after which the committer starts a new segment.
    ///   - followsGroups: keep every resolved group for `nextResolvedGroups()`, for one reader that
    ///     follows the whole log (`roas serve`) instead of one `waitDurable` per record.
    /// - Throws: `WALError.io` when the directory or the segment cannot be created, or when a segment
    ///   holding records starts at or after `nextLSN`.
    public init(
        directory: String, nextLSN: UInt64, fsync: FsyncMode, segmentBytes: Int = 64 << 20, followsGroups: Bool = false
    ) throws {
        precondition(nextLSN > 0, "LSN 0 means no record")
        self.directory = directory
        self.fsync = fsync
        self.segmentBytes = max(segmentBytes, SegmentFile.headerBytes + 1)
        self.walDirectory = SegmentFile.walDirectory(directory)
        try SegmentFile.makeDirectory(directory)
        try SegmentFile.makeDirectory(self.walDirectory)
        var existing = try SegmentFile.list(self.walDirectory)
        var removed = false
        while let last = existing.last, last.firstLSN >= nextLSN {
            var status = stat()
            guard stat(last.path, &status) == 0 else {
                throw WALError.io("stat \(last.path): \(SegmentFile.errorText(errno))")
            }
            guard Int(status.st_size) <= SegmentFile.headerBytes else {
                throw WALError.io(
                    "segment \(last.path) holds records from LSN \(last.firstLSN) on, not before \(nextLSN): "
                        + "replay the log and open it at the report's nextLSN"
                )
            }
            guard unlink(last.path) == 0 else {
                throw WALError.io("unlink \(last.path): \(SegmentFile.errorText(errno))")
            }
            removed = true
            existing.removeLast()
        }
        if removed { try SegmentFile.syncDirectory(self.walDirectory) }
        let writer = try SegmentWriter.create(directory: self.walDirectory, firstLSN: nextLSN)
        self.state = Mutex(
            State(
                pendingFirstLSN: nextLSN,
                nextLSN: nextLSN,
                resolvedLSN: nextLSN - 1,
                durableLSN: nextLSN - 1,
                syncedLSN: nextLSN - 1,
                currentSegmentFirstLSN: nextLSN,
                resolvedGroups: followsGroups ? [] : nil
            )
        )
        let committer = Committer(log: self, writer: writer)
        self.stopped.enter()
        let thread = Thread {
            var committer = committer
            committer.run()
        }
        thread.name = "roas-wal"
        thread.start()
    }

    /// Copies a record into the pending buffer, assigns it the next LSN and wakes the committer.
    ///
    /// Returns at once; `waitDurable` tells when the record is durable. The pending buffer is not
    /// bounded: callers wait for their records.
    /// - Throws: `WALError.closed` after `close()`, `WALError.recordTooLarge`.
    public func append(kind: UInt8, payload: UnsafeRawBufferPointer) throws -> UInt64 {
        try self.append(kind: kind, payload: payload, unlessFailedSince: nil).lsn
    }

    /// `append` for a sender whose records must enter the log in order: `epoch` is what this
    /// sender's previous append returned (nil for its first). When a write has failed since then,
    /// that previous record may have failed while this one could succeed, so this one is refused.
    ///
    /// - Returns: the LSN, and the epoch to pass with the sender's next record.
    /// - Throws: `WALError.write` when refused; `WALError.closed`, `WALError.recordTooLarge`.
    public func append(kind: UInt8, payload: UnsafeRawBufferPointer, unlessFailedSince epoch: UInt64?) throws
        -> (lsn: UInt64, epoch: UInt64)
    {
        guard payload.count <= Self.maximumPayloadBytes else { throw WALError.recordTooLarge(payload.count) }
        let (lsn, current, wake) = try self.state.withLock { state throws(WALError) -> (UInt64, UInt64, Bool) in
            guard !state.isClosing else { throw WALError.closed }
            if let epoch, epoch != state.failureEpoch {
                throw WALError.write(
                    "refused: a write failed after this sender's previous record (\(state.lastError ?? "since recovered"))")
            }
            let lsn = state.nextLSN
            state.nextLSN += 1
            withUnsafeBytes(of: UInt32(payload.count).littleEndian) { state.pending.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(0)) { state.pending.append(contentsOf: $0) }
            state.pending.append(kind)
            withUnsafeBytes(of: lsn.littleEndian) { state.pending.append(contentsOf: $0) }
            state.pending.append(contentsOf: payload)
            state.pendingEnds.append(state.pending.count)
            let wake = state.committerIsIdle
            state.committerIsIdle = false
            return (lsn, state.failureEpoch, wake)
        }
        if wake { self.wakeUp.signal() }
        return (lsn, current)
    }

    /// Returns once record `lsn` is durable per the mode (for `interval`, once written).
    ///
    /// Records before the log's first LSN count as durable: they come from an earlier run.
    /// Cancellation does not end the wait early; the group's I/O does.
    /// - Throws: the `WALError.write` of the failed group the record was in; `WALError.unknownLSN`
    ///   for an LSN not assigned yet.
    public func waitDurable(_ lsn: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let outcome = self.state.withLock { state -> Result<Void, WALError>? in
                if let outcome = state.outcome(of: lsn) { return outcome }
                state.waiters[lsn, default: []].append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome.mapError { $0 as any Error }) }
        }
    }

    /// The groups the committer has resolved since the last call, in LSN order (durable or failed,
    /// see `ResolvedGroup`); suspends until there is one. Returns nil once the log is closed and
    /// every group was taken. For a log opened with `followsGroups`, and one caller at a time.
    ///
    /// Cancellation does not end the wait early (as for `waitDurable`): the reader of a log must see
    /// every group its records are in, so it ends when the log is closed.
    public func nextResolvedGroups() async -> [ResolvedGroup]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[ResolvedGroup]?, Never>) in
            let ready = self.state.withLock { state -> [ResolvedGroup]?? in
                precondition(state.resolvedGroups != nil, "open the log with followsGroups to follow its groups")
                precondition(state.groupsFollower == nil, "one follower at a time")
                if let groups = state.resolvedGroups, !groups.isEmpty {
                    state.resolvedGroups = []
                    return .some(groups)
                }
                if state.isStopped { return .some(nil) }
                state.groupsFollower = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Starts a new segment at the next LSN, after the records appended so far, and returns its first LSN.
    ///
    /// Used before a checkpoint: once the checkpoint covers every LSN below the returned one,
    /// `removeSegments(coveredBy:)` deletes the older segments whole. When the current segment holds
    /// no record, it stays and its first LSN is returned. Blocks until the committer has done it.
    /// - Throws: `WALError.closed`, or `WALError.io` when the new segment cannot be created (records
    ///   then keep going to the current one).
    @discardableResult
    public func roll() throws -> UInt64 {
        let ticket = RollTicket()
        let wake = try self.state.withLock { state throws(WALError) -> Bool in
            guard !state.isClosing else { throw WALError.closed }
            state.rollRequests.append((state.nextLSN, ticket))
            let wake = state.committerIsIdle
            state.committerIsIdle = false
            return wake
        }
        if wake { self.wakeUp.signal() }
        return try ticket.wait()
    }

    /// Deletes every segment whose records all have an LSN at most `lsn`, never the current one.
    ///
    /// Segment i goes when segment i + 1 starts at or before `lsn + 1`. Syncs the directory after.
    /// - Returns: how many segments were deleted.
    @discardableResult
    public func removeSegments(coveredBy lsn: UInt64) throws -> Int {
        let current = self.state.withLock { $0.currentSegmentFirstLSN }
        let segments = try SegmentFile.list(self.walDirectory)
        var removed = 0
        // The last listed segment is never deleted: it is the current one, or newer.
        for index in segments.indices.dropLast() {
            guard segments[index + 1].firstLSN <= lsn &+ 1, lsn < UInt64.max else { break }
            if segments[index].firstLSN == current { break }
            guard unlink(segments[index].path) == 0 || errno == ENOENT else {
                throw WALError.io("unlink \(segments[index].path): \(SegmentFile.errorText(errno))")
            }
            removed += 1
        }
        if removed > 0 { try SegmentFile.syncDirectory(self.walDirectory) }
        return removed
    }

    /// Writes and syncs what is pending, stops the committer thread and closes the segment.
    ///
    /// Later appends and rolls throw `WALError.closed`; waits on records appended before still end.
    /// Blocks until the committer is done. A second call does nothing.
    /// - Throws: the error of a group or of the final sync that failed while closing.
    public func close() throws {
        let first = self.state.withLock { state in
            defer { state.isClosing = true }
            return !state.isClosing
        }
        guard first else { return }
        self.wakeUp.signal()
        self.stopped.wait()
        if let failure = self.state.withLock({ $0.closeError }) { throw WALError.write(failure) }
    }

    /// Every record up to this LSN is durable per the mode, except those of failed groups.
    public var durableLSN: UInt64 { self.state.withLock { $0.durableLSN } }
    /// Every record up to this LSN, except those of failed groups, was synced (equals `durableLSN`
    /// but in `interval` mode).
    public var syncedLSN: UInt64 { self.state.withLock { $0.syncedLSN } }
    /// Groups whose write or sync failed (in `interval` mode, failed background syncs too).
    public var failedGroups: Int { self.state.withLock { $0.failedGroups } }
    /// The error of the last failed group or sync; nil again after a successful group.
    public var lastError: String? { self.state.withLock { $0.lastError } }
    /// Bytes written to segments in successful groups, segment headers excluded.
    public var bytesWritten: Int { self.state.withLock { $0.bytesWritten } }
    /// Records written in successful groups.
    public var recordsWritten: Int { self.state.withLock { $0.recordsWritten } }
    /// `fdatasync` calls on segments.
    public var syncs: Int { self.state.withLock { $0.syncs } }
    /// Time spent in those `fdatasync` calls.
    public var syncNanoseconds: UInt64 { self.state.withLock { $0.syncNanoseconds } }
}
