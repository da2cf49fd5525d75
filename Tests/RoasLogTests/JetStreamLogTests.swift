import CNats
import Foundation
import RoasTestSupport
import Synchronization
import Testing

@testable import RoasLog

/// `JetStreamLog` against a real 3-node JetStream cluster started by each test (see `NATSCluster`),
/// with a stream of 3 replicas.
@Suite("JetStream replicated log", .serialized, .ownThread)
struct JetStreamLogTests {
    static let stream = "ROAS_TEST"
    static let subjects = ["S.>"]

    /// Record `index` of a test run: on `S.p.<index % 4>`, id `r-<index>`, bytes that name it and
    /// vary in length.
    static func record(_ index: Int, tag: String = "r") -> LogEntry {
        let bytes = Array("\(tag)-\(index)|".utf8) + (0..<(index % 97)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
        return LogEntry(subject: "S.p.\(index % 4)", id: "\(tag)-\(index)", bytes: bytes)
    }

    static func openLog(_ cluster: NATSCluster, replicas: Int = 3) throws -> JetStreamLog {
        try JetStreamLog(urls: cluster.urls, stream: Self.stream, subjects: Self.subjects, replicas: replicas)
    }

    /// Appends `records` in batches of `batch`, one after the other; the results in order.
    static func appendAll(_ log: JetStreamLog, _ records: [LogEntry], batch: Int = 50) throws -> [LogAppend] {
        var results: [LogAppend] = []
        for start in stride(from: 0, to: records.count, by: batch) {
            results += try log.append(Array(records[start..<min(start + batch, records.count)]))
        }
        return results
    }

    /// Everything `reader` returns until a fetch comes back empty (or `limit` messages).
    static func readAll(_ reader: any LogReader, limit: Int = .max) throws -> [LogMessage] {
        var messages: [LogMessage] = []
        while messages.count < limit {
            let next = try reader.next(max: 200, timeout: .seconds(1))
            if next.isEmpty { break }
            messages += next
        }
        return messages
    }

    // MARK: Tests

    @Test("1,000 records appended by 2 threads at once are read back once each, in order, with their sequences")
    func concurrentAppendsReadBack() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            let records = (0..<1_000).map { Self.record($0) }
            // 20 batches of 50: the even ones from one thread, the odd ones from another.
            let batches = stride(from: 0, to: records.count, by: 50).map { Array(records[$0..<($0 + 50)]) }
            let appended = Locked<[String: LogAppend]>([:])
            let batchesInOrder = Locked(true)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for thread in 0..<2 {
                    group.addTask {
                        try await offThread {
                            for (number, batch) in batches.enumerated() where number % 2 == thread {
                                let results = try log.append(batch)
                                #expect(results.count == batch.count)
                                let sequences = results.map(\.sequence)
                                if sequences != sequences.sorted() { batchesInOrder.withLock { $0 = false } }
                                appended.withLock { appended in
                                    for (record, result) in zip(batch, results) { appended[record.id] = result }
                                }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let results = appended.withLock { $0 }
            #expect(results.count == 1_000)
            #expect(results.values.allSatisfy { !$0.duplicate })
            #expect(Set(results.values.map(\.sequence)) == Set(1...1_000))
            #expect(batchesInOrder.withLock { $0 }, "each batch's sequences increase in input order")

            let reader = try log.reader(filter: "S.>", from: 1)
            defer { reader.close() }
            let messages = try Self.readAll(reader)
            #expect(messages.count == 1_000)
            #expect(messages.map(\.sequence) == Array(1...1_000))
            let byBytes = Dictionary(uniqueKeysWithValues: records.map { ($0.bytes, $0) })
            var seen: Set<String> = []
            for message in messages {
                guard let record = byBytes[message.bytes] else {
                    Issue.record("message \(message.sequence) has bytes no record has")
                    continue
                }
                #expect(seen.insert(record.id).inserted, "\(record.id) read twice")
                #expect(message.subject == record.subject)
                #expect(message.sequence == results[record.id]?.sequence)
            }
            #expect(try log.status().messages == 1_000)
        }
    }

    @Test("appending the same records again returns duplicate and the first sequences, and stores nothing")
    func duplicatesAreNotStored() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            let records = (0..<1_000).map { Self.record($0) }
            let first = try Self.appendAll(log, records)
            #expect(first.allSatisfy { !$0.duplicate })
            let before = try log.status()
            #expect(before.messages == 1_000)

            let again = try Self.appendAll(log, records)
            #expect(again.allSatisfy { $0.duplicate })
            #expect(again.map(\.sequence) == first.map(\.sequence))
            // Duplicates inside one batch, and a batch mixing new and known ids.
            let mixed = [Self.record(7), Self.record(7), Self.record(1_000), Self.record(8)]
            let mixedResults = try log.append(mixed)
            #expect(mixedResults.map(\.duplicate) == [true, true, false, true])
            #expect(mixedResults[0].sequence == first[7].sequence && mixedResults[1].sequence == first[7].sequence)
            #expect(mixedResults[2].sequence == 1_001)
            // A record without an id could not be deduplicated: refused.
            let noID = #expect(throws: LogError.self) { _ = try log.append([LogEntry(subject: "S.p.0", id: "", bytes: [1])]) }
            #expect(noID?.isTransient == false)
            let after = try log.status()
            #expect(after.messages == 1_001)
            #expect(after.lastSequence == 1_001)
        }
    }

    @Test("a reader from sequence N on one subject gets exactly that subject's messages from N on, then new ones")
    func filteredReaderFromSequence() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            let records = (0..<1_000).map { Self.record($0) }
            let results = try Self.appendAll(log, records)
            let start: UInt64 = 537
            let expected = zip(records, results).filter { $0.0.subject == "S.p.2" && $0.1.sequence >= start }

            let reader = try log.reader(filter: "S.p.2", from: start)
            defer { reader.close() }
            let messages = try Self.readAll(reader)
            #expect(messages.map(\.sequence) == expected.map(\.1.sequence))
            #expect(messages.allSatisfy { $0.subject == "S.p.2" })
            #expect(messages.map(\.bytes) == expected.map(\.0.bytes))

            // At the end: nothing within the timeout, then what is appended afterwards.
            let clock = ContinuousClock()
            let started = clock.now
            #expect(try reader.next(max: 10, timeout: .milliseconds(300)).isEmpty)
            #expect(clock.now - started < .seconds(3))
            let later = try log.append([Self.record(1_002), Self.record(1_003), Self.record(1_006)])
            let tail = try reader.next(max: 10, timeout: .seconds(5))
            #expect(tail.map(\.sequence) == [later[0].sequence, later[2].sequence])

            // Closing a reader deletes its consumer on the server (which may take a moment under load).
            reader.close()
            var consumers = try log.status().consumers
            let deadline = clock.now + .seconds(10)
            while consumers > 0 && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                consumers = try log.status().consumers
            }
            let made = (reader as? JetStreamReader).map { "\($0.consumersMade) consumers made, \($0.gapsRecovered) gaps" } ?? ""
            #expect(consumers == 0, "\(made)")

            // A filter outside the stream's subjects fails at once, and clearly.
            let outside = #expect(throws: LogError.self) { _ = try log.reader(filter: "T.>", from: 1) }
            #expect(outside?.description.contains(Self.stream) == true && outside?.description.contains("T.>") == true)
        }
    }

    @Test("lastMessage(on:) returns the last message on exactly that subject, nil for an unused one")
    func lastMessageOnSubject() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            #expect(try log.lastMessage(on: "S.p.3") == nil)
            let records = (0..<200).map { Self.record($0) }
            let results = try Self.appendAll(log, records)
            let last = try #require(try log.lastMessage(on: "S.p.3"))
            #expect(last.subject == "S.p.3")
            #expect(last.sequence == results[199].sequence)  // record 199 is the last on S.p.3
            #expect(last.bytes == records[199].bytes)
            #expect(try log.lastMessage(on: "S.p.1")?.sequence == results[197].sequence)
            #expect(try log.lastMessage(on: "S.unused") == nil)
            #expect(try log.lastMessage(on: "S.p") == nil)
        }
    }

    @Test("a second log on the same stream works with the same settings and is refused with others")
    func secondProcessOnTheSameStream() async throws {
        try await NATSCluster.with { cluster in
            let first = try Self.openLog(cluster)
            _ = try first.append([Self.record(0)])

            let replicas = #expect(throws: LogError.self) { _ = try Self.openLog(cluster, replicas: 1) }
            #expect(replicas?.isTransient == false)
            let replicasText = replicas?.description ?? ""
            #expect(replicasText.contains("3 replica(s)") && replicasText.contains("1 replica(s)"), "\(replicasText)")
            #expect(replicasText.contains(Self.stream))
            let subjects = #expect(throws: LogError.self) {
                _ = try JetStreamLog(urls: cluster.urls, stream: Self.stream, subjects: ["S.>", "T.>"], replicas: 3)
            }
            #expect(subjects?.description.contains(#"["S.>", "T.>"]"#) == true, "\(String(describing: subjects))")

            // Same settings, a different server first: the same stream.
            let second = try JetStreamLog(
                urls: Array(cluster.urls.reversed()), stream: Self.stream, subjects: Self.subjects, replicas: 3)
            let appended = try second.append([Self.record(1), Self.record(0)])
            #expect(appended == [LogAppend(sequence: 2, duplicate: false), LogAppend(sequence: 1, duplicate: true)])
            let reader = try first.reader(filter: "S.>", from: 1)
            defer { reader.close() }
            #expect(try Self.readAll(reader).map(\.bytes) == [Self.record(0).bytes, Self.record(1).bytes])
        }
    }

    @Test("the stream leader killed while appending and reading: every confirmed append survives, also after it restarts")
    func leaderFailover() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            let clock = ContinuousClock()
            let started = clock.now
            let warmup = try log.append((0..<20).map { Self.record($0, tag: "w") })
            let leaderName = try #require(try log.status().leader)
            let leader = try #require(cluster.node(named: leaderName))
            // A reader whose consumer is led by the server about to be killed (consumer leaders are
            // placed at random), reading on its own thread all along.
            var onLeader: JetStreamReader?
            for _ in 0..<40 where onLeader == nil {
                let candidate = try #require(try log.reader(filter: "S.>", from: 1) as? JetStreamReader)
                if try candidate.consumerServer() == leaderName { onLeader = candidate } else { candidate.close() }
            }
            let reader = UncheckedSendable(try #require(onLeader))
            let total = warmup.count + 600
            // When the last append was confirmed: the reader gets 15 s from then to read the rest (on
            // a busy machine the appends alone can take 25 s; a fixed deadline from the start cut the
            // reader off at 587 of 600 once in CI).
            let appendsEnded = Locked<ContinuousClock.Instant?>(nil)
            let readAcross = Task {
                try await offThread { () -> (messages: [LogMessage], errors: [String], consumers: Int, gaps: Int) in
                    defer { reader.value.close() }
                    var messages: [LogMessage] = []
                    var errors: [String] = []
                    let hardDeadline = clock.now + .seconds(90)
                    func timeLeft() -> Bool {
                        let now = clock.now
                        guard now < hardDeadline else { return false }
                        guard let ended = appendsEnded.withLock({ $0 }) else { return true }
                        return now < ended + .seconds(15)
                    }
                    while messages.count < total && timeLeft() {
                        do {
                            messages += try reader.value.next(max: 100, timeout: .milliseconds(500))
                        } catch let error as LogError where error.isTransient {
                            // A reader that gave up on its retries stays usable: call `next` again.
                            errors.append(error.description)
                        }
                    }
                    return (messages, errors, reader.value.consumersMade, reader.value.gapsRecovered)
                }
            }

            // Append batches of 20 on another thread; a failed batch is retried as it is (same ids)
            // until it succeeds. The leader is killed after the fifth batch.
            let confirmed = Locked<[String: LogAppend]>([:])
            let failures = Locked<[String]>([])
            let batchesDone = Locked(0)
            let appender = Task {
                try await offThread {
                    for number in 0..<30 {
                        let batch = (0..<20).map { Self.record(number * 20 + $0, tag: "f") }
                        let deadline = clock.now + .seconds(20)
                        while true {
                            do {
                                let results = try log.append(batch)
                                confirmed.withLock { confirmed in
                                    for (record, result) in zip(batch, results) { confirmed[record.id] = result }
                                }
                                break
                            } catch let error as LogError where error.isTransient && clock.now < deadline {
                                failures.withLock { $0.append(error.description) }
                                usleep(100_000)
                            }
                        }
                        batchesDone.withLock { $0 += 1 }
                    }
                    appendsEnded.withLock { $0 = clock.now }
                }
            }
            while batchesDone.withLock({ $0 }) < 5 { usleep(5_000) }
            cluster.kill(node: leader)
            let killedAt = clock.now
            try await appender.value
            let appendsResumedAfter = clock.now - killedAt
            let newLeader = try log.status().leader
            #expect(newLeader != nil && newLeader != leaderName)
            let records = confirmed.withLock { $0 }
            #expect(records.count == 600)

            // Everything confirmed is there, once, where append said; nothing else is.
            let expected = (0..<600).map { Self.record($0, tag: "f") }
            let byBytes = Dictionary(uniqueKeysWithValues: expected.map { ($0.bytes, $0.id) })
            func check(_ messages: [LogMessage], _ label: String) {
                #expect(messages.prefix(warmup.count).map(\.sequence) == warmup.map(\.sequence), "\(label): warm-up records")
                var seen: Set<String> = []
                for message in messages.dropFirst(warmup.count) {
                    guard let id = byBytes[message.bytes] else {
                        Issue.record("\(label): message \(message.sequence) is no appended record")
                        continue
                    }
                    #expect(seen.insert(id).inserted, "\(label): \(id) stored twice")
                    #expect(records[id]?.sequence == message.sequence, "\(label): \(id) not at its sequence")
                }
                let missing = expected.map(\.id).filter { !seen.contains($0) }
                #expect(
                    seen.count == 600,
                    "\(label): records read; missing \(missing.prefix(20)), last sequence read \(messages.last?.sequence ?? 0)")
                #expect(messages.map(\.sequence) == messages.map(\.sequence).sorted(), "\(label): in order")
            }
            let across = try await readAcross.value
            check(across.messages, "reader across the failover")
            // Reading through the new leader while a server is still down.
            let lastOnThree = (0..<600).last { $0 % 4 == 3 }.map { "f-\($0)" } ?? ""
            #expect(try log.lastMessage(on: "S.p.3")?.sequence == records[lastOnThree]?.sequence)

            try cluster.restart(node: leader)
            #expect(try log.status().messages == UInt64(total))
            check(try Self.readAll(try log.reader(filter: "S.>", from: 1)), "after the restart")
            let failed = failures.withLock { $0 }
            print(
                "failover: appends resumed \(appendsResumedAfter) after the kill, \(failed.count) failed append attempts "
                    + "(first: \(failed.first ?? "none")), the reader threw \(across.errors.count) times and made "
                    + "\(across.consumers) consumers after \(across.gaps) gap(s) in deliveries, test body \(clock.now - started)")
            // It takes 11 to 23 s on a quiet machine, 31 s in a CI run beside other suites (a stream
            // election takes nats-server 2.9 4 to 9 s): a generous bound.
            #expect(clock.now - started < .seconds(60))
        }
    }

    @Test("deliveries of its consumer that never reach the reader are read again from a new consumer, not skipped")
    func consumerGapIsReadAgain() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            let records = (0..<40).map { Self.record($0) }
            _ = try Self.appendAll(log, records)
            let reader = try #require(try log.reader(filter: "S.>", from: 1) as? JetStreamReader)
            defer { reader.close() }
            var read = try reader.next(max: 10, timeout: .seconds(1))
            #expect(read.count == 10)
            // Another pull request on the same consumer takes the next 5 deliveries, as a fetch whose
            // reply was lost with its server would: the consumer goes on after them.
            let consumer = try #require(try reader.consumerName())
            try Self.takeDeliveries(5, of: consumer, cluster)
            while read.count < 40 {
                let next = try reader.next(max: 10, timeout: .seconds(1))
                if next.isEmpty { break }
                read += next
            }
            #expect(read.map(\.bytes) == records.map(\.bytes))
            #expect(read.map(\.sequence) == Array(1...40))
            #expect(reader.gapsRecovered == 1)
            #expect(reader.consumersMade == 2)
            // The consumer left behind is deleted, not left to expire (which may take a moment under load).
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            var consumers = try log.status().consumers
            while consumers > 1 && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                consumers = try log.status().consumers
            }
            #expect(consumers == 1)
        }
    }

    /// Pulls `count` messages from `consumer` of the test stream on a connection of its own, one
    /// request each (the consumer counts them as delivered).
    static func takeDeliveries(_ count: Int, of consumer: String, _ cluster: NATSCluster) throws {
        var connection: OpaquePointer?
        guard natsConnection_ConnectTo(&connection, cluster.urls.joined(separator: ",")) == NATS_OK, let connection else {
            throw LogError("test: cannot connect to \(cluster.urls)", isTransient: false)
        }
        defer { natsConnection_Destroy(connection) }
        for _ in 0..<count {
            var reply: OpaquePointer?
            let status = natsConnection_RequestString(
                &reply, connection, "$JS.API.CONSUMER.MSG.NEXT.\(Self.stream).\(consumer)", #"{"batch":1}"#, 5_000)
            guard status == NATS_OK, let reply else { throw LogError("test: pull request failed (\(status))", isTransient: false) }
            natsMsg_Destroy(reply)
        }
    }

    @Test("an unreachable server fails init within seconds with a LogError naming the URL")
    func unreachableServer() async throws {
        let port = try freeLoopbackPort()
        let url = "nats://127.0.0.1:\(port)"
        let clock = ContinuousClock()
        var started = clock.now
        let refused = #expect(throws: LogError.self) {
            _ = try JetStreamLog(urls: [url], stream: Self.stream, subjects: Self.subjects, replicas: 1)
        }
        #expect(refused?.isTransient == true)
        #expect(refused?.description.contains(url) == true, "\(String(describing: refused))")
        #expect(clock.now - started < .seconds(3))

        // A server that accepts the connection but never speaks waits out the connect timeout only.
        let silent = try SilentListener()
        defer { silent.close() }
        let hanging = "nats://127.0.0.1:\(silent.port)"
        started = clock.now
        let unanswered = #expect(throws: LogError.self) {
            _ = try JetStreamLog(
                urls: [hanging, url], stream: Self.stream, subjects: Self.subjects, replicas: 1,
                connectTimeout: .seconds(1))
        }
        #expect(unanswered?.description.contains(hanging) == true && unanswered?.description.contains(url) == true)
        #expect(clock.now - started < .seconds(4))
    }

    @Test("records of 1 MiB at R3 are appended in one call and read back intact")
    func largeRecords() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            #expect(log.maximumRecordBytes == 8 << 20, "the cluster's max_payload, 8MB")
            // 1 MiB each, told apart by their first and last bytes.
            let records = (0..<24).map { index in
                var bytes = [UInt8](repeating: UInt8(index), count: 1 << 20)
                bytes[0] = 0xFF
                bytes[bytes.count - 1] = UInt8(255 - index)
                return LogEntry(subject: "S.big", id: "big-\(index)", bytes: bytes)
            }
            let results = try log.append(records)
            #expect(results.map(\.sequence) == Array(1...24))
            let reader = try log.reader(filter: "S.big", from: 1)
            defer { reader.close() }
            let messages = try Self.readAll(reader)
            #expect(messages.count == 24)
            #expect(messages.map(\.bytes) == records.map(\.bytes))
        }
    }

    @Test("a closed log fails its calls and its readers' at once")
    func closedLog() async throws {
        try await NATSCluster.with { cluster in
            let log = try Self.openLog(cluster)
            _ = try log.append([Self.record(0)])
            let reader = try log.reader(filter: "S.>", from: 1)
            log.close()
            log.close()
            #expect(throws: LogError.self) { _ = try log.append([Self.record(1)]) }
            #expect(throws: LogError.self) { _ = try reader.next(max: 1, timeout: .seconds(1)) }
            #expect(throws: LogError.self) { _ = try log.lastMessage(on: "S.p.0") }
            reader.close()
        }
    }
}

/// A value shared between threads behind a lock (a `Mutex` itself cannot be captured by the
/// escaping closures that run on other threads).
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) {
        self.mutex = Mutex(value)
    }

    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T {
        self.mutex.withLock { body(&$0) }
    }
}

/// A loopback port that accepts connections (the kernel completes the handshake) but never sends a
/// byte: a server that hangs.
final class SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        Glibc.close(self.descriptor)
    }
}

/// A value handed to another thread that the handing thread no longer touches (a reader, used by
/// one thread at a time).
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
