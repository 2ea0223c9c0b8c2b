import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// A PostgreSQL server of this test's own (Scripts/postgres), so it can be stopped at once and
/// started again without disturbing the suites that share Scripts/test's server.
final class OwnPostgres {
    let folder: URL
    let url: String
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Scripts/postgres").path

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-pg-\(UUID().uuidString)")
        try Self.run("start", folder.path)
        url = try String(contentsOf: folder.appendingPathComponent("url"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `pg_ctl stop -m immediate`: as a power cut, nothing flushed or said goodbye.
    func crash() throws { try Self.run("crash", folder.path) }
    /// Started again on the same data and port; it recovers before it answers.
    func resume() throws { try Self.run("resume", folder.path) }

    deinit { try? Self.run("stop", folder.path) }

    /// Runs the script to its end. Its output is not read through a pipe: the server it starts
    /// keeps whatever descriptors it inherits open, so a pipe would never reach its end.
    static func run(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [script] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ScriptFailed(arguments: arguments, status: process.terminationStatus) }
    }

    struct ScriptFailed: Error { var arguments: [String]; var status: Int32 }
}

/// Referrals sent without pause from a thread of their own, each resent with its key until
/// acknowledged, counting what was acknowledged and what was refused.
final class SteadyLoad: @unchecked Sendable {
    private let lock = NSCondition()
    private(set) var acknowledged: Set<String> = []
    private var refused = 0
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    init(_ client: CareRelayClient, body: [UInt8]) {
        nonisolated(unsafe) let client = client
        Thread.detachNewThread { [self] in
            var sent = 0
            while !isStopping {
                sent += 1
                while !isStopping {
                    do {
                        let accepted = try client.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "load-\(sent)", body: body)
                        noteAccepted(accepted.id)
                        break
                    } catch {
                        noteRefused()
                    }
                }
            }
            done.signal()
        }
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }
    private func noteAccepted(_ id: String) { lock.lock(); acknowledged.insert(id); lock.broadcast(); lock.unlock() }
    private func noteRefused() { lock.lock(); refused += 1; lock.broadcast(); lock.unlock() }

    /// Waits until `count` more sends were acknowledged (or refused), at most `limit`.
    func await(_ count: Int, more kind: KeyPath<SteadyLoad, Int>, within limit: TimeInterval) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let target = self[keyPath: kind] + count
        let deadline = Date().addingTimeInterval(limit)
        while self[keyPath: kind] < target { if !lock.wait(until: deadline) { return false } }
        return true
    }
    var acknowledgedCount: Int { acknowledged.count }
    var refusedCount: Int { refused }

    func stop() -> Set<String> {
        lock.lock(); stopping = true; lock.unlock()
        done.wait()
        lock.lock(); defer { lock.unlock() }
        return acknowledged
    }
}

/// Two brokers on one PostgreSQL database, which is stopped at once under load (as a power cut
/// would) and started again, three times. Every broker keeps answering HELLO and stops on
/// SIGTERM, and every referral acknowledged reaches the receiver who stayed connected to one
/// node throughout, each once, without a new HELLO.
@Suite(.enabled(if: CareSystem.postgres != nil, "needs PostgreSQL installed: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct DatabaseRestartTests {
    @Test func brokersRideOutTheirDatabaseRestartingUnderLoad() throws {
        let server = try OwnPostgres()
        let system = try CareSystem()
        var location = try PostgresLocation(url: server.url).creatingDatabase("restart_" + UUID().uuidString.prefix(8).lowercased())
        location.timeout = .seconds(1)
        system.store = PostgresStoreProvider(location)
        let ports = [try freePort(), try freePort()]
        // Each node's log is kept, to be quoted if anything goes missing.
        let logs = ports.indices.map { system.folder.appendingPathComponent("node\($0).log").path }
        let nodes = try ports.indices.map { try BrokerProcess(system: system, port: ports[$0], logLevel: "info", logFile: logs[$0]) }
        defer { nodes.forEach { _ = $0.terminate() } }

        // The GP may use either node; the social worker stays on node 1 for the whole test.
        let gp = try system.client(
            "gp.khan", receive: false,
            endpoint: ports.map { "tcp://127.0.0.1:\($0)" }.joined(separator: ","), replyTimeout: .seconds(4))
        let lee = try system.client("sw.lee", credit: 16, endpoint: "tcp://127.0.0.1:\(ports[1])")
        var received: Set<String> = []
        let load = SteadyLoad(gp, body: try Bodies.referral())

        for round in 1...3 {
            #expect(load.await(5, more: \.acknowledgedCount, within: 30), "round \(round): accepting before the restart")
            try server.crash()
            // Down under load until the senders have been refused a few times.
            #expect(load.await(3, more: \.refusedCount, within: 30), "round \(round): refused while the database is down")
            try server.resume()
            #expect(load.await(5, more: \.acknowledgedCount, within: 30), "round \(round): accepted again once it is back")
        }
        let acknowledged = load.stop()
        let deadline = ContinuousClock.now + .seconds(60)
        while !acknowledged.isSubset(of: received), ContinuousClock.now < deadline {
            guard let delivery = try lee.nextDelivery(timeout: .milliseconds(500)) else { continue }
            received.insert(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        let missing = acknowledged.subtracting(received)
        #expect(
            missing.isEmpty,
            """
            \(missing.count) of \(acknowledged.count) acknowledged referrals never arrived (\(missing.sorted().prefix(5)))
            \(missing.isEmpty ? "" : logs.map(Self.tail).joined(separator: "\n"))
            """)
        #expect(received.isSubset(of: acknowledged))

        // Every node answers a new HELLO, and stops when asked.
        for (port, log) in zip(ports, logs) {
            do {
                let fresh = try system.client("sw.okafor", receive: false, endpoint: "tcp://127.0.0.1:\(port)")
                try fresh.ping()
            } catch {
                Issue.record("the node on \(port) answered no HELLO: \(error)\n\(Self.tail(log))")
            }
        }
        for node in nodes {
            let stopping = ContinuousClock.now
            #expect(node.terminate() == 0)
            #expect(ContinuousClock.now - stopping < .seconds(15), "SIGTERM stops a node within its store's time-outs")
        }
    }

    /// The last lines a node logged, for a failure's message.
    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no log at \(path))"
        return "--- \(path)\n" + text.split(separator: "\n").suffix(40).joined(separator: "\n")
    }
}
