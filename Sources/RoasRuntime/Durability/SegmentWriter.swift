import Dispatch
import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The segment the committer appends to, owned by the committer thread alone.
///
/// `goodLength` is the end of the last group written successfully (and synced, in the modes that
/// sync before completing waiters): a failed write or sync cuts the file back to it, so no record
/// of a failed group, whole or half, stays in the log.
struct SegmentWriter: Sendable {
    let directory: String
    let firstLSN: UInt64
    let path: String
    private(set) var descriptor: Int32
    /// Bytes in the file, as far as this writer knows.
    private(set) var length: Int
    private(set) var goodLength: Int
    /// Bytes written since the last successful sync.
    private(set) var isUnsynced = false
    /// A cut back to `goodLength` failed; no group may be written before it succeeds.
    private(set) var needsTruncate = false

    /// True when the segment holds a record that was written successfully.
    var hasRecords: Bool { self.goodLength > SegmentFile.headerBytes }

    /// Creates `directory/SEQ.log` (it must not exist), writes and syncs its header, then syncs the directory.
    static func create(directory: String, firstLSN: UInt64) throws -> SegmentWriter {
        let path = directory + "/" + SegmentFile.name(firstLSN: firstLSN)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw WALError.io("create \(path): \(SegmentFile.errorText(errno))") }
        var failure: String? = nil
        let header = SegmentFile.header(firstLSN: firstLSN)
        let code = header.withUnsafeBytes { SegmentFile.write(descriptor, $0, at: 0) }
        if code != 0 {
            failure = "write \(path): \(SegmentFile.errorText(code))"
        } else if case let code = SegmentFile.syncData(descriptor), code != 0 {
            failure = "fdatasync \(path): \(SegmentFile.errorText(code))"
        } else {
            do {
                try SegmentFile.syncDirectory(directory)
            } catch {
                failure = "\(error)"
            }
        }
        if let failure {
            _ = close(descriptor)
            // A segment that was never announced to anyone: leaving it would only confuse replay.
            _ = unlink(path)
            throw WALError.io(failure)
        }
        return SegmentWriter(
            directory: directory,
            firstLSN: firstLSN,
            path: path,
            descriptor: descriptor,
            length: SegmentFile.headerBytes,
            goodLength: SegmentFile.headerBytes
        )
    }

    /// Appends `bytes` at the end; on failure cuts the file back to `goodLength` and returns the error.
    mutating func write(_ bytes: UnsafeRawBufferPointer) -> String? {
        if let failure = self.repair() {
            return "\(failure) (after an earlier failure)"
        }
        let code = SegmentFile.write(self.descriptor, bytes, at: self.length)
        // Even a failed write may have written a part.
        self.length += bytes.count
        self.isUnsynced = true
        guard code == 0 else {
            let failure = "write \(self.name): \(SegmentFile.errorText(code))"
            _ = self.cutBack()
            return failure
        }
        return nil
    }

    /// `fdatasync`; on failure cuts the file back to `goodLength` when `dropOnFailure`, and returns the error.
    mutating func sync(dropOnFailure: Bool) -> (failure: String?, nanoseconds: UInt64) {
        let start = SystemClock.monotonicNanoseconds()
        let code = SegmentFile.syncData(self.descriptor)
        let nanoseconds = SystemClock.monotonicNanoseconds() - start
        guard code == 0 else {
            let failure = "fdatasync \(self.name): \(SegmentFile.errorText(code))"
            if dropOnFailure { _ = self.cutBack() }
            return (failure, nanoseconds)
        }
        self.isUnsynced = false
        return (nil, nanoseconds)
    }

    /// Cuts the file back to `goodLength` when an earlier cut failed; the error, if it fails again.
    mutating func repair() -> String? {
        self.needsTruncate ? self.cutBack() : nil
    }

    /// The bytes written so far are a good group: later failures cut back to here.
    mutating func acceptWritten() {
        self.goodLength = self.length
    }

    /// Closes the file (the committer synced it first when it had to).
    mutating func closeFile() {
        if self.descriptor >= 0 {
            _ = close(self.descriptor)
            self.descriptor = -1
        }
    }

    private var name: String { SegmentFile.name(firstLSN: self.firstLSN) }

    /// `ftruncate` to `goodLength`, then a sync so the cut survives a crash; the error of `ftruncate`, if any.
    private mutating func cutBack() -> String? {
        guard ftruncate(self.descriptor, off_t(self.goodLength)) == 0 else {
            self.needsTruncate = true
            return "ftruncate \(self.name): \(SegmentFile.errorText(errno))"
        }
        self.needsTruncate = false
        self.length = self.goodLength
        // Best effort: without it a crash could bring back a group that was reported failed; a
        // later successful sync persists the cut anyway.
        if SegmentFile.syncData(self.descriptor) == 0 { self.isUnsynced = false }
        return nil
    }
}
