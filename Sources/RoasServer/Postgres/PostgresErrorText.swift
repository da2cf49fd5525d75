import PostgresNIO
import RoasCore
import RoasRuntime

/// One short line for a delivery error, for the log and `PostgresRowSink.lastError`.
///
/// `PSQLError`'s own description is a fixed placeholder, and its debug description carries the
/// whole statement: this keeps the code, the server's SQLSTATE, message and detail, and the
/// underlying cause (such as "connection refused").
enum PostgresErrorText {
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as PostgresTransactionError:
            let inner = error.beginError ?? error.closureError ?? error.commitError ?? error.rollbackError
            return inner.map(Self.describe) ?? "transaction failed"
        case let error as PSQLError:
            var parts = ["\(error.code)"]
            if let info = error.serverInfo {
                let fields: [(String, PSQLError.ServerInfo.Field)] = [
                    ("sqlstate", .sqlState), ("message", .message), ("detail", .detail),
                ]
                for (name, field) in fields {
                    if let value = info[field] { parts.append("\(name): \(value)") }
                }
            }
            if let underlying = error.underlying { parts.append("cause: \(underlying)") }
            return parts.joined(separator: ", ")
        case let error as RoasError:
            return error.message
        default:
            return String(describing: error)
        }
    }
}
