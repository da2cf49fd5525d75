#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one place roas reads the system's clocks. The engine (RoasCore) never does: it gets time as
/// values (event times, `now` closures), so everything that reads a clock lives here and names its
/// unit.
public enum SystemClock {
    /// Monotonic time in milliseconds (for durations and deadlines; not related to the epoch).
    public static func monotonicMilliseconds() -> Int64 {
        let now = Self.read(CLOCK_MONOTONIC)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Monotonic time in nanoseconds.
    public static func monotonicNanoseconds() -> UInt64 {
        let now = Self.read(CLOCK_MONOTONIC)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// CPU time the calling thread has used, in milliseconds (a system call, not the vDSO: for
    /// measuring work of milliseconds or more).
    public static func threadCPUMilliseconds() -> Int64 {
        let now = Self.read(CLOCK_THREAD_CPUTIME_ID)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Wall-clock seconds since the Unix epoch, rounded down.
    public static func wallClockSeconds() -> Int64 {
        Int64(Self.read(CLOCK_REALTIME).tv_sec)
    }

    /// Wall-clock milliseconds since the Unix epoch, rounded down.
    public static func wallClockMilliseconds() -> Int64 {
        let now = Self.read(CLOCK_REALTIME)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    private static func read(_ clock: clockid_t) -> timespec {
        var now = timespec()
        clock_gettime(clock, &now)
        return now
    }
}
