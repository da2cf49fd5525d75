import RoasCore

/// The `--data-dir` side of `roas serve`'s ingest as one state machine: inputs appended to the
/// write-ahead log wait in `queue` until the log is done with them, then apply (or are refused) in
/// log order; the machine also knows what was applied since the last checkpoint, when the next one
/// is due, whether one is being written, and what shutdown still waits for.
///
/// Like `DurableApplyQueue`, which it holds, it does no I/O and holds no engine: its mutating
/// methods return what the caller must do (apply, refuse, write a checkpoint, resume a waiter,
/// close the log), and the tests drive it synchronously. The ingestor actor carries the steps out.
///
/// `Waiter` is what a caller of `completion(of:)` waits on; `Pause` what shutdown waits on (both
/// continuations in the server, plain values in the tests).
struct DurableIngest<Input, Output, Waiter, Pause> {
    /// Inputs appended to the log, in log order.
    private(set) var queue = DurableApplyQueue<Input, Output, Waiter>()
    /// The last record appended, the last applied to the engine, and the last a checkpoint covers.
    private(set) var lastLSN: UInt64
    private(set) var appliedLSN: UInt64
    private(set) var checkpointLSN: UInt64
    /// Batch ids applied, with their timestamps and digests, for the next checkpoint.
    private(set) var appliedBatches: [String: AcceptedBatches.Entry]
    /// Monotonic milliseconds when the last checkpoint started.
    private var lastCheckpointAt: Int64
    /// The LSN of the checkpoint being written, if one is.
    private(set) var runningCheckpoint: UInt64?
    /// The longest apply while the running checkpoint is written.
    private var longestApplyDuringCheckpoint = ApplyTime()
    /// The longest apply since the last checkpoint ended, while none was written.
    private var longestApplyBetweenCheckpoints = ApplyTime()
    /// `longestApplyBetweenCheckpoints` when the running checkpoint started.
    private var longestApplyBefore = ApplyTime()
    /// Shutdown waits for the queue to empty, or for a running checkpoint to end.
    private var emptyWaiters: [Pause] = []
    private var checkpointWaiters: [Pause] = []
    /// Shutdown has tried its last checkpoint.
    private var lastCheckpointTried = false

    /// What a checkpoint must hold besides the engine: the caller adds the engine's snapshot and
    /// the outputs' positions, writes it, and reports with `checkpointEnded`.
    struct CheckpointPlan: Equatable {
        var lsn: UInt64
        var batches: [String: AcceptedBatches.Entry]
    }

    /// What a checkpoint that ended came to, for the log and the metrics.
    struct CheckpointReport: Equatable {
        var lsn: UInt64
        var milliseconds: Int64
        var longestApplyMeanwhile: ApplyTime
        /// The longest apply between the end of the checkpoint before and the start of this one.
        var longestApplyBefore: ApplyTime
    }

    /// How long an apply took on the clock, and on the engine thread's CPU: far less CPU than clock
    /// time means the thread waited (for a core, or for memory the system had to give it).
    struct ApplyTime: Equatable {
        var milliseconds: Int64 = 0
        var cpuMilliseconds: Int64 = 0

        /// The longer of the two by clock time.
        func longer(_ other: ApplyTime) -> ApplyTime { other.milliseconds > self.milliseconds ? other : self }
    }

    /// Shutdown's next step (`finishStep()`).
    enum FinishStep: Equatable {
        /// Inputs in the queue still wait for the log: wait (`waitUntilEmpty`), then ask again.
        case waitForInputs
        /// A checkpoint is being written: wait (`waitForCheckpoint`), then ask again.
        case waitForCheckpoint
        /// Write this last checkpoint (after flushing the outputs), report it, then ask again.
        case writeCheckpoint(CheckpointPlan)
        /// Everything applied is checkpointed (or the last try failed): close the log.
        case closeLog
    }

    /// - Parameters:
    ///   - lsn: the last record in the log after recovery (and so the last applied).
    ///   - checkpointLSN: the LSN of the checkpoint recovery started from (0: none).
    ///   - batches: the batch ids the checkpoint and the replay applied.
    ///   - now: monotonic milliseconds; the first checkpoint is due `every` after it.
    init(lsn: UInt64, checkpointLSN: UInt64, batches: [String: AcceptedBatches.Entry], now: Int64) {
        self.lastLSN = lsn
        self.appliedLSN = lsn
        self.checkpointLSN = checkpointLSN
        self.appliedBatches = batches
        self.lastCheckpointAt = now
    }

    // MARK: Input

    /// An input the log took at `lsn` (0: nothing to log); returns the id to wait on.
    mutating func appended(_ input: Input, lsn: UInt64) -> Int {
        if lsn > 0 { self.lastLSN = lsn }
        return self.queue.enqueue(input, lsn: lsn)
    }

    /// The log is done with a group of records (`WriteAheadLog.ResolvedGroup`).
    mutating func logged(lsns first: UInt64, through last: UInt64, failure: String?) {
        self.queue.logged(lsns: first, through: last, failure: failure)
    }

    /// The next input to apply or refuse, in log order (see `DurableApplyQueue.Step`).
    mutating func next() -> DurableApplyQueue<Input, Output, Waiter>.Step? {
        let step = self.queue.next()
        if case .apply(_, let lsn, _, _) = step, lsn > 0 { self.appliedLSN = lsn }
        return step
    }

    /// An applied input accepted these batches: the next checkpoint remembers them.
    mutating func accepted(_ batches: some Sequence<(id: String, entry: AcceptedBatches.Entry)>) {
        for batch in batches { self.appliedBatches[batch.id] = batch.entry }
    }

    /// How long an apply took: the longest while a checkpoint is written and the longest between
    /// two go in the checkpoint's report.
    mutating func applyTook(_ time: ApplyTime) {
        if self.runningCheckpoint != nil {
            self.longestApplyDuringCheckpoint = self.longestApplyDuringCheckpoint.longer(time)
        } else {
            self.longestApplyBetweenCheckpoints = self.longestApplyBetweenCheckpoints.longer(time)
        }
    }

    /// The outcome of the step for `id` (see `DurableApplyQueue.finished`); also returns the
    /// shutdown waiters to resume once the queue is empty.
    mutating func finished(_ id: Int, _ outcome: Result<Output, any Error>) -> (waiter: Waiter?, emptied: [Pause]) {
        let waiter = self.queue.finished(id, outcome)
        guard self.queue.isEmpty, !self.emptyWaiters.isEmpty else { return (waiter, []) }
        defer { self.emptyWaiters.removeAll() }
        return (waiter, self.emptyWaiters)
    }

    mutating func claim(_ id: Int, waiter: Waiter) -> Result<Output, any Error>? {
        self.queue.claim(id, waiter: waiter)
    }

    mutating func take(_ id: Int) -> Result<Output, any Error>? {
        self.queue.take(id)
    }

    // MARK: Checkpoints

    /// Starts a checkpoint when `every` milliseconds have passed since the last one started, none
    /// is running, and something was applied since the last one; nil otherwise.
    ///
    /// - Parameter horizon: batches older than this (event-time milliseconds) can no longer be
    ///   replayed within `--tolerance` and are forgotten (nil: keep every batch).
    mutating func checkpointIfDue(now: Int64, every: Int64, horizon: Int64?) -> CheckpointPlan? {
        guard self.runningCheckpoint == nil, now - self.lastCheckpointAt >= every, self.appliedLSN > self.checkpointLSN
        else { return nil }
        return self.startCheckpoint(now: now, horizon: horizon)
    }

    private mutating func startCheckpoint(now: Int64, horizon: Int64?) -> CheckpointPlan {
        if let horizon { self.appliedBatches = self.appliedBatches.filter { $0.value.timestamp >= horizon } }
        self.runningCheckpoint = self.appliedLSN
        self.lastCheckpointAt = now
        self.longestApplyDuringCheckpoint = ApplyTime()
        self.longestApplyBefore = self.longestApplyBetweenCheckpoints
        self.longestApplyBetweenCheckpoints = ApplyTime()
        return CheckpointPlan(lsn: self.appliedLSN, batches: self.appliedBatches)
    }

    /// The running checkpoint is written (`failed` nil) or not; returns its report and the shutdown
    /// waiters to resume.
    mutating func checkpointEnded(failed: Bool, now: Int64) -> (report: CheckpointReport, resume: [Pause]) {
        let lsn = self.runningCheckpoint ?? self.checkpointLSN
        self.runningCheckpoint = nil
        if !failed { self.checkpointLSN = max(self.checkpointLSN, lsn) }
        let report = CheckpointReport(
            lsn: lsn, milliseconds: now - self.lastCheckpointAt, longestApplyMeanwhile: self.longestApplyDuringCheckpoint,
            longestApplyBefore: self.longestApplyBefore)
        defer { self.checkpointWaiters.removeAll() }
        return (report, self.checkpointWaiters)
    }

    // MARK: Shutdown

    /// What shutdown does next; call again after each step until `.closeLog`.
    mutating func finishStep(now: Int64, horizon: Int64?) -> FinishStep {
        if !self.queue.isEmpty { return .waitForInputs }
        if self.runningCheckpoint != nil { return .waitForCheckpoint }
        if !self.lastCheckpointTried && self.appliedLSN > self.checkpointLSN {
            self.lastCheckpointTried = true
            return .writeCheckpoint(self.startCheckpoint(now: now, horizon: horizon))
        }
        return .closeLog
    }

    /// Keeps `pause` until the queue is empty; returns it at once (to resume) when it already is.
    mutating func waitUntilEmpty(_ pause: Pause) -> Pause? {
        guard !self.queue.isEmpty else { return pause }
        self.emptyWaiters.append(pause)
        return nil
    }

    /// Keeps `pause` until the running checkpoint ends; returns it at once when none runs.
    mutating func waitForCheckpoint(_ pause: Pause) -> Pause? {
        guard self.runningCheckpoint != nil else { return pause }
        self.checkpointWaiters.append(pause)
        return nil
    }
}
