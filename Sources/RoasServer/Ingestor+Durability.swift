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

extension Ingestor {
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
        guard let log = self.durable?.folder.log else { throw ServeError.finished }
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
        // Input with nothing to log (only rejected lines) still waits for its turn. Input that was
        // logged waits for its group: `followLog()` hears of it.
        guard let id = self.durable?.machine.appended(input, lsn: lsn) else { throw ServeError.finished }
        return DurableTicket(id: id, lsn: lsn, epoch: current)
    }

    /// With `--data-dir`: takes the log's groups as the committer resolves them (durable or failed)
    /// and applies or refuses the inputs they hold, in log order. Run by `EngineService` beside the
    /// ticks; returns once the log is closed (at the end of `finish()`), and cancellation does not
    /// end it earlier: a shutdown waits for the inputs in flight, which only this moves on.
    nonisolated func followLog() async {
        guard let log = await self.followedLog else { return }
        while let groups = await log.nextResolvedGroups() {
            await self.logged(groups)
        }
    }

    private var followedLog: WriteAheadLog? { self.durable?.folder.log }

    private func logged(_ groups: [WriteAheadLog.ResolvedGroup]) {
        for group in groups {
            self.durable?.machine.logged(lsns: group.first, through: group.last, failure: group.failure)
        }
        self.drain()
    }

    /// The second half: waits until the input is durable and applied (after everything logged
    /// before it), and returns what it came to.
    func completion(of ticket: DurableTicket) async throws -> Applied {
        self.drain()
        if let outcome = self.durable?.machine.take(ticket.id) { return try outcome.get() }
        return try await withCheckedThrowingContinuation { continuation in
            guard self.durable != nil else { return continuation.resume(throwing: ServeError.finished) }
            // Kept when the outcome is not known yet: drain() resumes it.
            if let outcome = self.durable?.machine.claim(ticket.id, waiter: continuation) { continuation.resume(with: outcome) }
        }
    }

    /// Applies (or refuses) the inputs at the front of the queue whose fate is known, in log order,
    /// and resumes whoever waits for them.
    private func drain() {
        while let step = self.durable?.machine.next() {
            let id: Int
            let outcome: Result<Applied, any Error>
            switch step {
            case .apply(let applied, _, let input, let endsFailure):
                id = applied
                outcome = self.applyLogged(input).flatMap { applied in
                    guard case .chunk(let chunk) = input, let unconfirmed = self.unconfirmedDuplicate(in: chunk) else {
                        return .success(applied)
                    }
                    return .failure(
                        ServeError.notDurable(
                            "batch \(unconfirmed) resent while its first copy was on its way to the log, which could not take "
                                + "that copy: resend it"))
                }
                if endsFailure { self.durable?.folder.logger.notice("the write-ahead log takes input again") }
            case .refuse(let refused, let input, let reason, let startsFailure):
                id = refused
                self.release(input)
                if startsFailure {
                    self.durable?.folder.logger.error(
                        "cannot write the write-ahead log: refusing input (TCP nack, HTTP 503) until it can",
                        metadata: ["error": "\(reason)"])
                }
                outcome = .failure(ServeError.notDurable(reason))
            }
            let resume = self.durable?.machine.finished(id, outcome)
            resume?.waiter?.resume(with: outcome)
            for pause in resume?.emptied ?? [] { pause.resume() }
        }
    }

    private func applyLogged(_ input: DurableInput) -> Result<Applied, any Error> {
        let (started, startedCPU) = (SystemClock.monotonicMilliseconds(), SystemClock.threadCPUMilliseconds())
        defer {
            self.durable?.machine.applyTook(
                .init(
                    milliseconds: SystemClock.monotonicMilliseconds() - started,
                    cpuMilliseconds: SystemClock.threadCPUMilliseconds() - startedCPU))
        }
        switch input {
        case .chunk(let chunk):
            self.durable?.machine.accepted(
                chunk.batchOutcomes.lazy.filter { $0.rejection == nil }.compactMap { outcome in outcome.id.map { ($0, outcome.entry) } })
            return Result { try self.applyNow(chunk) }
        case .advance(let time):
            return Result {
                try self.host.advanceIdle(to: time)
                return Applied(accepted: 0, rejected: 0)
            }
        }
    }

    /// A batch of `chunk` answered `duplicate` at parse time whose first copy has since been
    /// refused by the log (its id released): answering `duplicate` would acknowledge a batch that
    /// is nowhere, so the chunk is answered not durable instead, and the sender resends it.
    private func unconfirmedDuplicate(in chunk: ParsedChunk) -> String? {
        for outcome in chunk.batchOutcomes where outcome.rejection?.reason == .replayedBatch {
            if let id = outcome.id, !self.accepted.contains(id) { return id }
        }
        return nil
    }

    /// Forgets the batch ids of input that was not made durable, so that their resends are taken.
    private func release(_ input: DurableInput) {
        if case .chunk(let chunk) = input { self.accepted.remove(acceptedIn: chunk) }
    }

    // MARK: Checkpoints

    /// Batch ids older than this (seconds) can no longer be replayed within `--tolerance`: the next
    /// checkpoint forgets them (nil: `--tolerance 0` keeps every id).
    private var batchHorizon: Int64? {
        let tolerance = self.settings.run.tolerance
        return tolerance > 0 ? self.settings.run.now() - tolerance - 1 : nil
    }

    /// Writes a checkpoint when `--checkpoint-every` has passed since the last one and something
    /// was applied since; ingest goes on while it is written. Throws when the outputs cannot be
    /// flushed first; a checkpoint that cannot be written is logged, and the log is kept.
    func checkpointIfDue() async throws {
        guard !self.isFinished, let every = self.durable?.folder.settings.checkpointEvery,
            let plan = self.durable?.machine.checkpointIfDue(
                now: SystemClock.monotonicMilliseconds(), every: every, horizon: self.batchHorizon)
        else { return }
        try await self.writeCheckpoint(plan)
    }

    /// Flushes the outputs, takes a copy of the engine (copy-on-write: its buffers are copied only
    /// as the engine changes them next) and writes it on a thread of NIO's pool; the actor takes
    /// input meanwhile. Reports the end to the machine whatever happens.
    private func writeCheckpoint(_ plan: DurableState.Machine.CheckpointPlan) async throws {
        guard let folder = self.durable?.folder else { return }
        var failure: (any Error)?
        var bytes = 0
        defer { self.checkpointEnded(bytes: bytes, failure: failure) }
        do {
            try self.rows.flush()
            try self.deadLetters?.flush()
        } catch {
            failure = error
            throw error
        }
        let checkpoint = (lsn: plan.lsn, rowsPosition: self.rows.position, batches: plan.batches.map { ($0.key, $0.value) })
        // The copy written must be whole: the workers done, the purchases they looked up credited.
        self.host.settle()
        do {
            bytes = try await Self.write(
                checkpoint, engine: self.host.engine.checkpointCopy, folder: folder,
                rowsDescriptor: self.rows.isRegularFile ? self.rows.descriptor : -1,
                postgres: self.postgres.map { ($0, $0.enqueuedSequence) })
        } catch {
            failure = error
        }
    }

    /// The writing itself, off the actor: waits until the database holds the rows before the
    /// checkpoint (they are not replayed after it), syncs the rows file, rolls the log, writes the
    /// snapshot and deletes the segments it covers. Returns the snapshot's size.
    private nonisolated static func write(
        _ checkpoint: (lsn: UInt64, rowsPosition: Int, batches: [(id: String, entry: AcceptedBatches.Entry)]),
        engine: Engine, folder: DurableState.Folder, rowsDescriptor: Int32,
        postgres: (sink: PostgresRowSink, delivered: UInt64)?
    ) async throws -> Int {
        // Not in time: the checkpoint is not written, and the log after the previous one is kept.
        if let postgres { try await postgres.sink.waitDelivered(postgres.delivered, patience: .seconds(30)) }
        let store = folder.checkpoints
        let log = folder.log
        return try await NIOThreadPool.singleton.runIfActive {
            // Rows up to the checkpoint's position must survive what the log before it does not.
            if rowsDescriptor >= 0 { fsync(rowsDescriptor) }
            _ = try log.roll()
            let (covered, bytes) = try store.write(
                lsn: checkpoint.lsn, rowsPosition: checkpoint.rowsPosition, batches: checkpoint.batches, engine: engine)
            if covered > 0 { _ = try log.removeSegments(coveredBy: covered) }
            return bytes
        }
    }

    private func checkpointEnded(bytes: Int, failure: (any Error)?) {
        guard let ended = self.durable?.machine.checkpointEnded(failed: failure != nil, now: SystemClock.monotonicMilliseconds())
        else { return }
        for pause in ended.resume { pause.resume() }
        let report = ended.report
        if failure is CancellationError {
            // Shutdown while it waited for the database: the last checkpoint follows.
            self.durable?.folder.logger.notice("checkpoint interrupted by shutdown", metadata: ["lsn": "\(report.lsn)"])
            return
        } else if let failure {
            self.durable?.folder.logger.error(
                "checkpoint failed; the log is kept", metadata: ["lsn": "\(report.lsn)", "error": "\(failure)"])
            return
        }
        self.metrics.checkpoints.increment()
        self.metrics.checkpointSeconds.record(Double(report.milliseconds) / 1000)
        self.metrics.checkpointBytes.record(bytes)
        self.durable?.folder.logger.info(
            "checkpoint written",
            metadata: [
                "lsn": "\(report.lsn)", "bytes": "\(bytes)", "milliseconds": "\(report.milliseconds)",
                "longest_apply_meanwhile_ms": "\(report.longestApplyMeanwhile.milliseconds)",
                "longest_apply_meanwhile_cpu_ms": "\(report.longestApplyMeanwhile.cpuMilliseconds)",
                "longest_apply_before_ms": "\(report.longestApplyBefore.milliseconds)",
                "longest_apply_before_cpu_ms": "\(report.longestApplyBefore.cpuMilliseconds)",
            ])
    }

    /// Shutdown with a data folder: waits for what is in flight and for a running checkpoint, writes
    /// a last checkpoint and closes the log (which ends `followLog()`). Open windows stay open: the
    /// next start resumes them.
    func finishDurably() async throws {
        guard let folder = self.durable?.folder else { return }
        defer {
            // Also when a step below throws: the log's follower ends only with the log.
            try? folder.log.close()
            close(folder.lock)
        }
        self.drain()
        steps: while let step = self.durable?.machine.finishStep(now: SystemClock.monotonicMilliseconds(), horizon: self.batchHorizon) {
            switch step {
            case .waitForInputs:
                // drain() resumes this once the last input in flight has applied or been refused.
                await withCheckedContinuation { self.durable?.machine.waitUntilEmpty($0)?.resume() }
            case .waitForCheckpoint:
                await withCheckedContinuation { self.durable?.machine.waitForCheckpoint($0)?.resume() }
            case .writeCheckpoint(let plan):
                try self.host.write()
                try self.host.flush()
                try await self.writeCheckpoint(plan)
            case .closeLog:
                break steps
            }
        }
        try folder.log.close()
        self.recordMetrics()
        self.hub.publish(event: "stats", data: self.statsJSON())
        self.hub.finish()
    }
}
