/// The built-in sample: one morning of a small TikTok Shop campaign, signed as two batches, with one
/// forged batch and a few bad lines, so that `roas run --sample` shows every part of the output.
public enum Sample {
    /// The secret the sample batches are signed with.
    public static let secret = try! WebhookSecret("whsec_c2FtcGxlLXNlY3JldC1mb3Itcm9hcy1kZW1v")
    /// Rates of the sample's currencies to USD.
    public static let rates: [String: Double] = ["EUR": 1.08, "GBP": 1.27]

    /// The events of the first batch: the creators' profiles, spend, views and clicks, engagements,
    /// a TikTok-to-Amazon link, a newsletter sign-up, purchases.
    public static let morning: [String] = [
        #"{"type":"creator","id":"cp-1","ts":"2026-11-21T09:00:00Z","creator":"@glowwithmia","followers":85000,"platform":"tiktok"}"#,
        #"{"type":"creator","id":"cp-2","ts":"2026-11-21T09:00:00Z","creator":"@techtomas","followers":420000,"platform":"youtube"}"#,
        #"{"type":"creator","id":"cp-3","ts":"2026-11-21T09:00:00Z","creator":"@chef.luca","followers":6200,"platform":"instagram"}"#,
        #"{"type":"spend","id":"s-1","ts":"2026-11-21T10:00:00Z","creator":"@glowwithmia","campaign":"winter-glow","amount":50}"#,
        #"{"type":"spend","id":"s-2","ts":"2026-11-21T10:00:00Z","creator":"@techtomas","campaign":"desk-setup","amount":80}"#,
        #"{"type":"spend","id":"s-3","ts":"2026-11-21T10:00:00Z","creator":"@chef.luca","amount":20,"currency":"EUR"}"#,
        #"{"type":"view","id":"v-1","ts":"2026-11-21T10:02:00Z","user":"tt:1001","creator":"@glowwithmia","campaign":"winter-glow"}"#,
        #"{"type":"view","id":"v-2","ts":"2026-11-21T10:03:10Z","user":"tt:1002","creator":"@techtomas","campaign":"desk-setup"}"#,
        #"{"type":"view","id":"v-3","ts":"2026-11-21T10:04:00Z","user":"tt:1003","creator":"@chef.luca"}"#,
        #"{"type":"view","id":"v-4","ts":"2026-11-21T10:04:30Z","user":"tt:1001","creator":"@techtomas","campaign":"desk-setup"}"#,
        #"{"type":"engagement","id":"e-1","ts":"2026-11-21T10:04:40Z","user":"tt:1001","creator":"@glowwithmia","campaign":"winter-glow","action":"like"}"#,
        #"{"type":"engagement","id":"e-2","ts":"2026-11-21T10:04:50Z","user":"tt:1003","creator":"@chef.luca","action":"save"}"#,
        #"{"type":"link","id":"l-1","ts":"2026-11-21T10:05:00Z","user":"tt:1001","linked":"amz:A9"}"#,
        #"{"type":"click","id":"c-1","ts":"2026-11-21T10:10:00Z","user":"tt:1001","creator":"@glowwithmia","campaign":"winter-glow"}"#,
        #"{"type":"purchase","id":"p-1","ts":"2026-11-21T10:20:00Z","user":"amz:A9","order":"o-1","amount":39.99}"#,
        #"{"type":"purchase","id":"p-2","ts":1795257600000,"user":"tt:1002","order":"o-2","amount":25.00,"currency":"EUR"}"#,
        #"{"type":"signup","id":"g-1","ts":"2026-11-21T10:44:00Z","user":"tt:1002","value":15}"#,
        #"{"type":"purchase","id":"p-3","ts":"2026-11-21T10:45:00Z","user":"tt:9999","order":"o-3","amount":12.5}"#,
        #"{"type":"view","id":"v-5","ts":"2026-11-21T10:50:00Z","user":"tt:1003","creator":"@chef.luca"}"#,
        #"{"type":"view","id":"v-5","ts":"2026-11-21T10:50:00Z","user":"tt:1003","creator":"@chef.luca"}"#,
        #"{"type":"click","id":"c-2","ts":"2026-11-21T10:51:00Z","user":"tt:1003","creator":"@chef.luca"}"#,
        #"{"type":"purchase","id":"p-4","ts":"2026-11-21T10:55:00+00:00","user":"tt:1003","order":"o-4","amount":18,"currency":"GBP"}"#,
        #"{"type":"view","id":"v-6","ts":"2026-11-21T10:56:00Z","user":"tt:1004","creator":"@glowwithmia""#,
    ]

    /// The events of the second batch: the next hour, a profile that crosses into the macro tier,
    /// a refund, and a line that arrives too late.
    public static let noon: [String] = [
        #"{"type":"creator","id":"cp-4","ts":"2026-11-21T11:00:00Z","creator":"@glowwithmia","followers":101500,"platform":"tiktok"}"#,
        #"{"type":"spend","id":"s-4","ts":"2026-11-21T11:00:00Z","creator":"@glowwithmia","campaign":"winter-glow","amount":50}"#,
        #"{"type":"view","id":"v-7","ts":"2026-11-21T11:05:00Z","user":"tt:1005","creator":"@glowwithmia","campaign":"winter-glow"}"#,
        #"{"type":"click","id":"c-3","ts":"2026-11-21T11:06:00Z","user":"tt:1005","creator":"@glowwithmia","campaign":"winter-glow"}"#,
        #"{"type":"engagement","id":"e-3","ts":"2026-11-21T11:07:00Z","user":"tt:1005","creator":"@glowwithmia","campaign":"winter-glow","action":"share"}"#,
        #"{"type":"purchase","id":"p-5","ts":"2026-11-21T11:30:00Z","user":"tt:1005","order":"o-5","amount":64}"#,
        #"{"type":"refund","id":"r-1","ts":"2026-11-21T11:40:00Z","order":"o-1","amount":10}"#,
        #"{"type":"view","id":"v-8","ts":"2026-11-21T10:30:00Z","user":"tt:1006","creator":"@techtomas"}"#,
        #"{"type":"tip","id":"t-1","ts":"2026-11-21T11:41:00Z","user":"tt:1006"}"#,
    ]

    /// A batch whose signature was made with another key: rejected whole.
    public static let forged: [String] = [
        #"{"type":"purchase","id":"p-666","ts":"2026-11-21T11:50:00Z","user":"tt:1002","order":"o-666","amount":5000}"#
    ]

    /// The sample stream: three batches stamped `now` (seconds), two signed with `secret`, one forged.
    public static func stream(now: Int64) -> [UInt8] {
        var bytes: [UInt8] = []
        let signer = WebhookSigner(secrets: [secret])
        let forger = WebhookSigner(secrets: [WebhookSecret(key: Array("not-the-secret".utf8))])
        for (index, (events, signedBy)) in [(morning, signer), (forged, forger), (noon, signer)].enumerated() {
            let payload = Array(events.map { $0 + "\n" }.joined().utf8)
            let id = "sample-\(index + 1)"
            let signature = payload.withUnsafeBytes { signedBy.signature(id: id, timestamp: now, body: $0) }
            let header = BatchHeader(id: id, timestamp: now, signature: signature, bytes: payload.count)
            bytes += Array((header.line + "\n").utf8) + payload
        }
        return bytes
    }
}
