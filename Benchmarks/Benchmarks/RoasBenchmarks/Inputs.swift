// Synthetic inputs for the benchmarks. Everything is generated from fixed seeds, so every run (and
// every machine) measures the same bytes, and each input is a lazily built `static let`, so a
// benchmark process only builds what its benchmark reads.

import RoasCore

enum Inputs {
    /// Bytes handed to the decoder or pipeline at a time, as read(2) from a pipe returns them.
    static let chunkSize = 1 << 16
    /// 2026-11-21T00:00:00Z, epoch milliseconds: the first event time of every stream.
    static let start: Int64 = 1_795_219_200_000
    /// Wall-clock seconds for batch timestamps and `Pipeline(now:)` (tolerance 0 ignores it).
    static let now: Int64 = 1_795_305_600
    static let currencies = try! CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27])
    static let secret = try! WebhookSecret("whsec_cm9hcy1iZW5jaG1hcmstaG1hYy1rZXktMDEyMzQ1Njc4OQ==")

    // MARK: framing

    static let framingLines = 10_000
    /// 10,000 bare event lines of every type (1.16 MB).
    static let framingInput: [UInt8] = {
        var writer = EventWriter(seed: 1)
        return Array(writer.commerce(count: framingLines, over: 86_400_000).joined(separator: "\n").utf8) + [0x0A]
    }()

    // MARK: parse

    static let parseViews = parseSet(.view, seed: 11)
    static let parseClicks = parseSet(.click, seed: 12)
    static let parsePurchases = parseSet(.purchase, seed: 13)
    static let parseSpends = parseSet(.spend, seed: 14)

    /// 1,000 lines of one type.
    static func parseLines(_ kind: EventKind) -> LineSet {
        switch kind {
        case .view: parseViews
        case .click: parseClicks
        case .purchase: parsePurchases
        case .spend: parseSpends
        default: preconditionFailure("no parse input for \(kind.name)")
        }
    }

    private static func parseSet(_ kind: EventKind, seed: UInt64) -> LineSet {
        var writer = EventWriter(seed: seed)
        let lines = (0..<1_000).map { index in
            writer.single(kind, time: start + Int64(index) * 86_400)
        }
        return LineSet(lines)
    }

    // MARK: hmac

    static let hmacBatches: [Int: SignedBatch] = Dictionary(
        uniqueKeysWithValues: [1 << 10, 1 << 16, 1 << 20].map { ($0, signedBatch(size: $0)) })

    static func hmacBatch(size: Int) -> SignedBatch { hmacBatches[size]! }

    /// One batch whose payload is exactly `size` bytes: event lines, then one blank line of spaces
    /// to make up the size.
    private static func signedBatch(size: Int) -> SignedBatch {
        var writer = EventWriter(seed: UInt64(size))
        var payload: [UInt8] = []
        payload.reserveCapacity(size)
        var time = start
        while true {
            let line = Array(writer.single(.view, time: time).utf8) + [0x0A]
            guard payload.count + line.count <= size else { break }
            payload += line
            time += 1000
        }
        if payload.count < size {
            payload += [UInt8](repeating: 0x20, count: size - payload.count - 1) + [0x0A]
        }
        precondition(payload.count == size)
        let id = "hmac-\(size)"
        let signature = payload.withUnsafeBytes {
            WebhookSigner(secrets: [secret]).signature(id: id, timestamp: now, body: $0)
        }
        return SignedBatch(header: BatchHeader(id: id, timestamp: now, signature: signature, bytes: size), payload: payload)
    }

    // MARK: attribution

    /// 1,000 users over about an hour: each views and clicks four creators, buys, sees two more
    /// touches and buys again (purchases with 4 and 6 qualifying touches), plus hourly spend.
    static let attributionStream: EventStream = {
        var writer = EventWriter(seed: 21)
        var timed: [(time: Int64, line: String)] = []
        for user in 0..<1_000 {
            let session = start + Int64(user) * 3_000
            let kinds: [EventKind] = [.view, .view, .click, .view, .purchase, .view, .click, .purchase]
            for (step, kind) in kinds.enumerated() {
                let time = session + Int64(step) * 20_000
                timed.append((time, writer.single(kind, time: time, user: user)))
            }
        }
        for hour in 0..<2 {
            let time = start + Int64(hour) * 3_600_000
            for creator in 0..<EventWriter.creatorCount {
                timed.append((time, writer.single(.spend, time: time, creator: creator)))
            }
        }
        // Stable, so equal times keep their generation order.
        let lines = timed.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }
            .map(\.element.line)
        return EventStream(lines: lines)
    }()

    // MARK: windows

    /// 100,000 views (90%) and spends (10%) spread evenly over three days.
    static let windowStream: EventStream = {
        var writer = EventWriter(seed: 31)
        let step: Int64 = 3 * 86_400_000 / 100_000
        let lines = (0..<100_000).map { index in
            let time = start + Int64(index) * step + Int64(writer.random.below(Int(step)))
            return writer.single(writer.random.chance(10) ? .spend : .view, time: time)
        }
        return EventStream(lines: lines)
    }()

    /// Spend from 5,000 creators every hour for two days, about four campaigns each: closing each
    /// hourly window sorts its 20,000-odd rows by creator and campaign, which is most of what closing
    /// windows costs a stream of many creators.
    static let manyCreatorsStream: EventStream = {
        var writer = EventWriter(seed: 51)
        var lines: [String] = []
        for hour in 0..<48 {
            for creator in 0..<5_000 {
                for _ in 0..<4 {
                    let time = start + Int64(hour) * 3_600_000 + Int64(creator)
                    lines.append(writer.single(.spend, time: time, creator: creator))
                }
            }
        }
        return EventStream(lines: lines)
    }()

    // MARK: pipeline

    /// 100,000 events of every type over a day, in 100 batches of 1,000 signed with `secret`.
    static let signedStream: EventStream = {
        var writer = EventWriter(seed: 41)
        let events = writer.commerce(count: 100_000, over: 86_400_000)
        let signer = WebhookSigner(secrets: [secret])
        var bytes: [UInt8] = []
        var lines = 0
        for batch in 0..<(events.count / 1_000) {
            let payload = Array(events[(batch * 1_000)..<((batch + 1) * 1_000)].map { $0 + "\n" }.joined().utf8)
            let id = "batch-\(batch + 1)"
            let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: now, body: $0) }
            bytes += Array((BatchHeader(id: id, timestamp: now, signature: signature, bytes: payload.count).line + "\n").utf8)
            bytes += payload
            lines += 1 + 1_000
        }
        return EventStream(bytes: bytes, lines: lines, events: events.count)
    }()
}

/// Lines laid end to end in one buffer, with where each one is.
struct LineSet: Sendable {
    let bytes: [UInt8]
    let ranges: [Range<Int>]

    init(_ lines: [String]) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for line in lines {
            let start = bytes.count
            bytes += Array(line.utf8)
            ranges.append(start..<bytes.count)
        }
        self.bytes = bytes
        self.ranges = ranges
    }
}

/// An NDJSON stream held in memory.
struct EventStream: Sendable {
    let bytes: [UInt8]
    /// Physical lines, batch headers included.
    let lines: Int
    /// Event lines, all of which the pipeline accepts.
    let events: Int

    init(bytes: [UInt8], lines: Int, events: Int) {
        self.bytes = bytes
        self.lines = lines
        self.events = events
    }

    /// Bare event lines.
    init(lines: [String]) {
        self.init(bytes: Array((lines.joined(separator: "\n") + "\n").utf8), lines: lines.count, events: lines.count)
    }
}

struct SignedBatch: Sendable {
    let header: BatchHeader
    let payload: [UInt8]
}

/// SplitMix64: small, fast and the same everywhere.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(self.next() % UInt64(bound)) }

    mutating func chance(_ percent: Int) -> Bool { self.below(100) < percent }
}

/// Writes event lines as a TikTok-Shop-like source would: `ts` half as epoch milliseconds, half as
/// RFC 3339; optional campaigns and currencies sometimes absent; one creator in 20 with a JSON
/// escape in its handle.
struct EventWriter {
    static let userCount = 5_000
    static let creatorCount = 40
    static let campaignCount = 8

    var random: SplitMix64
    private var serial = 0
    private var linked = [Bool](repeating: false, count: EventWriter.userCount)
    private var refundable: [(order: Int, cents: Int, currency: String?)] = []

    init(seed: UInt64) {
        self.random = SplitMix64(state: seed)
    }

    /// `count` events of every type over `span` milliseconds, strictly increasing in time: 55%
    /// views, 20% clicks, 10% spend, 10% purchases, 2% refunds of earlier orders, 3% identity links.
    mutating func commerce(count: Int, over span: Int64) -> [String] {
        let step = span / Int64(count)
        return (0..<count).map { index in
            let time = Inputs.start + Int64(index) * step + Int64(self.random.below(Int(step)))
            let roll = self.random.below(100)
            let kind: EventKind =
                switch roll {
                case 0..<55: .view
                case 55..<75: .click
                case 75..<85: .spend
                case 85..<95: .purchase
                case 95..<97: self.refundable.isEmpty ? .view : .refund
                default: .link
                }
            return self.single(kind, time: time)
        }
    }

    /// One event line of `kind`; user and creator are random unless given.
    mutating func single(_ kind: EventKind, time: Int64, user: Int? = nil, creator: Int? = nil) -> String {
        self.serial += 1
        let id = "\(EventWriter.prefix(kind))-\(self.serial)"
        let ts = self.random.chance(50) ? "\"\(Timestamp.format(milliseconds: time))\"" : "\(time)"
        let head = "{\"type\":\"\(kind.name)\",\"id\":\"\(id)\",\"ts\":\(ts)"
        let user = user ?? self.random.below(EventWriter.userCount)
        switch kind {
        case .view, .click:
            return head + ",\"user\":\"tt:\(user)\",\"creator\":\(self.creator(creator))\(self.campaign())}"
        case .spend:
            return head + ",\"creator\":\(self.creator(creator))\(self.campaign()),\"amount\":\(self.amount(2_000...90_000))\(self.currency().text)}"
        case .purchase:
            let buyer = self.linked[user] && self.random.chance(50) ? "amz:A\(user)" : "tt:\(user)"
            let cents = 500 + self.random.below(19_500)
            let currency = self.currency()
            self.refundable.append((self.serial, cents, currency.code))
            return head + ",\"user\":\"\(buyer)\",\"order\":\"o-\(self.serial)\",\"amount\":\(EventWriter.decimal(cents))\(currency.text)}"
        case .refund:
            // Each order is refunded once, by a quarter of its amount, in its own currency.
            self.refundable.swapAt(self.random.below(self.refundable.count), self.refundable.count - 1)
            let refund = self.refundable.removeLast()
            let currency = refund.currency.map { ",\"currency\":\"\($0)\"" } ?? ""
            return head + ",\"order\":\"o-\(refund.order)\",\"amount\":\(EventWriter.decimal(max(1, refund.cents / 4)))\(currency)}"
        case .link:
            self.linked[user] = true
            return head + ",\"user\":\"tt:\(user)\",\"linked\":\"amz:A\(user)\"}"
        case .engagement:
            let action = ["like", "comment", "share", "save"][self.random.below(4)]
            return head + ",\"user\":\"tt:\(user)\",\"creator\":\(self.creator(creator))\(self.campaign()),\"action\":\"\(action)\"}"
        case .signup:
            return head + ",\"user\":\"tt:\(user)\"}"
        case .creator:
            let platform = ["tiktok", "instagram", "youtube"][self.random.below(3)]
            return head + ",\"creator\":\(self.creator(creator)),\"followers\":\(1_000 + self.random.below(2_000_000)),\"platform\":\"\(platform)\"}"
        }
    }

    private static func prefix(_ kind: EventKind) -> String {
        switch kind {
        case .view: "v"
        case .click: "c"
        case .purchase: "p"
        case .refund: "r"
        case .link: "l"
        case .spend: "s"
        case .engagement: "e"
        case .signup: "g"
        case .creator: "cp"
        }
    }

    private mutating func creator(_ given: Int?) -> String {
        let creator = given ?? self.random.below(EventWriter.creatorCount)
        return creator % 20 == 7 ? "\"@caf\\u00e9.\(creator)\"" : "\"@creator.\(creator)\""
    }

    /// `,"campaign":…` four times in five, sometimes as `null`, else nothing.
    private mutating func campaign() -> String {
        switch self.random.below(10) {
        case 0: ""
        case 1: ",\"campaign\":null"
        default: ",\"campaign\":\"campaign-\(self.random.below(EventWriter.campaignCount))\""
        }
    }

    private mutating func currency() -> (code: String?, text: String) {
        switch self.random.below(10) {
        case 0: ("EUR", ",\"currency\":\"EUR\"")
        case 1: ("GBP", ",\"currency\":\"GBP\"")
        default: (nil, "")
        }
    }

    private mutating func amount(_ cents: ClosedRange<Int>) -> String {
        EventWriter.decimal(cents.lowerBound + self.random.below(cents.count))
    }

    /// `12.34` (or `12` for whole amounts).
    static func decimal(_ cents: Int) -> String {
        let fraction = cents % 100
        if fraction == 0 { return "\(cents / 100)" }
        return "\(cents / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
