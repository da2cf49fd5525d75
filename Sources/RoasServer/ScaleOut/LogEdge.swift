import DequeModule
import Foundation
import RoasCore
import RoasLog
import RoasScaleOut
import Synchronization

/// `roas serve --nats`: the edge of a scaled-out roas. It verifies and parses input exactly as
/// `roas serve` does, then, instead of applying it to an engine of its own, splits each accepted
/// batch into one part per partition (`LogPart`) and appends the parts to a replicated log, those
/// of batches appended together as one message per partition (`LogPart.messages`, with its
/// deduplication id), each compressed as `--log-compression` says. A sender is acknowledged (202,
/// TCP ack) only when the log's quorum holds every part of its batches; otherwise it gets 503 /
/// `not_durable` and may resend, which the log's deduplication (and the workers' assembler) makes
/// harmless.
///
/// Appends happen on a thread of the edge's own, in the order the ingestor submitted them, several
/// waiting submissions at a time (one `append` call, like the write-ahead log's group commit).
final class LogEdge: Sendable {
    /// What `--nats`, `--stream`, `--partitions` and `--replicas` asked for.
    struct Settings: Sendable {
        var urls: [String]
        var stream: String
        var partitions: Int
        var replicas: Int
        /// How each part is written (`--log-compression`).
        var compression: LogCompression
        /// The largest message the log takes, headers included (NATS's `max_payload`).
        var maximumRecordBytes = 1 << 20
    }

    let settings: Settings
    let currencies: CurrencyTable
    private let log: any ReplicatedLog
    private let queue = Queue()
    /// Signalled when the append thread has appended what was queued before `close()`.
    private let drained = DispatchSemaphore(value: 0)

    /// Connects, makes the stream if it does not exist, and records the engine options with it (or
    /// checks them against those it holds). Blocks: call off Swift's cooperative pool.
    /// - Throws: `RoasError(.options)` when the stream holds other options or partitions;
    ///   `RoasError(.output)` when the log cannot be reached.
    static func open(_ settings: Settings, configuration: EngineConfiguration) throws -> LogEdge {
        let log: JetStreamLog
        do {
            log = try JetStreamLog(
                urls: settings.urls, stream: settings.stream, subjects: LogLayout.subjects(settings.stream),
                replicas: settings.replicas)
        } catch {
            throw RoasError(.output, "cannot open stream \(settings.stream) on \(settings.urls.joined(separator: ",")): \(error)")
        }
        try LogLayout.recordOptions(of: configuration, on: log, stream: settings.stream)
        var settings = settings
        settings.maximumRecordBytes = log.maximumRecordBytes
        return LogEdge(settings: settings, currencies: configuration.currencies, log: log)
    }

    private init(settings: Settings, currencies: CurrencyTable, log: any ReplicatedLog) {
        self.settings = settings
        self.currencies = currencies
        self.log = log
        let thread = Thread { [queue, log, drained] in
            Self.appendLoop(queue: queue, log: log, settings: settings)
            drained.signal()
        }
        thread.name = "roas-log-edge"
        thread.start()
    }

    /// Splits the accepted batches of `chunk` and queues their parts for the log, without waiting;
    /// the ticket says when they are held (`Ticket.wait`). `refused`: the batches left out because
    /// the log can never take them (a line larger than a message), with why.
    func submit(_ chunk: ParsedChunk) -> (ticket: Ticket, refused: [String: String]) {
        let parser = EventParser(currencies: self.currencies)
        let (split, bareLines) = LogPart.split(chunk: chunk, partitions: self.settings.partitions, parser: parser)
        let ticket = Ticket()
        if bareLines > 0 {
            ticket.resolve(.failure(RoasError(.input, "\(bareLines) unsigned lines: --nats takes signed batches only")))
            return (ticket, [:])
        }
        // A partition's share of a batch larger than a message goes as pieces (one partition can
        // hold all of a batch: a bulk of one creator's spend, say).
        var parts = split.flatMap { $0.cut(maximumBytes: Self.messageBytes) }
        let refused = self.tooLarge(parts)
        if !refused.isEmpty { parts.removeAll { refused[$0.header.id] != nil } }
        if parts.isEmpty {
            ticket.resolve(.success(()))
            return (ticket, refused)
        }
        guard self.queue.put(Job(content: .parts(parts), ticket: ticket)) else {
            ticket.resolve(.failure(RoasError(.output, "the log edge is closed")))
            return (ticket, refused)
        }
        return (ticket, refused)
    }

    /// The batches the log cannot take, by id, with why: those with a single line (a piece alone)
    /// that does not fit in one message of it even after compression.
    private func tooLarge(_ parts: [LogPart]) -> [String: String] {
        // Room for the message's headers (its id, up to about 300 bytes) and the protocol's own.
        let limit = self.settings.maximumRecordBytes - 1024
        var refused: [String: String] = [:]
        for part in parts where part.body.count + part.take.count * 9 > Self.messageBytes && refused[part.header.id] == nil {
            let encoded = part.encoded
            guard encoded.count > limit else { continue }
            let size = self.settings.compression.encode(encoded).count
            guard size > limit else { continue }
            refused[part.header.id] =
                "line \(part.take.first ?? 0) of batch \(part.header.id) takes \(size) bytes on the log (partition "
                + "\(part.partition)\(self.settings.compression == .zstd ? ", compressed" : "")), more than the "
                + "\(self.settings.maximumRecordBytes)-byte messages the NATS servers take (max_payload): send a "
                + "shorter line, or raise max_payload"
        }
        return refused
    }

    /// Queues an idle advance (`--idle-close`) after what was submitted before it: the workers move
    /// their watermark to `time` where it lands among the parts. The ticket says when it is held.
    func submitAdvance(to time: Int64) -> Ticket {
        let ticket = Ticket()
        let entry = LogEntry(
            subject: LogLayout.advanceSubject(self.settings.stream), id: "advance/\(time)", bytes: LogLayout.advanceRecord(time))
        if !self.queue.put(Job(content: .advance(entry), ticket: ticket)) {
            ticket.resolve(.failure(RoasError(.output, "the log edge is closed")))
        }
        return ticket
    }

    /// Stops the append thread once what is queued is appended.
    func close() { self.queue.close() }

    /// Waits (blocking) until the append thread, closed, has appended what was queued.
    func waitDrained() {
        self.drained.wait()
        self.drained.signal()
    }

    /// One submission waiting for the log.
    struct Job: Sendable {
        enum Content: Sendable {
            /// The parts of one or more batches, in batch order, each batch's partitions in order.
            case parts([LogPart])
            /// An idle advance: appended after every part submitted before it.
            case advance(LogEntry)
        }
        var content: Content
        var ticket: Ticket

        /// About the bytes it puts on the log, before compression.
        var bytes: Int {
            switch self.content {
            case .parts(let parts): parts.reduce(0) { $0 + $1.body.count + 200 }
            case .advance(let entry): entry.bytes.count
            }
        }
    }

    /// The most bytes of parts one message holds, before compression (a single larger part goes
    /// alone): half of NATS's default `max_payload` (1 MB), so that messages fit it with
    /// `--log-compression none` too.
    static let messageBytes = 512 << 10

    /// Appends queued jobs, as many at once as are waiting (up to about 8 MiB), until closed: the
    /// parts of all their batches that go to one partition as one message (`LogPart.messages`, up
    /// to `messageBytes`), so the log stores and sends one message per partition for many batches
    /// rather than one per batch; idle advances stay where they were among them.
    private static func appendLoop(queue: Queue, log: any ReplicatedLog, settings: Settings) {
        while let jobs = queue.takeAll(maximumBytes: 8 << 20) {
            var entries: [LogEntry] = []
            var parts: [LogPart] = []
            func flush() {
                LogPart.forEachMessage(of: parts, partitions: settings.partitions, maximumBytes: LogEdge.messageBytes) {
                    partition, id, bytes in
                    entries.append(
                        LogEntry(
                            subject: LogLayout.partSubject(settings.stream, partition), id: id,
                            bytes: settings.compression.encode(bytes)))
                }
                parts.removeAll()
            }
            for job in jobs {
                switch job.content {
                case .parts(let more): parts += more
                case .advance(let entry):
                    flush()
                    entries.append(entry)
                }
            }
            flush()
            let outcome: Result<Void, any Error>
            do {
                _ = try log.append(entries)
                outcome = .success(())
            } catch {
                outcome = .failure(error)
            }
            for job in jobs { job.ticket.resolve(outcome) }
        }
    }

    /// When a submission's parts are all held by the log, or why they are not.
    final class Ticket: Sendable {
        private enum State {
            case waiting(CheckedContinuation<Void, any Error>?)
            case done(Result<Void, any Error>)
        }
        private let state = Mutex(State.waiting(nil))

        func resolve(_ outcome: Result<Void, any Error>) {
            let waiter: CheckedContinuation<Void, any Error>? = self.state.withLock { state in
                guard case .waiting(let waiter) = state else { return nil }
                state = .done(outcome)
                return waiter
            }
            waiter?.resume(with: outcome)
        }

        /// Waits for the outcome; one waiter at most.
        func wait() async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = self.state.withLock { state in
                    switch state {
                    case .done(let outcome): return outcome
                    case .waiting:
                        state = .waiting(continuation)
                        return nil
                    }
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        }
    }

    /// The jobs between the ingestor and the append thread.
    final class Queue: @unchecked Sendable {
        private let condition = NSCondition()
        private var jobs: Deque<Job> = []
        private var isClosed = false

        func put(_ job: Job) -> Bool {
            self.condition.lock()
            defer { self.condition.unlock() }
            guard !self.isClosed else { return false }
            self.jobs.append(job)
            self.condition.signal()
            return true
        }

        /// The waiting jobs (at least one, about `maximumBytes` at most), waiting while there are
        /// none; nil once closed and empty.
        func takeAll(maximumBytes: Int) -> [Job]? {
            self.condition.lock()
            defer { self.condition.unlock() }
            while self.jobs.isEmpty && !self.isClosed { self.condition.wait() }
            guard !self.jobs.isEmpty else { return nil }
            var taken: [Job] = []
            var bytes = 0
            while let job = self.jobs.first, taken.isEmpty || bytes < maximumBytes {
                bytes += job.bytes
                taken.append(self.jobs.removeFirst())
            }
            return taken
        }

        func close() {
            self.condition.lock()
            self.isClosed = true
            self.condition.broadcast()
            self.condition.unlock()
        }
    }
}

extension ServeSettings {
    /// `--nats URLS --stream NAME`: opens the log this server appends its input to (blocking;
    /// call it before the server starts). The partitions are the engine's `--partitions`.
    public mutating func openLog(urls: [String], stream: String, replicas: Int, compression: LogCompression = .zstd) throws {
        let settings = LogEdge.Settings(
            urls: urls, stream: stream, partitions: self.run.configuration.partitions, replicas: replicas,
            compression: compression)
        self.edge = try LogEdge.open(settings, configuration: self.run.configuration)
    }

    /// `--follow`: reads the stream back into this server's engine, as `roas worker` does (call
    /// after `openLog`): the dashboard, `/v1/roas`, `/v1/stream`, `--output` and the summary then show
    /// the rows of the cluster.
    public mutating func followLog(urls: [String], stream: String) throws {
        let log: JetStreamLog
        do {
            log = try JetStreamLog(urls: urls, stream: stream, subjects: LogLayout.subjects(stream), replicas: nil)
        } catch {
            throw RoasError(.output, "cannot open stream \(stream) on \(urls.joined(separator: ",")) to follow it: \(error)")
        }
        self.follower = LogFollower(log: log, stream: stream, run: self.run, options: LogFollower.Options())
    }

    /// Parsers keep each chunk's journal: for the write-ahead log, or for the parts of `--nats`.
    var journals: Bool { self.durability != nil || self.edge != nil }
}
