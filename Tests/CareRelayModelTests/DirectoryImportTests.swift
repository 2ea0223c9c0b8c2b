import Foundation
import Testing

@testable import CareRelayModel

@Suite struct DirectoryImportTests {
    let teams: Set<TeamID> = ["west.social-care", "west.reablement", "west.mdt"]
    let organisations: Set<OrganisationID> = ["sunderland-council"]
    let grace = DirectoryImport.Existing(
        id: "grace.okafor", name: "Grace Okafor", email: "grace.okafor@sunderland.gov.example", roles: [.socialWorker],
        teams: ["west.social-care"], organisation: "sunderland-council")

    @Test("quoted fields, a byte order mark and CRLF are read as RFC 4180 says")
    func csvRecords() {
        let text = "\u{FEFF}name,email\r\n\"Lee, Daniel\",\"said \"\"hi\"\"\"\r\n\"two\nlines\",x\r\n\r\n"
        #expect(CSV.records(text) == [["name", "email"], ["Lee, Daniel", "said \"hi\""], ["two\nlines", "x"], [""]])
    }

    @Test("roles are read as people write them")
    func roles() {
        #expect(DirectoryImport.role("Social Worker") == .socialWorker)
        #expect(DirectoryImport.role("social_worker") == .socialWorker)
        #expect(DirectoryImport.role("GP") == .gp)
        #expect(DirectoryImport.role("Occupational therapist") == .therapist)
        #expect(DirectoryImport.role("Care Co-ordinator") == .careCoordinator)
        #expect(DirectoryImport.role("Wizard") == nil)
    }

    @Test("new people are added, a move is a change of teams, and the unchanged change nothing")
    func planning() throws {
        let text = """
            Name,Work Email,Role,Team,Organisation Code
            Grace Okafor,GRACE.OKAFOR@sunderland.gov.example,Social Worker,west.social-care;west.mdt,sunderland-council
            Sam New,sam.new@sunderland.gov.example,Occupational therapist,west.reablement,sunderland-council

            """
        let plan = try DirectoryImport.plan(csv: text, existing: [grace], teams: teams, organisations: organisations)
        #expect(plan.rows == [2, 3])
        #expect(plan.unchanged == 0)
        #expect(plan.changes[0] == .changePerson(.init(id: "grace.okafor", teams: ["west.social-care", "west.mdt"])))
        #expect(
            plan.changes[1]
                == .addPerson(
                    Directory.Person(
                        id: "sam.new", name: "Sam New", roles: [.therapist], organisation: "sunderland-council", teams: ["west.reablement"], key: nil,
                        email: "sam.new@sunderland.gov.example")))
        let same =
            "name,email,role,team,organisation\nGrace Okafor,grace.okafor@sunderland.gov.example,social-worker,west.social-care,sunderland-council\n"
        let nothing = try DirectoryImport.plan(csv: same, existing: [grace], teams: teams, organisations: organisations)
        #expect(nothing.changes.isEmpty && nothing.unchanged == 1)
    }

    @Test("a person the directory holds without an email is matched by id and given the file's email")
    func matchingByID() throws {
        var seeded = grace
        seeded.email = nil
        let text =
            "name,email,role,team,organisation\nGrace Okafor,grace.okafor@sunderland.gov.example,social-worker,west.social-care,sunderland-council\n"
        let plan = try DirectoryImport.plan(csv: text, existing: [seeded], teams: teams, organisations: organisations)
        #expect(plan.changes == [.changePerson(.init(id: "grace.okafor", email: "grace.okafor@sunderland.gov.example"))])
        // Someone else, with an email of their own, under that id: a row error, not a merge.
        let other =
            "name,email,role,team,organisation,id\nGrace Okafor,g.okafor@sunderland.gov.example,social-worker,,sunderland-council,grace.okafor\n"
        #expect(throws: DirectoryImport.Refusal.self) {
            try DirectoryImport.plan(csv: other, existing: [grace], teams: teams, organisations: organisations)
        }
    }

    @Test("any bad row refuses the whole file, and every bad row is named with its field")
    func badRows() {
        let text = """
            name,email,role,team,organisation
            Sam New,sam.new@sunderland.gov.example,therapist,west.reablement,sunderland-council
            Ann Bad,not-an-email,therapist,west.nowhere,sunderland-council
            Bob Worse,bob@sunderland.gov.example,gateway,west.reablement,other-council
            Sam Again,sam.new@sunderland.gov.example,therapist,west.reablement,sunderland-council
            """
        #expect {
            try DirectoryImport.plan(csv: text, existing: [grace], teams: teams, organisations: organisations)
        } throws: { error in
            guard let refusal = error as? DirectoryImport.Refusal else { return false }
            let named = refusal.problems.map { "\($0.row) \($0.field)" }
            return named == ["3 email", "3 team", "4 role", "4 organisation", "5 email", "5 id"]
        }
        #expect(throws: DirectoryImport.Refusal.self) {
            try DirectoryImport.plan(csv: "name,email,rôle\n", existing: [], teams: teams, organisations: organisations)
        }
    }

    @Test("--remove-missing removes the file's organisation's people it does not name, never the importer")
    func removeMissing() throws {
        let admin = DirectoryImport.Existing(
            id: "admin.council", name: "Admin", email: nil, roles: [.administrator], teams: [], organisation: "sunderland-council")
        let text = "name,email,role,team,organisation\nSam New,sam.new@sunderland.gov.example,therapist,west.reablement,sunderland-council\n"
        let plan = try DirectoryImport.plan(
            csv: text, existing: [grace, admin], teams: teams, organisations: organisations, removeMissing: true, importer: "admin.council")
        #expect(plan.changes.last == .removePerson("grace.okafor"))
        #expect(!plan.changes.contains(.removePerson("admin.council")))
    }
}

@Suite struct DirectoryChangeTests {
    let directory = Directory(
        organisations: [.init(id: "org", name: "Org")], localities: [.init(id: "west", name: "West")],
        teams: [.init(id: "west.intake", name: "Intake", locality: "west", coordinator: "coord")],
        people: [
            .init(id: "coord", name: "Coordinator", roles: [.careCoordinator], teams: ["west.intake"], key: nil),
            .init(id: "carer.a", name: "Carer", roles: [.carer], teams: [], key: nil),
            .init(id: "bridge", name: "Bridge", roles: [.gateway], teams: [], key: String(repeating: "b", count: 40), actsFor: ["carer.a"]),
        ])

    @Test("changes apply in order and the result is checked whole, naming the change")
    func applying() throws {
        let after = try directory.applying([
            .addPerson(.init(id: "sw.new", name: "Sam", roles: [.socialWorker], teams: ["west.intake"], key: nil)),
            .changeTeam(.init(id: "west.intake", coordinator: "sw.new")),
            .removePerson("coord"),
            .removePerson("carer.a"),
        ])
        #expect(after.people.map(\.id) == ["bridge", "sw.new"])
        // A carer removed is no longer acted for.
        #expect(after.people.first { $0.id == "bridge" }?.actsFor == [])
        #expect(
            throws: DirectoryChangeError(
                index: 0, "person 'coord' co-ordinates team 'west.intake': name another co-ordinator for the team (team.change) first")
        ) {
            try directory.applying([.removePerson("coord")])
        }
        #expect(throws: DirectoryChangeError(index: 1, "team 'west.nowhere' of person 'x' is not in the directory")) {
            try directory.applying([
                .changePerson(.init(id: "coord", name: "C")), .addPerson(.init(id: "x", name: "X", roles: [.gp], teams: ["west.nowhere"], key: nil)),
            ])
        }
    }

    @Test("the wire form of each change reads back as itself")
    func wireForm() throws {
        let changes: [DirectoryChange] = [
            .addPerson(.init(id: "x", name: "X", roles: [.gp], teams: [], key: nil, email: "x@example.org")),
            .changePerson(.init(id: "x", teams: ["west.intake"])), .removePerson("x"),
            .addTeam(.init(id: "t", name: "T", locality: "west")), .changeTeam(.init(id: "t", hours: "mon-fri 09:00-17:00")),
            .setKey("x", key: nil),
        ]
        let data = try JSONEncoder().encode(changes)
        #expect(try JSONDecoder().decode([DirectoryChange].self, from: data) == changes)
        let sorted = JSONEncoder()
        sorted.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try sorted.encode([DirectoryChange.removePerson("x")]), as: UTF8.self) == #"[{"id":"x","op":"person.remove"}]"#)
    }

    @Test("an id is made from the email, else the name")
    func suggestedIDs() {
        #expect(Directory.suggestedID(name: "Sam New", email: "Sam.New@council.example") == "sam.new")
        #expect(Directory.suggestedID(name: "Jean O'Neill", email: nil) == "jean.o.neill")
    }
}
