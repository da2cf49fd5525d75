import Foundation
import RoasCore

/// What a data folder of `roas serve --data-dir` holds (`roas inspect`): its checkpoints, whether
/// each reads back, the engine state of the newest one, and its log, every record's checksum
/// checked. Reading only: nothing is repaired or deleted, and the folder's lock is not taken.
public struct DataFolderReport: Sendable {
    public struct CheckpointFile: Sendable {
        public var lsn: UInt64
        public var path: String
        public var bytes: Int
        /// Why it cannot be used; nil when it reads back whole.
        public var problem: String?
        public var batches: Int?
    }

    public var directory: String
    public var checkpoints: [CheckpointFile] = []
    /// The engine of the newest usable checkpoint, or why there is none.
    public var statistics: Statistics?
    public var state: Engine.StateSizes?
    public var watermark: Int64?
    public var engineProblem: String?
    public var segments: [(firstLSN: UInt64, path: String, bytes: Int)] = []
    public var log: WriteAheadLog.ReplayReport?
    public var logProblem: String?
    /// Log records after the newest usable checkpoint: what a start would replay.
    public var recordsToReplay = 0
    public var bytesToReplay = 0
    public var idleCloseRecords = 0

    /// Reads the folder; with `export`, writes the input the log holds after the newest usable
    /// checkpoint as a framed stream (`roas run --tolerance 0` reads it; the frames keep their
    /// signatures, except a webhook body without a final newline, which gets one).
    public static func inspect(
        directory: String, configuration: EngineConfiguration, export: ByteSink? = nil
    ) throws -> DataFolderReport {
        guard FileManager.default.fileExists(atPath: directory) else {
            throw RoasError(.input, "no data folder at \(directory)")
        }
        var report = DataFolderReport(directory: directory)
        let store = CheckpointStore(folder: directory + "/checkpoints")
        var base: UInt64 = 0
        for file in try store.files().reversed() {
            var entry = CheckpointFile(lsn: file.lsn, path: file.path, bytes: Self.size(file.path))
            do {
                let checkpoint = try store.read(file.path)
                entry.batches = checkpoint.batches.count
                if report.statistics == nil && report.engineProblem == nil {
                    let engine = try checkpoint.engine.withUnsafeBytes { try Engine(snapshot: $0, configuration: configuration) }
                    report.statistics = engine.statistics
                    report.state = engine.stateSizes
                    report.watermark = engine.watermark
                    base = file.lsn
                }
            } catch SnapshotError.configurationMismatch(let difference) {
                entry.problem = "written with other engine options: \(difference)"
                if report.engineProblem == nil { report.engineProblem = entry.problem }
            } catch SnapshotError.unsupportedVersion(let version) {
                entry.problem = "written by an earlier roas (snapshot layout \(version); this build reads \(Engine.snapshotVersion))"
                if report.engineProblem == nil { report.engineProblem = entry.problem }
            } catch {
                entry.problem = "\(error)"
            }
            report.checkpoints.insert(entry, at: 0)
        }
        if report.statistics == nil && report.engineProblem == nil {
            report.engineProblem = report.checkpoints.isEmpty ? "no checkpoint yet" : "no checkpoint reads back"
        }
        for segment in (try? WriteAheadLog.segments(in: directory)) ?? [] {
            report.segments.append((segment.firstLSN, segment.path, Self.size(segment.path)))
        }
        do {
            report.log = try WriteAheadLog.replay(directory: directory, after: 0, repairing: false) { lsn, kind, payload in
                guard lsn > base else { return }
                report.recordsToReplay += 1
                report.bytesToReplay += payload.count
                if kind == LogRecord.idleAdvance { report.idleCloseRecords += 1 }
                if kind == LogRecord.input, let export {
                    try export.writeLine { $0.append(contentsOf: payload.dropLast()) }
                }
            }
            try export?.flush()
        } catch {
            report.logProblem = "\(error)"
        }
        return report
    }

    private static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    /// The report as one JSON object.
    public var json: String {
        func text(_ value: String?) -> String { value.map { JSONText.quoted($0) } ?? "null" }
        let checkpoints = self.checkpoints.map {
            "{\"lsn\":\($0.lsn),\"path\":\(JSONText.quoted($0.path)),\"bytes\":\($0.bytes)"
                + ",\"batch_ids\":\($0.batches.map(String.init) ?? "null"),\"problem\":\(text($0.problem))}"
        }
        let segments = self.segments.map {
            "{\"first_lsn\":\($0.firstLSN),\"path\":\(JSONText.quoted($0.path)),\"bytes\":\($0.bytes)}"
        }
        var engine = "null"
        if let statistics = self.statistics, let state = self.state {
            let watermark = self.watermark.flatMap { $0 == .min || $0 == .max ? nil : Timestamp.format(milliseconds: $0) }
            engine =
                "{\"watermark\":\(text(watermark)),\"accepted_events\":\(statistics.acceptedEventCount)"
                + ",\"accepted_batches\":\(statistics.acceptedBatches),\"dead_letters\":\(statistics.deadLetterCount)"
                + ",\"final_rows\":\(statistics.finalRows),\"identities\":\(state.identities),\"touches\":\(state.touches)"
                + ",\"pending_events\":\(state.pending),\"orders\":\(state.orders),\"dedup_ids\":\(state.dedupIDs)"
                + ",\"open_panes\":\(state.openPanes)}"
        }
        var log = "null"
        if let report = self.log {
            log =
                "{\"records\":\(report.records),\"bytes\":\(report.bytes),\"last_lsn\":\(report.lastLSN)"
                + ",\"segments\":\(report.segments),\"torn_tail\":\(text(report.droppedTail))"
                + ",\"records_to_replay\":\(self.recordsToReplay),\"bytes_to_replay\":\(self.bytesToReplay)"
                + ",\"idle_close_records\":\(self.idleCloseRecords)}"
        }
        return "{\"directory\":\(JSONText.quoted(self.directory)),\"checkpoints\":[\(checkpoints.joined(separator: ","))]"
            + ",\"engine\":\(engine),\"engine_problem\":\(text(self.engineProblem))"
            + ",\"segments\":[\(segments.joined(separator: ","))],\"log\":\(log),\"log_problem\":\(text(self.logProblem))}"
    }
}
