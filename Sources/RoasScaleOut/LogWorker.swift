import Foundation
import RoasCore
import RoasLog
import RoasRuntime
import Synchronization

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

    public init(settings: Settings, rows: ByteSink, deadLetters: ByteSink?) {
        self.settings = settings
        self.rows = rows
        self.deadLetters = deadLetters
    }

    /// Whether member `member` of `members` writes `row`: the member of its creator's log partition.
    public static func owns(_ row: Row, member: Int, members: Int, partitions: Int) -> Bool {
        guard let creator = row.creator else { return member == 0 }
        var key = creator
        let partition = key.withUTF8 { LogRoute.partition(ofKey: UnsafeRawBufferPointer($0), partitions: partitions) }
        return partition % members == member
    }

    /// What the reading thread hands the engine's thread.
    private enum ReaderItem: Sendable {
        case chunk(ParsedChunk)
        case end
        case failure(any Error)
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

        // SIGTERM and SIGINT finish the worker as --idle-exit does: every window closes and its rows
        // are written before it exits (the default action would lose what the output still holds).
        let stopped = StopFlag()
        let signals = [SIGTERM, SIGINT].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stopped.stop() }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }

        let queue = BlockingQueue<ReaderItem>(capacity: 4)
        let thread = Thread {
            var parser = ChunkParser(replaying: settings.run, configuration: configuration, accepted: AcceptedBatches())
            var assembler = LogPartAssembler()
            var lastPartAt = SystemClock.monotonicMilliseconds()
            var opened: (any LogReader)?
            do {
                let reader = try log.reader(filter: LogLayout.partsFilter(settings.stream), from: 1)
                opened = reader
                while !stopped.isStopped {
                    let messages = try reader.next(max: 512, timeout: .milliseconds(200))
                    let now = SystemClock.monotonicMilliseconds()
                    if messages.isEmpty {
                        if let idle = settings.idleExit, now - lastPartAt >= idle { break }
                        continue
                    }
                    lastPartAt = now
                    var frames: [UInt8] = []
                    for message in messages {
                        let part: LogPart
                        do {
                            part = try message.bytes.withUnsafeBytes { try LogPart(decoding: $0) }
                        } catch {
                            throw RoasError(.input, "stream \(settings.stream) sequence \(message.sequence): not a part (\(error))")
                        }
                        if let frame = try assembler.add(part) { frames += frame }
                    }
                    if !frames.isEmpty {
                        guard queue.put(.chunk(frames.withUnsafeBytes { parser.consume($0) })) else { throw CancellationError() }
                    }
                }
                _ = queue.put(.chunk(parser.finish()))
                _ = queue.put(.end)
            } catch is CancellationError {
                // The engine's thread stopped taking chunks.
            } catch {
                _ = queue.put(.failure(error))
            }
            opened?.close()
        }
        thread.name = "roas-log-reader"
        thread.start()
        defer { queue.cancel() }

        let member = settings.member
        let members = settings.members
        let partitions = configuration.partitions
        var sinks: [any EngineOutputSink] = [
            RowFileOutput(
                rows: self.rows, writesUpdates: settings.run.emitEvery != nil,
                owns: { LogWorker.owns($0, member: member, members: members, partitions: partitions) })
        ]
        if member == 0, let deadLetters = self.deadLetters {
            sinks.append(DeadLetterFileOutput(deadLetters: deadLetters, flushesEachStep: false))
        }
        let output = OutputThread(sinks: sinks)
        defer { output.close() }
        var host = EngineHost(configuration: configuration, updatesEvery: settings.run.emitEvery, outputs: [output])
        reading: while true {
            switch queue.take() {
            case .chunk(let chunk):
                try host.apply(chunk)
                try host.tick(now: SystemClock.monotonicMilliseconds())
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

/// Set by a signal handler, read by the reading thread between fetches.
private final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func stop() { self.flag.store(true, ordering: .relaxed) }
    var isStopped: Bool { self.flag.load(ordering: .relaxed) }
}
