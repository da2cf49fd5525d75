import DequeModule
import Foundation
import RoasCore

/// A bounded queue of parsed chunks between the reading thread and the engine's thread: the reader
/// blocks when it is full, so memory stays bounded when the engine is the slower side.
final class ChunkQueue: @unchecked Sendable {
    enum Item: Sendable {
        case chunk(ParsedChunk)
        case end
        case failure(RoasError)
    }

    private let condition = NSCondition()
    private var items: Deque<Item> = []
    private let capacity: Int
    private var isCancelled = false

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Adds an item, waiting while the queue is full; false when the queue was cancelled.
    func put(_ item: Item) -> Bool {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.count >= self.capacity && !self.isCancelled { self.condition.wait() }
        guard !self.isCancelled else { return false }
        self.items.append(item)
        self.condition.broadcast()
        return true
    }

    func take() -> Item {
        self.condition.lock()
        defer { self.condition.unlock() }
        while self.items.isEmpty { self.condition.wait() }
        self.condition.broadcast()
        return self.items.removeFirst()
    }

    /// Wakes and stops the producer; nothing more is queued.
    func cancel() {
        self.condition.lock()
        self.isCancelled = true
        self.items.removeAll()
        self.condition.broadcast()
        self.condition.unlock()
    }
}
