import RoasCore
import RoasRuntime

/// What `roas serve` adds to the engine host's file sinks: rows go to the live board (`/v1/roas`),
/// the event stream (`/v1/stream`) and the database sink, and through the alert rules, whose alerts
/// go to the alert log, the stream, `/v1/alerts` and the webhook queue.
///
/// It comes first among the host's sinks, before the rows file: a row's alerts are queued for the
/// webhooks (in the outbox, with `--data-dir`) and logged before the row can reach the rows file,
/// so a crash never leaves a written row whose alerts were not queued. Owned by the `Ingestor` actor.
final class LiveOutput: EngineOutputSink {
    let writesUpdates: Bool
    let postgres: PostgresRowSink?
    let hub: StreamHub
    let alertLog: ByteSink?
    let webhooks: AlertWebhookQueue?
    private(set) var board: LiveBoard
    /// `--alert`: the rules' state, and the latest resolved alerts (`/v1/alerts`).
    private(set) var alerts: AlertEvaluator
    private(set) var recentlyResolved: [Alert] = []
    static let keptResolvedAlerts = 100

    init(
        settings: ServeSettings, postgres: PostgresRowSink?, hub: StreamHub, alertLog: ByteSink?,
        webhooks: AlertWebhookQueue?
    ) {
        let configuration = settings.run.configuration
        self.writesUpdates = settings.run.emitEvery != nil
        self.postgres = postgres
        self.hub = hub
        self.alertLog = alertLog
        self.webhooks = webhooks
        self.board = LiveBoard(totalsModel: configuration.labelsModels ? configuration.models[0].rawValue : nil)
        self.alerts = AlertEvaluator(rules: settings.alertRules, slide: configuration.slide)
    }

    func write(_ output: EngineOutput, replayedFinalRows: Int) throws {
        guard !output.rows.isEmpty else { return }
        if let postgres = self.postgres {
            // Replayed rows too (recovery): the upsert makes writing a row again harmless.
            let rows = self.writesUpdates ? output.rows : output.rows.filter(\.isFinal)
            if !rows.isEmpty { postgres.append(rows) }
        }
        var events: [(name: String, data: [UInt8])] = []
        var replayedLeft = replayedFinalRows
        for row in output.rows {
            // Alerts of replayed rows too: the queue skips webhook ids it has queued or sent.
            let fired = self.alerts.observe(row)
            // Pending alerts (live rows) are shown, not sent: a webhook receives firing and resolved.
            self.webhooks?.offer(fired.filter { $0.state != .pending })
            var json: [UInt8] = []
            row.appendJSON(to: &json)
            self.board.absorb(row)
            events.append(("row", json))
            // Recovery replays final rows already written: their alerts were logged then too, so
            // they only rebuild the rules' state.
            let replayed = row.isFinal && replayedLeft > 0
            if replayed { replayedLeft -= 1 }
            for alert in fired where !replayed {
                var alertJSON: [UInt8] = []
                alert.appendJSON(to: &alertJSON)
                // Pending alerts reach the file with live rows, as in `roas run --emit-every`.
                if alert.state != .pending || self.writesUpdates {
                    try self.alertLog?.writeLine { $0.append(contentsOf: alertJSON) }
                }
                events.append(("alert", alertJSON))
                if alert.state == .resolved {
                    self.recentlyResolved.append(alert)
                    if self.recentlyResolved.count > Self.keptResolvedAlerts { self.recentlyResolved.removeFirst() }
                }
            }
        }
        try self.alertLog?.flush()
        self.webhooks?.sync()
        self.hub.publish(events)
    }

    func flush() throws {
        try self.alertLog?.flush()
    }
}
