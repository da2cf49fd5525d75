import Testing

@testable import RoasCore

@Suite struct FrameDecoderTests {
    static func header(_ id: String, bytes: Int, timestamp: Int64 = 1_700_000_000, signature: String = "v1,c2lnbmF0dXJl") -> String {
        BatchHeader(id: id, timestamp: timestamp, signature: signature, bytes: bytes).line
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    static let chunkings: [[Int]] = [[1], [2], [3], [7], [64], [4096], [1, 5, 2, 11, 3], [100_000]]

    /// Decodes `stream` whole and in every chunking; they must all give the same items.
    static func decode(
        _ stream: String, maximumLineLength: Int = 1 << 20, maximumBatchBytes: Int = 16 << 20,
        sourceLocation: SourceLocation = #_sourceLocation
    ) -> [RecordedItem] {
        let bytes = Self.bytes(stream)
        let whole = FrameDecoder.run(bytes, chunks: [bytes.count], maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes)
        for chunks in Self.chunkings {
            for inPlace in [false, true] {
                let run = FrameDecoder.run(
                    bytes, chunks: chunks, maximumLineLength: maximumLineLength, maximumBatchBytes: maximumBatchBytes, inPlace: inPlace)
                #expect(run.items == whole.items, "chunks of \(chunks), in place: \(inPlace)", sourceLocation: sourceLocation)
                #expect(run.lineNumber == whole.lineNumber, sourceLocation: sourceLocation)
                #expect(run.bytesRead == bytes.count, sourceLocation: sourceLocation)
            }
        }
        #expect(whole.bytesRead == bytes.count, sourceLocation: sourceLocation)
        return whole.items
    }

    // MARK: Lines

    @Test func linesBlanksAndCarriageReturns() {
        let items = Self.decode("a\nb\r\n\n  \n\t\r\n\r\nx\r\r\ny\rz\nlast")
        #expect(
            items == [
                .line(Self.bytes("a"), number: 1), .line(Self.bytes("b"), number: 2), .blank(number: 3), .blank(number: 4),
                .blank(number: 5), .blank(number: 6), .line(Self.bytes("x\r"), number: 7), .line(Self.bytes("y\rz"), number: 8),
                .line(Self.bytes("last"), number: 9),
            ])
        #expect(Self.decode("").isEmpty)
        #expect(Self.decode("a\n") == [.line(Self.bytes("a"), number: 1)])
        #expect(Self.decode("\n") == [.blank(number: 1)])
        #expect(Self.decode("a\r") == [.line(Self.bytes("a"), number: 1)])
        #expect(Self.decode(" ") == [.blank(number: 1)])
    }

    @Test func longLinesAreTooLong() {
        let limit = 1100
        let x = { (count: Int) in String(repeating: "x", count: count) }
        let prefix = Array(repeating: UInt8(ascii: "x"), count: 1024)
        let items = Self.decode(x(limit + 1) + "\n" + x(limit) + "\nok\n" + x(3000) + "\n\n" + x(limit - 1) + "\r\n", maximumLineLength: limit)
        #expect(
            items == [
                .tooLong(prefix: prefix, number: 1, batch: nil), .line(Self.bytes(x(limit)), number: 2),
                .line(Self.bytes("ok"), number: 3), .tooLong(prefix: prefix, number: 4, batch: nil),
                .blank(number: 5), .line(Self.bytes(x(limit - 1)), number: 6),
            ])
        // A too-long last line without a newline.
        #expect(
            Self.decode("a\n" + x(3000), maximumLineLength: 2000)
                == [.line(Self.bytes("a"), number: 1), .tooLong(prefix: prefix, number: 2, batch: nil)])
        // Small limits: the CR does not count towards the length; the prefix is the first 1 KiB.
        #expect(
            Self.decode("12345678\r\n123456789\n" + x(2000) + "\r\n", maximumLineLength: 8) == [
                .line(Self.bytes("12345678"), number: 1), .tooLong(prefix: Self.bytes("123456789"), number: 2, batch: nil),
                .tooLong(prefix: prefix, number: 3, batch: nil),
            ])
    }

    @Test func longLinesAreNotBufferedWhole() {
        let line = Array(repeating: UInt8(ascii: "y"), count: 200_000)
        let stream = Self.bytes("first\n") + line + Self.bytes("\r\nnext\n") + line
        for chunk in [1000, 4096, 65536, 300_000] {
            let run = FrameDecoder.run(stream, chunks: [chunk], maximumLineLength: 10_000)
            #expect(run.maximumBuffered <= 10_000 + chunk, "chunks of \(chunk): \(run.maximumBuffered) bytes held")
            // Read in place, a chunk leaves at most the limit behind (what is not yet known to be too long).
            let inPlace = FrameDecoder.run(stream, chunks: [chunk], maximumLineLength: 10_000, inPlace: true)
            #expect(inPlace.maximumBuffered <= 10_001, "chunks of \(chunk) in place: \(inPlace.maximumBuffered) bytes held")
            #expect(inPlace.items == run.items)
            #expect(
                run.items == [
                    .line(Self.bytes("first"), number: 1), .tooLong(prefix: Array(line.prefix(1024)), number: 2, batch: nil),
                    .line(Self.bytes("next"), number: 3), .tooLong(prefix: Array(line.prefix(1024)), number: 4, batch: nil),
                ])
        }
    }

    // MARK: Frames

    @Test func validFrame() {
        let payload = "{\"e\":1}\n\n{\"e\":2}\r\n"
        let header = Self.header("b1", bytes: payload.utf8.count)
        let items = Self.decode("before\n" + header + "\r\n" + payload + "after\n" + header + "\n" + payload)
        let expected = BatchHeader(id: "b1", timestamp: 1_700_000_000, signature: "v1,c2lnbmF0dXJl", bytes: payload.utf8.count)
        #expect(
            items == [
                .line(Self.bytes("before"), number: 1),
                .batch(expected, header: Self.bytes(header), payload: Self.bytes(payload), number: 2),
                .line(Self.bytes("after"), number: 6),
                .batch(expected, header: Self.bytes(header), payload: Self.bytes(payload), number: 7),
            ])
    }

    @Test func headerRecognition() {
        // Leading whitespace and spaces inside are fine; "batch" must be the first member.
        let payload = "x\n"
        let spaced = " \t{ \"batch\" : {\"bytes\":2,\"signature\":\"s\",\"timestamp\":-5,\"id\":\"\\u00e9\"} , \"other\":1}"
        let items = Self.decode(spaced + "\n" + payload + "{\"id\":1,\"batch\":{}}\n")
        #expect(
            items == [
                .batch(
                    BatchHeader(id: "é", timestamp: -5, signature: "s", bytes: 2), header: Self.bytes(spaced), payload: Self.bytes(payload), number: 1
                ),
                .line(Self.bytes("{\"id\":1,\"batch\":{}}"), number: 3),
            ])
    }

    /// Every line of a rejected frame, numbered from `first`.
    static func rejectedLines(_ lines: [String], from first: Int, batch: String?, detail: String) -> [RecordedItem] {
        lines.enumerated().map { offset, line in
            .rejected(
                Self.bytes(line), number: first + offset, batch: batch, reason: .badFrame, detail: "in a rejected frame: " + detail, isHeader: false)
        }
    }

    @Test func shortPayloadAtTheEndOfTheStream() {
        let header = Self.header("b1", bytes: 100)
        let items = Self.decode("a\n" + header + "\nx\nyz")
        let detail = "the stream ended 4 bytes into a payload of 100"
        #expect(
            items == [
                .line(Self.bytes("a"), number: 1),
                .rejected(Self.bytes(header), number: 2, batch: "b1", reason: .badFrame, detail: detail, isHeader: true),
            ] + Self.rejectedLines(["x", "yz"], from: 3, batch: "b1", detail: detail))
        // No payload at all.
        #expect(
            Self.decode(header + "\n")
                == [
                    .rejected(
                        Self.bytes(header), number: 1, batch: "b1", reason: .badFrame,
                        detail: "the stream ended 0 bytes into a payload of 100", isHeader: true)
                ])
    }

    @Test func payloadNotEndingInANewline() {
        // The frame's 5 bytes end inside the line "def": the stream resumes right after them.
        let header = Self.header("b2", bytes: 5)
        let items = Self.decode(header + "\nabc\ndef\nnext\n")
        let detail = "the payload does not end in a newline after 5 bytes"
        #expect(
            items
                == [.rejected(Self.bytes(header), number: 1, batch: "b2", reason: .badFrame, detail: detail, isHeader: true)]
                + Self.rejectedLines(["abc", "d"], from: 2, batch: "b2", detail: detail)
                + [.line(Self.bytes("ef"), number: 4), .line(Self.bytes("next"), number: 5)])
    }

    @Test func payloadOverTheMaximum() {
        let long = String(repeating: "z", count: 1500)
        let payload = "0123456789\n\n" + long + "\nabcdefgh\n"
        let header = Self.header("big", bytes: payload.utf8.count)
        let items = Self.decode(header + "\n" + payload + "after\n", maximumLineLength: 1100, maximumBatchBytes: 16)
        let detail = "the payload of \(payload.utf8.count) bytes is over --max-batch (16)"
        let rejected = "in a rejected frame: " + detail
        #expect(
            items == [
                .rejected(Self.bytes(header), number: 1, batch: "big", reason: .badFrame, detail: detail, isHeader: true),
                .rejected(Self.bytes("0123456789"), number: 2, batch: "big", reason: .badFrame, detail: rejected, isHeader: false),
                .blank(number: 3),
                .tooLong(prefix: Array(Self.bytes(long).prefix(1024)), number: 4, batch: "big"),
                .rejected(Self.bytes("abcdefgh"), number: 5, batch: "big", reason: .badFrame, detail: rejected, isHeader: false),
                .line(Self.bytes("after"), number: 6),
            ])
        // A header longer than the line limit is only a long line; its payload lines are ordinary lines.
        #expect(
            Self.decode(header + "\n0123456789\n", maximumLineLength: 10)
                == [.tooLong(prefix: Self.bytes(header), number: 1, batch: nil), .line(Self.bytes("0123456789"), number: 2)])
    }

    @Test func payloadOverTheMaximumIsSkippedWithoutBuffering() {
        let p = String(repeating: "p", count: 500)
        let q = String(repeating: "q", count: 500)
        let payload = p + "\n" + q + "\n"
        let header = Self.header("big", bytes: payload.utf8.count)
        let detail = "the payload of 1002 bytes is over --max-batch (64)"
        let stream = Self.bytes(header + "\n" + payload + "after\n")
        let run = FrameDecoder.run(stream, chunks: [8], maximumLineLength: 600, maximumBatchBytes: 64)
        // The header line is buffered whole; the payload only line by line.
        #expect(run.maximumBuffered <= 600 + 8)
        #expect(
            run.items
                == [.rejected(Self.bytes(header), number: 1, batch: "big", reason: .badFrame, detail: detail, isHeader: true)]
                + Self.rejectedLines([p, q], from: 2, batch: "big", detail: detail)
                + [.line(Self.bytes("after"), number: 4)])
    }

    static let unreadableHeaders: [(header: String, batch: String?, skips: Bool, detail: String)] = [
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s","bytes":4}"#, nil, false, "the batch header is not a JSON object {\"batch\":{…}}"),
        (#"{"batch":5}"#, nil, false, "the batch header is not a JSON object {\"batch\":{…}}"),
        (#"{"batch":[],"bytes":4}"#, nil, false, "the batch header is not a JSON object {\"batch\":{…}}"),
        (#"{"batch":{"id":"b1"}}"#, "b1", false, "batch.timestamp must be integer epoch seconds"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s"}}"#, "b1", false, "batch.bytes must be a non-negative integer"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s","bytes":-4}}"#, "b1", false, "batch.bytes must be a non-negative integer"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s","bytes":4.0}}"#, "b1", false, "batch.bytes must be a non-negative integer"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s","bytes":"4"}}"#, "b1", false, "batch.bytes must be a non-negative integer"),
        (#"{"batch":{"id":"b1","bytes":4}}"#, "b1", true, "batch.timestamp must be integer epoch seconds"),
        (#"{"batch":{"id":"b1","timestamp":1.5,"signature":"s","bytes":4}}"#, "b1", true, "batch.timestamp must be integer epoch seconds"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":5,"bytes":4}}"#, "b1", true, "batch.signature must be a string"),
        (#"{"batch":{"id":"b1","timestamp":1,"signature":"s","bytes":4,"id":"b1"}}"#, "b1", true, "the batch header repeats a key"),
        // Keys a header does not have count too, escaped or not; one of them alone is no repeat.
        (#"{"batch":{"x":1,"id":"b1","timestamp":1,"signature":"s","bytes":4,"\u0078":2}}"#, "b1", true, "the batch header repeats a key"),
        (
            #"{"batch":{"x":1,"id":"b1","timestamp":1.5,"signature":"s","bytes":4,"y":2}}"#, "b1", true,
            "batch.timestamp must be integer epoch seconds"
        ),
        (#"{"batch":{"id":"","timestamp":1,"signature":"s","bytes":4}}"#, "", true, "batch.id must be a string of 1 to 256 bytes"),
        (#"{"batch":{"id":7,"timestamp":1,"signature":"s","bytes":4}}"#, nil, true, "batch.id must be a string of 1 to 256 bytes"),
        (#"{"batch":{"id":"a.b","timestamp":1,"signature":"s","bytes":4}}"#, "a.b", true, "batch.id must not contain '.'"),
        (#"{"batch":{"id":".","timestamp":1,"signature":"s","bytes":4}}"#, ".", true, "batch.id must not contain '.'"),
        (#"{"batch":{"id":"a\u002eb","timestamp":1,"signature":"s","bytes":4}}"#, "a.b", true, "batch.id must not contain '.'"),
    ]

    @Test(arguments: unreadableHeaders)
    func unreadableHeader(_ header: String, _ batch: String?, _ skips: Bool, _ detail: String) {
        // The 4 bytes "p1\np" cut the line "p2" (when the frame length could be read).
        let items = Self.decode("ok\n" + header + "\np1\np2\nnext\n")
        let headerItem = RecordedItem.rejected(Self.bytes(header), number: 2, batch: batch, reason: .badFrame, detail: detail, isHeader: true)
        if skips {
            #expect(
                items
                    == [.line(Self.bytes("ok"), number: 1), headerItem]
                    + Self.rejectedLines(["p1", "p"], from: 3, batch: batch, detail: detail)
                    + [.line(Self.bytes("2"), number: 5), .line(Self.bytes("next"), number: 6)])
        } else {
            #expect(
                items == [
                    .line(Self.bytes("ok"), number: 1), headerItem, .line(Self.bytes("p1"), number: 3),
                    .line(Self.bytes("p2"), number: 4), .line(Self.bytes("next"), number: 5),
                ])
        }
    }

    @Test func emptyPayload() {
        let header = Self.header("b0", bytes: 0)
        #expect(
            Self.decode(header + "\nnext\n") == [
                .rejected(Self.bytes(header), number: 1, batch: "b0", reason: .badFrame, detail: "the payload is empty", isHeader: true),
                .line(Self.bytes("next"), number: 2),
            ])
    }

    @Test func rejectedFrameWithBlankAndLongLines() {
        let long = String(repeating: "L", count: 1200)
        let payload = "ok\n \n" + long + "\r\nend\n"
        let header = "{\"batch\":{\"id\":\"a.b\",\"bytes\":\(payload.utf8.count)}}"
        let detail = "batch.id must not contain '.'"
        let rejected = "in a rejected frame: " + detail
        let items = Self.decode("x\n" + header + "\n" + payload + "next", maximumLineLength: 1100)
        #expect(
            items == [
                .line(Self.bytes("x"), number: 1),
                .rejected(Self.bytes(header), number: 2, batch: "a.b", reason: .badFrame, detail: detail, isHeader: true),
                .rejected(Self.bytes("ok"), number: 3, batch: "a.b", reason: .badFrame, detail: rejected, isHeader: false),
                .blank(number: 4),
                .tooLong(prefix: Array(Self.bytes(long).prefix(1024)), number: 5, batch: "a.b"),
                .rejected(Self.bytes("end"), number: 6, batch: "a.b", reason: .badFrame, detail: rejected, isHeader: false),
                .line(Self.bytes("next"), number: 7),
            ])
    }

    // MARK: Property: chunking does not change the items

    struct Stream {
        var bytes: [UInt8] = []
        /// False when a frame length cuts a line in two (the piece after the frame is numbered as a new line).
        var keepsLines = true
    }

    static let maximumBatchBytes = 3000

    static func randomLine(_ random: inout SplitMix64, limit: Int) -> [UInt8] {
        switch random.int(0..<10) {
        case 0: return Array(random.pick(["", " ", "\t \t", "\r"]).utf8)
        case 1:
            // Around the line limit.
            return Array(repeating: UInt8(ascii: "w"), count: random.int((limit - 2)...(limit + 1)))
        case 2: return Array(repeating: UInt8(ascii: "W"), count: random.int(1200...2600))
        case 3: return Array(#"{"batch":"not a header"}"#.utf8)
        default:
            return (0..<random.int(1...60)).map { _ in random.chance(0.05) ? 0x0D : UInt8(random.int(0x20...0x7E)) }
        }
    }

    static func randomStream(_ random: inout SplitMix64, limit: Int) -> Stream {
        var stream = Stream()
        func line(_ random: inout SplitMix64) -> [UInt8] {
            var line = Self.randomLine(&random, limit: limit)
            let crlf = random.chance(0.3)
            line += crlf ? [0x0D, 0x0A] : [0x0A]
            return line
        }
        for _ in 0..<random.int(5...25) {
            switch random.int(0..<12) {
            case 0, 1, 2:
                // A well-formed frame.
                var payload: [UInt8] = []
                for _ in 0..<random.int(1...4) { payload += line(&random) }
                if payload.count > Self.maximumBatchBytes { payload = Array("small\n".utf8) }
                stream.bytes +=
                    Array(Self.header("b\(random.int(0...99))", bytes: payload.count).utf8) + (random.chance(0.2) ? [0x0D, 0x0A] : [0x0A])
                stream.bytes += payload
            case 3:
                // A frame whose header cannot be read, or is refused, or whose length cuts a line.
                var payload: [UInt8] = []
                for _ in 0..<random.int(1...3) { payload += line(&random) }
                var length = payload.count
                let header: String
                switch random.int(0..<5) {
                case 0: header = Self.header("a.b", bytes: length)
                case 1: header = #"{"batch":{"id":"x","bytes":"# + String(length) + "}}"
                case 2:
                    header = #"{"batch":{"id":"x","timestamp":1,"signature":"s","bytes":"# + String(length) + "}"
                case 3:
                    length = max(1, length - random.int(1...3))
                    header = Self.header("cut", bytes: length)
                    stream.keepsLines = false
                default:
                    length = Self.maximumBatchBytes + random.int(1...50)
                    header = Self.header("over", bytes: length)
                    while payload.count < length { payload += line(&random) }
                    if payload.count > length { stream.keepsLines = false }
                }
                stream.bytes += Array(header.utf8) + [0x0A] + payload
            default:
                stream.bytes += line(&random)
            }
        }
        switch random.int(0..<4) {
        case 0:
            // A frame cut short by the end of the stream.
            stream.bytes += Array(Self.header("end", bytes: 500).utf8) + [0x0A] + Array("partial\nline".utf8)
            stream.keepsLines = false
        case 1:
            stream.bytes += Array("no newline at the end".utf8)
        default:
            break
        }
        return stream
    }

    @Test(arguments: 0..<64 as Range<UInt64>)
    func chunkingDoesNotChangeTheItems(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        // Line limits over and under the 1 KiB prefix of too-long lines (headers are under 90 bytes).
        let limit = seed % 2 == 0 ? 1100 : 120
        let stream = Self.randomStream(&random, limit: limit)
        let limits = (maximumLineLength: limit, maximumBatchBytes: Self.maximumBatchBytes)
        let whole = FrameDecoder.run(stream.bytes, chunks: [stream.bytes.count], maximumLineLength: limits.0, maximumBatchBytes: limits.1)
        var chunkings = Self.chunkings
        for _ in 0..<3 { chunkings.append((0..<20).map { _ in random.chance(0.5) ? random.int(1...8) : random.int(1...3000) }) }
        for chunks in chunkings {
            // Appended then decoded, and read in place where nothing is buffered: the same items.
            for inPlace in [false, true] {
                let run = FrameDecoder.run(
                    stream.bytes, chunks: chunks, maximumLineLength: limits.0, maximumBatchBytes: limits.1, inPlace: inPlace)
                #expect(
                    run.items == whole.items,
                    "seed \(seed), chunks of \(chunks), in place: \(inPlace): \(firstDifference(run.items, whole.items))")
                #expect(run.lineNumber == whole.lineNumber, "seed \(seed), chunks of \(chunks), in place: \(inPlace)")
            }
        }
        // Line numbers: every physical line once, from 1, a frame's payload lines after its header.
        var next = 1
        for item in whole.items {
            #expect(item.number == next, "seed \(seed): \(item) expected at line \(next)")
            next = item.number + 1
            if case .batch(_, _, let payload, _) = item { next += payload.count { $0 == 0x0A } }
        }
        #expect(whole.lineNumber == next - 1)
        if stream.keepsLines {
            let physical = stream.bytes.count { $0 == 0x0A } + (stream.bytes.last.map { $0 == 0x0A ? 0 : 1 } ?? 0)
            #expect(whole.lineNumber == physical, "seed \(seed)")
        }
    }

    func firstDifference(_ left: [RecordedItem], _ right: [RecordedItem]) -> String {
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index].description : "nothing"
            let b = index < right.count ? right[index].description : "nothing"
            if a != b || (index < left.count && index < right.count && left[index] != right[index]) {
                return "item \(index): \(a) instead of \(b)"
            }
        }
        return "same items"
    }

    // MARK: Chunking edge cases (found failing on the first commit)

    /// A line of exactly `maximumLineLength` bytes ending in CR LF is a `line` whether or not a read
    /// ends between the CR and the LF. (The first commit counted the CR towards the length while no
    /// newline was buffered yet, so the split stream gave `too_long`.)
    @Test func crLFAtTheLineLimitSplitBetweenCRAndLF() {
        let whole = FrameDecoder.run(Self.bytes("a\r\n"), chunks: [3], maximumLineLength: 1)
        let split = FrameDecoder.run(Self.bytes("a\r\n"), chunks: [2, 1], maximumLineLength: 1)
        #expect(whole.items == [.line(Self.bytes("a"), number: 1)])
        #expect(split.items == whole.items)
        // The same inside a rejected frame (id with "."): a payload line of 33 bytes, limit 33.
        let frame = Self.bytes("{\"batch\":{\"id\":\"a.b\",\"bytes\":35}}\n" + String(repeating: "a", count: 33) + "\r\n")
        let wholeFrame = FrameDecoder.run(frame, chunks: [frame.count], maximumLineLength: 33)
        let splitFrame = FrameDecoder.run(frame, chunks: [frame.count - 1, 1], maximumLineLength: 33)
        #expect(wholeFrame.items.count == 2)
        #expect(splitFrame.items == wholeFrame.items)
    }

    /// With `maximumLineLength` under 1024 (`--max-line 100`) the prefix of a too-long line is still its
    /// first 1 KiB (docs/formats.md, Dead letters: "for `too_long` it is the first 1 KiB") wherever the reads end. (The first
    /// commit cut a line noticed before its newline arrived at the bytes buffered so far.)
    @Test func tooLongPrefixDoesNotDependOnChunks() {
        let stream = Self.bytes(String(repeating: "x", count: 300) + "\n")
        let whole = FrameDecoder.run(stream, chunks: [stream.count], maximumLineLength: 100)
        let split = FrameDecoder.run(stream, chunks: [150], maximumLineLength: 100)
        #expect(whole.items == [.tooLong(prefix: Array(stream.prefix(300)), number: 1, batch: nil)])
        #expect(split.items == whole.items)
    }

    /// A header with 50,000 keys it does not know (well within --max-line): each is kept once to
    /// tell a repeat (in a set: a list made this quadratic), and a repeat among them is found.
    @Test func aHeaderWithManyUnknownKeys() {
        let keys = (0..<50_000).map { "\"k\($0)\":0" }.joined(separator: ",")
        let members = #""id":"b1","timestamp":1,"signature":"s","bytes":2"#
        let good = Array(("{\"batch\":{" + keys + "," + members + "}}").utf8)
        let repeated = Array(("{\"batch\":{" + keys + "," + members + ",\"k49999\":1}}").utf8)
        guard case .header(let header) = good.withUnsafeBytes({ BatchHeader.parse($0) }) else {
            Issue.record("a header with many other keys is refused")
            return
        }
        #expect(header.id == "b1" && header.bytes == 2)
        guard case .invalid(let id, _, let detail) = repeated.withUnsafeBytes({ BatchHeader.parse($0) }) else {
            Issue.record("a repeated key among many is not found")
            return
        }
        #expect(id == "b1" && detail == "the batch header repeats a key")
    }

    /// A header key written with an escape (`"\u0062ytes"` is `"bytes"` in JSON) is the same key, so
    /// repeating it makes the frame `bad_frame`; the first value still gives the frame length. (The
    /// first commit matched raw key bytes and accepted this frame with `bytes` 2, while a JSON reader
    /// taking the last member reads 500.)
    @Test func escapedRepeatedHeaderKeyIsARepeat() {
        let header = #"{"batch":{"id":"b","timestamp":1,"signature":"s","bytes":2,"\u0062ytes":500}}"#
        let items = FrameDecoder.run(Self.bytes(header + "\nx\ny\n"), chunks: [100]).items
        let detail = "the batch header repeats a key"
        #expect(
            items
                == [.rejected(Self.bytes(header), number: 1, batch: "b", reason: .badFrame, detail: detail, isHeader: true)]
                + Self.rejectedLines(["x"], from: 2, batch: "b", detail: detail) + [.line(Self.bytes("y"), number: 3)])
    }
}
