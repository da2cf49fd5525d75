import Foundation
import RoasCore
import RoasLog
import RoasRuntime

/// `roas worker`: reads the parts an edge (`roas serve --nats`) appended to a stream, puts each batch
/// back together (`LogPartAssembler`) and applies it, as the write-ahead log's replay does (the edge
/// verified it), to an engine of its own; writes the rows of the creators its member owns.
///
/// This first form of the worker reads every partition's parts: each member computes every row and
/// writes its share (the creators whose log partition `p` has `p % members == member`), so the
/// members' rows together are the rows of one `roas run` over the same batches, in stream order.
/// It scales the output, not the work; reading only its own partitions and asking the others for
/// touches is the next step (issue 13). Dead letters are written by member 1 only, for the same
/// reason.
///
/// With a data folder (`--data-dir`), the worker writes a checkpoint every `checkpointEvery`: the
/// engine, where on the stream to read again from, the batch ids its assembler remembers and how
/// far its rows and dead-letter files were written. Started again, it goes on from the newest
/// readable checkpoint: it cuts its files back to those lengths and reads the stream from there, so
/// it writes every row once, as if it had never stopped.
public struct LogWorker {
    public struct Settings: Sendable {
        public var urls: [String]
        public var stream: String
        /// This member, from 0, of `members`.
        public var member: Int
        public var members: Int
        /// Milliseconds without a new part after which the worker finishes (every window closes,
        /// as at the end of `roas run`'s input) and returns; nil: it runs until stopped.
        public var idleExit: Int64?
        /// Where checkpoints are kept (`--data-dir`); nil: none, a restart reads the stream from
        /// its start and writes its files anew.
        public var dataDirectory: String?
        /// Milliseconds between checkpoints (`--checkpoint-every`).
        public var checkpointEvery: Int64 = 30_000
        public var run: RunSettings

        public init(urls: [String], stream: String, member: Int, members: Int, run: RunSettings) {
            self.urls = urls
            self.stream = stream
            self.member = member
            self.members = members
            self.run = run
        }
    }

    public let settings: Settings
    public let rows: ByteSink
    public let deadLetters: ByteSink?
    /// More places for the rows this member owns (`--sink`), made with `owns(_:)`: written on the
    /// output thread; their `flush()` runs before each checkpoint and at the end.
    public let sinks: [any EngineOutputSink]

    public init(settings: Settings, rows: ByteSink, deadLetters: ByteSink?, sinks: [any EngineOutputSink] = []) {
        self.settings = settings
        self.rows = rows
        self.deadLetters = deadLetters
        self.sinks = sinks
    }

    /// `owns(_:member:members:partitions:)` for these settings.
    public static func owns(_ settings: Settings) -> @Sendable (Row) -> Bool {
        let (member, members, partitions) = (settings.member, settings.members, settings.run.configuration.partitions)
        return { LogWorker.owns($0, member: member, members: members, partitions: partitions) }
    }

    /// Whether member `member` of `members` writes `row`: the member of its creator's log partition.
    public static func owns(_ row: Row, member: Int, members: Int, partitions: Int) -> Bool {
        guard let creator = row.creator else { return member == 0 }
        var key = creator
        let partition = key.withUTF8 { LogRoute.partition(ofKey: UnsafeRawBufferPointer($0), partitions: partitions) }
        return partition % members == member
    }

    /// A checkpoint's batch list for `position`: each id with the generation it belongs to (0
    /// older, 1 newer) in place of a timestamp; a worker has no use for timestamps or digests.
    static func batches(of position: LogStreamPosition) -> [(id: String, entry: AcceptedBatches.Entry)] {
        position.older.map { ($0, AcceptedBatches.Entry(timestamp: 0, digest: 0)) }
            + position.newer.map { ($0, AcceptedBatches.Entry(timestamp: 1, digest: 0)) }
    }

    /// The position a checkpoint goes on from.
    static func position(of checkpoint: Checkpoint) -> LogStreamPosition {
        LogStreamPosition(
            sequence: checkpoint.lsn, older: checkpoint.batches.filter { $0.entry.timestamp == 0 }.map(\.id),
            newer: checkpoint.batches.filter { $0.entry.timestamp != 0 }.map(\.id))
    }

    /// Connects, checks the stream's options against this worker's, and applies what the stream
    /// holds from its start until `idleExit` passes without a new part, or SIGTERM or SIGINT comes.
    /// - Throws: `RoasError` for other options, an unreachable log or a part that is not one.
    public func run() throws -> RunResult {
        let settings = self.settings
        let configuration = settings.run.configuration
        let log: JetStreamLog
        do {
            log = try JetStreamLog(
                urls: settings.urls, stream: settings.stream, subjects: LogLayout.subjects(settings.stream), replicas: nil)
        } catch {
            throw RoasError(.input, "cannot open stream \(settings.stream) on \(settings.urls.joined(separator: ",")): \(error)")
        }
        try LogLayout.recordOptions(of: configuration, on: log, stream: settings.stream)
        let folder = try settings.dataDirectory.map { try WorkerFolder(directory: $0, settings: settings) }
        defer { folder?.unlock() }
        var restored = try folder?.restore(configuration: configuration, rows: self.rows, deadLetters: self.deadLetters)
        let start = restored?.position ?? .start
        var options = LogFollower.Options()
        options.start = start
        options.linesBefore = restored?.engine.statistics.linesRead ?? 0
        options.idleExit = settings.idleExit
        options.checkpointEvery = folder != nil ? settings.checkpointEvery : nil
        if start.sequence > 1 {
            let last: UInt64
            do {
                last = try log.status().lastSequence
            } catch {
                throw RoasError(.input, "cannot read the state of stream \(settings.stream): \(error)")
            }
            guard start.sequence <= last + 1 else {
                throw RoasError(
                    .input,
                    "the checkpoint in \(settings.dataDirectory ?? "") goes on from sequence \(start.sequence) of stream "
                        + "\(settings.stream), which ends at \(last): the stream was made again; start with a new --data-dir")
            }
        }

        let follower = LogFollower(log: log, stream: settings.stream, run: settings.run, options: options)
        defer { follower.cancel() }
        // SIGTERM and SIGINT finish the worker as --idle-exit does: every window closes and its rows
        // are written before it exits (the default action would lose what the output still holds).
        let signals = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { follower.stop() }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }

        var sinks: [any EngineOutputSink] = [
            RowFileOutput(rows: self.rows, writesUpdates: settings.run.emitEvery != nil, owns: LogWorker.owns(settings))
        ]
        sinks += self.sinks
        let deadLetters = settings.member == 0 ? self.deadLetters : nil
        if let deadLetters {
            sinks.append(DeadLetterFileOutput(deadLetters: deadLetters, flushesEachStep: false))
        }
        let output = OutputThread(sinks: sinks)
        defer { output.close() }
        var host: EngineHost
        if let engine = restored?.engine {
            // The host's the only copy: another would make the engine copy its tables as it writes.
            restored = nil
            host = EngineHost(engine: engine, updatesEvery: settings.run.emitEvery, outputs: [output])
        } else {
            host = EngineHost(configuration: configuration, updatesEvery: settings.run.emitEvery, outputs: [output])
        }
        reading: while true {
            switch follower.take() {
            case .chunk(let chunk):
                try host.apply(chunk)
                try host.tick(now: SystemClock.monotonicMilliseconds())
            case .checkpoint(let position):
                guard let folder else { continue }
                // The copy written must be whole (the engine's workers done), and the files (and a
                // --sink database) must hold every row the engine gave before it.
                host.settle()
                try output.flush()
                do {
                    try folder.write(position, engine: host.engine, rows: self.rows, deadLetters: deadLetters)
                } catch {
                    // The checkpoint before stays whole: a restart goes on from it, reading more again.
                    LogWorker.notice("cannot write a checkpoint (\(error)); the one before it stays")
                }
            case .advance(let time):
                try host.advanceIdle(to: time)
            case .end:
                break reading
            case .failure(let error as RoasError):
                throw error
            case .failure(let error):
                throw RoasError(.input, "reading stream \(settings.stream): \(error)")
            }
        }
        return try host.finish()
    }
}

/// A worker's data folder: `DIR/LOCK` while it runs, `DIR/worker` naming the stream and member it
/// belongs to, and `DIR/checkpoints/<sequence>.ckpt` (the layout of `roas serve`'s checkpoints, with
/// the stream sequence to read from where those have a log record).
struct WorkerFolder {
    let directory: String
    let store: CheckpointStore
    private let lock: Int32

    init(directory: String, settings: LogWorker.Settings) throws {
        try DataFolder.makeFolder(directory)
        self.directory = directory
        self.lock = try DataFolder.lock(directory)
        do {
            self.store = try CheckpointStore(directory: directory)
            let owner = "stream \(settings.stream), member \(settings.member + 1)/\(settings.members)"
            let path = directory + "/worker"
            if let held = DataFolder.readWhole(path) {
                let heldOwner = String(decoding: held, as: UTF8.self).trimmingCharacters(in: .newlines)
                guard heldOwner == owner else {
                    throw RoasError(
                        .options,
                        "the data folder \(directory) belongs to \(heldOwner), not \(owner): give each worker its own --data-dir")
                }
            } else {
                try DataFolder.writeSynced(Array((owner + "\n").utf8), to: path)
                try DataFolder.syncFolder(directory)
            }
        } catch {
            close(self.lock)
            throw error
        }
    }

    /// Lets another worker take the folder.
    func unlock() { close(self.lock) }

    /// The newest checkpoint that reads back, as an engine and where to go on from, with the rows
    /// and dead-letter files cut back to where they were then; nil, with both files emptied, when
    /// there is none. A checkpoint that does not read back is set aside (`.corrupt`) and the one
    /// before it taken; other engine options are an error.
    func restore(
        configuration: EngineConfiguration, rows: ByteSink, deadLetters: ByteSink?
    ) throws -> (engine: Engine, position: LogStreamPosition)? {
        var found: (engine: Engine, checkpoint: Checkpoint)?
        for file in try self.store.files().reversed() {
            do {
                let checkpoint = try self.store.read(file.path)
                let engine = try checkpoint.engine.withUnsafeBytes { try Engine(snapshot: $0, configuration: configuration) }
                found = (engine, checkpoint)
                break
            } catch SnapshotError.configurationMismatch(let difference) {
                throw RoasError(
                    .options,
                    "the data folder \(self.directory) was written with other engine options (\(difference)); "
                        + "start with the same options or another --data-dir")
            } catch {
                rename(file.path, file.path + ".corrupt")
                LogWorker.notice("skipping an unreadable checkpoint (\(error)); set aside as \(file.path).corrupt")
            }
        }
        for (sink, length) in [(rows, found?.checkpoint.rowsPosition ?? 0), (deadLetters, found?.checkpoint.deadLettersPosition ?? 0)] {
            guard let sink else { continue }
            if sink.isRegularFile {
                // Opened for appending, nothing written yet: the position is the file's length.
                guard sink.position >= length else {
                    throw RoasError(
                        .output,
                        "\(sink.path ?? "an output file") holds \(sink.position) bytes, fewer than the \(length) the checkpoint in "
                            + "\(self.directory) counts: it was changed since; put it back, or start with a new --data-dir")
                }
                try sink.truncate(to: length)
            } else if found != nil {
                LogWorker.notice("output goes to a stream, not a file: what was written since the last checkpoint is written again")
            }
        }
        guard let found else { return nil }
        LogWorker.notice("going on from the checkpoint at stream sequence \(found.checkpoint.lsn) in \(self.directory)")
        return (found.engine, LogWorker.position(of: found.checkpoint))
    }

    /// Writes a checkpoint of `engine`, which has applied everything before `position`, once the
    /// files are durable up to where they are now.
    func write(_ position: LogStreamPosition, engine: Engine, rows: ByteSink, deadLetters: ByteSink?) throws {
        try rows.sync()
        try deadLetters?.sync()
        try self.store.write(
            lsn: position.sequence, rowsPosition: rows.position, deadLettersPosition: deadLetters?.position ?? 0,
            batches: LogWorker.batches(of: position), engine: engine)
    }
}

extension LogWorker {
    /// A line on stderr about what the worker did with its data folder.
    static func notice(_ message: String) {
        FileHandle.standardError.write(Data("roas worker: \(message)\n".utf8))
    }
}
