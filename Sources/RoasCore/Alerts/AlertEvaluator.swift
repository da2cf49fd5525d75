/// A firing or resolved alert: what `--alerts` writes (`schemas/alert.schema.json`).
public struct Alert: Sendable, Equatable {
    public enum State: String, Sendable {
        /// A live row (`final: false`) of an open window matches and would fire the alert if the
        /// window closed now: the id it would fire with, not yet firing.
        case pending
        case firing, resolved
    }

    /// Stable for (rule, key, first window): the same stream gives the same ids in every run.
    public var id: String
    public var rule: String
    public var state: State
    /// The first window of the run of matching windows that fired it.
    public var firstWindowStart: Int64
    /// The row that fired it (firing) or that no longer matched (resolved).
    public var row: Row

    public func appendJSON(to output: inout [UInt8]) {
        JSONText.append("{\"id\":\"\(self.id)\",", to: &output)
        if let model = self.row.model { JSONText.append("\"model\":\"\(model)\",", to: &output) }
        JSONText.append("\"rule\":", to: &output)
        JSONText.appendQuoted(self.rule.utf8, to: &output)
        JSONText.append(",\"state\":\"\(self.state.rawValue)\",\"creator\":", to: &output)
        Self.appendOptional(self.row.creator, to: &output)
        JSONText.append(",\"campaign\":", to: &output)
        Self.appendOptional(self.row.campaign, to: &output)
        JSONText.append(",\"tier\":", to: &output)
        Self.appendOptional(self.row.tier, to: &output)
        JSONText.append(
            ",\"first_window_start\":\"\(Timestamp.format(milliseconds: self.firstWindowStart))\""
                + ",\"window_start\":\"\(Timestamp.format(milliseconds: self.row.windowStart))\""
                + ",\"window_end\":\"\(Timestamp.format(milliseconds: self.row.windowEnd))\",\"row\":", to: &output)
        self.row.appendJSON(to: &output)
        output.append(UInt8(ascii: "}"))
    }

    public var json: String {
        var output: [UInt8] = []
        self.appendJSON(to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    private static func appendOptional(_ text: String?, to output: inout [UInt8]) {
        if let text { JSONText.appendQuoted(text.utf8, to: &output) } else { JSONText.append("null", to: &output) }
    }
}

/// Evaluates alert rules on rows, in the order the engine emits them.
///
/// Per rule and key (creator, campaign, and a roll-up's tier) it counts the consecutive final
/// windows that match (windows one slide apart; a window without a row for the key starts the count
/// again). When the count reaches the rule's `windows`, the alert fires; when a later final window of
/// that key no longer matches, it resolves. A firing alert whose key has no more rows stays firing.
///
/// A live row (`--emit-every`, and `roas serve`'s live board) that matches, of an open window that
/// would complete the count (the window right after the key's last matching final window, or any
/// window when the rule needs one), makes the alert pending: reported once per window, with the id
/// it would fire with. A later live row that no longer matches, or the window's final row, ends it.
public struct AlertEvaluator: Sendable {
    public let rules: [AlertRule]
    let slide: Int64
    private var streaks: [StreakKey: Streak] = [:]
    /// Alerts firing now, by id.
    public private(set) var firing: [String: Alert] = [:]
    /// Alerts pending now (state `pending`, with the latest matching live row), by rule, key and window.
    public private(set) var pending: [PendingKey: Alert] = [:]

    public struct PendingKey: Hashable, Sendable {
        var streak: StreakKey
        var windowStart: Int64
    }

    public struct StreakKey: Hashable, Sendable {
        var rule: Int
        var creator: String?
        var campaign: String?
        var rollUp: String?
        /// With `--models`, each model's rows keep their own streaks.
        var model: String?
    }

    struct Streak: Sendable {
        var count: Int
        var firstStart: Int64
        var lastStart: Int64
        var firingID: String?
    }

    public init(rules: [AlertRule], slide: Int64) {
        self.rules = rules
        self.slide = slide
    }

    /// The alerts that `row` fires or resolves (a final row), or makes pending (a live row).
    public mutating func observe(_ row: Row) -> [Alert] {
        guard !self.rules.isEmpty else { return [] }
        var alerts: [Alert] = []
        for (index, rule) in self.rules.enumerated() {
            let key = StreakKey(
                rule: index, creator: row.creator, campaign: row.campaign, rollUp: row.creator == nil ? row.tier : nil,
                model: row.model)
            let pendingKey = PendingKey(streak: key, windowStart: row.windowStart)
            var streak = self.streaks[key]
            guard row.isFinal else {
                if let alert = self.pend(rule, key: key, streak: streak, row: row) {
                    if self.pending.updateValue(alert, forKey: pendingKey) == nil { alerts.append(alert) }
                } else {
                    self.pending[pendingKey] = nil
                }
                continue
            }
            // The window closed: a pending alert of it fires below or ends.
            self.pending[pendingKey] = nil
            if rule.matches(row) {
                if var current = streak, current.lastStart == row.windowStart - self.slide {
                    current.count += 1
                    current.lastStart = row.windowStart
                    streak = current
                } else if var current = streak, current.firingID != nil {
                    // A gap while firing: the alert stays, and the run goes on from this window.
                    current.lastStart = row.windowStart
                    streak = current
                } else {
                    streak = Streak(count: 1, firstStart: row.windowStart, lastStart: row.windowStart, firingID: nil)
                }
                if streak!.firingID == nil && streak!.count >= rule.windows {
                    let id = Self.id(rule: rule.text, key: key, firstStart: streak!.firstStart)
                    let alert = Alert(id: id, rule: rule.text, state: .firing, firstWindowStart: streak!.firstStart, row: row)
                    streak!.firingID = id
                    self.firing[id] = alert
                    alerts.append(alert)
                }
                self.streaks[key] = streak
            } else if let current = streak {
                if let id = current.firingID, let fired = self.firing.removeValue(forKey: id) {
                    alerts.append(Alert(id: id, rule: rule.text, state: .resolved, firstWindowStart: fired.firstWindowStart, row: row))
                }
                self.streaks[key] = nil
            }
        }
        return alerts
    }

    /// The pending alert a live row of an open window makes, or nil: the rule matches, the key is not
    /// firing, and with this window the run of matching windows would reach the rule's count.
    private func pend(_ rule: AlertRule, key: StreakKey, streak: Streak?, row: Row) -> Alert? {
        guard rule.matches(row), streak?.firingID == nil else { return nil }
        let continues = streak.map { $0.lastStart == row.windowStart - self.slide } ?? false
        let count = continues ? streak!.count + 1 : 1
        guard count >= rule.windows else { return nil }
        let first = continues ? streak!.firstStart : row.windowStart
        return Alert(
            id: Self.id(rule: rule.text, key: key, firstStart: first), rule: rule.text, state: .pending,
            firstWindowStart: first, row: row)
    }

    /// `a-` and 16 hex digits of a 64-bit hash of the rule, the key and the first window.
    static func id(rule: String, key: StreakKey, firstStart: Int64) -> String {
        var bytes = Array(rule.utf8)
        for part in [key.creator, key.campaign, key.rollUp] {
            bytes.append(0)
            if let part {
                bytes.append(1)
                bytes += part.utf8
            }
        }
        bytes.append(0)
        bytes += String(firstStart).utf8
        // After the rest, so that ids without `--models` stay those of earlier releases.
        if let model = key.model {
            bytes.append(0)
            bytes += model.utf8
        }
        let hash = ReachSketch.hash(bytes)
        let hex = String(hash, radix: 16)
        return "a-" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}
