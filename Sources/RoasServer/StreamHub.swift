import Logging
import NIOCore
import Synchronization

/// Fans Server-Sent Events out to the subscribers of `/v1/stream`, and drops those that fall behind
/// (a client that stopped reading): at each live tick (`dropLagging`), a subscriber that still has
/// more than `bufferedBytes` (`--stream-buffer`) unwritten of what was published before the previous
/// tick is dropped: its stream ends, its connection is closed, and a warning and
/// `roas_stream_subscribers_dropped_total` say so. A burst of any size (the rows of one tick, whose
/// bytes all subscribers share) reaches a client that keeps up; one that does not holds at most
/// `bufferedBytes` plus what two ticks publish.
final class StreamHub: Sendable {
    /// One subscriber: its events, and how much of them was written out.
    final class Subscription: Sendable {
        let events: AsyncStream<ByteBuffer>
        fileprivate let continuation: AsyncStream<ByteBuffer>.Continuation
        /// Bytes published to it, and written out, since it subscribed (each event counts
        /// `overhead` more than its bytes).
        fileprivate let published = Atomic<Int>(0)
        fileprivate let writtenOut = Atomic<Int>(0)
        /// `published` at the previous tick.
        fileprivate let publishedAtTick = Atomic<Int>(0)
        private let dropped = Mutex<(isDropped: Bool, action: (@Sendable () -> Void)?)>((false, nil))

        fileprivate init() {
            (self.events, self.continuation) = AsyncStream.makeStream(of: ByteBuffer.self, bufferingPolicy: .unbounded)
        }

        /// The writer wrote `event` out.
        func written(_ event: ByteBuffer) {
            self.writtenOut.add(event.readableBytes + StreamHub.overhead, ordering: .relaxed)
        }

        /// Bytes published and not yet written out.
        var pending: Int { self.published.load(ordering: .relaxed) - self.writtenOut.load(ordering: .relaxed) }

        var isDropped: Bool { self.dropped.withLock { $0.isDropped } }

        /// What to do when it is dropped (close its connection); at once if it already was.
        func onDrop(_ action: @escaping @Sendable () -> Void) {
            let now = self.dropped.withLock { state -> Bool in
                if state.isDropped { return true }
                state.action = action
                return false
            }
            if now { action() }
        }

        /// Marks it dropped; true the first time.
        fileprivate func drop() -> Bool {
            let (first, action) = self.dropped.withLock { state -> (Bool, (@Sendable () -> Void)?) in
                guard !state.isDropped else { return (false, nil) }
                state.isDropped = true
                defer { state.action = nil }
                return (true, state.action)
            }
            guard first else { return false }
            self.continuation.finish()
            action?()
            return true
        }
    }

    private struct State {
        var subscribers: [Int: Subscription] = [:]
        var nextID = 0
        var isFinished = false
    }

    private let state = Mutex(State())
    /// `--stream-buffer`: bytes of events a subscriber may have waiting.
    let bufferedBytes: Int
    /// What an event costs beyond its bytes (the stream's buffer entry).
    static let overhead = 64
    private let metrics: ServeMetrics?
    private let logger = Logger(label: "roas")

    init(bufferedBytes: Int = 1 << 20, metrics: ServeMetrics? = nil) {
        self.bufferedBytes = bufferedBytes
        self.metrics = metrics
    }

    /// A new subscriber; its stream ends when the hub finishes or it is dropped.
    func subscribe() -> Subscription {
        let subscription = Subscription()
        let id: Int? = self.state.withLock { state in
            guard !state.isFinished else { return nil }
            state.nextID += 1
            state.subscribers[state.nextID] = subscription
            return state.nextID
        }
        guard let id else {
            subscription.continuation.finish()
            return subscription
        }
        subscription.continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return subscription
    }

    var subscriberCount: Int { self.state.withLock { $0.subscribers.count } }

    /// Sends one event (`event: NAME`, `data: JSON`) to every subscriber.
    func publish(event name: String, data: [UInt8]) {
        self.publish([(name, data)])
    }

    /// Sends events produced together (the rows of one tick or one chunk) to every subscriber.
    func publish(_ events: [(name: String, data: [UInt8])]) {
        let subscribers = self.state.withLock { Array($0.subscribers.values) }
        guard !subscribers.isEmpty else { return }
        for (name, data) in events {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(name.utf8.count + data.count + 16)
            buffer.writeString("event: \(name)\ndata: ")
            buffer.writeBytes(data)
            buffer.writeString("\n\n")
            let cost = buffer.readableBytes + Self.overhead
            for subscriber in subscribers {
                subscriber.published.add(cost, ordering: .relaxed)
                subscriber.continuation.yield(buffer)
            }
        }
    }

    /// At each live tick: drops the subscribers with more than `bufferedBytes` unwritten of what
    /// was published before the previous tick.
    func dropLagging() {
        let subscribers = self.state.withLock { Array($0.subscribers) }
        for (id, subscriber) in subscribers {
            let published = subscriber.published.load(ordering: .relaxed)
            let old = subscriber.publishedAtTick.exchange(published, ordering: .relaxed)
            let behind = old - subscriber.writtenOut.load(ordering: .relaxed)
            if behind > self.bufferedBytes { self.drop(subscriber, id: id, pending: subscriber.pending) }
        }
    }

    private func drop(_ subscriber: Subscription, id: Int, pending: Int) {
        _ = self.state.withLock { $0.subscribers.removeValue(forKey: id) }
        guard subscriber.drop() else { return }
        self.metrics?.streamSubscribersDropped.increment()
        self.logger.warning(
            "dropped a /v1/stream subscriber that fell behind: \(pending) bytes of events unwritten, more than --stream-buffer \(self.bufferedBytes) of them published over a tick ago"
        )
    }

    /// Ends every stream (at shutdown).
    func finish() {
        let subscribers = self.state.withLock { state in
            state.isFinished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }
}
