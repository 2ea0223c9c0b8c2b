import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The package's root: three folders up from this file (Sources/CareRelayHarness/X.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

public struct TestProblem: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One of Scripts/loopback's Python servers, run for one test: started with `--port 0`, its port
/// read from the first line it prints, stopped with SIGTERM.
public final class LoopbackServer: @unchecked Sendable {
    public let process = Process()
    public let port: Int
    /// Where it records what it received (`--out`).
    public let out: URL
    public let stderr: URL

    /// - Parameter script: `smtp_server.py` or `http_recorder.py`.
    public init(_ script: String, _ arguments: [String], in folder: URL) async throws {
        let name = UUID().uuidString.prefix(8)
        out = folder.appendingPathComponent("\(script)-\(name).jsonl")
        stderr = folder.appendingPathComponent("\(script)-\(name).stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderr.path, contents: nil)
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", packageRoot.appendingPathComponent("Scripts/loopback/\(script)").path, "--port", "0", "--out", out.path] + arguments
        process.standardOutput = stdout
        process.standardError = try FileHandle(forWritingTo: stderr)
        try process.run()
        let reader = stdout.fileHandleForReading
        // The first line, read off the test's threads: a blocking read until it comes or the
        // server exits (end of file).
        let first: String = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var bytes: [UInt8] = []
                while !bytes.contains(UInt8(ascii: "\n")) {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    bytes.append(contentsOf: chunk)
                }
                continuation.resume(returning: String(decoding: bytes, as: UTF8.self))
            }
        }
        let words = first.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard words.count == 3, words[0] == "listening", let port = Int(words[2]) else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            let errors = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
            throw TestProblem("\(script) did not start: first line \(first.debugDescription), stderr: \(errors)")
        }
        self.port = port
    }

    /// SIGTERM, and SIGKILL if it has not gone within five seconds: a test never hangs here.
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }

    /// Every JSON line recorded so far.
    public func records() -> [[String: Any]] {
        guard let text = try? String(contentsOf: out, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// Waits for a recorded line that matches, polling the file until `seconds` have passed.
    public func record(within seconds: Double = 10, where matches: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            if let found = records().first(where: matches) { return found }
            guard Date() < deadline else {
                let errors = (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
                throw TestProblem("no matching line in \(out.lastPathComponent) within \(seconds) s; have \(records()); stderr: \(errors)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A folder for one test's files, removed afterwards.
public func temporaryFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-notify-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// A port on 127.0.0.1 that nothing listens on: bound, then closed.
public func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestProblem("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw TestProblem("bind() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}
