import Foundation

/// Runs blocking socket work on a thread of its own: blocking the two threads of Swift's
/// cooperative pool (this machine has 2 cores) would stall the server under test.
public func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
