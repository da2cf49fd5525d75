#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the frame decoder found in the stream. Byte buffers are valid only during the call.
public enum FrameItem {
    /// A non-blank line outside any batch frame (its CR, if any, removed).
    case line(UnsafeRawBufferPointer, number: Int)
    case blank(number: Int)
    /// A line over the maximum length; `prefix` holds its first bytes (at most 1 KiB).
    case tooLong(prefix: UnsafeRawBufferPointer, number: Int, batch: String?)
    /// A line of a frame the decoder rejected itself (`bad_frame`): the header and each payload line.
    /// `isHeader` marks the frame's header line, so each rejected frame is counted once.
    case rejected(UnsafeRawBufferPointer, number: Int, batch: String?, reason: Reason, detail: String, isHeader: Bool)
    /// A well-formed frame: header and payload (all `bytes` of it, final newline included). Its payload
    /// lines are numbered from `number + 1`; signatures are not checked yet.
    case batch(BatchHeader, header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, number: Int)
}

/// Receives the decoder's items in stream order.
public protocol FrameHandler {
    mutating func handle(_ item: FrameItem)
}

/// Splits a byte stream into lines and batch frames, fed in chunks of any size.
///
/// A line is a batch header when its first member is `"batch"`; the `bytes` after it form the frame.
/// Rules: a line longer than `maximumLineLength` is `too_long` and is skipped without being buffered
/// whole; a header that cannot be read, with an id holding ".", a payload over `maximumBatchBytes`,
/// a payload not ending in "\n" or cut short by the end of the stream is `bad_frame`, and every line of
/// the frame is rejected with it. The stream resumes right after the frame (when its length could be
/// read; otherwise right after the header line).
public struct FrameDecoder {
    public let maximumLineLength: Int
    public let maximumBatchBytes: Int
    /// Physical lines seen so far; the next line is number `lineNumber + 1`.
    public private(set) var lineNumber = 0

    /// Numbers the next line `line + 1`, as if `line` lines had come before.
    public mutating func continueNumbering(after line: Int) { self.lineNumber = line }
    public private(set) var bytesRead = 0

    private var buffer: [UInt8] = []
    private var start = 0
    private var mode = Mode.lines

    private struct FrameSkip {
        var remaining: Int
        var batch: String?
        var detail: String
    }

    private enum Mode {
        case lines
        case skipping(FrameSkip)
        /// Inside a too-long line, already reported; inside a rejected frame when `frame` is set.
        case discarding(frame: FrameSkip?)
    }

    static let prefixLength = 1024

    /// Bytes of a line without its newline after which it is known to be too long whatever follows:
    /// one more than the limit allows for a CR before the LF, and at least the dead letter's prefix is
    /// buffered, so the outcome does not depend on how the stream was cut into chunks.
    private var streamingLimit: Int { max(self.maximumLineLength + 1, FrameDecoder.prefixLength) }

    public init(maximumLineLength: Int = 1 << 20, maximumBatchBytes: Int = 16 << 20) {
        self.maximumLineLength = maximumLineLength
        self.maximumBatchBytes = maximumBatchBytes
    }

    /// Bytes held waiting for the rest of a line or frame.
    public var bufferedBytes: Int { self.buffer.count - self.start }

    /// The memory held for them: the buffer's capacity while it holds any bytes, else 0.
    public var heldBytes: Int { self.bufferedBytes > 0 ? self.buffer.capacity : 0 }

    /// Adds bytes read from the stream.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if self.start > 0 && self.start >= self.buffer.count / 2 {
            self.buffer.removeSubrange(0..<self.start)
            self.start = 0
        }
        self.buffer.append(contentsOf: bytes)
        self.bytesRead += bytes.count
    }

    /// `append(bytes)` then `decode(into:isFinal:)`, without copying `bytes` when nothing is
    /// buffered: the items are read from `bytes` where they are, and only an incomplete rest (a
    /// line or frame cut by the chunk's end) is kept for the next call. The items reported are
    /// exactly those of the two calls.
    public mutating func decode<Handler: FrameHandler>(
        appending bytes: UnsafeRawBufferPointer, into handler: inout Handler, isFinal: Bool = false
    ) {
        guard self.bufferedBytes == 0 else {
            self.append(bytes)
            return self.decode(into: &handler, isFinal: isFinal)
        }
        self.bytesRead += bytes.count
        self.start = 0
        self.decode(bytes, into: &handler, isFinal: isFinal)
        let rest = UnsafeRawBufferPointer(rebasing: bytes[self.start...])
        if self.buffer.capacity > FrameDecoder.keptCapacity && rest.count <= FrameDecoder.keptCapacity {
            self.buffer = []
        }
        self.buffer.removeAll(keepingCapacity: true)
        self.buffer.append(contentsOf: rest)
        self.start = 0
    }

    /// Reports every complete item; with `isFinal` (end of stream) also the incomplete rest.
    public mutating func decode<Handler: FrameHandler>(into handler: inout Handler, isFinal: Bool = false) {
        let storage = self.buffer
        storage.withUnsafeBytes { all in
            self.decode(all, into: &handler, isFinal: isFinal)
        }
        if self.start == self.buffer.count {
            self.buffer.removeAll(keepingCapacity: self.buffer.capacity <= FrameDecoder.keptCapacity)
            self.start = 0
        } else if self.buffer.capacity > FrameDecoder.keptCapacity && self.bufferedBytes < self.buffer.capacity / 8 {
            // After a large frame: do not keep its memory for a small rest (a connection that
            // trickles a byte now and then would hold up to --max-batch for nothing).
            self.buffer = Array(self.buffer[self.start...])
            self.start = 0
        }
    }

    /// Buffer capacity kept for the next bytes once what it held is consumed (a read of roas serve
    /// is at most 256 KiB).
    static let keptCapacity = 1 << 18

    @inline(__always)
    private static func newline(in all: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard to > from, let found = memchr(all.baseAddress! + from, 0x0A, to - from) else { return nil }
        return all.baseAddress!.distance(to: UnsafeRawPointer(found))
    }

    /// The line without its trailing CR.
    @inline(__always)
    static func trimmed(_ all: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> UnsafeRawBufferPointer {
        var end = to
        if end > from && all[end - 1] == 0x0D { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: all[from..<end])
    }

    @inline(__always)
    static func isBlank(_ line: UnsafeRawBufferPointer) -> Bool {
        for byte in line where byte != 0x20 && byte != 0x09 { return false }
        return true
    }

    private mutating func decode<Handler: FrameHandler>(
        _ all: UnsafeRawBufferPointer, into handler: inout Handler, isFinal: Bool
    ) {
        var position = self.start
        let end = all.count
        defer { self.start = position }
        while true {
            switch self.mode {
            case .discarding(let frame):
                guard position < end else { return }
                let limit = frame.map { min(end, position + $0.remaining) } ?? end
                let found = FrameDecoder.newline(in: all, from: position, to: limit)
                let stop = found.map { $0 + 1 } ?? limit
                let consumed = stop - position
                position = stop
                if var frame {
                    frame.remaining -= consumed
                    if frame.remaining == 0 {
                        self.mode = .lines
                    } else if found != nil {
                        self.mode = .skipping(frame)
                    } else {
                        self.mode = .discarding(frame: frame)
                        return
                    }
                } else if found != nil {
                    self.mode = .lines
                } else {
                    return
                }
            case .skipping(var frame):
                guard position < end else { return }
                let limit = min(end, position + frame.remaining)
                let next: Int
                var line: UnsafeRawBufferPointer
                if let found = FrameDecoder.newline(in: all, from: position, to: limit) {
                    line = FrameDecoder.trimmed(all, position, found)
                    next = found + 1
                } else if limit == position + frame.remaining || isFinal {
                    line = FrameDecoder.trimmed(all, position, limit)
                    next = limit
                } else if limit - position > self.streamingLimit {
                    self.lineNumber += 1
                    let prefix = UnsafeRawBufferPointer(rebasing: all[position..<min(end, position + FrameDecoder.prefixLength)])
                    handler.handle(.tooLong(prefix: prefix, number: self.lineNumber, batch: frame.batch))
                    frame.remaining -= end - position
                    position = end
                    self.mode = .discarding(frame: frame)
                    return
                } else {
                    return
                }
                self.lineNumber += 1
                if line.count > self.maximumLineLength {
                    line = UnsafeRawBufferPointer(rebasing: line.prefix(FrameDecoder.prefixLength))
                    handler.handle(.tooLong(prefix: line, number: self.lineNumber, batch: frame.batch))
                } else if FrameDecoder.isBlank(line) {
                    handler.handle(.blank(number: self.lineNumber))
                } else {
                    handler.handle(
                        .rejected(
                            line, number: self.lineNumber, batch: frame.batch, reason: .badFrame, detail: frame.detail,
                            isHeader: false))
                }
                frame.remaining -= next - position
                position = next
                self.mode = frame.remaining > 0 ? .skipping(frame) : .lines
            case .lines:
                guard position < end else { return }
                let lineEnd: Int
                var line: UnsafeRawBufferPointer
                if let found = FrameDecoder.newline(in: all, from: position, to: end) {
                    line = FrameDecoder.trimmed(all, position, found)
                    lineEnd = found + 1
                } else if end - position > self.streamingLimit {
                    self.lineNumber += 1
                    let prefix = UnsafeRawBufferPointer(rebasing: all[position..<min(end, position + FrameDecoder.prefixLength)])
                    handler.handle(.tooLong(prefix: prefix, number: self.lineNumber, batch: nil))
                    position = end
                    self.mode = .discarding(frame: nil)
                    return
                } else if isFinal {
                    line = FrameDecoder.trimmed(all, position, end)
                    lineEnd = end
                } else {
                    return
                }
                if line.count > self.maximumLineLength {
                    self.lineNumber += 1
                    line = UnsafeRawBufferPointer(rebasing: line.prefix(FrameDecoder.prefixLength))
                    handler.handle(.tooLong(prefix: line, number: self.lineNumber, batch: nil))
                    position = lineEnd
                    continue
                }
                if FrameDecoder.isBlank(line) {
                    self.lineNumber += 1
                    handler.handle(.blank(number: self.lineNumber))
                    position = lineEnd
                    continue
                }
                guard BatchHeader.looksLikeHeader(line) else {
                    self.lineNumber += 1
                    handler.handle(.line(line, number: self.lineNumber))
                    position = lineEnd
                    continue
                }
                switch BatchHeader.parse(line) {
                case .invalid(let id, let bytes, let detail):
                    self.rejectHeader(line, id: id, detail: detail, frameBytes: bytes ?? 0, into: &handler)
                    position = lineEnd
                case .header(let header):
                    if header.bytes > self.maximumBatchBytes {
                        let detail = "the payload of \(header.bytes) bytes is over --max-batch (\(self.maximumBatchBytes))"
                        self.rejectHeader(line, id: header.id, detail: detail, frameBytes: header.bytes, into: &handler)
                        position = lineEnd
                    } else if header.bytes == 0 {
                        self.rejectHeader(line, id: header.id, detail: "the payload is empty", frameBytes: 0, into: &handler)
                        position = lineEnd
                    } else if end - lineEnd >= header.bytes {
                        let payload = UnsafeRawBufferPointer(rebasing: all[lineEnd..<(lineEnd + header.bytes)])
                        if payload[payload.count - 1] != 0x0A {
                            let detail = "the payload does not end in a newline after \(header.bytes) bytes"
                            self.rejectHeader(line, id: header.id, detail: detail, frameBytes: header.bytes, into: &handler)
                            position = lineEnd
                        } else {
                            self.lineNumber += 1
                            handler.handle(.batch(header, header: line, payload: payload, number: self.lineNumber))
                            self.lineNumber += FrameDecoder.countLines(payload)
                            position = lineEnd + header.bytes
                        }
                    } else if isFinal {
                        let detail = "the stream ended \(end - lineEnd) bytes into a payload of \(header.bytes)"
                        self.rejectHeader(line, id: header.id, detail: detail, frameBytes: end - lineEnd, into: &handler)
                        position = lineEnd
                    } else {
                        return
                    }
                }
            }
        }
    }

    private mutating func rejectHeader<Handler: FrameHandler>(
        _ line: UnsafeRawBufferPointer, id: String?, detail: String, frameBytes: Int, into handler: inout Handler
    ) {
        self.lineNumber += 1
        handler.handle(.rejected(line, number: self.lineNumber, batch: id, reason: .badFrame, detail: detail, isHeader: true))
        if frameBytes > 0 {
            self.mode = .skipping(FrameSkip(remaining: frameBytes, batch: id, detail: "in a rejected frame: " + detail))
        }
    }

    /// The number of lines in a payload that ends in a newline.
    static func countLines(_ payload: UnsafeRawBufferPointer) -> Int {
        var count = 0
        var position = 0
        while let found = newline(in: payload, from: position, to: payload.count) {
            count += 1
            position = found + 1
        }
        return count
    }

    /// Calls `body` with each line of a payload (CR removed) and its offset from the first line.
    @inline(__always)
    public static func forEachLine(in payload: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, Int) -> Void) {
        var position = 0
        var offset = 0
        while position < payload.count {
            let stop = newline(in: payload, from: position, to: payload.count) ?? payload.count
            body(trimmed(payload, position, stop), offset)
            offset += 1
            position = stop + 1
        }
    }
}
