import Logging
import NIOCore
import NIOPosix
import RoasCore
import RoasRuntime
import ServiceLifecycle
import Synchronization

/// `--listen-tcp`: the framed stream of `roas run` (bare events and signed batch frames) on many
/// connections at once, each with its own frame decoder, so a bad frame on one never touches another.
///
/// Back-pressure: a connection parses what it read while the chunks before it are applied, up to
/// `chunksInFlight` of them, then waits; NIO stops reading from the socket while its small inbound
/// buffer is full, so a slow engine slows the senders down instead of growing memory.
struct TCPIngest: Sendable {
    let address: ListenAddress
    let settings: ServeSettings
    let ingestor: Ingestor
    let logger: Logger

    /// Binds the listening socket; the returned channel accepts connections once `serve` runs.
    func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        let idleTimeout = TimeAmount.milliseconds(self.settings.connectionIdleTimeout)
        var bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if let bytes = self.settings.tcpReceiveBuffer {
            // On the listening socket, so that accepted ones start with it (and the window agreed fits).
            bootstrap = bootstrap.serverChannelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(bytes))
        }
        return
            try await bootstrap
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            // A sender that half-closes (sends EOF, then waits for our close) still gets everything read.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 65536, maximum: 262_144))
            .bind(host: self.address.host, port: self.address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // --idle-timeout 0: never.
                    if idleTimeout > .zero {
                        try channel.pipeline.syncOperations.addHandler(PeerIdleTimeout(timeout: idleTimeout))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(backPressureStrategy: .init(lowWatermark: 2, highWatermark: 8)))
                }
            }
    }

    /// Accepts connections until graceful shutdown, then waits for every connection to drain.
    func serve(_ listener: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await listener.executeThenClose { connections in
                for try await connection in connections.cancelOnGracefulShutdown() {
                    let open = self.ingestor.gauges.connections.add(1, ordering: .relaxed).newValue
                    if open > self.settings.maximumConnections {
                        self.ingestor.gauges.connections.subtract(1, ordering: .relaxed)
                        self.logger.warning("refused a TCP connection: --max-connections \(self.settings.maximumConnections) reached")
                        group.addTask { await Self.refuse(connection) }
                        continue
                    }
                    group.addTask {
                        await self.handle(connection)
                        self.ingestor.gauges.connections.subtract(1, ordering: .relaxed)
                    }
                }
            }
        }
    }

    private static func refuse(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        try? await connection.executeThenClose { _, outbound in
            try await outbound.write(ByteBuffer(string: "{\"error\":\"too many connections (--max-connections)\"}\n"))
        }
    }

    /// Chunks a connection may have read and not yet seen applied: parsing the next ones overlaps
    /// with logging and applying the ones before.
    static let chunksInFlight = 4
    /// The same with `--nats`, where a chunk waits for the stream's quorum: the chunks that wait
    /// together go to each partition as one message, and fewer, larger messages cost the brokers
    /// less. A chunk is one read of the socket (at most 256 KiB), so this is at most 16 MiB read by one
    /// connection, and `--max-inflight-bytes` bounds what all connections hold, parsed, together
    /// (Benchmarks/README.md, "Larger messages").
    static let chunksInFlightToTheLog = 64

    /// A chunk read and parsed, with the bytes of `--max-inflight-bytes` it holds until applied.
    private struct Parsed: Sendable {
        var chunk: ParsedChunk
        var held: Int
    }

    /// A chunk a connection handed to the ingestor, or the error that stopped it.
    private struct Submitted: Sendable {
        var chunk: ParsedChunk
        var held: Int
        var submission: Result<Ingestor.Submission, any Error>
    }

    /// What the stages of one connection share.
    private final class ConnectionState: Sendable {
        /// Chunks read and not yet answered (they count in `queuedChunks`).
        let outstanding = Atomic<Int>(0)
        /// Set once a chunk was not taken (not made durable): nothing after it is applied.
        let failed = Atomic<Bool>(false)
        /// Bytes of `--max-inflight-bytes` the connection holds: its decoder's buffer while it holds
        /// part of a line or frame, and its chunks (as parsed) until they are applied.
        let held = Atomic<Int>(0)
    }

    /// Gives back bytes of `--max-inflight-bytes` the connection held.
    private func release(_ bytes: Int, _ state: ConnectionState) {
        guard bytes > 0 else { return }
        state.held.subtract(bytes, ordering: .relaxed)
        self.ingestor.inflight.release(bytes)
    }

    /// Before parsing what was read: waits while webhooks and connections hold `--max-inflight-bytes`
    /// or more (back-pressure: NIO stops reading the socket once its few buffers are full). False when the connection should stop
    /// instead: it waited `--idle-timeout` while holding part of a frame and nothing of its own
    /// that could be applied, so it can only hold the budget for others to wait on (several such
    /// connections would wait on each other for ever). Graceful shutdown ends the wait.
    private func waitForRoom(_ state: ConnectionState, holdsPartialFrame: () -> Bool) async -> Bool {
        let budget = self.ingestor.inflight
        guard budget.used >= budget.limit else { return true }
        let patience = self.settings.connectionIdleTimeout > 0 ? self.settings.connectionIdleTimeout : 3_600_000
        while true {
            let room = await cancelWhenGracefulShutdown { await budget.waitForRoom(timeout: .milliseconds(patience)) }
            if room || Task.isShuttingDownGracefully || Task.isCancelled { return true }
            if self.settings.connectionIdleTimeout > 0 && holdsPartialFrame() && state.outstanding.load(ordering: .relaxed) == 0 {
                return false
            }
        }
    }

    /// Reads one connection to its end (or the idle timeout, or shutdown) in three stages, each its
    /// own task, so that they overlap: this task reads and parses; the next submits each chunk to the
    /// ingestor in read order (applied at once, or appended to the write-ahead log, chained so that
    /// after a failed write nothing later from this connection gets in); the last waits for each to
    /// be applied and, with `--data-dir`, answers its batch frames in order: `{"ack":ID}` when durable
    /// and applied, `{"nack":ID,"reason":...}` when rejected. At most `chunksInFlight` chunks are
    /// between the first stage and the last, so a slow engine or log slows the sender down (NIO
    /// stops reading while its small inbound buffer is full).
    ///
    /// When a chunk is not made durable, reading stops, every chunk after it is released (its batch
    /// ids forgotten) or seen to fail, and only then are its `not_durable` nacks written and the
    /// connection closed: a resend can never meet an id of a copy still in flight here.
    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "unknown"
        let run = self.settings.run
        let acknowledges = self.settings.journals
        var parser = ChunkParser(settings: run, accepted: self.ingestor.accepted, capacity: 1 << 16, journals: acknowledges)
        let state = ConnectionState()
        defer {
            // Chunks a failure left unanswered.
            self.ingestor.gauges.queuedChunks.subtract(state.outstanding.load(ordering: .relaxed), ordering: .relaxed)
            self.release(state.held.load(ordering: .relaxed), state)
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                let replies = acknowledges ? outbound : nil
                let (parsed, parsedInput) = AsyncStream.makeStream(of: Parsed.self)
                let (submitted, submittedInput) = AsyncStream.makeStream(of: Submitted.self)
                let (answered, answeredInput) = AsyncStream.makeStream(of: Void.self)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        defer { submittedInput.finish() }
                        var previous: Ingestor.Submission?
                        for await item in parsed {
                            let chunk = item.chunk
                            let submission: Result<Ingestor.Submission, any Error>
                            if state.failed.load(ordering: .relaxed) {
                                self.ingestor.accepted.remove(acceptedIn: chunk)
                                submission = .failure(ServeError.notDurable("an earlier batch on this connection was not taken"))
                            } else {
                                do {
                                    // Chained: refused if the log failed since the previous chunk went in.
                                    let taken = try await self.ingestor.submit(chunk, after: previous)
                                    if taken.epoch != nil { previous = taken }
                                    submission = .success(taken)
                                } catch {
                                    submission = .failure(error)
                                }
                            }
                            submittedInput.yield(Submitted(chunk: chunk, held: item.held, submission: submission))
                        }
                    }
                    group.addTask {
                        defer { answeredInput.finish() }
                        var failure: (any Error)?
                        var failedAnswers: [UInt8] = []
                        for await item in submitted {
                            if failure == nil {
                                let (answers, error) = await self.answers(item, acknowledges: acknowledges)
                                if let error {
                                    failure = error
                                    failedAnswers = answers
                                    state.failed.store(true, ordering: .relaxed)
                                    // Stop reading; what was read drains through the stages first.
                                    connection.channel.close(mode: .input, promise: nil)
                                } else if let replies, !answers.isEmpty {
                                    try await replies.write(ByteBuffer(bytes: answers))
                                }
                            } else {
                                // After a failure: in the log and condemned with it, or refused. Waited
                                // for, so its batch ids are free before the sender hears of the failure.
                                _ = try? await self.ingestor.completion(of: item.submission.get())
                            }
                            state.outstanding.subtract(1, ordering: .relaxed)
                            self.ingestor.gauges.queuedChunks.subtract(1, ordering: .relaxed)
                            self.release(item.held, state)
                            answeredInput.yield()
                        }
                        if let failure {
                            if let replies, !failedAnswers.isEmpty {
                                try? await replies.write(ByteBuffer(bytes: failedAnswers))
                            }
                            throw failure
                        }
                    }
                    var answered = answered.makeAsyncIterator()
                    var inFlight = 0
                    let chunksInFlight = self.settings.edge == nil ? Self.chunksInFlight : Self.chunksInFlightToTheLog
                    // Bytes of the budget held for the decoder's buffer (part of a line or frame).
                    var decoderHeld = 0
                    /// Counts what the decoder and a chunk just parsed hold, and hands the chunk on
                    /// with its part, given back once it is applied.
                    func hand(_ chunk: ParsedChunk) async -> Bool {
                        let nowHeld = parser.heldBytes
                        if nowHeld > decoderHeld {
                            self.ingestor.inflight.force(nowHeld - decoderHeld)
                            state.held.add(nowHeld - decoderHeld, ordering: .relaxed)
                        } else {
                            self.release(decoderHeld - nowHeld, state)
                        }
                        decoderHeld = nowHeld
                        let held = chunk.retainedBytes
                        self.ingestor.inflight.force(held)
                        state.held.add(held, ordering: .relaxed)
                        guard !chunk.isEmpty || chunk.linesRead > 0 || chunk.bytesRead > 0 else {
                            self.release(held, state)
                            return true
                        }
                        if inFlight == chunksInFlight {
                            guard await answered.next() != nil else {
                                self.ingestor.accepted.remove(acceptedIn: chunk)
                                self.release(held, state)
                                return false
                            }
                            inFlight -= 1
                        }
                        inFlight += 1
                        state.outstanding.add(1, ordering: .relaxed)
                        self.ingestor.gauges.queuedChunks.add(1, ordering: .relaxed)
                        parsedInput.yield(Parsed(chunk: chunk, held: held))
                        return true
                    }
                    var stopped = false
                    do {
                        for try await buffer in inbound.cancelOnGracefulShutdown() {
                            // Parsed only while the budget has room: between this check and counting
                            // what the decoder and the chunk then hold there is no suspension, so
                            // reads parsed at once overshoot the budget by at most one chunk per
                            // thread (a read of blank lines parses into about a hundred times its size).
                            if !(await self.waitForRoom(state, holdsPartialFrame: { parser.heldBytes > 0 })) {
                                self.logger.warning(
                                    "closing a TCP connection from \(peer): it held \(parser.bufferedBytes) bytes of an incomplete frame while --max-inflight-bytes \(self.settings.maximumInflightBytes) was spent for --idle-timeout"
                                )
                                connection.channel.close(mode: .input, promise: nil)
                                break
                            }
                            let chunk = buffer.withUnsafeReadableBytes { parser.consume($0) }
                            if !(await hand(chunk)) {
                                stopped = true
                                break
                            }
                        }
                    } catch let error as ChannelError where error == .inputClosed || error == .ioOnClosedChannel {
                        // The peer went away, the idle timeout closed the connection, or a later stage
                        // stopped reading after a failure: what was read counts.
                    }
                    if !stopped && !state.failed.load(ordering: .relaxed) { _ = await hand(parser.finish()) }
                    parsedInput.finish()
                    try await group.waitForAll()
                }
            }
        } catch {
            self.logger.info("TCP connection from \(peer) ended: \(error)")
        }
    }

    /// Waits until a submitted chunk is applied; its answer lines (with `--data-dir`), and the
    /// error when it was not taken (`not_durable` nacks then) or cannot be applied (no answers).
    private func answers(_ item: Submitted, acknowledges: Bool) async -> (lines: [UInt8], error: (any Error)?) {
        var failure: String?
        var refused: [String: String] = [:]
        do {
            refused = try await self.ingestor.completion(of: try item.submission.get()).refused
        } catch ServeError.notDurable(let reason) where acknowledges {
            failure = reason
        } catch {
            return ([], error)
        }
        let lines = acknowledges ? Self.acknowledgements(item.chunk.batchOutcomes, failure: failure, refused: refused) : []
        return (lines, failure.map { ServeError.notDurable($0) })
    }

    /// One line per batch (schemas/ack.schema.json): `ack` for an applied batch or a resend of one
    /// (`duplicate`), `nack` with the reason otherwise; `failure` turns the applied ones into
    /// `not_durable` nacks; a batch in `refused` (`--nats`) is a `too_large` nack.
    static func acknowledgements(_ outcomes: [BatchOutcome], failure: String?, refused: [String: String] = [:]) -> [UInt8] {
        var text: [UInt8] = []
        for outcome in outcomes {
            let id = outcome.id.map { JSONText.quoted($0) } ?? "null"
            switch outcome.rejection {
            case nil:
                if let failure {
                    JSONText.append("{\"nack\":\(id),\"reason\":\"not_durable\",\"detail\":\(JSONText.quoted(failure))}\n", to: &text)
                } else if let tooLarge = outcome.id.flatMap({ refused[$0] }) {
                    JSONText.append("{\"nack\":\(id),\"reason\":\"too_large\",\"detail\":\(JSONText.quoted(tooLarge))}\n", to: &text)
                } else {
                    JSONText.append("{\"ack\":\(id)}\n", to: &text)
                }
            case .some(let rejection) where rejection.reason == .replayedBatch:
                JSONText.append("{\"ack\":\(id),\"duplicate\":true}\n", to: &text)
            case .some(let rejection):
                JSONText.append(
                    "{\"nack\":\(id),\"reason\":\"\(rejection.reason.rawValue)\",\"detail\":\(JSONText.quoted(rejection.detail))}\n",
                    to: &text)
            }
        }
        return text
    }
}

/// `--idle-timeout`: closes a connection whose peer sent nothing for `timeout` while roas was
/// waiting to read from it (a half-sent frame is then dead-lettered).
///
/// The clock runs only while a read is asked for. Time in which roas itself holds reading back
/// (back-pressure: the engine, the rows' reader or PostgreSQL is behind) does not count, unlike
/// with NIO's `IdleStateHandler`, which closed such connections with the sender's bytes unread.
/// Nor does the time after the peer's end of input, while it waits for the last answers.
/// It sits before `NIOAsyncChannel`'s handler, which holds `read()` back under back-pressure.
///
/// Reads come and go thousands of times a second, so they only note the time; one scheduled
/// check at a time compares it with the event loop's clock and schedules the next.
final class PeerIdleTimeout: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    /// When the read now waiting for the peer was asked for; nil while none waits.
    private var waitingSince: NIODeadline?
    private var check: Scheduled<Void>?
    private var inputClosed = false

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func read(context: ChannelHandlerContext) {
        if self.waitingSince == nil && !self.inputClosed {
            let now = context.eventLoop.now
            self.waitingSince = now
            if self.check == nil { self.scheduleCheck(context: context, at: now + self.timeout) }
        }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.waitingSince = nil
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .some(.inputClosed) = event as? ChannelEvent {
            self.inputClosed = true
            self.waitingSince = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.check?.cancel()
        self.check = nil
    }

    private func scheduleCheck(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.check = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.checkIdle(context: context)
        }
    }

    /// Closes the connection once a read has waited `timeout`; else checks again when it would have.
    private func checkIdle(context: ChannelHandlerContext) {
        self.check = nil
        guard let since = self.waitingSince else { return }  // the next read schedules a check
        let due = since + self.timeout
        if context.eventLoop.now >= due {
            context.close(promise: nil)
        } else {
            self.scheduleCheck(context: context, at: due)
        }
    }
}
