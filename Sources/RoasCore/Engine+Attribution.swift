#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Engine {
    /// Applies a link, purchase, sign-up or refund whose time the watermark has reached.
    mutating func apply(_ event: PendingEvent, into output: inout EngineOutput) {
        switch event.kind {
        case .link:
            self.identities.link(event.user, event.linked)
        case .purchase:
            guard self.orders[event.order] == nil else {
                return self.rejectPending(event, Rejection(.duplicateOrder, "order already purchased"), into: &output)
            }
            guard let revenue = Micros.convert(event.amount, rate: self.configuration.currencies.rates[event.currency])
            else { return self.rejectPending(event, Engine.overflow, into: &output) }
            let total = Aggregate(conversions: Micros.one, revenue: revenue)
            if self.workers != nil {
                // Whatever its keys, it fits: accept it now, credit it once the partitions answered.
                if self.creditsSurelyFit(total, at: event.time) {
                    self.orders[event.order] = Order(amount: event.amount, currency: event.currency, refunded: 0, credits: [])
                    self.countCredits(total, at: event.time)
                    self.deferCredits(
                        kind: .purchase, user: event.user, time: event.time, order: event.order, revenue: revenue)
                    break
                }
                self.settle()
            }
            let splits = Engine.purchaseSplits(self.credits(user: event.user, time: event.time), revenue: revenue)
            // An overflow under any model rejects the purchase under all, so that they count the same orders.
            for (model, additions) in splits.enumerated() where !self.fits(additions, at: event.time, model: model) {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            self.orders[event.order] = Order(amount: event.amount, currency: event.currency, refunded: 0, credits: [])
            self.countCredits(total, at: event.time)
            self.creditPurchase(order: event.order, time: event.time, splits: splits)
        case .signup:
            // Credited exactly like a purchase (same models, lookbacks and identity groups), in leads.
            let total = Aggregate(leads: Micros.one)
            if self.workers != nil {
                if self.creditsSurelyFit(total, at: event.time) {
                    self.countCredits(total, at: event.time)
                    self.deferCredits(kind: .signup, user: event.user, time: event.time, order: [], revenue: 0)
                    break
                }
                self.settle()
            }
            let splits = Engine.signupSplits(self.credits(user: event.user, time: event.time))
            for (model, additions) in splits.enumerated() where !self.fits(additions, at: event.time, model: model) {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            self.countCredits(total, at: event.time)
            self.creditSignup(time: event.time, splits: splits)
        case .refund:
            // Its purchase's credits split it: they must be known.
            if self.unresolvedOrders.contains(event.order) { self.settle() }
            guard var order = self.orders[event.order] else {
                return self.rejectPending(event, Rejection(.unknownOrder, "no purchase of this order"), into: &output)
            }
            let rates = self.configuration.currencies.rates
            // Compared in the order's currency; exact when the refund is in the same currency.
            let inOrderCurrency =
                event.currency == order.currency
                ? event.amount : Micros.convert(event.amount, rate: rates[event.currency] / rates[order.currency])
            // Compared as what is left, so that no sum can overflow.
            guard let inOrderCurrency, inOrderCurrency <= order.amount - order.refunded else {
                return self.rejectPending(
                    event, Rejection(.overRefund, "refunds would exceed the order amount"), into: &output)
            }
            guard let refund = Micros.convert(event.amount, rate: rates[event.currency]) else {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            // Split as each model split the purchase.
            let splits = ([order.credits] + order.otherCredits).map { credits in
                let parts = Micros.allocate(refund, weights: credits.map { Double($0.share) })
                return credits.indices.map { (key: credits[$0].key, figures: Aggregate(refunds: parts[$0])) }
            }
            for (model, additions) in splits.enumerated() where !self.fits(additions, at: event.time, model: model) {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            order.refunded += inOrderCurrency
            self.orders[event.order] = order
            for (model, additions) in splits.enumerated() {
                for addition in additions {
                    self.updateCredited(model, time: event.time, key: addition.key) { $0.refunds += addition.figures.refunds }
                }
            }
        default:
            preconditionFailure("only links, purchases, sign-ups and refunds wait for the watermark")
        }
        self.statistics.acceptedEvents[Int(event.kind.rawValue)] += 1
    }

    private mutating func rejectPending(_ event: PendingEvent, _ rejection: Rejection, into output: inout EngineOutput) {
        event.raw.withUnsafeBytes { raw in
            self.reject(rejection, origin: Origin(line: event.line, batch: event.batch, raw: raw), into: &output)
        }
    }

    /// Per model, the keys credited and their conversions and revenue.
    static func purchaseSplits(_ credits: [[(key: RowKey, weight: Double)]], revenue: Int64)
        -> [[(key: RowKey, figures: Aggregate)]]
    {
        credits.map { credits in
            let weights = credits.map(\.weight)
            let conversions = Micros.allocate(Micros.one, weights: weights)
            let revenues = Micros.allocate(revenue, weights: weights)
            return credits.indices.map {
                (key: credits[$0].key, figures: Aggregate(conversions: conversions[$0], revenue: revenues[$0]))
            }
        }
    }

    /// Per model, the keys credited and their leads.
    static func signupSplits(_ credits: [[(key: RowKey, weight: Double)]]) -> [[(key: RowKey, figures: Aggregate)]] {
        credits.map { credits in
            let leads = Micros.allocate(Micros.one, weights: credits.map(\.weight))
            return credits.indices.map { (key: credits[$0].key, figures: Aggregate(leads: leads[$0])) }
        }
    }

    /// Adds a purchase's credits (`purchaseSplits`) to the keys' figures and records each model's
    /// shares with its order, which is in `orders` already.
    mutating func creditPurchase(order key: [UInt8], time: Int64, splits: [[(key: RowKey, figures: Aggregate)]]) {
        var order = self.orders[key]!
        for (model, additions) in splits.enumerated() {
            var shares = KeyedSums<Int64>()
            for addition in additions {
                self.updateCredited(model, time: time, key: addition.key) { $0.add(addition.figures) }
                if let existing = shares.position(of: addition.key) {
                    shares.entries[existing].value += addition.figures.conversions
                } else {
                    shares.append(addition.key, addition.figures.conversions)
                }
            }
            let credits = shares.entries.map { (key: $0.key, share: $0.value) }
            if model == 0 { order.credits = credits } else { order.otherCredits.append(credits) }
        }
        self.orders[key] = order
    }

    /// `creditPurchase` from the credits a settled purchase's touches gave.
    mutating func creditPurchase(order: [UInt8], time: Int64, revenue: Int64, credits: [[(key: RowKey, weight: Double)]]) {
        self.creditPurchase(order: order, time: time, splits: Engine.purchaseSplits(credits, revenue: revenue))
    }

    /// Adds a sign-up's leads to the keys' figures.
    mutating func creditSignup(time: Int64, splits: [[(key: RowKey, figures: Aggregate)]]) {
        for (model, additions) in splits.enumerated() {
            for addition in additions {
                self.updateCredited(model, time: time, key: addition.key) { $0.leads += addition.figures.leads }
            }
        }
    }

    /// `creditSignup` from the credits a settled sign-up's touches gave.
    mutating func creditSignup(time: Int64, credits: [[(key: RowKey, weight: Double)]]) {
        self.creditSignup(time: time, splits: Engine.signupSplits(credits))
    }

    /// The keys a purchase by `user` at `time` is credited to under each configured model, in the
    /// order of `configuration.models`, with unnormalised weights; the null key with weight 1 when no
    /// touch qualifies. Asks the partition of each member of the user's identity group, as the
    /// partitions stand now (the engine's thread reads them: no workers, or settled).
    func credits(user: Int32, time: Int64) -> [[(key: RowKey, weight: Double)]] {
        var found = FoundTouches()
        // Last touch alone (the default) needs each member's latest touches, not every touch: one
        // identity with a million touches (an id shared by every guest shopper, say) would
        // otherwise cost each of its purchases a walk over all of them.
        let latestOnly = self.configuration.models == [.lastTouch]
        for member in self.identities.group(of: user) {
            let (partition, local) = self.partition(of: member)
            self.store.base[partition].answer(
                TouchQuery(
                    local: local, time: time, clickLookback: self.configuration.clickLookback,
                    viewLookback: self.configuration.viewLookback, latestOnly: latestOnly),
                into: &found)
        }
        return self.credits(from: found)
    }

    /// The credits of each model over the touches the partitions found for a purchase: its latest
    /// click, else its latest view, under last touch; every qualifying touch under the others.
    func credits(from found: FoundTouches) -> [[(key: RowKey, weight: Double)]] {
        let configuration = self.configuration
        let none: [(key: RowKey, weight: Double)] = [(RowKey(creator: -1, campaign: -1), 1)]
        if configuration.models == [.lastTouch] {
            var best: FoundTouch? = nil
            for touch in found.touches where touch.isClick && (best == nil || found.precedes(best!, touch)) { best = touch }
            if best == nil {
                for touch in found.touches where !touch.isClick && (best == nil || found.precedes(best!, touch)) {
                    best = touch
                }
            }
            guard let best else { return [none] }
            return [[(self.rowKey(best.touch.creator, best.touch.campaign), 1)]]
        }
        let clicks = found.touches.filter(\.isClick)
        let views = found.touches.filter { !$0.isClick }
        if clicks.isEmpty && views.isEmpty { return Array(repeating: none, count: configuration.models.count) }
        // Every touch in (time, id) order, sorted once for the models that use them all.
        var sortedAll: [FoundTouch] = []
        if configuration.models.contains(where: { $0 != .lastTouch && $0 != .firstTouch }) {
            sortedAll = found.touches.sorted { found.precedes($0, $1) }
        }
        return configuration.models.map { model in
            self.split(model, clicks: clicks, views: views, all: sortedAll, found: found)
        }
    }

    /// The credit split of one model over the qualifying touches (at least one); `all` holds every
    /// touch in (time, id) order when the model is neither last- nor first-touch.
    private func split(
        _ model: AttributionModel, clicks: [FoundTouch], views: [FoundTouch], all: [FoundTouch], found: FoundTouches
    ) -> [(key: RowKey, weight: Double)] {
        func key(_ candidate: FoundTouch) -> RowKey { self.rowKey(candidate.touch.creator, candidate.touch.campaign) }
        switch model {
        case .lastTouch:
            let pool = clicks.isEmpty ? views : clicks
            return [(key(pool.max { found.precedes($0, $1) }!), 1)]
        case .firstTouch:
            let pool = clicks.isEmpty ? views : clicks
            return [(key(pool.min { found.precedes($0, $1) }!), 1)]
        case .linear:
            return all.map { (key($0), 1) }
        case .timeDecay:
            // Weights relative to the latest qualifying touch (weight 1): the shares are those of
            // 2^(-age / half-life), and they cannot all underflow to 0 however short the half-life.
            let halfLife = Double(self.configuration.halfLife)
            let latest = all[all.count - 1].touch.time
            return all.map { candidate -> (key: RowKey, weight: Double) in
                let age = Double(latest - candidate.touch.time)
                return (key(candidate), Engine.exp2(-age / halfLife))
            }
        case .position:
            switch all.count {
            case 1: return [(key(all[0]), 1)]
            case 2: return [(key(all[0]), 0.5), (key(all[1]), 0.5)]
            default:
                let middle = 0.2 / Double(all.count - 2)
                return all.enumerated().map { index, candidate -> (key: RowKey, weight: Double) in
                    let weight = index == 0 || index == all.count - 1 ? 0.4 : middle
                    return (key(candidate), weight)
                }
            }
        }
    }

    static func exp2(_ value: Double) -> Double {
        #if canImport(Glibc)
        return Glibc.exp2(value)
        #else
        return Darwin.exp2(value)
        #endif
    }
}
