import RoasCore

/// The JSON answers of `roas serve`'s read routes, rendered from the live views' values (the
/// `Ingestor` actor only gathers them). Written by hand like every row roas writes, so that a row
/// inside `/v1/roas` has the same bytes as in the rows file; the shapes are in `schemas/`.
extension LiveOutput {
    /// `GET /v1/roas` (`schemas/snapshot.schema.json`): the board for one model, with the recent windows'
    /// totals and the stats.
    func roasJSON(
        _ query: LiveBoard.Query, configuration: EngineConfiguration, generatedAt: Int64, watermark: Int64, stats: ServeStats
    ) -> [UInt8] {
        var output: [UInt8] = []
        JSONText.append("{\"generated_at\":\"\(Timestamp.format(milliseconds: generatedAt))\"", to: &output)
        JSONText.append(",\"watermark\":\(ServeStats.watermarkJSON(watermark))", to: &output)
        JSONText.append(",\"model\":\"\(query.model ?? configuration.model.rawValue)\"", to: &output)
        JSONText.append(",\"models\":[\(Self.modelList(configuration))]", to: &output)
        JSONText.append(",\"window\":\"\(DurationText.text(configuration.window))\"", to: &output)
        JSONText.append(",\"slide\":\"\(DurationText.text(configuration.slide))\"", to: &output)
        let by = (configuration.byTier ? "tier" : "creator") + (configuration.byCampaign ? ",campaign" : "")
        JSONText.append(",\"by\":\"\(by)\",\"rows\":[", to: &output)
        for (index, item) in self.board.rows(query).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append("{\"creator\":", to: &output)
            Self.appendOptional(item.key.creator, to: &output)
            JSONText.append(",\"campaign\":", to: &output)
            Self.appendOptional(item.key.campaign, to: &output)
            JSONText.append(",\"tier\":", to: &output)
            Self.appendOptional(item.entry.shown?.tier, to: &output)
            JSONText.append(",\"open\":", to: &output)
            if let row = item.entry.current { row.appendJSON(to: &output) } else { JSONText.append("null", to: &output) }
            JSONText.append(",\"closed\":", to: &output)
            if let row = item.entry.closed { row.appendJSON(to: &output) } else { JSONText.append("null", to: &output) }
            output.append(UInt8(ascii: "}"))
        }
        JSONText.append("],\"recent_windows\":[", to: &output)
        for (index, total) in self.board.recentWindows.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            let f = total.figures
            JSONText.append(
                "{\"window_start\":\"\(Timestamp.format(milliseconds: total.start))\""
                    + ",\"window_end\":\"\(Timestamp.format(milliseconds: total.end))\""
                    + ",\"revenue\":\(Micros.text(f.revenue)),\"refunds\":\(Micros.text(f.refunds))"
                    + ",\"spend\":\(Micros.text(f.spend)),\"conversions\":\(Micros.text(f.conversions))}", to: &output)
        }
        JSONText.append("],\"stats\":", to: &output)
        output.append(contentsOf: stats.json)
        output.append(UInt8(ascii: "}"))
        return output
    }

    /// The models of `--models` (the one of `--model`) as JSON strings, comma-separated.
    static func modelList(_ configuration: EngineConfiguration) -> String {
        configuration.models.map { "\"\($0.rawValue)\"" }.joined(separator: ",")
    }

    /// `GET /v1/spread` (`schemas/spread.schema.json`): per key, its ROAS under each model of
    /// `--models`, widest spread first.
    func spreadJSON(configuration: EngineConfiguration, generatedAt: Int64, campaign: String?, tier: String?, limit: Int) -> [UInt8] {
        var output: [UInt8] = []
        JSONText.append("{\"generated_at\":\"\(Timestamp.format(milliseconds: generatedAt))\"", to: &output)
        JSONText.append(",\"models\":[\(Self.modelList(configuration))],\"rows\":[", to: &output)
        let models = configuration.labelsModels ? configuration.models.map(\.rawValue) : []
        for (index, spread) in self.board.spreads(models: models, campaign: campaign, tier: tier, limit: limit).enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.append("{\"creator\":", to: &output)
            Self.appendOptional(spread.creator, to: &output)
            JSONText.append(",\"campaign\":", to: &output)
            Self.appendOptional(spread.campaign, to: &output)
            JSONText.append(",\"tier\":", to: &output)
            Self.appendOptional(spread.tier, to: &output)
            JSONText.append(",\"roas\":{", to: &output)
            for (position, item) in spread.roas.enumerated() {
                JSONText.append((position > 0 ? "," : "") + "\"\(item.model)\":\(Row.roasText(item.roas))", to: &output)
            }
            JSONText.append(
                "},\"lowest\":{\"model\":\"\(spread.lowest.model)\",\"roas\":\(Row.roasText(spread.lowest.roas))}"
                    + ",\"highest\":{\"model\":\"\(spread.highest.model)\",\"roas\":\(Row.roasText(spread.highest.roas))}"
                    + ",\"spread\":\(Row.roasText(spread.spread))}", to: &output)
        }
        JSONText.append("]}", to: &output)
        return output
    }

    /// `GET /v1/alerts` (each alert as in `schemas/alert.schema.json`): the rules, the alerts firing and pending
    /// (oldest first window first), and the latest resolved ones, newest first.
    func alertsJSON() -> [UInt8] {
        var output: [UInt8] = []
        JSONText.append("{\"rules\":[", to: &output)
        for (index, rule) in self.alerts.rules.enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            JSONText.appendQuoted(rule.text.utf8, to: &output)
        }
        func ordered(_ alerts: some Collection<Alert>) -> [Alert] {
            alerts.sorted { a, b in
                a.firstWindowStart != b.firstWindowStart ? a.firstWindowStart < b.firstWindowStart : a.id < b.id
            }
        }
        for (name, alerts) in [("firing", ordered(self.alerts.firing.values)), ("pending", ordered(self.alerts.pending.values))] {
            JSONText.append("],\"\(name)\":[", to: &output)
            for (index, alert) in alerts.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                alert.appendJSON(to: &output)
            }
        }
        JSONText.append("],\"resolved\":[", to: &output)
        for (index, alert) in self.recentlyResolved.reversed().enumerated() {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            alert.appendJSON(to: &output)
        }
        JSONText.append("]}", to: &output)
        return output
    }

    private static func appendOptional(_ text: String?, to output: inout [UInt8]) {
        if let text { JSONText.appendQuoted(text.utf8, to: &output) } else { JSONText.append("null", to: &output) }
    }
}

/// The figures of the `stats` event of `/v1/stream`, also the `stats` member of `/v1/roas`.
struct ServeStats: Sendable, Equatable {
    /// Wall-clock milliseconds.
    var time: Int64
    /// Event-time milliseconds; `.min` or `.max` while there is none (`null`).
    var watermark: Int64
    var eventsPerSecond: Double
    var acceptedEvents: Int
    var deadLetters: Int
    var acceptedBatches: Int
    var rejectedBatches: Int
    var connections: Int

    var json: [UInt8] {
        let rate = (self.eventsPerSecond * 10).rounded() / 10
        return Array(
            ("{\"time\":\"\(Timestamp.format(milliseconds: self.time))\",\"watermark\":\(Self.watermarkJSON(self.watermark))"
                + ",\"events_per_second\":\(rate),\"accepted_events\":\(self.acceptedEvents)"
                + ",\"dead_letters\":\(self.deadLetters),\"accepted_batches\":\(self.acceptedBatches)"
                + ",\"rejected_batches\":\(self.rejectedBatches)"
                + ",\"connections\":\(self.connections)}").utf8)
    }

    static func watermarkJSON(_ watermark: Int64) -> String {
        guard watermark != .min && watermark != .max else { return "null" }
        return "\"\(Timestamp.format(milliseconds: watermark))\""
    }
}
