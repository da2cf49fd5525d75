import NIOCore
import Synchronization

/// Fans Server-Sent Events out to the subscribers of `/v1/stream`. Each subscriber has a bounded
/// buffer: a client too slow to keep up loses its oldest events rather than growing memory.
final class StreamHub: Sendable {
    private struct State {
        var subscribers: [Int: AsyncStream<ByteBuffer>.Continuation] = [:]
        var nextID = 0
        var isFinished = false
    }

    private let state = Mutex(State())
    /// Events a subscriber may have waiting.
    let bufferedEvents: Int

    init(bufferedEvents: Int = 4096) {
        self.bufferedEvents = bufferedEvents
    }

    /// A new subscriber's stream of encoded events; it ends when the hub finishes.
    func subscribe() -> AsyncStream<ByteBuffer> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: ByteBuffer.self, bufferingPolicy: .bufferingNewest(self.bufferedEvents))
        let id: Int? = self.state.withLock { state in
            guard !state.isFinished else { return nil }
            state.nextID += 1
            state.subscribers[state.nextID] = continuation
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    var subscriberCount: Int { self.state.withLock { $0.subscribers.count } }

    /// Sends one event (`event: NAME`, `data: JSON`) to every subscriber.
    func publish(event name: String, data: [UInt8]) {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        guard !subscribers.isEmpty else { return }
        var buffer = ByteBuffer()
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        for subscriber in subscribers { subscriber.yield(buffer) }
    }

    /// Ends every stream (at shutdown).
    func finish() {
        let subscribers = self.state.withLock { state in
            state.isFinished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }
}
