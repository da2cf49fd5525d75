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
    // MARK: Recovery

    /// What recovery's reading thread hands the engine: a parsed log record (or, with no size, what
    /// the parser held at the end), an idle-close advance, the end of the log, or why it stopped.
    private enum ReplayItem: Sendable {
        case chunk(ParsedChunk, recordBytes: Int?)
        case idleAdvance(Int64)
        case end(WriteAheadLog.ReplayReport)
        case failure(any Error)
    }

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
        // The replay runs without pages (they cost each event time, and nothing is checkpointed
        // until it ends); the engine pages its tables before it takes input.
        var unpaged = self.settings.run.configuration
        unpaged.pagedState = false
        let configuration = unpaged
        self.host.setPagedState(false)
        var report = RecoveryReport()

        // The newest checkpoint that reads back whole; a different configuration is an error, not a fallback.
        var checkpoint: Checkpoint?
        for file in try store.files().reversed() {
            do {
                let candidate = try store.read(file.path)
                var engine = try candidate.engine.withUnsafeBytes { try Engine(snapshot: $0, configuration: configuration) }
                engine.trackUpdates(true)
                self.host = EngineHost(engine: engine, updatesEvery: self.host.updates.every, outputs: self.host.outputs)
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

        self.finalRowsToSkip = report.skippedRows
        // The log is read, checked and parsed on a thread of its own while this one applies: the two
        // take about as long as each other (as in `roas run --threads 2`).
        let queue = BlockingQueue<ReplayItem>(capacity: 8)
        let reader = Thread { [run = self.settings.run, accepted = self.accepted] in
            var parser = ChunkParser(replaying: run, configuration: configuration, accepted: accepted)
            do {
                let result = try WriteAheadLog.replay(
                    directory: directory, after: base, truncatingDamage: settings.truncatesDamagedLog
                ) { _, kind, payload in
                    let item: ReplayItem
                    switch kind {
                    case LogRecord.input:
                        item = .chunk(parser.consume(payload), recordBytes: payload.count)
                    case LogRecord.idleAdvance:
                        guard payload.count == 8 else {
                            throw RoasError(.input, "an idle-close log record of \(payload.count) bytes")
                        }
                        item = .idleAdvance(Int64(littleEndian: payload.loadUnaligned(as: Int64.self)))
                    default:
                        throw RoasError(.input, "a log record of unknown kind \(kind)")
                    }
                    guard queue.put(item) else { throw CancellationError() }
                }
                _ = queue.put(.chunk(parser.finish(), recordBytes: nil))
                _ = queue.put(.end(result))
            } catch is CancellationError {
                // This side stopped taking records: it has thrown already.
            } catch {
                _ = queue.put(.failure(error))
            }
        }
        reader.name = "roas-recovery"
        reader.start()
        defer { queue.cancel() }
        let replay: WriteAheadLog.ReplayReport
        replaying: while true {
            switch queue.take() {
            case .chunk(let chunk, let recordBytes):
                try self.host.apply(chunk)
                for outcome in chunk.batchOutcomes where outcome.rejection == nil {
                    if let id = outcome.id { appliedBatches[id] = outcome.entry }
                }
                if let recordBytes {
                    report.replayedRecords += 1
                    report.replayedBytes += recordBytes
                }
            case .idleAdvance(let time):
                try self.host.advanceIdle(to: time)
                report.replayedRecords += 1
                report.replayedBytes += 8
            case .end(let result):
                replay = result
                break replaying
            case .failure(let error):
                throw error
            }
        }
        self.host.setPagedState(self.settings.run.configuration.pagedState)
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
            directory: directory, nextLSN: last + 1, fsync: settings.fsync, segmentBytes: settings.segmentBytes,
            followsGroups: true)
        self.durable = DurableState(
            folder: DurableState.Folder(log: log, checkpoints: store, settings: settings, logger: logger, lock: lock),
            machine: DurableState.Machine(
                lsn: last, checkpointLSN: base, batches: appliedBatches, now: SystemClock.monotonicMilliseconds()))
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
}
