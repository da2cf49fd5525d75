import Foundation
import RoasTestSupport
import Testing

/// The trait that keeps the blocking tests of this target off Swift's cooperative pool.
@Suite("the .ownThread trait")
struct OwnThreadTests {
    /// Sixteen cases, each with a scope of its own. (This test once failed 1 run in 8 to 1 in 3 under
    /// load: it compared the thread's name, which Foundation then sometimes reads as the pool's.)
    @Test("a synchronous test with .ownThread runs on a thread of its own, in its own task", .ownThread, arguments: 0..<16)
    func runsOnItsOwnThread(run: Int) {
        #expect(ThreadExecutor.isOwnThread, "\(Thread.current)")
        #expect(Test.current?.name.hasPrefix("runsOnItsOwnThread") == true)
    }

    @Test("without it a synchronous test runs on the cooperative pool")
    func runsOnThePool() {
        #expect(!ThreadExecutor.isOwnThread)
    }

    @Test("an async test with .ownThread stays on that thread across suspensions", .ownThread)
    func staysAcrossSuspensions() async throws {
        let before = Self.thread()
        #expect(ThreadExecutor.isOwnThread)
        try await Task.sleep(for: .milliseconds(10))
        // Once on its thread, a test resumes there after a suspension.
        #expect(Self.thread() == before)
        #expect(ThreadExecutor.isOwnThread)
    }

    static func thread() -> UInt { UInt(pthread_self()) }
}
