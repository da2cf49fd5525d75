#if canImport(Glibc)
import Glibc
#endif

/// A folder of this process for files a target writes: in `ROAS_FUZZ_TMP` when set (run.sh sets it
/// and removes it afterwards), else in /dev/shm (memory) or /tmp.
public enum TemporaryDirectory {
    nonisolated(unsafe) private static var made: String? = nil

    public static var path: String {
        if let made { return made }
        let parent: String
        if let given = getenv("ROAS_FUZZ_TMP") {
            parent = String(cString: given)
        } else if access("/dev/shm", W_OK) == 0 {
            parent = "/dev/shm"
        } else {
            parent = "/tmp"
        }
        var template = Array((parent + "/roas-fuzz-XXXXXX").utf8CString)
        let path = template.withUnsafeMutableBufferPointer { buffer -> String? in
            guard let result = mkdtemp(buffer.baseAddress!) else { return nil }
            return String(cString: result)
        }
        guard let path else { fail("cannot create a temporary folder in \(parent)") }
        made = path
        return path
    }

    /// Removes `path` and everything under it (no symbolic links are followed).
    public static func remove(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if status.st_mode & S_IFMT == S_IFDIR {
            for name in list(path) { remove(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    /// Writes `bytes` to a new file at `path` (replacing one).
    public static func write(_ bytes: some Collection<UInt8>, to path: String) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        require(descriptor >= 0, "cannot create \(path): errno \(errno)")
        defer { close(descriptor) }
        let array = Array(bytes)
        array.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                require(count > 0, "cannot write \(path): errno \(errno)")
                done += count
            }
        }
    }

    /// The bytes of the file at `path`, or nil when it cannot be read.
    public static func read(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress!, $0.count) }
            if count < 0 { return nil }
            if count == 0 { return result }
            result.append(contentsOf: buffer[0..<count])
        }
    }

    /// The names in folder `path` (not `.` and `..`), sorted.
    public static func list(_ path: String) -> [String] {
        guard let stream = opendir(path) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
                String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
