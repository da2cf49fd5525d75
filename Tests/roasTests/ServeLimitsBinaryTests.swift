import Foundation
import RoasTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The `roas serve` binary against unauthenticated clients sending big bodies (issue 16: 40 POSTs
/// of 16 MiB signed `v1,AAAA` took RSS from 39 MB to 2.25 GB and wrote 2.3 GB of dead letters).
@Suite("roas serve limits, the binary", .ownThread)
struct ServeLimitsBinaryTests {
    static let secret = ServeBinaryTests.secret

    @Test("40 POSTs of 16 MiB with a malformed, then 40 with a wrong signature: RSS and the dead-letter file stay small")
    func unauthenticatedBodies() throws {
        let deadLetters = Tools.temporaryPath("limits-dead.ndjson")
        defer { try? FileManager.default.removeItem(atPath: deadLetters) }
        let server = try ServeBinaryTests.Server(["--secret", Self.secret, "--tolerance", "0", "--dead-letter", deadLetters])
        let pid = server.child.processIdentifier
        let before = try Self.memory(pid)

        // Just under --max-batch (16 MiB), made of event lines.
        let line = Array(#"{"type":"view","id":"v","ts":"2026-11-21T10:00:00Z","user":"u","creator":"@a"}"#.utf8) + [10]
        var body = [UInt8]()
        body.reserveCapacity(16 << 20)
        while body.count + line.count <= (16 << 20) - 4096 { body += line }

        // Malformed signatures: answered before the body is read; the body is sent anyway.
        let malformed = try Self.post(40, concurrently: 8, port: server.httpPort, body: body, signature: "v1,AAAA")
        let afterMalformed = try Self.memory(pid)
        let deadAfterMalformed = Self.size(deadLetters)

        // Well-formed but wrong signatures: the bodies are read (within --max-inflight-bytes),
        // fail verification, and are dead-lettered as one truncated record each.
        let wrong = "v1," + Data(repeating: 9, count: 32).base64EncodedString()
        let forged = try Self.post(40, concurrently: 4, port: server.httpPort, body: body, signature: wrong)
        let after = try Self.memory(pid)
        let stopped = server.stop()
        try #require(stopped.status == 0 && !stopped.timedOut, "\(stopped)")

        print(
            "40+40 POSTs of \(body.count) bytes: RSS \(before.rss / 1_000_000) MB before, \(afterMalformed.rss / 1_000_000) MB"
                + " after the malformed ones (peak \(afterMalformed.peak / 1_000_000) MB), \(after.rss / 1_000_000) MB after the"
                + " forged ones (peak \(after.peak / 1_000_000) MB); dead letters \(deadAfterMalformed) then \(Self.size(deadLetters)) bytes")
        #expect(malformed.statuses == [401: 40], "\(malformed)")
        #expect(malformed.answeredBeforeBody == 40, "\(malformed)")
        #expect(afterMalformed.peak < before.peak + 100_000_000, "malformed: peak RSS \(afterMalformed.peak) from \(before.peak)")
        #expect(deadAfterMalformed == 0, "nothing of a refused request is logged")
        #expect(forged.statuses == [401: 40], "\(forged)")
        #expect(after.peak < 300_000_000, "peak RSS \(after.peak) bytes")
        #expect(Self.size(deadLetters) < 40 * 8 * 1024, "dead letters: \(Self.size(deadLetters)) bytes")

        // The forged batches count line by line in the summary, as before.
        let summary = try ServeBinaryTests.summary(stopped)
        try ServeBinaryTests.expectBalanced(summary, stopped)
        #expect(summary["rejected_batches"] as? [String: Int] == ["bad_signature": 40], "\(stopped.stderrText)")
        let lines = String(decoding: FileManager.default.contents(atPath: deadLetters) ?? Data(), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        #expect(lines.count == 40)
        let check = try Tools.validate(lines, against: "dead-letter.schema.json")
        #expect(check.status == 0, "\(check)")
    }

    @Test(
        "bad limits are refused at start with a clear message",
        arguments: [
            (["--max-inflight-bytes", "1000000"], "twice --max-batch"),
            (["--http-timeout", "0"], "--http-timeout must be positive"),
            (["--max-http-connections", "0"], "--max-http-connections must be positive"),
            (["--stream-buffer", "0"], "--stream-buffer must be positive"),
        ])
    func badLimits(_ arguments: [String], _ message: String) throws {
        let result = try Tools.roas(["serve", "--listen-http", "127.0.0.1:0"] + arguments)
        #expect(result.status != 0 && !result.timedOut, "\(result)")
        #expect(result.stderrText.contains(message), "\(result)")
    }

    // MARK: Helpers

    struct Posted: CustomStringConvertible {
        var statuses: [Int: Int] = [:]
        /// Requests answered before their body was sent.
        var answeredBeforeBody = 0
        var description: String { "statuses \(self.statuses), \(self.answeredBeforeBody) answered before the body" }
    }

    /// `count` POSTs of `body` on `concurrently` threads: each sends its head, waits up to a second
    /// for an early answer, sends the body (whatever the answer), then reads the answer.
    static func post(_ count: Int, concurrently: Int, port: Int, body: [UInt8], signature: String) throws -> Posted {
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var posted = Posted()
            var failure: (any Error)?
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: concurrently) { worker in
            for index in stride(from: worker, to: count, by: concurrently) {
                do {
                    let (status, early) = try Self.post(port: port, id: "big-\(index)", body: body, signature: signature)
                    results.lock.lock()
                    results.posted.statuses[status, default: 0] += 1
                    if early { results.posted.answeredBeforeBody += 1 }
                    results.lock.unlock()
                } catch {
                    results.lock.lock()
                    results.failure = error
                    results.lock.unlock()
                }
            }
        }
        if let failure = results.failure { throw failure }
        return results.posted
    }

    static func post(port: Int, id: String, body: [UInt8], signature: String) throws -> (status: Int, early: Bool) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ToolFailure("socket: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var limit = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ToolFailure("connect: \(String(cString: strerror(errno)))") }
        let head =
            "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nwebhook-id: \(id)\r\nwebhook-timestamp: \(Int(Date().timeIntervalSince1970))\r\n"
            + "webhook-signature: \(signature)\r\nContent-Length: \(body.count)\r\n\r\n"
        func send(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return false }
                offset += written
            }
            return true
        }
        guard send(Array(head.utf8)) else { throw ToolFailure("send: \(String(cString: strerror(errno)))") }
        var answer = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        func readAnswer(waitingMilliseconds: Int32) {
            while answer.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, waitingMilliseconds) > 0 else { return }
                let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { return }
                answer += buffer[0..<count]
            }
        }
        readAnswer(waitingMilliseconds: 1000)
        let early = !answer.isEmpty
        // The body goes out either way (a refused one is read and discarded, or the connection
        // ends under it); then the answer.
        _ = send(body)
        readAnswer(waitingMilliseconds: 60_000)
        guard let end = answer.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw ToolFailure("no answer to a POST of \(body.count) bytes (\(answer.count) bytes read)")
        }
        let statusLine = String(decoding: answer[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ToolFailure("bad status line \(statusLine)") }
        return (status, early)
    }

    /// VmRSS and VmHWM (peak) of a process, in bytes.
    static func memory(_ pid: Int32) throws -> (rss: Int, peak: Int) {
        let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return (Int(line.split(separator: " ").dropFirst().first { Int($0) != nil } ?? "0") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}
