import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// docs/operations.md, "People joining, moving and leaving: a council's first week": the
/// council's administrator imports 200 staff from the workforce system's CSV, three of them
/// enrol by code, a care co-ordinator invites two carers, one social worker moves team and one
/// leaves. The same commands as the document, in the same order, with the real `carerelay`.
@Suite struct CouncilsFirstWeekTests {
    /// What the site's operator starts with: the organisations, localities and teams, the
    /// council's administrator, one care co-ordinator and the carers' bridge. Nobody else.
    static let seed = Directory(
        organisations: [
            .init(id: "sunderland-council", name: "Sunderland City Council adult social care"),
            .init(id: "sunderland-ccg", name: "Sunderland CCG"),
        ],
        localities: [.init(id: "west", name: "Sunderland West"), .init(id: "east", name: "Sunderland East")],
        teams: [
            .init(
                id: "west.social-care", name: "West social care intake", locality: "west", organisation: "sunderland-council",
                coordinator: "coord.patel"),
            .init(id: "west.reablement", name: "West reablement", locality: "west", organisation: "sunderland-council"),
            .init(id: "east.social-care", name: "East social care intake", locality: "east", organisation: "sunderland-council"),
            .init(id: "west.mdt", name: "West Wednesday MDT", kind: .mdt, locality: "west", organisation: "sunderland-ccg"),
        ],
        people: [
            .init(
                id: "admin.council", name: "Council CareRelay administrator", roles: [.administrator], organisation: "sunderland-council", teams: [],
                key: nil),
            .init(
                id: "coord.patel", name: "Priya Patel", roles: [.careCoordinator], organisation: "sunderland-council",
                teams: ["west.social-care", "west.mdt"], key: nil),
            .init(id: "bridge", name: "CareRelay carer bridge", roles: [.gateway], teams: [], key: nil, actsFor: []),
        ])

    /// The workforce system's export: 200 staff, the first three named as in the document.
    static func staffFile() -> String {
        var lines = ["name,email,role,team,organisation code"]
        lines.append("Grace Okafor,grace.okafor@sunderland.gov.example,Social Worker,west.social-care,sunderland-council")
        lines.append("Daniel Lee,daniel.lee@sunderland.gov.example,Social Worker,west.social-care;west.mdt,sunderland-council")
        lines.append("Sam New,sam.new@sunderland.gov.example,Occupational therapist,west.reablement,sunderland-council")
        let roles = ["Social Worker", "Therapist", "Care Coordinator"]
        let teams = ["west.social-care", "west.reablement", "east.social-care"]
        for n in 4...200 {
            lines.append("Staff Member \(n),staff.\(n)@sunderland.gov.example,\(roles[n % 3]),\(teams[n % 3]),sunderland-council")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test func aCouncilsFirstWeek() throws {
        let system = try CareSystem(seed: Self.seed, keyed: ["admin.council", "coord.patel", "bridge"])
        try system.start()
        let admin = try system.cli("admin.council")
        let transcript = ProcessInfo.processInfo.environment["CARERELAY_TRANSCRIPT"]
        func run(_ cli: CLI, _ arguments: [String], status: Int32 = 0) throws -> CLIResult {
            let result = try cli.run(arguments)
            #expect(result.status == status, "\(arguments.joined(separator: " ")): \(result)")
            if let transcript {
                if !FileManager.default.fileExists(atPath: transcript) { FileManager.default.createFile(atPath: transcript, contents: nil) }
                if let handle = FileHandle(forWritingAtPath: transcript) {
                    handle.seekToEndOfFile()
                    handle.write(Data("$ carerelay \(arguments.joined(separator: " "))\n\(result.stdout)\(result.stderr)\n".utf8))
                    handle.closeFile()
                }
            }
            return result
        }

        // Monday: a first export with two bad rows is refused whole, each row named.
        var draft = Self.staffFile().components(separatedBy: "\n")
        draft[5] = "Staff Member 5,staff.5@sunderland.gov.example,Care Coordinator,west.intake,sunderland-council"
        draft[9] = "Staff Member 9,staff.9 at sunderland.gov.example,Social Worker,west.social-care,sunderland-council"
        try draft.joined(separator: "\n").write(
            to: admin.workingDirectory.appendingPathComponent("staff-draft.csv"), atomically: true, encoding: .utf8)
        let refused = try run(admin, ["admin", "import", "staff-draft.csv"], status: 64)
        #expect(refused.stderr.contains("row 6, team: 'west.intake' is not a team in the directory"), "\(refused)")
        #expect(refused.stderr.contains("row 10, email:"), "\(refused)")
        #expect(try DirectoryListing.people(of: system, admin: "admin.council").count == 3)
        // The corrected file, checked first, then imported.
        try Self.staffFile().write(to: admin.workingDirectory.appendingPathComponent("staff.csv"), atomically: true, encoding: .utf8)
        let dry = try run(admin, ["admin", "import", "staff.csv", "--dry-run"])
        #expect(dry.stdout.contains("Dry run: nothing was saved"), "\(dry)")
        #expect(dry.stdout.contains("add person grace.okafor (Grace Okafor): social-worker; teams west.social-care"), "\(dry)")
        #expect(try DirectoryListing.people(of: system, admin: "admin.council").count == 3)
        let imported = try run(admin, ["admin", "import", "staff.csv"])
        #expect(imported.stdout.contains("Saved as directory revision 2"), "\(imported)")
        let listing = try DirectoryListing.people(of: system, admin: "admin.council")
        #expect(listing.count == 203)
        #expect(listing.first { $0.id == "sam.new" }?.roles == [.therapist])
        #expect(listing.filter { $0.enrolled == false }.count == 200)

        // Tuesday: three of them enrol, each on their own computer.
        for person in ["grace.okafor", "daniel.lee", "sam.new"] {
            let issued = try run(admin, ["admin", "enrol", person])
            let code = try #require(issued.stdout.components(separatedBy: "): ").dropFirst().first?.prefix(14).description, "\(issued)")
            let own = try system.cli(PersonID(person))
            let enrolled = try run(own, ["enrol", code, "--endpoint", system.endpoint, "--broker-key", system.brokerKeyPath])
            #expect(enrolled.stdout.contains("Enrolled as"), "\(enrolled)")
            let status = try run(own, ["status"])
            #expect(status.stdout.contains("Broker"), "\(status)")
            // A code works once.
            let again = try run(
                try system.cli("someone.else"), ["enrol", code, "--endpoint", system.endpoint, "--broker-key", system.brokerKeyPath], status: 65)
            #expect(again.stderr.contains("has been used"), "\(again)")
        }

        // Wednesday: Priya Patel invites two carers; no IT request, and they need no key.
        let priya = try system.cli("coord.patel")
        _ = try run(priya, ["careteam", "link", "--patient", ellisNHS, "--member", "person:coord.patel"])
        _ = try run(priya, ["careteam", "link", "--patient", robsonNHS, "--member", "person:coord.patel"])
        let jean = try run(priya, ["carer", "invite", "--name", "Jean Ellis", "--patient", ellisNHS])
        #expect(jean.stdout.contains("Invitation code for carer.jean.ellis (new in the directory"), "\(jean)")
        let alan = try run(priya, ["carer", "invite", "--name", "Alan Robson", "--patient", robsonNHS])
        #expect(alan.stdout.contains("Invitation code for carer.alan.robson"), "\(alan)")
        let carers = try run(priya, ["directory", "people", "--role", "carer"])
        #expect(carers.stdout.contains("carer.jean.ellis") && carers.stdout.contains("web page"), "\(carers)")
        let team = try run(priya, ["careteam", "show", "--patient", ellisNHS])
        #expect(team.stdout.contains("person:carer.jean.ellis"), "\(team)")

        // Thursday: Daniel Lee moves to reablement; referrals to the intake stop reaching him.
        let moved = try run(admin, ["admin", "person", "move", "daniel.lee", "--team", "west.reablement", "--team", "west.mdt"])
        #expect(moved.stdout.contains("change person daniel.lee: teams west.reablement, west.mdt"), "\(moved)")
        let daniel = try run(try system.cli("daniel.lee"), ["directory", "show", "person:daniel.lee"])
        #expect(daniel.stdout.contains("West reablement"), "\(daniel)")

        // Friday: Sam New leaves. Their key stops working at once.
        let removed = try run(admin, ["admin", "person", "remove", "sam.new"])
        #expect(removed.stdout.contains("remove person sam.new"), "\(removed)")
        let gone = try run(try system.cli("sam.new"), ["status"], status: 77)
        #expect(gone.stderr.contains("not in the directory"), "\(gone)")
        // Everything the week changed is in the audit trail, under the administrator's name.
        let audit = try run(admin, ["audit", "query", "--person", "admin.council", "--limit", "1000"])
        #expect(audit.stdout.contains("remove person sam.new"), "\(audit)")
        #expect(audit.stdout.contains("enrolment code issued for grace.okafor"), "\(audit)")
    }
}

extension DirectoryListing {
    /// The people the broker lists now, asked as `admin`.
    static func people(of system: CareSystem, admin: PersonID) throws -> [DirectoryListing.Person] {
        let client = try CareRelayClient(
            configuration: ClientConfiguration(
                endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: try #require(system.keys[admin]), attempts: 1))
        return try client.query(DirectoryQuery()).people
    }
}
