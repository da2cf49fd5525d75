import Foundation
import RoasCore
import RoasRuntime

/// The Standard Webhooks headers of one delivery attempt: `webhook-id` (the alert id and its state,
/// the same on every attempt and after a restart, so a receiver deduplicates on it),
/// `webhook-timestamp` (the attempt's time, in seconds) and `webhook-signature`
/// (`v1,` + base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}` with the secret's key, computed by
/// OpenSSL's libcrypto through RoasCore's `WebhookSigner`, the same code that verifies incoming webhooks).
struct AlertWebhookSigner {
    private let signer: WebhookSigner

    init(secret: WebhookSecret) {
        self.signer = WebhookSigner(secrets: [secret])
    }

    /// `a-0123456789abcdef.firing`: what a receiver deduplicates on.
    static func webhookID(of alert: Alert) -> String { "\(alert.id).\(alert.state.rawValue)" }

    func signature(webhookID: String, timestamp: Int64, body: [UInt8]) -> String {
        body.withUnsafeBytes { self.signer.signature(id: webhookID, timestamp: timestamp, body: $0) }
    }

    func headers(webhookID: String, timestamp: Int64, body: [UInt8]) -> [(name: String, value: String)] {
        [
            ("webhook-id", webhookID),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", self.signature(webhookID: webhookID, timestamp: timestamp, body: body)),
        ]
    }
}
