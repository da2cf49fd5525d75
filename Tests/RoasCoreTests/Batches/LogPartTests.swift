import Foundation
import RoasCoreTestSupport
import Testing

@testable import RoasCore

/// The parts `roas serve --nats` puts on the log: every line of a batch lands where its key says,
/// the parts survive their encoding, and put back together (in any order, with repeats) they give the
/// batch's payload line for line.
@Suite("Log parts")
struct LogPartTests {
    static var parser: EventParser { EventParser(currencies: try! CurrencyTable(base: "USD", rates: ["EUR": 1.1, "GBP": 1.3])) }

    /// A batch of a random stream, with lines that are not events among them.
    static func payload(seed: UInt64, count: Int) -> [UInt8] {
        var maker = StreamMaker(seed: seed)
        var lines = maker.events(count: count, start: 1_764_000_000_000, span: 3_600_000).map(\.line)
        var random = SplitMix64(seed: seed ^ 0xFF)
        for junk in ["", "not json", "{\"type\":\"teleport\",\"id\":\"x\"}", "{\"type\":\"view\"}"] {
            lines.insert(junk, at: Int.random(in: 0...lines.count, using: &random))
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    static func fields(_ line: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any]
    }

    @Test(arguments: [1, 2, 16, 64])
    func partsGiveBackTheBatchAndKeepKeysTogether(partitions: Int) throws {
        for seed in UInt64(1)...12 {
            let payload = Self.payload(seed: seed, count: 300)
            let header = BatchHeader(id: "b-\(seed)", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
            let parts = payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: partitions, parser: Self.parser) }
            #expect(parts.count == partitions)
            #expect(parts.map(\.partition) == Array(0..<partitions))
            #expect(Set(parts.map(\.logID)).count == partitions)

            // Each key in one partition; links in all of them.
            var owner: [String: Int] = [:]
            var lineCount = 0
            for part in parts {
                #expect(part.take.count == part.lines.count)
                for line in part.lines {
                    lineCount += 1
                    guard let event = Self.fields(line), let type = event["type"] as? String else { continue }
                    let key: String?
                    switch type {
                    case "view", "click", "signup": key = (event["user"] as? String).map { "user " + $0 }
                    case "purchase", "refund": key = (event["order"] as? String).map { "order " + $0 }
                    case "spend", "engagement", "creator": key = (event["creator"] as? String).map { "creator " + $0 }
                    case "link":
                        #expect(parts.allSatisfy { $0.lines.contains(line) }, "a link in every part")
                        key = nil
                    default: key = nil
                    }
                    guard let key else { continue }
                    if let previous = owner[key] {
                        #expect(previous == part.partition, "\(key) in partitions \(previous) and \(part.partition)")
                    }
                    owner[key] = part.partition
                }
            }
            if partitions > 1 { #expect(Set(owner.values).count > 1, "keys spread over the partitions") }
            #expect(lineCount >= parts[0].lineCount)

            // Encoded and decoded, shuffled, with a repeat after the batch is whole.
            var random = SplitMix64(seed: seed)
            var decoded = try parts.map { part in try part.encoded.withUnsafeBytes { try LogPart(decoding: $0) } }
            #expect(decoded == parts)
            decoded.shuffle(using: &random)
            decoded.append(decoded[0])
            var assembler = LogPartAssembler()
            var frames: [[UInt8]] = []
            for part in decoded {
                if let frame = try assembler.add(part) { frames.append(frame) }
            }
            #expect(frames.count == 1)
            #expect(assembler.repeated == 1)
            #expect(assembler.incomplete == 0)
            var expected = Array(BatchHeader(id: header.id, timestamp: header.timestamp, signature: header.signature, bytes: payload.count).json.utf8)
            expected.append(0x0A)
            expected.append(contentsOf: payload)
            #expect(frames.first == expected)
        }
    }

    /// The parts of several batches as messages of the log: one partition per message, within
    /// the size asked for, ids that tell the groups apart; read back, they are the same parts, and
    /// put together in the messages' order they give the batches whole, in their order.
    @Test(arguments: [1 << 20, 3_000, 1])
    func messagesHoldThePartsOfSeveralBatches(maximumBytes: Int) throws {
        var parts: [LogPart] = []
        var frames: [[UInt8]] = []
        for seed in UInt64(1)...6 {
            let payload = Self.payload(seed: seed, count: 120)
            let header = BatchHeader(id: "b-\(seed)", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
            parts += payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 4, parser: Self.parser) }
            frames.append(Array(header.json.utf8) + [0x0A] + payload)
        }
        let messages = LogPart.messages(of: parts, partitions: 4, maximumBytes: maximumBytes)
        #expect(Set(messages.map(\.id)).count == messages.count)
        #expect(messages.map(\.partition) == messages.map(\.partition).sorted())
        var assembler = LogPartAssembler()
        var given: [[UInt8]] = []
        var read: [String: LogPart] = [:]
        // A reader's way: every frame appended to one buffer, which holds other bytes first.
        var appending = LogPartAssembler()
        var joined = Array("{\"some\":\"bytes before\"}\n".utf8)
        let before = joined
        for message in messages {
            let decoded = try message.bytes.withUnsafeBytes { try LogPart.parts(decoding: $0) }
            #expect(decoded.allSatisfy { $0.partition == message.partition })
            #expect(decoded.count == 1 || message.bytes.count <= maximumBytes)
            #expect((decoded.count == 1) == (message.id == decoded[0].logID), "\(message.id)")
            if maximumBytes == 1 << 20 { #expect(decoded.count == 6) }
            if maximumBytes == 1 { #expect(decoded.count == 1) }
            for part in decoded {
                read[part.logID] = part
                let frame = try assembler.add(part)
                if let frame { given.append(frame) }
                let count = joined.count
                #expect(try appending.add(part, appendingTo: &joined) == (frame != nil))
                #expect(frame.map { Array(joined[count...]) == $0 } ?? (joined.count == count))
            }
        }
        #expect(read == Dictionary(uniqueKeysWithValues: parts.map { ($0.logID, $0) }))
        #expect(given == frames)
        #expect(joined == before + frames.joined())
        // The same batches give the same ids; fewer batches, other ids.
        #expect(LogPart.messages(of: parts, partitions: 4, maximumBytes: maximumBytes) == messages)
        let fewer = LogPart.messages(of: Array(parts.dropLast(4)), partitions: 4, maximumBytes: maximumBytes)
        if maximumBytes == 1 << 20 { #expect(Set(fewer.map(\.id)).isDisjoint(with: messages.map(\.id))) }
    }

    /// The edge splits a parsed chunk by what parsing found on each line (`split(chunk:)`) rather
    /// than parsing each line again: on random dirty batches (junk, blank and too long lines, lines
    /// of every kind, links, a batch with a bad signature among them, several batches per chunk) the
    /// parts are those of parsing again, line for line, except that a line parsed but then refused
    /// (`future`) goes to partition 0; put together, both give the same batches.
    @Test(arguments: [nil, 3_600_000] as [Int64?])
    func partsOfAParsedChunkAreThoseOfParsingAgain(maximumFuture: Int64?) throws {
        var harness = PipelineHarness()
        harness.secrets = [try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
        let forger = try WebhookSecret("whsec_c2NhbGUtb3V0LXRlc3RzLXNlY3JldC0zMmJ5dGVzIQ==")
        var futureLines = 0
        for seed in UInt64(1)...30 {
            var random = SplitMix64(seed: seed)
            var text = ""
            var batches = 0
            for number in 0..<(1 + Int(random.next() % 5)) {
                var lines = String(decoding: Self.payload(seed: seed * 10 + UInt64(number), count: 80), as: UTF8.self)
                    .split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
                lines.insert(String(repeating: "z", count: 700), at: Int(random.next() % UInt64(lines.count)))  // too long
                lines.insert(
                    #"{"type":"click","id":"far-\#(number)","ts":"8999-12-31T23:59:59Z","user":"u1","creator":"c-a"}"#,
                    at: Int(random.next() % UInt64(lines.count)))
                let forged = random.next() % 4 == 0
                text += harness.batch(lines, id: "b-\(seed)-\(number)", timestamp: harness.now, secret: forged ? forger : nil) + "\n"
                if !forged { batches += 1 }
            }
            var parser = ChunkParser(
                configuration: harness.configuration, secrets: harness.secrets, tolerance: 0, maximumLineLength: 512,
                maximumBatchBytes: 1 << 24, journals: true, maximumFuture: maximumFuture, now: { [now = harness.now] in now })
            var chunk = Array(text.utf8).withUnsafeBytes { parser.consume($0) }
            if chunk.journal.isEmpty { chunk = parser.finish() }
            let fast = LogPart.split(chunk: chunk, partitions: 8, parser: Self.parser)
            let slow = LogPart.split(journal: chunk.journal, partitions: 8, parser: Self.parser)
            #expect(fast.bareLines == 0 && slow.bareLines == 0)
            #expect(fast.parts.count == batches * 8)
            if maximumFuture == nil {
                #expect(fast.parts == slow.parts, "seed \(seed)")
            } else {
                // Only the refused far-future clicks move, to partition 0.
                for (quick, parsed) in zip(fast.parts, slow.parts) where quick != parsed {
                    let moved = Set(quick.lines).symmetricDifference(Set(parsed.lines))
                    #expect(moved.allSatisfy { String(decoding: $0, as: UTF8.self).contains("8999-12-31") }, "seed \(seed)")
                    futureLines += quick.partition == 0 ? moved.count : 0
                }
            }
            var quickAssembler = LogPartAssembler()
            var slowAssembler = LogPartAssembler()
            #expect(try fast.parts.compactMap { try quickAssembler.add($0) } == slow.parts.compactMap { try slowAssembler.add($0) })
        }
        if maximumFuture != nil { #expect(futureLines > 0, "some refused lines moved to partition 0") }
    }

    /// A share of a batch too large for one message (here all of a batch in one partition: one
    /// creator's spend) is cut into pieces within the size asked for; encoded, grouped into messages
    /// and read back in any order with repeats, the pieces give back the batch once, and only once
    /// the last of them came.
    @Test(arguments: [1, 700, 4_000, 1 << 20])
    func aPartTooLargeForAMessageGoesAsPieces(maximumBytes: Int) throws {
        var random = SplitMix64(seed: UInt64(maximumBytes))
        let lines = (0..<200).map { index in
            let note = String(repeating: "x", count: Int(random.next() % 120))
            return #"{"type":"spend","id":"s-\#(index)","time":"2025-11-24T16:00:00Z","creator":"c-1","amount":1.5,"#
                + #""currency":"USD","note":"\#(note)"}"#
        }
        let payload = Array((lines.joined(separator: "\n") + "\n").utf8)
        let header = BatchHeader(id: "bulk", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
        let parts = payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 4, parser: Self.parser) }
        let full = try #require(parts.first { $0.take.count == 200 })
        let pieces = parts.flatMap { $0.cut(maximumBytes: maximumBytes) }
        let cut = pieces.filter { $0.partition == full.partition }
        if maximumBytes == 1 << 20 {
            #expect(cut == [full])
        } else {
            #expect(cut.count > 1)
            #expect(cut.map(\.piece) == Array(0..<cut.count))
            #expect(cut.allSatisfy { $0.pieces == cut.count })
            #expect(cut.flatMap(\.take) == full.take)
            #expect(cut.flatMap(\.lines) == full.lines)
            #expect(cut.allSatisfy { $0.take.count == 1 || $0.encoded.count <= maximumBytes }, "within the size")
            #expect(Set(pieces.map(\.logID)).count == pieces.count)
            #expect(cut.allSatisfy { $0.logID == "bulk/\(full.partition)-\($0.piece)" })
        }
        // The other partitions' empty parts are not cut.
        #expect(pieces.filter { $0.partition != full.partition }.allSatisfy { $0.pieces == 1 && $0.logID.hasSuffix("/\($0.partition)") })

        let messages = LogPart.messages(of: pieces, partitions: 4, maximumBytes: maximumBytes)
        #expect(Set(messages.map(\.id)).count == messages.count)
        var read = try messages.flatMap { message in try message.bytes.withUnsafeBytes { try LogPart.parts(decoding: $0) } }
        #expect(read == pieces)
        read.shuffle(using: &random)
        read.insert(read[0], at: Int(random.next() % UInt64(read.count)))
        var assembler = LogPartAssembler()
        var frames: [[UInt8]] = []
        for (index, part) in read.enumerated() {
            if let frame = try assembler.add(part) {
                frames.append(frame)
                // Every distinct piece came before the frame.
                #expect(Set(read[...index].map(\.logID)).count == pieces.count)
            }
        }
        #expect(frames == [Array(header.json.utf8) + [0x0A] + payload])
        #expect(assembler.incomplete == 0)
    }

    @Test
    func piecesThatDisagreeOnTheirCountAreRefused() throws {
        let lines = (0..<40).map { #"{"type":"spend","id":"s-\#($0)","time":"2025-11-24T16:00:00Z","creator":"c-1","amount":1}"# }
        let payload = Array(lines.map { $0 + "\n" }.joined().utf8)
        let header = BatchHeader(id: "b", timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
        let parts = payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 2, parser: Self.parser) }
        let full = try #require(parts.first { !$0.take.isEmpty })
        let inThree = full.cut(maximumBytes: 2_000)
        let inMore = full.cut(maximumBytes: 800)
        #expect(inThree.count >= 2 && inMore.count > inThree.count)
        var assembler = LogPartAssembler()
        #expect(try assembler.add(inThree[0]) == nil)
        #expect(throws: LogPart.Invalid.self) { try assembler.add(inMore[1]) }
        // A piece's encoding says which it is.
        let decoded = try inThree[1].encoded.withUnsafeBytes { try LogPart(decoding: $0) }
        #expect(decoded == inThree[1])
        #expect(String(decoding: inThree[1].encoded.prefix(while: { $0 != 0x0A }), as: UTF8.self).contains("\"piece\":[1,\(inThree.count)]"))
    }

    @Test
    func messagesThatMixPartitionsOrCutAPartAreRefused() throws {
        let payload = Self.payload(seed: 9, count: 60)
        var parts: [[LogPart]] = []
        for id in ["x", "y"] {
            let header = BatchHeader(id: id, timestamp: 1_764_000_000, signature: "v1,abc", bytes: payload.count)
            parts.append(payload.withUnsafeBytes { LogPart.split(header, payload: $0, partitions: 2, parser: Self.parser) })
        }
        let two = parts[0][0].encoded + parts[1][0].encoded
        #expect(try two.withUnsafeBytes { try LogPart.parts(decoding: $0) } == [parts[0][0], parts[1][0]])
        // One part only, where one is asked for.
        #expect(throws: LogPart.Invalid.self) { try two.withUnsafeBytes { try LogPart(decoding: $0) } }
        let mixed = parts[0][0].encoded + parts[1][1].encoded
        #expect(throws: LogPart.Invalid.self) { try mixed.withUnsafeBytes { try LogPart.parts(decoding: $0) } }
        for cut in [1, 2, 30] {
            let short = Array(two.dropLast(cut))
            #expect(throws: LogPart.Invalid.self) { try short.withUnsafeBytes { try LogPart.parts(decoding: $0) } }
        }
        #expect(throws: LogPart.Invalid.self) { try [UInt8]().withUnsafeBytes { try LogPart.parts(decoding: $0) } }
    }

    @Test
    func batchesCompleteInTheOrderTheirLastPartCame() throws {
        let first = Array("{\"type\":\"view\",\"id\":\"a\",\"ts\":1,\"user\":\"u1\",\"creator\":\"c\"}\n".utf8)
        let second = Array("{\"type\":\"view\",\"id\":\"b\",\"ts\":2,\"user\":\"u2\",\"creator\":\"c\"}\n".utf8)
        let a = first.withUnsafeBytes {
            LogPart.split(BatchHeader(id: "a", timestamp: 1, signature: "s", bytes: 0), payload: $0, partitions: 2, parser: Self.parser)
        }
        let b = second.withUnsafeBytes {
            LogPart.split(BatchHeader(id: "b", timestamp: 1, signature: "s", bytes: 0), payload: $0, partitions: 2, parser: Self.parser)
        }
        var assembler = LogPartAssembler()
        #expect(try assembler.add(a[0]) == nil)
        #expect(try assembler.add(b[1]) == nil)
        #expect(try assembler.add(b[0]) != nil)
        #expect(assembler.incomplete == 1)
        let frame = try #require(try assembler.add(a[1]))
        #expect(String(decoding: frame, as: UTF8.self).hasSuffix(String(decoding: first, as: UTF8.self)))
    }

    /// The two parts of a one-view batch `id`.
    static func parts(_ id: String) -> [LogPart] {
        let line = Array("{\"type\":\"view\",\"id\":\"a\",\"ts\":1,\"user\":\"u1\",\"creator\":\"c\"}\n".utf8)
        return line.withUnsafeBytes {
            LogPart.split(BatchHeader(id: id, timestamp: 1, signature: "s", bytes: 0), payload: $0, partitions: 2, parser: Self.parser)
        }
    }

    @Test
    func theAssemblerRemembersTwoGenerationsOfBatchIDs() throws {
        var assembler = LogPartAssembler(remembered: 2)
        func give(_ id: String) throws -> Int { try Self.parts(id).compactMap { try assembler.add($0) }.count }
        for id in ["a", "b", "c", "d", "e"] { #expect(try give(id) == 1) }
        // e is the newest generation, c and d the one before; a and b were forgotten when e came.
        for id in ["c", "d", "e"] { #expect(try give(id) == 0) }
        #expect(assembler.repeated == 6)
        #expect(try give("a") == 1, "forgotten two generations ago")
    }

    /// Where a worker must read again from to miss nothing: the first part of the oldest batch not
    /// yet whole; an assembler made again from the ids remembered ignores the parts of batches
    /// given before, and gives the others once whole.
    @Test
    func theAssemblerSaysWhereToReadAgainFrom() throws {
        let (a, b, c) = (Self.parts("a"), Self.parts("b"), Self.parts("c"))
        // The log: a0 a1 b0 c0 c1 (b1 not there yet), at sequences 10 to 14.
        let log: [(UInt64, LogPart)] = [(10, a[0]), (11, a[1]), (12, b[0]), (13, c[0]), (14, c[1])]
        var assembler = LogPartAssembler(remembered: 4)
        #expect(assembler.resumeSequence(after: 9) == 10)
        var given: [String] = []
        for (sequence, part) in log {
            if try assembler.add(part, sequence: sequence) != nil { given.append(part.header.id) }
            if sequence == 11 { #expect(assembler.resumeSequence(after: 11) == 12, "a is whole") }
        }
        #expect(given == ["a", "c"])
        #expect(assembler.resumeSequence(after: 14) == 12, "b waits for a part")
        let ids = assembler.rememberedIDs
        #expect(Set(ids.older + ids.newer) == ["a", "c"])

        // Made again from the ids, reading from 12: c is not given a second time, b is once whole.
        var again = LogPartAssembler(remembered: 4, older: ids.older, newer: ids.newer)
        var givenAgain: [String] = []
        for (sequence, part) in log.filter({ $0.0 >= 12 }) + [(15, b[1])] {
            if try again.add(part, sequence: sequence) != nil { givenAgain.append(part.header.id) }
        }
        #expect(givenAgain == ["b"])
        #expect(again.repeated == 2)
        #expect(again.resumeSequence(after: 15) == 16)
    }

    @Test
    func partsThatDisagreeOrLeaveALineOutAreRefused() throws {
        let header = BatchHeader(id: "x", timestamp: 1, signature: "s", bytes: 0)
        var assembler = LogPartAssembler()
        _ = try assembler.add(try LogPart(header: header, partition: 0, partitions: 2, lineCount: 2, take: [0], lines: [[0x61]]))
        #expect(throws: LogPart.Invalid.self) {
            try assembler.add(try LogPart(header: header, partition: 1, partitions: 2, lineCount: 3, take: [1], lines: [[0x62]]))
        }
        #expect(throws: LogPart.Invalid.self) {
            try assembler.add(try LogPart(header: header, partition: 1, partitions: 2, lineCount: 2, take: [], lines: []))
        }
        // A batch whose parts left a line out is given up (its id is not taken again).
        #expect(try assembler.add(try LogPart(header: header, partition: 1, partitions: 2, lineCount: 2, take: [], lines: [])) == nil)
        #expect(assembler.repeated == 1)
        // Lines and take that do not match, or a line number outside the batch.
        let other = BatchHeader(id: "y", timestamp: 1, signature: "s", bytes: 0)
        _ = try assembler.add(try LogPart(header: other, partition: 0, partitions: 2, lineCount: 2, take: [0], lines: [[0x61]]))
        #expect(throws: LogPart.Invalid.self) {
            try assembler.add(try LogPart(header: other, partition: 1, partitions: 2, lineCount: 2, take: [1], lines: [[0x62], [0x63]]))
        }
        #expect(throws: LogPart.Invalid.self) {
            try assembler.add(try LogPart(header: other, partition: 1, partitions: 2, lineCount: 2, take: [5], lines: [[0x62]]))
        }
        #expect(assembler.incomplete == 1)
        let frame = try #require(
            try assembler.add(try LogPart(header: other, partition: 1, partitions: 2, lineCount: 2, take: [1], lines: [[0x62]])))
        #expect(String(decoding: frame, as: UTF8.self).hasSuffix("}\na\nb\n"))
    }

    @Test
    func handWrittenPartsWithSpacesAreRead() throws {
        let text =
            "{ \"part\" : { \"take\" : [ 0 , 2 ], \"lines\": 3, \"partition\": 1, \"partitions\": 2, "
            + "\"batch\": {\"id\":\"x\",\"timestamp\":7,\"signature\":\"v1,AAAA\",\"bytes\":9} } }\nfirst\nthird\n"
        let part = try Array(text.utf8).withUnsafeBytes { try LogPart(decoding: $0) }
        #expect(part.take == [0, 2] && part.lineCount == 3 && part.partition == 1 && part.partitions == 2)
        #expect(part.header == BatchHeader(id: "x", timestamp: 7, signature: "v1,AAAA", bytes: 9))
        #expect(part.lines == [Array("first".utf8), Array("third".utf8)])
    }

    @Test(
        arguments: [
            "", "{}\n", "{\"part\":{}}\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":2,\"partitions\":2,\"lines\":1,\"take\":[]}}\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":3,\"lines\":1,\"take\":[]}}\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":99999999999,\"take\":[]}}\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[1,1]}}\na\nb\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[3]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[0,1]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[0,1]}}\na\nb",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[1.5]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[-1]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":3,\"take\":[\"0\"]}}\na\n",
            "{\"part\":{\"batch\":{\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"take\":[0]} \na\n",
            // Pieces: k < n, 2 <= n <= 2^24, exactly two integers.
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":[2,2],\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":[0,1],\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":[0],\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":[0,2,3],\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":1,\"take\":[0]}}\na\n",
            "{\"part\":{\"batch\":{\"id\":\"x\",\"timestamp\":1,\"signature\":\"s\",\"bytes\":0},\"partition\":0,\"partitions\":2,\"lines\":1,\"piece\":[0,16777217],\"take\":[0]}}\na\n",
        ])
    func messagesThatAreNotPartsAreRefused(_ text: String) {
        #expect(throws: LogPart.Invalid.self) { try Array(text.utf8).withUnsafeBytes { try LogPart(decoding: $0) } }
    }
}
