import Foundation
import Testing

@testable import CareRelayModel

/// A referral record is stored as JSON with every referral; its hand-written encoding must write
/// what the synthesised one wrote, key for key.
@Suite struct ReferralRecordCodingTests {
    /// The record's fields with the encoding Swift synthesises.
    struct Synthesised: Encodable {
        var messageID: String
        var referrer: PersonID
        var team: TeamID?
        var patient: NHSNumber?
        var status: ReferralStatus
        var takenBy: PersonID?
        var takenAt: Date?
        var owner: PersonID?
        var allocatedTo: PersonID?
        var passedBy: [PersonID]
        var deadline: Date?
        var escalatedAt: Date?
        var updatedAt: Date
        var history: [ReferralStep]

        init(_ r: ReferralRecord) {
            messageID = r.messageID
            referrer = r.referrer
            team = r.team
            patient = r.patient
            status = r.status
            takenBy = r.takenBy
            takenAt = r.takenAt
            owner = r.owner
            allocatedTo = r.allocatedTo
            passedBy = r.passedBy
            deadline = r.deadline
            escalatedAt = r.escalatedAt
            updatedAt = r.updatedAt
            history = r.history
        }
    }

    static let sent = Date(timeIntervalSince1970: 1_795_000_000)

    static var records: [ReferralRecord] {
        get throws {
            let patient = try NHSNumber(validating: "9434765919")
            let fresh = ReferralRecord(
                messageID: "7KD4-QXM2-P9R3", referrer: "gp.patel", team: "west.social-care", patient: patient, status: .sent,
                deadline: sent.addingTimeInterval(86_400), updatedAt: sent)
            var worked = fresh
            worked.status = .accepted
            worked.takenBy = "sw.lee"
            worked.takenAt = sent.addingTimeInterval(60)
            worked.owner = "sw.lee"
            worked.allocatedTo = "sw.lee"
            worked.passedBy = ["sw.khan", "sw.ode"]
            worked.escalatedAt = sent.addingTimeInterval(30)
            worked.history = [
                ReferralStep(event: .passed, at: sent.addingTimeInterval(10), by: "sw.khan", message: "m1", reason: "not for me"),
                ReferralStep(event: .accepted, at: sent.addingTimeInterval(60), by: "sw.lee", message: "m2", note: "will call today"),
            ]
            let personal = ReferralRecord(
                messageID: "m-old", referrer: "gp.patel", team: nil, patient: nil, status: .sent, deadline: nil, updatedAt: sent)
            return [fresh, worked, personal]
        }
    }

    @Test func writesWhatTheSynthesisedEncodingWrote() throws {
        for record in try Self.records {
            // With sorted keys, byte for byte.
            let sorted = JSONEncoder()
            sorted.outputFormatting = [.sortedKeys]
            let written = try sorted.encode(record)
            #expect(String(decoding: written, as: UTF8.self) == String(decoding: try sorted.encode(Synthesised(record)), as: UTF8.self))
            // Without (as the stores write it), the same object: the encoder's key order is its
            // dictionary's, for either encoding.
            let plain = try JSONEncoder().encode(record)
            let object = try JSONSerialization.jsonObject(with: plain) as? NSDictionary
            let synthesised = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(Synthesised(record))) as? NSDictionary
            #expect(object != nil && object == synthesised)
            #expect(try JSONDecoder().decode(ReferralRecord.self, from: plain) == record)
        }
    }
}
