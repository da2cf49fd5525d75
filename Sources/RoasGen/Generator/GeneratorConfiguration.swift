import RoasCore

/// What `roas gen` generates: sizes, time span, faults and framing. Every figure of time is in
/// milliseconds; see docs/generator.md for the model behind the stream.
public struct GeneratorConfiguration: Sendable {
    /// The seed: the same seed and configuration give the same bytes (batch timestamps aside, which
    /// come from the clock handed to the generator).
    public var seed: UInt64 = 1
    /// Number of event lines to write (faulty lines included, batch headers not); nil with `duration`.
    public var events: Int? = 1_000_000
    /// Span of event time to cover instead of a number of events.
    public var duration: Int64? = nil
    public var creators = 1000
    public var users = 100_000
    /// Event time of the stream's start, epoch milliseconds (default 2026-11-21T00:00:00Z).
    public var start: Int64 = 1_795_219_200_000
    /// Arrival order differs from event time by less than this.
    public var disorder: Int64 = 2000
    /// The lateness of the `roas run` the stream is meant for; late events are sent later than it.
    public var lateness: Int64 = 5000
    /// Share of event lines that are sent too late (dead-lettered `late`).
    public var lateFraction = 0.0
    /// Share of event lines that are malformed or invalid (`malformed`, `invalid`, `unknown_type`).
    public var dirtyFraction = 0.0
    /// With a secret, events are wrapped in signed batch frames.
    public var secret: WebhookSecret? = nil
    /// Event lines per batch frame.
    public var batchSize = 1000
    /// Share of batches signed with a wrong key (dead-lettered `bad_signature`).
    public var badBatchFraction = 0.0
    /// Currencies of orders and their weights; USD only by default, so that `roas run` needs no rates.
    public var currencies: [Currency] = [Currency(.usd, weight: 1)]

    public init() {}

    /// The currencies the generator can price orders in, with their rates to USD.
    public enum CurrencyCode: String, CaseIterable, Sendable {
        case usd = "USD"
        case eur = "EUR"
        case gbp = "GBP"

        /// USD per unit (the rates file `--rates-file` writes).
        public var rate: Double {
            switch self {
            case .usd: 1
            case .eur: 1.08
            case .gbp: 1.27
            }
        }
    }

    public struct Currency: Sendable, Equatable {
        public var code: CurrencyCode
        public var weight: Double

        public init(_ code: CurrencyCode, weight: Double) {
            self.code = code
            self.weight = weight
        }
    }

    /// The mix used with a rates file: 70% USD, 20% EUR, 10% GBP.
    public static let defaultCurrencyMix: [Currency] = [
        Currency(.usd, weight: 70), Currency(.eur, weight: 20), Currency(.gbp, weight: 10),
    ]

    /// Parses `USD:70,EUR:20,GBP:10` (weights need not add up to 100).
    public static func currencies(_ text: String) throws -> [Currency] {
        var mix: [Currency] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard let code = CurrencyCode(rawValue: String(pieces[0])) else {
                throw RoasError(.options, "--currencies: '\(pieces[0])' is not one of USD, EUR, GBP")
            }
            var weight = 1.0
            if pieces.count == 2 {
                guard let value = Double(pieces[1]), value.isFinite, value >= 0 else {
                    throw RoasError(.options, "--currencies: the weight of \(code.rawValue) must be a number >= 0")
                }
                weight = value
            } else if pieces.count > 2 {
                throw RoasError(.options, "--currencies must look like USD:70,EUR:20,GBP:10")
            }
            guard !mix.contains(where: { $0.code == code }) else {
                throw RoasError(.options, "--currencies names \(code.rawValue) twice")
            }
            mix.append(Currency(code, weight: weight))
        }
        guard mix.contains(where: { $0.weight > 0 }) else {
            throw RoasError(.options, "--currencies needs a positive weight")
        }
        return mix
    }

    /// The rates file matching the currencies: `{"EUR":1.08,"GBP":1.27}` (USD is the base).
    public var ratesJSON: String {
        let entries = CurrencyCode.allCases.filter { $0 != .usd }.map { "\"\($0.rawValue)\":\($0.rate)" }
        return "{" + entries.joined(separator: ",") + "}\n"
    }

    /// Aggregate traffic in events per second of event time: 0.002 per user (about 170 events per
    /// user per day), at least 1; 200 events/s for the default 100,000 users.
    public var eventsPerSecond: Double {
        if let duration, let events, duration > 0 { return Double(events) * 1000 / Double(duration) }
        return max(1, Double(self.users) * GeneratorModel.eventsPerUserSecond)
    }

    /// The span of event time the stream covers: `duration`, or the expected span of `events`.
    public var expectedSpan: Int64 {
        if let duration { return duration }
        return Int64((Double(self.events ?? 0) / self.eventsPerSecond * 1000).rounded())
    }

    /// - Throws: `RoasError` naming the option when a figure is out of range.
    public func validate() throws {
        guard (self.events == nil) != (self.duration == nil) else {
            throw RoasError(.options, "give either --events or --duration")
        }
        if let events = self.events, events < 0 { throw RoasError(.options, "--events must not be negative") }
        if let duration = self.duration, duration <= 0 { throw RoasError(.options, "--duration must be positive") }
        guard self.creators >= 1, self.creators <= 10_000_000 else {
            throw RoasError(.options, "--creators must be between 1 and 10000000")
        }
        guard self.users >= 1, self.users <= 1_000_000_000 else {
            throw RoasError(.options, "--users must be between 1 and 1000000000")
        }
        guard self.start >= 0, self.start < 200_000_000_000_000 else {
            throw RoasError(.options, "--start must fall between 1970 and 8000")
        }
        guard self.disorder >= 0 else { throw RoasError(.options, "--disorder must not be negative") }
        guard self.disorder < self.lateness || (self.disorder == 0 && self.lateness == 0) else {
            throw RoasError(
                .options,
                "--disorder must be below --lateness (\(DurationText.text(self.lateness))), or clean events would be late")
        }
        for (value, name) in [
            (self.lateFraction, "--late-fraction"), (self.dirtyFraction, "--dirty-fraction"),
            (self.badBatchFraction, "--bad-batch-fraction"),
        ] {
            guard value.isFinite, value >= 0, value <= 1 else { throw RoasError(.options, "\(name) must be between 0 and 1") }
        }
        guard self.lateFraction + self.dirtyFraction <= 1 else {
            throw RoasError(.options, "--late-fraction + --dirty-fraction must be at most 1")
        }
        guard self.batchSize >= 1 else { throw RoasError(.options, "--batch-size must be positive") }
        if self.badBatchFraction > 0 && self.secret == nil {
            throw RoasError(.options, "--bad-batch-fraction needs --secret (only batches can be signed badly)")
        }
        guard self.currencies.contains(where: { $0.weight > 0 }) else {
            throw RoasError(.options, "--currencies needs a positive weight")
        }
    }
}
