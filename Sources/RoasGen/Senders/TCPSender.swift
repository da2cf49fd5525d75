import NIOCore
import NIOHTTP1
import NIOPosix
import RoasCore
import RoasRuntime

/// `roas gen --tcp`: writes the stream to a `roas serve --listen-tcp` connection. Writes wait for
/// the socket (NIO's writability), so a server that reads slowly slows the generator down. What the
/// server writes back (acknowledgements, with `--data-dir`) is read as it comes and counted.
public enum TCPSender {
    /// The answer lines of a `roas serve --data-dir` (schemas/ack.schema.json).
    public struct Answers: Sendable, Equatable {
        public var acks = 0
        /// Acks of resent batches, also counted in `acks`.
        public var duplicates = 0
        public var nacks = 0

        public init() {}

        /// Counts the complete lines at the start of `bytes`; returns how many bytes they took.
        mutating func count(_ bytes: [UInt8]) -> Int {
            var start = 0
            while let end = bytes[start...].firstIndex(of: 0x0A) {
                let line = bytes[start..<end]
                if line.starts(with: Array("{\"ack\"".utf8)) {
                    self.acks += 1
                    if line.firstRange(of: Array("\"duplicate\":true".utf8)) != nil { self.duplicates += 1 }
                } else if line.starts(with: Array("{\"nack\"".utf8)) {
                    self.nacks += 1
                }
                start = end + 1
            }
            return start
        }
    }

    /// Connects, lets `body` write, then half-closes and waits for the server to close; returns the
    /// answer lines the server wrote back meanwhile.
    @discardableResult
    public static func withConnection(
        host: String, port: Int, _ body: (_ write: ([UInt8]) async throws -> Void) async throws -> Void
    ) async throws -> Answers {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Half-closure on: `outbound.finish()` then shuts the socket's output down, so the
                    // server sees the end of the stream at once rather than after its idle timeout.
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true))
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await withThrowingTaskGroup(of: Answers.self) { group in
                // Read while writing: a server that answers must never wait for the sender to read.
                group.addTask {
                    var answers = Answers()
                    var pending: [UInt8] = []
                    for try await buffer in inbound {
                        pending.append(contentsOf: buffer.readableBytesView)
                        pending.removeFirst(answers.count(pending))
                    }
                    return answers
                }
                try await body { bytes in try await outbound.write(ByteBuffer(bytes: bytes)) }
                outbound.finish()
                // The server applies what it read and closes: then everything sent has been taken.
                return try await group.next() ?? Answers()
            }
        }
    }
}
