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
            // The preference applies when the task is next enqueued: until then it goes on running on
            // the pool thread that got here. A continuation resumed from elsewhere re-enqueues the
            // task by its preference, unless it was resumed before the task suspended: so hop until
            // on the thread (`Task.yield()` enqueues on the executor the task runs on, the pool's).
            var hops = 0
            while !executor.isCurrentThread {
                hops += 1
                precondition(hops <= 10_000, "the task never reached its own thread")
                await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().async { resumed.resume() }
                }
            }
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
    /// The name of its thread, for debuggers (Linux keeps 15 characters of a thread's name). Not an
    /// identity: under load, Foundation's `Thread.current.name` sometimes still reads the creating
    /// pool thread's name there; `isOwnThread` is the check.
    public static let threadName = "roas-own-thread"
    /// The threads of all executors that run.
    private static let threads = Mutex<Set<UInt>>([])

    private let state = Mutex<(jobs: [UnownedJob], stopped: Bool)>(([], false))
    /// The executor's thread, once it runs.
    private let thread = Mutex<pthread_t?>(nil)
    /// Signalled once per job and once by `stop()`.
    private let signals = DispatchSemaphore(value: 0)

    public init() {
        Thread { [self] in
            // Named from within: a new thread otherwise keeps its creator's name (a pool thread's).
            Thread.current.name = Self.threadName
            self.thread.withLock { $0 = pthread_self() }
            Self.threads.withLock { _ = $0.insert(UInt(pthread_self())) }
            self.loop()
            Self.threads.withLock { _ = $0.remove(UInt(pthread_self())) }
        }.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.state.withLock { $0.jobs.append(job) }
        self.signals.signal()
    }

    /// Whether the caller runs on the thread of some `ThreadExecutor`.
    public static var isOwnThread: Bool {
        Self.threads.withLock { $0.contains(UInt(pthread_self())) }
    }

    /// Whether the caller runs on this executor's thread.
    public var isCurrentThread: Bool {
        self.thread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
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
