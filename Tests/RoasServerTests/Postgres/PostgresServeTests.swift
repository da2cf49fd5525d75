import Foundation
import Logging
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Testing

@testable import RoasServer

/// `roas serve --sink postgres://…` in process, against a real PostgreSQL: the table against the
/// rows of `roas run`, and an outage that back-pressures ingest.
@Suite("roas serve with the PostgreSQL sink", .serialized)
struct PostgresServeTests {
    static let oneMinute: Int64 = 60_000

    /// A generated stream and the rows `roas run` makes of it with one-minute windows.
    static func stream(seed: UInt64, events: Int, users: Int, creators: Int) throws -> (bytes: [UInt8], rows: [String]) {
        let stream = try ServeTests.generated(seed: seed, events: events, users: users, creators: creators)
        let rows = try ServeTests.runRows(stream) {
            $0.window = Self.oneMinute
            $0.slide = Self.oneMinute
        }
        return (stream, rows)
    }

    static func logger() -> Logger {
        var logger = Logger(label: "roas-test")
        logger.logLevel = .critical
        return logger
    }

    @Test("the table holds exactly the final rows of roas run; live rows go to their own table")
    func tableEqualsRun() async throws {
        let (stream, expected) = try Self.stream(seed: 21, events: 60_000, users: 5000, creators: 30)
        #expect(expected.count > 500)
        try await PostgresServer.with { database in
            let sink = try PostgresRowSink(url: database.url, logger: Self.logger())
            let server = try await ServerHarness.start(postgres: sink) {
                $0.run.configuration.window = Self.oneMinute
                $0.run.configuration.slide = Self.oneMinute
                $0.run.emitEvery = 50
            }
            _ = try await server.sendTCP(stream, pieces: 65536)
            let (_, written) = try await server.stop()
            let table = try await offThread { try database.rowsAsJSON() }
            #expect(table == expected.sorted())
            #expect(written.filter { $0.contains("\"final\":true") }.sorted() == table)
            // Live rows: at most one per key, each for a window that also has a final row.
            let live = try await offThread { try database.rowsAsJSON(table: "roas_live_rows", final: false) }
            #expect(!live.isEmpty)
            let keys = { (line: String) in line.components(separatedBy: ",\"views\"")[0] }
            #expect(Set(live.map(keys)).count == live.count)
            #expect(Set(live.map(keys)).isSubset(of: Set(table.map(keys))))
        }
    }

    @Test("while PostgreSQL is down TCP ingest stops at the queue bound and webhooks get 503; once it is back every row arrives once")
    func outageBackPressure() async throws {
        let (stream, expected) = try Self.stream(seed: 23, events: 200_000, users: 20_000, creators: 50)
        #expect(expected.count > 2000)
        try await PostgresServer.with { database in
            try await offThread { try database.stop() }
            let bound = 200
            let sink = try PostgresRowSink(url: database.url, logger: Self.logger(), maximumQueuedRows: bound)
            let server = try await ServerHarness.start(postgres: sink) {
                $0.run.configuration.window = Self.oneMinute
                $0.run.configuration.slide = Self.oneMinute
                // The TCP connection's chunks in flight, and one webhook.
                $0.maximumQueuedChunks = TCPIngest.chunksInFlight + 1
                // The kernel could otherwise hold the whole stream (tcp_rmem's maximum is 32 MiB here).
                $0.tcpReceiveBuffer = 256 << 10
            }
            let (sending, progress) = server.sendTCPCounting(stream, timeout: 300)
            // Once the queue is at its bound and the connection's chunks wait, the sender stalls,
            // and stays stalled.
            let blocked = try await server.eventually(timeout: 120) {
                let chunks = await server.server.ingestor.gauges.queuedChunks.load(ordering: .relaxed)
                return sink.queuedRows >= bound && chunks >= TCPIngest.chunksInFlight
            }
            #expect(blocked, "the sink's queue never reached its bound")
            let early = try await progress.stall()
            try await Task.sleep(for: .seconds(3))
            let later = progress.sent.load(ordering: .relaxed)
            let queued = sink.queuedRows
            print("PostgreSQL outage: sent \(early) then \(later) of \(stream.count) bytes, \(queued) rows queued")
            #expect(later < stream.count, "the whole stream went in although PostgreSQL was down")
            #expect(later == early, "the sender kept going (\(early) then \(later) bytes) while PostgreSQL was down")
            // Over the bound by at most what the chunks in flight made.
            #expect(queued >= bound && queued < bound + 2000, "\(queued) rows queued for a bound of \(bound)")
            #expect(sink.lastError != nil)
            // The TCP connection's chunks wait; a webhook (a bad line only: it adds no row) waits
            // too, and the one after it finds the queue full.
            // It waits until PostgreSQL is back and has taken the queue: minutes, at worst, on a loaded machine.
            let waiting = Task { try await server.post(Array("not json\n".utf8), id: "wh-waits", timeout: 300) }
            let full = try await server.eventually {
                await server.server.ingestor.gauges.queuedChunks.load(ordering: .relaxed) >= TCPIngest.chunksInFlight + 1
            }
            #expect(full, "the webhook should wait with the TCP connection's chunks")
            let refused = try await server.post(Array("not json\n".utf8), id: "wh-refused")
            #expect(refused.status == 503)
            #expect(refused.headers["retry-after"] != nil)

            try await offThread { try database.start() }
            #expect(try await waiting.value.status == 202)
            try await sending.value
            let (result, _) = try await server.stop()
            // Plus the webhook that waited (a batch counts its header as a line); the refused one was not read.
            #expect(result.statistics.linesRead == ServeTests.lineCount(stream) + 2)
            let table = try await offThread { try database.rowsAsJSON() }
            #expect(table.count == expected.count)
            #expect(table == expected.sorted())
        }
    }
}
