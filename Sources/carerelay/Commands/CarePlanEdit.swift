import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

extension CarePlanCommand {
    struct Edit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the next version of a care plan in your editor, check it, and share it.",
            discussion: """
                Fetches the latest version the broker holds for you, opens it as YAML in $VISUAL \
                or $EDITOR (else vi), and when you save and quit checks it as the broker will. \
                Problems are reported by line and field before anything is sent; at a terminal \
                you may edit again, otherwise the command stops (exit 64) and keeps your edit.

                The client fills in the version (the latest plus one), when it was written and \
                you as its author, and clears the previous version's change notes. Write a \
                changeNote on every section you change (what changed in it: a copy that leaves \
                sections out tells its reader what changed from these notes) and a new \
                changeSummary for the whole plan. A copy shared with you without some sections \
                cannot be edited: your version would drop them.

                Sending is as `careplan share` (--to, --purpose, --key, --break-glass). \
                --dry-run checks and shows what would change; --out FILE writes the new version \
                to FILE instead of sending it.

                Examples:
                  carerelay careplan edit --patient 9434765919 --to careteam:9434765919
                  EDITOR=nano carerelay careplan edit --patient 9434765919 --plan cp.9434765919.home --dry-run
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The plan id (needed when the patient has several).") var plan: String?
        @Option(help: ArgumentHelp("Recipient address; repeat.", valueName: "address")) var to: [String] = []
        @Option(help: "Idempotency key.") var key: String?
        @Option(help: "Why it is shared: direct-care (the default), care-coordination or carer-support.") var purpose: String?
        @Flag(help: "Check the edit and show what would change; send nothing.") var dryRun = false
        @Option(help: "Write the new version to this file (.yaml, .yml or .json) instead of sending it.") var out: String?
        @Flag(help: "With --out: replace the file if it exists.") var force = false
        @Option(
            name: .customLong("from-file"),
            help: ArgumentHelp("Start from this file (an edit kept after a failed check) instead of the latest version.", valueName: "path"))
        var fromFile: String?
        @OptionGroup(title: "Emergency override") var breakGlass: BreakGlassOptions

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let sending = !dryRun && out == nil
            let recipients = sending ? try Recipients(to: to, purpose: purpose) : nil
            if !sending, !to.isEmpty || breakGlass.reason != nil {
                throw Failure.usage("--dry-run and --out send nothing: leave out --to and --break-glass, or leave out --dry-run and --out")
            }
            if let out, FileManager.default.fileExists(atPath: Globals.expand(out)), !force {
                throw Failure.usage("\(out) already exists", hint: "Use --force to replace it, or --out another file.")
            }

            let client = try globals.connect()
            guard let me = client.welcome?.person else { throw Failure(Exit.software, "the broker did not say who you are") }
            let (planID, versions) = try CarePlanCommand.versions(
                of: plan, in: CarePlanCommand.versions(client, patient: nhs, plan: plan), patient: nhs)
            guard let latest = versions.last?.plan else { throw Failure.usage("no version of \(planID) to edit") }
            if let withheld = latest.sectionsWithheld {
                throw Failure.usage(
                    "version \(latest.version) of \(planID) was shared with you without \(withheld) of its sections (\(withheld == 1 ? "it is" : "they are") not shared with you), so you cannot see the whole plan: a version written from your copy would drop \(withheld == 1 ? "it" : "them")",
                    hint:
                        "Ask its author (\(latest.author)) or the patient's care co-ordinator\(latest.careCoordinator.map { " (\($0))" } ?? "") to make the change. Nothing was sent."
                )
            }

            let session = try EditSession(planID: planID, previous: latest, me: me, fromFile: fromFile)
            let (next, bytes) = try session.run()
            let changes = PlanDiff.compare(latest, next, names: CarePlanCommand.names(client))

            if let out {
                let object = (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
                let text =
                    Input.isYAML(out)
                    ? try PlanYAML.text(object)
                    : Console.prettyJSON(bytes) + "\n"
                try New.write(text, to: out)
                session.finish()
                Console.out("Wrote version \(next.version) of \(planID) to \(out); nothing was sent.")
                Console.out("Share it with: carerelay careplan share --file \(out) --to careteam:\(nhs.digits)")
                return
            }
            if dryRun {
                session.finish()
                Console.out("Version \(next.version) of \(planID) is ready to share; nothing was sent (--dry-run).")
                Console.out("Summary: \(PlanText.line(next.changeSummary))")
                for change in changes {
                    Console.out(PlanText.line("  \(change.change.uppercased()) \(change.section)"))
                    if let note = change.changeNote { Console.out("    note: \(PlanText.line(note))") }
                }
                return
            }
            // Someone may have shared a version while the editor was open: yours would then
            // silently undo theirs.
            let now = try CarePlanCommand.versions(globals.connect(), patient: nhs, plan: planID)
            if let newest = now.last?.plan, newest.version >= next.version {
                throw Failure.usage(
                    "\(newest.author) shared version \(newest.version) of \(planID) while you were editing; nothing was sent",
                    hint:
                        "Your edit is kept in \(session.path). See their change with carerelay careplan diff --patient \(nhs.digits), then edit again."
                )
            }
            guard let recipients else { return }
            try CarePlanCommand.send(next, bytes: bytes, recipients: recipients, key: key, breakGlass: breakGlass, globals: globals)
            session.finish()
        }
    }

    /// One edit: the draft file, the editor, and the checks on what comes back.
    struct EditSession {
        var planID: String
        var previous: CarePlanShare
        var me: PersonID
        /// The file the person edits.
        var path: String
        /// What the file held before the editor opened (nil when resuming a kept edit).
        var draft: String?
        /// Whether the file is the client's own, to remove once done.
        var temporary: Bool

        init(planID: String, previous: CarePlanShare, me: PersonID, fromFile: String?) throws {
            self.planID = planID
            self.previous = previous
            self.me = me
            if let fromFile {
                path = Globals.expand(fromFile)
                guard FileManager.default.fileExists(atPath: path) else { throw Failure(Exit.ioError, "file \(fromFile) does not exist") }
                draft = nil
                temporary = false
                return
            }
            var next = previous
            next.version = previous.version + 1
            next.author = me
            next.created = Timestamp(Date())
            // A note says what changed in this version; the previous version's are history.
            next.sections = previous.sections.map {
                var section = $0; section.changeNote = nil; return section
            }
            next.changeSummary = "<What changed since version \(previous.version), for everyone who receives the plan>"
            let object = (try? JSONSerialization.jsonObject(with: Data(MessageBody.carePlanShare(next).encode()))) as? [String: Any] ?? [:]
            let header = """
                Version \(next.version) of care plan \(planID), from version \(previous.version) by \(previous.author) (\(previous.created)).
                Change what needs changing, then save and quit. On each section you change, add a line
                  changeNote: what changed in it
                (a copy that leaves sections out tells its reader what changed from these notes), and
                replace the changeSummary. version, created and author are filled in when it is sent.
                """
            let text = try PlanYAML.text(object, header: header)
            // Patient information: in a folder only this user can read, removed once done.
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-edit-\(UUID().uuidString)")
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw Failure(Exit.ioError, "cannot make a folder for the edit in \(folder.path): \(error.localizedDescription)")
            }
            path = folder.appendingPathComponent("\(planID).v\(next.version).yaml").path
            draft = text
            temporary = true
            try New.write(text, to: path)
        }

        var interactive: Bool { isatty(STDIN_FILENO) == 1 && isatty(STDERR_FILENO) == 1 }

        /// Opens the editor until the plan passes the checks (or the person gives up).
        func run() throws -> (CarePlanShare, [UInt8]) {
            while true {
                try openEditor()
                let text: String
                do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                    throw Failure(Exit.ioError, "cannot read \(path) back: \(error.localizedDescription)")
                }
                if let draft, text == draft {
                    finish()
                    throw Failure.usage("you changed nothing; nothing was sent")
                }
                do { return try check(text) } catch {
                    let kept =
                        "Your edit is kept in \(path); carerelay careplan edit --patient \(previous.patient.digits) --plan \(planID) --from-file \(path) goes on from it. Nothing was sent."
                    guard interactive else { throw Failure.usage(error.message, hint: kept) }
                    Console.err(error.message)
                    FileHandle.standardError.write(Data("Edit again? [Y/n] ".utf8))
                    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased() ?? "n"
                    guard answer.isEmpty || answer.hasPrefix("y") else { throw Failure.usage("stopped; nothing was sent", hint: kept) }
                }
            }
        }

        /// $VISUAL, else $EDITOR, else vi; through the shell, so "code --wait" works too.
        func openEditor() throws {
            let environment = ProcessInfo.processInfo.environment
            let editor =
                [environment["VISUAL"], environment["EDITOR"]].compactMap { $0 }.first { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? "vi"
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "\(editor) \"$1\"", "carerelay-editor", path]
            do { try process.run() } catch {
                throw Failure(Exit.ioError, "cannot start the editor (\(editor)): \(error.localizedDescription)")
            }
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw Failure.usage(
                    "the editor (\(editor)) stopped with exit status \(process.terminationStatus); nothing was sent",
                    hint: temporary ? "Your edit is kept in \(path)." : nil)
            }
        }

        /// The checks on an edited plan, every problem with its line.
        func check(_ text: String) throws(PlanFile.Problems) -> (CarePlanShare, [UInt8]) {
            let file = try PlanFile.parse(text, source: path, yaml: true)
            var object = file.object
            var problems: [PlanFile.Problem] = []
            if let id = object["plan"] as? String, id != planID {
                problems.append(
                    file.problem(
                        at: "plan", "this is a new version of \(planID): its id stays the same (start another plan with carerelay careplan new)"))
            }
            if let patient = object["patient"] as? String, patient != previous.patient.digits {
                problems.append(file.problem(at: "patient", "this plan is about \(previous.patient.formatted): the patient stays the same"))
            }
            if object["sectionsWithheld"] != nil {
                problems.append(
                    file.problem(at: "sectionsWithheld", "only the broker sets this, on a copy that leaves sections out: remove the line"))
            }
            object["version"] = previous.version + 1
            object["created"] = Timestamp(Date()).text
            object["author"] = me.rawValue
            let checked: (CarePlanShare, [UInt8])
            do { checked = try file.check(object) } catch { throw PlanFile.Problems(source: path, problems: problems + error.problems) }
            let plan = checked.0
            var unchanged = plan
            unchanged.version = previous.version
            unchanged.created = previous.created
            unchanged.author = previous.author
            unchanged.changeSummary = previous.changeSummary
            unchanged.sections = unchanged.sections.map {
                var section = $0; section.changeNote = nil; return section
            }
            var before = previous
            before.sections = before.sections.map {
                var section = $0; section.changeNote = nil; return section
            }
            if unchanged == before {
                problems.append(
                    PlanFile.Problem(
                        line: nil, path: "(body)", reason: "nothing in the plan changed since version \(previous.version): there is nothing to share")
                )
            }
            if plan.changeSummary == previous.changeSummary {
                problems.append(file.problem(at: "changeSummary", "this is version \(previous.version)'s summary: say what changed in this version"))
            }
            let old = Dictionary(previous.sections.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for (index, section) in plan.sections.enumerated() where section.changeNote == nil {
                let what: String
                if let before = old[section.id] {
                    let changed = Self.changedFields(before, section)
                    if changed.isEmpty { continue }
                    what = "its \(changed.joined(separator: ", ")) changed"
                } else {
                    what = "it is new"
                }
                problems.append(
                    file.problem(
                        at: "sections[\(index)]",
                        "section \(section.id) (\(PlanText.line(section.title))): \(what); add a changeNote saying what changed in it"))
            }
            guard problems.isEmpty else { throw PlanFile.Problems(source: path, problems: problems) }
            return checked
        }

        static func changedFields(_ old: CarePlanShare.Section, _ new: CarePlanShare.Section) -> [String] {
            var fields: [String] = []
            if old.title != new.title { fields.append("title") }
            if (old.kind ?? .care) != (new.kind ?? .care) { fields.append("kind") }
            if old.labels != new.labels { fields.append("labels") }
            if old.text != new.text { fields.append("text") }
            if (old.activities ?? []) != (new.activities ?? []) { fields.append("activities") }
            return fields
        }

        /// Removes the client's own copy of the edit.
        func finish() {
            guard temporary else { return }
            try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
        }
    }
}
