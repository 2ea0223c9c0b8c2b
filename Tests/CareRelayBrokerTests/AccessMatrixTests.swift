import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// The access table of Protocols/access-policy.md, cell by cell, against a running broker over
/// CURVE: every role of the sample directory, every query and state-changing command, about a
/// patient who is theirs, one who is not, and one who objected to them. The expected answers
/// are read from the document, so the document a client author reads is the one tested.
@Suite struct AccessMatrixTests {
    static let document = Bodies.examples.deletingLastPathComponent().appendingPathComponent("access-policy.md")

    /// One per role, and the two people of another locality.
    static let askers: [PersonID] = [
        "gp.khan", "sw.okafor", "coord.patel", "mdt.jones", "nurse.ali", "vsb.green", "carer.ellis", "bridge",
        "admin.it", "gp.east", "coord.east",
    ]
    /// A patient who is nobody's here but for the sender of the plans and one social worker.
    static let shaw = try! NHSNumber(validating: "4857773457")

    /// door -> asker -> column -> expected answer, from the document's tables.
    static func table() throws -> [String: [String: [String: String]]] {
        let text = try String(contentsOf: document, encoding: .utf8)
        guard let start = text.range(of: "\n## The table\n") else { throw Problem("access-policy.md has no '## The table' section") }
        var table: [String: [String: [String: String]]] = [:]
        var door: String?
        var columns: [String] = []
        for line in text[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("### ") { door = String(line.dropFirst(4)); columns = []; continue }
            guard let door, line.hasPrefix("|"), !line.hasPrefix("|---") else { continue }
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if cells.first == "asker" { columns = Array(cells.dropFirst()); continue }
            guard let asker = cells.first, cells.count == columns.count + 1 else {
                throw Problem("access-policy.md, \(door): malformed row '\(line)'")
            }
            table[door, default: [:]][asker] = Dictionary(uniqueKeysWithValues: zip(columns, cells.dropFirst()))
        }
        return table
    }

    @Test func everyCellOfTheAccessTableHolds() throws {
        let table = try Self.table()
        let world = try World()
        var cells = 0
        var wrong: [String] = []
        for (door, byAsker) in table.sorted(by: { $0.key < $1.key }) {
            for asker in Self.askers {
                let row = try #require(byAsker[asker.rawValue], "access-policy.md, \(door): no row for \(asker)")
                for (column, expected) in row.sorted(by: { $0.key < $1.key }) {
                    let answer = try world.ask(door: door, column: column, asker: asker)
                    cells += 1
                    if answer != expected { wrong.append("\(door) / \(asker) / \(column): expected \(expected), got \(answer)") }
                }
            }
            #expect(Set(byAsker.keys) == Set(Self.askers.map(\.rawValue)), "\(door): rows for exactly the sample askers")
        }
        #expect(wrong.isEmpty, "\(wrong.count) of \(cells) cells differ from access-policy.md:\n\(wrong.joined(separator: "\n"))")
        #expect(cells >= 11 * 12 * 3 + 11 * 4, "every door of the table was asked (\(cells) cells)")
    }

    /// A broker with the three patients of the table, their care teams, consent and plans.
    final class World {
        let system: CareSystem
        let brown: CareRelayClient
        var clients: [PersonID: CareRelayClient] = [:]
        /// theirs, not theirs, objected.
        let patients: [String: NHSNumber] = ["theirs": ellis, "not theirs": robson, "objected": AccessMatrixTests.shaw]
        var plans: [NHSNumber: String] = [:]
        /// A referral of each patient to the social care intake, for the worklist.
        var referrals: [NHSNumber: String] = [:]
        /// A carer's check-in about each patient, sent to their care team.
        var checkIns: [NHSNumber: String] = [:]

        init() throws {
            system = try CareSystem()
            try system.start()
            brown = try system.client("cpn.brown", receive: false)
            let everyTeam = ["west.gp", "west.social-care", "west.nursing", "west.mdt", "west.voluntary", "east.gp", "east.social-care"]
            for patient in [ellis, AccessMatrixTests.shaw] {
                try system.linkCareTeam(of: patient, ["person:cpn.brown"] + everyTeam.map { "team:\($0)" } + ["person:carer.ellis"], by: "cpn.brown")
                try brown.send(
                    .consent, to: [],
                    body: try Bodies.consent(
                        id: "carer-\(patient.digits)", patient: patient, actor: ["role": "person", "reference": "carer.ellis"], by: "cpn.brown"))
            }
            try system.linkCareTeam(of: robson, ["person:cpn.brown", "person:sw.lee", "person:carer.robson"], by: "cpn.brown")
            var objection = try jsonObject(
                try Bodies.consent(
                    id: "shaw-objects", patient: AccessMatrixTests.shaw, type: "deny", actor: ["role": "person", "reference": "gp.khan"],
                    by: "cpn.brown", action: "object"))
            var provision = try #require(objection["provision"] as? [String: Any])
            provision["actor"] = AccessMatrixTests.askers.map { ["role": "person", "reference": $0.rawValue] }
            objection["provision"] = provision
            try brown.send(.consent, to: [], body: try Bodies.json(objection))
            for patient in patients.values {
                plans[patient] = try brown.send(
                    .carePlanShare, to: [.careTeam(patient)], patient: patient,
                    body: try Bodies.carePlan(patient: patient)
                ).id
            }
            for patient in patients.values {
                referrals[patient] = try brown.send(
                    .referral, to: [.team("west.social-care")], patient: patient,
                    body: try Bodies.referral(patient: patient, from: "cpn.brown", role: .communityNurse)
                ).id
            }
            for patient in patients.values {
                let carer: PersonID = patient == robson ? "carer.robson" : "carer.ellis"
                checkIns[patient] = try system.client(carer, receive: false).send(
                    .carerCheckIn, to: [.careTeam(patient)], patient: patient, body: try Bodies.checkIn(patient: patient, carer: carer)
                ).id
            }
            for asker in AccessMatrixTests.askers { clients[asker] = try system.client(asker, receive: false) }
        }

        /// The answer `asker` gets at `door` about the patient of `column`, as the table writes it.
        func ask(door: String, column: String, asker: PersonID) throws -> String {
            let client = try #require(clients[asker])
            let isBridge = asker == "bridge"
            let carer: PersonID = "carer.ellis"
            let author = isBridge ? carer : asker
            let onBehalfOf = isBridge ? carer : nil
            func answer(_ body: () throws -> Void) -> String {
                refusal(body).map { String($0.rawValue) } ?? "ok"
            }
            func query(_ name: String, _ params: [String: String]) -> String {
                answer { _ = try client.query(name, params) }
            }
            switch door {
            case "Doors about no patient":
                switch column {
                case "status": return query("status", [:])
                case "directory": return query("directory", [:])
                case "audit.verify": return query("audit.verify", [:])
                case "own audit": return query("audit", ["person": asker.rawValue])
                case "notify": return query("notify", [:])
                case "notify.set for carer.ellis": return query("notify.set", ["for": "carer.ellis", "digest": "off"])
                default: throw Problem("unknown column \(column)")
                }
            default: break
            }
            let patient = try #require(patients[column], "unknown column \(column)")
            let plan = try #require(plans[patient])
            switch door {
            case "careteam": return query("careteam", ["patient": patient.digits])
            case "consent": return query("consent", ["patient": patient.digits])
            case "audit": return query("audit", ["patient": patient.digits])
            case "track": return query("track", ["id": plan])
            case "message": return query("message", isBridge ? ["id": plan, "as": carer.rawValue] : ["id": plan])
            case "message as sender": return query("message", ["id": plan, "as": "cpn.brown"])
            case "message with break glass":
                return query("message", ["id": plan, "breakGlass": "Collapsed at home; the ambulance crew needs the whole plan"])
            case "inbox":
                let lines = try client.query("inbox", isBridge ? ["for": carer.rawValue, "limit": "500"] : ["limit": "500"])
                let ids = try #require(try JSONSerialization.jsonObject(with: Data(lines)) as? [[String: Any]]).compactMap { $0["id"] as? String }
                return ids.contains(plan) ? "listed" : "absent"
            case "worklist":
                let referral = try #require(referrals[patient])
                var listed = false
                let result = answer { listed = try client.query(WorklistQuery(limit: 500)).contains { $0.id == referral } }
                return result == "ok" ? (listed ? "listed" : "absent") : result
            case "careteam.link":
                let params = ["patient": patient.digits, "member": "person:vsb.green"]
                let result = query("careteam.link", params)
                if result == "ok" { _ = try client.query("careteam.unlink", params) }
                return result
            case "consent directive":
                let id = "cell-\(UUID().uuidString.prefix(8).lowercased())"
                var grant = try jsonObject(
                    try Bodies.consent(id: id, patient: patient, actor: ["role": "person", "reference": "admin.it"], by: author))
                grant["performer"] = ["person": author.rawValue]
                let result = answer { try client.send(.consent, to: [], onBehalfOf: onBehalfOf, body: try Bodies.json(grant)) }
                if result == "ok" {
                    try client.send(
                        .consent, to: [],
                        body: try Bodies.json([
                            "action": "withdraw", "patient": patient.digits, "dateTime": "2026-11-23T10:00:00Z",
                            "performer": ["person": author.rawValue], "withdraws": id,
                        ]))
                }
                return result
            case "referral accepted":
                let referral = try brown.send(
                    .referral, to: [.team("west.social-care")], patient: patient, priority: .routine,
                    body: try Bodies.referral(patient: patient, from: "cpn.brown", role: .communityNurse, priority: .routine))
                let result = answer {
                    try client.send(
                        .referralEvent, to: [], correlation: referral.id, onBehalfOf: onBehalfOf,
                        body: try Bodies.event("accepted", referral: referral.id, by: author))
                }
                // Taking it linked the intake to the care team: put the patient back as the table has them.
                if result == "ok", patient == robson {
                    _ = try brown.query("careteam.unlink", ["patient": patient.digits, "member": "team:west.social-care"])
                }
                return result
            case "carer.checkin":
                return answer {
                    try client.send(
                        .carerCheckIn, to: [.careTeam(patient)], patient: patient, onBehalfOf: onBehalfOf,
                        body: try Bodies.checkIn(patient: patient, carer: author))
                }
            case "carer.checkin.ack":
                let checkIn = try #require(checkIns[patient])
                let acknowledgement = CheckInAcknowledgement(checkIn: checkIn, patient: patient, by: author, at: Timestamp(Date()))
                return answer {
                    try client.send(.checkInAcknowledgement, to: [], patient: patient, onBehalfOf: onBehalfOf, body: acknowledgement.encode())
                }
            case "carer.invite":
                let invite: [String: Any] = [
                    "carer": carer.rawValue, "patients": [patient.digits], "codeHash": String(repeating: "ab", count: 32),
                    "expires": "2099-01-01T00:00:00Z", "issuedBy": author.rawValue,
                ]
                return answer { try client.send(.carerInvite, to: [.person("bridge")], onBehalfOf: onBehalfOf, body: try Bodies.json(invite)) }
            default:
                throw Problem("access-policy.md names a door the test does not know: \(door)")
            }
        }
    }

    struct Problem: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
