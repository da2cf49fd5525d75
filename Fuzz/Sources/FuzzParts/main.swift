import FuzzSupport

// Fuzz target `parts`: messages as a worker reads them off the log (`roas worker`, `roas serve
// --nats --follow`): `LogCompression.decode`, then `LogPart.parts(decoding:)` (one part or several
// of one partition). Byte 0 chooses the mode:
//
// Read (even): the rest is a message. Checks: decoding returns or throws `LogCompression.Invalid`,
// never traps; a message that is not a Zstandard frame comes back as it is; what a frame gives back
// is framed again and reads back the same; a message that reads as a part (plain or framed) reads
// back the same from its own encoding, framed or not; `LogPart(decoding:)` reads it exactly when it
// holds one part; each part cut into pieces (`cut(maximumBytes:)`) gives back its lines in order,
// in pieces that read back the same and that an assembler puts together as the part alone would be.
//
// Write (odd): the rest is framed (`LogCompression.compress`), then read: the same bytes come back;
// with one byte of the frame changed (the position and the change are bytes 1-2) the frame is
// refused or gives back the same bytes (its checksum is checked), never other bytes; a change in
// the magic number makes it a message that is not a frame, read as it is.
@testable import RoasCore

func readsBack(_ message: [UInt8]) -> [UInt8]? {
    do {
        return try LogCompression.decode(message)
    } catch is LogCompression.Invalid {
        return nil
    } catch {
        fail("decode threw \(error), not LogCompression.Invalid")
    }
}

func checkParts(_ bytes: [UInt8]) {
    guard let parts = try? bytes.withUnsafeBytes({ try LogPart.parts(decoding: $0) }) else {
        require((try? bytes.withUnsafeBytes({ try LogPart(decoding: $0) })) == nil, "one part read, but not as a message")
        return
    }
    require(!parts.isEmpty && parts.allSatisfy { $0.partition == parts[0].partition }, "a message of no parts, or of several partitions")
    let single = try? bytes.withUnsafeBytes({ try LogPart(decoding: $0) })
    require((single != nil) == (parts.count == 1), "one part read as a part and as a message differently")
    let encoded = parts.flatMap(\.encoded)
    for form in [encoded, LogCompression.compress(encoded)] {
        guard let back = readsBack(form), let again = try? back.withUnsafeBytes({ try LogPart.parts(decoding: $0) }) else {
            fail("parts' own encoding does not read back: \(describe(encoded))")
        }
        require(again == parts, "parts read back differently from their encoding: \(describe(encoded))")
    }
    for part in parts where part.pieces == 1 {
        let pieces = part.cut(maximumBytes: 300)
        require(pieces.flatMap(\.take) == part.take && pieces.flatMap(\.lines) == part.lines, "pieces lost or moved lines")
        require(pieces.count == 1 || pieces.allSatisfy { $0.pieces == pieces.count }, "pieces disagree on their count")
        for piece in pieces {
            let back = try? piece.encoded.withUnsafeBytes { try LogPart(decoding: $0) }
            require(back == piece, "a piece does not read back from its encoding: \(describe(piece.encoded))")
        }
    }
}

fuzzMain { data, size in
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let message = Array(bytes.dropFirst())
    if bytes[0] & 1 == 0 {
        let isFrame = message.withUnsafeBytes { LogCompression.isFrame($0) }
        guard let back = readsBack(message) else {
            require(isFrame, "a message that is not a frame was refused: \(describe(message))")
            return 0
        }
        if isFrame {
            require(readsBack(LogCompression.compress(back)) == back, "bytes a frame gave back do not survive framing again")
        } else {
            require(back == message, "a message that is not a frame changed")
        }
        checkParts(back)
    } else {
        let frame = LogCompression.compress(message)
        require(readsBack(frame) == message, "framed bytes do not come back: \(describe(message))")
        if bytes.count >= 3 {
            var damaged = frame
            let index = Int(bytes[1]) % frame.count
            damaged[index] ^= bytes[2] == 0 ? 1 : bytes[2]
            if index < 4 {
                // No longer a frame's magic number: the message is read as it is (and a worker then
                // refuses it as a part: it begins with no `{`).
                require(readsBack(damaged) == damaged, "a message without the magic number was not read as it is")
            } else if let back = readsBack(damaged) {
                require(back == message, "a frame with byte \(index) changed gave other bytes: \(describe(message))")
            }
        }
    }
    return 0
}
