/// The end-of-run summary: line accounting by type and reason, rows and speed.
public struct Summary: Sendable {
    public var statistics: Statistics
    public var state: Engine.StateSizes
    public var seconds: Double

    public init(statistics: Statistics, state: Engine.StateSizes, seconds: Double) {
        self.statistics = statistics
        self.state = state
        self.seconds = seconds
    }

    public var eventsPerSecond: Double {
        self.seconds > 0 ? Double(self.statistics.linesRead) / self.seconds : 0
    }

    /// A few aligned lines for people.
    public var text: String {
        let s = self.statistics
        var lines: [String] = []
        lines.append(
            "roas: \(s.linesRead) lines (\(Summary.megabytes(s.bytesRead)) MB) in \(Summary.fixed(self.seconds, 3)) s"
                + ", \(Summary.fixed(self.eventsPerSecond / 1e6, 3)) M lines/s")
        let kinds = EventKind.allCases.map { "\($0.name) \(s.accepted($0))" }.joined(separator: ", ")
        lines.append("  accepted     \(s.acceptedLines): \(kinds), batch headers \(s.acceptedBatches)")
        let reasons = Reason.allCases.filter { s.deadLetters($0) > 0 }.map { "\($0.rawValue) \(s.deadLetters($0))" }
        lines.append("  dead letters \(s.deadLetterCount)" + (reasons.isEmpty ? "" : ": " + reasons.joined(separator: ", ")))
        lines.append("  blank        \(s.blankLines)")
        let rejected = Reason.allCases.filter { s.rejectedBatches($0) > 0 }.map { "\($0.rawValue) \(s.rejectedBatches($0))" }
        lines.append(
            "  batches      \(s.acceptedBatches) accepted, \(s.rejectedBatches.reduce(0, +)) rejected"
                + (rejected.isEmpty ? "" : ": " + rejected.joined(separator: ", ")))
        lines.append("  rows         \(s.finalRows) final, \(s.updateRows) live updates")
        lines.append(
            "  accounting   accepted + dead letters + blank = \(s.acceptedLines + s.deadLetterCount + s.blankLines)"
                + " of \(s.linesRead) lines read" + (s.balances ? " (balanced)" : " (UNBALANCED)"))
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object (see schemas/summary.schema.json).
    public var json: String {
        let s = self.statistics
        func object(_ pairs: [(String, Int)]) -> String {
            "{" + pairs.map { "\(JSONText.quoted($0.0)):\($0.1)" }.joined(separator: ",") + "}"
        }
        let accepted = object(EventKind.allCases.map { ($0.name, s.accepted($0)) })
        let dead = object(Reason.allCases.map { ($0.rawValue, s.deadLetters($0)) }.filter { $0.1 > 0 })
        let rejected = object(Reason.allCases.map { ($0.rawValue, s.rejectedBatches($0)) }.filter { $0.1 > 0 })
        return "{\"lines_read\":\(s.linesRead),\"bytes_read\":\(s.bytesRead),\"accepted_lines\":\(s.acceptedLines)"
            + ",\"accepted_events\":\(accepted),\"accepted_batches\":\(s.acceptedBatches)"
            + ",\"rejected_batches\":\(rejected),\"dead_letters\":\(dead),\"dead_letter_count\":\(s.deadLetterCount)"
            + ",\"blank_lines\":\(s.blankLines),\"final_rows\":\(s.finalRows),\"update_rows\":\(s.updateRows)"
            + ",\"seconds\":\(Summary.fixed(self.seconds, 6)),\"lines_per_second\":\(Int(self.eventsPerSecond))"
            + ",\"balanced\":\(s.balances)}\n"
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        let whole = scaled / Int64(scale)
        var fraction = String(scaled % Int64(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        return digits == 0 ? "\(whole)" : "\(whole).\(fraction)"
    }

    static func megabytes(_ bytes: Int) -> String { fixed(Double(bytes) / 1e6, 1) }
}
