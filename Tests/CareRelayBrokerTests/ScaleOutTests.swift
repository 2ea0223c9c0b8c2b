import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// Several broker processes on one PostgreSQL database: a client on any node reaches anyone
/// on any other, consent and care teams are shared, and a node killed under load loses
/// nothing. Runs when Scripts/test has started a PostgreSQL server (CARERELAY_TEST_POSTGRES).
@Suite(.enabled(if: CareSystem.postgres != nil, "needs a PostgreSQL server: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct ScaleOutTests {
    @Test func threeNodesCarryTheFourConversationsAndLoseNothingWhenOneIsKilled() throws {
        let system = try CareSystem()
        let ports = [try freePort(), try freePort(), try freePort()]
        var nodes: [BrokerProcess?] = try ports.map { try BrokerProcess(system: system, port: $0) }
        defer { nodes.forEach { _ = $0?.terminate() } }
        /// Node `first` first, then the others: where a client connects and where it fails over to.
        func endpoints(from first: Int) -> String {
            (0..<3).map { "tcp://127.0.0.1:\(ports[(first + $0) % 3])" }.joined(separator: ",")
        }
        func client(_ person: PersonID, on node: Int, receive: Bool = true, credit: Int = 64) throws -> CareRelayClient {
            try system.client(person, receive: receive, credit: credit, endpoint: endpoints(from: node), replyTimeout: .seconds(2))
        }

        // Mrs Ellis's care team (her CPN among them) is recorded through node 0.
        let admin = try client("nurse.ali", on: 0, receive: false)
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis", "person:cpn.brown"] {
            _ = try admin.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
        let gp = try client("gp.khan", on: 0)
        let chair = try client("mdt.jones", on: 0, receive: false)
        let lee = try client("sw.lee", on: 1, credit: 8)
        let carer = try client("carer.ellis", on: 1)
        let nurse = try client("nurse.ali", on: 2)
        let cpn = try client("cpn.brown", on: 2, receive: false)
        #expect(gp.connectedEndpoint == "tcp://127.0.0.1:\(ports[0])")
        #expect(lee.connectedEndpoint == "tcp://127.0.0.1:\(ports[1])")
        #expect(nurse.connectedEndpoint == "tcp://127.0.0.1:\(ports[2])")

        // A referral from node 0 to someone on node 1; taking it, on node 1, reaches the referrer.
        let referral = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        #expect(try lee.expectDelivery().header.id == referral.id)
        try lee.send(.referralEvent, to: [], correlation: referral.id, body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))
        let taken = try gp.expectDelivery()
        #expect(taken.header.kind == .referralEvent && taken.header.correlation == referral.id)
        // A second acceptance through another node is refused, naming who took it.
        let okafor = try client("sw.okafor", on: 2, receive: false)
        #expect(throws: ClientError.self) {
            try okafor.send(
                .referralEvent, to: [], correlation: referral.id, body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))
        }

        // Consent recorded on node 2 governs a plan sent through node 2 and one sent through
        // node 0 at once after: the nurse may see the mental health section only by consent.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-ellis-1", actor: ["role": "person", "reference": "nurse.ali"], categories: ["mental-health"]))
        let fromNodeZero = try client("cpn.brown", on: 0, receive: false)
        for sender in [cpn, fromNodeZero] {
            let plan = try sender.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.carePlan())
            let outcome = Dictionary(uniqueKeysWithValues: plan.recipients.map { ($0.person, $0.decision) })
            #expect(outcome["nurse.ali"] == .deliver)
            #expect(outcome["carer.ellis"] == .withheld)
            let copy = try nurse.expectDelivery()
            #expect(copy.header.id == plan.id && copy.header.redacted == nil)
            #expect(try lee.expectDelivery().header.redacted == ["mood"])  // the team's copy, from node 1
        }

        // An agenda from node 0 reaches the MDT member on node 2; a check-in from the carer on
        // node 1 reaches her nurse on node 2.
        let agenda = try chair.send(.mdtAgenda, to: [.mdt("west.mdt")], body: try Bodies.agenda(items: [ellis]))
        #expect(try nurse.expectDelivery().header.id == agenda.id)
        let checkIn = try carer.send(.carerCheckIn, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.checkIn())
        #expect(try nurse.expectDelivery().header.id == checkIn.id)
        #expect(try lee.expectDelivery().header.id == checkIn.id)

        // Under load from node 0 to Mr Lee on node 1, node 1 is killed; he moves to node 2.
        let load = SendingLoad(system: system, to: .person("sw.lee"), endpoint: endpoints(from: 0))
        load.start()
        var received: Set<String> = []
        func receive(until target: Int) throws {
            while received.count < target, let delivery = try lee.nextDelivery(timeout: .seconds(20)) {
                #expect(!received.contains(delivery.header.id), "handed to the application twice")
                received.insert(delivery.header.id)
                try lee.confirm([delivery.header.id])
            }
        }
        try receive(until: 50)
        nodes[1]?.kill()
        nodes[1] = nil
        load.waitForAcknowledged(load.acknowledged.count + 200)
        load.stop()
        #expect(load.failure == nil)
        try receive(until: load.acknowledged.count)
        #expect(received == Set(load.acknowledged), "every acknowledged referral reaches the application once")
        #expect(lee.connectedEndpoint != "tcp://127.0.0.1:\(ports[1])")

        // Three writers, one audit chain.
        let verification = try client("coord.patel", on: 2, receive: false).query(AuditVerifyQuery())
        guard case .intact(let rows) = verification else { Issue.record("the shared audit chain is broken: \(verification)"); return }
        #expect(rows > load.acknowledged.count)
    }

    /// The database drops every connection (a restart, a failover): the brokers refuse what
    /// they cannot store, reconnect, catch up on what they may have missed, and carry on.
    @Test func brokersRecoverWhenTheDatabaseDropsTheirConnections() throws {
        let system = try CareSystem()
        let ports = [try freePort(), try freePort()]
        let nodes = try ports.map { try BrokerProcess(system: system, port: $0) }
        defer { nodes.forEach { _ = $0.terminate() } }
        let gp = try system.client("gp.khan", receive: false, endpoint: "tcp://127.0.0.1:\(ports[0])", replyTimeout: .seconds(5))
        let lee = try system.client("sw.lee", endpoint: "tcp://127.0.0.1:\(ports[1])")
        let before = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "before"))
        #expect(try lee.expectDelivery().header.id == before.id)

        try system.tamper("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        // The first send after the drop may be refused as store-unavailable (nothing stored);
        // the same key again is accepted once the broker has reconnected.
        let key = "after-the-drop"
        var accepted: Accepted?
        for _ in 0..<3 where accepted == nil {
            do {
                accepted = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: key, body: try Bodies.referral(reason: "after"))
            } catch ClientError.rejected(let refusal) {
                #expect(refusal.code == .storeUnavailable)
            }
        }
        let after = try #require(accepted)
        #expect(try lee.expectDelivery(within: 15).header.id == after.id)
        #expect(try lee.nextDelivery(timeout: .seconds(1)) == nil, "nothing delivered twice")
    }
}
