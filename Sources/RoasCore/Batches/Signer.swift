import COpenSSL
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

    /// Reads a secrets file: one secret per line; blank lines and lines starting with `#` are skipped.
    public static func load(file path: String) throws -> [WebhookSecret] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RoasError(.secrets, "cannot read the secrets file \(path)")
        }
        let text = String(decoding: data, as: UTF8.self)
        var secrets: [WebhookSecret] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let entry = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if entry.isEmpty || entry.hasPrefix("#") { continue }
            do {
                secrets.append(try WebhookSecret(entry))
            } catch let error as RoasError {
                throw RoasError(.secrets, "\(path):\(number + 1): \(error.message)")
            }
        }
        guard !secrets.isEmpty else { throw RoasError(.secrets, "the secrets file \(path) holds no secret") }
        return secrets
    }
}

/// HMAC-SHA256 with one key, through OpenSSL's libcrypto; the key schedule is computed once.
public final class HMACSHA256 {
    private let context: OpaquePointer

    public init(key: [UInt8]) {
        guard let context = key.withUnsafeBufferPointer({ roas_hmac_sha256_new($0.baseAddress, $0.count) }) else {
            fatalError("libcrypto could not create an HMAC-SHA256 context")
        }
        self.context = context
    }

    deinit { roas_hmac_sha256_free(self.context) }

    /// The 32-byte tag of the concatenation of `parts`.
    public func authenticate(_ parts: UnsafeRawBufferPointer...) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: 32)
        self.authenticate(parts, into: &tag)
        return tag
    }

    func authenticate(_ parts: [UnsafeRawBufferPointer], into tag: inout [UInt8]) {
        precondition(roas_hmac_sha256_reset(self.context) == 1, "libcrypto HMAC reset failed")
        for part in parts where part.count > 0 {
            precondition(roas_hmac_sha256_update(self.context, part.baseAddress, part.count) == 1)
        }
        let done = tag.withUnsafeMutableBufferPointer { roas_hmac_sha256_final(self.context, $0.baseAddress) }
        precondition(done == 1, "libcrypto HMAC final failed")
    }
}

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
