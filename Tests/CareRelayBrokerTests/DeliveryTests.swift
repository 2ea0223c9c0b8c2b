import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing
import ZeroMQ

@Suite struct DeliveryTests {
    @Test func aSubscriberSeesTheTeamIntakeWithItsOwnConsentDecision() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        for member in ["person:gp.khan", "team:west.social-care"] {
            _ = try gp.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
        // Both co-ordinators watch the whole locality's referrals.
        let coordinator = try system.client("coord.patel")
        try coordinator.subscribe("referral/west/*")
        let chair = try system.client("mdt.jones")
        try chair.subscribe("referral/west/#")
        let nurse = try system.client("nurse.ali")
        try nurse.subscribe("referral/west/west.nursing")

        // Addressed to the nursing team; the co-ordinator watches the whole locality.
        let sent = try gp.send(.referral, to: [.team("west.nursing")], patient: ellis, body: try Bodies.referral(team: "west.nursing"))
        let direct = try nurse.expectDelivery()
        #expect(direct.header.id == sent.id && direct.header.topic == nil)
        let watched = try coordinator.expectDelivery()
        #expect(watched.header.id == sent.id)
        #expect(watched.header.topic == "referral/west/west.nursing")
        // Each copy has its own consent decision: the care co-ordinator's team is in Mrs
        // Ellis's care team; the MDT chair has no relationship with her, so sees nothing.
        #expect(sent.recipients.first { $0.person == "coord.patel" }?.decision == .deliver)
        #expect(sent.recipients.first { $0.person == "mdt.jones" }?.decision == .withheld)
        #expect(try chair.nextDelivery(timeout: .milliseconds(300)) == nil)
        // The nurse is a direct recipient, so her subscription adds no second copy.
        #expect(try nurse.nextDelivery(timeout: .milliseconds(300)) == nil)
    }

    @Test func creditBoundsWhatIsInFlightToASlowReader() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        for index in 0..<10 {
            try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral(reason: "slow reader \(index)"))
        }
        // A reader with credit 3 that confirms nothing gets exactly three.
        let lee = try system.client("sw.lee", credit: 3)
        var received: [Delivery] = []
        while let delivery = try lee.nextDelivery(timeout: .milliseconds(800)) { received.append(delivery) }
        #expect(received.count == 3)
        // Each confirmation frees one place.
        try lee.confirm([received[0].header.id])
        let next = try #require(try lee.nextDelivery(timeout: .seconds(5)))
        #expect(!received.map(\.header.id).contains(next.header.id))
        #expect(try lee.nextDelivery(timeout: .milliseconds(500)) == nil)
    }

    @Test func aClientThatVanishesMidDeliveryGetsItsMessagesWhenItReturns() throws {
        let system = try CareSystem(heartbeat: 300)
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        let sent = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        var lee: CareRelayClient? = try system.client("sw.lee")
        let first = try #require(try lee?.nextDelivery(timeout: .seconds(5)))
        #expect(first.header.attempt == 1)
        // Gone without confirming (crash, flat battery): no BYE, just silence.
        lee = nil

        let again = try system.client("sw.lee")
        let second = try again.expectDelivery()
        #expect(second.header.id == sent.id)
        #expect(second.header.attempt >= 2)
    }

    @Test func aGatewayReceivesForTheCarersItActsForAndSendsOnTheirBehalf() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.client("nurse.ali", receive: false)
        for member in ["person:nurse.ali", "person:carer.ellis", "team:west.social-care"] {
            _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "cd-carer", actor: ["role": "relationship", "reference": "carer"], categories: ["general", "social-care", "medication"]))
        let bridge = try system.client("bridge")
        let plan = try nurse.send(.carePlanShare, to: [.person("carer.ellis")], patient: ellis, body: try Bodies.carePlan())
        let copy = try bridge.expectDelivery()
        #expect(copy.header.id == plan.id)
        #expect(copy.header.recipient == "carer.ellis")
        #expect(copy.header.redacted == ["mood"])

        let checkIn = try bridge.send(
            .carerCheckIn, to: [.person("coord.patel")], patient: ellis, onBehalfOf: "carer.ellis",
            body: try Bodies.checkIn())
        let coordinator = try system.client("coord.patel")
        let received = try coordinator.expectDelivery()
        #expect(received.header.id == checkIn.id)
        #expect(received.header.from == "carer.ellis")

        // A gateway may act only for the carers its directory entry lists.
        #expect(throws: ClientError.self) {
            try bridge.send(.carerCheckIn, to: [.person("coord.patel")], patient: ellis, onBehalfOf: "sw.lee", body: try Bodies.checkIn())
        }
    }

    @Test func aReloadedDirectoryAdmitsANewPersonAndDropsAnOldOne() throws {
        let system = try CareSystem()
        let server = try system.start()
        var directory = system.directory.directory
        let newcomer = try CurveKeyPair.generate()
        directory.people.append(
            Directory.Person(id: "sw.new", name: "New starter", roles: [.socialWorker], teams: ["west.social-care"], key: newcomer.publicKey))
        directory.people.removeAll { $0.id == "gp.east" }
        server.reload(directory: try DirectoryIndex(directory))

        let client = try CareRelayClient(
            configuration: ClientConfiguration(
                endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: newcomer, attempts: 2))
        #expect(client.welcome?.person == "sw.new")
        #expect(throws: ClientError.self) { _ = try system.client("gp.east") }
    }
}
