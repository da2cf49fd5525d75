import Foundation
import RoasCore

extension WebhookSecret {
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
