import Foundation

/// A Standard Webhooks secret: `whsec_` followed by the base64 of the key.
public struct WebhookSecret: Sendable, Hashable {
    public let key: [UInt8]

    /// - Throws: `RoasError` when the text is not `whsec_<base64>` or the key is empty.
    public init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("whsec_") else {
            let shown = trimmed.count > 12 ? trimmed.prefix(12) + "…" : Substring(trimmed)
            throw RoasError(.secrets, "a secret must look like whsec_<base64 key>, got '\(shown)'")
        }
        guard let key = WebhookSecret.base64Decoded(String(trimmed.dropFirst(6))), !key.isEmpty else {
            throw RoasError(.secrets, "the part of a secret after whsec_ must be non-empty base64")
        }
        self.key = Array(key)
    }

    public init(key: [UInt8]) {
        self.key = key
    }

    /// Decodes base64 with or without its `=` padding, as Standard Webhooks libraries accept it.
    static func base64Decoded(_ text: String) -> Data? {
        let remainder = text.utf8.count % 4
        if remainder == 1 { return nil }
        let padded = remainder == 0 ? text : text + String(repeating: "=", count: 4 - remainder)
        return Data(base64Encoded: padded)
    }

    /// `whsec_<base64 key>`.
    public var text: String { "whsec_" + Data(self.key).base64EncodedString() }
}
