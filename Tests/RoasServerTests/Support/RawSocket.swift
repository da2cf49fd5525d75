import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback TCP client for the tests: raw frames for `--listen-tcp`, and plain HTTP/1.1
/// requests (`Connection: close`) for the webhook and read endpoints.
final class RawSocket: @unchecked Sendable {
    let descriptor: Int32

    /// - Parameter receiveBuffer: a small `SO_RCVBUF`, for a client that reads slowly.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(self.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(self.descriptor)
            throw SocketError("connect to port \(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(self.descriptor) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(self.descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw SocketError("write: \(String(cString: strerror(errno)))") }
            offset += written
        }
    }

    func send(_ text: String) throws { try self.send(Array(text.utf8)) }

    /// Half-closes: the server sees the end of the stream.
    func finishSending() { shutdown(self.descriptor, Int32(SHUT_WR)) }

    /// Reads until the peer closes, or until `until` holds for what was read, or the timeout.
    func receive(timeout: Double = 10, until: (([UInt8]) -> Bool)? = nil) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 50)
            if ready <= 0 { continue }
            let count = buffer.withUnsafeMutableBytes { read(self.descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            received.append(contentsOf: buffer[0..<count])
            if let until, until(received) { break }
        }
        return received
    }
}

struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A parsed HTTP/1.1 response.
struct HTTPReply {
    var status: Int
    var headers: [String: String]
    var body: [UInt8]
    var text: String { String(decoding: self.body, as: UTF8.self) }

    func json() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(self.body)) as? [String: Any] ?? [:]
    }

    /// Sends one request on a new connection and reads the whole reply.
    static func request(
        port: Int, _ method: String, _ path: String, headers: [String: String] = [:], body: [UInt8] = [],
        timeout: Double = 10
    ) throws -> HTTPReply {
        let socket = try RawSocket(port: port)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        try socket.send(Array(head.utf8) + body)
        return try HTTPReply(parsing: socket.receive(timeout: timeout))
    }

    init(parsing bytes: [UInt8]) throws {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { throw SocketError("no HTTP head in \(bytes.count) bytes") }
        let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw SocketError("bad status line \(lines[0])") }
        self.status = status
        self.headers = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            self.headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Array(bytes[end.upperBound...])
        if self.headers["transfer-encoding"] == "chunked" { body = HTTPReply.dechunk(body) }
        self.body = body
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        var index = 0
        while let lineEnd = bytes[index...].firstRange(of: [13, 10]) {
            guard let size = Int(String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0
            else { break }
            let start = lineEnd.upperBound
            output.append(contentsOf: bytes[start..<min(bytes.count, start + size)])
            index = start + size + 2
            guard index < bytes.count else { break }
        }
        return output
    }
}
