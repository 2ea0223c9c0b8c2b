@testable import CareRelayBroker
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// On-call chains driven in-process with the test's clock, on the real store (both stores in
/// Scripts/test): who is told in turn, what ends a chain, and who may end it.
@Suite struct OnCallTests {
    /// The intake's rota: Grace Okafor, then Daniel Lee, ten minutes each; out of hours, Priya
    /// Patel. `hours` decides which applies now.
    static func harness(hours: String = "24/7") throws -> CoreHarness {
        try NotificationPlanningTests.harness(
            site: NotificationSite(channels: [.email], bridgeAddress: "https://carers.example")
        ) { directory in
            if let intake = directory.teams.firstIndex(where: { $0.id == "west.social-care" }) {
                directory.teams[intake].onCall = ["sw.okafor", "sw.lee"]
                directory.teams[intake].onCallOutOfHours = ["coord.patel"]
                directory.teams[intake].escalateAfter = "10m"
                directory.teams[intake].hours = hours
            }
        }
    }

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func onCallNotices(_ harness: CoreHarness) throws -> [NotificationRecord] {
        try NotificationPlanningTests.queued(harness).filter { $0.event == .onCall }
    }

    static func urgentCheckIn(_ harness: CoreHarness) throws -> String {
        let carer = try harness.connect("carer.ellis")
        return try #require(
            harness.send(carer, .carerCheckIn, to: [.team("west.social-care")], patient: ellis, body: try Bodies.checkIn())?.accepted
        ).id
    }

    func onCallAudit(_ harness: CoreHarness, _ message: String) throws -> [AuditEntry] {
        try harness.system.store.openReader().audit(AuditFilter(message: message)).map(\.entry).filter { $0.action == .onCall }
    }

    @Test("an urgent check-in is told to the first on call, then the next when nobody acknowledges, until one does")
    func theChainMovesOnAndStops() throws {
        let harness = try Self.harness()
        let checkIn = try Self.urgentCheckIn(harness)
        let first = try Self.onCallNotices(harness)
        #expect(first.map(\.recipient) == ["person:sw.okafor"])
        #expect(first.first?.subject == "On call: a carer check-in marked urgent for West social care intake is waiting")
        #expect(first.first?.text.contains("carerelay oncall ack \(checkIn)") == true)
        #expect(first.first?.link?.hasPrefix("https://carers.example/on-call/\(checkIn).west.social-care/") == true)
        NotificationPlanningTests.expectNoPatientInformation(first)

        // Nine minutes: nobody new is told.
        harness.system.clock.advance(by: 9 * 60)
        harness.turn()
        #expect(try Self.onCallNotices(harness).isEmpty)
        harness.system.clock.advance(by: 60)
        harness.turn()
        #expect(try Self.onCallNotices(harness).map(\.recipient) == ["person:sw.lee"])

        let lee = try harness.connect("sw.lee", receive: false)
        let answer = try #require(harness.query(lee, "oncall.ack", ["id": checkIn])?.resultBody)
        let acknowledged = try Self.decoder.decode(OnCallAcknowledged.self, from: Data(answer))
        #expect(acknowledged.chains.map(\.state) == ["acknowledged"])
        #expect(acknowledged.chains.first?.acknowledgedBy == "sw.lee")
        #expect(acknowledged.chains.first?.told == ["sw.okafor", "sw.lee"])

        harness.system.clock.advance(by: 3_600)
        harness.turn()
        #expect(try Self.onCallNotices(harness).isEmpty, "nobody more is told once someone has it")
        let audit = try onCallAudit(harness, checkIn)
        #expect(audit.map(\.decision) == ["told", "told", "acknowledged"])
        #expect(audit.map(\.actor) == ["carerelay", "carerelay", "sw.lee"])
    }

    @Test("someone on call the patient objected to is passed over: they could not read what they would be asked to act on")
    func objectionPassesOver() throws {
        let harness = try Self.harness()
        let nurse = try harness.connect("nurse.ali", receive: false)
        _ = try #require(
            harness.send(
                nurse, .consent, to: [],
                body: try Bodies.consent(id: "no-okafor", type: "deny", actor: ["role": "person", "reference": "sw.okafor"], action: "object")
            )?.accepted)
        _ = try Self.urgentCheckIn(harness)
        #expect(try Self.onCallNotices(harness).map(\.recipient) == ["person:sw.lee"])
    }

    @Test("out of hours the out-of-hours rota is told")
    func outOfHours() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = ServiceHours.siteTimeZone
        let hour = calendar.component(.hour, from: Date())
        // Hours that are closed now, whatever the time the test runs.
        let harness = try Self.harness(hours: hour < 12 ? "mon-sun 12:00-24:00" : "mon-sun 00:00-12:00")
        _ = try Self.urgentCheckIn(harness)
        #expect(try Self.onCallNotices(harness).map(\.recipient) == ["person:coord.patel"])
    }

    @Test("acknowledging the check-in ends the chain; so does taking an overdue referral")
    func actingEndsIt() throws {
        let harness = try Self.harness()
        let checkIn = try Self.urgentCheckIn(harness)
        _ = try Self.onCallNotices(harness)
        let okafor = try harness.connect("sw.okafor", receive: false)
        _ = try #require(
            harness.send(
                okafor, .checkInAcknowledgement, to: [], patient: ellis,
                body: CheckInAcknowledgement(checkIn: checkIn, patient: ellis, by: "sw.okafor", at: Timestamp(Date()), note: "Calling now").encode())?
                .accepted)
        harness.system.clock.advance(by: 3_600)
        harness.turn()
        #expect(try Self.onCallNotices(harness).isEmpty)
        #expect(try onCallAudit(harness, checkIn).last?.detail?.hasPrefix("acknowledged the check-in") == true)

        // A referral past its response target starts the intake's chain; accepting it ends it.
        let gp = try harness.connect("gp.khan", receive: false)
        let referral = try #require(
            harness.send(gp, .referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .emergency))?.accepted
        ).id
        harness.system.clock.advance(by: 2 * 3_600)
        harness.turn()
        let told = try Self.onCallNotices(harness)
        #expect(told.map(\.recipient) == ["person:sw.okafor"])
        #expect(told.first?.subject == "On call: a referral for West social care intake is past its response target")
        // A new connection: the clock has run past the first one's heartbeat.
        let taken = harness.run(
            try harness.connect("sw.okafor", receive: false),
            .send(
                SendHeader(key: UUID().uuidString, kind: .referralEvent, to: [], correlation: referral),
                body: try Bodies.event("accepted", referral: referral, by: "sw.okafor")))
        #expect(taken.contains { $0.accepted != nil }, "\(taken)")
        harness.system.clock.advance(by: 3_600)
        harness.turn()
        #expect(try Self.onCallNotices(harness).isEmpty)
        #expect(try harness.store.onCallChains(message: referral).map(\.state) == [.acknowledged])
    }

    @Test("only the rota, the team and its co-ordinator may acknowledge; the link works through the bridge, as whom it was sent to")
    func whoMayAcknowledge() throws {
        let harness = try Self.harness()
        let checkIn = try Self.urgentCheckIn(harness)
        let link = try #require(try Self.onCallNotices(harness).first?.link)
        let token = String(link.split(separator: "/").last ?? "")
        let chain = "\(checkIn).west.social-care"

        let stranger = try harness.connect("gp.east")
        #expect(harness.query(stranger, "oncall.ack", ["id": checkIn])?.rejected?.code == ErrorCode.unknownMessage.rawValue)
        let bridge = try harness.connect("bridge")
        #expect(harness.query(bridge, "oncall.ack", ["id": chain])?.rejected?.code == ErrorCode.unknownMessage.rawValue)
        #expect(
            harness.query(bridge, "oncall.ack", ["id": chain, "token": "not-the-token"])?.rejected?.code == ErrorCode.unknownMessage.rawValue)
        // A professional cannot use someone else's link.
        #expect(harness.query(stranger, "oncall.ack", ["id": chain, "token": token])?.rejected?.code == ErrorCode.unknownMessage.rawValue)

        let answer = try #require(harness.query(bridge, "oncall.ack", ["id": chain, "token": token])?.resultBody)
        let acknowledged = try Self.decoder.decode(OnCallAcknowledged.self, from: Data(answer))
        #expect(acknowledged.chains.first?.acknowledgedBy == "sw.okafor")
        #expect(try onCallAudit(harness, checkIn).last?.detail?.hasPrefix("by the link sent to sw.okafor") == true)
    }
}
