import Foundation
import Logging
import NIOPosix
import RoasCore
import RoasRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

/// Kinds of write-ahead log records.
extension BatchOutcome {
    /// What `AcceptedBatches` and checkpoints remember of an accepted batch.
    var entry: AcceptedBatches.Entry { AcceptedBatches.Entry(timestamp: self.timestamp ?? 0, digest: self.digest) }
}

/// What the engine is waiting to apply, in log order.
enum DurableInput: Sendable {
    case chunk(ParsedChunk)
    case advance(Int64)
}

/// An input appended to the log and queued, to pass to `Ingestor.completion(of:)`.
struct DurableTicket: Sendable {
    var id: Int
    /// 0 when nothing was logged.
    var lsn: UInt64
    /// The log's failure epoch at the append, for the sender's next one (nil: nothing chained yet).
    var epoch: UInt64?
}

/// The `--data-dir` part of the ingestor's state.
struct DurableState {
    let log: WriteAheadLog
    let checkpoints: CheckpointStore
    let settings: DurabilitySettings
    let logger: Logger
    /// The data folder's LOCK file, held while the server runs.
    let lock: Int32
    /// Inputs appended to the log, in log order; each applies once it and those before it are done.
    var queue = DurableApplyQueue<DurableInput, Ingestor.Applied, CheckedContinuation<Ingestor.Applied, any Error>>()
    /// Shutdown waits here until the queue is empty.
    var emptyWaiters: [CheckedContinuation<Void, Never>] = []
    /// The last record appended, and the last one applied to the engine.
    var lastLSN: UInt64
    var appliedLSN: UInt64
    var checkpointLSN: UInt64
    /// Batch ids applied, with their timestamps and digests, for the next checkpoint.
    var appliedBatches: [String: AcceptedBatches.Entry]
    var lastCheckpointAt: Int64
    var checkpoint: Task<Void, Never>?
    /// The longest apply (milliseconds) while the running checkpoint is being written.
    var longestApplyDuringCheckpoint: Int64 = 0
}

extension Ingestor {
    // MARK: Recovery

    /// Opens the data folder: loads the newest readable checkpoint, replays the log after it, lines
    /// the rows file up with it, and opens a new log segment. Call once, before any input.
    func recover(_ settings: DurabilitySettings, logger: Logger) throws -> RecoveryReport {
        let started = SystemClock.monotonicMilliseconds()
        let directory = settings.directory
        try DataFolder.makeFolder(directory)
        let lock = try DataFolder.lock(directory)
        // Alerts queued for --alert-webhook and not yet delivered, before the replay offers its alerts.
        do {
            try self.webhooks?.openOutbox(directory: directory)
        } catch {
            throw RoasError(.output, "cannot open the alert outbox in \(directory): \(error)")
        }
        let store = try CheckpointStore(directory: directory)
        let configuration = self.settings.run.configuration
        var report = RecoveryReport()

        // The newest checkpoint that reads back whole; a different configuration is an error, not a fallback.
        var checkpoint: Checkpoint?
        for file in try store.files().reversed() {
            do {
                let candidate = try store.read(file.path)
                var engine = try candidate.engine.withUnsafeBytes { try Engine(snapshot: $0, configuration: configuration) }
                engine.trackUpdates(true)
                self.host = EngineHost(engine: engine, outputs: self.host.outputs)
                checkpoint = candidate
                break
            } catch SnapshotError.configurationMismatch(let difference) {
                throw RoasError(
                    .options,
                    "the data folder \(directory) was written with other engine options (\(difference)); "
                        + "start with the same options or another --data-dir")
            } catch SnapshotError.unsupportedVersion(let version) {
                // An upgrade: the checkpoint is sound, only older. Keep it, and say how to move on.
                throw RoasError(
                    .options,
                    "the data folder \(directory) was checkpointed by an earlier roas (snapshot layout \(version); "
                        + "this build reads \(Engine.snapshotVersion)); nothing was changed in it. Finish it with the "
                        + "earlier roas (pause senders, SIGTERM), then start this one with a new --data-dir")
            } catch {
                // Set aside (kept for a look), so that it no longer counts among the checkpoints kept.
                let aside = file.path + ".corrupt"
                rename(file.path, aside)
                report.skippedCheckpoints.append("\(file.path): \(error)")
                logger.error(
                    "skipping an unreadable checkpoint; the one before it and the log take over",
                    metadata: ["path": "\(aside)", "error": "\(error)"])
            }
        }
        var appliedBatches: [String: AcceptedBatches.Entry] = [:]
        if let checkpoint {
            report.checkpointLSN = checkpoint.lsn
            for batch in checkpoint.batches {
                self.accepted.restore(batch.id, batch.entry)
                appliedBatches[batch.id] = batch.entry
            }
        }
        let segments = try WriteAheadLog.segments(in: directory)
        let base = checkpoint?.lsn ?? 0
        if let first = segments.first, first.firstLSN > base + 1 {
            throw RoasError(
                .input,
                "the log in \(directory)/wal starts at record \(first.firstLSN), but no readable checkpoint covers "
                    + "the records before it (\(report.skippedCheckpoints.joined(separator: "; ")))")
        }

        // Rows written after the checkpoint came from the log replayed below: count them, to not write them twice.
        report.skippedRows = try self.reconcileRows(from: checkpoint?.rowsPosition ?? 0, logger: logger)

        let run = self.settings.run
        self.replayParser = ChunkParser(replaying: run, configuration: configuration, accepted: self.accepted)
        self.finalRowsToSkip = report.skippedRows
        let replay = try WriteAheadLog.replay(
            directory: directory, after: base, truncatingDamage: settings.truncatesDamagedLog
        ) { _, kind, payload in
            switch kind {
            case LogRecord.input:
                let chunk = self.replayParser!.consume(payload)
                try self.host.apply(chunk)
                for outcome in chunk.batchOutcomes where outcome.rejection == nil {
                    if let id = outcome.id { appliedBatches[id] = outcome.entry }
                }
            case LogRecord.idleAdvance:
                guard payload.count == 8 else { throw RoasError(.input, "an idle-close log record of \(payload.count) bytes") }
                try self.host.advanceIdle(to: Int64(littleEndian: payload.loadUnaligned(as: Int64.self)))
            default:
                throw RoasError(.input, "a log record of unknown kind \(kind)")
            }
            report.replayedRecords += 1
            report.replayedBytes += payload.count
        }
        try self.host.apply(self.replayParser!.finish())
        self.replayParser = nil
        report.droppedTail = replay.droppedTail
        if let tail = replay.droppedTail {
            if tail.contains("--truncate-damaged-log") {
                logger.error(
                    "dropped a damaged part of the log and the records after it (acknowledged input is lost)",
                    metadata: ["tail": "\(tail)"])
            } else {
                logger.warning("dropped the torn end of the log (never acknowledged)", metadata: ["tail": "\(tail)"])
            }
        }
        let last = max(replay.lastLSN, base)
        let log = try WriteAheadLog(
            directory: directory, nextLSN: last + 1, fsync: settings.fsync, segmentBytes: settings.segmentBytes)
        self.durable = DurableState(
            log: log, checkpoints: store, settings: settings, logger: logger, lock: lock, lastLSN: last,
            appliedLSN: last, checkpointLSN: base, appliedBatches: appliedBatches,
            lastCheckpointAt: SystemClock.monotonicMilliseconds())
        if self.finalRowsToSkip > 0 {
            // The rows file holds rows the replay did not reach: it is not from this log.
            logger.warning("the rows file holds \(self.finalRowsToSkip) final rows more than the log explains; they are kept")
            report.skippedRows -= self.finalRowsToSkip
            self.finalRowsToSkip = 0
        }
        report.milliseconds = SystemClock.monotonicMilliseconds() - started
        return report
    }

    /// Cuts a half-written last line off the rows file and counts the final rows after `position`.
    private func reconcileRows(from position: Int, logger: Logger) throws -> Int {
        guard let path = self.rows.path, self.rows.isRegularFile else {
            logger.notice(
                "rows go to a stream, not a file: after a crash, final rows since the last checkpoint are written again; use --output FILE to have each exactly once"
            )
            return 0
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RoasError(.output, "cannot read back \(path)")
        }
        guard data.count >= position else {
            logger.warning("the rows file is shorter than at the last checkpoint; rows before it are missing from it", metadata: ["path": "\(path)"])
            return 0
        }
        let tail = data[data.startIndex + position..<data.endIndex]
        var finals = 0
        var lineStart = tail.startIndex
        var end = tail.startIndex
        let marker = Array("\"final\":true".utf8)
        for index in tail.indices where tail[index] == 0x0A {
            if tail[lineStart..<index].firstRange(of: marker) != nil { finals += 1 }
            lineStart = index + 1
            end = index + 1
        }
        let length = end - data.startIndex
        if length < data.count {
            logger.warning("cut a half-written row off the end of the rows file", metadata: ["bytes": "\(data.count - length)"])
        }
        try self.rows.truncate(to: length)
        return finals
    }

    // MARK: Durable apply

    /// Appends the input to the log, waits until it is durable, then applies it in log order.
    func applyDurably(_ input: DurableInput) async throws -> Applied {
        try await self.completion(of: try self.enqueueDurably(input))
    }

    /// The first half of `applyDurably`, without suspending: appends the input to the log (so inputs
    /// enqueued one after the other keep their order) and queues it. Throws `ServeError.notDurable`
    /// when the append fails.
    ///
    /// - Parameter epoch: for input that must follow the sender's previous input in the log, the
    ///   `epoch` of that input's ticket (see `WriteAheadLog.append(kind:payload:unlessFailedSince:)`).
    func enqueueDurably(_ input: DurableInput, after epoch: UInt64? = nil) throws -> DurableTicket {
        let log = self.durable!.log
        var lsn: UInt64 = 0
        var current = epoch
        do {
            switch input {
            case .chunk(let chunk):
                if !chunk.journal.isEmpty {
                    (lsn, current) = try chunk.journal.withUnsafeBytes {
                        let appended = try log.append(kind: LogRecord.input, payload: $0, unlessFailedSince: epoch)
                        return (appended.lsn, appended.epoch)
                    }
                }
            case .advance(let time):
                lsn = try withUnsafeBytes(of: time.littleEndian) { try log.append(kind: LogRecord.idleAdvance, payload: $0) }
            }
        } catch {
            self.release(input)
            throw ServeError.notDurable("\(error)")
        }
        if lsn > 0 { self.durable!.lastLSN = lsn }
        // Input with nothing to log (only rejected lines) still waits for its turn.
        let id = self.durable!.queue.enqueue(input, lsn: lsn)
        if lsn > 0 {
            // Noted by a task of its own (on this actor), not by whoever waits for the result: the
            // inputs queued after this one must not depend on that caller coming back.
            Task {
                let failure: String?
                do {
                    try await log.waitDurable(lsn)
                    failure = nil
                } catch {
                    failure = "\(error)"
                }
                self.durable!.queue.logged(id, failure: failure)
                self.drain()
            }
        }
        return DurableTicket(id: id, lsn: lsn, epoch: current)
    }

    /// The second half: waits until the input is durable and applied (after everything logged
    /// before it), and returns what it came to.
    func completion(of ticket: DurableTicket) async throws -> Applied {
        self.drain()
        if let outcome = self.durable!.queue.take(ticket.id) { return try outcome.get() }
        return try await withCheckedThrowingContinuation { continuation in
            if let outcome = self.durable!.queue.claim(ticket.id, waiter: continuation) { continuation.resume(with: outcome) }
        }
    }

    /// Applies (or fails) the inputs at the front of the queue whose fate is known, in log order.
    private func drain() {
        while let step = self.durable!.queue.next() {
            let id: Int
            let outcome: Result<Applied, any Error>
            switch step {
            case .apply(let applied, let lsn, let input, let endsFailure):
                id = applied
                outcome = self.applyLogged(input)
                if lsn > 0 { self.durable!.appliedLSN = lsn }
                if endsFailure { self.durable!.logger.notice("the write-ahead log takes input again") }
            case .refuse(let refused, let input, let reason, let startsFailure):
                id = refused
                self.release(input)
                if startsFailure {
                    self.durable!.logger.error(
                        "cannot write the write-ahead log: refusing input (TCP nack, HTTP 503) until it can",
                        metadata: ["error": "\(reason)"])
                }
                outcome = .failure(ServeError.notDurable(reason))
            }
            self.durable!.queue.finished(id, outcome)?.resume(with: outcome)
        }
        if self.durable!.queue.isEmpty && !self.durable!.emptyWaiters.isEmpty {
            for waiter in self.durable!.emptyWaiters { waiter.resume() }
            self.durable!.emptyWaiters.removeAll()
        }
    }

    private func applyLogged(_ input: DurableInput) -> Result<Applied, any Error> {
        let started = self.durable!.checkpoint == nil ? 0 : SystemClock.monotonicMilliseconds()
        defer {
            if started > 0 {
                let took = SystemClock.monotonicMilliseconds() - started
                self.durable!.longestApplyDuringCheckpoint = max(self.durable!.longestApplyDuringCheckpoint, took)
            }
        }
        switch input {
        case .chunk(let chunk):
            for outcome in chunk.batchOutcomes where outcome.rejection == nil {
                if let id = outcome.id { self.durable!.appliedBatches[id] = outcome.entry }
            }
            return Result { try self.applyNow(chunk) }
        case .advance(let time):
            return Result {
                try self.host.advanceIdle(to: time)
                return Applied(accepted: 0, rejected: 0)
            }
        }
    }

    /// Forgets the batch ids of input that was not made durable, so that their resends are taken.
    private func release(_ input: DurableInput) {
        if case .chunk(let chunk) = input { self.accepted.remove(acceptedIn: chunk) }
    }

    // MARK: Checkpoints

    /// Starts a checkpoint when `--checkpoint-every` has passed since the last one and something
    /// was applied since.
    func checkpointIfDue() throws {
        let now = SystemClock.monotonicMilliseconds()
        guard !self.isFinished, let durable = self.durable, durable.checkpoint == nil,
            now - durable.lastCheckpointAt >= durable.settings.checkpointEvery,
            durable.appliedLSN > durable.checkpointLSN
        else { return }
        try self.startCheckpoint()
    }

    /// Takes a copy of the engine (copy-on-write: its buffers are copied only as the engine changes
    /// them next) and writes it on a thread of NIO's pool while ingest goes on.
    @discardableResult
    private func startCheckpoint() throws -> Task<Void, Never> {
        try self.rows.flush()
        try self.deadLetters?.flush()
        let durable = self.durable!
        let engine = self.host.engine
        let tolerance = self.settings.run.tolerance
        let horizon = self.settings.run.now() - tolerance - 1
        if tolerance > 0 { self.durable!.appliedBatches = durable.appliedBatches.filter { $0.value.timestamp >= horizon } }
        let checkpoint = Checkpoint(
            lsn: durable.appliedLSN, rowsPosition: self.rows.position,
            batches: self.durable!.appliedBatches.map { ($0.key, $0.value) }, engine: [])
        let rowsDescriptor = self.rows.isRegularFile ? self.rows.descriptor : -1
        let postgres = self.postgres
        let delivered = postgres?.enqueuedSequence ?? 0
        let store = durable.checkpoints
        let log = durable.log
        let started = SystemClock.monotonicMilliseconds()
        self.durable!.lastCheckpointAt = started
        self.durable!.longestApplyDuringCheckpoint = 0
        let task = Task {
            do {
                // Rows before the checkpoint are not replayed after it: they must be in the database.
                if let postgres { try await Self.waitDelivered(postgres, delivered, patience: .seconds(30)) }
                let bytes = try await NIOThreadPool.singleton.runIfActive {
                    // Rows up to the checkpoint's position must survive what the log before it does not.
                    if rowsDescriptor >= 0 { fsync(rowsDescriptor) }
                    var complete = checkpoint
                    complete.engine = engine.snapshot()
                    _ = try log.roll()
                    let covered = try store.write(complete)
                    if covered > 0 { _ = try log.removeSegments(coveredBy: covered) }
                    return complete.engine.count
                }
                self.checkpointFinished(lsn: checkpoint.lsn, bytes: bytes, started: started, error: nil)
            } catch {
                self.checkpointFinished(lsn: checkpoint.lsn, bytes: 0, started: started, error: error)
            }
        }
        self.durable!.checkpoint = task
        return task
    }

    /// Returns once the sink has committed every row up to `sequence`; throws after `patience`
    /// (the checkpoint is then not written, and the log after the previous one is kept).
    private static func waitDelivered(_ sink: PostgresRowSink, _ sequence: UInt64, patience: Duration) async throws {
        let inTime = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await sink.waitDelivered(sequence)
                return true
            }
            group.addTask {
                try await Task.sleep(for: patience)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
        guard inTime else {
            throw RoasError(
                .output,
                "rows up to \(sequence) are not in PostgreSQL after \(patience) (\(sink.lastError ?? "no error yet"))")
        }
    }

    private func checkpointFinished(lsn: UInt64, bytes: Int, started: Int64, error: (any Error)?) {
        let took = SystemClock.monotonicMilliseconds() - started
        self.durable!.checkpoint = nil
        if let error {
            self.durable!.logger.error("checkpoint failed; the log is kept", metadata: ["lsn": "\(lsn)", "error": "\(error)"])
            return
        }
        self.durable!.checkpointLSN = lsn
        self.metrics.checkpoints.increment()
        self.metrics.checkpointSeconds.record(Double(took) / 1000)
        self.metrics.checkpointBytes.record(bytes)
        self.durable!.logger.info(
            "checkpoint written",
            metadata: [
                "lsn": "\(lsn)", "bytes": "\(bytes)", "milliseconds": "\(took)",
                "longest_apply_meanwhile_ms": "\(self.durable!.longestApplyDuringCheckpoint)",
            ])
    }

    /// Shutdown with a data folder: waits for what is in flight, writes a last checkpoint and closes
    /// the log. Open windows stay open: the next start resumes them.
    func finishDurably() async throws {
        self.drain()
        if !self.durable!.queue.isEmpty {
            // drain() resumes this once the last input in flight has applied or been refused.
            await withCheckedContinuation { self.durable!.emptyWaiters.append($0) }
        }
        if let running = self.durable!.checkpoint { await running.value }
        try self.host.write()
        try self.host.flush()
        if self.durable!.appliedLSN > self.durable!.checkpointLSN {
            await (try self.startCheckpoint()).value
        }
        try self.durable!.log.close()
        close(self.durable!.lock)
        self.recordMetrics()
        self.hub.publish(event: "stats", data: self.statsJSON())
        self.hub.finish()
    }
}
