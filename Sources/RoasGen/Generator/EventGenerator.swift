import HeapModule
import RoasCore
import RoasRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a generator has written so far.
public struct GeneratorStatistics: Sendable, Equatable {
    /// Event lines written, faulty ones included (batch headers not).
    public var lines = 0
    /// Bytes handed to the caller.
    public var bytes = 0
    /// Clean events written, by `EventKind.rawValue`.
    public var events = [Int](repeating: 0, count: EventKind.allCases.count)
    /// Purchases after a click, and view-through purchases (after a view only).
    public var clickPurchases = 0
    public var viewPurchases = 0
    public var fullRefunds = 0
    /// Orders by currency (`GeneratorConfiguration.CurrencyCode.allCases` order).
    public var orders = [Int](repeating: 0, count: GeneratorConfiguration.CurrencyCode.allCases.count)
    /// Views by creator tier (`GeneratorModel.Tier.rawValue`).
    public var viewsByTier = [Int](repeating: 0, count: GeneratorModel.Tier.allCases.count)
    /// Engagements by creator tier, likewise: over `viewsByTier`, each tier's engagement rate.
    public var engagementsByTier = [Int](repeating: 0, count: GeneratorModel.Tier.allCases.count)
    /// Daily fees and CPM spends.
    public var dailyFees = 0
    public var cpmSpends = 0
    /// Faulty lines by the reason `roas run` gives them: malformed, invalid, unknown_type.
    public var malformedLines = 0
    public var invalidLines = 0
    public var unknownTypeLines = 0
    public var lateLines = 0
    public var batches = 0
    public var badBatches = 0
    /// Lines of bad batches: their headers and payload lines.
    public var badBatchLines = 0
    /// Earliest and latest event time of the clean events.
    public var firstTime: Int64? = nil
    public var lastTime: Int64? = nil

    public init() {}

    public var dirtyLines: Int { self.malformedLines + self.invalidLines + self.unknownTypeLines }
    public func events(_ kind: EventKind) -> Int { self.events[Int(kind.rawValue)] }
}

/// A realistic, seeded creator-commerce event stream (see docs/generator.md).
///
/// Creators in four tiers with Zipf-like popularity get views at a steady aggregate rate; views lead
/// to clicks, clicks (and, less often, views alone) to purchases, some users link a TikTok identity
/// to an Amazon one before their first purchase, some orders are refunded days later, and creators
/// are paid a daily fee and CPM spend. Events are planned in event time, then released in an arrival
/// order that differs from event time by less than the disorder. Faults (dirty lines, late events,
/// badly signed batches) are added at exact shares. Call `fill(_:)` until it returns false.
public struct EventGenerator {
    public let configuration: GeneratorConfiguration
    public private(set) var statistics = GeneratorStatistics()

    private struct Creator {
        var tier: GeneratorModel.Tier
        var clickRate: Double
        var purchaseRate: Double
        var viewThroughRate: Double
        var engagement: Double
        /// `"creator":"@micro_0042","followers":12345,"platform":"tiktok"`: the body of its profile.
        var profile: [UInt8]
        /// `"creator":"@micro_0042","campaign":"cmp-07"` (campaign optional).
    }

    private let creators: [Creator]
    /// The creator fields of every creator, back to back; creator i is at offsets[i]..<offsets[i+1].
    private let creatorBytes: [UInt8]
    private let creatorOffsets: [Int32]
    private let popularity: AliasTable
    private var creatorViews: [Int32]
    /// Per user: 0 not yet bought, 1 buys on TikTok, 2 linked to Amazon.
    private var userStates: [UInt8]
    private let userCount: Double
    private let amazonSalt: UInt64

    private var traffic: GeneratorRandom
    private var arrivals: GeneratorRandom
    private var faults: GeneratorRandom
    private var amazon: Quota
    private var refunds: Quota
    private var refundRandom: GeneratorRandom
    /// Engagements and sign-ups: their own stream, so they do not move the other draws.
    private var scoreboard: GeneratorRandom
    private var actionChoice: StratifiedChoice
    private var currencyChoice: StratifiedChoice
    private let currencyCodes: [GeneratorConfiguration.CurrencyCode]
    private var dirty: Quota
    private var late: Quota
    private var lateOwed = 0
    private var badBatches: Quota

    private var scheduled = Heap<PlannedEvent>()
    private var arriving: ArrivalQueue
    private var sequence: UInt64 = 0
    private var clock: Int64
    private var nextView: Double
    private let viewGap: Double
    private var nextDay: Int64
    private let end: Int64?
    /// Follow-ups (clicks, checkouts, refunds) are planned before this: the end of `duration`, or
    /// 99% of the expected span of `events`.
    private let refundLimit: Int64
    private var nextOrder: Int64 = 1
    private var generationEnded = false
    public private(set) var isFinished = false
    private var newestAccepted: Int64? = nil
    private var newestWritten: Int64

    private let signer: WebhookSigner?
    private let forger: WebhookSigner?
    private let now: () -> Int64
    /// The caller's buffer while `fill` runs: lines (no secret) or whole frames (with a secret).
    private var out: [UInt8] = []
    /// While `fillBatches` runs: each batch closed, with where its payload sits in `out`.
    private var closedBatches: [(header: BatchHeader, payload: Range<Int>)]? = nil
    /// The payload of the open batch (with a secret).
    private var payload: [UInt8] = []
    private var batchLines = 0
    private var batchIsBad = false
    private var scratch: [UInt8] = []

    /// - Parameter now: wall-clock seconds since the epoch, for batch timestamps.
    public init(configuration: GeneratorConfiguration, now: @escaping () -> Int64 = SystemClock.wallClockSeconds) throws {
        try configuration.validate()
        self.configuration = configuration
        self.now = now
        let seed = configuration.seed
        var world = GeneratorRandom(seed: seed, stream: 1)
        self.traffic = GeneratorRandom(seed: seed, stream: 2)
        self.arrivals = GeneratorRandom(seed: seed, stream: 3)
        self.faults = GeneratorRandom(seed: seed, stream: 4)
        self.refundRandom = GeneratorRandom(seed: seed, stream: 5)
        self.scoreboard = GeneratorRandom(seed: seed, stream: 6)
        self.actionChoice = StratifiedChoice(weights: GeneratorModel.actions.map(\.weight))
        self.amazonSalt = world.next()

        // Creators: exact tier counts (largest remainder), shuffled over the indices.
        let count = configuration.creators
        var tiers: [GeneratorModel.Tier] = []
        let exact = GeneratorModel.Tier.allCases.map { $0.share * Double(count) }
        var counts = exact.map { Int($0) }
        let left = count - counts.reduce(0, +)
        for index in exact.indices.sorted(by: { exact[$0] - Double(counts[$0]) > exact[$1] - Double(counts[$1]) }).prefix(left) {
            counts[index] += 1
        }
        for tier in GeneratorModel.Tier.allCases { tiers += repeatElement(tier, count: counts[tier.rawValue]) }
        for index in stride(from: count - 1, to: 0, by: -1) { tiers.swapAt(index, world.below(index + 1)) }
        var ranks = Array(1...count)
        for index in stride(from: count - 1, to: 0, by: -1) { ranks.swapAt(index, world.below(index + 1)) }
        let width = max(4, String(count - 1).count)
        let campaignCount = max(1, count / GeneratorModel.creatorsPerCampaign)
        let campaignWidth = max(2, String(campaignCount).count)
        let lowEngagement = log(GeneratorModel.Tier.mega.engagement.lowerBound)
        let highEngagement = log(GeneratorModel.Tier.nano.engagement.upperBound)
        var creators: [Creator] = []
        var creatorBytes: [UInt8] = []
        var creatorOffsets: [Int32] = [0]
        var weights: [Double] = []
        creators.reserveCapacity(count)
        for index in 0..<count {
            let tier = tiers[index]
            let followers = world.logUniform(tier.followers.lowerBound, tier.followers.upperBound)
            let engagement = world.uniform(tier.engagement.lowerBound, tier.engagement.upperBound)
            let position = (log(engagement) - lowEngagement) / (highEngagement - lowEngagement)
            func placed(_ range: ClosedRange<Double>, _ draw: Double) -> Double {
                let weight = GeneratorModel.engagementWeight
                return range.lowerBound + (range.upperBound - range.lowerBound) * (weight * position + (1 - weight) * draw)
            }
            let clickRate = placed(GeneratorModel.clickRate, world.unit())
            let purchaseRate = placed(GeneratorModel.purchaseRate, world.unit())
            let name = "\"creator\":\"@\(tier.name)_\(GeneratorBytes.padded(index, width: width))\""
            creatorBytes += Array(name.utf8)
            // Within the tier's own range: a drawn upper bound belongs to the next tier.
            let count = min(Int64(followers), Int64(tier.followers.upperBound) - 1)
            let platform = GeneratorModel.platforms[index % GeneratorModel.platforms.count]
            let profile = Array("\(name),\"followers\":\(count),\"platform\":\"\(platform)\"".utf8)
            if world.chance(GeneratorModel.campaignShare) {
                let campaign = world.below(campaignCount) + 1
                creatorBytes += Array(",\"campaign\":\"cmp-\(GeneratorBytes.padded(campaign, width: campaignWidth))\"".utf8)
            }
            creators.append(
                Creator(
                    tier: tier, clickRate: clickRate, purchaseRate: purchaseRate,
                    viewThroughRate: clickRate * purchaseRate * GeneratorModel.viewThroughFactor,
                    engagement: engagement, profile: profile))
            creatorOffsets.append(Int32(creatorBytes.count))
            weights.append(followers * pow(Double(ranks[index]), -GeneratorModel.zipfExponent))
        }
        self.creators = creators
        self.creatorBytes = creatorBytes
        self.creatorOffsets = creatorOffsets
        self.popularity = AliasTable(weights: weights)
        self.creatorViews = [Int32](repeating: 0, count: count)
        self.userStates = [UInt8](repeating: 0, count: configuration.users)
        self.userCount = Double(configuration.users)

        self.amazon = Quota(rate: GeneratorModel.amazonShare, random: &world)
        self.refunds = Quota(rate: GeneratorModel.refundShare, random: &world)
        let mix = configuration.currencies.filter { $0.weight > 0 }
        self.currencyCodes = mix.map(\.code)
        self.currencyChoice = StratifiedChoice(weights: mix.map(\.weight))
        self.dirty = Quota(rate: configuration.dirtyFraction, random: &self.faults)
        self.late = Quota(rate: configuration.lateFraction, random: &self.faults)
        self.badBatches = Quota(rate: configuration.badBatchFraction, random: &self.faults)

        // Views arrive at the rate that makes the whole stream `eventsPerSecond`: each view brings
        // its expected follow-ups (engagements, clicks, sign-ups, purchases, links, refunds, CPM
        // spends), and daily fees and profiles add 2 x `creators` events a day.
        let total = weights.reduce(0, +)
        var followUps = 1 / Double(GeneratorModel.cpmViews)
        let perPurchase = 1 + GeneratorModel.amazonShare + GeneratorModel.refundShare
        for (creator, weight) in zip(creators, weights) {
            let share = weight / total
            followUps +=
                share
                * (creator.engagement
                    + creator.clickRate * (1 + GeneratorModel.signupRate + creator.purchaseRate * perPurchase)
                    + (1 - creator.clickRate) * creator.viewThroughRate * perPurchase)
        }
        let clean = configuration.eventsPerSecond * max(0.01, 1 - configuration.dirtyFraction - configuration.lateFraction)
        let fees = 2 * Double(count) / 86_400
        let viewsPerSecond = max(clean - fees, clean * 0.05) / (1 + followUps)
        self.viewGap = 1000 / viewsPerSecond

        self.arriving = ArrivalQueue(disorder: configuration.disorder)
        self.clock = configuration.start
        self.newestWritten = configuration.start
        self.nextView = Double(configuration.start) + self.traffic.exponential(mean: self.viewGap)
        self.nextDay = configuration.start
        if let duration = configuration.duration {
            self.end = configuration.start + duration
            self.refundLimit = configuration.start + duration - 1
        } else {
            self.end = nil
            self.refundLimit = configuration.start + Int64(Double(configuration.expectedSpan) * 0.99)
        }
        if let secret = configuration.secret {
            self.signer = WebhookSigner(secrets: [secret])
            var wrong = Array("roas-gen-wrong-key-\(seed)".utf8)
            if wrong == secret.key { wrong.append(0x21) }
            self.forger = WebhookSigner(secrets: [WebhookSecret(key: wrong)])
        } else {
            self.signer = nil
            self.forger = nil
        }
    }

    // MARK: Output

    /// Appends the next part of the stream to `buffer`: whole lines (or whole batch frames) until it
    /// holds at least `bytes` bytes or `lines` more event lines were written. Returns false once the
    /// stream has ended (then nothing more is appended).
    @discardableResult
    public mutating func fill(_ buffer: inout [UInt8], bytes: Int = 1 << 16, lines: Int = .max) -> Bool {
        guard !self.isFinished else { return false }
        let signing = self.signer != nil
        if signing { swap(&self.out, &buffer) } else { swap(&self.payload, &buffer) }
        let before = signing ? self.out.count : self.payload.count
        let limit = before + bytes
        let lineLimit = self.statistics.lines + min(lines, Int.max - self.statistics.lines)
        while !self.isFinished
            && (signing ? self.out.count : self.payload.count) < limit
            && self.statistics.lines < lineLimit
        {
            self.advance()
        }
        self.statistics.bytes += (signing ? self.out.count : self.payload.count) - before
        if signing { swap(&self.out, &buffer) } else { swap(&self.payload, &buffer) }
        return !self.isFinished
    }

    /// Signed streams (a secret in the configuration): like `fill`, but hands the batches written as
    /// `WebhookBatch`es, for `roas gen --http`, with no framing to decode again. Returns them and
    /// whether the stream goes on.
    public mutating func fillBatches(bytes: Int = 1 << 20, lines: Int = .max) -> (batches: [WebhookBatch], more: Bool) {
        precondition(self.signer != nil, "batches are made only with a secret")
        var frames: [UInt8] = []
        self.closedBatches = []
        let more = self.fill(&frames, bytes: bytes, lines: lines)
        let batches = (self.closedBatches ?? []).map { header, payload in
            WebhookBatch(id: header.id, timestamp: header.timestamp, signature: header.signature, payload: Array(frames[payload]))
        }
        self.closedBatches = nil
        return (batches, more)
    }

    /// The whole stream at once (tests, small runs).
    public mutating func generateAll() -> [UInt8] {
        var bytes: [UInt8] = []
        while self.fill(&bytes, bytes: 1 << 20) {}
        return bytes
    }

    /// One step: write the next arrival, or plan the next event.
    @inline(__always)
    private mutating func advance() {
        if let limit = self.configuration.events, self.statistics.lines >= limit {
            self.finish()
            return
        }
        if let event = self.arriving.pop(upTo: self.generationEnded ? .max : self.clock) {
            self.write(event)
            return
        }
        if self.generationEnded {
            self.finish()
            return
        }
        if !self.planNext() { self.generationEnded = true }
    }

    private mutating func finish() {
        if self.signer != nil && self.batchLines > 0 { self.closeBatch() }
        self.isFinished = true
    }

    // MARK: Planning, in event time

    /// Plans the earliest of: the next day start (daily fees), the next scheduled follow-up, the next
    /// view. False once event time reaches the end of `duration`.
    @inline(__always)
    private mutating func planNext() -> Bool {
        let viewTime = Int64(self.nextView)
        var time = viewTime
        var source = 0
        if let next = self.scheduled.min, next.key <= time {
            time = next.key
            source = 1
        }
        if self.nextDay <= time {
            time = self.nextDay
            source = 2
        }
        if let end = self.end, time >= end { return false }
        self.clock = time
        // Release what arrives by then first, so the arrival buffer spans less than the disorder.
        if self.arriving.mayHave(upTo: time) { return true }
        switch source {
        case 0: self.planView(at: time)
        case 1: self.follow(self.scheduled.removeMin())
        default: self.planDailyFees(at: time)
        }
        return true
    }

    @inline(__always)
    private mutating func planView(at time: Int64) {
        let creator = self.popularity.draw(&self.traffic)
        let draw = self.traffic.unit()
        let user = min(Int32(self.userCount * draw * draw), Int32(self.configuration.users - 1))
        self.arrive(PlannedEvent(time: time, kind: .view, creator: Int32(creator), user: user))
        self.creatorViews[creator] &+= 1
        if self.creatorViews[creator] % Int32(GeneratorModel.cpmViews) == 0 {
            var spend = PlannedEvent(time: time, kind: .spend, creator: Int32(creator))
            spend.amount = self.creators[creator].tier.cpm * 100 * Int64(GeneratorModel.cpmViews) / 1000
            self.arrive(spend)
        }
        let profile = self.creators[creator]
        if self.scoreboard.chance(profile.engagement) {
            let delay = self.scoreboard.uniform(
                GeneratorModel.engagementDelay.lowerBound, GeneratorModel.engagementDelay.upperBound)
            var engagement = PlannedEvent(
                time: self.followUp(time, delay: Int64(delay), shortest: 1, before: self.followUpLimit), kind: .engagement,
                creator: Int32(creator), user: user)
            engagement.amount = Int64(self.actionChoice.next(&self.scoreboard))
            self.schedule(engagement)
        }
        if self.traffic.chance(profile.clickRate) {
            let delay = self.traffic.uniform(GeneratorModel.clickDelay.lowerBound, GeneratorModel.clickDelay.upperBound)
            let at = self.followUp(time, delay: Int64(delay), shortest: Int64(GeneratorModel.clickDelay.lowerBound), before: self.followUpLimit)
            self.schedule(PlannedEvent(time: at, kind: .click, creator: Int32(creator), user: user))
        } else if self.traffic.chance(profile.viewThroughRate) {
            let delay = self.traffic.logUniform(GeneratorModel.viewToCheckout.lowerBound, GeneratorModel.viewToCheckout.upperBound)
            let at = self.followUp(
                time, delay: Int64(delay), shortest: GeneratorModel.shortestFollowUp, before: self.checkoutLimit)
            self.schedule(PlannedEvent(time: at, kind: .checkout, creator: Int32(creator), user: user))
        }
        self.nextView += self.traffic.exponential(mean: self.viewGap)
    }

    private mutating func planDailyFees(at time: Int64) {
        for creator in self.creators.indices {
            self.arrive(PlannedEvent(time: time, kind: .profile, creator: Int32(creator)))
        }
        for creator in self.creators.indices {
            var spend = PlannedEvent(time: time, kind: .spend, creator: Int32(creator), flag: true)
            spend.amount = self.creators[creator].tier.dailyFee * 100
            self.arrive(spend)
        }
        self.nextDay = (time / 86_400_000 + 1) * 86_400_000
    }

    /// A scheduled event is due: release it and plan what follows from it.
    private mutating func follow(_ event: PlannedEvent) {
        switch event.kind {
        case .click:
            self.arrive(event)
            if self.scoreboard.chance(GeneratorModel.signupRate) {
                let delay = self.scoreboard.logUniform(GeneratorModel.signupDelay.lowerBound, GeneratorModel.signupDelay.upperBound)
                let at = self.followUp(event.time, delay: Int64(delay), shortest: 1, before: self.followUpLimit)
                self.schedule(PlannedEvent(time: at, kind: .signup, creator: event.creator, user: event.user))
            }
            if self.traffic.chance(self.creators[Int(event.creator)].purchaseRate) {
                let delay = self.traffic.logUniform(
                    GeneratorModel.clickToCheckout.lowerBound, GeneratorModel.clickToCheckout.upperBound)
                let at = self.followUp(
                    event.time, delay: Int64(delay), shortest: GeneratorModel.shortestFollowUp, before: self.checkoutLimit)
                self.schedule(PlannedEvent(time: at, kind: .checkout, user: event.user, flag: true))
            }
        case .checkout:
            // The shopper's first checkout decides where they buy; Amazon shoppers link accounts first.
            let user = Int(event.user)
            if self.userStates[user] == 0 {
                self.userStates[user] = self.amazon.next(&self.traffic) ? 2 : 1
                if self.userStates[user] == 2 { self.arrive(PlannedEvent(time: event.time, kind: .link, user: event.user)) }
            }
            let pay = GeneratorModel.checkoutToPurchase
            var purchase = PlannedEvent(
                time: event.time + self.traffic.uniform(pay.lowerBound, pay.upperBound), kind: .purchase, user: event.user,
                flag: event.flag)
            let currency = self.currencyChoice.next(&self.traffic)
            purchase.currency = UInt8(self.currencyCodes[currency].index)
            let value = GeneratorModel.orderMedian * exp(GeneratorModel.orderSigma * self.traffic.normal())
            purchase.amount = max(100, Int64((value * 100).rounded()))
            self.schedule(purchase)
        case .purchase:
            var purchase = event
            purchase.order = self.nextOrder
            self.nextOrder += 1
            self.arrive(purchase)
        default:
            self.arrive(event)
        }
    }

    /// `time + delay`, or, when that is past `limit` (the end of a short stream), a uniform time in
    /// what is left before it, so that every share holds on streams of any length.
    @inline(__always)
    private mutating func followUp(_ time: Int64, delay: Int64, shortest: Int64, before limit: Int64) -> Int64 {
        if time + delay <= limit || limit - time < shortest { return time + delay }
        return time + self.traffic.uniform(shortest, limit - time)
    }

    /// Clicks are due by the end of the stream; checkouts leave room for the purchase after them.
    private var followUpLimit: Int64 { self.refundLimit }
    private var checkoutLimit: Int64 { self.refundLimit - GeneratorModel.checkoutToPurchase.upperBound }

    @inline(__always)
    private mutating func schedule(_ event: PlannedEvent) {
        var event = event
        event.key = event.time
        event.sequence = self.sequence
        self.sequence &+= 1
        self.scheduled.insert(event)
    }

    /// Into the arrival buffer: it leaves at event time plus a uniform delay below the disorder.
    @inline(__always)
    private mutating func arrive(_ event: PlannedEvent) {
        var event = event
        let disorder = self.configuration.disorder
        event.key = event.time + (disorder > 0 ? Int64(self.arrivals.below(Int(disorder))) : 0)
        event.sequence = self.sequence
        self.sequence &+= 1
        self.arriving.push(event)
    }

    // MARK: Writing, in arrival order

    private mutating func write(_ event: PlannedEvent) {
        self.writeFaults()
        if let limit = self.configuration.events, self.statistics.lines >= limit { return }
        let signing = self.signer != nil
        if signing && self.batchLines == 0 { self.openBatch() }
        self.append(event)
        self.count(event)
        if event.kind == .purchase && !self.batchIsBad { self.planRefund(of: event) }
        self.lineWritten()
    }

    private mutating func count(_ event: PlannedEvent) {
        let kind: EventKind
        switch event.kind {
        case .view:
            kind = .view
            self.statistics.viewsByTier[self.creators[Int(event.creator)].tier.rawValue] += 1
        case .click: kind = .click
        case .purchase:
            kind = .purchase
            if event.flag { self.statistics.clickPurchases += 1 } else { self.statistics.viewPurchases += 1 }
            self.statistics.orders[Int(event.currency)] += 1
        case .refund: kind = .refund
        case .link: kind = .link
        case .spend:
            kind = .spend
            if event.flag { self.statistics.dailyFees += 1 } else { self.statistics.cpmSpends += 1 }
        case .engagement:
            kind = .engagement
            self.statistics.engagementsByTier[self.creators[Int(event.creator)].tier.rawValue] += 1
        case .signup: kind = .signup
        case .profile: kind = .creator
        case .checkout: preconditionFailure("checkouts are not written")
        }
        self.statistics.events[Int(kind.rawValue)] += 1
        self.statistics.firstTime = min(self.statistics.firstTime ?? event.time, event.time)
        self.statistics.lastTime = max(self.statistics.lastTime ?? event.time, event.time)
        self.newestWritten = max(self.newestWritten, event.time)
        if !self.batchIsBad { self.newestAccepted = max(self.newestAccepted ?? event.time, event.time) }
    }

    /// Some orders are refunded, fully or in part, days later, or within what is left of the stream.
    private mutating func planRefund(of purchase: PlannedEvent) {
        let room = self.refundLimit - purchase.time
        guard room >= GeneratorModel.shortestRefundDelay, self.refunds.next(&self.refundRandom) else { return }
        var delay = Int64(self.refundRandom.logUniform(GeneratorModel.refundDelay.lowerBound, GeneratorModel.refundDelay.upperBound))
        if delay > room { delay = self.refundRandom.uniform(GeneratorModel.shortestRefundDelay, room) }
        var refund = PlannedEvent(time: max(purchase.time + delay, self.clock), kind: .refund, user: purchase.user)
        refund.order = purchase.order
        refund.currency = purchase.currency
        if self.refundRandom.chance(GeneratorModel.fullRefundShare) || purchase.amount < 2 {
            refund.amount = purchase.amount
            self.statistics.fullRefunds += 1
        } else {
            let part = Int64((Double(purchase.amount) * self.refundRandom.uniform(0.1, 0.9)).rounded())
            refund.amount = min(max(1, part), purchase.amount - 1)
        }
        self.schedule(refund)
    }

    private mutating func lineWritten() {
        self.statistics.lines += 1
        guard self.signer != nil else { return }
        self.batchLines += 1
        if self.batchIsBad { self.statistics.badBatchLines += 1 }
        if self.batchLines == self.configuration.batchSize { self.closeBatch() }
    }

    /// Dirty and late lines due before the next clean line.
    @inline(__always)
    private mutating func writeFaults() {
        while true {
            if let limit = self.configuration.events, self.statistics.lines >= limit { return }
            let index = Int64(self.statistics.lines)
            if self.dirty.hit(at: index, &self.faults) {
                if self.signer != nil && self.batchLines == 0 { self.openBatch() }
                self.appendDirtyLine()
                self.lineWritten()
                continue
            }
            if self.late.hit(at: index, &self.faults) { self.lateOwed += 1 }
            if self.lateOwed > 0, let newest = self.newestAccepted {
                // Older than the watermark of `roas run`: newest accepted time - lateness.
                let ceiling = newest - self.configuration.lateness - 1000
                if ceiling >= 0 {
                    if self.signer != nil && self.batchLines == 0 { self.openBatch() }
                    var event = PlannedEvent(
                        time: ceiling - self.faults.uniform(0, min(59_000, ceiling)),
                        kind: self.faults.chance(0.8) ? .view : .click,
                        creator: Int32(self.popularity.draw(&self.faults)),
                        user: Int32(self.faults.below(self.configuration.users)))
                    event.key = event.time
                    self.append(event)
                    self.statistics.lateLines += 1
                    self.lateOwed -= 1
                    self.lineWritten()
                    continue
                }
            }
            return
        }
    }

    // MARK: Batches

    private mutating func openBatch() {
        self.batchIsBad = self.badBatches.hit(at: Int64(self.statistics.batches), &self.faults)
        if self.batchIsBad {
            self.statistics.badBatches += 1
            self.statistics.badBatchLines += 1
        }
    }

    private mutating func closeBatch() {
        guard let signer = self.signer, let forger = self.forger else { return }
        self.statistics.batches += 1
        let id = "gen-\(self.configuration.seed)-\(self.statistics.batches)"
        let timestamp = self.now()
        let signature = self.payload.withUnsafeBytes {
            (self.batchIsBad ? forger : signer).signature(id: id, timestamp: timestamp, body: $0)
        }
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: self.payload.count)
        self.out.append(contentsOf: header.line.utf8)
        self.out.append(0x0A)
        let payloadStart = self.out.count
        self.out.append(contentsOf: self.payload)
        self.closedBatches?.append((header, payloadStart..<self.out.count))
        self.payload.removeAll(keepingCapacity: true)
        self.batchLines = 0
        self.batchIsBad = false
    }

    // MARK: Lines

    /// Writes the event's line (its id numbered by its line) with raw stores into a stack buffer,
    /// then appends it to the payload in one copy.
    @inline(__always)
    private mutating func append(_ event: PlannedEvent) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: LineWriter.capacity) { buffer in
            var line = LineWriter(buffer.baseAddress!)
            let number = Int64(self.statistics.lines) + 1
            /// `{"type":"…","id":"x-<number>","ts":<time>`, the start every event line shares.
            func head(_ opening: StaticString) {
                line.put(opening)
                line.put(decimal: number)
                line.put("\",\"ts\":")
                line.put(decimal: event.time)
            }
            switch event.kind {
            case .view, .click:
                head(event.kind == .view ? "{\"type\":\"view\",\"id\":\"v-" : "{\"type\":\"click\",\"id\":\"c-")
                self.putViewer(event, into: &line)
                line.put("}\n")
            case .purchase:
                head("{\"type\":\"purchase\",\"id\":\"p-")
                line.put(",\"user\":\"")
                self.putShopper(event.user, into: &line)
                line.put("\",\"order\":\"o-")
                line.put(decimal: event.order)
                line.put("\",\"amount\":")
                line.put(cents: event.amount)
                line.put(currency: event.currency)
            case .refund:
                head("{\"type\":\"refund\",\"id\":\"r-")
                line.put(",\"order\":\"o-")
                line.put(decimal: event.order)
                line.put("\",\"amount\":")
                line.put(cents: event.amount)
                line.put(currency: event.currency)
            case .link:
                head("{\"type\":\"link\",\"id\":\"l-")
                line.put(",\"user\":\"tt:")
                line.put(decimal: Int64(event.user) + 1)
                line.put("\",\"linked\":\"")
                self.putAmazon(event.user, into: &line)
                line.put("\"}\n")
            case .spend:
                head("{\"type\":\"spend\",\"id\":\"s-")
                line.put(",")
                self.putCreator(event.creator, into: &line)
                line.put(",\"amount\":")
                line.put(cents: event.amount)
                line.put(currency: 0)
            case .engagement:
                head("{\"type\":\"engagement\",\"id\":\"e-")
                self.putViewer(event, into: &line)
                line.put(",\"action\":\"")
                GeneratorModel.actions[Int(event.amount)].name.utf8.withContiguousStorageIfAvailable {
                    line.put($0.baseAddress!, count: $0.count)
                }
                line.put("\"}\n")
            case .signup:
                head("{\"type\":\"signup\",\"id\":\"g-")
                line.put(",\"user\":\"")
                self.putShopper(event.user, into: &line)
                line.put("\"}\n")
            case .profile:
                head("{\"type\":\"creator\",\"id\":\"cp-")
                line.put(",")
                self.creators[Int(event.creator)].profile.withUnsafeBufferPointer { line.put($0.baseAddress!, count: $0.count) }
                line.put("}\n")
            case .checkout:
                preconditionFailure("checkouts are not written")
            }
            self.payload.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress, count: line.count))
        }
    }

    /// `"creator":"@micro_0042","campaign":"cmp-07"` (campaign optional).
    @inline(__always)
    private func putCreator(_ creator: Int32, into line: inout LineWriter) {
        let start = Int(self.creatorOffsets[Int(creator)])
        let end = Int(self.creatorOffsets[Int(creator) + 1])
        self.creatorBytes.withUnsafeBufferPointer { line.put($0.baseAddress! + start, count: end - start) }
    }

    /// `,"user":"tt:<n>","creator":…` of a view, click or engagement.
    @inline(__always)
    private func putViewer(_ event: PlannedEvent, into line: inout LineWriter) {
        line.put(",\"user\":\"tt:")
        line.put(decimal: Int64(event.user) + 1)
        line.put("\",")
        self.putCreator(event.creator, into: &line)
    }

    /// The id a user buys and signs up with: `amz:…` once linked to Amazon, else `tt:<n>`.
    @inline(__always)
    private func putShopper(_ user: Int32, into line: inout LineWriter) {
        if self.userStates[Int(user)] == 2 {
            self.putAmazon(user, into: &line)
        } else {
            line.put("tt:")
            line.put(decimal: Int64(user) + 1)
        }
    }

    /// `amz:A` and 13 base-36 characters: a bijection of the user number, so distinct users get
    /// distinct Amazon ids.
    @inline(__always)
    private func putAmazon(_ user: Int32, into line: inout LineWriter) {
        line.put("amz:A")
        line.put(base36: GeneratorRandom.mix(self.amazonSalt ^ UInt64(user)), digits: 13)
    }

    /// A malformed (50%), invalid (35%) or unknown-type (15%) line, shaped like a real event.
    private mutating func appendDirtyLine() {
        let number = Int64(self.statistics.lines) + 1
        let creator = self.popularity.draw(&self.faults)
        let user = Int32(self.faults.below(self.configuration.users))
        let time = self.newestWritten
        var line: [UInt8] = []
        swap(&line, &self.scratch)
        line.removeAll(keepingCapacity: true)
        func text(_ value: String) { line.append(contentsOf: value.utf8) }
        func head(_ type: String, id: String = "x-\(number)") {
            text("{\"type\":\"\(type)\",\"id\":\"\(id)\",\"ts\":\(time),\"user\":\"tt:\(user + 1)\",")
        }
        let creatorFields = Array(self.creatorBytes[Int(self.creatorOffsets[creator])..<Int(self.creatorOffsets[creator + 1])])
        let group = self.faults.unit()
        if group < 0.5 {
            self.statistics.malformedLines += 1
            switch self.faults.below(6) {
            case 0:  // cut short
                head("view")
                line += creatorFields
                line.removeLast(self.faults.below(line.count - 1))
            case 1:  // an escape JSON does not have
                text("{\"type\":\"view\",\"id\":\"x-\(number)\",\"ts\":\(time),\"user\":\"tt:\\x\(user + 1)\",")
                line += creatorFields
                text("}")
            case 2:  // invalid UTF-8
                text("{\"type\":\"view\",\"id\":\"x-\(number)\",\"ts\":\(time),\"user\":\"tt:")
                line += [0xC3, 0x28]
                text("\(user + 1)\",")
                line += creatorFields
                text("}")
            case 3:  // trailing comma
                head("click")
                line += creatorFields
                text(",}")
            case 4:  // single quotes
                text("{'type':'view','id':'x-\(number)','ts':\(time),'user':'tt:\(user + 1)'}")
            default:  // NaN
                text("{\"type\":\"purchase\",\"id\":\"x-\(number)\",\"ts\":\(time),\"user\":\"tt:\(user + 1)\",")
                text("\"order\":\"ox-\(number)\",\"amount\":NaN}")
            }
        } else if group < 0.85 {
            self.statistics.invalidLines += 1
            switch self.faults.below(7) {
            case 0:  // no user
                text("{\"type\":\"view\",\"id\":\"x-\(number)\",\"ts\":\(time),")
                line += creatorFields
                text("}")
            case 1:  // fractional ts
                text("{\"type\":\"click\",\"id\":\"x-\(number)\",\"ts\":\(time).5,\"user\":\"tt:\(user + 1)\",")
                line += creatorFields
                text("}")
            case 2:  // ts that is no time
                text("{\"type\":\"view\",\"id\":\"x-\(number)\",\"ts\":\"yesterday\",\"user\":\"tt:\(user + 1)\",")
                line += creatorFields
                text("}")
            case 3:  // negative amount
                text("{\"type\":\"purchase\",\"id\":\"x-\(number)\",\"ts\":\(time),\"user\":\"tt:\(user + 1)\",")
                text("\"order\":\"ox-\(number)\",\"amount\":-19.99,\"currency\":\"USD\"}")
            case 4:  // empty id
                head("view", id: "")
                line += creatorFields
                text("}")
            case 5:  // amount as a string
                text("{\"type\":\"spend\",\"id\":\"x-\(number)\",\"ts\":\(time),")
                line += creatorFields
                text(",\"amount\":\"25.00\",\"currency\":\"USD\"}")
            default:  // ts twice
                text("{\"type\":\"view\",\"id\":\"x-\(number)\",\"ts\":\(time),\"ts\":\(time),\"user\":\"tt:\(user + 1)\",")
                line += creatorFields
                text("}")
            }
        } else {
            self.statistics.unknownTypeLines += 1
            let names = ["like", "share", "follow", "comment"]
            head(names[self.faults.below(names.count)])
            line += creatorFields
            text("}")
        }
        line.append(0x0A)
        self.payload.append(contentsOf: line)
        swap(&line, &self.scratch)
    }
}

extension GeneratorConfiguration.CurrencyCode {
    /// Position in `allCases`.
    var index: Int {
        switch self {
        case .usd: 0
        case .eur: 1
        case .gbp: 2
        }
    }
}
