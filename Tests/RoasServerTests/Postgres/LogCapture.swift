import Logging
import Synchronization

/// Keeps what a logger logs, to check which lines an outage produces.
final class LogCapture: Sendable {
    /// One logged line.
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let entries = Mutex<[Entry]>([])

    var all: [Entry] { self.entries.withLock { $0 } }

    /// The lines logged with exactly this message.
    func count(_ message: String, level: Logger.Level? = nil) -> Int {
        self.all.filter { $0.message == message && (level == nil || $0.level == level) }.count
    }

    func logger(level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: "roas-postgres-test") { _ in Handler(capture: self) }
        logger.logLevel = level
        return logger
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        var metadataProvider: Logger.MetadataProvider?

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let entry = Entry(
                level: event.level,
                message: event.message.description,
                metadata: self.metadata.merging(event.metadata ?? [:]) { $1 }
            )
            self.capture.entries.withLock { $0.append(entry) }
        }
    }
}
