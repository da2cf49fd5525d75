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
    public var model: AttributionModel = .lastTouch
    public var clickLookback: Int64 = 7 * 86_400_000
    public var viewLookback: Int64 = 86_400_000
    public var halfLife: Int64 = 7 * 86_400_000
    /// Window length; windows are aligned to the Unix epoch.
    public var window: Int64 = 3_600_000
    /// Hop between window starts; equal to `window` for tumbling windows.
    public var slide: Int64 = 3_600_000
    /// Rows keyed by creator and campaign, rather than by creator alone.
    public var byCampaign = false
    public var lateness: Int64 = 5000
    public var dedupHorizon: Int64 = 86_400_000
    public var currencies: CurrencyTable
    /// Keep dead-letter records (with their raw lines), not only their counts.
    public var keepsDeadLetters = true

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
        guard self.halfLife > 0 else { throw RoasError(.options, "--half-life must be positive") }
        guard self.lateness >= 0 else { throw RoasError(.options, "--lateness must not be negative") }
        guard self.dedupHorizon >= 0 else { throw RoasError(.options, "--dedup-horizon must not be negative") }
    }
}
