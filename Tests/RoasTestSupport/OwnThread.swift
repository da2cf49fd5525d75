import Foundation
import Synchronization
import Testing

/// A trait that runs each test on a thread of its own instead of Swift's cooperative pool: for
/// synchronous tests that block for long (waiting on child processes, sleeping between kills).
///
/// The pool has one thread per core, two on this machine. Two such tests running at once used to
/// block both threads for over a minute, and with them every async test and in-process server of
/// the run: deliveries timed out and idle connections were closed. The test still runs in its own
/// task (a task executor preference), so its `#expect`s are recorded against it.
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    /// A scope for each test case; none for a suite as a whole.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test,
        testCase: Test.Case?,
        performing function: @Sendable () async throws -> Void
    ) async throws {
        let executor = ThreadExecutor()
        defer { executor.stop() }
        try await withTaskExecutorPreference(executor) {
            // The preference applies when the task is next enqueued: until it suspends, it may go on
            // running on the pool thread that got here (1 run in 6 did). A yield enqueues it there.
            await Task.yield()
            try await function()
        }
    }
}

extension Trait where Self == OwnThreadTrait {
    /// Runs each test on a thread of its own (see `OwnThreadTrait`).
    public static var ownThread: Self { OwnThreadTrait() }
}

/// A task executor with one thread that runs its jobs in order, until `stop()`.
public final class ThreadExecutor: TaskExecutor {
    /// The name of its thread (Linux keeps 15 characters of a thread's name).
    public static let threadName = "roas-own-thread"

    private let state = Mutex<(jobs: [UnownedJob], stopped: Bool)>(([], false))
    /// Signalled once per job and once by `stop()`.
    private let signals = DispatchSemaphore(value: 0)

    public init() {
        Thread { [self] in
            // Named from within: a new thread otherwise keeps its creator's name (a pool thread's).
            Thread.current.name = Self.threadName
            self.loop()
        }.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.state.withLock { $0.jobs.append(job) }
        self.signals.signal()
    }

    /// Ends the thread once the jobs enqueued so far have run; nothing may be enqueued after.
    public func stop() {
        self.state.withLock { $0.stopped = true }
        self.signals.signal()
    }

    private func loop() {
        while true {
            self.signals.wait()
            let next: UnownedJob? = self.state.withLock { state in
                state.jobs.isEmpty ? nil : state.jobs.removeFirst()
            }
            guard let next else {
                // The signal was stop's: leave when no job is left.
                if self.state.withLock({ $0.stopped && $0.jobs.isEmpty }) { return }
                continue
            }
            next.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
