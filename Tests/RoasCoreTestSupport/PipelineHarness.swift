import Foundation
import RoasCore

/// 2026-11-21T10:00:00Z, an hour boundary.
package let t0: Int64 = 1_795_255_200_000
package let second: Int64 = 1000
package let minute: Int64 = 60_000
package let hour: Int64 = 3_600_000
package let day: Int64 = 86_400_000

/// Runs lines through a whole `Pipeline` in memory and collects what comes out.
package struct PipelineHarness {
    package var configuration: EngineConfiguration
    package var secrets: [WebhookSecret] = []
    package var tolerance: Int64 = 0
    package var now: Int64 = 1_795_255_200
    package var maximumLineLength = 1 << 20
    package var maximumBatchBytes = 16 << 20

    package init(_ configure: (inout EngineConfiguration) -> Void = { _ in }) {
        var configuration = EngineConfiguration(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1, "GBP": 1.25]))
        configure(&configuration)
        self.configuration = configuration
    }

    package struct Result {
        package var rows: [Row]
        package var deadLetters: [DeadLetter]
        package var statistics: Statistics

        package var finalRows: [Row] { self.rows.filter(\.isFinal) }
        package var reasons: [Reason] { self.deadLetters.map(\.reason) }

        package func row(_ creator: String?, at start: Int64, campaign: String? = nil) -> Row? {
            self.finalRows.first { $0.creator == creator && $0.windowStart == start && $0.campaign == campaign }
        }
    }

    package func run(_ lines: [String]) -> Result {
        self.run(bytes: Array(lines.map { $0 + "\n" }.joined().utf8))
    }

    package func run(bytes: [UInt8], chunkSize: Int = 1 << 16) -> Result {
        let now = self.now
        var pipeline = Pipeline(
            configuration: self.configuration, secrets: self.secrets, tolerance: self.tolerance,
            maximumLineLength: self.maximumLineLength, maximumBatchBytes: self.maximumBatchBytes, now: { now })
        var rows: [Row] = []
        var deadLetters: [DeadLetter] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunkSize)
            bytes[offset..<end].withUnsafeBytes { pipeline.consume($0) }
            rows += pipeline.output.rows
            deadLetters += pipeline.output.deadLetters
            pipeline.output.removeAll()
            offset = end
        }
        pipeline.finish()
        rows += pipeline.output.rows
        deadLetters += pipeline.output.deadLetters
        return Result(rows: rows, deadLetters: deadLetters, statistics: pipeline.statistics)
    }

    /// A signed batch frame (header line and payload) for `lines`.
    package func batch(_ lines: [String], id: String, timestamp: Int64? = nil, secret: WebhookSecret? = nil) -> String {
        let payload = Array(lines.map { $0 + "\n" }.joined().utf8)
        let signer = WebhookSigner(secrets: [secret ?? self.secrets[0]])
        let timestamp = timestamp ?? self.now
        let signature = payload.withUnsafeBytes { signer.signature(id: id, timestamp: timestamp, body: $0) }
        let header = BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: payload.count)
        return header.line + "\n" + String(decoding: payload, as: UTF8.self)
    }
}

/// Event lines, written the way senders write them.
package enum Line {
    package static func campaignField(_ campaign: String?) -> String {
        campaign.map { ",\"campaign\":\"\($0)\"" } ?? ""
    }

    package static func view(_ id: String, _ ts: Int64, user: String, creator: String, campaign: String? = nil) -> String {
        #"{"type":"view","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)"\#(campaignField(campaign))}"#
    }

    package static func click(_ id: String, _ ts: Int64, user: String, creator: String, campaign: String? = nil) -> String {
        #"{"type":"click","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)"\#(campaignField(campaign))}"#
    }

    package static func purchase(_ id: String, _ ts: Int64, user: String, order: String, amount: String, currency: String? = nil) -> String {
        let currencyField = currency.map { ",\"currency\":\"\($0)\"" } ?? ""
        return #"{"type":"purchase","id":"\#(id)","ts":\#(ts),"user":"\#(user)","order":"\#(order)","amount":\#(amount)\#(currencyField)}"#
    }

    package static func refund(_ id: String, _ ts: Int64, order: String, amount: String, currency: String? = nil) -> String {
        let currencyField = currency.map { ",\"currency\":\"\($0)\"" } ?? ""
        return #"{"type":"refund","id":"\#(id)","ts":\#(ts),"order":"\#(order)","amount":\#(amount)\#(currencyField)}"#
    }

    package static func link(_ id: String, _ ts: Int64, user: String, linked: String) -> String {
        #"{"type":"link","id":"\#(id)","ts":\#(ts),"user":"\#(user)","linked":"\#(linked)"}"#
    }

    package static func spend(_ id: String, _ ts: Int64, creator: String, amount: String, campaign: String? = nil, currency: String? = nil) -> String
    {
        let currencyField = currency.map { ",\"currency\":\"\($0)\"" } ?? ""
        return #"{"type":"spend","id":"\#(id)","ts":\#(ts),"creator":"\#(creator)","amount":\#(amount)\#(campaignField(campaign))\#(currencyField)}"#
    }
}

extension Line {
    package static func engagement(
        _ id: String, _ ts: Int64, user: String, creator: String, action: String = "like", campaign: String? = nil
    ) -> String {
        #"{"type":"engagement","id":"\#(id)","ts":\#(ts),"user":"\#(user)","creator":"\#(creator)","action":"\#(action)"\#(campaignField(campaign))}"#
    }

    package static func signup(_ id: String, _ ts: Int64, user: String, value: String? = nil) -> String {
        let valueField = value.map { ",\"value\":\($0)" } ?? ""
        return #"{"type":"signup","id":"\#(id)","ts":\#(ts),"user":"\#(user)"\#(valueField)}"#
    }

    package static func profile(_ id: String, _ ts: Int64, creator: String, followers: Int64, platform: String = "tiktok") -> String {
        #"{"type":"creator","id":"\#(id)","ts":\#(ts),"creator":"\#(creator)","followers":\#(followers),"platform":"\#(platform)"}"#
    }
}

/// Micro-units, for readable expectations: `micros("12.5") == 12_500_000`.
package func micros(_ text: String) -> Int64 {
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let whole = Int64(parts[0])! * 1_000_000
    guard parts.count == 2 else { return whole }
    let fraction = parts[1].padding(toLength: 6, withPad: "0", startingAt: 0)
    return whole + Int64(fraction)!
}
