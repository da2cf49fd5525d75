import Dispatch
import Foundation
import RoasCore

/// `roas run`'s output sinks on a thread of their own: the engine's thread hands each step's rows
/// and dead letters over and goes on, and this thread writes them as NDJSON, in the same order.
///
/// Writing is a fifth of the engine thread's time on a stream with many rows per window (a
/// row per creator per hour, say), while the reading thread has time to spare; on a machine with
/// two cores the operating system runs this thread beside both.
///
/// An error writing (a closed pipe, a full disk) is kept and thrown to the engine's thread at its
/// next `write` or `flush`; later output is dropped, as the run is failing.
public final class OutputThread: EngineOutputSink {
    private enum Item: Sendable {
        case output(EngineOutput, replayedFinalRows: Int)
        /// Flush every sink, then signal.
        case flush(DispatchSemaphore)
        case end
    }

    /// The first error a sink threw; read by both threads.
    private final class Failure: @unchecked Sendable {
        private let lock = NSLock()
        private var error: (any Error)?

        func record(_ error: any Error) {
            self.lock.withLock { if self.error == nil { self.error = error } }
        }

        func check() throws {
            if let error = self.lock.withLock({ self.error }) { throw error }
        }
    }

    /// The sinks, used by the output thread alone once it has started.
    private struct Sinks: @unchecked Sendable {
        let sinks: [any EngineOutputSink]
    }

    private let queue: BlockingQueue<Item>
    private let failure = Failure()
    private let finished = DispatchSemaphore(value: 0)
    private var isClosed = false

    /// Starts the thread. `capacity`: steps queued before the engine's thread waits for this one.
    public init(sinks: [any EngineOutputSink], capacity: Int = 16) {
        let queue = BlockingQueue<Item>(capacity: capacity)
        let failure = self.failure
        let finished = self.finished
        let owned = Sinks(sinks: sinks)
        self.queue = queue
        let thread = Thread {
            while true {
                switch queue.take() {
                case .output(let output, let replayed):
                    do {
                        try failure.check()
                        for sink in owned.sinks { try sink.write(output, replayedFinalRows: replayed) }
                    } catch {
                        failure.record(error)
                    }
                case .flush(let done):
                    do {
                        try failure.check()
                        for sink in owned.sinks { try sink.flush() }
                    } catch {
                        failure.record(error)
                    }
                    done.signal()
                case .end:
                    finished.signal()
                    return
                }
            }
        }
        thread.name = "roas-output"
        thread.start()
    }

    deinit { self.close() }

    public func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
        try self.failure.check()
        _ = self.queue.put(.output(output, replayedFinalRows: replayedFinalRows))
    }

    /// Waits until everything handed over is written and flushed.
    public func flush() throws {
        let done = DispatchSemaphore(value: 0)
        if self.queue.put(.flush(done)) { done.wait() }
        try self.failure.check()
    }

    /// Stops the thread once it has written what it was handed (not flushed: call `flush` first).
    public func close() {
        guard !self.isClosed else { return }
        self.isClosed = true
        if self.queue.put(.end) { self.finished.wait() }
    }
}
