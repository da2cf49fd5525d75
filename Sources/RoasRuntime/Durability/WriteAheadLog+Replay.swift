import RoasCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WriteAheadLog {
    /// What `replay` read, and what it dropped from the end of the log.
    public struct ReplayReport: Sendable, Equatable {
        /// Records passed to the body (those after the given LSN).
        public var records = 0
        /// Bytes of those records, headers included.
        public var bytes = 0
        /// The LSN of the last record in the log, passed to the body or not; 0 when there is none.
        public var lastLSN: UInt64 = 0
        /// The LSN to open the log at: past the last record, the LSN replayed after and the last
        /// segment's start.
        public var nextLSN: UInt64 = 1
        /// Segment files read.
        public var segments = 0
        /// Where the torn or corrupt tail of the last segment started, why, and what was done.
        public var droppedTail: String? = nil
        /// Bytes cut from the end of the log (or the size of a deleted, half-created last segment).
        public var droppedBytes = 0

        /// An empty report: nothing read yet.
        public init() {}
    }

    /// The segments of the log in `directory` (the data directory), by first LSN.
    public static func segments(in directory: String) throws -> [(firstLSN: UInt64, path: String)] {
        try SegmentFile.list(SegmentFile.walDirectory(directory))
    }

    /// Reads the log in `directory` in LSN order and calls `body` with each record after `lsn`.
    ///
    /// Streams segments in chunks, so memory stays bounded by the largest record. In the last segment,
    /// a short or checksum-failing record with no valid record after it is a torn tail from a crash:
    /// replay ends there, the file is cut and synced, and the report says so; a last segment shorter
    /// than its header (a crash while creating it) is deleted. Anywhere else, and in the last segment
    /// when a valid record follows, a bad record or header is damage to acknowledged data.
    /// Never replay a directory while a log is open on it: its last record may be half written.
    /// - Parameters:
    ///   - directory: the data directory `DIR`, whose `wal` holds the segments.
    ///   - lsn: records up to this LSN are checked but not passed to `body` (a checkpoint covers them).
    ///   - repairing: false to leave a torn tail or half-created segment in place (inspection tools);
    ///     the report still describes it.
    ///   - truncatingDamage: cut damage in the last segment off like a torn tail, valid records after
    ///     it included (`--truncate-damaged-log`: the operator accepts the loss), instead of throwing.
    ///   - body: takes the LSN, the kind and the payload, valid during the call only.
    /// - Throws: `WALError.corrupt` for damage before the tail, including an LSN that does not increase
    ///   or lies outside its segment; `WALError.io`; what `body` throws.
    public static func replay(
        directory: String,
        after lsn: UInt64,
        repairing: Bool = true,
        truncatingDamage: Bool = false,
        _ body: (UInt64, UInt8, UnsafeRawBufferPointer) throws -> Void
    ) throws -> ReplayReport {
        let walDirectory = SegmentFile.walDirectory(directory)
        let segments = try SegmentFile.list(walDirectory)
        var report = ReplayReport()
        var reader = ChunkReader()
        defer { reader.deallocate() }
        var lastSegmentStart: UInt64 = 0
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            let kept = try self.replaySegment(
                path: segment.path,
                walDirectory: walDirectory,
                firstLSN: segment.firstLSN,
                nextSegmentLSN: isLast ? nil : segments[index + 1].firstLSN,
                after: lsn,
                repairing: repairing,
                truncatingDamage: truncatingDamage,
                reader: &reader,
                report: &report,
                body
            )
            if kept { lastSegmentStart = segment.firstLSN }
        }
        report.nextLSN = max(report.lastLSN, lsn, lastSegmentStart == 0 ? 0 : lastSegmentStart - 1) + 1
        return report
    }

    /// Replays one segment; false when it was a half-created last segment, now deleted.
    private static func replaySegment(
        path: String,
        walDirectory: String,
        firstLSN: UInt64,
        nextSegmentLSN: UInt64?,
        after lsn: UInt64,
        repairing: Bool,
        truncatingDamage: Bool,
        reader: inout ChunkReader,
        report: inout ReplayReport,
        _ body: (UInt64, UInt8, UnsafeRawBufferPointer) throws -> Void
    ) throws -> Bool {
        let isLast = nextSegmentLSN == nil
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw WALError.io("open \(path): \(SegmentFile.errorText(errno))") }
        defer { SegmentFile.closeDescriptor(descriptor) }
        let size = try SegmentFile.size(descriptor, path: path)
        reader.reset(descriptor: descriptor, size: size, path: path)
        // Deletes (when repairing) a last segment a crash left while creating it: roas writes and
        // syncs a segment's header before any record, so such a segment never held one.
        func dropHalfCreated(_ problem: String) throws -> Bool {
            report.droppedBytes += size
            guard repairing else {
                report.droppedTail = problem + ": left in place"
                return false
            }
            guard unlink(path) == 0 else { throw WALError.io("unlink \(path): \(SegmentFile.errorText(errno))") }
            try SegmentFile.syncDirectory(walDirectory)
            report.droppedTail = problem + ": deleted"
            return false
        }
        guard size >= SegmentFile.headerBytes else {
            guard isLast else {
                throw WALError.corrupt(
                    path: path,
                    offset: 0,
                    reason: "segment of \(size) bytes, shorter than its header"
                )
            }
            return try dropHalfCreated("\(path): \(size)-byte segment, shorter than its header (a crash while creating it)")
        }
        let header = try reader.bytes(at: 0, count: SegmentFile.headerBytes)
        let magicIsRight = header.loadUnaligned(as: UInt64.self) == SegmentFile.magic.littleEndian
        let headerLSN = UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        // A header that is not the one roas wrote, with nothing after it: the OS stopped before the
        // header's sync (zeros or old bytes where it was to be). With records after it, it is damage.
        if isLast && size == SegmentFile.headerBytes && (!magicIsRight || headerLSN != firstLSN) {
            return try dropHalfCreated("\(path): a segment of a damaged header alone (a crash while creating it)")
        }
        report.segments += 1
        guard magicIsRight else {
            throw WALError.corrupt(path: path, offset: 0, reason: "not a segment: bad magic")
        }
        guard headerLSN == firstLSN else {
            throw WALError.corrupt(
                path: path,
                offset: 8,
                reason: "header says first LSN \(headerLSN), the name \(firstLSN)"
            )
        }
        var offset = SegmentFile.headerBytes
        while offset < size {
            var problem: String? = nil
            var record = UnsafeRawBufferPointer(start: nil, count: 0)
            let left = size - offset
            if left < SegmentFile.recordHeaderBytes {
                problem = "short record header (\(left) bytes left)"
            } else {
                let length = Int(
                    UInt32(littleEndian: try reader.bytes(at: offset, count: 4).loadUnaligned(as: UInt32.self))
                )
                if length > left - SegmentFile.recordHeaderBytes {
                    problem =
                        "short record (\(length)-byte payload, \(left - SegmentFile.recordHeaderBytes) bytes left)"
                } else {
                    record = try reader.bytes(at: offset, count: SegmentFile.recordHeaderBytes + length)
                    let stored = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                    let computed = SegmentFile.checksum(ofRecord: record)
                    if stored != computed {
                        problem = "checksum mismatch (stored \(Self.hex(stored)), computed \(Self.hex(computed)))"
                    }
                }
            }
            if var problem {
                guard isLast else { throw WALError.corrupt(path: path, offset: offset, reason: problem) }
                // Only the end of the last segment can be unsynced when the process or the OS stops: a
                // torn tail has no valid record after it. One that has is damage to acknowledged data.
                if let next = try Self.nextValidRecord(after: offset, size: size, lastLSN: report.lastLSN, reader: &reader) {
                    let damage = "\(problem), but a valid record (LSN \(next.lsn)) follows at offset \(next.offset)"
                    guard truncatingDamage else {
                        throw WALError.corrupt(
                            path: path, offset: offset,
                            reason: damage + ": acknowledged records are damaged (--truncate-damaged-log drops them)")
                    }
                    problem = damage + "; dropped with --truncate-damaged-log"
                }
                if repairing { try SegmentFile.truncate(path, to: offset) }
                let outcome = repairing ? "dropped \(left) bytes" : "\(left) bytes not replayed, left in place"
                report.droppedTail = "\(path) at offset \(offset): \(problem); \(outcome)"
                report.droppedBytes += left
                break
            }
            let kind = record.load(fromByteOffset: 8, as: UInt8.self)
            let recordLSN = UInt64(littleEndian: record.loadUnaligned(fromByteOffset: 9, as: UInt64.self))
            if recordLSN <= report.lastLSN || recordLSN < firstLSN || recordLSN >= (nextSegmentLSN ?? UInt64.max) {
                let bounds = "after \(report.lastLSN), in [\(firstLSN), \(nextSegmentLSN.map(String.init) ?? "∞"))"
                throw WALError.corrupt(path: path, offset: offset, reason: "record LSN \(recordLSN) not \(bounds)")
            }
            if recordLSN > lsn {
                try body(recordLSN, kind, UnsafeRawBufferPointer(rebasing: record[SegmentFile.recordHeaderBytes...]))
                report.records += 1
                report.bytes += record.count
            }
            report.lastLSN = recordLSN
            offset += record.count
        }
        return true
    }

    /// The first offset after `offset` where a whole record with a good checksum and an LSN after
    /// `lastLSN` starts, or nil: what tells damage (records follow) from a torn tail (none does).
    ///
    /// Tries every byte offset, so it also finds records after a damaged length field; a candidate
    /// must pass cheap checks (length within the file, an LSN after `lastLSN` by less than 2^32)
    /// before its checksum is computed.
    static func nextValidRecord(
        after offset: Int, size: Int, lastLSN: UInt64, reader: inout ChunkReader
    ) throws -> (offset: Int, lsn: UInt64)? {
        var candidate = offset + 1
        while candidate + SegmentFile.recordHeaderBytes <= size {
            let header = try reader.bytes(at: candidate, count: SegmentFile.recordHeaderBytes)
            let length = Int(UInt32(littleEndian: header.loadUnaligned(as: UInt32.self)))
            let lsn = UInt64(littleEndian: header.loadUnaligned(fromByteOffset: 9, as: UInt64.self))
            let room = size - candidate - SegmentFile.recordHeaderBytes
            if length <= room, lsn > lastLSN, lsn - lastLSN <= 1 << 32 {
                let record = try reader.bytes(at: candidate, count: SegmentFile.recordHeaderBytes + length)
                let stored = UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                if stored == SegmentFile.checksum(ofRecord: record) { return (candidate, lsn) }
            }
            candidate += 1
        }
        return nil
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// Reads a file through one buffer, so replay never holds more than a chunk or the largest record.
    struct ChunkReader {
        private var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        private var descriptor: Int32 = -1
        private var size = 0
        private var path = ""
        /// The file offset of the buffer's first byte, and how many bytes it holds.
        private var start = 0
        private var count = 0

        mutating func reset(descriptor: Int32, size: Int, path: String) {
            self.descriptor = descriptor
            self.size = size
            self.path = path
            self.start = 0
            self.count = 0
        }

        /// `count` bytes at `offset`, which the caller checked are in the file; valid until the next call.
        mutating func bytes(at offset: Int, count: Int) throws -> UnsafeRawBufferPointer {
            if offset < self.start || offset + count > self.start + self.count {
                if count > self.buffer.count {
                    self.buffer.deallocate()
                    self.buffer = .allocate(byteCount: count, alignment: 16)
                }
                let wanted = min(self.buffer.count, self.size - offset)
                let read = try SegmentFile.read(
                    self.descriptor,
                    into: UnsafeMutableRawBufferPointer(rebasing: self.buffer[0..<wanted]),
                    at: offset,
                    path: self.path
                )
                guard read >= count else {
                    throw WALError.io("read \(self.path): the file shrank while being replayed")
                }
                self.start = offset
                self.count = read
            }
            return UnsafeRawBufferPointer(rebasing: self.buffer[(offset - self.start)..<(offset - self.start + count)])
        }

        func deallocate() {
            self.buffer.deallocate()
        }
    }
}
