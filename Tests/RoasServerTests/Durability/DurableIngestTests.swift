import RoasCore
import Testing

@testable import RoasServer

/// The `--data-dir` state machine around the apply queue, driven synchronously: LSN bookkeeping,
/// when a checkpoint is due and what it holds, and the steps of a shutdown.
@Suite("Durable ingest")
struct DurableIngestTests {
    typealias Machine = DurableIngest<String, Int, String, String>

    static func entry(_ timestamp: Int64) -> AcceptedBatches.Entry {
        AcceptedBatches.Entry(timestamp: timestamp, digest: UInt64(timestamp))
    }

    /// Applies every input the machine lets through as its length; returns the inputs applied.
    static func applyAll(_ machine: inout Machine) -> (applied: [String], emptied: [String]) {
        var applied: [String] = []
        var emptied: [String] = []
        while let step = machine.next() {
            switch step {
            case .apply(let id, _, let input, _):
                applied.append(input)
                emptied += machine.finished(id, .success(input.count)).emptied
            case .refuse(let id, let input, let reason, _):
                emptied += machine.finished(id, .failure(DurableApplyQueueTests.Refused(reason: reason))).emptied
                _ = input
            }
        }
        return (applied, emptied)
    }

    @Test func appliedLSNFollowsTheLogAndACheckpointIsDueOnlyAfterItsIntervalAndNewInput() {
        var machine = Machine(lsn: 10, checkpointLSN: 10, batches: [:], now: 1_000)
        // Nothing applied since the checkpoint recovery started from: never due.
        #expect(machine.checkpointIfDue(now: 100_000, every: 30_000, horizon: nil) == nil)
        _ = machine.appended("a", lsn: 11)
        _ = machine.appended("b", lsn: 12)
        #expect(machine.lastLSN == 12 && machine.appliedLSN == 10)
        machine.logged(lsns: 11, through: 11, failure: nil)
        #expect(Self.applyAll(&machine).applied == ["a"])
        #expect(machine.appliedLSN == 11)
        // Applied input, but the interval has not passed since the last checkpoint (recovery's start).
        #expect(machine.checkpointIfDue(now: 30_999, every: 30_000, horizon: nil) == nil)
        let plan = machine.checkpointIfDue(now: 31_000, every: 30_000, horizon: nil)
        #expect(plan?.lsn == 11)
        // One at a time: the running one must end first, whatever the clock says.
        machine.logged(lsns: 12, through: 12, failure: nil)
        _ = Self.applyAll(&machine)
        #expect(machine.checkpointIfDue(now: 90_000, every: 30_000, horizon: nil) == nil)
        let ended = machine.checkpointEnded(failed: false, now: 31_500)
        #expect(ended.report.lsn == 11 && ended.report.milliseconds == 500)
        #expect(machine.checkpointLSN == 11)
        // The next is measured from the last start, and covers LSN 12.
        #expect(machine.checkpointIfDue(now: 60_999, every: 30_000, horizon: nil) == nil)
        #expect(machine.checkpointIfDue(now: 61_000, every: 30_000, horizon: nil)?.lsn == 12)
    }

    @Test func aFailedCheckpointLeavesTheCheckpointLSNAndTheNextTryCoversTheSame() {
        var machine = Machine(lsn: 0, checkpointLSN: 0, batches: [:], now: 0)
        _ = machine.appended("a", lsn: 1)
        machine.logged(lsns: 1, through: 1, failure: nil)
        _ = Self.applyAll(&machine)
        #expect(machine.checkpointIfDue(now: 10, every: 10, horizon: nil)?.lsn == 1)
        _ = machine.checkpointEnded(failed: true, now: 12)
        #expect(machine.checkpointLSN == 0)
        #expect(machine.checkpointIfDue(now: 20, every: 10, horizon: nil)?.lsn == 1)
    }

    @Test func aCheckpointHoldsTheBatchesAppliedAndForgetsThoseBeyondTheHorizon() {
        var machine = Machine(lsn: 3, checkpointLSN: 3, batches: ["old": Self.entry(100), "kept": Self.entry(500)], now: 0)
        _ = machine.appended("a", lsn: 4)
        machine.logged(lsns: 4, through: 4, failure: nil)
        _ = Self.applyAll(&machine)
        machine.accepted([(id: "new", entry: Self.entry(900))])
        let plan = machine.checkpointIfDue(now: 1, every: 1, horizon: 400)
        #expect(plan?.batches == ["kept": Self.entry(500), "new": Self.entry(900)])
        #expect(machine.appliedBatches.keys.sorted() == ["kept", "new"])
        _ = machine.checkpointEnded(failed: false, now: 2)
        // Without a horizon (--tolerance 0) every id stays.
        var keeping = Machine(lsn: 3, checkpointLSN: 0, batches: ["old": Self.entry(100)], now: 0)
        #expect(keeping.checkpointIfDue(now: 1, every: 1, horizon: nil)?.batches == ["old": Self.entry(100)])
    }

    @Test func theLongestApplyDuringACheckpointAndBeforeItAreReported() {
        var machine = Machine(lsn: 0, checkpointLSN: 0, batches: [:], now: 0)
        machine.applyTook(.init(milliseconds: 40, cpuMilliseconds: 20))  // no checkpoint running: counts as before the first
        machine.applyTook(.init(milliseconds: 12, cpuMilliseconds: 6))
        _ = machine.appended("a", lsn: 1)
        machine.logged(lsns: 1, through: 1, failure: nil)
        _ = Self.applyAll(&machine)
        _ = machine.checkpointIfDue(now: 5, every: 5, horizon: nil)
        machine.applyTook(.init(milliseconds: 7, cpuMilliseconds: 3))
        machine.applyTook(.init(milliseconds: 3, cpuMilliseconds: 1))
        let first = machine.checkpointEnded(failed: false, now: 9).report
        #expect(first.longestApplyMeanwhile == .init(milliseconds: 7, cpuMilliseconds: 3))
        #expect(first.longestApplyBefore == .init(milliseconds: 40, cpuMilliseconds: 20))
        machine.applyTook(.init(milliseconds: 5, cpuMilliseconds: 2))  // between the two checkpoints
        _ = machine.appended("b", lsn: 2)
        machine.logged(lsns: 2, through: 2, failure: nil)
        _ = Self.applyAll(&machine)
        _ = machine.checkpointIfDue(now: 20, every: 5, horizon: nil)
        machine.applyTook(.init(milliseconds: 2, cpuMilliseconds: 1))
        let second = machine.checkpointEnded(failed: false, now: 21).report
        #expect(second.longestApplyMeanwhile.milliseconds == 2 && second.longestApplyBefore.milliseconds == 5)
    }

    @Test func shutdownWaitsForInputsThenTheRunningCheckpointThenWritesALastOneAndCloses() {
        var machine = Machine(lsn: 0, checkpointLSN: 0, batches: [:], now: 0)
        _ = machine.appended("a", lsn: 1)
        _ = machine.appended("b", lsn: 2)
        machine.logged(lsns: 1, through: 1, failure: nil)
        _ = Self.applyAll(&machine)
        #expect(machine.checkpointIfDue(now: 10, every: 10, horizon: nil)?.lsn == 1)

        #expect(machine.finishStep(now: 11, horizon: nil) == .waitForInputs)
        #expect(machine.waitUntilEmpty("shutdown") == nil)  // kept until the queue empties
        machine.logged(lsns: 2, through: 2, failure: nil)
        let drained = Self.applyAll(&machine)
        #expect(drained.applied == ["b"] && drained.emptied == ["shutdown"])
        #expect(machine.waitUntilEmpty("again") == "again")  // empty now: resume at once

        #expect(machine.finishStep(now: 12, horizon: nil) == .waitForCheckpoint)
        #expect(machine.waitForCheckpoint("shutdown") == nil)
        #expect(machine.checkpointEnded(failed: false, now: 13).resume == ["shutdown"])
        #expect(machine.waitForCheckpoint("again") == "again")

        // LSN 2 applied after the running checkpoint (LSN 1) started: a last one covers it.
        #expect(machine.finishStep(now: 14, horizon: nil) == .writeCheckpoint(.init(lsn: 2, batches: [:])))
        #expect(machine.finishStep(now: 15, horizon: nil) == .waitForCheckpoint)
        _ = machine.checkpointEnded(failed: false, now: 16)
        #expect(machine.checkpointLSN == 2)
        #expect(machine.finishStep(now: 17, horizon: nil) == .closeLog)
    }

    @Test func shutdownTriesItsLastCheckpointOnceAndClosesWhenNothingIsNew() {
        var failing = Machine(lsn: 0, checkpointLSN: 0, batches: [:], now: 0)
        _ = failing.appended("a", lsn: 1)
        failing.logged(lsns: 1, through: 1, failure: nil)
        _ = Self.applyAll(&failing)
        #expect(failing.finishStep(now: 1, horizon: nil) == .writeCheckpoint(.init(lsn: 1, batches: [:])))
        _ = failing.checkpointEnded(failed: true, now: 2)
        #expect(failing.finishStep(now: 3, horizon: nil) == .closeLog)  // the log keeps what it failed to cover

        var idle = Machine(lsn: 5, checkpointLSN: 5, batches: [:], now: 0)
        #expect(idle.finishStep(now: 1, horizon: nil) == .closeLog)
    }

    @Test func refusedInputEmptiesTheQueueForShutdownToo() {
        var machine = Machine(lsn: 0, checkpointLSN: 0, batches: [:], now: 0)
        _ = machine.appended("a", lsn: 1)
        #expect(machine.finishStep(now: 1, horizon: nil) == .waitForInputs)
        #expect(machine.waitUntilEmpty("shutdown") == nil)
        machine.logged(lsns: 1, through: 1, failure: "EIO")
        #expect(Self.applyAll(&machine).emptied == ["shutdown"])
        #expect(machine.appliedLSN == 0)
        #expect(machine.finishStep(now: 2, horizon: nil) == .closeLog)
    }
}
