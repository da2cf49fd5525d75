/// A type a snapshot holds as raw memory: integer fields only, so that every bit pattern is a valid
/// value, and no padding, so that the bytes are deterministic. Conform only types that meet both.
protocol SnapshotRaw: BitwiseCopyable {}

extension UInt8: SnapshotRaw {}
extension Int32: SnapshotRaw {}
extension Int64: SnapshotRaw {}
extension UInt64: SnapshotRaw {}
extension Int: SnapshotRaw {}
