import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayOperations
import CareRelayProtocol
import CareRelayStore
import Foundation
import Prometheus
import Testing
import ZeroMQ

/// What operators rely on: metrics that say what happened, health that says whether to send
/// traffic, backups that restore, keys that can be changed without losing anything queued.
@Suite struct OperationsTests {
    /// The value of one sample line in a Prometheus exposition, e.g.
    /// `carerelay_messages_accepted_total{kind="referral"}`.
    func sample(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    @Test func metricsCountAcceptedDeliveredRedactedWithheldAndRejected() throws {
        let system = try CareSystem()
        let registry = PrometheusCollectorRegistry()
        system.metricsRegistry = registry
        let server = try system.start()
        let endpoint = try OperationsEndpoint(registry: registry, vitals: server.vitals, store: server.store)

        let nurse = try system.client("nurse.ali")
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-ellis-1", actor: ["role": "person", "reference": "nurse.ali"], categories: ["mental-health"]))
        let gp = try system.client("gp.khan", receive: false)
        try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, priority: .sameDay, body: try Bodies.referral())
        // Whole for the nurse, redacted for the social workers, withheld from the carer.
        let cpn = try system.client("cpn.brown", receive: false)
        try cpn.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.carePlan())
        _ = try nurse.expectDelivery()
        let social = try system.client("sw.okafor")
        var redactedSeen = 0
        for _ in 0..<2 {  // the referral and the redacted plan, in either order
            if try social.expectDelivery().header.redacted != nil { redactedSeen += 1 }
        }
        #expect(redactedSeen == 1)
        // Two refusals with their codes: a bad NHS number, a subscription beyond rights.
        #expect(throws: ClientError.self) {
            try gp.send(
                .referral, to: [.team("west.social-care")], patient: try NHSNumber(validating: "9434765919"),
                body: try Bodies.json(["subject": "9434765918"]))
        }
        #expect(throws: ClientError.self) { try social.subscribe("referral/*/#") }

        let text = try endpoint.metricsText()
        #expect(sample(text, #"carerelay_messages_accepted_total{kind="referral"}"#) == 1)
        #expect(sample(text, #"carerelay_messages_accepted_total{kind="careplan.share"}"#) == 1)
        #expect(sample(text, #"carerelay_messages_accepted_total{kind="consent"}"#) == 1)
        #expect(sample(text, #"carerelay_deliveries_total{outcome="redacted"}"#) == 1)
        #expect((sample(text, #"carerelay_deliveries_total{outcome="whole"}"#) ?? 0) >= 2)
        #expect(sample(text, #"carerelay_withheld_total{stage="routing"}"#) == 1)
        #expect(sample(text, #"carerelay_commands_rejected_total{code="411",reason="subscription-denied"}"#) == 1)
        let refusals = text.split(separator: "\n").filter { $0.hasPrefix("carerelay_commands_rejected_total{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
        #expect(refusals.reduce(0, +) == 2, "the malformed referral and the subscription, each by its code:\n\(text)")
        #expect(sample(text, "carerelay_connected_clients") == 4)
        // From the store: the referral waits at the intake until someone accepts it.
        #expect(sample(text, #"carerelay_intake_waiting_referrals{team="west.social-care"}"#) == 1)
        let statistics = try endpoint.status().store
        #expect(sample(text, "carerelay_undelivered_messages") == Double(statistics.undelivered))
        #expect(statistics.undelivered > 0)  // the carer bridge's and others' copies wait
        #expect(sample(text, "carerelay_referrals_overdue") == 0)
        #expect(sample(text, "carerelay_ready") == 1)
        #expect(text.contains(#"carerelay_store_seconds_count{operation="accept"}"#))
        // Each of the three accepted messages was handled in a turn of its own (every client
        // waits for its answer before sending again), and each of those turns had ended
        // before the loop could read the next command.
        #expect((sample(text, "carerelay_loop_turn_seconds_count") ?? 0) >= 3, "\(text)")
        // Past the same-day target (8 hours) the referral counts as overdue.
        let later = try endpoint.metricsText(now: Date().addingTimeInterval(9 * 3_600))
        #expect(sample(later, "carerelay_referrals_overdue") == 1)
        // Nothing that identifies a patient appears in the metrics.
        #expect(!text.contains(ellis.digits))
    }

    @Test func healthSaysLiveAndReadyUntilTheBrokerStops() throws {
        let system = try CareSystem()
        let server = try system.start()
        let endpoint = try OperationsEndpoint(registry: PrometheusCollectorRegistry(), vitals: server.vitals, store: server.store)
        let gp = try system.client("gp.khan", receive: false)
        _ = try gp.query("status")  // one full turn of the loop
        #expect(endpoint.liveness() == .ready)
        #expect(endpoint.readiness() == .ready)
        // A loop that has not turned for longer than the limit is reported stalled.
        #expect(endpoint.liveness(now: Date().addingTimeInterval(60)) != .ready)
        system.stop()
        #expect(endpoint.readiness() == .notReady("the broker is shutting down"))
    }

    @Test func statusReportsVersionClientsQueuesAndOverdueReferrals() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, priority: .sameDay, body: try Bodies.referral())
        let status = try gp.query(StatusQuery())
        #expect(status.broker == CareRelayBroker.version)
        #expect(status.connectedClients == 1)
        #expect(status.storeHealthy)
        #expect(status.store.messages == 2, "the referral and the consent its patient's agreement records")
        #expect(status.store.undelivered == 3)
        #expect(status.store.intakeWaiting == ["west.social-care": 1])
        #expect(status.store.overdueReferrals == 0)
        #expect(status.store.oldestUndeliveredAcceptedAt != nil)
        system.clock.advance(by: 9 * 3_600)
        #expect(try gp.query(StatusQuery()).store.overdueReferrals == 1)
    }

    @Test func aBackupTakenUnderLoadRestoresEverythingAcceptedBeforeIt() throws {
        let system = try CareSystem()
        try system.start()
        let load = SendingLoad(system: system, to: .person("sw.lee"))
        load.start()
        load.waitForAcknowledged(200)
        let acceptedBeforeBackup = load.acknowledged
        let backup = system.folder.appendingPathComponent("backup.sqlite").path
        try StoreInspector(path: system.storePath).backup(to: backup)
        load.waitForAcknowledged(acceptedBeforeBackup.count + 100)  // still serving while and after
        load.stop()
        // A restore is refused while the broker has the store.
        #expect(throws: StoreError.self) { try StoreRestore.restore(backup: backup, to: system.storePath) }
        system.stop()

        let report = try StoreRestore.restore(backup: backup, to: system.storePath)
        #expect(report.statistics.messages >= Int64(acceptedBeforeBackup.count))
        try system.start()
        let lee = try system.client("sw.lee", credit: 500)
        var received: [String] = []
        while let delivery = try lee.nextDelivery(timeout: .seconds(2)) {
            received.append(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        #expect(Set(acceptedBeforeBackup).isSubset(of: Set(received)), "a message accepted before the backup is missing after the restore")
        #expect(received.count == Set(received).count, "a message was delivered twice")
        let coordinator = try system.client("coord.patel", receive: false)
        #expect(try coordinator.query(AuditVerifyQuery()).isIntact)
    }

    @Test func rotatingAUsersKeyKeepsTheirQueueAndTheOldKeyStopsAtOnce() throws {
        let system = try CareSystem()
        let server = try system.start()
        let gp = try system.client("gp.khan", receive: false)
        var queued: Set<String> = []
        for n in 0..<3 {
            queued.insert(try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "queued \(n)")).id)
        }
        let oldLee = try system.client("sw.lee", receive: false)
        _ = try oldLee.query("status")

        let newKeys = try CurveKeyPair.generate()
        server.reload(directory: try system.directory(replacingKeyOf: "sw.lee", with: newKeys.publicKey))
        // The connection opened with the old key is refused from now on.
        #expect {
            _ = try oldLee.query("status")
        } throws: { error in
            guard case ClientError.rejected(let failure) = error else { return false }
            return failure.code == .notPermitted && failure.reason.contains("not in the directory")
        }
        let newLee = try system.client("sw.lee", keys: newKeys)
        var received: Set<String> = []
        for _ in 0..<3 { received.insert(try newLee.expectDelivery().header.id) }
        #expect(received == queued)
    }

    @Test func revokingAUserEndsTheirOpenSessionAtOnce() throws {
        let system = try CareSystem()
        let server = try system.start()
        let lee = try system.client("sw.lee")
        _ = try lee.query("status")
        server.reload(directory: try system.directory(replacingKeyOf: "sw.lee", with: nil))
        // Sent after the revocation: the revoked session must not receive it, even though
        // its connection is still open. The referral goes to the team, which no longer has him.
        let gp = try system.client("gp.khan", receive: false)
        let accepted = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(!accepted.recipients.map(\.person).contains("sw.lee"))
        #expect(try lee.nextDelivery(timeout: .milliseconds(500)) == nil)
        #expect(throws: ClientError.self) { _ = try lee.query("status") }
    }
}

/// A GP sending referrals as fast as the broker acknowledges them, on its own thread,
/// recording every id acknowledged.
final class SendingLoad: @unchecked Sendable {
    private let system: CareSystem
    private let address: Address
    private let endpoint: String?
    private let lock = NSLock()
    private var ids: [String] = []
    private var stopping = false
    private var waiting: (count: Int, signal: DispatchSemaphore)?
    private let finished = DispatchGroup()
    private(set) var failure: (any Error)?

    init(system: CareSystem, to address: Address, endpoint: String? = nil) {
        self.system = system
        self.address = address
        self.endpoint = endpoint
    }

    var acknowledged: [String] {
        lock.lock(); defer { lock.unlock() }
        return ids
    }

    func start() {
        finished.enter()
        let thread = Thread { [self] in
            defer { finished.leave() }
            do {
                let gp = try system.client("gp.khan", receive: false, endpoint: endpoint, replyTimeout: .seconds(2))
                let body = try Bodies.referral()
                while !isStopping {
                    let accepted = try gp.send(.referral, to: [address], patient: ellis, body: body)
                    record(accepted.id)
                }
            } catch {
                lock.lock(); failure = error; waiting?.signal.signal(); lock.unlock()
            }
        }
        thread.start()
    }

    private var isStopping: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopping
    }

    private func record(_ id: String) {
        lock.lock(); defer { lock.unlock() }
        ids.append(id)
        if let waiting, ids.count >= waiting.count { waiting.signal.signal(); self.waiting = nil }
    }

    /// Blocks until at least `count` sends are acknowledged (or the sender failed).
    func waitForAcknowledged(_ count: Int) {
        let signal = DispatchSemaphore(value: 0)
        lock.lock()
        if ids.count >= count || failure != nil { lock.unlock(); return }
        waiting = (count, signal)
        lock.unlock()
        signal.wait()
    }

    func stop() {
        lock.lock(); stopping = true; lock.unlock()
        finished.wait()
    }
}
