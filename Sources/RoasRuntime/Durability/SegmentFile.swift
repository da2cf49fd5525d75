import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The on-disk layout of write-ahead log segments, and the system calls that read and write them.
///
/// A segment is `DIR/wal/SEQ.log`, SEQ the 20-digit zero-padded first LSN of the segment. It starts
/// with a 16-byte header (`ROASWAL1`, then the first LSN as a little-endian `UInt64`); records follow:
/// payload length (`UInt32`), CRC-32C (`UInt32`) over the kind, the LSN and the payload, kind (`UInt8`),
/// LSN (`UInt64`), payload. Everything is little-endian. Every record of a segment has an LSN at
/// least the segment's first LSN and below the next segment's.
enum SegmentFile {
    /// `ROASWAL1` as a little-endian word.
    static let magic = UInt64(
        littleEndian: Array("ROASWAL1".utf8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
    )
    /// Magic and first LSN.
    static let headerBytes = 16
    /// Length, CRC, kind and LSN.
    static let recordHeaderBytes = 17
    /// Where the CRC-covered bytes (kind, LSN, payload) start within a record.
    static let checksummedOffset = 8

    /// `DIR/wal`, where the segments of the log of `roas serve --data-dir DIR` live.
    static func walDirectory(_ directory: String) -> String {
        directory.hasSuffix("/") ? directory + "wal" : directory + "/wal"
    }

    /// The file name of the segment whose first LSN is `firstLSN`.
    static func name(firstLSN: UInt64) -> String {
        let digits = String(firstLSN)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    /// The first LSN in a segment file name, or nil when `name` is not one.
    static func firstLSN(name: String) -> UInt64? {
        let bytes = Array(name.utf8)
        guard bytes.count == 24, name.hasSuffix(".log"), bytes[0..<20].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { return nil }
        return UInt64(String(decoding: bytes[0..<20], as: UTF8.self))
    }

    /// The 16-byte header of a segment starting at `firstLSN`.
    static func header(firstLSN: UInt64) -> [UInt8] {
        var header = [UInt8]()
        header.reserveCapacity(self.headerBytes)
        withUnsafeBytes(of: self.magic.littleEndian) { header.append(contentsOf: $0) }
        withUnsafeBytes(of: firstLSN.littleEndian) { header.append(contentsOf: $0) }
        return header
    }

    /// The record's CRC: over the kind, the LSN and the payload, which follow the CRC field.
    static func checksum(ofRecord record: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: record[self.checksummedOffset...]))
    }

    /// `strerror(code)`.
    static func errorText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    /// Writes all of `bytes` at `offset`; 0, or the `errno` of the call that failed (part may be written).
    static func write(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> Int32 {
        WriteAll.write(descriptor, bytes, at: offset)
    }

    /// Reads up to `buffer.count` bytes at `offset`; fewer only at the end of the file.
    static func read(
        _ descriptor: Int32,
        into buffer: UnsafeMutableRawBufferPointer,
        at offset: Int,
        path: String
    )
        throws -> Int
    {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw WALError.io("read \(path): \(self.errorText(errno))")
            }
            if count == 0 { break }
            done += count
        }
        return done
    }

    /// `close(2)`, for types with a `close()` of their own.
    static func closeDescriptor(_ descriptor: Int32) {
        _ = close(descriptor)
    }

    /// `fdatasync` (`fsync` where there is none); 0 or `errno`.
    static func syncData(_ descriptor: Int32) -> Int32 {
        #if os(Linux)
        let result = fdatasync(descriptor)
        #else
        let result = fsync(descriptor)
        #endif
        return result == 0 ? 0 : errno
    }

    /// Syncs a directory, so that files created, renamed or deleted in it stay so after a crash.
    static func syncDirectory(_ path: String) throws {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw WALError.io("open \(path): \(self.errorText(errno))") }
        defer { _ = close(descriptor) }
        guard fsync(descriptor) == 0 else { throw WALError.io("fsync \(path): \(self.errorText(errno))") }
    }

    /// Creates `path` unless it exists, syncing its parent when it does.
    static func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o755) == 0 {
            var parts = path.split(separator: "/")
            parts.removeLast()
            let parent = (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
            try self.syncDirectory(parent.isEmpty ? "." : parent)
            return
        }
        let code = errno
        var status = stat()
        guard code == EEXIST, stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw WALError.io("mkdir \(path): \(self.errorText(code))")
        }
    }

    /// The size of the open file.
    static func size(_ descriptor: Int32, path: String) throws -> Int {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw WALError.io("stat \(path): \(self.errorText(errno))") }
        return Int(status.st_size)
    }

    /// Cuts the file at `path` to `length` bytes and syncs it.
    static func truncate(_ path: String, to length: Int) throws {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw WALError.io("open \(path): \(self.errorText(errno))") }
        defer { _ = close(descriptor) }
        guard ftruncate(descriptor, off_t(length)) == 0 else {
            throw WALError.io("truncate \(path): \(self.errorText(errno))")
        }
        guard fsync(descriptor) == 0 else { throw WALError.io("fsync \(path): \(self.errorText(errno))") }
    }

    /// The segments in `walDirectory`, by first LSN; none when the directory does not exist.
    static func list(_ walDirectory: String) throws -> [(firstLSN: UInt64, path: String)] {
        guard let stream = opendir(walDirectory) else {
            if errno == ENOENT { return [] }
            throw WALError.io("opendir \(walDirectory): \(self.errorText(errno))")
        }
        defer { closedir(stream) }
        var segments: [(firstLSN: UInt64, path: String)] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw WALError.io("readdir \(walDirectory): \(self.errorText(errno))") }
                break
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let firstLSN = self.firstLSN(name: name) {
                segments.append((firstLSN, walDirectory + "/" + name))
            }
        }
        return segments.sorted { $0.firstLSN < $1.firstLSN }
    }
}
