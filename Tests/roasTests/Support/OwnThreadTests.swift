import Foundation
import RoasTestSupport
import Testing

/// The trait that keeps the blocking tests of this target off Swift's cooperative pool.
@Suite("the .ownThread trait")
struct OwnThreadTests {
    @Test("a synchronous test with .ownThread runs on a thread of its own, in its own task", .ownThread)
    func runsOnItsOwnThread() {
        // Known: beside other work (both cores busy), 1 run in 8 to 1 in 3 starts the test body on a
        // dispatch pool thread ("...root.default-qos") although the trait's own scope was on its
        // thread; Swift Testing's call of the body hops there. The blocking tests then run on the
        // pool, as before the trait; recorded as an intermittent known issue until understood.
        withKnownIssue("the test body sometimes starts on a pool thread under load", isIntermittent: true) {
            #expect(Thread.current.name?.hasPrefix(ThreadExecutor.threadName) == true, "\(Thread.current)")
        }
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
        withKnownIssue("the test body sometimes starts on a pool thread under load", isIntermittent: true) {
            #expect(before?.hasPrefix(ThreadExecutor.threadName) == true, "\(before ?? "nil")")
        }
        // Once on its thread, a test resumes there after a suspension.
        if before?.hasPrefix(ThreadExecutor.threadName) == true { #expect(Self.threadName() == before) }
    }

    /// `Thread.current` is unavailable in async code; a synchronous function may read it.
    static func threadName() -> String? { Thread.current.name }
}
