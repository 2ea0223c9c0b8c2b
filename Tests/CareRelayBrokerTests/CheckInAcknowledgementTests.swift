import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// A professional tells the carer they read her check-in: only someone it reached may, the
/// carer and the check-in's other recipients hear of it, and the patient's consent decides
/// for each of them as for any message.
@Suite struct CheckInAcknowledgementTests {
    func careTeam(_ system: CareSystem) throws {
        let nurse = try system.client("nurse.ali", receive: false)
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
        // Mrs Ellis agreed that her carer hears from the care team.
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(id: "cd-carer", actor: ["role": "relationship", "reference": "carer"], categories: ["general"]))
    }

    func acknowledgement(of checkIn: String, by person: PersonID, patient: NHSNumber = ellis, note: String? = nil) -> [UInt8] {
        CheckInAcknowledgement(checkIn: checkIn, patient: patient, by: person, at: Timestamp(Date()), note: note).encode()
    }

    @Test func theCarerAndTheOtherRecipientsLearnWhoReadIt() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let carer = try system.client("carer.ellis")
        let checkIn = try carer.send(
            .carerCheckIn, to: [.person("coord.patel"), .person("nurse.ali")], patient: ellis, body: try Bodies.checkIn())
        let coordinator = try system.client("coord.patel")
        let nurse = try system.client("nurse.ali")
        _ = try coordinator.expectDelivery()
        _ = try nurse.expectDelivery()

        let read = try coordinator.send(
            .checkInAcknowledgement, to: [], patient: ellis,
            body: acknowledgement(of: checkIn.id, by: "coord.patel", note: "Thank you. I will ring you at 2pm."))
        #expect(Set(read.recipients.map(\.person)) == ["carer.ellis", "nurse.ali"])
        #expect(read.recipients.allSatisfy { $0.decision == .deliver })
        for client in [carer, nurse] {
            let copy = try client.expectDelivery()
            #expect(copy.header.kind == .checkInAcknowledgement)
            #expect(copy.header.fromName == "Priya Patel")
            let body = try CheckInAcknowledgement.decode(json: copy.body)
            #expect(body.checkIn == checkIn.id)
            #expect(body.note == "Thank you. I will ring you at 2pm.")
        }
        // Reading it confirmed the co-ordinator's own copy.
        let tracking = try carer.query("track", ["id": checkIn.id], as: Tracking.self)
        #expect(tracking.recipients.first { $0.person == "coord.patel" }?.state == "confirmed")
    }

    @Test func onlySomeoneItReachedMayAcknowledgeItAndOnlyAsThemselves() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let carer = try system.client("carer.ellis", receive: false)
        let checkIn = try carer.send(.carerCheckIn, to: [.person("coord.patel")], patient: ellis, body: try Bodies.checkIn())

        // A GP it was not sent to: told the same as for an id that does not exist.
        let gp = try system.client("gp.khan", receive: false)
        for id in [checkIn.id, "mzzzzzzzz-unknown"] {
            #expect(throws: ClientError.rejected(ProtocolError(.unknownMessage, "checkIn: no carer check-in \(id) was delivered to you"))) {
                try gp.send(.checkInAcknowledgement, to: [], patient: ellis, body: acknowledgement(of: id, by: "gp.khan"))
            }
        }
        let coordinator = try system.client("coord.patel", receive: false)
        #expect(
            throws: ClientError.rejected(
                ProtocolError(.notPermitted, "body by: an acknowledgement is made by its sender (coord.patel), not 'nurse.ali'"))
        ) {
            try coordinator.send(.checkInAcknowledgement, to: [], patient: ellis, body: acknowledgement(of: checkIn.id, by: "nurse.ali"))
        }
        #expect(throws: ClientError.rejected(ProtocolError(.schemaViolation, "patient: check-in \(checkIn.id) is about another patient"))) {
            try coordinator.send(
                .checkInAcknowledgement, to: [], patient: robson, body: acknowledgement(of: checkIn.id, by: "coord.patel", patient: robson))
        }
        // A carer cannot acknowledge (they send check-ins, they do not triage them).
        #expect(
            refusal { try carer.send(.checkInAcknowledgement, to: [], patient: ellis, body: acknowledgement(of: checkIn.id, by: "carer.ellis")) }
                == .notPermitted)
    }

    @Test func thePatientsObjectionHoldsForTheAcknowledgementToo() throws {
        let system = try CareSystem()
        try system.start()
        try careTeam(system)
        let carer = try system.client("carer.ellis", receive: false)
        let checkIn = try carer.send(.carerCheckIn, to: [.person("coord.patel")], patient: ellis, body: try Bodies.checkIn())
        // Mrs Ellis objects to her daughter-in-law hearing anything more from the team.
        let nurse = try system.client("nurse.ali", receive: false)
        try nurse.send(
            .consent, to: [],
            body: try Bodies.consent(id: "cd-no-carer", type: "deny", actor: ["role": "person", "reference": "carer.ellis"], action: "object"))
        let coordinator = try system.client("coord.patel", receive: false)
        let read = try coordinator.send(
            .checkInAcknowledgement, to: [], patient: ellis, body: acknowledgement(of: checkIn.id, by: "coord.patel", note: "Noted."))
        #expect(read.recipients.map(\.person) == ["carer.ellis"])
        #expect(read.recipients.first?.decision == .withheld)
    }
}
