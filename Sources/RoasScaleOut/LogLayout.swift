import RoasCore
import RoasLog

/// Where scaled-out roas keeps things on a stream of the replicated log: partition `p`'s parts of
/// the input (`LogPart`) on `<stream>.in.<p>`, the edge's idle advances on `<stream>.in.advance`,
/// and the engine options the stream was made with on
/// `<stream>.options`, so that every edge (`roas serve --nats`) and worker (`roas worker`) checks
/// its own against them before it touches the stream.
public enum LogLayout {
    /// The stream's subjects: everything under its name.
    public static func subjects(_ stream: String) -> [String] { [stream + ".>"] }
    /// The subject of the options record.
    public static func optionsSubject(_ stream: String) -> String { stream + ".options" }
    /// The subject of partition `partition`'s parts.
    public static func partSubject(_ stream: String, _ partition: Int) -> String { "\(stream).in.\(partition)" }
    /// The filter matching every partition's parts (and the idle advances among them).
    public static func partsFilter(_ stream: String) -> String { stream + ".in.>" }
    /// The subject of the edge's idle advances (`roas serve --idle-close`), read in order with the
    /// parts: every worker moves its watermark at the same point of the stream.
    public static func advanceSubject(_ stream: String) -> String { stream + ".in.advance" }

    /// An idle advance's message: `{"idle_advance":<epoch milliseconds>}`.
    public static func advanceRecord(_ time: Int64) -> [UInt8] { Array("{\"idle_advance\":\(time)}".utf8) }

    /// The time of an idle advance's message, or nil when it is not one.
    public static func advanceTime(_ bytes: [UInt8]) -> Int64? {
        let prefix = Array("{\"idle_advance\":".utf8)
        guard bytes.count > prefix.count + 1, bytes.starts(with: prefix), bytes.last == UInt8(ascii: "}") else { return nil }
        let digits = bytes[prefix.count..<bytes.count - 1]
        guard digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }) else {
            return nil
        }
        return Int64(String(decoding: digits, as: UTF8.self))
    }

    /// Why a stream name cannot be used, or nil: a NATS stream name, which also starts every subject.
    public static func invalidStreamName(_ name: String) -> String? {
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= 64, allowed else {
            return "--stream must be 1 to 64 letters, digits, '_' or '-', got '\(name)'"
        }
        return nil
    }

    /// Records the options of `configuration` with the stream unless it holds some, which must then
    /// be equal.
    /// - Throws: `RoasError(.options)` naming each option that differs (`--window 1h there, 30m
    ///   now`); `RoasError(.output)` when the log cannot be read or written.
    public static func recordOptions(of configuration: EngineConfiguration, on log: any ReplicatedLog, stream: String) throws {
        let subject = Self.optionsSubject(stream)
        var held: LogMessage?
        do {
            held = try log.lastMessage(on: subject)
            if held == nil {
                // The id makes two processes starting at once record one copy: the first one's, which
                // the second then reads back and checks like any other.
                _ = try log.append([LogEntry(subject: subject, id: "options", bytes: configuration.optionsRecord)])
                held = try log.lastMessage(on: subject)
            }
        } catch {
            throw RoasError(.output, "cannot read or record the engine options on stream \(stream): \(error)")
        }
        guard let held else { throw RoasError(.output, "stream \(stream) lost its options record") }
        try configuration.checkOptionsRecord(held.bytes, source: "stream \(stream)")
    }
}
