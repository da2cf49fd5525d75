import Foundation
import RoasTestSupport
import Testing

/// The trait that keeps the blocking tests of this target off Swift's cooperative pool.
@Suite("the .ownThread trait")
struct OwnThreadTests {
    @Test("a synchronous test with .ownThread runs on a thread of its own, in its own task", .ownThread)
    func runsOnItsOwnThread() {
        #expect(Thread.current.name?.hasPrefix(ThreadExecutor.threadName) == true, "\(Thread.current)")
        #expect(Test.current?.name.hasPrefix("runsOnItsOwnThread") == true)
    }

    @Test("without it a synchronous test runs on the cooperative pool")
    func runsOnThePool() {
        #expect(Thread.current.name?.hasPrefix(ThreadExecutor.threadName) != true)
    }

    @Test("an async test with .ownThread stays on that thread across suspensions", .ownThread)
    func staysAcrossSuspensions() async throws {
        let before = Self.threadName()
        try await Task.sleep(for: .milliseconds(10))
        #expect(before?.hasPrefix(ThreadExecutor.threadName) == true)
        #expect(Self.threadName() == before)
    }

    /// `Thread.current` is unavailable in async code; a synchronous function may read it.
    static func threadName() -> String? { Thread.current.name }
}
