import PostgresNIO
import RoasCore
import RoasRuntime

/// The SQL of the PostgreSQL sink: the two tables and the one upsert that writes a batch.
///
/// Final rows go to `roas_rows`, live rows to `roas_live_rows`; both are keyed by
/// (window_start, window_end, creator, campaign, tier_key, model) with `NULLS NOT DISTINCT`
/// (PostgreSQL 15 or newer), so a NULL creator or campaign is one key and replays overwrite instead
/// of adding rows. `tier_key` is the tier of a `--by tier` roll-up row (whose creator is NULL) and ''
/// otherwise, so the roll-ups of several tiers, and per-creator rows, can share the tables; `model` is
/// the row's model with `--models` and '' without, so every model's rows can share them too.
enum PostgresRowStatements {
    static let finalTable = "roas_rows"
    static let liveTable = "roas_live_rows"
    /// `NULLS NOT DISTINCT` appeared in PostgreSQL 15.
    static let minimumServerVersion = 150_000

    /// Columns added after the first release, with their types: `prepare` adds those a table made by
    /// an older roas lacks (`ADD COLUMN IF NOT EXISTS`, keeping its rows, where they are NULL).
    static let addedColumns: [(name: String, type: String)] = [
        ("ctr", "double precision NULL"), ("cvr", "double precision NULL"), ("aov", "double precision NULL"),
        ("cpa", "double precision NULL"), ("net_revenue", "numeric(20,6) NULL"), ("roi", "double precision NULL"),
        ("reach", "bigint NULL"), ("engagements", "bigint NULL"), ("engagement_rate", "double precision NULL"),
        ("leads", "numeric(20,6) NULL"), ("cpl", "double precision NULL"), ("tier", "text NULL"),
    ]

    /// The key column added with `--by tier`: a table made before it gains it with '' in every row.
    static let tierKeyColumn = "tier_key text NOT NULL DEFAULT ''"
    /// The key column added with `--models`: '' in the rows of a `--model` run.
    static let modelColumn = "model text NOT NULL DEFAULT ''"
    /// The unique key of both tables.
    static let keyColumns = "window_start, window_end, creator, campaign, tier_key, model"

    /// The KPI columns the upsert writes besides the first release's, in order.
    static let addedColumnList = Self.addedColumns.map(\.name).joined(separator: ", ")

    static func addColumns(_ table: String) -> PostgresQuery {
        let clauses = Self.addedColumns.map { "ADD COLUMN IF NOT EXISTS \($0.name) \($0.type)" }
        return PostgresQuery(
            unsafeSQL: "ALTER TABLE \(table) " + clauses.joined(separator: ", ") + ", ADD COLUMN IF NOT EXISTS "
                + Self.tierKeyColumn + ", ADD COLUMN IF NOT EXISTS " + Self.modelColumn)
    }

    /// Makes the table's key include `tier_key` and `model` when it was made without them (the index
    /// is rebuilt once).
    static func widenKey(_ table: String) -> PostgresQuery {
        PostgresQuery(
            unsafeSQL: """
                DO $$ BEGIN
                    IF NOT EXISTS (
                        SELECT 1 FROM pg_constraint c
                        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
                        WHERE c.conrelid = '\(table)'::regclass AND c.conname = '\(table)_key' AND a.attname = 'model'
                    ) THEN
                        ALTER TABLE \(table) DROP CONSTRAINT IF EXISTS \(table)_key;
                        ALTER TABLE \(table) ADD CONSTRAINT \(table)_key
                            UNIQUE NULLS NOT DISTINCT (\(Self.keyColumns));
                    END IF;
                END $$
                """)
    }

    static func createTable(_ name: String) -> PostgresQuery {
        // Names are our constants, never user input.
        PostgresQuery(
            unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(name) (
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
                    \(Self.tierKeyColumn),
                    \(Self.modelColumn),
                    CONSTRAINT \(name)_key UNIQUE NULLS NOT DISTINCT (\(Self.keyColumns))
                )
                """
        )
    }

    static let serverVersion: PostgresQuery = "SELECT current_setting('server_version_num')::int4"

    /// One statement for the whole batch: the rows travel as parallel arrays (NULLs as flag
    /// arrays or NaN, since PostgresNIO binds no arrays of optionals), are unnested in order and upserted
    /// into both tables by two data-modifying CTEs.
    ///
    /// Money and conversions travel as Int64 micro-units and become `numeric` by an exact
    /// multiplication by 0.000001; times travel as epoch milliseconds. An upsert whose figures are
    /// already stored leaves the row alone (`updated_at` included), so a replay changes nothing.
    ///
    /// - Precondition: no two rows share a table and key (`PostgresRowBatch` keeps the last one):
    ///   an `ON CONFLICT DO UPDATE` cannot touch one row twice in a statement.
    static func upsert(_ batch: PostgresRowBatch) -> PostgresQuery {
        """
        WITH input AS (
            SELECT 'epoch'::timestamptz + u.window_start * interval '1 millisecond' AS window_start,
                'epoch'::timestamptz + u.window_end * interval '1 millisecond' AS window_end,
                CASE WHEN u.creator_is_null THEN NULL ELSE u.creator END AS creator,
                CASE WHEN u.campaign_is_null THEN NULL ELSE u.campaign END AS campaign,
                u.views, u.clicks,
                u.conversions * 0.000001 AS conversions, u.revenue * 0.000001 AS revenue,
                u.refunds * 0.000001 AS refunds, u.spend * 0.000001 AS spend,
                CASE WHEN u.roas_is_null THEN NULL ELSE u.roas END AS roas,
                NULLIF(u.ctr, 'NaN') AS ctr, NULLIF(u.cvr, 'NaN') AS cvr, NULLIF(u.aov, 'NaN') AS aov,
                NULLIF(u.cpa, 'NaN') AS cpa, u.net_revenue * 0.000001 AS net_revenue, NULLIF(u.roi, 'NaN') AS roi,
                u.reach, u.engagements, NULLIF(u.engagement_rate, 'NaN') AS engagement_rate,
                u.leads * 0.000001 AS leads, NULLIF(u.cpl, 'NaN') AS cpl,
                CASE WHEN u.tier_is_null THEN NULL ELSE u.tier END AS tier, u.tier_key, u.model,
                u.is_final
            FROM unnest(
                \(batch.windowStarts)::int8[], \(batch.windowEnds)::int8[],
                \(batch.creators)::text[], \(batch.creatorIsNull)::bool[],
                \(batch.campaigns)::text[], \(batch.campaignIsNull)::bool[],
                \(batch.views)::int8[], \(batch.clicks)::int8[], \(batch.conversions)::int8[],
                \(batch.revenue)::int8[], \(batch.refunds)::int8[], \(batch.spend)::int8[],
                \(batch.roas)::float8[], \(batch.roasIsNull)::bool[],
                \(batch.ctr)::float8[], \(batch.cvr)::float8[], \(batch.aov)::float8[], \(batch.cpa)::float8[],
                \(batch.netRevenue)::int8[], \(batch.roi)::float8[],
                \(batch.reach)::int8[], \(batch.engagements)::int8[], \(batch.engagementRate)::float8[],
                \(batch.leads)::int8[], \(batch.cpl)::float8[], \(batch.tiers)::text[], \(batch.tierIsNull)::bool[],
                \(batch.tierKeys)::text[], \(batch.models)::text[], \(batch.isFinal)::bool[]
            ) AS u(window_start, window_end, creator, creator_is_null, campaign, campaign_is_null,
                views, clicks, conversions, revenue, refunds, spend, roas, roas_is_null,
                ctr, cvr, aov, cpa, net_revenue, roi, reach, engagements, engagement_rate, leads, cpl,
                tier, tier_is_null, tier_key, model, is_final)
        ), finals AS (
            \(unescaped: Self.upsert(into: Self.finalTable, from: "input WHERE is_final"))
        )
        \(unescaped: Self.upsert(into: Self.liveTable, from: "input WHERE NOT is_final"))
        """
    }

    /// The added columns qualified by `table`: `t.ctr, t.cvr, ...`.
    private static func columns(_ table: String) -> String {
        Self.addedColumns.map { "\(table).\($0.name)" }.joined(separator: ", ")
    }

    /// Upserts the rows of `source` into `table`, leaving a row whose figures are already stored alone.
    private static func upsert(into table: String, from source: String) -> String {
        """
        INSERT INTO \(table) AS t (\(Self.keyColumns), views, clicks,
            conversions, revenue, refunds, spend, roas, \(Self.addedColumnList))
        SELECT \(Self.keyColumns), views, clicks,
            conversions, revenue, refunds, spend, roas, \(Self.addedColumnList)
        FROM \(source)
        ON CONFLICT (\(Self.keyColumns)) DO UPDATE SET
            views = excluded.views, clicks = excluded.clicks, conversions = excluded.conversions,
            revenue = excluded.revenue, refunds = excluded.refunds, spend = excluded.spend,
            roas = excluded.roas, \(Self.addedColumns.map { "\($0.name) = excluded.\($0.name)" }.joined(separator: ", ")),
            updated_at = now()
        WHERE (t.views, t.clicks, t.conversions, t.revenue, t.refunds, t.spend, t.roas, \(Self.columns("t")))
            IS DISTINCT FROM (excluded.views, excluded.clicks, excluded.conversions,
                excluded.revenue, excluded.refunds, excluded.spend, excluded.roas, \(Self.columns("excluded")))
        """
    }
}
