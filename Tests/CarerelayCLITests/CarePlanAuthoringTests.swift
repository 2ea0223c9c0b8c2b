import Foundation
import Testing

/// Writing care plans: from a template (`careplan new`), in an editor (`careplan edit`), and
/// reading them (`careplan show`, `careplan diff`), with the real client against a real broker.
@Suite struct CarePlanAuthoringTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let templateFolder = repository.appendingPathComponent("Templates/careplans")

    static func templateFiles() throws -> [String: String] {
        let names = try FileManager.default.contentsOfDirectory(atPath: templateFolder.path).filter { $0.hasSuffix(".yaml") }
        var files: [String: String] = [:]
        for name in names {
            files[String(name.dropLast(5))] = try String(contentsOf: templateFolder.appendingPathComponent(name), encoding: .utf8)
        }
        return files
    }

    /// Each `<placeholder>` replaced, as an author would.
    static func fillPlaceholders(_ text: String, with value: String = "Filled in at the home visit") throws -> String {
        let regex = try NSRegularExpression(pattern: "<[A-Za-z][^<>\\n]*>")
        return regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: value)
    }

    /// An editor for the tests: a shell script run as `$EDITOR FILE`.
    static func editor(_ script: String, in folder: URL, named name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try Data("#!/bin/sh\nset -e\n\(script)\n".utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        return url.path
    }

    /// Mrs Ellis's care team (the community nurses and her GP) and version 1 of her home plan,
    /// shared by nurse.ali with Dr Khan.
    static func sharedPlan() throws -> (CareSystem, CLI) {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "person:gp.khan"]).status == 0)
        let v1 = try Fixtures.carePlan(version: 1, wellbeingText: "Two calls a day.", in: nurse.workingDirectory)
        let shared = try nurse.run(["careplan", "share", "--file", v1, "--to", "person:gp.khan"])
        #expect(shared.status == 0, "\(shared)")
        return (system, nurse)
    }

    // MARK: Templates

    @Test func builtInTemplatesAreListedAndEqualTheirFiles() throws {
        let system = try CareSystem()
        let cli = try system.cli("nurse.ali")
        let files = try Self.templateFiles()
        #expect(Set(files.keys).isSuperset(of: ["falls-prevention", "discharge-to-assess", "carer-support", "end-of-life"]))
        let listed = try cli.run(["careplan", "templates", "--json"])
        #expect(listed.status == 0, "\(listed)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: String]], "\(listed)")
        #expect(Set(rows.compactMap { $0["name"] }) == Set(files.keys), "the client ships exactly the files in Templates/careplans")
        #expect(rows.allSatisfy { $0["source"] == "built in" && ($0["description"]?.count ?? 0) > 20 }, "\(rows)")
        for (name, text) in files {
            let shown = try cli.run(["careplan", "templates", "--show", name])
            #expect(shown.status == 0, "\(shown)")
            #expect(shown.stdout == text, "the client's copy of \(name) differs from Templates/careplans/\(name).yaml: run Templates/careplans/embed")
        }
        let table = try cli.run(["careplan", "templates"])
        #expect(table.stdout.contains("falls-prevention") && table.stdout.contains("built in"), "\(table)")
    }

    @Test func aPlanFromEachTemplateIsRefusedWithPlaceholdersAndSharedOnceTheyAreFilled() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "team:west.nursing"]).status == 0)
        #expect(try nurse.run(["careteam", "link", "--patient", ellisNHS, "--member", "person:gp.khan"]).status == 0)
        for name in try Self.templateFiles().keys.sorted() {
            let made = try nurse.run([
                "careplan", "new", "--template", name, "--patient", "943 476 5919", "--title", "Mrs", "--given", "Margaret", "--family", "Ellis",
            ])
            #expect(made.status == 0, "\(name): \(made)")
            let file = "cp.\(ellisNHS).\(name).yaml"
            #expect(made.stdout.contains("Wrote \(file)") && made.stdout.contains("placeholders <...> to fill in"), "\(made)")
            let path = nurse.workingDirectory.appendingPathComponent(file)
            let text = try String(contentsOf: path, encoding: .utf8)
            for filled in [
                "plan: cp.\(ellisNHS).\(name)", "version: 1", "status: active", "intent: plan", "patient: '\(ellisNHS)'", "prefix: Mrs",
                "given: [Margaret]", "family: Ellis", "author: nurse.ali", "team: west.nursing", "changeSummary: First version",
                "kind: contingency",
            ] {
                #expect(text.contains(filled), "\(name) lacks \(filled):\n\(text)")
            }

            let refused = try nurse.run(["careplan", "share", "--file", file, "--to", "person:gp.khan"])
            #expect(refused.status == 64, "\(name): \(refused)")
            let firstLine = try #require(capture(#"line (\d+), "#, in: refused.stderr).flatMap { Int($0) }, "\(refused)")
            let lines = text.components(separatedBy: "\n")
            try #require((1...lines.count).contains(firstLine), "\(refused)")
            #expect(lines[firstLine - 1].contains("<"), "line \(firstLine) holds the placeholder: \(refused)")
            #expect(refused.stderr.contains("replace the placeholder <"), "\(refused)")
            #expect(refused.stderr.contains("Nothing was sent"), "\(refused)")

            try Data(try Self.fillPlaceholders(text).utf8).write(to: path)
            let checked = try nurse.run(["careplan", "check", "--file", file])
            #expect(checked.status == 0, "\(name): \(checked)")
            let shared = try nurse.run(["careplan", "share", "--file", file, "--to", "person:gp.khan"])
            #expect(shared.status == 0, "\(name): \(shared)")
            #expect(shared.stdout.contains("Shared care plan cp.\(ellisNHS).\(name) version 1"), "\(shared)")
        }
        let again = try nurse.run(["careplan", "new", "--template", "end-of-life", "--patient", ellisNHS])
        #expect(again.status == 64 && again.stderr.contains("already exists"), "never overwritten without --force: \(again)")
        let forced = try nurse.run(["careplan", "new", "--template", "end-of-life", "--patient", ellisNHS, "--force"])
        #expect(forced.status == 64 && forced.stderr.contains("already exists (version 1"), "the broker holds it: edit it instead: \(forced)")
        let unknown = try nurse.run(["careplan", "new", "--template", "no-such", "--patient", ellisNHS])
        #expect(unknown.status == 64 && unknown.stderr.contains("no care plan template named 'no-such'"), "\(unknown)")
    }

    @Test func aSiteTemplateFolderAddsAndReplacesTemplates() throws {
        let system = try CareSystem()
        try system.start()
        let nurse = try system.cli("nurse.ali")
        let site = nurse.workingDirectory.appendingPathComponent("site-templates")
        try FileManager.default.createDirectory(at: site, withIntermediateDirectories: true)
        let leg = """
            template:
              description: Leg ulcer care by the Sunderland West leg club
              reviewWeeks: 8
            title: Leg ulcer care
            sections:
              - id: leg-ulcer
                title: Leg ulcer
                text: <Which leg, size and how long it has been there>
                labels: [general]
                activities:
                  - description: Compression bandaging at the leg club
                    status: scheduled
                    performer:
                      role: community-nurse
                      display: West leg club
                    schedule: Tuesdays 10:00
              - id: if-it-gets-worse
                kind: contingency
                title: If it gets worse
                text: If the leg is hot, red or more painful, call the district nurses the same day.
                labels: [general]

            """
        try Data(leg.utf8).write(to: site.appendingPathComponent("leg-ulcer.yaml"))
        try Data("template:\n  description: The site's own\ntitle: Ours\nsections: []\n".utf8).write(
            to: site.appendingPathComponent("end-of-life.yaml"))

        let listed = try nurse.run(["careplan", "templates", "--templates", site.path])
        #expect(listed.status == 0, "\(listed)")
        let legLine = try #require(listed.stdout.components(separatedBy: "\n").first { $0.hasPrefix("leg-ulcer") }, "\(listed)")
        #expect(legLine.contains(site.path) && legLine.contains("Leg ulcer care by the Sunderland West leg club"), "\(legLine)")
        let endOfLife = try #require(listed.stdout.components(separatedBy: "\n").first { $0.hasPrefix("end-of-life") }, "\(listed)")
        #expect(endOfLife.contains("The site's own"), "a site's file replaces the built-in one: \(endOfLife)")
        #expect(listed.stdout.contains("falls-prevention"), "the other built-in ones stay: \(listed)")
        let byEnvironment = try nurse.with(["CARERELAY_TEMPLATES": site.path]).run(["careplan", "templates"])
        #expect(byEnvironment.stdout.contains("leg-ulcer"), "\(byEnvironment)")
        #expect(!(try nurse.run(["careplan", "templates"])).stdout.contains("leg-ulcer"))

        let made = try nurse.run(["careplan", "new", "--template", "leg-ulcer", "--templates", site.path, "--patient", ellisNHS])
        #expect(made.status == 0, "\(made)")
        let text = try String(contentsOf: nurse.workingDirectory.appendingPathComponent("cp.\(ellisNHS).leg-ulcer.yaml"), encoding: .utf8)
        #expect(text.contains("display: West leg club") && text.contains("author: nurse.ali"), "\(text)")
        #expect(!text.contains("reviewWeeks"), "the template's own description stays out of the plan: \(text)")

        // A site template that cannot make a plan is reported by its own line.
        let broken = try nurse.run(["careplan", "new", "--template", "end-of-life", "--templates", site.path, "--patient", ellisNHS])
        #expect(broken.status == 64, "\(broken)")
        #expect(broken.stderr.contains("line 4, sections") && broken.stderr.contains("does not make a valid care plan"), "\(broken)")
    }

    // MARK: Editing

    @Test func editingSendsTheNextVersionWithItsNotesAndTheRecipientSeesThem() throws {
        let (system, nurse) = try Self.sharedPlan()
        let script = try Self.editor(
            #"""
            sed -i -e 's/^\( *\)text: Two calls a day\.$/\1text: Three calls a day, with an evening visit.\n\1changeNote: Evening visit added./' \
                -e 's/^changeSummary: .*/changeSummary: Evening visit added to the daily calls/' "$1"
            """#, in: nurse.workingDirectory, named: "add-evening-visit.sh")
        let edited = try nurse.with(["EDITOR": script]).run(["careplan", "edit", "--patient", ellisNHS, "--to", "person:gp.khan"])
        #expect(edited.status == 0, "\(edited)")
        #expect(edited.stdout.contains("Shared care plan cp.\(ellisNHS).home version 2"), "\(edited)")

        let mine = try nurse.run(["careplan", "show", "--patient", ellisNHS, "--json"])
        let plan = try #require(try JSONSerialization.jsonObject(with: Data(mine.stdout.utf8)) as? [String: Any], "\(mine)")
        #expect(plan["version"] as? Int == 2 && plan["author"] as? String == "nurse.ali", "\(plan)")
        #expect(plan["changeSummary"] as? String == "Evening visit added to the daily calls")
        let sections = try #require(plan["sections"] as? [[String: Any]])
        #expect(sections.first { $0["id"] as? String == "daily-living" }?["changeNote"] as? String == "Evening visit added.")
        #expect(sections.filter { $0["changeNote"] != nil }.count == 1, "version 1's notes are cleared: \(sections)")

        let gp = try system.cli("gp.khan")
        let diff = try gp.run(["careplan", "diff", "--patient", ellisNHS])
        #expect(diff.status == 0, "\(diff)")
        #expect(diff.stdout.contains("version 1 -> 2") && diff.stdout.contains("CHANGED daily-living (Daily living)"), "\(diff)")
        #expect(diff.stdout.contains("note: Evening visit added."), "\(diff)")
        #expect(diff.stdout.contains("- Two calls a day.") && diff.stdout.contains("+ Three calls a day, with an evening visit."), "\(diff)")
        #expect(!diff.stdout.contains("CHANGED medication"), "only what changed: \(diff)")
        let show = try gp.run(["careplan", "show", "--patient", ellisNHS])
        #expect(show.status == 0, "\(show)")
        #expect(show.stdout.contains("Care plan cp.\(ellisNHS).home, version 2 (the latest you hold): active"), "\(show)")
        #expect(show.stdout.contains("Changed in this version: Evening visit added."), "\(show)")
        #expect(show.stdout.contains("1 section is not shared with you."), "the GP's copy leaves out the mental health section: \(show)")
        #expect(show.stdout.contains("Changes in the sections shared with you: Daily living: Evening visit added"), "\(show)")
        #expect(show.stdout.contains("If things go wrong [contingency]  CONTINGENCY; general"), "\(show)")
        let first = try gp.run(["careplan", "show", "--patient", ellisNHS, "--version", "1"])
        #expect(first.stdout.contains("   Two calls a day.") && !first.stdout.contains("(the latest you hold)"), "\(first)")
    }

    @Test func anEditThatBreaksAFieldIsReportedByLineAndFieldAndNothingIsSent() throws {
        let (system, nurse) = try Self.sharedPlan()
        // The system owns the folders the client works in: it must outlive every command.
        defer { withExtendedLifetime(system) {} }
        let lineFile = nurse.workingDirectory.appendingPathComponent("broken-line")
        let script = try Self.editor(
            """
            sed -i -e '0,/status: in-progress/s//status: started/' -e 's/^changeSummary: .*/changeSummary: Calls changed/' "$1"
            grep -n 'status: started' "$1" | cut -d: -f1 > '\(lineFile.path)'
            """, in: nurse.workingDirectory, named: "break-status.sh")
        let broken = try nurse.with(["EDITOR": script]).run(["careplan", "edit", "--patient", ellisNHS, "--to", "person:gp.khan"])
        #expect(broken.status == 64, "\(broken)")
        let line = try String(contentsOf: lineFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!line.isEmpty)
        #expect(broken.stderr.contains("line \(line), sections[0].activities[0].status: "), "line \(line): \(broken)")
        #expect(broken.stderr.contains("started"), "\(broken)")
        #expect(broken.stderr.contains("Your edit is kept in") && broken.stderr.contains("Nothing was sent"), "\(broken)")

        // A section changed without a note saying so.
        let unnoted = try Self.editor(
            """
            sed -i -e 's/^\\( *\\)text: Alendronic acid stopped.*/\\1text: Adcal-D3 twice daily from the blister pack./' \
                -e 's/^changeSummary: .*/changeSummary: Medication simplified/' "$1"
            """, in: nurse.workingDirectory, named: "no-note.sh")
        let refused = try nurse.with(["EDITOR": unnoted]).run(["careplan", "edit", "--patient", ellisNHS, "--to", "person:gp.khan"])
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.stderr.contains("sections[1]: section medication (Medication): its text changed; add a changeNote"), "\(refused)")

        // Saved as it was: nothing to send.
        let untouched = try nurse.with(["EDITOR": "true"]).run(["careplan", "edit", "--patient", ellisNHS, "--to", "person:gp.khan"])
        #expect(untouched.status == 64 && untouched.stderr.contains("you changed nothing"), "\(untouched)")

        let versions = try nurse.run(["careplan", "versions", "--patient", ellisNHS, "--json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(versions.stdout.utf8)) as? [[String: Any]], "\(versions)")
        #expect(rows.count == 1, "nothing was sent: \(rows)")
    }

    @Test func aCopyRedactedForYouCannotBeEdited() throws {
        let (system, _) = try Self.sharedPlan()
        let gp = try system.cli("gp.khan")
        let refused = try gp.with(["EDITOR": "false"]).run(["careplan", "edit", "--patient", ellisNHS, "--to", "careteam:\(ellisNHS)"])
        #expect(refused.status == 64, "\(refused)")
        #expect(refused.stderr.contains("without 1 of its sections") && refused.stderr.contains("would drop it"), "\(refused)")
        #expect(refused.stderr.contains("Ask its author (nurse.ali)"), "\(refused)")
    }

    @Test func anEditCanBeWrittenToAFileInsteadOfSent() throws {
        let (system, nurse) = try Self.sharedPlan()
        // The system owns the folders the client works in: it must outlive every command.
        defer { withExtendedLifetime(system) {} }
        let script = try Self.editor(
            """
            sed -i -e 's/^\\( *\\)text: Two calls a day\\.$/\\1text: Two calls a day; the evening one at 18:30.\\n\\1changeNote: Evening call moved to 18:30./' \
                -e 's/^changeSummary: .*/changeSummary: Evening call moved/' "$1"
            """, in: nurse.workingDirectory, named: "move-call.sh")
        let written = try nurse.with(["EDITOR": script]).run(["careplan", "edit", "--patient", ellisNHS, "--out", "v2.yaml"])
        #expect(written.status == 0, "\(written)")
        #expect(written.stdout.contains("Wrote version 2 of cp.\(ellisNHS).home to v2.yaml; nothing was sent."), "\(written)")
        let checked = try nurse.run(["careplan", "check", "--file", "v2.yaml"])
        #expect(checked.status == 0 && checked.stdout.contains("version 2"), "\(checked)")
        let dry = try nurse.with(["EDITOR": script]).run(["careplan", "edit", "--patient", ellisNHS, "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("CHANGED daily-living") && dry.stdout.contains("nothing was sent"), "\(dry)")
        let versions = try nurse.run(["careplan", "versions", "--patient", ellisNHS, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(versions.stdout.utf8)) as? [Any])?.count == 1, "\(versions)")
    }
}
