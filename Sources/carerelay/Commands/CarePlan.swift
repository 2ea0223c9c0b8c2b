import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct CarePlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "careplan",
        abstract: "Write, share and edit versioned care plans, and see what changed between versions.",
        discussion: """
            Example:
              carerelay careplan new --template falls-prevention --patient 9434765919 --title Mrs --given Margaret --family Ellis
              carerelay careplan share --file cp.9434765919.falls-prevention.yaml --to careteam:9434765919
              carerelay careplan edit --patient 9434765919 --to careteam:9434765919
              carerelay careplan show --patient 9434765919
              carerelay careplan diff --patient 9434765919
            """,
        subcommands: [
            Templates.self, New.self, Check.self, Share.self, Edit.self, Show.self, Versions.self, Diff.self,
        ])

    struct Share: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Share a care plan version (JSON or YAML file) with the care team, the GP, the carer.",
            discussion: """
                The file is checked here before sending (see Protocols/examples/careplan.share), and \
                refused while it still holds a <placeholder> from a template; problems are \
                reported by line. \
                Sections a recipient may not see are removed from their copy ("deliver, redacted"); \
                exit 66 if some recipient receives nothing.

                The purpose is direct care unless --purpose says otherwise: a patient may have \
                agreed that their carer sees their plan to support them as a carer \
                (--purpose carer-support), and only for that.

                Example:
                  carerelay careplan share --file plan.json --to careteam:9434765919 --to person:carer.ellis
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The care plan file (.json, .yaml, .yml).") var file: String
        @Option(help: ArgumentHelp("Recipient address; repeat.", valueName: "address")) var to: [String] = []
        @Option(help: "Idempotency key.") var key: String?
        @Option(help: "Why it is shared: direct-care (the default), care-coordination or carer-support.") var purpose: String?
        @OptionGroup(title: "Emergency override") var breakGlass: BreakGlassOptions

        func run() throws {
            let recipients = try Recipients(to: to, purpose: purpose)
            let file = try PlanFile.read(file)
            let plan: CarePlanShare, bytes: [UInt8]
            do { (plan, bytes) = try file.check(file.object) } catch {
                throw Failure.usage(error.message, hint: "Fix the file and try again. Nothing was sent.")
            }
            try CarePlanCommand.send(plan, bytes: bytes, recipients: recipients, key: key, breakGlass: breakGlass, globals: globals)
        }
    }

    /// Who a plan goes to and why, checked before anything else is done.
    struct Recipients {
        var addresses: [Address]
        var purpose: ConsentPurpose?

        init(to: [String], purpose: String?) throws {
            guard !to.isEmpty else { throw Failure.usage("say who receives the plan with --to (e.g. --to careteam:NHS-NUMBER)") }
            let purpose = purpose.map(ConsentPurpose.init)
            if let purpose, let problem = ConsentPurpose.problem(stating: purpose, for: .carePlanShare) {
                throw Failure.usage("--purpose: \(problem)")
            }
            self.purpose = purpose
            addresses = try to.map(Input.address)
        }
    }

    /// Sends a checked plan: what `share` and `edit` both end with.
    static func send(
        _ plan: CarePlanShare, bytes: [UInt8], recipients: Recipients, key: String?, breakGlass: BreakGlassOptions, globals: Globals
    ) throws {
        let override = try breakGlass.confirmed()
        let client = try globals.connect()
        let header = Sender.header(
            kind: .carePlanShare, to: recipients.addresses, patient: plan.patient, key: key, breakGlass: override,
            purpose: recipients.purpose)
        let accepted = try Sender.send(
            client, header, body: bytes, what: "Shared care plan \(plan.plan) version \(plan.version)", json: globals.json)
        if override != nil, !globals.json { BreakGlassOptions.accepted() }
        try Sender.finish(accepted)
    }

    struct Version {
        var id: String
        var sentAt: Date
        var plan: CarePlanShare
        var json: [String: Any]
    }

    /// The versions of a patient's plans that you sent or received, oldest first.
    static func versions(_ client: CareRelayClient, patient: NHSNumber, plan: String?) throws -> [Version] {
        var result: [Version] = []
        for message in try Inbox.messages(client, kind: .carePlanShare) {
            guard case .carePlanShare(let p) = message.body, p.patient == patient, plan == nil || p.plan == plan,
                let json = try? JSONSerialization.jsonObject(with: Data(message.bytes)) as? [String: Any]
            else { continue }
            if result.contains(where: { $0.plan.plan == p.plan && $0.plan.version == p.version }) { continue }
            result.append(Version(id: message.line.id, sentAt: message.line.acceptedAt, plan: p, json: json))
        }
        return result.sorted { ($0.plan.plan, $0.plan.version) < ($1.plan.plan, $1.plan.version) }
    }

    struct Versions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the care plan versions for a patient that you sent or received.",
            discussion: "Example:\n  carerelay careplan versions --patient 9434765919")
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "Only this plan id.") var plan: String?

        struct Row: Codable {
            var plan: String; var version: Int; var status: String; var created: String; var author: String; var changeSummary: String;
            var sections: Int; var id: String
            /// Set when the broker took the copy back (CRP.md section 10.5): the sections taken,
            /// or every one (`whole`). A copy taken back whole can no longer be read: its row
            /// carries the notice's words instead of the plan's.
            var takenBack: [String]?
        }

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let revoked = try CarePlanCommand.revocations(client, patient: nhs)
            var rows = try CarePlanCommand.versions(client, patient: nhs, plan: plan).map {
                Row(
                    plan: $0.plan.plan, version: $0.plan.version, status: $0.plan.status.rawValue, created: $0.plan.created.text,
                    author: $0.plan.author.rawValue, changeSummary: $0.plan.changeSummary, sections: $0.plan.sections.count, id: $0.id,
                    takenBack: revoked[$0.id]?.parts)
            }
            if plan == nil {
                for (id, notice) in revoked.sorted(by: { $0.key < $1.key }) where notice.parts == nil && !rows.contains(where: { $0.id == id }) {
                    rows.append(
                        Row(
                            plan: "-", version: 0, status: "revoked", created: "-", author: "-", changeSummary: notice.text, sections: 0, id: id,
                            takenBack: ["whole"]))
                }
            }
            if globals.json { Console.json(rows); return }
            if rows.isEmpty { Console.out("No care plans for \(nhs.formatted) that you sent or received."); return }
            Console.table(
                ["PLAN", "VERSION", "STATUS", "CREATED", "AUTHOR", "SECTIONS", "MESSAGE", "CHANGE"],
                rows.map {
                    let status = $0.takenBack == ["whole"] ? "REVOKED" : $0.takenBack.map { "\($0.joined(separator: ", ")) REVOKED" } ?? $0.status
                    return [
                        $0.plan, $0.version == 0 ? "-" : "\($0.version)", status, $0.created, $0.author, "\($0.sections)", $0.id,
                        Format.oneLine($0.changeSummary, max: $0.version == 0 ? 200 : 60),
                    ]
                })
        }
    }

    /// Copies of this patient's plans the broker took back from you, by message id.
    static func revocations(_ client: CareRelayClient, patient: NHSNumber) throws -> [String: BrokerNotice] {
        var revoked: [String: BrokerNotice] = [:]
        for message in try Inbox.messages(client, kind: .notice) {
            guard case .notice(let notice) = message.body, notice.notice == .revoked, notice.patient == patient, notice.kind == .carePlanShare
            else { continue }
            // A whole revocation outweighs an earlier one of some sections.
            if notice.parts == nil || revoked[notice.message] == nil { revoked[notice.message] = notice }
        }
        return revoked
    }

    /// The versions of one plan: the one named, or the patient's only plan.
    static func versions(of plan: String?, in all: [Version], patient: NHSNumber) throws -> (id: String, versions: [Version]) {
        let plans = Set(all.map(\.plan.plan))
        guard let planID = plan ?? (plans.count == 1 ? plans.first : nil) else {
            throw Failure.usage(
                plans.isEmpty
                    ? "no care plans for \(patient.formatted) that you sent or received"
                    : "the patient has several plans (\(plans.sorted().joined(separator: ", "))): name one with --plan")
        }
        let versions = all.filter { $0.plan.plan == planID }
        guard !versions.isEmpty else { throw Failure.usage("no version of \(planID) for \(patient.formatted) that you sent or received") }
        return (planID, versions)
    }

    /// The directory's names for people and teams, if the broker gives them; ids otherwise.
    static func names(_ client: CareRelayClient) -> PlanNames {
        PlanNames(directory: try? client.query(DirectoryQuery()))
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what changed between two versions of a care plan (default: the last two).",
            discussion: """
                Sections are matched by id and reported as added, removed or changed; within a \
                changed section, what changed in its title, kind, labels, text and activities \
                (matched by description: added, removed, status, schedule, who does it), with \
                the author's note on the section. --json gives the same for scripts.

                Examples:
                  carerelay careplan diff --patient 9434765919
                  carerelay careplan diff --patient 9434765919 --plan cp.9434765919.home --from 1 --to 3
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The plan id (needed when the patient has several).") var plan: String?
        @Option(help: "The older version (default: the one before --to).") var from: Int?
        @Option(help: "The newer version (default: the latest).") var to: Int?

        struct Report: Codable {
            var plan: String; var from: Int; var to: Int; var changeSummary: String; var sectionsWithheld: Int?
            var changes: [PlanDiff.Change]
        }

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let (planID, versions) = try CarePlanCommand.versions(
                of: plan, in: CarePlanCommand.versions(client, patient: nhs, plan: plan), patient: nhs)
            guard let newer = to.map({ v in versions.first { $0.plan.version == v } }) ?? versions.last else {
                throw Failure.usage("version \(to ?? 0) of \(planID) is not among those you sent or received")
            }
            let older: Version?
            if let from { older = versions.first { $0.plan.version == from } } else { older = versions.last { $0.plan.version < newer.plan.version } }
            guard let older else {
                throw Failure.usage(
                    from.map { "version \($0) of \(planID) is not among those you sent or received" }
                        ?? "there is no earlier version of \(planID) to compare version \(newer.plan.version) with")
            }
            let names = CarePlanCommand.names(client)
            let changes = PlanDiff.compare(older.plan, newer.plan, names: names)
            let report = Report(
                plan: planID, from: older.plan.version, to: newer.plan.version, changeSummary: newer.plan.changeSummary,
                sectionsWithheld: newer.plan.sectionsWithheld, changes: changes)
            if globals.json { Console.json(report); return }
            Console.out("Care plan \(planID): version \(older.plan.version) -> \(newer.plan.version)")
            Console.out("Version \(newer.plan.version) by \(names.person(newer.plan.author)), \(newer.plan.created)")
            Console.out("Summary: \(Terminal.block(newer.plan.changeSummary, indent: 9))")
            if changes.isEmpty { Console.out("No differences in the parts you can see.") }
            for change in changes {
                let title = change.title.map { " (\(PlanText.line($0)))" } ?? ""
                Console.out(PlanText.line("  \(change.change.uppercased()) \(change.section)\(title)"))
                if let note = change.changeNote { Console.out("    note: \(PlanText.line(note))") }
                for detail in change.details { Console.out("    \(detail)") }
            }
            // A section missing from a redacted copy may be withheld from you rather than gone.
            for version in [older, newer] {
                if let withheld = version.plan.sectionsWithheld {
                    Console.out("Version \(version.plan.version): \(PlanText.sectionsWithheld(withheld))")
                }
            }
        }
    }
}
