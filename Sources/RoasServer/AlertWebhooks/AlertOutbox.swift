import Foundation
import RoasCore
import RoasRuntime

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--data-dir DIR` with `--alert-webhook`: `DIR/alerts-outbox.ndjson`, an append-only file of
/// what was queued for delivery and what became of it, one JSON object per line:
///
///     {"queued":"a-0123456789abcdef.firing","at":1795257000000,"body":{…the alert…}}
///     {"sent":"a-0123456789abcdef.firing"}
///     {"dropped":"a-0123456789abcdef.firing","reason":"expired"}
///
/// `at` is when it was queued (wall clock, milliseconds), so the hour of retries spans restarts;
/// `body` is the exact bytes that are posted and signed. A `queued` record is written (and synced
/// with the alerts of the same write) before the row that fired it reaches the rows file; on start
/// every `queued` record without a later `sent` or `dropped` is queued again with the same id.
/// The file is rewritten at start (and now and then while running) to the pending records and the
/// ids of the latest finished ones (`AlertOutbox.rememberedIDs`), so that an alert that recovery
/// replays again is recognised as already sent.
enum AlertOutbox {
    static let fileName = "alerts-outbox.ndjson"
    /// Finished webhook ids kept (in the file and in memory) to recognise replayed alerts.
    static let rememberedIDs = 100_000

    enum Record: Equatable, Sendable {
        case queued(id: String, at: Int64, body: [UInt8])
        case sent(id: String)
        case dropped(id: String, reason: String)

        var id: String {
            switch self {
            case .queued(let id, _, _), .sent(let id), .dropped(let id, _): id
            }
        }
    }

    /// One line, with its newline.
    static func line(_ record: Record) -> [UInt8] {
        var line: [UInt8] = []
        switch record {
        case .queued(let id, let at, let body):
            JSONText.append("{\"queued\":", to: &line)
            JSONText.appendQuoted(id.utf8, to: &line)
            JSONText.append(",\"at\":\(at),\"body\":", to: &line)
            line.append(contentsOf: body)
            line.append(UInt8(ascii: "}"))
        case .sent(let id):
            JSONText.append("{\"sent\":", to: &line)
            JSONText.appendQuoted(id.utf8, to: &line)
            line.append(UInt8(ascii: "}"))
        case .dropped(let id, let reason):
            JSONText.append("{\"dropped\":", to: &line)
            JSONText.appendQuoted(id.utf8, to: &line)
            JSONText.append(",\"reason\":", to: &line)
            JSONText.appendQuoted(reason.utf8, to: &line)
            line.append(UInt8(ascii: "}"))
        }
        line.append(0x0A)
        return line
    }

    /// A webhook id as roas makes them (`a-<hex>.<state>`): letters, digits, `-`, `_` and `.`, so
    /// that it needs no escaping in the file and the records parse back without a JSON parser.
    static func isPlainID(_ id: some Collection<UInt8>) -> Bool {
        !id.isEmpty && id.count <= 200
            && id.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            }
    }

    /// Parses one line (without its newline) as `line(_:)` writes it; nil for anything else (a
    /// torn last line after a crash).
    static func parse(_ line: ArraySlice<UInt8>) -> Record? {
        var rest = line
        func take(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            guard rest.starts(with: bytes) else { return false }
            rest = rest.dropFirst(bytes.count)
            return true
        }
        func takeID() -> String? {
            guard take("\""), let end = rest.firstIndex(of: UInt8(ascii: "\"")) else { return nil }
            let id = rest[rest.startIndex..<end]
            guard Self.isPlainID(id) else { return nil }
            rest = rest[(end + 1)...]
            return String(decoding: id, as: UTF8.self)
        }
        if take("{\"queued\":") {
            guard let id = takeID(), take(",\"at\":") else { return nil }
            let digits = rest.prefix { $0 >= 0x30 && $0 <= 0x39 }
            guard !digits.isEmpty, digits.count <= 18, let at = Int64(String(decoding: digits, as: UTF8.self)) else { return nil }
            rest = rest.dropFirst(digits.count)
            guard take(",\"body\":"), rest.count >= 3, rest.first == UInt8(ascii: "{"), rest.last == UInt8(ascii: "}") else {
                return nil
            }
            let body = rest.dropLast()
            guard body.last == UInt8(ascii: "}") else { return nil }
            return .queued(id: id, at: at, body: Array(body))
        }
        if take("{\"sent\":") {
            guard let id = takeID(), take("}"), rest.isEmpty else { return nil }
            return .sent(id: id)
        }
        if take("{\"dropped\":") {
            guard let id = takeID(), take(",\"reason\":"), let reason = takeID(), take("}"), rest.isEmpty else { return nil }
            return .dropped(id: id, reason: reason)
        }
        return nil
    }

    /// What a file holds: the records still to deliver, in queue order, and the finished ids
    /// (oldest first, each once).
    struct Contents: Equatable {
        var pending: [(id: String, at: Int64, body: [UInt8])] = []
        var finished: [String] = []
        /// Lines that did not parse (a torn end after a crash), skipped.
        var damagedLines = 0

        static func == (a: Contents, b: Contents) -> Bool {
            a.finished == b.finished && a.damagedLines == b.damagedLines && a.pending.count == b.pending.count
                && zip(a.pending, b.pending).allSatisfy { $0.id == $1.id && $0.at == $1.at && $0.body == $1.body }
        }
    }

    /// Reads records: a `queued` id stays pending until a `sent` or `dropped` record of it. A
    /// second `queued` record of an id already known is ignored (the first one counts).
    static func contents(of data: [UInt8]) -> Contents {
        var queued: [String: (order: Int, at: Int64, body: [UInt8])] = [:]
        var finishedOrder: [String: Int] = [:]
        var damaged = 0
        var order = 0
        var start = data.startIndex
        while start < data.endIndex {
            let end = data[start...].firstIndex(of: 0x0A) ?? data.endIndex
            let line = data[start..<end]
            start = end + 1
            if line.isEmpty { continue }
            guard end < data.endIndex, let record = Self.parse(line) else {
                damaged += 1
                continue
            }
            order += 1
            switch record {
            case .queued(let id, let at, let body):
                if queued[id] == nil && finishedOrder[id] == nil { queued[id] = (order, at, body) }
            case .sent(let id), .dropped(let id, _):
                queued[id] = nil
                finishedOrder[id] = order
            }
        }
        var contents = Contents()
        contents.damagedLines = damaged
        contents.pending = queued.sorted { $0.value.order < $1.value.order }.map { ($0.key, $0.value.at, $0.value.body) }
        contents.finished = finishedOrder.sorted { $0.value < $1.value }.map(\.key)
        if contents.finished.count > Self.rememberedIDs {
            contents.finished.removeFirst(contents.finished.count - Self.rememberedIDs)
        }
        return contents
    }

    /// The compacted file: the finished ids, then the pending records.
    static func compacted(finished: some Sequence<String>, pending: some Sequence<(id: String, at: Int64, body: [UInt8])>) -> [UInt8] {
        var bytes: [UInt8] = []
        for id in finished { bytes += Self.line(.sent(id: id)) }
        for entry in pending { bytes += Self.line(.queued(id: entry.id, at: entry.at, body: entry.body)) }
        return bytes
    }
}

/// The open outbox file: appends go straight to the kernel (a `write(2)` each, so a SIGKILL loses
/// nothing written), `sync()` makes them durable. Owned by `AlertWebhookQueue`'s lock.
final class AlertOutboxFile {
    let path: String
    private(set) var descriptor: Int32
    /// Appended since the last sync.
    private(set) var isDirty = false
    /// Records in the file (for compaction while running).
    var records = 0

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func failure(_ what: String, code: Int32 = errno) -> Failure {
        Failure(description: "\(what): \(String(cString: strerror(code)))")
    }

    /// Opens (creating) `directory/alerts-outbox.ndjson` and reads what it holds.
    static func read(directory: String) throws -> AlertOutbox.Contents {
        let path = directory + "/" + AlertOutbox.fileName
        guard FileManager.default.fileExists(atPath: path) else { return AlertOutbox.Contents() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(description: "cannot read \(path)")
        }
        return AlertOutbox.contents(of: Array(data))
    }

    /// Replaces the file with `bytes` (written to a temporary file, synced, renamed over it, the
    /// folder synced) and opens it for appending.
    init(directory: String, bytes: [UInt8], records: Int) throws {
        self.path = directory + "/" + AlertOutbox.fileName
        self.descriptor = try Self.replace(self.path, with: bytes)
        self.records = records
    }

    deinit { close(self.descriptor) }

    private static func replace(_ path: String, with bytes: [UInt8]) throws -> Int32 {
        let temporary = path + ".tmp"
        do {
            try DataFolder.writeSynced(bytes, to: temporary)
        } catch let error as RoasError {
            throw Failure(description: error.message)
        }
        guard rename(temporary, path) == 0 else { throw Self.failure("cannot rename \(temporary) to \(path)") }
        // The rename lasts once the folder is synced; a folder that cannot be synced is no reason to stop.
        try? DataFolder.syncFolder((path as NSString).deletingLastPathComponent)
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard descriptor >= 0 else { throw Self.failure("cannot open \(path)") }
        return descriptor
    }

    /// Appends records with one `write(2)`.
    func append(_ records: [AlertOutbox.Record]) throws {
        guard !records.isEmpty else { return }
        var bytes: [UInt8] = []
        for record in records { bytes += AlertOutbox.line(record) }
        let writeError = WriteAll.write(self.descriptor, bytes)
        guard writeError == 0 else {
            throw Self.failure("cannot append to \(self.path)", code: writeError)
        }
        self.records += records.count
        self.isDirty = true
    }

    /// fdatasync when something was appended since the last sync.
    func sync() throws {
        guard self.isDirty else { return }
        #if canImport(Glibc)
        let result = fdatasync(self.descriptor)
        #else
        let result = fsync(self.descriptor)
        #endif
        guard result == 0 else { throw Self.failure("cannot sync \(self.path)") }
        self.isDirty = false
    }

    /// Rewrites the file to `bytes` (see `init`) and appends to the new one.
    func rewrite(_ bytes: [UInt8], records: Int) throws {
        let descriptor = try Self.replace(self.path, with: bytes)
        close(self.descriptor)
        self.descriptor = descriptor
        self.records = records
        self.isDirty = false
    }
}
