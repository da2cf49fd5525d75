import Foundation
import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One checkpoint of `roas serve --data-dir` as read back: the engine after the write-ahead log
/// record `lsn`, with what the outputs held then and which batch ids were applied.
package struct Checkpoint: Sendable {
    /// Every log record up to this one is in `engine`.
    package var lsn: UInt64
    /// Bytes of the rows file written by then (recovery looks for rows written after it).
    package var rowsPosition: Int
    /// Bytes of the dead-letter file written by then, which `roas worker` cuts the file back to when
    /// it goes on from the checkpoint; 0 where not recorded (`roas serve`, layouts before 4).
    package var deadLettersPosition: Int
    /// Applied batch ids with their timestamps and digests (retries of them answer `duplicate`,
    /// changed resends `conflict`).
    package var batches: [(id: String, entry: AcceptedBatches.Entry)]
    /// `Engine.snapshot()` (when read, a slice of the file's bytes: not copied again).
    package var engine: ArraySlice<UInt8>

    package init(
        lsn: UInt64, rowsPosition: Int, deadLettersPosition: Int = 0, batches: [(id: String, entry: AcceptedBatches.Entry)],
        engine: ArraySlice<UInt8>
    ) {
        self.lsn = lsn
        self.rowsPosition = rowsPosition
        self.deadLettersPosition = deadLettersPosition
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
/// File: magic `ROASCKP4`, CRC-32C of the rest (UInt32), then the LSN, the rows position, the
/// dead-letter position, the batch ids (each with its timestamp and payload digest), little-endian,
/// and the engine snapshot to the end of the file. The snapshot is written as it is encoded, a few
/// MiB at a time, so it is never whole in memory; the checksum goes in last. Files of the earlier
/// layouts are still read: `ROASCKP3` (no dead-letter position), `ROASCKP2` (the snapshot with its
/// length first) and `ROASCKP1` (no digests either: their batches match any resend). A checkpoint is written to a temporary file, synced, renamed into place and
/// the folder synced, so a crash leaves either the old set or the new one. The newest two are kept:
/// a checkpoint that turns out unreadable falls back to the one before, and the log is only deleted
/// up to the older one.
package struct CheckpointStore: Sendable {
    package let folder: String
    package static let magic: [UInt8] = Array("ROASCKP4".utf8)
    package static let thirdMagic: [UInt8] = Array("ROASCKP3".utf8)
    package static let secondMagic: [UInt8] = Array("ROASCKP2".utf8)
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

    /// The bytes of a snapshot on their way to a checkpoint file, with their checksum.
    private final class FileOutput: SnapshotOutput, @unchecked Sendable {
        let descriptor: Int32
        var crc: UInt32
        var count = 0
        /// The first write's `errno`, 0 for none; nothing more is written after one.
        var error: Int32 = 0

        init(descriptor: Int32, crc: UInt32) {
            self.descriptor = descriptor
            self.crc = crc
        }

        func take(_ bytes: UnsafeRawBufferPointer) {
            guard self.error == 0 else { return }
            self.crc = CRC32C.checksum(bytes, seed: self.crc)
            self.error = WriteAll.write(self.descriptor, bytes)
            self.count += bytes.count
        }
    }

    /// Writes a checkpoint of `engine` after log record `lsn` atomically and deletes all but the
    /// newest `kept`. Returns the LSN the oldest kept checkpoint covers (the log up to it may go),
    /// 0 while there is only one, and the snapshot's size.
    @discardableResult
    package func write(
        lsn: UInt64, rowsPosition: Int, deadLettersPosition: Int = 0, batches: [(id: String, entry: AcceptedBatches.Entry)],
        engine: Engine
    ) throws -> (covered: UInt64, bytes: Int) {
        var body: [UInt8] = []
        body.reserveCapacity(batches.count * 32 + 64)
        Self.append(lsn, to: &body)
        Self.append(UInt64(rowsPosition), to: &body)
        Self.append(UInt64(deadLettersPosition), to: &body)
        Self.append(UInt64(batches.count), to: &body)
        for batch in batches {
            let id = Array(batch.id.utf8)
            Self.append(UInt64(id.count), to: &body)
            body.append(contentsOf: id)
            Self.append(UInt64(bitPattern: batch.entry.timestamp), to: &body)
            Self.append(batch.entry.digest, to: &body)
        }

        let name = String(format: "%020llu", lsn)
        let temporary = self.folder + "/" + name + ".tmp"
        let path = self.folder + "/" + name + ".ckpt"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw DataFolder.failure("cannot create \(temporary)") }
        var written = false
        defer {
            close(descriptor)
            if !written { unlink(temporary) }
        }
        // The checksum's place is filled in once the snapshot has gone through it.
        let output = FileOutput(descriptor: descriptor, crc: body.withUnsafeBytes { CRC32C.checksum($0) })
        output.error = WriteAll.write(descriptor, Self.magic + [0, 0, 0, 0] + body)
        var writer = SnapshotWriter(output: output)
        engine.writeSnapshot(into: &writer)
        writer.flush()
        if output.error == 0 {
            output.error = withUnsafeBytes(of: output.crc.littleEndian) {
                WriteAll.write(descriptor, $0, at: Self.magic.count)
            }
        }
        guard output.error == 0 else { throw DataFolder.failure("cannot write \(temporary)", code: output.error) }
        guard fsync(descriptor) == 0 else { throw DataFolder.failure("cannot sync \(temporary)") }
        written = true
        guard rename(temporary, path) == 0 else { throw DataFolder.failure("cannot rename \(temporary)") }
        try DataFolder.syncFolder(self.folder)
        let files = try self.files()
        for old in files.dropLast(Self.kept) { unlink(old.path) }
        try DataFolder.syncFolder(self.folder)
        // With a single checkpoint there is nothing to fall back to: keep the whole log.
        return (files.count >= Self.kept ? files.suffix(Self.kept).first!.lsn : 0, output.count)
    }

    /// Reads and checks one checkpoint file.
    package func read(_ path: String) throws -> Checkpoint {
        guard let bytes = DataFolder.readWhole(path) else { throw CheckpointError.invalid(path, "cannot be read") }
        let magic = Array(bytes.prefix(8))
        guard bytes.count >= 12, [Self.magic, Self.thirdMagic, Self.secondMagic, Self.firstMagic].contains(magic) else {
            throw CheckpointError.invalid(path, "no ROASCKP4 (or ROASCKP3, ROASCKP2, ROASCKP1) header")
        }
        let hasDigests = magic != Self.firstMagic
        let stored = bytes[8..<12].withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        let crc = bytes[12...].withUnsafeBytes { CRC32C.checksum($0) }
        guard stored == crc else { throw CheckpointError.invalid(path, "checksum mismatch (torn or corrupt)") }
        var reader = ByteReader(data: bytes, position: 12)
        guard let lsn = reader.u64(), let position = reader.u64(),
            let deadLetters = magic == Self.magic ? reader.u64() : 0, let count = reader.u64()
        else {
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
        // Layouts 3 and 4: the snapshot is the rest of the file; earlier ones give its length first.
        let engine: ArraySlice<UInt8>
        if magic == Self.magic || magic == Self.thirdMagic {
            engine = bytes[reader.position...]
        } else {
            guard let block = reader.block(), reader.position == bytes.count else {
                throw CheckpointError.invalid(path, "truncated engine state")
            }
            engine = block
        }
        return Checkpoint(
            lsn: lsn, rowsPosition: Int(clamping: position), deadLettersPosition: Int(clamping: deadLetters), batches: batches,
            engine: engine)
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

        /// A length-prefixed run of bytes (sharing the data's storage).
        mutating func block() -> ArraySlice<UInt8>? {
            guard let count = self.u64(), count <= UInt64(self.data.count - self.position) else { return nil }
            defer { self.position += Int(count) }
            return self.data[self.position..<self.position + Int(count)]
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

    /// The whole file at `path` in one array (one copy, read to its end), or nil when it cannot be read.
    package static func readWhole(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return nil }
        // One byte more than the file holds, so that the read that finds its end needs no room of its own.
        var bytes = [UInt8](repeating: 0, count: Int(status.st_size) + 1)
        var done = 0
        while true {
            if done == bytes.count { bytes.append(contentsOf: repeatElement(0, count: 1 << 16)) }
            let count = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + done, $0.count - done) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            done += count
        }
        bytes.removeLast(bytes.count - done)
        return bytes
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
            throw RoasError(.output, "the data folder \(directory) is in use by another roas process (\(path) is locked)")
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
