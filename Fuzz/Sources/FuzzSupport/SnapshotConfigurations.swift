@testable import RoasCore

/// The two engine configurations the `snapshot` target reads snapshots with (its seed corpus was
/// written with them): the defaults, and one that differs in every option that changes results.
public enum SnapshotConfigurations {
    public static var all: [EngineConfiguration] { [plain, hopping] }

    /// `roas run` defaults, with the sample's rates.
    public static var plain: EngineConfiguration {
        EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: Sample.rates))
    }

    /// Time decay, 1h windows sliding by 15m, rows by creator and campaign, short horizons.
    public static var hopping: EngineConfiguration {
        var configuration = EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.08]))
        configuration.model = .timeDecay
        configuration.window = 3_600_000
        configuration.slide = 900_000
        configuration.byCampaign = true
        configuration.lateness = 60_000
        configuration.dedupHorizon = 3_600_000
        configuration.clickLookback = 86_400_000
        configuration.viewLookback = 3_600_000
        configuration.halfLife = 3_600_000
        return configuration
    }
}
