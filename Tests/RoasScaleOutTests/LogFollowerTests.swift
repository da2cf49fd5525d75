import Foundation
import RoasCore
import RoasLog
import RoasRuntime
import Testing

@testable import RoasScaleOut

/// `LogFollower`, the reading side of `roas worker`, against a log in memory whose reader can be
/// slow: `--idle-exit` ends a reader only once it has read what the stream holds.
@Suite("Log follower")
struct LogFollowerTests {
    /// A stream in memory: its options record, then messages of parts. Its reader comes back empty
    /// from its first `emptyFetches` fetches, waiting each one's timeout, as a pull consumer does on
    /// a cluster that just elected a leader.
    final class SlowLog: ReplicatedLog, @unchecked Sendable {
        let messages: [LogMessage]
        let emptyFetches: Int

        init(messages: [LogMessage], emptyFetches: Int) {
            self.messages = messages
            self.emptyFetches = emptyFetches
        }

        func append(_ records: [LogEntry]) throws -> [LogAppend] { throw LogError("read only", isTransient: false) }
        func reader(filter: String, from sequence: UInt64) throws -> any LogReader {
            let prefix = String(filter.dropLast())  // "S.in.>" matches what begins "S.in."
            return Reader(messages: self.messages.filter { $0.subject.hasPrefix(prefix) && $0.sequence >= sequence }, empty: self.emptyFetches)
        }
        func lastMessage(on subject: String) throws -> LogMessage? { self.messages.last { $0.subject == subject } }
        func lastSequence() throws -> UInt64 { self.messages.last?.sequence ?? 0 }

        final class Reader: LogReader {
            var messages: ArraySlice<LogMessage>
            var empty: Int
            init(messages: [LogMessage], empty: Int) {
                self.messages = messages[...]
                self.empty = empty
            }
            func next(max: Int, timeout: Duration) throws -> [LogMessage] {
                if self.empty > 0 || self.messages.isEmpty {
                    self.empty -= 1
                    Thread.sleep(forTimeInterval: Double(timeout.components.attoseconds) / 1e18 + Double(timeout.components.seconds))
                    return []
                }
                let taken = Array(self.messages.prefix(max))
                self.messages = self.messages.dropFirst(taken.count)
                return taken
            }
            func close() {}
        }
    }

    /// A stream `S`: its options record, then the parts of one batch of 3 views.
    static func stream() -> [LogMessage] {
        let lines = (1...3).map { "{\"type\":\"view\",\"id\":\"v\($0)\",\"ts\":1764000000000,\"user\":\"u\($0)\",\"creator\":\"@c\"}" }
        let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
        let header = BatchHeader(id: "b1", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
        let parser = EventParser(currencies: try! CurrencyTable(base: "USD", rates: [:]))
        let parts = payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 4, parser: parser) }
        var messages = [LogMessage(sequence: 1, subject: "S.options", bytes: Array("{}".utf8))]
        for message in LogPart.messages(of: parts, partitions: 4, maximumBytes: 1 << 20) {
            let bytes = LogCompression.zstd.encode(message.bytes)
            messages.append(LogMessage(sequence: UInt64(messages.count + 1), subject: "S.in.\(message.partition)", bytes: bytes))
        }
        return messages
    }

    /// What the follower hands over until its end: the events of its chunks, and how long it took.
    static func follow(_ log: SlowLog, idleExit: Int64) -> (events: Int, seconds: Double) {
        var options = LogFollower.Options()
        options.idleExit = idleExit
        let started = Date()
        let follower = LogFollower(log: log, stream: "S", run: RunSettings(configuration: EngineConfiguration()), options: options)
        var events = 0
        while true {
            switch follower.take() {
            case .chunk(let chunk): events += chunk.eventCount
            case .end: return (events, Date().timeIntervalSince(started))
            case .failure(let error):
                Issue.record("\(error)")
                return (events, 0)
            case .advance, .checkpoint: continue
            }
        }
    }

    @Test
    func aSlowFirstFetchDoesNotEndAnIdleExit() {
        // Six empty fetches of 200 ms each: 1.2 s, four times the idle exit.
        let result = Self.follow(SlowLog(messages: Self.stream(), emptyFetches: 6), idleExit: 300)
        #expect(result.events == 3, "the follower ended before reading the stream's parts")
    }

    @Test
    func anEmptyStreamEndsAfterTheIdleExit() {
        let log = SlowLog(messages: [LogMessage(sequence: 1, subject: "S.options", bytes: Array("{}".utf8))], emptyFetches: 0)
        let result = Self.follow(log, idleExit: 300)
        #expect(result.events == 0)
        #expect(result.seconds < 5, "an empty stream kept the follower for \(result.seconds) s")
    }
}
