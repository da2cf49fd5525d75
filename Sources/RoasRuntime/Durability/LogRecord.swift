/// Kinds of write-ahead log records of `roas serve --data-dir`.
public enum LogRecord {
    /// A chunk's journal: accepted batches as frames and bare events as lines.
    public static let input: UInt8 = 1
    /// The idle close moved the watermark to the Int64 (little-endian) of the payload.
    public static let idleAdvance: UInt8 = 2
}
