import NIOCore
import NIOEmbedded
import Testing

@testable import RoasServer

/// `--idle-timeout` on one connection, in virtual time: only time spent waiting for the peer counts.
@Suite("PeerIdleTimeout")
struct PeerIdleTimeoutTests {
    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(PeerIdleTimeout(timeout: .seconds(1)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    /// Asks for a read and lets the peer stay silent for the timeout: the connection must close.
    static func expectClosedBySilence(_ channel: EmbeddedChannel, sourceLocation: SourceLocation = #_sourceLocation) {
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive, sourceLocation: sourceLocation)
    }

    @Test("a read asked for and not answered within the timeout closes the connection")
    func silentPeerIsClosed() throws {
        let channel = try Self.channel()
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test("data restarts the clock at the next read")
    func dataRestartsTheClock() throws {
        let channel = try Self.channel()
        for _ in 0..<5 {
            channel.read()
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(900))
            try channel.writeInbound(ByteBuffer(string: "x"))
        }
        #expect(channel.isActive)
        Self.expectClosedBySilence(channel)
    }

    @Test("no clock while no read is asked for (back-pressure), however long")
    func backPressureIsNotIdle() throws {
        let channel = try Self.channel()
        channel.read()
        try channel.writeInbound(ByteBuffer(string: "x"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        #expect(channel.isActive)
        Self.expectClosedBySilence(channel)
    }

    @Test("after the peer's end of input the connection waits for its answers, not the timeout")
    func endOfInputStopsTheClock() throws {
        let channel = try Self.channel()
        channel.read()
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        #expect(channel.isActive)
    }
}
