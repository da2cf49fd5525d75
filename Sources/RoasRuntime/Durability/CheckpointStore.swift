import Foundation
import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One checkpoint of `roas serve --data-dir`: the engine after the write-ahead log record `lsn`,
/// with what the outputs held then and which batch ids were applied.
package struct Checkpoint: Sendable {
    /// Every log record up to this one is in `engine`.
    package var lsn: UInt64
    /// Bytes of the rows file written by then (recovery looks for rows written after it).
    package var rowsPosition: Int
    /// Applied batch ids with their timestamps and digests (retries of them answer `duplicate`,
    /// changed resends `conflict`).
    package var batches: [(id: String, entry: AcceptedBatches.Entry)]
    /// `Engine.snapshot()`.
    package var engine: [UInt8]

    package init(lsn: UInt64, rowsPosition: Int, batches: [(id: String, entry: AcceptedBatches.Entry)], engine: [UInt8]) {
        self.lsn = lsn
        self.rowsPosition = rowsPosition
        self.batches = batches
        self.engine = engine
    }
}

package enum CheckpointError: Error, CustomStringConvertible {
    case invalid(String, String)

    package var description: String {
        switch self {
        case .invalid(let path, let reason): "checkpoint \(path) is unusable: \(reason)"
        }
    }
}

/// The checkpoint files of a data folder, `DIR/checkpoints/<lsn>.ckpt`.
///
/// File: magic `ROASCKP2`, CRC-32C of the rest (UInt32), then the LSN, the rows position, the batch
/// ids (each with its timestamp and payload digest) and the engine snapshot, little-endian. Files of
/// the first layout, `ROASCKP1` (no digests), are still read; their batches match any resend. A checkpoint is written to a temporary file, synced,
/// renamed into place and the folder synced, so a crash leaves either the old set or the new one.
/// The newest two are kept: a checkpoint that turns out unreadable falls back to the one before,
/// and the log is only deleted up to the older one.
package struct CheckpointStore: Sendable {
    package let folder: String
    package static let magic: [UInt8] = Array("ROASCKP2".utf8)
    package static let firstMagic: [UInt8] = Array("ROASCKP1".utf8)
    package static let kept = 2

    /// The checkpoints of the data folder `directory`, creating their folder.
    package init(directory: String) throws {
        self.folder = directory + "/checkpoints"
        try DataFolder.makeFolder(self.folder)
    }

    /// The checkpoints in `folder`, as they are (reading only).
    package init(folder: String) {
        self.folder = folder
    }

    /// The checkpoint files, oldest first.
    package func files() throws -> [(lsn: UInt64, path: String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: self.folder)) ?? []
        return names.compactMap { name -> (UInt64, String)? in
            guard name.hasSuffix(".ckpt"), let lsn = UInt64(name.dropLast(5)) else { return nil }
            return (lsn, self.folder + "/" + name)
        }.sorted { $0.0 < $1.0 }
    }

    /// Writes `checkpoint` atomically and deletes all but the newest `kept`; returns the LSN the
    /// oldest kept checkpoint covers (the log up to it may go), 0 while there is only one.
    @discardableResult
    package func write(_ checkpoint: Checkpoint) throws -> UInt64 {
        var body: [UInt8] = []
        body.reserveCapacity(checkpoint.engine.count + checkpoint.batches.count * 32 + 64)
        Self.append(checkpoint.lsn, to: &body)
        Self.append(UInt64(checkpoint.rowsPosition), to: &body)
        Self.append(UInt64(checkpoint.batches.count), to: &body)
        for batch in checkpoint.batches {
            let id = Array(batch.id.utf8)
            Self.append(UInt64(id.count), to: &body)
            body.append(contentsOf: id)
            Self.append(UInt64(bitPattern: batch.entry.timestamp), to: &body)
            Self.append(batch.entry.digest, to: &body)
        }
        Self.append(UInt64(checkpoint.engine.count), to: &body)
        body.append(contentsOf: checkpoint.engine)
        var file = Self.magic
        let crc = body.withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: body)

        let name = String(format: "%020llu", checkpoint.lsn)
        let temporary = self.folder + "/" + name + ".tmp"
        let path = self.folder + "/" + name + ".ckpt"
        try DataFolder.writeSynced(file, to: temporary)
        guard rename(temporary, path) == 0 else { throw DataFolder.failure("cannot rename \(temporary)") }
        try DataFolder.syncFolder(self.folder)
        let files = try self.files()
        for old in files.dropLast(Self.kept) { unlink(old.path) }
        try DataFolder.syncFolder(self.folder)
        // With a single checkpoint there is nothing to fall back to: keep the whole log.
        return files.count >= Self.kept ? files.suffix(Self.kept).first!.lsn : 0
    }

    /// Reads and checks one checkpoint file.
    package func read(_ path: String) throws -> Checkpoint {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError.invalid(path, "cannot be read")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 12, Array(bytes[0..<8]) == Self.magic || Array(bytes[0..<8]) == Self.firstMagic else {
            throw CheckpointError.invalid(path, "no ROASCKP2 (or ROASCKP1) header")
        }
        let hasDigests = Array(bytes[0..<8]) == Self.magic
        let stored = bytes[8..<12].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        let crc = bytes[12...].withUnsafeBytes { CRC32C.checksum($0) }
        guard stored == crc else { throw CheckpointError.invalid(path, "checksum mismatch (torn or corrupt)") }
        var reader = ByteReader(data: bytes, position: 12)
        guard let lsn = reader.u64(), let position = reader.u64(), let count = reader.u64() else {
            throw CheckpointError.invalid(path, "truncated header")
        }
        var batches: [(id: String, entry: AcceptedBatches.Entry)] = []
        for _ in 0..<min(count, UInt64(bytes.count)) {
            guard let id = reader.block(), let timestamp = reader.u64(), let digest = hasDigests ? reader.u64() : 0 else {
                throw CheckpointError.invalid(path, "truncated batch ids")
            }
            let entry = AcceptedBatches.Entry(timestamp: Int64(bitPattern: timestamp), digest: digest)
            batches.append((String(decoding: id, as: UTF8.self), entry))
        }
        guard let engine = reader.block(), reader.position == bytes.count else {
            throw CheckpointError.invalid(path, "truncated engine state")
        }
        return Checkpoint(lsn: lsn, rowsPosition: Int(clamping: position), batches: batches, engine: engine)
    }

    private static func append(_ value: UInt64, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private struct ByteReader {
        let data: [UInt8]
        var position: Int

        mutating func u64() -> UInt64? {
            guard self.data.count - self.position >= 8 else { return nil }
            defer { self.position += 8 }
            return self.data[self.position..<self.position + 8].withUnsafeBytes {
                UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self))
            }
        }

        /// A length-prefixed run of bytes.
        mutating func block() -> [UInt8]? {
            guard let count = self.u64(), count <= UInt64(self.data.count - self.position) else { return nil }
            defer { self.position += Int(count) }
            return Array(self.data[self.position..<self.position + Int(count)])
        }
    }
}

/// File-system steps of a data folder, with errors that say what failed.
package enum DataFolder {
    package static func failure(_ what: String, code: Int32 = errno) -> RoasError {
        RoasError(.output, "\(what): \(String(cString: strerror(code)))")
    }

    package static func makeFolder(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw RoasError(.output, "cannot create \(path): \(error.localizedDescription)")
        }
    }

    /// Writes `bytes` to a new file at `path` and syncs it.
    package static func writeSynced(_ bytes: [UInt8], to path: String) throws {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw Self.failure("cannot create \(path)") }
        defer { close(descriptor) }
        let writeError = WriteAll.write(descriptor, bytes)
        guard writeError == 0 else {
            let error = Self.failure("cannot write \(path)", code: writeError)
            unlink(path)
            throw error
        }
        guard fsync(descriptor) == 0 else {
            let error = Self.failure("cannot sync \(path)")
            unlink(path)
            throw error
        }
    }

    package static func syncFolder(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { throw Self.failure("cannot open \(path)") }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw Self.failure("cannot sync \(path)") }
    }

    /// Takes `DIR/LOCK` for this process (released when it exits, also by SIGKILL), so that two
    /// servers never share a data folder.
    package static func lock(_ directory: String) throws -> Int32 {
        let path = directory + "/LOCK"
        let descriptor = open(path, O_RDWR | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw Self.failure("cannot open \(path)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw RoasError(.output, "the data folder \(directory) is in use by another roas serve (\(path) is locked)")
        }
        return descriptor
    }

    /// Whether a data folder holds state from an earlier run (a checkpoint or a log segment).
    package static func hasState(_ directory: String) -> Bool {
        let manager = FileManager.default
        let checkpoints = (try? manager.contentsOfDirectory(atPath: directory + "/checkpoints")) ?? []
        let segments = (try? manager.contentsOfDirectory(atPath: directory + "/wal")) ?? []
        return checkpoints.contains { $0.hasSuffix(".ckpt") } || segments.contains { $0.hasSuffix(".log") }
    }
}
