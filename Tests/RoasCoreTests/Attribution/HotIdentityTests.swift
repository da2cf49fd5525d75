import Testing

@testable import RoasCore

/// Last touch alone finds a purchase's latest touch by walks that stop early (`Engine.latestTouch`);
/// every other model set gathers every qualifying touch. These streams give the early stop its
/// hardest cases: one identity with most of the touches, links into it, many touches in the same
/// millisecond (ties broken by id), arrival shuffled within the lateness (so a touch appended
/// later can be older than one appended before it), and lookbacks that end inside the stream.
@Suite("Hot identities")
struct HotIdentityTests {
    static func lines(seed: UInt64, lateness: Int64) -> [String] {
        var random = SplitMix64(seed: seed)
        let users = ["hot", "hot", "hot", "warm", "u1", "u2", "u3"]
        var events: [(time: Int64, line: String)] = []
        for index in 0..<3000 {
            // Four events per 250 ms, within three milliseconds of each other: ties are common.
            let time = t0 + Int64(index / 4) * 250 + Int64(random.int(0..<3))
            let user = random.pick(users)
            let creator = "@c\(random.int(0..<6))"
            let id = "e\(random.int(0..<1_000_000))-\(index)"
            let roll = random.int(0..<100)
            let line: String
            if roll < 62 {
                line = #"{"type":"view","id":"\#(id)","ts":\#(time),"user":"\#(user)","creator":"\#(creator)"}"#
            } else if roll < 84 {
                line = #"{"type":"click","id":"\#(id)","ts":\#(time),"user":"\#(user)","creator":"\#(creator)"}"#
            } else if roll < 97 {
                line =
                    #"{"type":"purchase","id":"\#(id)","ts":\#(time),"user":"\#(user)","order":"o\#(index)","amount":\#(1 + random.int(0..<90))}"#
            } else {
                line = #"{"type":"link","id":"\#(id)","ts":\#(time),"user":"\#(random.pick(users))","linked":"\#(user)"}"#
            }
            events.append((time, line))
        }
        // Each event delayed by less than the lateness (not at all with none), then sorted by
        // arrival: none is late.
        return events.map { ($0.time + (lateness > 0 ? Int64.random(in: 0..<lateness, using: &random) : 0), $0.line) }
            .enumerated().sorted { a, b in a.element.0 != b.element.0 ? a.element.0 < b.element.0 : a.offset < b.offset }
            .map(\.element.1)
    }

    @Test(arguments: 0..<24 as Range<UInt64>)
    func theEarlyStoppingWalkFindsTheLastTouchOfEveryTouch(seed: UInt64) throws {
        var configuration = EngineConfiguration()
        configuration.lateness = [0, 1, 2, 700, 5 * second, minute][Int(seed % 6)]
        configuration.clickLookback = seed % 2 == 0 ? 20 * second : 7 * 86_400_000
        configuration.viewLookback = seed % 3 == 0 ? 5 * second : 86_400_000
        configuration.window = 2 * minute
        configuration.slide = 2 * minute
        configuration.byCampaign = seed % 4 == 1
        let lines = Self.lines(seed: seed, lateness: configuration.lateness)

        var alone = EngineDriver(configuration: configuration)
        var together = configuration
        together.models = [.lastTouch, .firstTouch]
        together.labelsModels = true
        var both = EngineDriver(configuration: together)
        for (index, line) in lines.enumerated() {
            alone.feed(Array(line.utf8), number: index + 1)
            both.feed(Array(line.utf8), number: index + 1)
        }
        alone.finish()
        both.finish()

        #expect(!alone.deadLetters.contains { $0.reason == .late }, "seed \(seed)")
        let expected = both.rows.filter { $0.model == "last-touch" }.map { row -> Row in
            var row = row
            row.model = nil
            return row
        }
        #expect(alone.rows.count == expected.count, "seed \(seed)")
        if let first = zip(alone.rows, expected).enumerated().first(where: { $0.element.0 != $0.element.1 }) {
            Issue.record("seed \(seed): row \(first.offset) differs:\n\(first.element.0.json)\n\(first.element.1.json)")
        }
        // Purchases were credited to creators, not only to the unattributed row.
        #expect(alone.rows.contains { $0.creator != nil && $0.figures.conversions > 0 }, "seed \(seed)")
    }
}
