import Testing

@testable import RoasServer

/// The order in which `roas serve --data-dir` applies logged input, tested synchronously: fates
/// arrive in any order, inputs leave in log order, failures are reported once per run of them,
/// and every outcome reaches its caller exactly once, whether it asked before or after.
@Suite("Durable apply queue")
struct DurableApplyQueueTests {
    typealias Queue = DurableApplyQueue<String, Int, String>

    struct Refused: Error, Equatable {
        var reason: String
    }

    /// Takes every step the queue allows now, "applying" an input as its length and refusing a
    /// failed one; returns the steps as text and the waiters resumed, with what they got.
    static func drain(_ queue: inout Queue) -> (steps: [String], resumed: [String: Int?]) {
        var steps: [String] = []
        var resumed: [String: Int?] = [:]
        while let step = queue.next() {
            switch step {
            case .apply(let id, let lsn, let input, let endsFailure):
                steps.append("apply \(input) lsn \(lsn)" + (endsFailure ? " (log back)" : ""))
                if let waiter = queue.finished(id, .success(input.count)) { resumed[waiter] = input.count }
            case .refuse(let id, let input, let reason, let startsFailure):
                steps.append("refuse \(input): \(reason)" + (startsFailure ? " (log failing)" : ""))
                if let waiter = queue.finished(id, .failure(Refused(reason: reason))) { resumed[waiter] = .some(nil) }
            }
        }
        return (steps, resumed)
    }

    @Test func inputsApplyInLogOrderWhateverOrderTheirFatesArriveIn() throws {
        var queue = Queue()
        let a = queue.enqueue("a", lsn: 1)
        let b = queue.enqueue("bb", lsn: 2)
        let c = queue.enqueue("ccc", lsn: 3)
        queue.logged(lsns: 3, through: 3, failure: nil)
        queue.logged(lsns: 2, through: 2, failure: nil)
        #expect(Self.drain(&queue).steps.isEmpty)  // a's fate is unknown: nothing may pass it
        #expect(!queue.isEmpty)
        queue.logged(lsns: 1, through: 1, failure: nil)
        #expect(Self.drain(&queue).steps == ["apply a lsn 1", "apply bb lsn 2", "apply ccc lsn 3"])
        #expect(queue.isEmpty)
        // Every outcome waits for its caller.
        #expect(try queue.take(b)?.get() == 2)
        #expect(queue.take(b) == nil)
        #expect(try queue.claim(a, waiter: "A")?.get() == 1)
        #expect(try queue.claim(c, waiter: "C")?.get() == 3)
    }

    @Test func inputWithNothingLoggedIsDurableAtOnceButWaitsItsTurn() {
        var queue = Queue()
        _ = queue.enqueue("logged", lsn: 7)
        _ = queue.enqueue("rejected-only", lsn: 0)
        #expect(Self.drain(&queue).steps.isEmpty)
        queue.logged(lsns: 7, through: 7, failure: nil)
        #expect(Self.drain(&queue).steps == ["apply logged lsn 7", "apply rejected-only lsn 0"])
    }

    @Test func aWaitingCallerIsResumedOnceWithItsOwnOutcome() {
        var queue = Queue()
        let a = queue.enqueue("a", lsn: 1)
        let b = queue.enqueue("bb", lsn: 2)
        #expect(queue.claim(b, waiter: "B") == nil)
        #expect(queue.claim(a, waiter: "A") == nil)
        queue.logged(lsns: 1, through: 1, failure: nil)
        queue.logged(lsns: 2, through: 2, failure: nil)
        let (_, resumed) = Self.drain(&queue)
        #expect(resumed == ["A": 1, "B": 2])
        #expect(queue.take(a) == nil && queue.take(b) == nil)  // nothing left over to hand out twice
    }

    @Test func failuresAreRefusedInOrderAndReportedOncePerRun() throws {
        var queue = Queue()
        let ids = ["a", "b", "c", "d", "e"].enumerated().map { queue.enqueue($0.element, lsn: UInt64($0.offset + 1)) }
        queue.logged(lsns: 1, through: 1, failure: nil)
        queue.logged(lsns: 2, through: 2, failure: "disk full")
        queue.logged(lsns: 3, through: 3, failure: "disk full")
        queue.logged(lsns: 5, through: 5, failure: "disk full")
        #expect(
            Self.drain(&queue).steps == [
                "apply a lsn 1", "refuse b: disk full (log failing)", "refuse c: disk full",
            ])
        #expect(queue.isFailing)
        queue.logged(lsns: 4, through: 4, failure: nil)
        #expect(Self.drain(&queue).steps == ["apply d lsn 4 (log back)", "refuse e: disk full (log failing)"])
        #expect(throws: Refused(reason: "disk full")) { try queue.take(ids[1])?.get() }
    }

    @Test func inputWithNothingLoggedDoesNotEndAFailure() {
        var queue = Queue()
        _ = queue.enqueue("x", lsn: 1)
        queue.logged(lsns: 1, through: 1, failure: "EIO")
        _ = queue.enqueue("rejected-only", lsn: 0)
        #expect(Self.drain(&queue).steps == ["refuse x: EIO (log failing)", "apply rejected-only lsn 0"])
        #expect(queue.isFailing)
    }

    @Test func aGroupSettlesEveryInputLoggedInItsRangeAndNoOther() {
        var queue = Queue()
        _ = queue.enqueue("a", lsn: 4)
        _ = queue.enqueue("nothing-logged", lsn: 0)
        _ = queue.enqueue("b", lsn: 5)
        _ = queue.enqueue("c", lsn: 7)  // LSN 6 was another sender's record, never queued here
        _ = queue.enqueue("d", lsn: 8)
        queue.logged(lsns: 4, through: 7, failure: nil)
        #expect(Self.drain(&queue).steps == ["apply a lsn 4", "apply nothing-logged lsn 0", "apply b lsn 5", "apply c lsn 7"])
        #expect(!queue.isEmpty)
        queue.logged(lsns: 8, through: 9, failure: "EIO")
        #expect(Self.drain(&queue).steps == ["refuse d: EIO (log failing)"])
        #expect(queue.isEmpty)
    }

    @Test func aFateForAnInputAlreadyGoneIsIgnored() {
        var queue = Queue()
        _ = queue.enqueue("a", lsn: 1)
        queue.logged(lsns: 1, through: 1, failure: nil)
        _ = Self.drain(&queue)
        queue.logged(lsns: 1, through: 1, failure: "late news")
        #expect(queue.next() == nil)
        #expect(queue.isEmpty)
    }
}
