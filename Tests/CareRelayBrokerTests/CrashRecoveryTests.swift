import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

extension BrokerProcess {
    /// The care system's broker as a process on `port`, writing its directory and key files
    /// into the system's folder the first time.
    convenience init(
        system: CareSystem, port: Int, endpoint: String? = nil, extraArguments: [String] = [], logLevel: String = "warning",
        logFile: String? = nil
    ) throws {
        let directoryPath = system.folder.appendingPathComponent("directory.yaml").path
        if !FileManager.default.fileExists(atPath: directoryPath) {
            try DirectoryFile.encode(system.directory.directory).write(toFile: directoryPath, atomically: true, encoding: .utf8)
        }
        let keyPath = system.folder.appendingPathComponent("broker.key").path
        if !FileManager.default.fileExists(atPath: keyPath) {
            try system.brokerKeys.save(path: keyPath, comment: "test broker")
        }
        // A system on PostgreSQL gives every node its database's URL (the test server has no password).
        let store = (system.store as? PostgresStoreProvider)?.location.description ?? system.storePath
        try self.init(
            executable: BrokerProcess.executable, directory: directoryPath, store: store,
            keyFile: keyPath, endpoint: endpoint ?? "tcp://127.0.0.1:\(port)",
            extraArguments: ["--operations", "127.0.0.1:0"] + extraArguments, logLevel: logLevel, logFile: logFile)
    }

    /// The built `carerelay-broker` beside the test bundle, else in this package's .build/debug.
    static var executable: URL {
        BrokerProcess.executable(
            packageRoot: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent())
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
            let reply = try gp.send(
                .referral, to: [.person("sw.lee")], patient: ellis, key: "crash-\(index)",
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
        let again = try gp.send(
            .referral, to: [.person("sw.lee")], patient: ellis, key: "crash-0",
            body: try Bodies.referral(reason: "Referral number 0 before the crash"))
        #expect(again.duplicate && again.id == accepted[0])
        let verify = try system.client("coord.patel", receive: false, endpoint: endpoint).query("audit.verify")
        #expect(try jsonObject(verify)["intact"] as? Bool == true)
    }
}
