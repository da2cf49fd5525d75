/// Why bytes could not be read back as an engine snapshot.
public enum SnapshotError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The bytes end before the snapshot does (a partial write, or not a snapshot at all).
    case truncated
    /// The bytes are not a snapshot this build can read, or break an invariant of the engine's state.
    case invalid(String)
    /// The snapshot was taken with options that change results; names each one that differs.
    case configurationMismatch(String)
    /// A whole snapshot of another layout version (written by another release of roas).
    case unsupportedVersion(UInt32)

    /// The reason as one line, for logs.
    public var description: String {
        switch self {
        case .truncated: "the snapshot is truncated"
        case .invalid(let reason): "the snapshot is invalid: \(reason)"
        case .configurationMismatch(let difference): "the snapshot was taken with other options: \(difference)"
        case .unsupportedVersion(let version):
            "the snapshot has layout version \(version); this build reads \(Engine.snapshotVersion)"
        }
    }
}
