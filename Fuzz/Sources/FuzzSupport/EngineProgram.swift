@testable import RoasCore

/// A fuzz input read as engine options and a stream of NDJSON lines: almost every input is a
/// well-formed event sequence, so the fuzzer spends its time in the engine rather than in the parser.
///
/// Layout: 8 header bytes, then 5 bytes per line: `op`, `dt`, `id`, `who`, `amount`.
/// - header: 0: model (`& 7`; 7: `--models all`), 8 by creator and campaign, 16 no dead-letter records, 32 snapshot and
///   restore halfway, 64 RFC 3339 times, 128 live updates; 1: window (`& 7`), slide divisor (`>> 3`);
///   2: lateness, dedup horizon; 3: click and view lookbacks; 4: half-life, EUR rate; 5: start time
///   (`& 3`), 4 compare with the `--threads 2` path; 6-7: where to cut the stream into chunks.
/// - `op & 7`: 0 view, 1 click, 2 purchase, 3 refund, 4 link, 5 spend, 6 a junk line
///   (`(op >> 3) & 3`: empty, spaces, malformed JSON, unknown type), 7 a raw line of `dt & 63` bytes
///   taken from the input after the five, prefixed with `#` (always malformed). `op & 0x20` turns a
///   view into an engagement, a purchase into a sign-up and a spend into a creator profile (followers
///   from `amount & 7`, `followerCounts`).
/// - time: the previous event's time plus `dt` times a unit (`(op >> 3) & 3`: 1 ms, 1 s, 1 min, 1 h);
///   `op & 0x40` goes back instead, `op & 0xC0 == 0xC0` jumps `dt` times 30 days ahead.
/// - `id & 0x80`: an id from a pool of 16 (duplicates), else a unique one.
/// - `who`: user `who & 7`, creator `(who >> 3) & 3` (link: linked user `(who >> 3) & 7`, purchase and
///   refund: order `(who >> 3) & 7`), campaign `who >> 5` (none, null, or one of six).
/// - `amount & 15`: an amount literal (`amounts`); `(amount >> 4) & 7`: the currency (none, EUR, GBP,
///   USD, an unknown one); `amount & 0x80` on a view: the time as an RFC 3339 string.
public struct EngineProgram {
    /// One line of the stream and what the harness knows about it.
    public enum Line {
        /// A well-formed event; `micros` is its amount (0 for views, clicks and links), `currency`
        /// its index in the configuration's currency table, nil for an unknown currency.
        case event(kind: EventKind, micros: Int64, currency: Int?)
        /// A blank line (counted, never a dead letter).
        case blank
        /// A line rejected before the engine, with this reason.
        case junk(Reason)
    }

    public var configuration: EngineConfiguration
    public var lines: [Line] = []
    /// The lines, each ending in a newline.
    public var stream: [UInt8] = []
    /// Also run the path of `roas run --threads 2` (chunks, a second engine) and compare.
    public var comparesPaths: Bool
    /// Take a snapshot halfway, restore it into a new engine, and go on with that one.
    public var snapshotsMidway: Bool
    /// Track changes and emit live updates after every chunk.
    public var emitsUpdates: Bool
    /// Where the stream is cut into chunks.
    public var chunkSeed: UInt64

    public static let day: Int64 = 86_400_000
    static let windows: [Int64] = [3_600_000, 1000, 60_000, day, 500, 10_000, 7 * day, 366 * day]
    static let divisors: [Int64] = [1, 1, 2, 3, 4, 6, 10, 60]
    static let latenesses: [Int64] = [5000, 0, 1, 1000, 60_000, 3_600_000, day, 7 * day]
    static let horizons: [Int64] = [day, 0, 1, 1000, 60_000, 3_600_000, 7 * day, 30 * day]
    static let lookbacks: [Int64] = [7 * day, 0, 1, 1000, 60_000, 3_600_000, day, 30 * day]
    static let halfLives: [Int64] = [7 * day, 1, 1000, 60_000, 3_600_000, day, 30 * day, 365 * day]
    static let rates: [Double] = [1.08, 1, 0.5, 1e-6, 3, 1000, 1e-3, 0.9]
    static let starts: [Int64] = [1_795_255_200_000, 0, EventParser.maximumTime - 30 * day, 1_795_255_199_999]
    static let units: [Int64] = [1, 1000, 60_000, 3_600_000]
    /// Amount literals and their micro-units (rounded half to even).
    public static let amounts: [(String, Int64)] = [
        ("39.99", 39_990_000), ("0", 0), ("0.01", 10_000), ("1", 1_000_000), ("12.5", 12_500_000),
        ("1000", 1_000_000_000), ("0.000001", 1), ("0.0000005", 0), ("0.0000015", 2), ("1e3", 1_000_000_000),
        ("999999.999999", 999_999_999_999), ("1000000000", 1_000_000_000_000_000), ("7E-1", 700_000),
        ("1000000000000", 1_000_000_000_000_000_000), ("25.00", 25_000_000), ("1.5e2", 150_000_000),
    ]
    static let campaigns: [String?] = [nil, nil, "k0", "k1", "k2", "k3", "winter-glow", "desk-setup"]
    static let followerCounts: [Int64] = [0, 9_999, 10_000, 99_999, 100_000, 999_999, 1_000_000, 1_000_000_000_000]

    /// Reads a program; nil when the options are not a valid configuration.
    public init?(_ input: inout FuzzInput) {
        let avoidsOverflow = KnownIssues.avoids("overflow")
        let h0 = input.byte()
        let h1 = input.byte()
        let h2 = input.byte()
        let h3 = input.byte()
        let h4 = input.byte()
        let h5 = input.byte()
        self.chunkSeed = UInt64(input.uint16())
        self.comparesPaths = h5 & 4 != 0

        var eurRate = Self.rates[Int(h4 >> 3) & 7]
        if avoidsOverflow && eurRate > 3 { eurRate = 3 }
        var configuration = EngineConfiguration(
            currencies: try! CurrencyTable(base: "USD", rates: ["EUR": eurRate, "GBP": 1.27]))
        configuration.model = AttributionModel.allCases[Int(h0 & 7) % AttributionModel.allCases.count]
        if h0 & 7 == 7 {
            configuration.models = AttributionModel.allCases
            configuration.labelsModels = true
        }
        configuration.byCampaign = h0 & 0x08 != 0
        // Roll-ups by tier on a quarter of the inputs (those with a small-numbered half-life index).
        configuration.byTier = h4 & 6 == 2
        configuration.keepsDeadLetters = h0 & 0x10 == 0
        self.snapshotsMidway = h0 & 0x20 != 0 && self.comparesPaths
        let rfcTimes = h0 & 0x40 != 0
        self.emitsUpdates = h0 & 0x80 != 0
        configuration.window = Self.windows[Int(h1 & 7)]
        let divisor = Self.divisors[Int(h1 >> 3) & 7]
        configuration.slide = configuration.window % divisor == 0 ? configuration.window / divisor : configuration.window
        configuration.lateness = Self.latenesses[Int(h2 & 7)]
        configuration.dedupHorizon = Self.horizons[Int(h2 >> 3) & 7]
        configuration.clickLookback = Self.lookbacks[Int(h3 & 7)]
        configuration.viewLookback = h3 >> 3 & 7 == 0 ? Self.day : Self.lookbacks[Int(h3 >> 3) & 7]
        configuration.halfLife = Self.halfLives[Int(h4 & 7)]
        if KnownIssues.avoids("decay") {
            // Issue 16, item 8: every weight underflows when ages reach about 1074 half-lives.
            let longest = max(configuration.clickLookback, configuration.viewLookback)
            configuration.halfLife = max(configuration.halfLife, longest / 512 + 1)
        }
        guard (try? configuration.validate()) != nil else { return nil }
        self.configuration = configuration

        let currencies = configuration.currencies
        func index(_ code: String) -> Int? {
            var copy = code
            return copy.withUTF8 { currencies.index(of: UnsafeRawBufferPointer($0)) }
        }
        let currencyCodes: [String?] = [nil, nil, nil, nil, "EUR", "GBP", "USD", "JPY"]

        var time = Self.starts[Int(h5 & 3)]
        var line: [UInt8] = []
        while !input.isAtEnd && self.lines.count < 4000 {
            let op = input.byte()
            let dt = input.byte()
            let id = input.byte()
            let who = input.byte()
            let amount = input.byte()
            let kindCode = Int(op & 7)
            line.removeAll(keepingCapacity: true)
            if kindCode == 6 {
                switch (op >> 3) & 3 {
                case 0: self.lines.append(.blank)
                case 1:
                    line = Array("  \t ".utf8)
                    self.lines.append(.blank)
                case 2:
                    line = Array(#"{"type":"view","id":"m\#(self.lines.count)","ts":"#.utf8)
                    self.lines.append(.junk(.malformed))
                default:
                    line = Array(#"{"type":"tip","id":"t","ts":0}"#.utf8)
                    self.lines.append(.junk(.unknownType))
                }
                self.append(line)
                continue
            }
            if kindCode == 7 {
                line = [UInt8(ascii: "#")]
                for byte in input.bytes(Int(dt & 63)) { line.append(byte == 0x0A || byte == 0x0D ? 0x20 : byte) }
                self.lines.append(.junk(.malformed))
                self.append(line)
                continue
            }
            var kind = EventKind(rawValue: UInt8(kindCode))!
            if op & 0x20 != 0 {
                switch kind {
                case .view: kind = .engagement
                case .purchase: kind = .signup
                case .spend: kind = .creator
                default: break
                }
            }
            let unit = Self.units[Int(op >> 3) & 3]
            if op & 0xC0 == 0xC0 {
                time = time &+ Int64(dt) * 30 * Self.day
            } else if op & 0x40 != 0 {
                time = time &- Int64(dt) * unit
            } else {
                time = time &+ Int64(dt) * unit
            }
            time = min(max(time, 0), EventParser.maximumTime)
            let idText = id & 0x80 != 0 ? "p\(id & 15)" : "e\(self.lines.count)"
            let user = "u\(who & 7)"
            let creator = "@c\((who >> 3) & 3)"
            let other = (who >> 3) & 7
            let campaignCode = Int(who >> 5)
            var (amountText, micros) = Self.amounts[Int(amount & 15)]
            if avoidsOverflow && micros > 1_000_000_000 * Micros.one {
                // Issue 16, item 1: sums of amounts near 10^12 overflow Int64.
                (amountText, micros) = ("1000000000", 1_000_000_000 * Micros.one)
            }
            let currencyCode = currencyCodes[Int(amount >> 4) & 7]

            var json = #"{"type":"\#(kind.name)","id":"\#(idText)","ts":"#
            if rfcTimes && (kind == .view || amount & 0x80 != 0) {
                json += "\"" + Timestamp.format(milliseconds: time) + "\""
            } else {
                json += String(time)
            }
            var currency: Int? = 0
            var amountMicros: Int64 = 0
            switch kind {
            case .view, .click:
                json += #","user":"\#(user)","creator":"\#(creator)""#
            case .link:
                json += #","user":"\#(user)","linked":"\#(other & 1 == 0 ? "u\(other)" : "amz:\(other)")""#
            case .purchase:
                json += #","user":"\#(user)","order":"o\#(other)""#
            case .refund:
                json += #","order":"o\#(other)""#
            case .spend:
                json += #","creator":"\#(creator)""#
            case .engagement:
                json += #","user":"\#(user)","creator":"\#(creator)","action":"\#(["like", "comment", "share", "save", "follow"][Int(amount % 5)])""#
            case .signup:
                json += #","user":"\#(user)""#
                if amount & 8 != 0 { json += #","value":\#(amountText)"# }
            case .creator:
                json += #","creator":"\#(creator)","followers":\#(Self.followerCounts[Int(amount & 7)])"#
            }
            if kind == .view || kind == .click || kind == .spend || kind == .engagement {
                if campaignCode == 1 {
                    json += #","campaign":null"#
                } else if let campaign = Self.campaigns[campaignCode] {
                    json += #","campaign":"\#(campaign)""#
                }
            }
            if kind == .purchase || kind == .refund || kind == .spend {
                json += #","amount":\#(amountText)"#
                amountMicros = micros
                if let code = currencyCode {
                    json += #","currency":"\#(code)""#
                    currency = index(code)
                }
            }
            json += "}"
            self.lines.append(.event(kind: kind, micros: amountMicros, currency: currency))
            self.append(Array(json.utf8))
        }
    }

    private mutating func append(_ line: [UInt8]) {
        self.stream.append(contentsOf: line)
        self.stream.append(0x0A)
    }
}
