import Logging
import NIOCore
import NIOPosix
import RoasCore
import ServiceLifecycle

/// `--listen-tcp`: the framed stream of `roas run` (bare events and signed batch frames) on many
/// connections at once, each with its own frame decoder, so a bad frame on one never touches another.
///
/// Back-pressure: a connection parses what it read, then waits for the engine to apply it before it
/// reads more; NIO stops reading from the socket while its small inbound buffer is full, so a slow
/// engine slows the senders down instead of growing memory.
struct TCPIngest: Sendable {
    let address: ListenAddress
    let settings: ServeSettings
    let ingestor: Ingestor
    let logger: Logger

    /// Binds the listening socket; the returned channel accepts connections once `serve` runs.
    func bind() async throws -> NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never> {
        let idleTimeout = TimeAmount.milliseconds(self.settings.connectionIdleTimeout)
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            // A sender that half-closes (sends EOF, then waits for our close) still gets everything read.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 65536, maximum: 262_144))
            .bind(host: self.address.host, port: self.address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(CloseOnIdleRead())
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

    /// Reads one connection to its end (or the idle timeout, or shutdown), applying each read as it
    /// comes. With `--data-dir`, each batch frame is answered once its fate is known: `{"ack":ID}`
    /// when it is durable and applied, `{"nack":ID,"reason":...}` when it was rejected or could not
    /// be made durable; after `not_durable` nacks the connection is closed, unread.
    private func handle(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let peer = connection.channel.remoteAddress?.description ?? "unknown"
        let run = self.settings.run
        let acknowledges = self.settings.durability != nil
        var parser = ChunkParser(
            configuration: run.configuration, secrets: run.secrets, tolerance: run.tolerance,
            maximumLineLength: run.maximumLineLength, maximumBatchBytes: run.maximumBatchBytes,
            accepted: self.ingestor.accepted, capacity: 1 << 16, journals: acknowledges, now: run.now)
        do {
            try await connection.executeThenClose { inbound, outbound in
                let replies = acknowledges ? outbound : nil
                do {
                    for try await buffer in inbound.cancelOnGracefulShutdown() {
                        let chunk = buffer.withUnsafeReadableBytes { parser.consume($0) }
                        try await self.apply(chunk, replies: replies)
                    }
                } catch let error as ChannelError where error == .inputClosed || error == .ioOnClosedChannel {
                    // The peer went away, or the idle timeout closed the connection: what it sent counts.
                }
                try await self.apply(parser.finish(), replies: replies)
            }
        } catch {
            self.logger.info("TCP connection from \(peer) ended: \(error)")
        }
    }

    private func apply(_ chunk: ParsedChunk, replies: NIOAsyncChannelOutboundWriter<ByteBuffer>?) async throws {
        guard !chunk.isEmpty || chunk.linesRead > 0 || chunk.bytesRead > 0 else { return }
        self.ingestor.gauges.queuedChunks.add(1, ordering: .relaxed)
        defer { self.ingestor.gauges.queuedChunks.subtract(1, ordering: .relaxed) }
        var failure: String?
        do {
            _ = try await self.ingestor.apply(chunk)
        } catch ServeError.notDurable(let reason) where replies != nil {
            failure = reason
        }
        if let replies, !chunk.batchOutcomes.isEmpty {
            try await replies.write(ByteBuffer(bytes: Self.acknowledgements(chunk.batchOutcomes, failure: failure)))
        }
        // Nothing after a batch that was not made durable is applied from this connection: a sender
        // resending from its first unacknowledged batch then keeps its order.
        if let failure { throw ServeError.notDurable(failure) }
    }

    /// One line per batch (schemas/ack.schema.json): `ack` for an applied batch or a resend of one
    /// (`duplicate`), `nack` with the reason otherwise; `failure` turns the applied ones into
    /// `not_durable` nacks.
    static func acknowledgements(_ outcomes: [BatchOutcome], failure: String?) -> [UInt8] {
        var text: [UInt8] = []
        for outcome in outcomes {
            let id = outcome.id.map { JSONText.quoted($0) } ?? "null"
            switch outcome.rejection {
            case nil:
                if let failure {
                    JSONText.append("{\"nack\":\(id),\"reason\":\"not_durable\",\"detail\":\(JSONText.quoted(failure))}\n", to: &text)
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

/// Closes a connection that sent nothing for the idle timeout (`IdleStateHandler`'s read event).
final class CloseOnIdleRead: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
