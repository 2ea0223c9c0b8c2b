import ArgumentParser
import CareRelayProtocol
import Foundation
import ZeroMQ

/// A server run as a child process, so that its memory is read alone from /proc (nothing of
/// the benchmark's own clients or fill counts) and a restart is a real one: a new process
/// reading the store from disk. Either the broker (`carerelay-broker serve`) or, as the
/// baseline, a raw libzmq CURVE ROUTER (this benchmark run with `--raw-router`).
final class ServerProcess {
    let process: Process
    let launchedAt: ContinuousClock.Instant
    /// From launch to the "listening on" line, which the server writes once bound.
    let secondsToListening: Double
    let endpoint: String

    /// The broker executable is built beside this benchmark (`Scripts/bench` builds both).
    static var brokerExecutable: URL { benchExecutable.deletingLastPathComponent().appendingPathComponent("carerelay-broker") }
    static var benchExecutable: URL { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath() }

    /// The broker on the system's directory, store and key.
    static func broker(_ system: CareSystemFiles, heartbeatMilliseconds: Int = 5_000) throws -> ServerProcess {
        guard FileManager.default.isExecutableFile(atPath: brokerExecutable.path) else {
            throw ValidationError("\(brokerExecutable.path) is missing: build it with `swift build -c release --product carerelay-broker`")
        }
        return try ServerProcess(
            brokerExecutable,
            [
                "serve", "--directory", system.directoryPath, "--store", system.storePath, "--key-file", system.keyFilePath,
                "--endpoint", "tcp://127.0.0.1:*", "--heartbeat", String(heartbeatMilliseconds), "--log-level", "warning",
                // The operations endpoint is on by default, so it is measured too; on a free port,
                // so that a broker someone else runs on this machine does not stop this one.
                "--operations", "127.0.0.1:0",
            ], log: system.logPath)
    }

    /// A ROUTER with the broker's key that lets every key in and answers anything with WELCOME.
    static func rawRouter(_ system: CareSystemFiles) throws -> ServerProcess {
        try ServerProcess(benchExecutable, ["--raw-router", system.keyFilePath], log: system.logPath)
    }

    private init(_ executable: URL, _ arguments: [String], log: String) throws {
        process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: log)
        launchedAt = .now
        try process.run()
        // The broker may say other things first (its operations endpoint); up to the line that
        // says it is listening, or the end of its output.
        var line = ""
        repeat {
            line = String(decoding: output.fileHandleForReading.readDataToEndOfFileOrLine(), as: UTF8.self)
        } while !line.isEmpty && !line.contains("listening on")
        secondsToListening = seconds(since: launchedAt)
        guard line.contains("listening on"), let address = line.split(whereSeparator: \.isWhitespace).first(where: { $0.hasPrefix("tcp://") }) else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(2_000)) } ?? ""
            throw ValidationError("\(executable.lastPathComponent) did not start listening:\n\(line)\(tail)")
        }
        endpoint = String(address)
    }

    /// The resident set (VmRSS) now, in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }

    /// Stops it as an operator would (SIGTERM: the broker stores the batch in hand first).
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

/// The baseline server for connected clients: libzmq alone, as the broker configures it (a
/// CURVE ROUTER with ZAP), with none of CareRelay's sessions, directory or store. Every
/// message is answered with a WELCOME, so clients connect to it exactly as to the broker.
enum RawRouter {
    static func serve(keyFile: String) throws {
        let loaded = try CurveKeyPair.load(path: keyFile)
        guard let secretKey = loaded.secretKey else { throw ValidationError("\(keyFile) holds no secret key") }
        let context = try ZMQContext()
        let zap = ZAPHandler(context: context) { request in .allow(userID: request.clientPublicKey ?? "") }
        try zap.start()
        let router = try context.makeSocket(.router)
        try router.setCurveServer(true)
        try router.setCurveSecretKey(secretKey)
        try router.setZAPDomain("carerelay")
        try router.bind("tcp://127.0.0.1:*")
        let welcome = CRPCodec().encode(
            .welcome(
                Welcome(
                    version: Int(CRP.version), person: "raw", name: "raw", roles: [], teams: [], heartbeat: 600_000,
                    maxBody: 1 << 20, broker: "raw libzmq ROUTER", req: nil)))
        FileHandle.standardOutput.write(Data("raw ROUTER listening on \(try router.lastEndpoint)\n".utf8))
        while let message = try router.receive(), let routingID = message.frames.first {
            _ = try router.send([routingID] + welcome)
        }
        withExtendedLifetime(zap) {}
    }
}
