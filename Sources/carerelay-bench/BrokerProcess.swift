import ArgumentParser
import Foundation

/// `carerelay-broker serve` run as a child process, so that its memory is read alone from
/// /proc (nothing of the benchmark's own clients or fill counts) and a restart is a real one:
/// a new process reading the store from disk.
final class BrokerProcess {
    let process: Process
    let launchedAt: ContinuousClock.Instant
    /// From launch to the "listening on" line, which the broker writes once bound.
    let secondsToListening: Double
    let endpoint: String

    /// The broker executable is built beside this benchmark (`Scripts/bench` builds both).
    static var executable: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("carerelay-broker")
    }

    init(_ system: CareSystemFiles, heartbeatMilliseconds: Int = 5_000) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable.path) else {
            throw ValidationError("\(Self.executable.path) is missing: build it with `swift build -c release --product carerelay-broker`")
        }
        process = Process()
        process.executableURL = Self.executable
        process.arguments = [
            "serve", "--directory", system.directoryPath, "--store", system.storePath, "--key-file", system.keyFilePath,
            "--endpoint", "tcp://127.0.0.1:*", "--heartbeat", String(heartbeatMilliseconds), "--log-level", "warning",
        ]
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: system.logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: system.logPath)
        launchedAt = .now
        try process.run()
        let line = try Self.readLine(containing: "listening on", from: output.fileHandleForReading, log: system.logPath)
        secondsToListening = seconds(since: launchedAt)
        guard let address = line.split(separator: " ").first(where: { $0.hasPrefix("tcp://") }) else {
            throw ValidationError("no endpoint in the broker's line: \(line)")
        }
        endpoint = String(address)
    }

    private static func readLine(containing marker: String, from handle: FileHandle, log: String) throws -> String {
        var text = ""
        while true {
            let chunk = handle.availableData
            guard !chunk.isEmpty else {
                let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(2_000)) } ?? ""
                throw ValidationError("the broker ended before listening:\n\(tail)")
            }
            text += String(decoding: chunk, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
        }
    }

    /// The resident set (VmRSS) now, in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// Stops it as an operator would (SIGTERM: the batch in hand is stored first).
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Kills it as a crash would (SIGKILL): nothing is flushed or closed.
    func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit { stop() }
}

extension Int {
    var mebibytes: Double { Double(self) / 1_048_576 }
}
