/// How purchases are credited to the touches that led to them.
public enum AttributionModel: String, CaseIterable, Sendable {
    case lastTouch = "last-touch"
    case firstTouch = "first-touch"
    case linear
    case timeDecay = "time-decay"
    case position
}

/// Everything the engine needs to know; every figure is in milliseconds of event time.
public struct EngineConfiguration: Sendable {
    /// The models computed in one pass: one with `--model`, every listed one with `--models`.
    /// Touches are kept once; each model has its own credit split and its own credited figures.
    public var models: [AttributionModel] = [.lastTouch]
    /// `--models`: rows carry a `model` field and come once per model (even with one model listed).
    public var labelsModels = false
    /// The first model (the only one without `--models`); setting it sets `models` to it alone.
    public var model: AttributionModel {
        get { self.models[0] }
        set {
            self.models = [newValue]
            self.labelsModels = false
        }
    }
    public var clickLookback: Int64 = 7 * 86_400_000
    public var viewLookback: Int64 = 86_400_000
    public var halfLife: Int64 = 7 * 86_400_000
    /// Window length; windows are aligned to the Unix epoch.
    public var window: Int64 = 3_600_000
    /// Hop between window starts; equal to `window` for tumbling windows.
    public var slide: Int64 = 3_600_000
    /// Rows keyed by creator and campaign, rather than by creator alone.
    public var byCampaign = false
    /// Rows rolled up by creator tier (`--by tier`, with `byCampaign` `--by tier,campaign`).
    public var byTier = false
    public var lateness: Int64 = 5000
    public var dedupHorizon: Int64 = 86_400_000
    public var currencies: CurrencyTable
    /// Keep the large tables that every event writes to at random (the dedup set's) in pages of
    /// 4 KiB, so that a copy of the engine (a checkpoint written while it runs on) costs it a copy of
    /// each page it then writes to rather than of each whole table; about 6-10% more CPU time per
    /// event. Set by `roas serve --data-dir`. Changes no result and is not recorded in snapshots.
    public var pagedState = false
    /// Keep dead-letter records (with their raw lines), not only their counts.
    public var keepsDeadLetters = true
    /// The most keys (users, creators, campaigns, orders) the state may hold; an event that would add
    /// one more is dead-lettered `too_many_keys`. Each costs from about 100 B (a user) to a few hundred
    /// (a creator with rows in many windows), so the default stays within a few GiB.
    public var maximumKeys = 20_000_000
    /// The touch partitions (`--partitions`): views and clicks are kept by identity in this many
    /// partitions, a power of two. Recorded in snapshots; it does not change results.
    public var partitions = 16
    /// The threads that keep the partitions (`--workers`), the engine's own included: with more
    /// than one, touches are appended and purchases' touches looked up on the others beside it. It
    /// does not change results, and is not recorded.
    public var workers = 1
    /// The most partitions `--partitions` may ask for.
    public static let maximumPartitions = 1024

    /// The longest any duration option may be: 10,000,000 days (27,000 years, more than the event-time
    /// range of 1970 to 8999), so that no sum or difference of event times and durations can overflow.
    public static let maximumDuration: Int64 = 10_000_000 * 86_400_000

    public init(currencies: CurrencyTable? = nil) {
        self.currencies = currencies ?? (try! CurrencyTable(base: "USD"))
    }

    /// - Throws: `RoasError` naming the option when figures are inconsistent.
    public func validate() throws {
        guard self.window > 0 else { throw RoasError(.options, "--window must be positive") }
        guard self.slide > 0 else { throw RoasError(.options, "--slide must be positive") }
        guard self.slide <= self.window, self.window % self.slide == 0 else {
            throw RoasError(.options, "--window must be a multiple of --slide")
        }
        guard self.window <= 366 * 86_400_000 else { throw RoasError(.options, "--window must be at most 366d") }
        guard self.window / self.slide <= 10_000 else {
            throw RoasError(.options, "--window / --slide must be at most 10000 panes")
        }
        guard self.clickLookback >= 0, self.viewLookback >= 0 else {
            throw RoasError(.options, "lookbacks must not be negative")
        }
        guard !self.models.isEmpty else { throw RoasError(.options, "--models needs at least one model") }
        guard Set(self.models).count == self.models.count else {
            throw RoasError(.options, "--models lists a model twice")
        }
        guard self.labelsModels || self.models.count == 1 else {
            throw RoasError(.options, "several models need --models")
        }
        guard self.halfLife > 0 else { throw RoasError(.options, "--half-life must be positive") }
        guard self.lateness >= 0 else { throw RoasError(.options, "--lateness must not be negative") }
        guard self.dedupHorizon >= 0 else { throw RoasError(.options, "--dedup-horizon must not be negative") }
        for (value, flag) in [
            (self.clickLookback, "--click-lookback"), (self.viewLookback, "--view-lookback"),
            (self.halfLife, "--half-life"), (self.lateness, "--lateness"), (self.dedupHorizon, "--dedup-horizon"),
        ] where value > EngineConfiguration.maximumDuration {
            throw RoasError(.options, "\(flag) must be at most 10000000d")
        }
        guard self.partitions >= 1, self.partitions <= EngineConfiguration.maximumPartitions,
            self.partitions & (self.partitions - 1) == 0
        else {
            throw RoasError(
                .options,
                "--partitions must be a power of two from 1 to \(EngineConfiguration.maximumPartitions), not \(self.partitions)")
        }
        guard self.workers >= 1 else { throw RoasError(.options, "--workers must be at least 1, not \(self.workers)") }
        guard self.workers <= self.partitions else {
            throw RoasError(
                .options,
                "--workers \(self.workers) is more than --partitions \(self.partitions): each worker needs a partition")
        }
        guard self.maximumKeys >= 16 && self.maximumKeys <= Int(Int32.max) / 2 else {
            throw RoasError(.options, "--max-keys must be from 16 to \(Int(Int32.max) / 2)")
        }
    }
}
