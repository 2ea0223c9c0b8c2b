import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// A patient's objection holds on every door, not only at delivery: each test is one way in
/// that an outsider tried, over CURVE against a running broker. The whole table is
/// AccessMatrixTests; these are the attacks as they were found.
@Suite struct ConsentDoorsTests {
    /// Mrs Ellis's care team: the nurse, the GP practice, the social care intake, and Jean as her
    /// carer (and `alsoInCareTeam`), with an objection (recorded by the nurse) against `objectedTo`.
    static func ellisWithObjection(to objectedTo: PersonID, in system: CareSystem, alsoInCareTeam: [String] = []) throws -> CareRelayClient {
        let nurse = try system.linkCareTeam(
            of: ellis, ["person:nurse.ali", "team:west.gp", "team:west.social-care", "person:carer.ellis"] + alsoInCareTeam)
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(
                id: "ellis-objects", type: "deny", actor: ["role": "person", "reference": objectedTo.rawValue], action: "object"))
        return nurse
    }

    @Test func aCoordinatorThePatientObjectedToReadsNothingOfHers() throws {
        let system = try CareSystem()
        try system.start()
        // Her team is in the care team: only the objection stands between her and the plan.
        let nurse = try Self.ellisWithObjection(to: "coord.east", in: system, alsoInCareTeam: ["team:east.social-care"])
        let plan = try nurse.send(.carePlanShare, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.carePlan())
        let coordinator = try system.client("coord.east", receive: false)
        let asks: [(String, String, [String: String], ErrorCode)] = [
            ("the plan as its sender", "message", ["id": plan.id, "as": "nurse.ali"], .unknownMessage),
            ("the plan as a recipient", "message", ["id": plan.id, "as": "sw.okafor"], .unknownMessage),
            ("the plan as herself", "message", ["id": plan.id], .unknownMessage),
            ("tracking the plan", "track", ["id": plan.id], .unknownMessage),
            ("the patient's audit trail", "audit", ["patient": ellis.digits], .notPermitted),
            ("the plan's audit trail", "audit", ["message": plan.id], .unknownMessage),
            ("the patient's consent record", "consent", ["patient": ellis.digits], .notPermitted),
            ("the patient's care team", "careteam", ["patient": ellis.digits], .notPermitted),
        ]
        for (what, query, params, code) in asks {
            #expect(refusal { _ = try coordinator.query(query, params) } == code, "\(what)")
        }
        // Her own audit rows say nothing of the plan that was withheld from her.
        let own = try decode([AuditRow].self, try coordinator.query("audit", ["person": "coord.east"]))
        #expect(!own.contains { $0.entry.message == plan.id })
        // The control: the co-ordinator of the patient's own team reads all of it.
        let patel = try system.client("coord.patel", receive: false)
        #expect(try patel.query("audit", ["patient": ellis.digits]).count > 2)
        _ = try patel.query("message", ["id": plan.id])
    }

    @Test func aReferralWithheldFromASocialWorkerDoesNotExistForHim() throws {
        let system = try CareSystem()
        try system.start()
        _ = try Self.ellisWithObjection(to: "sw.lee", in: system)
        let gp = try system.client("gp.khan", receive: false)
        let referral = try gp.send(
            .referral, to: [.team("west.social-care")], patient: ellis, priority: .routine,
            body: try Bodies.referral(priority: .routine))
        #expect(referral.recipients.first { $0.person == "sw.lee" }?.decision == .withheld)

        let lee = try system.client("sw.lee")
        #expect(try lee.nextDelivery(timeout: .milliseconds(300)) == nil)
        let inbox = try #require(try JSONSerialization.jsonObject(with: Data(try lee.query("inbox"))) as? [[String: Any]])
        #expect(!inbox.contains { $0["id"] as? String == referral.id }, "no inbox line, not even 'withheld'")
        #expect(refusal { _ = try lee.query("track", ["id": referral.id]) } == .unknownMessage)
        #expect(refusal { _ = try lee.query("message", ["id": referral.id]) } == .unknownMessage)
        let own = try decode([AuditRow].self, try lee.query("audit", ["person": "sw.lee"]))
        #expect(!own.contains { $0.entry.message == referral.id || $0.entry.patient == ellis.digits })
        #expect(own.allSatisfy { $0.entry.rule == nil }, "no rule ids in a person's own rows")
        // He cannot take it: to him it is not known, exactly as a made-up id.
        #expect(
            refusal {
                try lee.send(
                    .referralEvent, to: [], correlation: referral.id, body: try Bodies.event("accepted", referral: referral.id, by: "sw.lee"))
            } == .unknownMessage)
        #expect(
            refusal {
                try lee.send(.referralEvent, to: [], body: try Bodies.event("accepted", referral: "no-such-referral", by: "sw.lee"))
            } == .unknownMessage)
        // Nor can anyone allocate it to him.
        let okafor = try system.client("sw.okafor", receive: false)
        #expect(
            refusal {
                try okafor.send(
                    .referralEvent, to: [], correlation: referral.id,
                    body: try Bodies.event("allocated", referral: referral.id, by: "sw.okafor", extra: ["allocatedTo": ["person": "sw.lee"]]))
            } == .notPermitted)
        // His colleague's tracking does not show him either: that would say what the patient decided.
        let tracked = try decode(Tracking.self, try okafor.query("track", ["id": referral.id]))
        #expect(!tracked.recipients.contains { $0.person == "sw.lee" })
        // The sender still sees every decision.
        let sent = try decode(Tracking.self, try gp.query("track", ["id": referral.id]))
        #expect(sent.recipients.first { $0.person == "sw.lee" }?.decision == "withheld")
        try okafor.send(.referralEvent, to: [], correlation: referral.id, body: try Bodies.event("accepted", referral: referral.id, by: "sw.okafor"))
        #expect(try decode(Tracking.self, try gp.query("track", ["id": referral.id])).referral?.takenBy == "sw.okafor")
    }

    @Test func onlyThePatientsCareTeamChangesTheirConsent() throws {
        let system = try CareSystem()
        try system.start()
        _ = try Self.ellisWithObjection(to: "sw.lee", in: system)
        let withdrawal = try Bodies.json([
            "action": "withdraw", "patient": ellis.digits, "dateTime": "2026-11-23T10:00:00Z",
            "performer": ["person": "gp.east"], "withdraws": "ellis-objects",
        ])
        let outsider = try system.client("gp.east", receive: false)
        #expect(refusal { try outsider.send(.consent, to: [], body: withdrawal) } == .notPermitted)
        // Nor in someone else's name, even by a member of the care team.
        let patel = try system.client("coord.patel", receive: false)
        var asNurse = try jsonObject(withdrawal)
        asNurse["performer"] = ["person": "nurse.ali"]
        #expect(refusal { try patel.send(.consent, to: [], body: try Bodies.json(asNurse)) } == .notPermitted)
        // The objected-to social worker cannot withdraw the objection against himself.
        let lee = try system.client("sw.lee", receive: false)
        asNurse["performer"] = ["person": "sw.lee"]
        #expect(refusal { try lee.send(.consent, to: [], body: try Bodies.json(asNurse)) } == .notPermitted)
        // The objection still holds for the next referral.
        let gp = try system.client("gp.khan", receive: false)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(referral.recipients.first { $0.person == "sw.lee" }?.decision == .withheld)
    }

    @Test func nobodyAttachesPeopleToAPatientUnrelatedToThem() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.linkCareTeam(of: robson, ["person:nurse.ali"])
        let outsider = try system.client("coord.east", receive: false)
        #expect(refusal { _ = try outsider.query("careteam.link", ["patient": robson.digits, "member": "person:carer.ellis"]) } == .notPermitted)
        // A patient with no care team yet: founding it means linking yourself or your own team.
        #expect(refusal { _ = try outsider.query("careteam.link", ["patient": ellis.digits, "member": "person:carer.ellis"]) } == .notPermitted)
        _ = try outsider.query("careteam.link", ["patient": ellis.digits, "member": "team:east.social-care"])
        #expect(try nurse.query(CareTeamQuery(patient: robson)) == [.person("nurse.ali")])
        // Nor invites a carer to see a patient who is not theirs to invite for.
        let invite = try Bodies.json([
            "carer": "carer.ellis", "patients": [robson.digits], "codeHash": String(repeating: "cd", count: 32),
            "expires": "2099-01-01T00:00:00Z", "issuedBy": "coord.east",
        ])
        #expect(refusal { try outsider.send(.carerInvite, to: [.person("bridge")], body: invite) } == .notPermitted)
    }

    @Test func checkInsComeFromThePatientsOwnCarerInTheirOwnName() throws {
        let system = try CareSystem()
        try system.start()
        try system.linkCareTeam(of: robson, ["person:nurse.ali"])
        try system.linkCareTeam(of: ellis, ["person:nurse.ali", "person:carer.ellis"])
        let carer = try system.client("carer.ellis", receive: false)
        let bridge = try system.client("bridge", receive: false)
        #expect(
            refusal { try carer.send(.carerCheckIn, to: [.careTeam(robson)], patient: robson, body: try Bodies.checkIn(patient: robson)) }
                == .notPermitted)
        #expect(
            refusal {
                try bridge.send(
                    .carerCheckIn, to: [.careTeam(robson)], patient: robson, onBehalfOf: "carer.ellis", body: try Bodies.checkIn(patient: robson))
            } == .notPermitted)
        for author: PersonID in ["carer.ellis-daughter", "nobody.at.all"] {
            #expect(
                refusal { try carer.send(.carerCheckIn, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.checkIn(carer: author)) }
                    == .notPermitted,
                "check-in written as \(author)")
        }
        // About her own mother-in-law it goes, and ACCEPTED does not list the care team to her.
        let accepted = try carer.send(.carerCheckIn, to: [.careTeam(ellis)], patient: ellis, body: try Bodies.checkIn())
        #expect(accepted.recipients.isEmpty)
        #expect(refusal { _ = try carer.query("careteam", ["patient": ellis.digits]) } == .notPermitted)
        let viaBridge = try bridge.send(.carerCheckIn, to: [.careTeam(ellis)], patient: ellis, onBehalfOf: "carer.ellis", body: try Bodies.checkIn())
        #expect(viaBridge.recipients.isEmpty)
        _ = try #require(try system.client("nurse.ali").nextDelivery(timeout: .seconds(5)), "the nurse receives the check-in")
    }

    @Test func aReferralNamesTheSendersOwnTeam() throws {
        let system = try CareSystem()
        try system.start()
        let gp = try system.client("gp.khan", receive: false)
        var body = try jsonObject(try Bodies.referral())
        body["requester"] = ["person": "gp.khan", "role": "gp", "team": "west.nursing"]
        #expect(refusal { try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.json(body)) } == .notPermitted)
        body["requester"] = ["person": "gp.khan", "role": "gp", "team": "west.gp"]
        try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.json(body))
    }
}
