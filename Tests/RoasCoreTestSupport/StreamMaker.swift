import RoasCore

/// Random but plausible event streams for property tests: every kind of event, links between
/// "tt:" and "amz:" identities, repeated orders, refunds (some of unknown orders or too large),
/// engagements, sign-ups, creator profiles crossing tier thresholds, and resent events.
package struct StreamMaker {
    package var random: SplitMix64
    package var users = 40
    package var creators = 6
    package var campaigns = 3
    /// Include engagements, sign-ups and creator profiles (issue 14's events).
    package var scoreboard = true

    package init(seed: UInt64) { self.random = SplitMix64(seed: seed) }

    /// `count` events in event-time order over `span` milliseconds from `start`, with their times.
    package mutating func events(count: Int, start: Int64, span: Int64) -> [(time: Int64, line: String)] {
        var times = (0..<count).map { _ in start + Int64.random(in: 0..<span, using: &self.random) }
        times.sort()
        var events: [(Int64, String)] = []
        var orders = 0
        for (index, time) in times.enumerated() {
            let id = "e\(index)"
            let user = "tt:\(Int.random(in: 0..<self.users, using: &self.random))"
            let creator = "c\(Int.random(in: 0..<self.creators, using: &self.random))"
            let campaign: String? = Bool.random(using: &self.random) ? "k\(Int.random(in: 0..<self.campaigns, using: &self.random))" : nil
            let roll = Int.random(in: 0..<(self.scoreboard ? 110 : 100), using: &self.random)
            var line: String
            var eventTime = time
            switch roll {
            case 0..<45: line = Line.view(id, time, user: user, creator: creator, campaign: campaign)
            case 45..<70: line = Line.click(id, time, user: user, creator: creator, campaign: campaign)
            case 70..<78:
                let buyer = Bool.random(using: &self.random) ? user : user.replacingPrefix("tt:", with: "amz:")
                orders += 1
                let order = Int.random(in: 0..<10, using: &self.random) == 0 ? "o\(max(0, orders - 2))" : "o\(orders)"
                let cents = Int.random(in: 1..<20000, using: &self.random)
                let currency = ["USD", "EUR", "GBP"].randomElement(using: &self.random)!
                line = Line.purchase(id, time, user: buyer, order: order, amount: "\(cents / 100).\(cents % 100)", currency: currency)
            case 78..<84:
                let order = "o\(Int.random(in: 0...(orders + 2), using: &self.random))"
                let cents = Int.random(in: 1..<8000, using: &self.random)
                line = Line.refund(id, time, order: order, amount: "\(cents / 100).\(cents % 100)")
            case 84..<90:
                line = Line.link(id, time, user: user, linked: user.replacingPrefix("tt:", with: "amz:"))
            case 90..<97:
                line = Line.spend(id, time, creator: creator, amount: "\(Int.random(in: 0..<500, using: &self.random))", campaign: campaign)
            case 100..<104:
                let action = ["like", "comment", "share", "save", "follow"].randomElement(using: &self.random)!
                line = Line.engagement(id, time, user: user, creator: creator, action: action, campaign: campaign)
            case 104..<107:
                let signer = Bool.random(using: &self.random) ? user : user.replacingPrefix("tt:", with: "amz:")
                line = Line.signup(id, time, user: signer)
            case 107..<110:
                let followers: Int64 = [0, 9_999, 10_000, 99_999, 100_000, 999_999, 1_000_000, 7_000_000].randomElement(using: &self.random)!
                line = Line.profile(id, time, creator: creator, followers: followers)
            default:
                // A resend of the previous event: same line, same event time.
                line = events.last?.1 ?? Line.spend(id, time, creator: creator, amount: "1")
                eventTime = events.last?.0 ?? time
            }
            events.append((eventTime, line))
        }
        return events
    }
}

extension String {
    package func replacingPrefix(_ prefix: String, with replacement: String) -> String {
        self.hasPrefix(prefix) ? replacement + self.dropFirst(prefix.count) : self
    }
}
