@testable import RoasCore

/// A `FrameItem` with its bytes copied (the decoder's buffers are valid only during the call).
enum RecordedItem: Equatable, CustomStringConvertible {
    case line([UInt8], number: Int)
    case blank(number: Int)
    case tooLong(prefix: [UInt8], number: Int, batch: String?)
    case rejected([UInt8], number: Int, batch: String?, reason: Reason, detail: String, isHeader: Bool)
    case batch(BatchHeader, header: [UInt8], payload: [UInt8], number: Int)

    init(_ item: FrameItem) {
        switch item {
        case .line(let bytes, let number): self = .line(Array(bytes), number: number)
        case .blank(let number): self = .blank(number: number)
        case .tooLong(let prefix, let number, let batch): self = .tooLong(prefix: Array(prefix), number: number, batch: batch)
        case .rejected(let bytes, let number, let batch, let reason, let detail, let isHeader):
            self = .rejected(Array(bytes), number: number, batch: batch, reason: reason, detail: detail, isHeader: isHeader)
        case .batch(let header, let line, let payload, let number):
            self = .batch(header, header: Array(line), payload: Array(payload), number: number)
        }
    }

    /// The physical line number the item starts at.
    var number: Int {
        switch self {
        case .line(_, let number), .blank(let number), .tooLong(_, let number, _), .rejected(_, let number, _, _, _, _),
            .batch(_, _, _, let number):
            number
        }
    }

    var description: String {
        switch self {
        case .line(let bytes, let number): "#\(number) line \(bytes.debugText)"
        case .blank(let number): "#\(number) blank"
        case .tooLong(let prefix, let number, let batch): "#\(number) too_long[\(batch ?? "-")] \(prefix.count) bytes \(prefix.prefix(16).debugText)"
        case .rejected(let bytes, let number, let batch, let reason, let detail, let isHeader):
            "#\(number) \(reason.rawValue)[\(batch ?? "-")]\(isHeader ? " header" : "") \(bytes.debugText) (\(detail))"
        case .batch(let header, _, let payload, let number): "#\(number) batch \(header.id) \(payload.debugText)"
        }
    }
}

/// Records every item the decoder reports.
struct RecordingFrameHandler: FrameHandler {
    var items: [RecordedItem] = []

    mutating func handle(_ item: FrameItem) {
        self.items.append(RecordedItem(item))
    }
}

/// What decoding a whole stream gave.
struct DecodeRun {
    var items: [RecordedItem]
    /// The most bytes the decoder held between chunks.
    var maximumBuffered: Int
    var lineNumber: Int
    var bytesRead: Int
}

extension FrameDecoder {
    /// Feeds `stream` in chunks of the given sizes (cycled), decoding after each, then ends the stream.
    /// - Parameter inPlace: each chunk through `decode(appending:into:)`, which reads a chunk where it
    ///   is when nothing is buffered, rather than `append` then `decode`.
    static func run(
        _ stream: [UInt8], chunks: [Int], maximumLineLength: Int = 1 << 20, maximumBatchBytes: Int = 16 << 20,
        inPlace: Bool = false
    ) -> DecodeRun {
        var decoder = FrameDecoder(maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes)
        var handler = RecordingFrameHandler()
        var position = 0
        var chunk = 0
        var maximumBuffered = 0
        while position < stream.count {
            let size = max(1, chunks[chunk % chunks.count])
            chunk += 1
            let end = min(stream.count, position + size)
            if inPlace {
                stream[position..<end].withUnsafeBytes { decoder.decode(appending: $0, into: &handler) }
            } else {
                stream[position..<end].withUnsafeBytes { decoder.append($0) }
                decoder.decode(into: &handler)
            }
            maximumBuffered = max(maximumBuffered, decoder.bufferedBytes)
            position = end
        }
        decoder.decode(into: &handler, isFinal: true)
        return DecodeRun(
            items: handler.items, maximumBuffered: maximumBuffered, lineNumber: decoder.lineNumber, bytesRead: decoder.bytesRead)
    }
}
