import CareRelayFuzzing
import CareRelayHarness
import CareRelayModel
import CareRelayStore
import Foundation

/// SIGKILLs the broker at random moments under sustained load and restarts it on the same
/// store; at the end every acknowledged referral must have reached the application once, and
/// the audit chain must verify after every kill. With several nodes (a shared PostgreSQL
/// store), each kill takes a node chosen at random while the others keep serving; the
/// applications list every node and fail over. Given the PostgreSQL server's folder, every
/// `databaseRestartEvery`-th round stops the database at once instead (as a power cut would),
/// under load, and starts it again two seconds later, while every broker keeps running.
struct CrashSoak {
    let system: SoakSystem
    let kills: Int
    var nodes = 1
    /// The folder `Scripts/postgres start` made, to crash and resume the server; nil: no restarts.
    var postgresDirectory: String?
    var databaseRestartEvery = 3
    var rng: SplitMix64
    let log: (String) -> Void

    struct Figures {
        var kills = 0
        var databaseRestarts = 0
        var nodes = 1
        var auditVerifications = 0
        var auditFailures: [String] = []
        var tally = Ledger.Tally()
        var lateAcknowledgements = 0
        var acceptedButNotStored = 0
        var storedMessages = 0
        var unexpectedRefusals: [String: Int] = [:]
        var receiverRestarts = 0
        var seconds = 0.0
    }

    mutating func run() throws -> Figures {
        let start = Date()
        let ports = try (0..<nodes).map { _ in try freePort() }
        var brokers = try ports.map { try system.startBroker(port: $0) }
        /// Every node, starting with `first`: where an application connects and fails over to.
        func endpoints(from first: Int) -> String {
            (0..<nodes).map { SoakSystem.endpoint(ports[(first + $0) % nodes]) }.joined(separator: ",")
        }
        let ledger = Ledger()
        let stop = StopFlag(), receiving = StopFlag()
        let senders = DispatchGroup(), receivers = DispatchGroup()
        // The recipient on the last node, the senders spread over all: most messages cross nodes.
        let receiver = ReceivingApplication(system: system, person: "sw.1", endpoint: endpoints(from: nodes - 1), ledger: ledger)
        spawn(receivers, "receiver") { receiver.run(stop: receiving) }
        for (index, sender) in (["gp.1", "gp.2", "gp.3"] as [PersonID]).enumerated() {
            let application = Handoff(
                SendingApplication(system: system, person: sender, recipient: "sw.1", endpoint: endpoints(from: index % nodes), ledger: ledger))
            spawn(senders, "sender \(sender)") { application.value.run(keyPrefix: sender.rawValue, stop: stop) }
        }
        var figures = Figures()
        figures.nodes = nodes
        for round in 1...kills {
            // Under load: wait for at least one new acknowledgement since the last restart,
            // then let a random part of a second more pass, so kills land anywhere in a batch.
            let before = ledger.acceptedCount
            guard ledger.wait(idleTimeout: 30, until: { ledger.accepted.count > before }) else {
                throw SoakFailure("no message was accepted within 30 s after restart \(round - 1)")
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0.05..<0.8, using: &rng))  // the random moment, not synchronisation
            if let postgresDirectory, round % databaseRestartEvery == 0 {
                try Self.postgres("crash", postgresDirectory)
                // Down for two seconds, as a restart under load is; the brokers must ride it out.
                Thread.sleep(forTimeInterval: 2)
                try Self.postgres("resume", postgresDirectory)
                figures.databaseRestarts += 1
                verifyAudit(&figures, after: "database restart \(figures.databaseRestarts)")
                log("round \(round)/\(kills): database restarted under load: \(ledger.acceptedCount) accepted so far, audit intact")
                continue
            }
            let victim = Int.random(in: 0..<nodes, using: &rng)
            brokers[victim].kill()
            figures.kills += 1
            verifyAudit(&figures, after: "kill \(figures.kills)")
            // Half the time the receiving application restarts too, losing its memory.
            if Bool.random(using: &rng) { receiver.restart() }
            brokers[victim] = try system.startBroker(port: ports[victim])
            log(
                "round \(round)/\(kills): kill\(nodes > 1 ? " (node \(victim + 1) of \(nodes))" : ""): \(ledger.acceptedCount) accepted so far, audit intact"
            )
        }
        stop.set()
        senders.wait()
        let allArrived = ledger.awaitAllDelivered(idleTimeout: 30)
        receiving.set()
        receivers.wait()
        brokers.forEach { _ = $0.terminate() }
        verifyAudit(&figures, after: "the final stop")
        if !allArrived { log("not every accepted message arrived within 30 s of the last delivery") }

        // Nothing reported accepted is missing from the store, and nothing is stored twice.
        let store = try system.openStore()
        defer { store.close() }
        let accepted = ledger.lock { ledger.accepted }
        figures.acceptedButNotStored = accepted.values.filter { ((try? store.message(id: $0)) ?? nil) == nil }.count
        figures.storedMessages = try store.history(for: "sw.1", kind: .referral, limit: Int.max / 2).count
        figures.tally = ledger.tally()
        let lateKeys = ledger.lock { ledger.lateKeys }
        if !lateKeys.isEmpty { log("resends answered with their first answer: \(lateKeys.joined(separator: ", "))") }
        // Say what became of any lost message, so a failure can be investigated.
        let handed = ledger.lock { ledger.handed }
        for (key, id) in accepted where handed[id] == nil {
            let states = ((try? store.tracking(id: id)) ?? nil)?.recipients.map { "\($0.person): \($0.state)" } ?? ["not stored"]
            log("lost: key \(key), message \(id): \(states.joined(separator: ", "))")
        }
        figures.lateAcknowledgements = ledger.lock { ledger.lateAcknowledgements }
        figures.unexpectedRefusals = ledger.lock { ledger.refusals }.filter { $0.key != "store-unavailable" && $0.key != "shutting-down" }
        figures.receiverRestarts = receiver.restarts
        figures.seconds = Date().timeIntervalSince(start)
        return figures
    }

    /// `Scripts/postgres crash|resume DIR`, from the repository root Scripts/soak runs in.
    private static func postgres(_ action: String, _ directory: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "Scripts/postgres")
        process.arguments = [action, directory]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SoakFailure("Scripts/postgres \(action) exited with \(process.terminationStatus)") }
    }

    private func verifyAudit(_ figures: inout Figures, after moment: String) {
        do {
            let store = try system.openStore()
            defer { store.close() }
            switch try store.verifyAudit() {
            case .intact: figures.auditVerifications += 1
            case .broken(let row, let reason): figures.auditFailures.append("after \(moment): row \(row): \(reason)")
            }
        } catch {
            figures.auditFailures.append("after \(moment): \(error)")
        }
    }
}

struct SoakFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Hands a value to another thread; the thread start orders the accesses.
///
/// `@unchecked Sendable` although `Value` is not: the thread that makes the handoff gives the
/// value up (never touches it again) before it starts the one thread that takes it.
final class Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
