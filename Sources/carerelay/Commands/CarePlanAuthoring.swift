import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

// Writing plans: from a template (new), by editing the latest version (edit), checking a file
// (check), and reading one (show, templates).

extension CarePlanCommand {
    static let templatesHelp = ArgumentHelp(
        "A folder of your site's templates (NAME.yaml); they add to the built-in ones or replace one of the same name (env CARERELAY_TEMPLATES).",
        valueName: "dir")

    struct Templates: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the care plan templates, or print one (--show NAME) to adapt it for your site.",
            discussion: """
                Built-in templates ship inside the client. A site adds its own, or replaces a \
                built-in one, with NAME.yaml files in a folder named by --templates or the \
                CARERELAY_TEMPLATES environment variable. A template is a plan's title, \
                description and sections with <placeholders> for what the author must write, \
                and a `template` mapping with its `description` and `reviewWeeks` (when the plan \
                is reviewed, which sets the end of its period).

                Examples:
                  carerelay careplan templates
                  carerelay careplan templates --show falls-prevention > site-templates/falls-prevention.yaml
                """)
        @OptionGroup var globals: Globals
        @Option(help: CarePlanCommand.templatesHelp) var templates: String?
        @Option(help: ArgumentHelp("Print this template's file as it is.", valueName: "name")) var show: String?

        struct Row: Codable { var name: String; var source: String; var description: String }

        func run() throws {
            let folder = CarePlanTemplates.folder(templates)
            if let show {
                let template = try CarePlanTemplates.named(show, folder: folder)
                FileHandle.standardOutput.write(Data(Terminal.safe(template.text).utf8))
                return
            }
            let rows = try CarePlanTemplates.all(folder: folder).map { Row(name: $0.name, source: $0.source, description: $0.description) }
            if globals.json { Console.json(rows); return }
            Console.table(["TEMPLATE", "FROM", "DESCRIPTION"], rows.map { [$0.name, $0.source, $0.description] })
            Console.out("Start a plan with: carerelay careplan new --template NAME --patient NHS-NUMBER")
        }
    }

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a care plan from a template: writes a YAML file for you to fill in, then share.",
            discussion: """
                The client fills in the plan id (cp.NHS.TEMPLATE unless --plan), version 1, \
                status active, the patient and their name, you as the author, your team and its \
                care co-ordinator (from the directory), when it was written, the period (from \
                today to the template's review date) and the change summary "First version". \
                Replace each <placeholder> with what applies to the patient and delete what does \
                not apply: `careplan share` refuses a plan that still holds one, and `careplan \
                check` says where they are. Templates: `carerelay careplan templates`.

                Example:
                  carerelay careplan new --template falls-prevention --patient "943 476 5919" \\
                      --title Mrs --given Margaret --family Ellis
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The template (carerelay careplan templates lists them).") var template: String
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The patient's title (Mrs, Mr, Dr, ...).") var title: String?
        @Option(help: ArgumentHelp("The patient's given name; repeat for middle names.", valueName: "name")) var given: [String] = []
        @Option(help: "The patient's family name.") var family: String?
        @Option(help: "The plan id (default cp.NHS.TEMPLATE).") var plan: String?
        @Option(help: "Your team for this plan (default: your team in the directory, if you have one).") var team: String?
        @Option(help: "The patient's care co-ordinator (default: your team's co-ordinator).") var coordinator: String?
        @Option(help: CarePlanCommand.templatesHelp) var templates: String?
        @Option(help: "The file to write (.yaml, .yml or .json; default PLAN.yaml).") var out: String?
        @Flag(help: "Replace the file if it exists.") var force = false

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let template = try CarePlanTemplates.named(template, folder: CarePlanTemplates.folder(templates))
            let planID = plan ?? "cp.\(nhs.digits).\(template.name)"
            guard PersonID.isWellFormed(planID) else {
                throw Failure.usage("--plan '\(planID)' is not a plan id: 1-64 characters of a-z, 0-9, '.', '-', '_'")
            }
            var name: [String: Any]?
            if title != nil || !given.isEmpty || family != nil {
                guard let family, !family.trimmingCharacters(in: .whitespaces).isEmpty, !given.isEmpty else {
                    throw Failure.usage("the patient's name needs --given and --family (and --title if they use one)")
                }
                name = ["given": given, "family": family]
                if let title { name?["prefix"] = title }
            }
            if let team, !TeamID.isWellFormed(team) { throw Failure.usage("--team '\(team)' is not a team id (like west.nursing)") }
            let coordinatorID = try coordinator.map { try Input.person($0, option: "--coordinator") }
            let path = out ?? "\(planID).yaml"
            if FileManager.default.fileExists(atPath: Globals.expand(path)) && !force {
                throw Failure.usage("\(path) already exists", hint: "Use --force to replace it, or --out another file.")
            }

            let client = try globals.connect()
            guard let me = client.welcome else { throw Failure(Exit.software, "the broker did not say who you are") }
            let directory = try? client.query(DirectoryQuery())
            let teamID = try team.map(TeamID.init) ?? Self.team(of: me, directory: directory)
            let existing = try CarePlanCommand.versions(client, patient: nhs, plan: planID)
            if let last = existing.last {
                throw Failure.usage(
                    "\(planID) already exists (version \(last.plan.version), by \(last.plan.author))",
                    hint: "Change it with carerelay careplan edit --patient \(nhs.digits) --plan \(planID), or start another with --plan.")
            }

            let today = Self.day(Date())
            var period: [String: Any] = ["start": today]
            if let weeks = template.reviewWeeks, weeks > 0 { period["end"] = Self.day(Date().addingTimeInterval(Double(weeks) * 7 * 86_400)) }
            var object = template.plan
            object["plan"] = planID
            object["version"] = 1
            object["status"] = "active"
            object["intent"] = "plan"
            object["patient"] = nhs.digits
            object["author"] = me.person.rawValue
            object["created"] = Timestamp(Date()).text
            object["period"] = period
            object["changeSummary"] = "First version"
            object["patientName"] = name
            object["team"] = teamID?.rawValue
            object["careCoordinator"] = (coordinatorID ?? teamID.flatMap { directory?.team($0)?.coordinator })?.rawValue
            object.removeValue(forKey: "sectionsWithheld")

            // A site's template that cannot make a valid plan is reported now, by its own lines.
            let checkable = PlanFile(
                object: PlanFile.filled(object) as? [String: Any] ?? object, tree: template.tree,
                source: "template \(template.name) (\(template.source))")
            do { _ = try checkable.check(checkable.object) } catch {
                throw Failure.usage(
                    "\(error.message)", hint: "The template does not make a valid care plan; fix it or choose another. Nothing was written.")
            }

            let who = (name.flatMap { try? PlanFile.nameText($0) } ?? "the patient") + " (NHS \(nhs.formatted))"
            let header = """
                Care plan for \(who), from the template \(template.name).
                Replace each <...> with what applies, and delete what does not apply: carerelay will not
                share the plan while one is left (carerelay careplan check --file \(path) says where).
                Write it for everyone who receives it; sections with sensitive labels (mental-health,
                safeguarding, ...) reach only those the patient's consent allows. Then:
                  carerelay careplan share --file \(path) --to careteam:\(nhs.digits)
                """
            let text: String
            if Input.isYAML(path) {
                text = try PlanYAML.text(object, header: header)
            } else {
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                text = String(decoding: data, as: UTF8.self) + "\n"
            }
            try Self.write(text, to: path)
            let file = try PlanFile.parse(text, source: path, yaml: Input.isYAML(path))
            let placeholders = file.placeholders
            if globals.json {
                Console.json(["file": path, "plan": planID, "template": template.name, "placeholders": "\(placeholders.count)"])
                return
            }
            Console.out("Wrote \(path): care plan \(planID), version 1, for \(who), from the template \(template.name).")
            if let first = placeholders.first {
                Console.out(
                    "It has \(placeholders.count) placeholder\(placeholders.count == 1 ? "" : "s") <...> to fill in\(first.line.map { ", the first on line \($0)" } ?? "")."
                )
            }
            Console.out("Next: edit it, then carerelay careplan share --file \(path) --to careteam:\(nhs.digits)")
        }

        /// The author's team for the plan: their one service team in the directory (an MDT is
        /// where plans are discussed, not whose they are); nil when they have none.
        static func team(of me: Welcome, directory: DirectoryListing?) throws -> TeamID? {
            let teams = me.teams.filter { directory?.team($0)?.kind != .mdt }
            guard teams.count <= 1 else {
                throw Failure.usage(
                    "you are in several teams (\(teams.map(\.rawValue).joined(separator: ", "))): say which this plan is from with --team")
            }
            return teams.first
        }

        static func day(_ date: Date) -> String {
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_GB_POSIX")
            formatter.timeZone = TimeZone(identifier: "Europe/London")
            formatter.dateFormat = "yyyy-MM-dd"
            return formatter.string(from: date)
        }

        /// Plan files hold patient information: readable only by their owner.
        static func write(_ text: String, to path: String) throws {
            let expanded = Globals.expand(path)
            try? FileManager.default.removeItem(atPath: expanded)
            guard FileManager.default.createFile(atPath: expanded, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
                throw Failure(Exit.ioError, "cannot write \(path)")
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a care plan file as `share` will, without sending it.",
            discussion: """
                Reports every placeholder left from a template and the first other problem, each \
                by line and field.

                Example:
                  carerelay careplan check --file cp.9434765919.falls-prevention.yaml
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The care plan file (.json, .yaml, .yml).") var file: String

        func run() throws {
            let planFile = try PlanFile.read(file)
            let plan: CarePlanShare
            do { plan = try planFile.check(planFile.object).plan } catch {
                throw Failure.usage(error.message, hint: "Fix the file and check it again.")
            }
            if globals.json {
                Console.json(["file": file, "plan": plan.plan, "version": "\(plan.version)", "sections": "\(plan.sections.count)"])
                return
            }
            Console.out(
                "\(file): care plan \(plan.plan) version \(plan.version) for \(PlanText.patient(plan)), \(plan.sections.count) section\(plan.sections.count == 1 ? "" : "s"): ready to share. Nothing was sent."
            )
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a care plan (default: the latest version you hold) section by section.",
            discussion: """
                Each section with its kind, labels, text, activities (who, status, when) and the \
                note on what changed in it in this version. A copy shared with you without some \
                sections says how many. --json prints the plan as it was received.

                Example:
                  carerelay careplan show --patient 9434765919
                  carerelay careplan show --patient 9434765919 --plan cp.9434765919.home --version 2
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The plan id (needed when the patient has several).") var plan: String?
        @Option(help: "The version (default: the latest you hold).") var version: Int?
        @OptionGroup(title: "Emergency override: read the sections withheld from your copy") var breakGlass: BreakGlassOptions

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let override = try breakGlass.confirmed(reading: true)
            let client = try globals.connect()
            let (planID, versions) = try CarePlanCommand.versions(
                of: plan, in: CarePlanCommand.versions(client, patient: nhs, plan: plan), patient: nhs)
            guard var chosen = version.map({ v in versions.first { $0.plan.version == v } }) ?? versions.last else {
                throw Failure.usage(
                    "version \(version ?? 0) of \(planID) is not among those you sent or received (you hold \(versions.map { "\($0.plan.version)" }.joined(separator: ", ")))"
                )
            }
            if let override {
                let view = try brokerCall { () throws(ClientError) in try client.query(MessageQuery(id: chosen.id, breakGlass: override)) }
                guard let bytes = view.bodyBytes, case .carePlanShare(let whole)? = try? MessageBody.decode(kind: .carePlanShare, json: bytes),
                    let json = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
                else { throw Failure(Exit.software, "the broker's answer was not a care plan") }
                if view.header?.override == true, !globals.json { BreakGlassOptions.read() }
                chosen = CarePlanCommand.Version(id: chosen.id, sentAt: chosen.sentAt, plan: whole, json: json)
            }
            if globals.json {
                Console.out(Console.prettyJSON([UInt8]((try? JSONSerialization.data(withJSONObject: chosen.json)) ?? Data())))
                return
            }
            let lines = PlanText.show(chosen.plan, names: CarePlanCommand.names(client), latest: chosen.plan.version == versions.last?.plan.version)
            for line in lines { Console.out(line) }
        }
    }
}

extension PlanFile {
    /// "Mrs Margaret Ellis" from a name mapping.
    static func nameText(_ name: [String: Any]) throws -> String {
        let parts = [name["prefix"] as? String].compactMap { $0 } + (name["given"] as? [String] ?? []) + [name["family"] as? String].compactMap { $0 }
        return Terminal.safe(parts.joined(separator: " "), singleLine: true)
    }
}
