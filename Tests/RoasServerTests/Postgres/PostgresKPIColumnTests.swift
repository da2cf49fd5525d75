import Foundation
import Logging
import PostgresNIO
import RoasCore
import RoasGen
import RoasRuntime
import RoasTestSupport
import Testing

@testable import RoasServer

/// The KPI columns of the PostgreSQL sink: their values, their NULLs, and tables made by an older roas.
@Suite("PostgreSQL sink KPI columns", .serialized)
struct PostgresKPIColumnTests {
    /// The table `roas serve` created before the KPI columns, as it was.
    static let firstReleaseTable = """
        CREATE TABLE roas_rows (
            window_start timestamptz NOT NULL,
            window_end timestamptz NOT NULL,
            creator text NULL,
            campaign text NULL,
            views bigint NOT NULL,
            clicks bigint NOT NULL,
            conversions numeric(20,6) NOT NULL,
            revenue numeric(20,6) NOT NULL,
            refunds numeric(20,6) NOT NULL,
            spend numeric(20,6) NOT NULL,
            roas double precision NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT roas_rows_key UNIQUE NULLS NOT DISTINCT (window_start, window_end, creator, campaign)
        )
        """

    struct KPIs: Equatable {
        var creator: String?
        var ctr: Double?
        var cvr: Double?
        var aov: Double?
        var cpa: Double?
        var netRevenue: String?
        var roi: Double?
    }

    static func kpis(_ server: PostgresServer) async throws -> [KPIs] {
        let sql = """
            SELECT creator, ctr, cvr, aov, cpa, net_revenue::text, roi FROM roas_rows
            ORDER BY creator NULLS FIRST
            """
        return try await PostgresRowSinkTests.withConnection(server) { connection, logger in
            var result: [KPIs] = []
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await row in rows.decode((String?, Double?, Double?, Double?, Double?, String?, Double?).self) {
                result.append(
                    KPIs(creator: row.0, ctr: row.1, cvr: row.2, aov: row.3, cpa: row.4, netRevenue: row.5, roi: row.6))
            }
            return result
        }
    }

    @Test("the KPI columns hold each row's ratios, NULL where the denominator is 0, and the net revenue exactly")
    func kpiColumns() async throws {
        try await PostgresServer.with { server in
            let rows = [
                // 10 views, 4 clicks, 2 conversions of 30 in all, 5 refunded, 10 spent.
                PostgresRowSinkTests.row(
                    "a", nil, views: 10, clicks: 4, conversions: 2_000_000, revenue: 30_000_000, refunds: 5_000_000,
                    spend: 10_000_000),
                // Nothing to divide by: every ratio NULL; refunds only: a negative net revenue.
                PostgresRowSinkTests.row("b", nil, refunds: 1_500_000),
            ]
            let sink = try PostgresRowSink(url: server.url, logger: LogCapture().logger(level: .info))
            try await PostgresRowSinkTests.running(sink) {
                try await PostgresRowSinkTests.bounded { try await sink.waitDelivered(await sink.enqueue(rows)) }
            }
            let stored = try await Self.kpis(server)
            #expect(
                stored == [
                    KPIs(creator: "a", ctr: 0.4, cvr: 0.5, aov: 15, cpa: 5, netRevenue: "25.000000", roi: 1.5),
                    KPIs(creator: "b", netRevenue: "-1.500000"),
                ])
        }
    }

    /// The scoreboard columns of a row, in text: reach, engagements, engagement_rate, leads, cpl, tier, tier_key.
    static func scoreboard(_ server: PostgresServer, table: String = "roas_rows") async throws -> [String] {
        let sql = """
            SELECT concat_ws('|', coalesce(creator, '-'), coalesce(reach::text, '-'), coalesce(engagements::text, '-'),
                coalesce(engagement_rate::text, '-'), coalesce(leads::text, '-'), coalesce(cpl::text, '-'),
                coalesce(tier, '-'), tier_key)
            FROM \(table) ORDER BY creator NULLS FIRST, tier_key
            """
        return try await PostgresRowSinkTests.withConnection(server) { connection, logger in
            var result: [String] = []
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
            for try await row in rows.decode(String.self) { result.append(row) }
            return result
        }
    }

    @Test("reach, engagements, leads and tier are stored; --by tier roll-ups of one window are one row per tier")
    func scoreboardColumns() async throws {
        try await PostgresServer.with { server in
            var creatorRow = PostgresRowSinkTests.row("a", nil, views: 8, spend: 6_000_000)
            creatorRow.reach = 5
            creatorRow.figures.engagements = 2
            creatorRow.figures.leads = 1_500_000
            creatorRow.tier = "micro"
            var micro = PostgresRowSinkTests.row(nil, nil, views: 8)
            micro.tier = "micro"
            micro.reach = 7
            var unknown = PostgresRowSinkTests.row(nil, nil, views: 1)
            unknown.tier = "unknown"
            let unattributed = PostgresRowSinkTests.row(nil, nil, conversions: 1_000_000, revenue: 5_000_000)
            let rows = [creatorRow, micro, unknown, unattributed]
            let sink = try PostgresRowSink(url: server.url, logger: LogCapture().logger(level: .info))
            try await PostgresRowSinkTests.running(sink) {
                try await PostgresRowSinkTests.bounded {
                    try await sink.waitDelivered(await sink.enqueue(rows))
                }
                // A replay changes nothing and adds no row.
                try await PostgresRowSinkTests.bounded {
                    try await sink.waitDelivered(await sink.enqueue(rows))
                }
            }
            #expect(
                try await Self.scoreboard(server) == [
                    "-|0|0|-|0.000000|-|-|", "-|7|0|0|0.000000|-|micro|micro", "-|0|0|0|0.000000|-|unknown|unknown",
                    "a|5|2|0.25|1.500000|4|micro|",
                ])
        }
    }

    @Test("with --models each model's row of a key is a row of its own, keyed by model; a replay adds none")
    func modelsAreKeyColumns() async throws {
        try await PostgresServer.with { server in
            // Made by the previous release: keyed by tier_key, without model.
            try await PostgresRowSinkTests.execute(
                server,
                Self.firstReleaseTable.replacingOccurrences(
                    of: "updated_at timestamptz NOT NULL DEFAULT now(),",
                    with: "updated_at timestamptz NOT NULL DEFAULT now(), tier_key text NOT NULL DEFAULT '',"
                )
                .replacingOccurrences(
                    of: "(window_start, window_end, creator, campaign)", with: "(window_start, window_end, creator, campaign, tier_key)"))
            var last = PostgresRowSinkTests.row("a", nil, views: 4, conversions: 1_000_000, revenue: 9_000_000, spend: 3_000_000)
            last.model = "last-touch"
            var linear = last
            linear.model = "linear"
            linear.figures.revenue = 4_500_000
            linear.figures.conversions = 500_000
            let rows = [last, linear]
            let sink = try PostgresRowSink(url: server.url, logger: LogCapture().logger(level: .info))
            try await PostgresRowSinkTests.running(sink) {
                for _ in 0..<2 {
                    try await PostgresRowSinkTests.bounded { try await sink.waitDelivered(await sink.enqueue(rows)) }
                }
            }
            let stored = try await PostgresRowSinkTests.withConnection(server) { connection, logger in
                var result: [String] = []
                let rows = try await connection.query(
                    "SELECT concat_ws('|', model, creator, revenue::text, roas::text) FROM roas_rows ORDER BY model", logger: logger)
                for try await row in rows.decode(String.self) { result.append(row) }
                return result
            }
            #expect(stored == ["last-touch|a|9.000000|3", "linear|a|4.500000|1.5"])
        }
    }

    @Test("a table made before the KPI columns gains them on start and keeps its rows")
    func oldTableGainsColumns() async throws {
        try await PostgresServer.with { server in
            try await PostgresRowSinkTests.execute(server, Self.firstReleaseTable)
            try await PostgresRowSinkTests.execute(
                server,
                """
                INSERT INTO roas_rows (window_start, window_end, creator, campaign, views, clicks, conversions,
                    revenue, refunds, spend, roas)
                VALUES ('2026-11-20T00:00:00Z', '2026-11-20T01:00:00Z', 'old', NULL, 7, 1, 0, 0, 0, 2, 0)
                """)
            let rows = [PostgresRowSinkTests.row("new", nil, views: 4, clicks: 1, spend: 2_000_000)]
            let sink = try PostgresRowSink(url: server.url, logger: LogCapture().logger(level: .info))
            try await PostgresRowSinkTests.running(sink) {
                try await PostgresRowSinkTests.bounded { try await sink.waitDelivered(await sink.enqueue(rows)) }
            }
            let stored = try await PostgresRowSinkTests.fetch(server, table: "roas_rows")
            #expect(stored.map(\.creator) == ["old", "new"])
            // The old row's new columns are NULL (its tier_key ''); the key now tells tiers apart.
            #expect(try await Self.scoreboard(server) == ["new|0|0|0|0.000000|-|-|", "old|-|-|-|-|-|-|"])
            #expect(stored.first?.views == 7)
            #expect(
                try await Self.kpis(server) == [
                    KPIs(creator: "new", ctr: 0.25, cvr: 0, netRevenue: "0.000000", roi: -1),
                    KPIs(creator: "old"),
                ])
        }
    }
}
