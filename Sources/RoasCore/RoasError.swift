/// A failure of the run. Bad input is not one: it becomes a dead letter with its reason.
public struct RoasError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable {
        case options, rates, secrets, input, output
    }

    public var code: Code
    /// What went wrong and how to fix it.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { self.message }
}
