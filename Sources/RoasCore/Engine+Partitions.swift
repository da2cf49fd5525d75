/// A purchase or sign-up accepted while the partitions its identity group's touches live in were
/// still behind (`--workers` over 1): its credits are split once their answers are in (`settle`).
struct DeferredCredit: Sendable {
    var kind: EventKind
    var time: Int64
    /// The purchase's order (empty for a sign-up) and revenue in the base currency.
    var order: [UInt8]
    var revenue: Int64
    /// Where each member's answer will be: a partition and the index of its query among those
    /// queued for the partition since the last `settle`.
    var answers: [(partition: Int32, index: Int32)]
}

extension Engine {
    /// Operations queued for the workers before they are handed over without waiting for a chunk's
    /// end: enough to pay for waking them, few enough to keep them busy.
    static var flushThreshold: Int { 16_384 }

    /// Makes the partitions this engine's own before it writes to them: a copy of the engine (a
    /// checkpoint being written) keeps the partitions as they were.
    @inline(__always)
    mutating func uniquePartitions() {
        if !isKnownUniquelyReferenced(&self.store) {
            self.store = self.store.copy()
            self.partitionsAt = PartitionAddress(self.store)
        }
    }

    /// Hands what is queued for the partitions to the workers (worker 0, this thread, runs its
    /// share now) without waiting for the others. A no-op without workers. `EngineSink` calls it at
    /// the end of each chunk, so the workers run while the engine reads the next.
    public mutating func flushPartitions() {
        guard let workers = self.workers, self.queuedOperations > 0 else { return }
        // While workers may still run, nothing else holds the partitions: `settle` comes first
        // whenever the engine is copied.
        if !workers.isBusy { self.uniquePartitions() }
        var jobs: [PartitionJob?] = Array(repeating: nil, count: self.queues.count)
        for partition in self.queues.indices where !self.queues[partition].ops.isEmpty {
            let job = PartitionJob(partition: partition, self.queues[partition])
            jobs[partition] = job
            // Kept for its answers, if it has queries.
            if self.queues[partition].queries > 0 { self.submitted.append(job) }
            self.queues[partition].ops.removeAll(keepingCapacity: true)
            self.queues[partition].ids.removeAll(keepingCapacity: true)
            self.queues[partition].queries = 0
        }
        workers.submit(jobs, store: self.store)
        self.queuedOperations = 0
    }

    /// Waits for the workers to run everything queued, then credits the purchases and sign-ups that
    /// waited for their answers, in the order they were accepted. Afterwards the engine's state is
    /// whole: it may be copied, written to a snapshot or read. A no-op without workers.
    public mutating func settle() {
        guard let workers = self.workers else { return }
        self.flushPartitions()
        workers.waitAll()
        self.touchesAtSettle = self.store.partitions.reduce(0) { $0 + $1.count }
        self.touchesSinceSettle = 0
        // Each partition's answers in the order its queries were queued.
        var answers: [[FoundTouches]] = Array(repeating: [], count: self.queues.count)
        for job in self.submitted where !job.answers.isEmpty { answers[job.partition].append(contentsOf: job.answers) }
        self.submitted.removeAll()
        for index in self.queryCounts.indices { self.queryCounts[index] = 0 }
        let waiting = self.deferred
        self.deferred.removeAll()
        self.unresolvedOrders.removeAll()
        for credit in waiting {
            var found = FoundTouches()
            for answer in credit.answers { found.append(contentsOf: answers[Int(answer.partition)][Int(answer.index)]) }
            let credits = self.credits(from: found)
            if credit.kind == .purchase {
                self.creditPurchase(order: credit.order, time: credit.time, revenue: credit.revenue, credits: credits)
            } else {
                self.creditSignup(time: credit.time, credits: credits)
            }
        }
    }

    /// True when `addition` (a purchase's or sign-up's conversions, revenue and leads) fits every
    /// key's pane at `time` whatever the keys: it fits the sum over all keys of the pane.
    func creditsSurelyFit(_ addition: Aggregate, at time: Int64) -> Bool {
        let total = self.creditTotals[self.windows.paneStart(of: time)] ?? Aggregate()
        return total.canAdd(addition, limit: self.paneLimit)
    }

    /// The credit totals of the panes the engine holds (a restored engine with workers starts
    /// from them): per pane, the largest sum of any store.
    mutating func rebuildCreditTotals() {
        guard self.workers != nil else { return }
        var totals: [Int64: Aggregate] = [:]
        for store in [self.windows] + self.credited {
            for (start, sum) in store.creditSums() {
                var total = totals[start] ?? Aggregate()
                total.conversions = max(total.conversions, sum.conversions)
                total.revenue = max(total.revenue, sum.revenue)
                total.leads = max(total.leads, sum.leads)
                totals[start] = total
            }
        }
        self.creditTotals = totals
    }

    static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// Counts `addition` in its pane's total (with workers only).
    mutating func countCredits(_ addition: Aggregate, at time: Int64) {
        guard self.workers != nil else { return }
        let start = self.windows.paneStart(of: time)
        var total = self.creditTotals[start] ?? Aggregate()
        total.conversions = Engine.saturatingAdd(total.conversions, addition.conversions)
        total.revenue = Engine.saturatingAdd(total.revenue, addition.revenue)
        total.leads = Engine.saturatingAdd(total.leads, addition.leads)
        self.creditTotals[start] = total
    }

    /// Accepts a purchase or sign-up whose credits will be split once the partitions have answered
    /// (with workers, when its figures surely fit; `apply` calls it): queries every member of the
    /// purchaser's identity group in its partition as the partition stands now.
    mutating func deferCredits(kind: EventKind, user: Int32, time: Int64, order: [UInt8], revenue: Int64) {
        var answers: [(partition: Int32, index: Int32)] = []
        let latestOnly = self.configuration.models == [.lastTouch]
        for member in self.identities.group(of: user) {
            let (partition, local) = self.partition(of: member)
            let query = TouchQuery(
                local: local, time: time, clickLookback: self.configuration.clickLookback,
                viewLookback: self.configuration.viewLookback, latestOnly: latestOnly)
            self.queues[partition].ops.append(.query(query))
            self.queues[partition].queries += 1
            answers.append((Int32(partition), Int32(self.queryCounts[partition])))
            self.queryCounts[partition] += 1
            self.queuedOperations += 1
        }
        self.deferred.append(DeferredCredit(kind: kind, time: time, order: order, revenue: revenue, answers: answers))
        if kind == .purchase { self.unresolvedOrders.insert(order) }
        // A bound on what waits: settling credits them all.
        if self.deferred.count >= Engine.flushThreshold { self.settle() }
    }
}
