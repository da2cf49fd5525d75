import Foundation
import RoasCore
import RoasRuntime

/// Where `--sink postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` points: the parts of the URL.
///
/// `postgresql://` is accepted too. The connection is plain TCP: TLS is not supported, so the only
/// query parameter is `sslmode`, accepted when it allows a plain connection (`disable`, `allow`,
/// `prefer`) and refused when it demands TLS (`require`, `verify-ca`, `verify-full`). User, password
/// and database may be percent-encoded; an IPv6 host is written in brackets (`[::1]`).
struct PostgresURL: Sendable, Equatable {
    static let form = "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"

    var username: String
    var password: String?
    var host: String
    var port: Int
    var database: String

    /// The URL without its password, for log lines and error messages.
    var redacted: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "postgres://\(self.username)\(self.password == nil ? "" : ":***")@\(host):\(self.port)/\(self.database)"
    }

    /// Parses `text`.
    ///
    /// - Throws: `RoasError(.options, …)` naming what is wrong and the expected form; the message
    ///   never repeats the password.
    init(_ text: String) throws {
        guard let schemeEnd = text.range(of: "://"),
            ["postgres", "postgresql"].contains(text[..<schemeEnd.lowerBound].lowercased())
        else {
            throw Self.invalid("it must start with postgres:// or postgresql://")
        }
        var rest = text[schemeEnd.upperBound...]
        if let question = rest.firstIndex(of: "?") {
            try Self.checkParameters(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        guard let slash = rest.firstIndex(of: "/") else { throw Self.invalid("the database name is missing") }
        let authority = rest[..<slash]
        let path = rest[rest.index(after: slash)...]
        guard !path.isEmpty, !path.contains("/"), let database = Self.decoded(path), !database.isEmpty else {
            throw Self.invalid("the path must be one database name")
        }
        // The last `@` ends the user part: an unencoded `@` in a password is still understood.
        guard let at = authority.lastIndex(of: "@") else { throw Self.invalid("the user name is missing") }
        let userInfo = authority[..<at]
        let hostPort = authority[authority.index(after: at)...]
        let userPart = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? userInfo
        guard let username = Self.decoded(userPart), !username.isEmpty else {
            throw Self.invalid("the user name is missing")
        }
        var password: String?
        if let colon = userInfo.firstIndex(of: ":") {
            guard let decoded = Self.decoded(userInfo[userInfo.index(after: colon)...]) else {
                throw Self.invalid("the password has a bad percent-escape")
            }
            password = decoded
        }
        let (host, port) = try Self.hostAndPort(hostPort)
        self.username = username
        self.password = password
        self.host = host
        self.port = port
        self.database = database
    }

    private static func hostAndPort(_ text: Substring) throws -> (String, Int) {
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw Self.invalid("the IPv6 host lacks its ]") }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Self.invalid("unexpected text after the host") }
                portText = after.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
        }
        guard !host.isEmpty else { throw Self.invalid("the host is missing") }
        var port = 5432
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw Self.invalid("the port must be a number from 1 to 65535")
            }
            port = value
        }
        return (String(host), port)
    }

    private static func checkParameters(_ query: Substring) throws {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let name = parts[0]
            let value = parts.count > 1 ? parts[1].lowercased() : ""
            guard name == "sslmode" else {
                throw Self.invalid("unknown parameter \(name) (only sslmode=disable is understood)")
            }
            guard ["disable", "allow", "prefer"].contains(value) else {
                throw Self.invalid("sslmode=\(value) needs TLS, which this sink does not support; use sslmode=disable")
            }
        }
    }

    private static func decoded(_ text: Substring) -> String? {
        String(text).removingPercentEncoding
    }

    private static func invalid(_ reason: String) -> RoasError {
        RoasError(.options, "--sink: bad PostgreSQL URL: \(reason) (expected \(Self.form))")
    }
}
