import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

/// The broker as a separate process, so it can be killed with SIGKILL.
final class BrokerProcess {
    let process = Process()
    let endpoint: String
    private let output = Pipe()

    /// The built `carerelay-broker`, next to the test bundle.
    static var executable: URL {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("carerelay-broker")
        if FileManager.default.isExecutableFile(atPath: besideTests.path) { return besideTests }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/carerelay-broker")
    }

    init(system: CareSystem, port: Int) throws {
        let directoryPath = system.folder.appendingPathComponent("directory.yaml").path
        if !FileManager.default.fileExists(atPath: directoryPath) {
            try DirectoryFile.encode(system.directory.directory).write(toFile: directoryPath, atomically: true, encoding: .utf8)
        }
        let keyPath = system.folder.appendingPathComponent("broker.key").path
        if !FileManager.default.fileExists(atPath: keyPath) {
            try system.brokerKeys.save(path: keyPath, comment: "test broker")
        }
        endpoint = "tcp://127.0.0.1:\(port)"
        process.executableURL = Self.executable
        process.arguments = ["--directory", directoryPath, "--store", system.storePath, "--key-file", keyPath,
                             "--endpoint", endpoint, "--log-level", "warning", "--operations", "127.0.0.1:0"]
        process.standardOutput = output
        try process.run()
        // Serving once it says so: wait for the line, not for a guessed time.
        var seen = ""
        let handle = output.fileHandleForReading
        while !seen.contains("listening on") {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { throw CocoaError(.fileReadUnknown) }
            seen += String(decoding: chunk, as: UTF8.self)
        }
    }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits for the exit; returns the exit status.
    @discardableResult
    func terminate() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Runs `carerelay-broker` with other arguments (backup, restore, rotate-key) to the end.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let tool = Process()
        tool.executableURL = executable
        tool.arguments = arguments
        let output = Pipe()
        tool.standardOutput = output
        tool.standardError = output
        try tool.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tool.waitUntilExit()
        return (tool.terminationStatus, text)
    }
}

/// A free TCP port on loopback, found by binding port 0.
func freePort() throws -> Int {
    let context = try ZMQContext()
    let socket = try context.makeSocket(.router)
    try socket.bind("tcp://127.0.0.1:*")
    let endpoint = try socket.lastEndpoint
    socket.close()
    return Int(endpoint.split(separator: ":").last ?? "") ?? 0
}

@Suite struct CrashRecoveryTests {
    /// Accepted means stored: after SIGKILL and a restart, every acknowledged message reaches
    /// the recipient's application exactly once, including those in flight at the kill.
    @Test func everyAcceptedMessageArrivesOnceAfterSIGKILL() throws {
        let system = try CareSystem()
        let port = try freePort()
        var broker = try BrokerProcess(system: system, port: port)
        let endpoint = broker.endpoint
        let gp = try system.client("gp.khan", receive: false, endpoint: endpoint)
        let lee = try system.client("sw.lee", receive: true, credit: 8, endpoint: endpoint)

        let count = 40
        var accepted: [String] = []
        for index in 0..<count {
            let reply = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "crash-\(index)",
                                    body: try Bodies.referral(reason: "Referral number \(index) before the crash"))
            accepted.append(reply.id)
        }
        // The recipient handles a few and confirms them; more are in flight, unconfirmed.
        var handled: [String] = []
        for _ in 0..<5 { handled.append(try lee.expectDelivery().header.id) }
        let inFlight = try #require(try lee.nextDelivery(timeout: .seconds(5)))
        handled.append(inFlight.header.id)  // handed to the application, never confirmed

        broker.kill()
        broker = try BrokerProcess(system: system, port: port)
        defer { broker.terminate() }

        while handled.count < count, let delivery = try lee.nextDelivery(timeout: .seconds(20)) {
            handled.append(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        #expect(handled.count == count)
        #expect(Set(handled) == Set(accepted), "every accepted message arrived")
        #expect(Set(handled).count == handled.count, "none arrived twice")

        // A resend of an acknowledged message after the restart is still recognised.
        let again = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "crash-0",
                                body: try Bodies.referral(reason: "Referral number 0 before the crash"))
        #expect(again.duplicate && again.id == accepted[0])
        let verify = try system.client("coord.patel", receive: false, endpoint: endpoint).query("audit.verify")
        #expect(try jsonObject(verify)["intact"] as? Bool == true)
    }
}
