import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// Who may see what. Unknown keys are refused in HostileInputTests; here, a carer and the
/// carer bridge reaching beyond their patient, and every role subscribing beyond its rights.
@Suite struct AccessTests {
    /// Jean Ellis cares for Mrs Ellis, not for Mr Robson. A nurse shares Mr Robson's plan and,
    /// by mistake, addresses it to Jean too: neither her own connection nor the bridge acting
    /// for her receives it, and no query hands her any of Mr Robson's data.
    @Test func aCarerCannotReadAnotherPatientsData() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.linkCareTeam(of: robson, ["person:nurse.ali"])
        try system.linkCareTeam(of: ellis, ["person:nurse.ali", "person:carer.ellis"])
        // Mrs Ellis agreed that Jean may see her care plan: the control that deliveries do flow.
        try nurse.send(.consent, to: [], body: try Bodies.consent(id: "cd-ellis-carer", actor: ["role": "person", "reference": "carer.ellis"]))

        let robsonPlan = try nurse.send(
            .carePlanShare, to: [.careTeam(robson), .person("carer.ellis")], patient: robson,
            body: try Bodies.carePlan(patient: robson))
        #expect(robsonPlan.recipients.first { $0.person == "carer.ellis" }?.decision == .withheld)
        let ellisPlan = try nurse.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.carePlan())
        #expect(ellisPlan.recipients.first { $0.person == "carer.ellis" }?.decision != .withheld)

        // Mailboxes are delivered in order, so Mrs Ellis's plan arriving first and alone means
        // Mr Robson's, sent before it, is not coming.
        let bridge = try system.client("bridge")
        let first = try bridge.expectDelivery()
        #expect(first.header.id == ellisPlan.id)
        #expect(first.header.recipient == "carer.ellis")
        #expect(try bridge.nextDelivery(timeout: .milliseconds(500)) == nil)
        let carer = try system.client("carer.ellis")
        #expect(try carer.nextDelivery(timeout: .milliseconds(500)) == nil)

        // Refused where she may know the thing exists; a message withheld from her does not
        // exist for her at all, answered exactly as an unknown id.
        let asks: [(String, CareRelayClient, String, [String: String], ErrorCode)] = [
            ("Robson's care team", carer, "careteam", ["patient": robson.digits], .notPermitted),
            ("Robson's consent record", carer, "consent", ["patient": robson.digits], .notPermitted),
            ("Robson's audit trail", carer, "audit", ["patient": robson.digits], .notPermitted),
            ("tracking Robson's plan", carer, "track", ["id": robsonPlan.id], .unknownMessage),
            ("Robson's plan as the nurse sees it", carer, "message", ["id": robsonPlan.id, "as": "nurse.ali"], .unknownMessage),
            ("Robson's plan as she would see it", carer, "message", ["id": robsonPlan.id], .unknownMessage),
            ("the bridge reading a GP's inbox", bridge, "inbox", ["for": "gp.khan"], .notPermitted),
            ("the bridge tracking Robson's plan", bridge, "track", ["id": robsonPlan.id], .unknownMessage),
            ("the bridge reading Robson's plan as the nurse", bridge, "message", ["id": robsonPlan.id, "as": "nurse.ali"], .unknownMessage),
            ("the bridge reading Robson's plan as Jean", bridge, "message", ["id": robsonPlan.id, "as": "carer.ellis"], .unknownMessage),
        ]
        for (what, client, query, params, code) in asks {
            #expect(refusal { _ = try client.query(query, params) } == code, "\(what)")
        }
        // As herself, her own plan is there.
        let view = try jsonObject(try carer.query("message", ["id": ellisPlan.id]))
        #expect(view["body"] is String)
    }

    /// Every role, its own rights and one step beyond them. The table is written from
    /// the rules in Protocols/CRP.md section 12, not read from the broker's, so a widened rule fails here.
    @Test(
        arguments: [
            ("gp.khan", "*/west/west.gp", true), ("gp.khan", "referral/west/west.gp", true),
            ("gp.khan", "*/west/west.social-care", false), ("gp.khan", "*/west/*", false), ("gp.khan", "*/east/east.gp", false),
            ("gp.khan", "#", false), ("gp.khan", "*/*/*", false),
            ("sw.okafor", "*/west/west.social-care", true), ("sw.okafor", "*/west/west.mental-health", false), ("sw.okafor", "*/west/*", false),
            ("coord.patel", "*/west/*", true), ("coord.patel", "careplan.share/west/west.mental-health", true),
            ("coord.patel", "*/east/*", false), ("coord.patel", "#", false),
            ("mdt.jones", "*/west/*", true), ("mdt.jones", "*/east/*", false), ("mdt.jones", "*/*/*", false),
            ("nurse.ali", "*/west/west.nursing", true), ("nurse.ali", "*/west/west.mdt", true), ("nurse.ali", "*/west/west.social-care", false),
            ("cpn.brown", "*/west/west.mental-health", true), ("cpn.brown", "*/west/west.nursing", false),
            ("vsb.green", "referral/west/west.voluntary", true), ("vsb.green", "careplan.share/west/west.voluntary", false),
            ("vsb.green", "*/west/west.voluntary", false),
            ("carer.ellis", "careplan.share/west/west.social-care", false), ("carer.ellis", "referral/west/#", false), ("carer.ellis", "#", false),
            ("bridge", "careplan.share/west/west.social-care", false), ("bridge", "#", false),
            ("admin.it", "*/west/*", false), ("admin.it", "#", false),
            ("gp.east", "*/east/east.gp", true), ("gp.east", "*/west/west.gp", false),
        ] as [(String, String, Bool)])
    func noRoleSubscribesBeyondItsRights(person: String, topic: String, allowed: Bool) throws {
        let system = try CareSystem()
        try system.start()
        let client = try system.client(PersonID(person), receive: true)
        #expect(refusal { try client.subscribe(topic) } == (allowed ? nil : .subscriptionDenied))
    }

    /// Every role in the directory appears in the table above.
    @Test func theTableCoversEveryRoleInTheCareSystem() {
        let tabled: Set<PersonID> = [
            "gp.khan", "sw.okafor", "coord.patel", "mdt.jones", "nurse.ali", "cpn.brown", "vsb.green",
            "carer.ellis", "bridge", "admin.it", "gp.east",
        ]
        let roles = Set(CareSystem.people.filter { tabled.contains($0.0) }.flatMap(\.2))
        #expect(roles == Set(CareSystem.people.flatMap(\.2)))
    }
}

/// The code the broker refused with, or nil if it did not refuse; other failures are recorded.
func refusal(_ body: () throws -> Void) -> ErrorCode? {
    do {
        try body()
        return nil
    } catch ClientError.rejected(let failure) {
        return failure.code
    } catch {
        Issue.record("expected an answer from the broker, got \(error)")
        return nil
    }
}
