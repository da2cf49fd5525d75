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
            // Per model: the keys credited, with their conversions and revenue.
            let splits = self.credits(user: event.user, time: event.time).map { credits in
                let weights = credits.map(\.weight)
                let conversions = Micros.allocate(Micros.one, weights: weights)
                let revenues = Micros.allocate(revenue, weights: weights)
                return credits.indices.map {
                    (key: credits[$0].key, figures: Aggregate(conversions: conversions[$0], revenue: revenues[$0]))
                }
            }
            // An overflow under any model rejects the purchase under all, so that they count the same orders.
            for (model, additions) in splits.enumerated() where !self.fits(additions, at: event.time, model: model) {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            var order = Order(amount: event.amount, currency: event.currency, refunded: 0, credits: [])
            for (model, additions) in splits.enumerated() {
                var shares = KeyedSums<Int64>()
                for addition in additions {
                    self.updateCredited(model, time: event.time, key: addition.key) { $0.add(addition.figures) }
                    if let existing = shares.position(of: addition.key) {
                        shares.entries[existing].value += addition.figures.conversions
                    } else {
                        shares.append(addition.key, addition.figures.conversions)
                    }
                }
                let credits = shares.entries.map { (key: $0.key, share: $0.value) }
                if model == 0 { order.credits = credits } else { order.otherCredits.append(credits) }
            }
            self.orders[event.order] = order
        case .signup:
            // Credited exactly like a purchase (same models, lookbacks and identity groups), in leads.
            let splits = self.credits(user: event.user, time: event.time).map { credits in
                let leads = Micros.allocate(Micros.one, weights: credits.map(\.weight))
                return credits.indices.map { (key: credits[$0].key, figures: Aggregate(leads: leads[$0])) }
            }
            for (model, additions) in splits.enumerated() where !self.fits(additions, at: event.time, model: model) {
                return self.rejectPending(event, Engine.overflow, into: &output)
            }
            for (model, additions) in splits.enumerated() {
                for addition in additions {
                    self.updateCredited(model, time: event.time, key: addition.key) { $0.leads += addition.figures.leads }
                }
            }
        case .refund:
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

    /// A touch that qualifies for a purchase, and which arena holds its id.
    struct Candidate {
        var touch: Touch
        /// The offset of the touch's id in its arena.
        var id: Int64
        var isClick: Bool
    }

    /// The keys a purchase by `user` at `time` is credited to under each configured model, in the
    /// order of `configuration.models`, with unnormalised weights; the null key with weight 1 when no
    /// touch qualifies. The qualifying touches are gathered once for every model.
    func credits(user: Int32, time: Int64) -> [[(key: RowKey, weight: Double)]] {
        let group = self.identities.group(of: user)
        let configuration = self.configuration
        if configuration.models == [.lastTouch] {
            // Last touch alone (the default) needs the latest touch, not every touch: one identity
            // with a million touches (an id shared by every guest shopper, say) would otherwise cost
            // each of its purchases a walk over all of them.
            guard let latest = self.latestTouch(of: group, time: time) else {
                return [[(RowKey(creator: -1, campaign: -1), 1)]]
            }
            return [[(self.rowKey(latest.touch.creator, latest.touch.campaign), 1)]]
        }
        let clickFrom = Engine.subtract(time, configuration.clickLookback)
        let viewFrom = Engine.subtract(time, configuration.viewLookback)
        var clicks: [Candidate] = []
        var views: [Candidate] = []
        clicks.reserveCapacity(8)
        views.reserveCapacity(8)
        for member in group {
            self.clicks.forEach(of: member, in: clickFrom, time) { clicks.append(Candidate(touch: $0, id: $1, isClick: true)) }
            self.views.forEach(of: member, in: viewFrom, time) { views.append(Candidate(touch: $0, id: $1, isClick: false)) }
        }
        if clicks.isEmpty && views.isEmpty {
            return Array(repeating: [(RowKey(creator: -1, campaign: -1), 1)], count: configuration.models.count)
        }
        // Every touch in (time, id) order, sorted once for the models that use them all. (The
        // comparisons are closures written in place: one kept in a constant escapes, and capturing
        // `self` then copied the whole engine for each purchase.)
        var sortedAll: [Candidate] = []
        if configuration.models.contains(where: { $0 != .lastTouch && $0 != .firstTouch }) {
            sortedAll = (clicks + views).sorted { self.precedes($0, $1) }
        }
        return configuration.models.map { model in
            self.split(model, clicks: clicks, views: views, all: sortedAll)
        }
    }

    /// The last touch of a purchase by `group` at `time`: its latest qualifying click, else its
    /// latest qualifying view (in (time, id) order), or nil; what `split(.lastTouch, ...)` picks from
    /// every qualifying touch, found by walks that stop early (`TouchLog.forEach(of:in:_:floor:_:)`).
    func latestTouch(of group: [Int32], time: Int64) -> Candidate? {
        var best: Candidate? = nil
        let clickFrom = Engine.subtract(time, self.configuration.clickLookback)
        for member in group {
            self.clicks.forEach(of: member, in: clickFrom, time, floor: best?.touch.time ?? .min) { touch, id in
                let candidate = Candidate(touch: touch, id: id, isClick: true)
                if best == nil || self.precedes(best!, candidate) { best = candidate }
                return best!.touch.time
            }
        }
        if best != nil { return best }
        let viewFrom = Engine.subtract(time, self.configuration.viewLookback)
        for member in group {
            self.views.forEach(of: member, in: viewFrom, time, floor: best?.touch.time ?? .min) { touch, id in
                let candidate = Candidate(touch: touch, id: id, isClick: false)
                if best == nil || self.precedes(best!, candidate) { best = candidate }
                return best!.touch.time
            }
        }
        return best
    }

    /// The credit split of one model over the qualifying touches (at least one); `all` holds every
    /// touch in (time, id) order when the model is neither last- nor first-touch.
    private func split(_ model: AttributionModel, clicks: [Candidate], views: [Candidate], all: [Candidate])
        -> [(key: RowKey, weight: Double)]
    {
        func key(_ candidate: Candidate) -> RowKey { self.rowKey(candidate.touch.creator, candidate.touch.campaign) }
        switch model {
        case .lastTouch:
            let pool = clicks.isEmpty ? views : clicks
            return [(key(pool.max { self.precedes($0, $1) }!), 1)]
        case .firstTouch:
            let pool = clicks.isEmpty ? views : clicks
            return [(key(pool.min { self.precedes($0, $1) }!), 1)]
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

    /// Orders touches by (time, id bytewise).
    func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
        if a.touch.time != b.touch.time { return a.touch.time < b.touch.time }
        return IDArena.compare(
            a.isClick ? self.clickIDs : self.viewIDs, a.id, b.isClick ? self.clickIDs : self.viewIDs, b.id
        ) < 0
    }
}
