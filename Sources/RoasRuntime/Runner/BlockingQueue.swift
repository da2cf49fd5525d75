import DequeModule
import Foundation

/// A bounded queue between two threads: the producer blocks when it is full, so memory stays
/// bounded when the consumer is the slower side. The reading thread of `roas run` hands parsed
/// chunks to the engine's thread through one, and recovery hands the log's parsed records to the
/// engine through another.
public final class BlockingQueue<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: Deque<Item> = []
    private let capacity: Int
    private var isCancelled = false

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds an item, waiting while the queue is full; false when the queue was cancelled.
    public func put(_ item: Item) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.count >= self.capacity && !self.isCancelled { self.condition.wait() }
        guard !self.isCancelled else { return false }
        self.items.append(item)
        self.condition.broadcast()
        return true
    }

    /// Takes the oldest item, waiting while there is none.
    public func take() -> Item {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.isEmpty { self.condition.wait() }
        self.condition.broadcast()
        return self.items.removeFirst()
    }

    /// Wakes and stops the producer; nothing more is queued.
    public func cancel() {
        self.condition.lock()
        self.isCancelled = true
        self.items.removeAll()
        self.condition.broadcast()
        self.condition.unlock()
    }
}
