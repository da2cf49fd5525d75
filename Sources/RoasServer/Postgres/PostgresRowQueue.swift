import RoasCore
import RoasRuntime

/// The state `PostgresRowSink` keeps under its lock: the rows not yet committed, in order, and who
/// waits for room or for delivery.
///
/// Invariants: until the loop ends, `rows[head...]` are exactly the rows enqueued and not committed,
/// so the row at `rows[head + i]` has sequence number `delivered + i + 1`; at most one enqueuer holds the turn
/// (`turnGranted`), and the others wait in `roomWaiters` in arrival order.
struct PostgresRowQueue {
    private var rows: [Row] = []
    private var head = 0
    /// Rows enqueued since start: the sequence number of the last one.
    private(set) var enqueued: UInt64 = 0
    /// Rows committed in PostgreSQL since start: the sequence number of the last one.
    private(set) var delivered: UInt64 = 0
    private var roomWaiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
    private var deliveryWaiters: [(id: UInt64, sequence: UInt64, continuation: CheckedContinuation<Void, any Error>)] =
        []
    /// Callers of `PostgresRowSink.waitForRoom`, resumed together once the queue is below capacity.
    private var spaceWaiters: [(id: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private var nextWaiterID: UInt64 = 0
    /// A room waiter was resumed and has not appended yet: nobody else may append before it.
    private var turnGranted = false

    let capacity: Int
    var lastError: String?
    /// When graceful shutdown was requested, if it was.
    var shutdownRequestedAt: ContinuousClock.Instant?
    /// Set when the delivery loop has ended: nothing will be delivered any more.
    private(set) var isClosed = false
    /// Rows enqueued after the loop ended, dropped.
    private(set) var droppedAfterClose: UInt64 = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { self.rows.count - self.head }

    mutating func makeWaiterID() -> UInt64 {
        self.nextWaiterID += 1
        return self.nextWaiterID
    }

    // MARK: Enqueueing

    /// What an enqueuer does next.
    enum Step {
        /// Everything is in; the sequence number of the last row, and a waiter to resume with the turn.
        case done(UInt64, next: CheckedContinuation<Bool, Never>?)
        /// The continuation was kept: wait, then try again; it resumes with true when given the turn.
        case waiting
    }

    /// Appends as much of `rows` as fits and removes it from `rows`; otherwise keeps `continuation`.
    ///
    /// - Parameters:
    ///   - hasTurn: the caller was resumed from `roomWaiters` (it goes before later arrivals).
    ///   - overflow: append everything regardless of room (the caller was cancelled).
    mutating func enqueue(
        _ rows: inout ArraySlice<Row>,
        id: UInt64,
        hasTurn: Bool,
        overflow: Bool,
        continuation: CheckedContinuation<Bool, Never>
    ) -> Step {
        if hasTurn { self.turnGranted = false }
        if self.isClosed {
            self.enqueued += UInt64(rows.count)
            self.droppedAfterClose += UInt64(rows.count)
            rows = []
            return .done(self.enqueued, next: self.grantTurn())
        }
        if !hasTurn && !overflow && (self.turnGranted || !self.roomWaiters.isEmpty) {
            self.roomWaiters.append((id, continuation))
            return .waiting
        }
        let room = overflow ? rows.count : max(0, self.capacity - self.count)
        let taken = min(room, rows.count)
        self.compactIfNeeded()
        self.rows.append(contentsOf: rows.prefix(taken))
        self.enqueued += UInt64(taken)
        rows = rows.dropFirst(taken)
        if rows.isEmpty { return .done(self.enqueued, next: self.grantTurn()) }
        // Still holding the turn in spirit: wait first in line.
        self.roomWaiters.insert((id, continuation), at: 0)
        return .waiting
    }

    /// Appends all of `rows` at once, room or not (`PostgresRowSink.append`); the sequence number
    /// of the last one.
    mutating func appendAll(_ rows: [Row]) -> UInt64 {
        if self.isClosed {
            self.droppedAfterClose += UInt64(rows.count)
        } else {
            self.compactIfNeeded()
            self.rows.append(contentsOf: rows)
        }
        self.enqueued += UInt64(rows.count)
        return self.enqueued
    }

    /// Keeps `continuation` until the queue is below capacity; false when it must be resumed now.
    mutating func awaitSpace(id: UInt64, continuation: CheckedContinuation<Void, Never>) -> Bool {
        guard !self.isClosed, self.count >= self.capacity else { return false }
        self.spaceWaiters.append((id, continuation))
        return true
    }

    mutating func removeSpaceWaiter(_ id: UInt64) -> CheckedContinuation<Void, Never>? {
        guard let index = self.spaceWaiters.firstIndex(where: { $0.id == id }) else { return nil }
        return self.spaceWaiters.remove(at: index).continuation
    }

    /// Every space waiter, when the queue is below capacity (or closed).
    private mutating func takeSpaceWaiters() -> [CheckedContinuation<Void, Never>] {
        guard !self.spaceWaiters.isEmpty, self.isClosed || self.count < self.capacity else { return [] }
        defer { self.spaceWaiters = [] }
        return self.spaceWaiters.map(\.continuation)
    }

    /// Forgets a cancelled room waiter, returned when it was still waiting (the caller resumes it
    /// with false: no turn).
    mutating func removeRoomWaiter(_ id: UInt64) -> CheckedContinuation<Bool, Never>? {
        guard let index = self.roomWaiters.firstIndex(where: { $0.id == id }) else { return nil }
        return self.roomWaiters.remove(at: index).continuation
    }

    /// The next room waiter, when there is room and nobody holds the turn.
    private mutating func grantTurn() -> CheckedContinuation<Bool, Never>? {
        guard !self.turnGranted, !self.roomWaiters.isEmpty, self.isClosed || self.count < self.capacity else {
            return nil
        }
        self.turnGranted = true
        return self.roomWaiters.removeFirst().continuation
    }

    private mutating func compactIfNeeded() {
        // Amortised O(1): the dead prefix is dropped once it is as long as the live part.
        if self.head > 1024 && self.head >= self.count {
            self.rows.removeFirst(self.head)
            self.head = 0
        }
    }

    // MARK: Delivering

    /// A copy of the first `limit` rows not yet committed (they stay queued until `commit`).
    func peek(_ limit: Int) -> [Row] {
        // A copy, not a slice: a slice would share the buffer, and every append during the write
        // would then copy the whole queue.
        Array(self.rows[self.head..<(self.head + min(limit, self.count))])
    }

    /// What to resume after a change, outside the lock.
    struct Wakeups {
        var room: CheckedContinuation<Bool, Never>?
        var delivered: [CheckedContinuation<Void, any Error>] = []
        var failed: [CheckedContinuation<Void, any Error>] = []
        var everyRoomWaiter: [CheckedContinuation<Bool, Never>] = []
        var space: [CheckedContinuation<Void, Never>] = []

        func resume(failure: @autoclosure () -> any Error) {
            self.room?.resume(returning: true)
            for continuation in self.space { continuation.resume() }
            for continuation in self.everyRoomWaiter { continuation.resume(returning: false) }
            for continuation in self.delivered { continuation.resume() }
            if !self.failed.isEmpty {
                let error = failure()
                for continuation in self.failed { continuation.resume(throwing: error) }
            }
        }
    }

    /// Removes the first `count` rows, now committed in PostgreSQL.
    mutating func commit(_ count: Int) -> Wakeups {
        precondition(count <= self.count, "committed more rows than were queued")
        self.head += count
        self.delivered += UInt64(count)
        if self.head == self.rows.count {
            self.rows.removeAll(keepingCapacity: true)
            self.head = 0
        }
        self.lastError = nil
        var wakeups = Wakeups(room: self.grantTurn(), space: self.takeSpaceWaiters())
        let delivered = self.delivered
        self.deliveryWaiters.removeAll { waiter in
            guard waiter.sequence <= delivered else { return false }
            wakeups.delivered.append(waiter.continuation)
            return true
        }
        return wakeups
    }

    // MARK: Waiting for delivery

    /// Keeps `continuation` until `sequence` is delivered; false when it must be resumed now
    /// (delivered already, or never will be: see `isClosed`).
    mutating func awaitDelivery(
        of sequence: UInt64,
        id: UInt64,
        continuation: CheckedContinuation<Void, any Error>
    ) -> Bool {
        guard sequence > self.delivered, !self.isClosed else { return false }
        self.deliveryWaiters.append((id, sequence, continuation))
        return true
    }

    mutating func removeDeliveryWaiter(_ id: UInt64) -> CheckedContinuation<Void, any Error>? {
        guard let index = self.deliveryWaiters.firstIndex(where: { $0.id == id }) else { return nil }
        return self.deliveryWaiters.remove(at: index).continuation
    }

    /// The loop has ended: enqueuers stop waiting (later rows are dropped) and delivery waiters fail.
    mutating func close() -> Wakeups {
        self.isClosed = true
        self.turnGranted = false
        var wakeups = Wakeups()
        wakeups.everyRoomWaiter = self.roomWaiters.map(\.continuation)
        self.roomWaiters = []
        wakeups.space = self.takeSpaceWaiters()
        wakeups.failed = self.deliveryWaiters.map(\.continuation)
        self.deliveryWaiters = []
        return wakeups
    }
}
