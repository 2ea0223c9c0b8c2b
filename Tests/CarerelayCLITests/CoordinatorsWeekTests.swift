import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing

/// docs/cli.md, "A co-ordinator's week": Priya Patel writes Mrs Ellis's falls plan from a
/// template, shares it, changes it (Dr Khan and Jean each read their own change note), reads
/// and acknowledges Jean's check-in, and records the MDT's outcome with its actions. The same
/// commands as the document, in the same order.
@Suite struct CoordinatorsWeekTests {
    @Test func aCoordinatorsWeek() throws {
        let system = try CareSystem()
        try system.start()
        let priya = try system.cli("coord.patel")
        let folder = priya.workingDirectory
        // CARERELAY_TRANSCRIPT=FILE keeps every command and its output, to bring the document's
        // examples up to date.
        let transcript = ProcessInfo.processInfo.environment["CARERELAY_TRANSCRIPT"]
        func run(_ cli: CLI, _ arguments: [String], status: Int32 = 0) throws -> CLIResult {
            let result = try cli.run(arguments)
            #expect(result.status == status, "\(arguments.joined(separator: " ")): \(result)")
            if let transcript,
                let handle = FileHandle(forWritingAtPath: transcript)
                    ?? {
                        FileManager.default.createFile(atPath: transcript, contents: nil)
                        return FileHandle(forWritingAtPath: transcript)
                    }()
            {
                handle.seekToEndOfFile()
                handle.write(Data("$ carerelay \(arguments.joined(separator: " "))\n\(result.stdout)\(result.stderr)\n".utf8))
                handle.closeFile()
            }
            return result
        }

        // Monday: the care team, what Mrs Ellis agreed to, and a falls plan from the template.
        for member in ["team:west.social-care", "person:gp.khan", "person:carer.ellis", "team:west.mdt"] {
            _ = try run(priya, ["careteam", "link", "--patient", ellisNHS, "--member", member])
        }
        _ = try run(
            priya,
            ["consent", "record", "--patient", ellisNHS, "--actor", "relationship:carer", "--class", "general", "--class", "social-care"])
        _ = try run(priya, ["consent", "record", "--patient", ellisNHS, "--actor", "team:west.mdt", "--purpose", "mdt-discussion"])
        let made = try run(
            priya,
            [
                "careplan", "new", "--template", "falls-prevention", "--patient", "943 476 5919", "--title", "Mrs", "--given", "Margaret", "--family",
                "Ellis",
            ])
        #expect(made.stdout.contains("Wrote cp.9434765919.falls-prevention.yaml"), "\(made)")
        let file = folder.appendingPathComponent("cp.9434765919.falls-prevention.yaml")
        // She fills in what the visit found (every <placeholder>).
        let draft = try String(contentsOf: file, encoding: .utf8)
        try CarePlanAuthoringTests.fillPlaceholders(draft, with: "Two falls in October; no injury").write(to: file, atomically: true, encoding: .utf8)
        _ = try run(priya, ["careplan", "check", "--file", file.lastPathComponent])
        let shared = try run(priya, ["careplan", "share", "--file", file.lastPathComponent, "--to", "careteam:9434765919"])
        #expect(shared.stdout.contains("carer.ellis  deliver, redacted"), "\(shared)")

        // Tuesday: the stair rail is fitted and the GP stops a sleeping tablet.
        let editor = try CarePlanAuthoringTests.editor(
            """
            sed -i \\
              -e '/^- id: home-safety$/,/^- id:/ s/^\\(  text: \\).*/\\1A stair rail fitted on both sides; rugs removed from the hall./' \\
              -e '/^- id: home-safety$/a\\  changeNote: Stair rail fitted; rugs removed.' \\
              -e '/^- id: medication$/,/^- id:/ s/^\\(  text: \\).*/\\1Zopiclone stopped (drowsy in the mornings); Adcal-D3 twice daily./' \\
              -e '/^- id: medication$/a\\  changeNote: Zopiclone stopped.' \\
              -e 's/^changeSummary: .*/changeSummary: Stair rail fitted; zopiclone stopped./' "$1"
            """, in: folder, named: "tuesday.sh")
        let edited = try run(
            priya.with(["EDITOR": editor]),
            ["careplan", "edit", "--patient", ellisNHS, "--plan", "cp.9434765919.falls-prevention", "--to", "careteam:9434765919"])
        #expect(edited.stdout.contains("version 2"), "\(edited)")
        // Each reads the change note of what they may see.
        let gp = try run(try system.cli("gp.khan"), ["careplan", "show", "--patient", ellisNHS])
        #expect(gp.stdout.contains("Stair rail fitted; zopiclone stopped."), "\(gp)")
        #expect(gp.stdout.contains("Changed in this version: Zopiclone stopped."), "\(gp)")
        let jean = try run(try system.cli("carer.ellis"), ["careplan", "show", "--patient", ellisNHS])
        #expect(jean.stdout.contains("Changes in the sections shared with you: Safety at home: Stair rail fitted; rugs removed."), "\(jean)")
        #expect(!jean.stdout.contains("opiclone"), "the medication section and its note are not Jean's: \(jean)")
        let diff = try run(try system.cli("gp.khan"), ["careplan", "diff", "--patient", ellisNHS])
        #expect(diff.stdout.contains("CHANGED home-safety"), "\(diff)")

        // Wednesday: Jean checks in from the carer's web page (here, as the bridge sends it).
        let keys = try #require(system.keys["carer.ellis"])
        let carer = try CareRelayClient(
            configuration: ClientConfiguration(endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: keys))
        var checkIn = try Fixtures.example("carer.checkin", "valid-night-checkin-urgent.json")
        checkIn["carer"] = "carer.ellis"
        _ = try carer.send(
            SendHeader(key: UUID().uuidString, kind: .carerCheckIn, to: [.person("coord.patel")], patient: try NHSNumber(validating: ellisNHS)),
            body: [UInt8](try JSONSerialization.data(withJSONObject: checkIn)))
        let unread = try run(priya, ["checkin", "list", "--unread"])
        let id = try #require(
            capture(#"(m[0-9a-z]+-[0-9a-z]+)\s*$"#, in: unread.stdout.split(separator: "\n").last.map(String.init) ?? ""), "\(unread)")
        let read = try run(priya, ["checkin", "show", id])
        #expect(read.stdout.contains("Body temperature: 38.1 °C"), "\(read)")
        _ = try run(priya, ["checkin", "acknowledge", id, "--note", "Thank you, Jean. The district nurse will call this morning."])
        #expect(try run(priya, ["checkin", "list", "--unread"]).stdout.contains("No check-ins match."))

        // Thursday: the MDT discusses her; the outcome and actions go out with the agenda.
        let agenda = "thu.json"
        _ = try run(
            priya,
            [
                "mdt", "create", "--team", "west.mdt", "--start", Timestamp(Date().addingTimeInterval(-3600)).text, "--location",
                "Pallion Health Centre, room 2", "--meeting", "west.mdt.thursday", "--output", agenda,
            ])
        _ = try run(
            priya,
            [
                "mdt", "add-item", "--file", agenda, "--patient", ellisNHS, "--reason", "Two falls in October; carer under strain", "--owner",
                "coord.patel",
            ])
        _ = try run(priya, ["mdt", "publish", "--file", agenda])
        _ = try run(
            priya,
            [
                "mdt", "outcome", "--file", agenda, "--item", "1", "--decision", "Falls clinic referral; carer's assessment offered to Jean",
                "--action", "Refer to the falls clinic|nurse.ali|2026-12-09", "--action", "Offer Jean a carer's assessment|coord.patel|2026-12-04",
            ])
        _ = try run(priya, ["mdt", "update", "--file", agenda])
        let mine = try run(priya, ["mdt", "actions", "--mine"])
        #expect(mine.stdout.contains("Offer Jean a carer's assessment"), "\(mine)")
        #expect(!mine.stdout.contains("falls clinic"), "\(mine)")
        let yusuf = try run(try system.cli("nurse.ali"), ["mdt", "actions", "--mine"])
        #expect(yusuf.stdout.contains("Refer to the falls clinic"), "\(yusuf)")
    }
}
