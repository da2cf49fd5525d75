import Foundation

/// What the engine's thread asks of one touch partition, in the order it decided it.
enum PartitionOp: Sendable {
    /// Append a view or click; its id's bytes are at `idOffset` in the job's `ids`.
    case touch(time: Int64, creator: Int32, campaign: Int32, local: Int32, idOffset: Int32, idCount: Int32, isClick: Bool)
    /// Drop what the lookbacks no longer reach.
    case evict(clicksBefore: Int64, viewsBefore: Int64)
    /// Answer a purchase's or sign-up's query, as the partition stands at this point of the stream.
    case query(TouchQuery)
}

/// What the engine's thread queues for one partition between two hand-overs: operations in
/// order and the id bytes they append. A value, filled in place per touch.
struct PartitionQueue: Sendable {
    var ops: [PartitionOp] = []
    var ids: [UInt8] = []
    /// Queries among `ops`.
    var queries = 0

    /// Queues a touch.
    @inline(__always)
    mutating func appendTouch(
        time: Int64, creator: Int32, campaign: Int32, local: Int32, id: UnsafeRawBufferPointer, isClick: Bool
    ) {
        let offset = Int32(truncatingIfNeeded: self.ids.count)
        self.ids.append(contentsOf: id)
        self.ops.append(
            .touch(
                time: time, creator: creator, campaign: campaign, local: local, idOffset: offset,
                idCount: Int32(truncatingIfNeeded: id.count), isClick: isClick))
    }
}

/// The work for one partition handed over at one flush: its operations in order, the id bytes
/// they append, and, once done, the answers to its queries in the order of the query operations.
/// One thread at a time uses a job: the engine's thread makes it, one worker runs it, and the
/// engine's thread reads the answers after it waited for that worker (`PartitionWorkers.waitAll`).
final class PartitionJob: @unchecked Sendable {
    let partition: Int
    /// Emptied once run: a job is kept until the next `settle` only for its answers.
    private var ops: [PartitionOp]
    private var ids: [UInt8]
    var answers: [FoundTouches] = []

    init(partition: Int, _ queue: PartitionQueue) {
        self.partition = partition
        self.ops = queue.ops
        self.ids = queue.ids
    }

    /// Runs every operation on `partition`, in order.
    func run(on partition: UnsafeMutablePointer<TouchPartition>) {
        let distance = 8
        self.ids.withUnsafeBytes { ids in
            self.ops.withUnsafeBufferPointer { ops in
                for index in ops.indices {
                    // The chain head an append reads is a random access: start loading it ahead.
                    if index + distance < ops.count, case .touch(_, _, _, let local, _, _, let isClick) = ops[index + distance] {
                        partition.pointee.prefetchHead(of: local, isClick: isClick)
                    }
                    switch ops[index] {
                    case .touch(let time, let creator, let campaign, let local, let idOffset, let idCount, let isClick):
                        let id = UnsafeRawBufferPointer(rebasing: ids[Int(idOffset)..<Int(idOffset + idCount)])
                        partition.pointee.append(
                            isClick: isClick, time: time, creator: creator, campaign: campaign, local: local, id: id)
                    case .evict(let clicksBefore, let viewsBefore):
                        partition.pointee.evict(clicksBefore: clicksBefore, viewsBefore: viewsBefore)
                    case .query(let query):
                        var found = FoundTouches()
                        partition.pointee.answer(query, into: &found)
                        self.answers.append(found)
                    }
                }
            }
        }
        self.ops = []
        self.ids = []
    }
}

/// The threads that run the touch partitions beside the engine's thread (`--workers W`, W > 1).
///
/// Partition `p` belongs to worker `p % W`; worker 0 is the engine's thread itself, which runs its
/// partitions' jobs as it hands the others over (`submit`), so W workers use W threads. Each
/// worker runs its jobs in the order handed over, so a partition sees its operations in the
/// engine's order. Stopped when the last engine value holding it goes.
final class PartitionWorkers: @unchecked Sendable {
    /// One handing-over: a job (or nil) per partition, and the partitions (kept alive while a
    /// worker runs the batch, and released before it says it is done).
    private struct Batch: @unchecked Sendable {
        var jobs: [PartitionJob?]
        var store: PartitionStore
    }

    /// A worker's queue of batches; nil stops it. Unbounded (`submit` bounds the batches in
    /// flight); RoasRuntime's `BlockingQueue` is bounded and a target above this one.
    private final class Inbox: @unchecked Sendable {
        private let condition = NSCondition()
        private var items: [Batch?] = []
        private var head = 0

        func put(_ item: Batch?) {
            self.condition.lock()
            self.items.append(item)
            self.condition.signal()
            self.condition.unlock()
        }

        func take() -> Batch? {
            self.condition.lock()
            defer { self.condition.unlock() }
            while self.head == self.items.count { self.condition.wait() }
            let item = self.items[self.head]
            self.items[self.head] = nil
            self.head += 1
            if self.head == self.items.count {
                self.items.removeAll(keepingCapacity: true)
                self.head = 0
            }
            return item
        }
    }

    let count: Int
    private let inboxes: [Inbox]
    /// Signalled once per batch per worker thread.
    private let done = DispatchSemaphore(value: 0)
    /// Batches handed over whose every worker has not yet signalled, times the worker threads.
    private var outstanding = 0
    /// The most batches in flight before `submit` waits for the workers.
    private static let inFlightLimit = 4

    init(count: Int) {
        precondition(count > 1)
        self.count = count
        self.inboxes = (1..<count).map { _ in Inbox() }
        for (index, inbox) in self.inboxes.enumerated() {
            let worker = index + 1
            let done = self.done
            let thread = Thread {
                // The batch is let go of (in `runNext`) before the worker says it is done: the
                // engine's thread then checks that it alone holds the partitions (copy on write).
                while PartitionWorkers.runNext(from: inbox, worker: worker, of: count) { done.signal() }
            }
            thread.name = "roas-worker-\(worker)"
            thread.start()
        }
    }

    deinit {
        for inbox in self.inboxes { inbox.put(nil) }
    }

    /// Runs worker `worker`'s jobs of the next batch in `inbox`; false when told to stop.
    private static func runNext(from inbox: Inbox, worker: Int, of count: Int) -> Bool {
        guard let batch = inbox.take() else { return false }
        var partition = worker
        while partition < batch.jobs.count {
            batch.jobs[partition]?.run(on: batch.store.base + partition)
            partition += count
        }
        return true
    }

    /// Hands `jobs` (one per partition, nil for none) over: runs worker 0's on this thread, queues
    /// the others' and returns without waiting for them, unless too many batches are in flight.
    func submit(_ jobs: [PartitionJob?], store: PartitionStore) {
        for inbox in self.inboxes { inbox.put(Batch(jobs: jobs, store: store)) }
        self.outstanding += self.inboxes.count
        var partition = 0
        while partition < jobs.count {
            jobs[partition]?.run(on: store.base + partition)
            partition += self.count
        }
        while self.outstanding > PartitionWorkers.inFlightLimit * self.inboxes.count {
            self.done.wait()
            self.outstanding -= 1
        }
    }

    /// True when a batch handed over may still be running.
    var isBusy: Bool { self.outstanding > 0 }

    /// Waits until every worker has run every job handed over.
    func waitAll() {
        while self.outstanding > 0 {
            self.done.wait()
            self.outstanding -= 1
        }
    }
}

/// The touch partitions, in one allocation the workers write to in place. The engine keeps it
/// copy-on-write (`Engine.uniquePartitions`): a copy of the engine (a checkpoint) shares it until
/// the engine writes again, and the copy's partitions then share their pages until either writes.
final class PartitionStore: @unchecked Sendable {
    let count: Int
    let base: UnsafeMutablePointer<TouchPartition>

    init(_ partitions: [TouchPartition]) {
        self.count = partitions.count
        self.base = UnsafeMutablePointer<TouchPartition>.allocate(capacity: max(1, partitions.count))
        _ = UnsafeMutableBufferPointer(start: self.base, count: partitions.count).initialize(from: partitions)
    }

    deinit {
        self.base.deinitialize(count: self.count)
        self.base.deallocate()
    }

    func copy() -> PartitionStore { PartitionStore(Array(self.partitions)) }

    var partitions: UnsafeBufferPointer<TouchPartition> { UnsafeBufferPointer(start: self.base, count: self.count) }
}

/// The address of a `PartitionStore`'s partitions, valid while the store lives.
struct PartitionAddress: @unchecked Sendable {
    let base: UnsafeMutablePointer<TouchPartition>

    init(_ store: PartitionStore) { self.base = store.base }
}
