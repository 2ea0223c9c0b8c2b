import Foundation
import ZeroMQ

/// The real `carerelay-broker` executable as a child process, so it can be killed with
/// SIGKILL, restarted on the same store and port, and its memory read from /proc. Used by
/// the crash and access tests and by `carerelay-soak`.
public final class BrokerProcess {
    public let process = Process()
    public let endpoint: String
    private let output = Pipe()
    private let errors = Pipe()

    public enum LaunchError: Error, CustomStringConvertible {
        /// The broker exited before saying it was listening; its status and what it wrote.
        case exited(status: Int32, stderr: String)
        public var description: String {
            switch self {
            case .exited(let status, let stderr): "carerelay-broker exited with status \(status): \(stderr)"
            }
        }
    }

    /// Starts `executable serve` with the given files and waits until it prints that it is
    /// listening (or exits, which throws with its error output).
    public init(
        executable: URL, directory: String, store: String, keyFile: String, endpoint: String,
        extraArguments: [String] = [], logLevel: String = "warning", logFile: String? = nil
    ) throws {
        self.endpoint = endpoint
        process.executableURL = executable
        process.arguments =
            [
                "serve", "--directory", directory, "--store", store, "--key-file", keyFile,
                "--endpoint", endpoint, "--log-level", logLevel,
            ] + extraArguments
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Serving once it says so: wait for the line, not for a guessed time.
        var seen = ""
        let handle = output.fileHandleForReading
        while !seen.contains("listening on") {
            let chunk = handle.availableData
            guard !chunk.isEmpty else {
                process.waitUntilExit()
                let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                throw LaunchError.exited(status: process.terminationStatus, stderr: stderr)
            }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        // Keep reading the broker's logs so a full pipe can never stall it; keep them if asked.
        let log = logFile.flatMap { path -> FileHandle? in
            if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
            let handle = FileHandle(forWritingAtPath: path)
            handle?.seekToEndOfFile()
            return handle
        }
        // A blocking read on a thread of its own, until the broker's end closes: not a
        // readabilityHandler, whose dispatch source, torn down with the pipe, can crash
        // libdispatch on Linux (swift-corelibs-foundation #5507).
        let fd = errors.fileHandleForReading.fileDescriptor
        let pipe = errors
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                log?.write(Data(buffer[0..<n]))
            }
            withExtendedLifetime(pipe) {}
        }
    }

    public var pid: Int32 { process.processIdentifier }

    /// Resident memory from /proc/PID/status, in kibibytes; nil once the process has gone.
    public var residentKiB: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }
        return line.flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }

    public func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits for the exit; returns the exit status. A broker still running after
    /// `patience` has ignored SIGTERM: it is killed (status 9, SIGKILL) so that a hung broker
    /// fails its test instead of stopping the run.
    @discardableResult
    public func terminate(patience: TimeInterval = 30) -> Int32 {
        process.terminate()
        let deadline = Date().addingTimeInterval(patience)
        let exited = DispatchSemaphore(value: 0)
        let watcher = Thread { [process] in
            process.waitUntilExit()
            exited.signal()
        }
        watcher.start()
        if exited.wait(timeout: .now() + deadline.timeIntervalSinceNow) == .timedOut {
            Foundation.kill(process.processIdentifier, SIGKILL)
            exited.wait()
        }
        return process.terminationStatus
    }

    /// The built `carerelay-broker` beside the running executable or test bundle, else in
    /// `.build/debug` under `packageRoot`.
    public static func executable(packageRoot: URL) -> URL {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("carerelay-broker")
        if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
        return packageRoot.appendingPathComponent(".build/debug/carerelay-broker")
    }
}

/// A free TCP port on loopback, found by binding port 0.
public func freePort() throws -> Int {
    let context = try ZMQContext()
    let socket = try context.makeSocket(.router)
    try socket.bind("tcp://127.0.0.1:*")
    let endpoint = try socket.lastEndpoint
    socket.close()
    return Int(endpoint.split(separator: ":").last ?? "") ?? 0
}
