import Foundation
import RoasCore
import RoasLog
import RoasRuntime
import Synchronization

/// Where a reader of a stream goes on from: the stream sequence to read from and the batch ids its
/// assembler remembers (`LogPartAssembler.resumeSequence(after:)`, `rememberedIDs`).
public struct LogStreamPosition: Sendable {
    public var sequence: UInt64
    public var older: [String]
    public var newer: [String]

    /// The stream's start.
    public static let start = LogStreamPosition(sequence: 1, older: [], newer: [])

    public init(sequence: UInt64, older: [String], newer: [String]) {
        self.sequence = sequence
        self.older = older
        self.newer = newer
    }
}

/// Reads what an edge (`roas serve --nats`) appended to a stream, from a sequence on, on a thread of
/// its own: puts each batch back together from its parts (`LogPartAssembler`), parses it as the
/// write-ahead log's replay does (the edge verified it: no signature check), and hands over the
/// parsed chunks and the edge's idle advances in stream order, with, when asked, a position to go
/// on from every `checkpointEvery`. `roas worker` applies them to its engine, and `roas serve --nats
/// --follow` to the engine behind its dashboard.
public final class LogFollower: Sendable {
    public enum Item: Sendable {
        case chunk(ParsedChunk)
        /// The edge's idle advance (`--idle-close`): the watermark moves to this time.
        case advance(Int64)
        /// Everything handed before is read: a checkpoint of an engine that applied it all may go on
        /// from here.
        case checkpoint(LogStreamPosition)
        /// Stopped (`stop()`) or idle for `idleExit`: the rest was handed over.
        case end
        case failure(any Error)
    }

    public struct Options: Sendable {
        /// Where to start, and the batch ids given before it.
        public var start: LogStreamPosition = .start
        /// Lines handed over before `start` (dead letters go on numbering from there).
        public var linesBefore = 0
        /// Milliseconds without a new part after which the follower ends; nil: never by itself.
        public var idleExit: Int64?
        /// Milliseconds between `checkpoint` items; nil: none.
        public var checkpointEvery: Int64?

        public init() {}
    }

    private let queue = BlockingQueue<Item>(capacity: 4)
    private let stopped = Atomic<Bool>(false)
    private let drains = Atomic<Bool>(false)

    /// Starts reading `stream` of `log` (open, options checked) on a new thread.
    public init(log: any ReplicatedLog, stream: String, run: RunSettings, options: Options) {
        let queue = self.queue
        let thread = Thread { [self] in
            Self.read(
                log: log, stream: stream, run: run, options: options, into: queue, isStopped: { self.isStopped },
                drains: { self.drains.load(ordering: .relaxed) })
        }
        thread.name = "roas-log-reader"
        thread.start()
    }

    private var isStopped: Bool { self.stopped.load(ordering: .relaxed) }

    /// The next item, waiting for it.
    public func take() -> Item { self.queue.take() }

    /// Ends reading at the next fetch (within 200 ms): the rest is handed over, then `end`.
    public func stop() { self.stopped.store(true, ordering: .relaxed) }

    /// Ends reading at the stream's end as it is now: everything it holds is handed over, then
    /// `end`.
    public func finish() { self.drains.store(true, ordering: .relaxed) }

    /// Stops the thread without handing over more (the taker has stopped taking).
    public func cancel() {
        self.stop()
        self.queue.cancel()
    }

    private static func read(
        log: any ReplicatedLog, stream: String, run: RunSettings, options: Options, into queue: BlockingQueue<Item>,
        isStopped: () -> Bool, drains: () -> Bool
    ) {
        let advanceSubject = LogLayout.advanceSubject(stream)
        var parser = ChunkParser(replaying: run, configuration: run.configuration, accepted: AcceptedBatches())
        parser.continueNumbering(after: options.linesBefore)
        var assembler = LogPartAssembler(older: options.start.older, newer: options.start.newer)
        var lastPartAt = SystemClock.monotonicMilliseconds()
        var checkpointDue = options.checkpointEvery.map { lastPartAt + $0 }
        var lastSequence = options.start.sequence - 1
        var drainTarget: UInt64?
        var emptyWhileDraining = 0
        var opened: (any LogReader)?
        // Batches put together and not yet parsed: one buffer for the whole read, emptied as parsed.
        var frames: [UInt8] = []
        // The one message of the stream a reader of parts never gets: the options record.
        let optionsSequence = (try? log.lastMessage(on: LogLayout.optionsSubject(stream)))??.sequence ?? 0
        do {
            let reader = try log.reader(filter: LogLayout.partsFilter(stream), from: options.start.sequence)
            opened = reader
            while !isStopped() {
                let messages = try reader.next(max: 512, timeout: .milliseconds(200))
                let now = SystemClock.monotonicMilliseconds()
                // Idle advances come while the edge is idle: only parts keep the idle exit away.
                if let idle = options.idleExit, now - lastPartAt >= idle, messages.allSatisfy({ $0.subject == advanceSubject }) {
                    // Idle only when the stream holds nothing after what was read: on a cluster that
                    // just elected a leader, or a busy machine, fetches can come back empty for
                    // seconds while parts wait (a worker then exited having written no row).
                    let last = (try? log.lastSequence()) ?? 0
                    if last <= max(lastSequence, optionsSequence) { break }
                }
                if messages.isEmpty {
                    if drains() {
                        // To the stream's end as it is now (a fetch can come back empty while a
                        // consumer catches up): its last sequence, or five empty fetches in a row.
                        let target = drainTarget ?? ((try? log.lastSequence()) ?? 0)
                        drainTarget = target
                        emptyWhileDraining += 1
                        if lastSequence >= target || emptyWhileDraining >= 5 { break }
                    }
                    continue
                }
                emptyWhileDraining = 0
                for message in messages {
                    lastSequence = message.sequence
                    if message.subject == advanceSubject {
                        guard let time = LogLayout.advanceTime(message.bytes) else {
                            throw RoasError(.input, "stream \(stream) sequence \(message.sequence): not an idle advance")
                        }
                        // After the batches before it, as the edge appended it.
                        if !frames.isEmpty {
                            guard queue.put(.chunk(frames.withUnsafeBytes { parser.consume($0) })) else { throw CancellationError() }
                            frames.removeAll(keepingCapacity: true)
                        }
                        guard queue.put(.advance(time)) else { throw CancellationError() }
                        continue
                    }
                    lastPartAt = now
                    let parts: [LogPart]
                    do {
                        parts = try LogCompression.decode(message.bytes).withUnsafeBytes { try LogPart.parts(decoding: $0) }
                    } catch {
                        throw RoasError(.input, "stream \(stream) sequence \(message.sequence): not a part (\(error))")
                    }
                    for part in parts {
                        try assembler.add(part, sequence: message.sequence, appendingTo: &frames)
                    }
                    // A fetch can bring hundreds of MB of batches: parsed in pieces of about what
                    // `roas run` reads at once, the engine applies one while the next is parsed, and
                    // no chunk holds all of them.
                    if frames.count >= run.chunkSize {
                        guard queue.put(.chunk(frames.withUnsafeBytes { parser.consume($0) })) else { throw CancellationError() }
                        frames.removeAll(keepingCapacity: true)
                    }
                }
                if !frames.isEmpty {
                    guard queue.put(.chunk(frames.withUnsafeBytes { parser.consume($0) })) else { throw CancellationError() }
                    frames.removeAll(keepingCapacity: true)
                }
                // Draining while other edges go on appending: stop at the end as it was.
                if drains(), let target = drainTarget ?? (try? log.lastSequence()) {
                    drainTarget = target
                    if lastSequence >= target { break }
                }
                if let every = options.checkpointEvery, let due = checkpointDue, now >= due {
                    checkpointDue = now + every
                    let ids = assembler.rememberedIDs
                    let position = LogStreamPosition(
                        sequence: assembler.resumeSequence(after: lastSequence), older: ids.older, newer: ids.newer)
                    guard queue.put(.checkpoint(position)) else { throw CancellationError() }
                }
            }
            _ = queue.put(.chunk(parser.finish()))
            _ = queue.put(.end)
        } catch is CancellationError {
            // The taker stopped taking.
        } catch {
            _ = queue.put(.failure(error))
        }
        opened?.close()
    }
}
