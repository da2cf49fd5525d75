import Foundation
import RoasRuntime
import Testing

@testable import RoasCore
@testable import RoasGen

/// `roas gen`'s generator: determinism, the documented statistics, and what `roas run` makes of the
/// stream, clean and with each fault.
@Suite("Event generator")
struct GeneratorTests {
    static let secret = try! WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    /// Batch timestamps, fixed so that runs compare byte for byte.
    static let now: Int64 = 1_795_219_200

    static func configuration(_ configure: (inout GeneratorConfiguration) -> Void = { _ in }) -> GeneratorConfiguration {
        var configuration = GeneratorConfiguration()
        configure(&configuration)
        return configuration
    }

    static func generate(_ configuration: GeneratorConfiguration) throws -> (bytes: [UInt8], statistics: GeneratorStatistics) {
        var generator = try EventGenerator(configuration: configuration, now: { GeneratorTests.now })
        let bytes = generator.generateAll()
        return (bytes, generator.statistics)
    }

    /// Runs the stream through a whole `Pipeline` as `roas run` would (rates of the generator,
    /// tolerance 0) and returns its statistics and the dead-letter reasons with their counts.
    static func run(_ bytes: [UInt8], secrets: [WebhookSecret] = []) -> Statistics {
        var engine = EngineConfiguration(
            currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.08, "GBP": 1.27]))
        engine.keepsDeadLetters = false
        var pipeline = Pipeline(configuration: engine, secrets: secrets, tolerance: 0, now: { GeneratorTests.now })
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + (1 << 20))
            bytes[offset..<end].withUnsafeBytes { pipeline.consume($0) }
            pipeline.output.removeAll()
            offset = end
        }
        pipeline.finish()
        return pipeline.statistics
    }

    static func deadLetterSummary(_ statistics: Statistics) -> [Reason: Int] {
        var summary: [Reason: Int] = [:]
        for reason in Reason.allCases where statistics.deadLetters(reason) > 0 {
            summary[reason] = statistics.deadLetters(reason)
        }
        return summary
    }

    // MARK: Determinism

    @Test func sameSeedAndOptionsGiveTheSameBytes() throws {
        let configuration = Self.configuration {
            $0.events = 30_000
            $0.secret = Self.secret
            $0.batchSize = 500
            $0.lateFraction = 0.01
            $0.dirtyFraction = 0.01
            $0.badBatchFraction = 0.1
            $0.currencies = GeneratorConfiguration.defaultCurrencyMix
        }
        let first = try Self.generate(configuration)
        let second = try Self.generate(configuration)
        #expect(first.bytes == second.bytes)
        #expect(first.statistics == second.statistics)
        var other = configuration
        other.seed = 2
        #expect(try Self.generate(other).bytes != first.bytes)
    }

    @Test func chunkSizesDoNotChangeTheBytes() throws {
        let configuration = Self.configuration {
            $0.events = 20_000
            $0.dirtyFraction = 0.01
        }
        let whole = try Self.generate(configuration).bytes
        var generator = try EventGenerator(configuration: configuration, now: { GeneratorTests.now })
        var pieces: [UInt8] = []
        var calls = 0
        while generator.fill(&pieces, bytes: 1000, lines: 7) { calls += 1 }
        #expect(pieces == whole)
        #expect(calls > 2000)
        #expect(generator.statistics.lines == 20_000)
        let more = generator.fill(&pieces)
        #expect(!more)
    }

    /// `roas gen --http` posts what `fillBatches` hands it: exactly the frames `fill` writes (as a
    /// frame decoder reads them back), forged batches and dirty lines included, in any part sizes.
    @Test func fillBatchesGivesTheFramesOfTheSignedStream() throws {
        let configuration = Self.configuration {
            $0.events = 20_000
            $0.secret = Self.secret
            $0.batchSize = 300
            $0.dirtyFraction = 0.01
            $0.badBatchFraction = 0.1
        }
        let bytes = try Self.generate(configuration).bytes
        var decoder = FrameDecoder(maximumLineLength: 1 << 30, maximumBatchBytes: 1 << 30)
        var collector = BatchCollector()
        bytes.withUnsafeBytes { decoder.append($0) }
        decoder.decode(into: &collector, isFinal: true)
        #expect(collector.skippedLines == 0)
        #expect(collector.batches.count > 60)

        var generator = try EventGenerator(configuration: configuration, now: { GeneratorTests.now })
        var batches: [WebhookBatch] = []
        var parts = 0
        while true {
            let (part, more) = generator.fillBatches(bytes: 5000, lines: 500)
            batches += part
            parts += 1
            if !more { break }
        }
        #expect(parts > 30)
        #expect(batches == collector.batches)
        #expect(generator.statistics.lines == 20_000)
    }

    // MARK: The stream as roas run sees it

    @Test func cleanSignedStreamHasNoDeadLetters() throws {
        let configuration = Self.configuration {
            $0.events = 200_000
            $0.secret = Self.secret
            $0.currencies = GeneratorConfiguration.defaultCurrencyMix
        }
        let (bytes, generated) = try Self.generate(configuration)
        let statistics = Self.run(bytes, secrets: [Self.secret])
        #expect(Self.deadLetterSummary(statistics) == [:])
        #expect(statistics.balances)
        #expect(statistics.acceptedBatches == 200)
        #expect(generated.lines == 200_000)
        #expect(statistics.acceptedEventCount == 200_000)
        for kind in EventKind.allCases {
            #expect(statistics.accepted(kind) == generated.events(kind), "\(kind.name)")
        }
        #expect(generated.events(.purchase) > 0 && generated.events(.link) > 0 && generated.events(.refund) > 0)
    }

    @Test func unsignedStreamWithFullDisorderHasNoDeadLetters() throws {
        // Disorder just below the lateness: still nothing late.
        let configuration = Self.configuration {
            $0.events = 100_000
            $0.users = 20_000
            $0.disorder = 4_999
        }
        let (bytes, generated) = try Self.generate(configuration)
        let statistics = Self.run(bytes)
        #expect(Self.deadLetterSummary(statistics) == [:])
        #expect(statistics.acceptedEventCount == generated.lines)
    }

    @Test func dirtyAndLateLinesGetTheirReasons() throws {
        let configuration = Self.configuration {
            $0.events = 200_000
            $0.dirtyFraction = 0.02
            $0.lateFraction = 0.01
        }
        let (bytes, generated) = try Self.generate(configuration)
        let statistics = Self.run(bytes)
        // Exact shares: one fault at a random place in each stride of 1/fraction lines.
        #expect(abs(generated.dirtyLines - 4000) <= 1)
        #expect(abs(generated.lateLines - 2000) <= 1)
        #expect(generated.malformedLines > 1500 && generated.invalidLines > 1000 && generated.unknownTypeLines > 300)
        #expect(
            Self.deadLetterSummary(statistics) == [
                .malformed: generated.malformedLines, .invalid: generated.invalidLines,
                .unknownType: generated.unknownTypeLines, .late: generated.lateLines,
            ])
        #expect(statistics.acceptedEventCount == 200_000 - generated.dirtyLines - generated.lateLines)
    }

    @Test func badBatchesAreRejectedWhole() throws {
        let configuration = Self.configuration {
            $0.events = 200_000
            $0.secret = Self.secret
            $0.batchSize = 250
            $0.badBatchFraction = 0.05
        }
        let (bytes, generated) = try Self.generate(configuration)
        let statistics = Self.run(bytes, secrets: [Self.secret])
        #expect(generated.batches == 800)
        #expect(generated.badBatches == 40)
        #expect(statistics.rejectedBatches(.badSignature) == 40)
        #expect(generated.badBatchLines == 40 * 251)
        // Orders lost in a bad batch get no refund, so nothing else is dead-lettered.
        #expect(Self.deadLetterSummary(statistics) == [.badSignature: generated.badBatchLines])
    }

    @Test func allFaultsTogetherAddUp() throws {
        let configuration = Self.configuration {
            $0.events = 100_000
            $0.secret = Self.secret
            $0.dirtyFraction = 0.01
            $0.lateFraction = 0.01
            $0.badBatchFraction = 0.1
        }
        let (bytes, generated) = try Self.generate(configuration)
        let statistics = Self.run(bytes, secrets: [Self.secret])
        #expect(statistics.balances)
        #expect(statistics.deadLetters(.badSignature) == generated.badBatchLines)
        #expect(statistics.deadLetters(.late) > 0 && statistics.deadLetters(.late) <= generated.lateLines)
        let dirty = statistics.deadLetters(.malformed) + statistics.deadLetters(.invalid) + statistics.deadLetters(.unknownType)
        #expect(dirty > 0 && dirty <= generated.dirtyLines)
        let other = Self.deadLetterSummary(statistics).keys.filter {
            ![.badSignature, .late, .malformed, .invalid, .unknownType].contains($0)
        }
        #expect(other.isEmpty)
    }

    // MARK: Event time

    @Test func durationSpansExactlyThatEventTime() throws {
        let configuration = Self.configuration {
            $0.events = nil
            $0.duration = 2 * 3_600_000
            $0.users = 5000
        }
        let (bytes, generated) = try Self.generate(configuration)
        let stream = ScannedStream(bytes)
        let start = configuration.start
        #expect(stream.firstTime == start)
        #expect(stream.lastTime < start + 2 * 3_600_000)
        #expect(stream.lastTime > start + 2 * 3_600_000 - 10_000)
        #expect(generated.firstTime == stream.firstTime && generated.lastTime == stream.lastTime)
        // 10 events per second of event time for 5000 users.
        #expect(abs(Double(stream.lines) - 72_000) < 72_000 * 0.05)
        #expect(Self.deadLetterSummary(Self.run(bytes)) == [:])
    }

    @Test func arrivalDisorderStaysBelowTheBound() throws {
        let configuration = Self.configuration {
            $0.events = 100_000
            $0.disorder = 2000
        }
        let stream = ScannedStream(try Self.generate(configuration).bytes)
        #expect(stream.largestDisorder < 2000)
        #expect(stream.largestDisorder > 1500)
        let ordered = ScannedStream(
            try Self.generate(
                Self.configuration {
                    $0.events = 20_000
                    $0.disorder = 0
                }
            ).bytes)
        #expect(ordered.largestDisorder == 0)
    }

    @Test func idsAndOrdersAreUnique() throws {
        let stream = ScannedStream(try Self.generate(Self.configuration { $0.events = 200_000 }).bytes)
        #expect(stream.duplicateIDs == 0)
        #expect(stream.duplicateOrders == 0)
        #expect(stream.lines == 200_000)
    }

    // MARK: Statistics of a 1,000,000-event sample (the figures of docs/generator.md)

    @Test func sampleStatisticsMatchTheDocs() throws {
        let configuration = Self.configuration {
            $0.events = 1_000_000
            $0.currencies = GeneratorConfiguration.defaultCurrencyMix
        }
        let (bytes, generated) = try Self.generate(configuration)
        let stream = ScannedStream(bytes)
        #expect(stream.lines == 1_000_000)
        #expect(stream.counts["view"] == generated.events(.view))
        #expect(stream.counts["purchase"] == generated.events(.purchase))

        let views = Double(stream.counts["view", default: 0])
        let clicks = Double(stream.counts["click", default: 0])
        let purchases = Double(stream.counts["purchase", default: 0])
        let clickRate = clicks / views
        #expect(clickRate >= 0.01 && clickRate <= 0.03, "click/view \(clickRate)")
        let clickPurchaseRate = Double(generated.clickPurchases) / clicks
        #expect(clickPurchaseRate >= 0.02 && clickPurchaseRate <= 0.05, "click-through purchase/click \(clickPurchaseRate)")
        let purchaseRate = purchases / clicks
        #expect(purchaseRate >= 0.02 && purchaseRate <= 0.0625, "purchase/click \(purchaseRate)")
        let viewThrough = Double(generated.viewPurchases) / purchases
        #expect(viewThrough >= 0.1 && viewThrough <= 0.3, "view-through share \(viewThrough)")

        // Links: 30% of purchasing users, each before that user's first purchase, by amz: ids.
        let linkShare = Double(stream.links) / Double(stream.buyers)
        #expect(linkShare >= 0.28 && linkShare <= 0.32, "link share \(linkShare)")
        #expect(stream.amazonPurchasesBeforeLink == 0)
        #expect(stream.amazonPurchases > 0)

        // Refunds: 5-8% of orders, each no more than its order, after it, in its currency.
        let refundShare = Double(stream.counts["refund", default: 0]) / purchases
        #expect(refundShare >= 0.05 && refundShare <= 0.08, "refund share \(refundShare)")
        #expect(stream.badRefunds == 0)

        // Currencies 70/20/10 (stratified, so within 3 points even on a few hundred orders).
        let orders = Double(stream.currencies.values.reduce(0, +))
        for (code, share) in [("USD", 0.7), ("EUR", 0.2), ("GBP", 0.1)] {
            let measured = Double(stream.currencies[code, default: 0]) / orders
            #expect(abs(measured - share) <= 0.03, "\(code) \(measured)")
        }

        // Order values log-normal, median about 35.
        let median = stream.orderValues.sorted()[stream.orderValues.count / 2]
        #expect(median >= 31 && median <= 39, "median order \(median)")

        // Tiers: creators 60/30/8/2% exactly (every creator gets its daily fee at the start).
        #expect(stream.feeCreators == ["nano": 600, "micro": 300, "macro": 80, "mega": 20])
        // Views follow followers x Zipf weight: the bigger the tier, the more views per creator, and
        // mega and macro creators (10% of them) get most views.
        let perCreator = ["nano": 600.0, "micro": 300.0, "macro": 80.0, "mega": 20.0].mapValues { _ in 0.0 }
            .merging(stream.viewsByTier.mapValues(Double.init)) { _, views in views }
        let mean = { (tier: String, count: Double) in perCreator[tier, default: 0] / count }
        #expect(mean("mega", 20) > mean("macro", 80))
        #expect(mean("macro", 80) > mean("micro", 300))
        #expect(mean("micro", 300) > mean("nano", 600))
        let bigShare = Double(stream.viewsByTier["mega", default: 0] + stream.viewsByTier["macro", default: 0]) / views
        #expect(bigShare >= 0.6, "mega+macro view share \(bigShare)")

        // Engagements: each tier's engagements over its views fall in the tier's typical range
        // (every creator's rate is drawn in it); profiles: one per creator at the start, followers in
        // the tier the creator is named by.
        var engagementRates: [String: Double] = [:]
        for tier in GeneratorModel.Tier.allCases {
            let rate = Double(stream.engagementsByTier[tier.name, default: 0]) / Double(stream.viewsByTier[tier.name, default: 1])
            engagementRates[tier.name] = rate
            #expect(tier.engagement.contains(rate), "\(tier.name) engagement rate \(rate)")
            #expect(CreatorTier(rawValue: tier.name)!.typicalEngagementRate.contains(rate), "\(tier.name) \(rate)")
        }
        #expect(stream.profilesByTier == ["nano": 600, "micro": 300, "macro": 80, "mega": 20])
        #expect(stream.profileTierMismatches == 0)
        let signups = Double(stream.counts["signup", default: 0])
        #expect(abs(signups / clicks - GeneratorModel.signupRate) < 0.015, "sign-ups per click \(signups / clicks)")

        // About 200 events per second of event time for 100,000 users.
        let span = Double(stream.lastTime - stream.firstTime) / 1000
        print(
            "generator sample: \(stream.counts) span \(span) s; click/view \(clickRate), click-through purchase/click "
                + "\(clickPurchaseRate), purchase/click \(purchaseRate), view-through \(viewThrough), links \(stream.links) "
                + "of \(stream.buyers) buyers (\(linkShare)), refunds \(refundShare), currencies \(stream.currencies), "
                + "median order \(median), views by tier \(stream.viewsByTier), fee creators \(stream.feeCreators), "
                + "engagement rates \(engagementRates), sign-ups \(signups)")
        #expect(abs(span - 5000) < 100, "span \(span) s")
    }
}

/// Reads a generated (unsigned) stream back with plain byte scanning.
struct ScannedStream {
    var lines = 0
    var counts: [String: Int] = [:]
    var firstTime: Int64 = .max
    var lastTime: Int64 = .min
    /// Largest (greatest ts seen before a line) - (its ts).
    var largestDisorder: Int64 = 0
    var duplicateIDs = 0
    var duplicateOrders = 0
    var links = 0
    var buyers = 0
    var amazonPurchases = 0
    var amazonPurchasesBeforeLink = 0
    var badRefunds = 0
    var currencies: [String: Int] = [:]
    var orderValues: [Double] = []
    var feeCreators: [String: Int] = [:]
    var viewsByTier: [String: Int] = [:]
    var engagementsByTier: [String: Int] = [:]
    /// Creator profiles by the tier of the creator's name, and those whose followers give another tier.
    var profilesByTier: [String: Int] = [:]
    var profileTierMismatches = 0

    /// The tier a generated creator's name starts with: @nano_0042.
    static func tierOfName(_ line: UnsafeRawBufferPointer) -> String {
        let at = memchr(line.baseAddress!, 0x40, line.count)!
        let offset = line.baseAddress!.distance(to: UnsafeRawPointer(at))
        switch (line[offset + 1], line[offset + 2]) {
        case (UInt8(ascii: "n"), _): return "nano"
        case (_, UInt8(ascii: "i")): return "micro"
        case (_, UInt8(ascii: "a")): return "macro"
        default: return "mega"
        }
    }

    init(_ bytes: [UInt8]) {
        var ids = Set<[UInt8]>()
        var orders: [String: (time: Int64, amount: Double, currency: String)] = [:]
        var linkTimes: [String: Int64] = [:]
        var purchasers = Set<String>()
        var feeCreators = Set<String>()
        var pendingRefunds: [(order: String, time: Int64, amount: Double, currency: String)] = []
        var newest: Int64 = .min
        bytes.withUnsafeBytes { buffer in
            let base = buffer.baseAddress!
            var start = 0
            while start < buffer.count {
                let newline = memchr(base + start, 0x0A, buffer.count - start)!
                let end = base.distance(to: UnsafeRawPointer(newline))
                let line = UnsafeRawBufferPointer(rebasing: buffer[start..<end])
                start = end + 1
                self.lines += 1
                let type = ScannedStream.string(line, "type")!
                self.counts[type, default: 0] += 1
                let time = Int64(ScannedStream.number(line, "ts")!)!
                self.firstTime = min(self.firstTime, time)
                self.lastTime = max(self.lastTime, time)
                if newest != .min { self.largestDisorder = max(self.largestDisorder, newest - time) }
                newest = max(newest, time)
                if !ids.insert(Array(ScannedStream.string(line, "id")!.utf8)).inserted { self.duplicateIDs += 1 }
                switch type {
                case "view":
                    self.viewsByTier[ScannedStream.tierOfName(line), default: 0] += 1
                case "engagement":
                    self.engagementsByTier[ScannedStream.tierOfName(line), default: 0] += 1
                case "creator":
                    let tier = ScannedStream.tierOfName(line)
                    self.profilesByTier[tier, default: 0] += 1
                    let followers = Int64(ScannedStream.number(line, "followers")!)!
                    if CreatorTier(followers: followers)?.rawValue != tier { self.profileTierMismatches += 1 }
                case "spend":
                    let creator = ScannedStream.string(line, "creator")!
                    if time % 86_400_000 == 0 && feeCreators.insert(creator).inserted {
                        let tier = String(creator.dropFirst().prefix { $0 != "_" })
                        self.feeCreators[tier, default: 0] += 1
                    }
                case "link":
                    linkTimes[ScannedStream.string(line, "linked")!] = time
                    self.links += 1
                case "purchase":
                    let user = ScannedStream.string(line, "user")!
                    purchasers.insert(user)
                    if user.hasPrefix("amz:") {
                        self.amazonPurchases += 1
                        if (linkTimes[user] ?? .max) > time { self.amazonPurchasesBeforeLink += 1 }
                    }
                    let order = ScannedStream.string(line, "order")!
                    let amount = Double(ScannedStream.number(line, "amount")!)!
                    let currency = ScannedStream.string(line, "currency")!
                    if orders[order] != nil { self.duplicateOrders += 1 }
                    orders[order] = (time, amount, currency)
                    self.currencies[currency, default: 0] += 1
                    self.orderValues.append(amount)
                case "refund":
                    pendingRefunds.append(
                        (
                            ScannedStream.string(line, "order")!, time, Double(ScannedStream.number(line, "amount")!)!,
                            ScannedStream.string(line, "currency")!
                        ))
                default:
                    break
                }
            }
        }
        self.buyers = purchasers.count
        for refund in pendingRefunds {
            guard let order = orders[refund.order], order.time < refund.time, refund.amount <= order.amount,
                refund.amount > 0, order.currency == refund.currency
            else {
                self.badRefunds += 1
                continue
            }
        }
    }

    /// The value of `"key":"…"` (no escapes in generated lines).
    static func string(_ line: UnsafeRawBufferPointer, _ key: String) -> String? {
        guard let start = Self.valueStart(line, key), line[start] == UInt8(ascii: "\"") else { return nil }
        var end = start + 1
        while line[end] != UInt8(ascii: "\"") { end += 1 }
        return String(decoding: line[(start + 1)..<end], as: UTF8.self)
    }

    /// The text of a number value `"key":123.45`.
    static func number(_ line: UnsafeRawBufferPointer, _ key: String) -> String? {
        guard let start = Self.valueStart(line, key) else { return nil }
        var end = start
        while end < line.count && line[end] != UInt8(ascii: ",") && line[end] != UInt8(ascii: "}") { end += 1 }
        return String(decoding: line[start..<end], as: UTF8.self)
    }

    static func valueStart(_ line: UnsafeRawBufferPointer, _ key: String) -> Int? {
        let needle = Array("\"\(key)\":".utf8)
        guard line.count >= needle.count else { return nil }
        // Generated lines start {"type":"…","id":"…","ts":…, so the common keys are found at once.
        var index = 0
        while index <= line.count - needle.count {
            if line[index] == needle[0] && line[index + 1] == needle[1] {
                var matched = true
                for offset in 2..<needle.count where line[index + offset] != needle[offset] {
                    matched = false
                    break
                }
                if matched { return index + needle.count }
            }
            index += 1
        }
        return nil
    }
}

/// Collects the signed batch frames of a stream (the frames `roas gen --secret` writes).
struct BatchCollector: FrameHandler {
    var batches: [WebhookBatch] = []
    /// Lines outside any frame, or frames the decoder rejected: nothing a webhook can carry.
    var skippedLines = 0

    mutating func handle(_ item: FrameItem) {
        switch item {
        case .batch(let header, _, let payload, _):
            self.batches.append(
                WebhookBatch(id: header.id, timestamp: header.timestamp, signature: header.signature, payload: Array(payload)))
        case .line, .tooLong, .rejected:
            self.skippedLines += 1
        case .blank:
            break
        }
    }
}
