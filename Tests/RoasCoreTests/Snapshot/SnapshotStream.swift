/// Event lines in arrival order for snapshot tests: every kind of event, links between "tt:" and
/// "amz:" identities, purchases in three currencies (and an unknown one), refunds (some of unknown
/// orders or too large), resent events, malformed lines, ids longer than 16 bytes (so that id tails
/// go to the arenas), arrival within the lateness and some beyond it (late), in batches of 40.
struct SnapshotStream {
    struct Item {
        var line: [UInt8]
        var batch: String?
        /// The event time (for resends, the original's).
        var time: Int64
    }

    /// - Parameters:
    ///   - longIDs: the share of ids longer than 16 bytes.
    ///   - padding: how many bytes a long id has past its first 20 or so.
    static func make(
        seed: UInt64, count: Int, start: Int64, span: Int64, lateness: Int64, longIDs: Double = 0.4,
        padding: ClosedRange<Int> = 0...40
    ) -> [Item] {
        var random = SplitMix64(seed: seed)
        // A third on whole 10-second marks: ties on time, which order touches by id.
        var times = (0..<count).map { _ -> Int64 in
            let time = start + Int64.random(in: 0..<span, using: &random)
            return random.chance(0.3) ? time - time % 10_000 : time
        }
        times.sort()
        var events: [(time: Int64, line: String)] = []
        var orders = 0
        for (index, time) in times.enumerated() {
            // Long ids share their first 16 bytes, so that ties on time compare their tails.
            let id =
                random.chance(longIDs)
                ? "snapshot-test-id-\(seed)-\(index)-" + String(repeating: "x", count: random.int(padding))
                : "e\(index)"
            let person = random.int(0..<60)
            let user = EngineSnapshotTests.user(person)
            let creator = "c\(random.int(0..<7))"
            let campaign: String? = random.chance(0.5) ? "k\(random.int(0..<3))" : nil
            let roll = random.int(0..<110)
            switch roll {
            case 0..<38: events.append((time, Line.view(id, time, user: user, creator: creator, campaign: campaign)))
            case 38..<62: events.append((time, Line.click(id, time, user: user, creator: creator, campaign: campaign)))
            case 62..<72:
                let buyer = random.chance(0.5) ? user : user.replacingPrefix("tt:", with: "amz:")
                orders += 1
                let order = random.chance(0.1) ? "o\(max(0, orders - 2))" : "o\(orders)"
                let cents = random.int(1..<20000)
                let currency = random.chance(0.03) ? "JPY" : random.pick(["USD", "EUR", "GBP"])
                events.append(
                    (
                        time,
                        Line.purchase(
                            id, time, user: buyer, order: order, amount: "\(cents / 100).\(cents % 100)",
                            currency: currency)
                    ))
            case 72..<78:
                let cents = random.int(1..<8000)
                let currency = random.pick(["USD", "EUR"])
                events.append(
                    (
                        time,
                        Line.refund(
                            id, time, order: "o\(random.int(0...(orders + 2)))",
                            amount: "\(cents / 100).\(cents % 100)", currency: currency)
                    ))
            case 78..<85:
                events.append(
                    (time, Line.link(id, time, user: user, linked: user.replacingPrefix("tt:", with: "amz:"))))
            case 85..<92:
                events.append(
                    (
                        time,
                        Line.spend(
                            id, time, creator: creator, amount: "\(random.int(0..<500))", campaign: campaign,
                            currency: random.pick(["USD", "GBP"]))
                    ))
            case 92..<94:
                events.append((time, "{\"type\":\"view\",broken"))
            case 100..<104:
                events.append((time, Line.engagement(id, time, user: user, creator: creator, campaign: campaign)))
            case 104..<107:
                events.append((time, Line.signup(id, time, user: random.chance(0.5) ? user : user.replacingPrefix("tt:", with: "amz:"))))
            case 107..<110:
                let followers: Int64 = random.pick([0, 9_999, 10_000, 150_000, 1_000_000])
                events.append((time, Line.profile(id, time, creator: creator, followers: followers)))
            default:
                // A resend of a recent event: same line, same event time.
                let previous =
                    events.isEmpty
                    ? (time, Line.spend(id, time, creator: creator, amount: "1"))
                    : events[max(0, events.count - random.int(1...20))]
                events.append(previous)
            }
        }
        // Arrival: within the lateness, or for 2% well after it (those are late).
        let arrivals = events.map { event -> Int64 in
            random.chance(0.02)
                ? event.time + 3 * lateness + 1000 : event.time + Int64.random(in: 0..<max(1, lateness), using: &random)
        }
        let order = arrivals.indices.sorted { arrivals[$0] != arrivals[$1] ? arrivals[$0] < arrivals[$1] : $0 < $1 }
        return order.enumerated().map { position, index in
            Item(
                line: Array(events[index].line.utf8), batch: position % 200 < 160 ? "b\(position / 40)" : nil,
                time: events[index].time)
        }
    }
}
