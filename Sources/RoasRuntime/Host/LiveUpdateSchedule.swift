/// When live rows are due (`--emit-every`, `roas serve`'s live views): every `every` milliseconds
/// of monotonic time, given as values. `roas run` asks after each chunk and `roas serve` at each
/// tick, through `EngineHost.tick(now:)`; so both emit live rows by the same rule.
public struct LiveUpdateSchedule: Sendable {
    /// Milliseconds between live updates; nil: none.
    public let every: Int64?
    private var next: Int64?

    /// - Parameter now: monotonic milliseconds; the first update is due `every` after it.
    public init(every: Int64?, now: Int64) {
        self.every = every
        self.next = every.map { now + $0 }
    }

    /// Whether an update is due at `now`; if so, the next is due `every` after `now`.
    public mutating func isDue(now: Int64) -> Bool {
        guard let next = self.next, let every = self.every, now >= next else { return false }
        self.next = now + every
        return true
    }
}
