import DequeModule

/// The order in which `roas serve --data-dir` applies what it logged, as a state machine: inputs
/// enter in log order, learn their fate from the log (durable or failed) in any order, and leave
/// strictly in log order, each once it and everything before it is known. The machine does no I/O
/// and holds no engine: its mutating methods return what the caller must do (apply an input, refuse
/// it, resume a waiter), the way SwiftNIO's and Hummingbird's connection state machines do.
///
/// `Input` is what gets applied, `Output` what applying it came to, and `Waiter` whatever the
/// caller resumes with that outcome (a continuation in the server; a plain value in the tests).
struct DurableApplyQueue<Input, Output, Waiter> {
    typealias Outcome = Result<Output, any Error>

    /// What the caller does next with the front of the queue.
    enum Step {
        /// `input` is durable and everything logged before it has applied: apply it, then report
        /// the outcome with `finished(_:_:)`. `endsFailure`: the log took input again after
        /// refusing some (say so once).
        case apply(id: Int, lsn: UInt64, input: Input, endsFailure: Bool)
        /// The log could not make `input` durable: release it and answer that it is not durable,
        /// then report with `finished(_:_:)`. `startsFailure`: the first refusal since the log last
        /// took input (say so once).
        case refuse(id: Int, input: Input, reason: String, startsFailure: Bool)
    }

    private enum Fate {
        case waiting
        case durable
        case failed(String)
    }

    private struct Entry {
        var id: Int
        var lsn: UInt64
        var input: Input
        var fate: Fate
    }

    private var entries: Deque<Entry> = []
    private var nextID = 0
    /// Outcomes whose caller has not asked yet, and callers waiting for an outcome.
    private var unclaimed: [Int: Outcome] = [:]
    private var waiters: [Int: Waiter] = [:]
    /// The last input the log failed to make durable, until one is durable again.
    private(set) var isFailing = false

    /// Nothing is waiting to apply.
    var isEmpty: Bool { self.entries.isEmpty }

    /// Queues an input appended to the log at `lsn` (0: nothing to log, so it is durable at once,
    /// but still applies in its turn); returns its id.
    mutating func enqueue(_ input: Input, lsn: UInt64) -> Int {
        let id = self.nextID
        self.nextID += 1
        self.entries.append(Entry(id: id, lsn: lsn, input: input, fate: lsn == 0 ? .durable : .waiting))
        return id
    }

    /// The log is done with records `first...last`: every input appended there is durable
    /// (`failure` nil) or failed. Groups come in LSN order, so the inputs they cover are at the
    /// front of the queue (after those already known).
    mutating func logged(lsns first: UInt64, through last: UInt64, failure: String?) {
        for index in self.entries.indices {
            let lsn = self.entries[index].lsn
            if lsn > last { break }
            if lsn >= first { self.entries[index].fate = failure.map(Fate.failed) ?? .durable }
        }
    }

    /// The next input to apply or refuse, removed from the queue; nil while the front's fate is
    /// unknown (or the queue is empty).
    mutating func next() -> Step? {
        guard let front = self.entries.first else { return nil }
        switch front.fate {
        case .waiting:
            return nil
        case .durable:
            self.entries.removeFirst()
            // Input with nothing logged says nothing about the log.
            let endsFailure = self.isFailing && front.lsn > 0
            if endsFailure { self.isFailing = false }
            return .apply(id: front.id, lsn: front.lsn, input: front.input, endsFailure: endsFailure)
        case .failed(let reason):
            self.entries.removeFirst()
            let startsFailure = !self.isFailing
            self.isFailing = true
            return .refuse(id: front.id, input: front.input, reason: reason, startsFailure: startsFailure)
        }
    }

    /// The outcome of the step for `id`: returns the waiter to resume with it, if its caller already
    /// waits; otherwise the outcome is kept for `claim(_:waiter:)`.
    mutating func finished(_ id: Int, _ outcome: Outcome) -> Waiter? {
        if let waiter = self.waiters.removeValue(forKey: id) { return waiter }
        self.unclaimed[id] = outcome
        return nil
    }

    /// The caller of `id` asks for its outcome: returns it if known (the caller needs no waiter);
    /// otherwise keeps `waiter`, which `finished` hands back once the outcome is known.
    mutating func claim(_ id: Int, waiter: Waiter) -> Outcome? {
        if let outcome = self.unclaimed.removeValue(forKey: id) { return outcome }
        self.waiters[id] = waiter
        return nil
    }

    /// Whether the caller of `id` has an outcome waiting, without registering a waiter.
    mutating func take(_ id: Int) -> Outcome? {
        self.unclaimed.removeValue(forKey: id)
    }
}
