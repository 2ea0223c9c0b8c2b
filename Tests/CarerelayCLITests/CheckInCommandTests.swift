import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// `carerelay checkin`: a co-ordinator finds what carers sent, reads it in full and tells the
/// carer she read it; a colleague sees that she did.
@Suite struct CheckInCommandTests {
    /// Jean's urgent night check-in, sent as the carer's bridge sends it, to the co-ordinator
    /// and the district nurse.
    func checkIn(_ system: CareSystem) throws -> String {
        let nurse = try system.cli("nurse.ali")
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", member]).status == 0)
        }
        #expect(
            try nurse.run([
                "consent", "record", "--patient", ellisNHS, "--actor", "relationship:carer", "--class", "general",
            ]).status == 0)
        let keys = try #require(system.keys["carer.ellis"])
        let carer = try CareRelayClient(
            configuration: ClientConfiguration(endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: keys))
        var body = try Fixtures.example("carer.checkin", "valid-night-checkin-urgent.json")
        body["carer"] = "carer.ellis"
        let accepted = try carer.send(
            SendHeader(
                key: UUID().uuidString, kind: .carerCheckIn, to: [.person("coord.patel"), .person("nurse.ali")],
                patient: try NHSNumber(validating: ellisNHS)),
            body: [UInt8](try JSONSerialization.data(withJSONObject: body)))
        return accepted.id
    }

    @Test func aCheckInIsListedReadInFullAndAcknowledged() throws {
        let system = try CareSystem()
        try system.start()
        let id = try checkIn(system)
        let coordinator = try system.cli("coord.patel")

        let unread = try coordinator.run(["checkin", "list", "--unread"])
        #expect(unread.status == 0, "\(unread)")
        #expect(unread.stdout.contains("URGENT"), "\(unread)")
        #expect(unread.stdout.contains("Jean Ellis"), "\(unread)")
        #expect(unread.stdout.contains("nobody yet"), "\(unread)")
        #expect(unread.stdout.contains(id), "\(unread)")

        let shown = try coordinator.run(["checkin", "show", id])
        #expect(shown.status == 0, "\(shown)")
        for words in [
            "Mam is confused tonight", "Third night I have stayed over", "strain 8/10", "Could it be another water infection",
            "Body temperature: 38.1 °C", "Heart rate: 104 a minute", "Read by:   nobody yet",
        ] {
            #expect(shown.stdout.contains(words), "missing \(words): \(shown)")
        }

        let read = try coordinator.run(["checkin", "acknowledge", id, "--note", "Thank you, Jean. I will ring you at 2pm."])
        #expect(read.status == 0, "\(read)")
        #expect(read.stdout.contains("carer.ellis"), "\(read)")
        #expect(try coordinator.run(["checkin", "list", "--unread"]).stdout.contains("No check-ins match."))
        #expect(try coordinator.run(["checkin", "list"]).stdout.contains("you"))

        // The district nurse sees who read it, so she need not ring Jean as well.
        let colleague = try system.cli("nurse.ali").run(["checkin", "show", id])
        #expect(colleague.stdout.contains("Read by:   Priya Patel (coord.patel) at "), "\(colleague)")
        #expect(colleague.stdout.contains("Thank you, Jean. I will ring you at 2pm."), "\(colleague)")
        let json = try system.cli("nurse.ali").run(["checkin", "list", "--json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect((entries.first?["acknowledgements"] as? [[String: Any]])?.first?["by"] as? String == "coord.patel")
    }

    @Test func onlyThoseItReachedMayReadOrAcknowledgeIt() throws {
        let system = try CareSystem()
        try system.start()
        let id = try checkIn(system)
        let gp = try system.cli("gp.khan")
        let refused = try gp.run(["checkin", "acknowledge", id])
        #expect(refused.status == 65, "\(refused)")
        #expect(try gp.run(["checkin", "show", id]).status == 65)
        #expect(try gp.run(["checkin", "list"]).stdout.contains("No check-ins match."))
        let badNote = try system.cli("coord.patel").run(["checkin", "acknowledge", id, "--note", " "])
        #expect(badNote.status == 64, "\(badNote)")
        #expect(try system.cli("coord.patel").run(["checkin", "list", "--urgency", "soonish"]).status == 64)
    }
}
