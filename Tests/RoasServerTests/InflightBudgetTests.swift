import Synchronization
import Testing

@testable import RoasServer

/// `--max-inflight-bytes`: waits end when the bytes fit (in arrival order), at their timeout, or
/// when their task is cancelled, and whatever ends them leaves the budget's count right.
@Suite("Inflight budget")
struct InflightBudgetTests {
    final class Order: Sendable {
        let items = Mutex<[Int]>([])
        func append(_ item: Int) { self.items.withLock { $0.append(item) } }
        var all: [Int] { self.items.withLock { $0 } }
    }

    /// Polls until `count` waits are queued (each `wait` queues itself on its own task).
    func waitUntil(_ budget: InflightBudget, queues count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while budget.waiting < count {
            #expect(ContinuousClock.now < deadline, "\(budget.waiting) of \(count) waits queued")
            if ContinuousClock.now >= deadline { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func aWaitEndsWhenItFitsAndWaitersAreServedInArrivalOrder() async throws {
        let budget = InflightBudget(limit: 100)
        #expect(budget.take(90))
        let order = Order()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                #expect(await budget.wait(50, timeout: .seconds(60)))
                order.append(50)
            }
            try await self.waitUntil(budget, queues: 1)
            group.addTask {
                // Small enough to fit beside the 90, but it came second: it waits its turn.
                #expect(await budget.wait(10, timeout: .seconds(60)))
                order.append(10)
            }
            try await self.waitUntil(budget, queues: 2)
            // 70 held: the 10 would fit, the 50 before it would not, so neither goes in.
            budget.release(20)
            try await Task.sleep(for: .milliseconds(50))
            #expect(order.all.isEmpty)
            #expect(budget.waiting == 2)
            #expect(budget.used == 70)
            // Both fit now; they are let in together, so the order they finish in is not theirs.
            budget.release(70)
            try await group.waitForAll()
        }
        #expect(order.all.sorted() == [10, 50])
        #expect(budget.waiting == 0)
        #expect(budget.used == 60)
    }

    @Test func aWaitThatNeverFitsEndsAtItsTimeoutWithNothingTaken() async {
        let budget = InflightBudget(limit: 100)
        #expect(budget.take(100))
        let started = ContinuousClock.now
        #expect(!(await budget.wait(1, timeout: .milliseconds(200))))
        #expect(ContinuousClock.now - started >= .milliseconds(200))
        #expect(budget.used == 100)
        // A timeout of zero fires at once, possibly before the wait is queued: it still ends.
        for _ in 0..<50 { #expect(!(await budget.wait(1, timeout: .zero))) }
        budget.release(100)
        #expect(await budget.wait(100, timeout: .seconds(5)))
        #expect(budget.used == 100)
    }

    @Test func aCancelledWaitEndsAndLetsTheWaiterBehindItIn() async throws {
        let budget = InflightBudget(limit: 100)
        #expect(budget.take(60))
        let blocked = Task { await budget.wait(80, timeout: .seconds(60)) }
        try await self.waitUntil(budget, queues: 1)
        let behind = Task { await budget.wait(30, timeout: .seconds(60)) }
        try await self.waitUntil(budget, queues: 2)
        blocked.cancel()
        #expect(!(await blocked.value))
        // 30 fit beside the 60 held: once the first waiter is gone, the second goes in.
        #expect(await behind.value)
        #expect(budget.used == 90)
    }
}
