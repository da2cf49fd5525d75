import COpenSSL
import Foundation

/// Signs and verifies Standard Webhooks signatures: base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")).
public struct WebhookSigner {
    public let secrets: [WebhookSecret]
    private let macs: [HMACSHA256]

    public init(secrets: [WebhookSecret]) {
        self.secrets = secrets
        self.macs = secrets.map { HMACSHA256(key: $0.key) }
    }

    /// The tag of one message under the secret at `index`.
    public func tag(secret index: Int, id: String, timestamp: Int64, body: UnsafeRawBufferPointer) -> [UInt8] {
        var prefix = Array("\(id).\(timestamp).".utf8)
        var tag = [UInt8](repeating: 0, count: 32)
        prefix.withUnsafeMutableBytes { prefixBytes in
            self.macs[index].authenticate([UnsafeRawBufferPointer(prefixBytes), body], into: &tag)
        }
        return tag
    }

    /// `v1,<base64>` under the secret at `index`.
    public func signature(secret index: Int = 0, id: String, timestamp: Int64, body: UnsafeRawBufferPointer) -> String {
        "v1," + Data(self.tag(secret: index, id: id, timestamp: timestamp, body: body)).base64EncodedString()
    }

    /// The tags of the well-formed entries of a signature header: each space-separated `v1,<base64>`
    /// whose base64 decodes to 32 bytes. With none, no secret can match (webhooks are refused
    /// before their body is read).
    public static func candidates(in signatures: String) -> [[UInt8]] {
        var candidates: [[UInt8]] = []
        for token in signatures.split(separator: " ") where token.hasPrefix("v1,") {
            if let decoded = WebhookSecret.base64Decoded(String(token.dropFirst(3))), decoded.count == 32 {
                candidates.append(Array(decoded))
            }
        }
        return candidates
    }

    /// Whether any space-separated `v1,<sig>` of `signatures` matches the message under any secret.
    /// Tags are compared in constant time.
    public func verify(signatures: String, id: String, timestamp: Int64, body: UnsafeRawBufferPointer) -> Bool {
        let candidates = Self.candidates(in: signatures)
        guard !candidates.isEmpty else { return false }
        var matched = false
        for index in self.secrets.indices {
            let expected = self.tag(secret: index, id: id, timestamp: timestamp, body: body)
            for candidate in candidates where roas_constant_time_equal(expected, candidate, 32) == 1 {
                matched = true
            }
        }
        return matched
    }
}
