import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct CarePlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "careplan",
        abstract: "Share versioned care plans and see what changed between versions.",
        discussion: """
            Example:
              carerelay careplan share --file plan.yaml --to careteam:9434765919 --to person:gp.khan
              carerelay careplan versions --patient 9434765919
              carerelay careplan diff --patient 9434765919
            """,
        subcommands: [Share.self, Versions.self, Diff.self])

    struct Share: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Share a care plan version (JSON or YAML file) with the care team, the GP, the carer.",
            discussion: """
                The file is checked here before sending (see Protocols/examples/careplan.share). \
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
            guard !to.isEmpty else { throw Failure.usage("say who receives the plan with --to (e.g. --to careteam:NHS-NUMBER)") }
            let purpose = self.purpose.map(ConsentPurpose.init)
            if let purpose, let problem = ConsentPurpose.problem(stating: purpose, for: .carePlanShare) {
                throw Failure.usage("--purpose: \(problem)")
            }
            let addresses = try to.map(Input.address)
            let object = try Input.object(file)
            if let subject = object["patient"] as? String { _ = try Input.nhsNumber(subject, option: "patient") }
            let bytes = try Input.jsonBytes(object)
            guard case .carePlanShare(let plan) = try Input.validate(kind: .carePlanShare, bytes, source: file) else {
                throw Failure(Exit.software, "the file did not read back as a care plan")
            }
            let override = try breakGlass.confirmed()
            let client = try globals.connect()
            let header = Sender.header(
                kind: .carePlanShare, to: addresses, patient: plan.patient, key: key, breakGlass: override, purpose: purpose)
            let accepted = try Sender.send(
                client, header, body: bytes, what: "Shared care plan \(plan.plan) version \(plan.version)", json: globals.json)
            if override != nil, !globals.json { BreakGlassOptions.accepted() }
            try Sender.finish(accepted)
        }
    }

    struct Version {
        var id: String
        var sentAt: Date
        var plan: CarePlanShare
        var json: [String: Any]
    }

    /// The versions of a patient's plans that you sent or received, oldest first.
    static func versions(_ client: CareRelayClient, patient: NHSNumber, plan: String?) throws -> [Version] {
        let lines = try brokerCall { () throws(ClientError) in
            try client.query(InboxQuery(kind: .carePlanShare, limit: 500))
        }
        var result: [Version] = []
        for line in lines {
            guard let view = try? client.query(MessageQuery(id: line.id)),
                let bytes = view.bodyBytes,
                case .carePlanShare(let p)? = try? MessageBody.decode(kind: .carePlanShare, json: bytes),
                p.patient == patient, plan == nil || p.plan == plan,
                let json = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]
            else { continue }
            if result.contains(where: { $0.plan.plan == p.plan && $0.plan.version == p.version }) { continue }
            result.append(Version(id: line.id, sentAt: line.acceptedAt, plan: p, json: json))
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
        }

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let rows = try CarePlanCommand.versions(client, patient: nhs, plan: plan).map {
                Row(
                    plan: $0.plan.plan, version: $0.plan.version, status: $0.plan.status.rawValue, created: $0.plan.created.text,
                    author: $0.plan.author.rawValue, changeSummary: $0.plan.changeSummary, sections: $0.plan.sections.count, id: $0.id)
            }
            if globals.json { Console.json(rows); return }
            if rows.isEmpty { Console.out("No care plans for \(nhs.formatted) that you sent or received."); return }
            Console.table(
                ["PLAN", "VERSION", "STATUS", "CREATED", "AUTHOR", "SECTIONS", "MESSAGE", "CHANGE"],
                rows.map {
                    [$0.plan, "\($0.version)", $0.status, $0.created, $0.author, "\($0.sections)", $0.id, Format.oneLine($0.changeSummary)]
                })
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what changed between two versions of a care plan (default: the last two).",
            discussion: """
                Sections are matched by id: added, removed, or changed (title, text, activities, labels).

                Examples:
                  carerelay careplan diff --patient 9434765919
                  carerelay careplan diff --patient 9434765919 --plan cp.9434765919.home --from 1 --to 3
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The plan id (needed when the patient has several).") var plan: String?
        @Option(help: "The older version (default: the one before --to).") var from: Int?
        @Option(help: "The newer version (default: the latest).") var to: Int?

        struct Change: Codable { var section: String; var change: String; var details: [String] }
        struct Report: Codable { var plan: String; var from: Int; var to: Int; var changeSummary: String; var changes: [Change] }

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let all = try CarePlanCommand.versions(client, patient: nhs, plan: plan)
            let plans = Set(all.map(\.plan.plan))
            guard let planID = plan ?? (plans.count == 1 ? plans.first : nil) else {
                throw Failure.usage(
                    plans.isEmpty
                        ? "no care plans for \(nhs.formatted) that you sent or received"
                        : "the patient has several plans (\(plans.sorted().joined(separator: ", "))): name one with --plan")
            }
            let versions = all.filter { $0.plan.plan == planID }
            guard let newer = to.map({ v in versions.first { $0.plan.version == v } }) ?? versions.last else {
                throw Failure.usage("version \(to ?? 0) of \(planID) is not among those you sent or received")
            }
            let older: Version?
            if let from { older = versions.first { $0.plan.version == from } } else { older = versions.last { $0.plan.version < newer.plan.version } }
            guard let older else {
                throw Failure.usage("there is no earlier version of \(planID) to compare version \(newer.plan.version) with")
            }
            var changes: [Change] = []
            let topFields = ["status", "title", "description", "period", "author", "team", "careCoordinator", "intent"]
            var top: [String] = []
            for field in topFields {
                let a = CarePlanCommand.text(older.json[field]), b = CarePlanCommand.text(newer.json[field])
                if a != b { top.append("\(field): \(Terminal.safe(a, singleLine: true)) -> \(Terminal.safe(b, singleLine: true))") }
            }
            if !top.isEmpty { changes.append(Change(section: "(plan)", change: "changed", details: top)) }
            let oldSections = (older.json["sections"] as? [[String: Any]]) ?? []
            let newSections = (newer.json["sections"] as? [[String: Any]]) ?? []
            let oldByID = Dictionary(oldSections.compactMap { s in (s["id"] as? String).map { ($0, s) } }, uniquingKeysWith: { a, _ in a })
            let newIDs = Set(newSections.compactMap { $0["id"] as? String })
            for section in newSections {
                guard let id = section["id"] as? String else { continue }
                guard let old = oldByID[id] else {
                    changes.append(
                        Change(
                            section: id, change: "added",
                            details: [
                                "\(Format.oneLine(CarePlanCommand.text(section["title"]), max: 200)): \(Format.oneLine(CarePlanCommand.text(section["text"]), max: 200))"
                            ]))
                    continue
                }
                var details: [String] = []
                for field in ["title", "kind", "text", "labels", "activities"] {
                    let a = CarePlanCommand.text(old[field]), b = CarePlanCommand.text(section[field])
                    // The values on one line each: the lines of the detail are its own.
                    if a != b {
                        details.append("\(field):\n      - \(Terminal.safe(a, singleLine: true))\n      + \(Terminal.safe(b, singleLine: true))")
                    }
                }
                if !details.isEmpty { changes.append(Change(section: id, change: "changed", details: details)) }
            }
            for section in oldSections {
                if let id = section["id"] as? String, !newIDs.contains(id) {
                    changes.append(
                        Change(section: id, change: "removed", details: [Format.oneLine(CarePlanCommand.text(section["title"]), max: 200)]))
                }
            }
            let report = Report(
                plan: planID, from: older.plan.version, to: newer.plan.version, changeSummary: newer.plan.changeSummary, changes: changes)
            if globals.json { Console.json(report); return }
            Console.out("Care plan \(planID): version \(older.plan.version) -> \(newer.plan.version)")
            Console.out("Author's summary: \(Terminal.block(newer.plan.changeSummary, indent: 18))")
            if changes.isEmpty { Console.out("No differences in the parts you can see."); return }
            for change in changes {
                Console.out(Terminal.safe("  \(change.change.uppercased()) \(change.section)", singleLine: true))
                for detail in change.details { Console.out("    \(detail)") }
            }
        }
    }

    static func text(_ value: Any?) -> String {
        guard let value, !(value is NSNull) else { return "(none)" }
        if let s = value as? String { return s }
        if JSONSerialization.isValidJSONObject(value),
            let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes])
        {
            return String(decoding: data, as: UTF8.self)
        }
        return "\(value)"
    }
}
