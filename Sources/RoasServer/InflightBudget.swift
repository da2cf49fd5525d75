import Synchronization

/// `--max-inflight-bytes`: the bytes of input that webhook requests and TCP connections together
/// hold in memory at once (bodies and frames as read, and what they were parsed into until it is
/// applied). Webhooks take what they need or are answered 503 (`take`); TCP connections wait for it
/// (`wait`), which stops them reading: back-pressure on the sender.
final class InflightBudget: Sendable {
    let limit: Int

    private struct Waiter {
        var id: Int
        var bytes: Int
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var used = 0
        /// First come, first served: a large request is not overtaken forever by small ones.
        var waiters: [Waiter] = []
        var nextID = 0
        /// Waits whose timeout fired before they were queued: they end at once when they are.
        var expired: Set<Int> = []
    }

    private let state = Mutex(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Bytes held now.
    var used: Int { self.state.withLock { $0.used } }

    /// Waits queued now (for tests).
    var waiting: Int { self.state.withLock { $0.waiters.count } }

    /// Takes `bytes` if they fit now.
    func take(_ bytes: Int) -> Bool {
        self.state.withLock { state in
            guard state.used + bytes <= self.limit else { return false }
            state.used += bytes
            return true
        }
    }

    /// Takes `bytes` whether or not they fit: memory already allocated (a chunk just parsed), so that
    /// the next `take` or `wait` sees it.
    func force(_ bytes: Int) {
        self.state.withLock { $0.used += bytes }
    }

    /// Waits until `bytes` fit, after those waiting before; false when `timeout` passes first or the
    /// task is cancelled (nothing taken then).
    func wait(_ bytes: Int, timeout: Duration) async -> Bool {
        let id: Int? = self.state.withLock { state in
            if state.waiters.isEmpty && state.used + bytes <= self.limit {
                state.used += bytes
                return nil
            }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return true }
        let taken = await withTaskGroup(of: Void.self) { group in
            // The timeout, as a child task: cancelled as soon as the wait is over either way.
            group.addTask {
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                self.cancel(id)
            }
            let taken = await self.queue(id, bytes)
            group.cancelAll()
            return taken
        }
        // Every child is done: a timeout that fired after the wait ended leaves nothing behind.
        self.state.withLock { _ = $0.expired.remove(id) }
        return taken
    }

    /// Queues waiter `id` and suspends until it fits (true), or until `cancel(id)` or the task's
    /// cancellation ends its wait (false).
    private func queue(_ id: Int, _ bytes: Int) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let enqueued: Bool = self.state.withLock { state in
                    guard !Task.isCancelled, state.expired.remove(id) == nil else { return false }
                    state.waiters.append(Waiter(id: id, bytes: bytes, continuation: continuation))
                    return true
                }
                guard enqueued else { return continuation.resume(returning: false) }
                // Something may have been released before the waiter was queued.
                self.wake()
            }
        } onCancel: {
            self.cancel(id)
        }
    }

    /// Waits until less than `limit` is held (after those waiting before); false as `wait`.
    func waitForRoom(timeout: Duration) async -> Bool {
        guard await self.wait(1, timeout: timeout) else { return false }
        self.release(1)
        return true
    }

    /// Gives back `bytes` taken before, and lets waiters in that now fit.
    func release(_ bytes: Int) {
        guard bytes > 0 else { return }
        self.state.withLock { $0.used -= bytes }
        self.wake()
    }

    private func wake() {
        let woken: [CheckedContinuation<Bool, Never>] = self.state.withLock { state in
            var woken: [CheckedContinuation<Bool, Never>] = []
            // In order: one that does not fit yet keeps those after it waiting.
            while let first = state.waiters.first, state.used + first.bytes <= self.limit {
                state.used += first.bytes
                woken.append(state.waiters.removeFirst().continuation)
            }
            return woken
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    private func cancel(_ id: Int) {
        let cancelled: CheckedContinuation<Bool, Never>? = self.state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                // Not queued yet (or already woken: `wait` forgets the id once it is over).
                state.expired.insert(id)
                return nil
            }
            return state.waiters.remove(at: index).continuation
        }
        cancelled?.resume(returning: false)
        // The waiter removed may have held back smaller ones after it.
        if cancelled != nil { self.wake() }
    }
}
