import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct ConsentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Record, object, withdraw and read a patient's consent (registered professionals).",
        discussion: """
            Actors are written everyone, person:ID, team:ID, role:ROLE, organisation:ID or \
            relationship:carer|voluntary-sector|care-team. A deny always beats a permit; a \
            withdrawal takes effect at once, also for messages not yet delivered.

            Examples:
              carerelay consent record --patient 9434765919 --actor team:west.mdt --purpose mdt-discussion
              carerelay consent record --patient 9434765919 --actor person:carer.ellis --end 2027-03-01T00:00:00Z
              carerelay consent object --patient 9434765919 --class mental-health
              carerelay consent withdraw --patient 9434765919 --directive cd-1a2b3c4d --reason "patient asked"
              carerelay consent show --patient 9434765919
            """,
        subcommands: [Record.self, Object.self, Withdraw.self, Show.self])

    static func actor(_ text: String) throws -> [String: String] {
        if text == "everyone" { return ["role": "everyone"] }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, ["person", "team", "role", "organisation", "relationship"].contains(parts[0]), !parts[1].isEmpty else {
            throw Failure.usage("--actor '\(text)': write everyone, person:ID, team:ID, role:ROLE, organisation:ID or relationship:carer")
        }
        return ["role": parts[0], "reference": parts[1]]
    }

    struct DirectiveOptions: ParsableArguments {
        @Option(help: "The patient's NHS number (checked locally).") var patient: String
        @Option(help: ArgumentHelp("Who it is about (see above); repeat.", valueName: "actor")) var actor: [String] = []
        @Option(
            name: .customLong("class"),
            help: ArgumentHelp("A data category (mental-health, social-care, ...); repeat. None means all.", valueName: "category")) var categories:
            [String] = []
        @Option(help: ArgumentHelp("A purpose (direct-care, mdt-discussion, care-coordination); repeat. None means all.", valueName: "purpose"))
        var purpose: [String] = []
        @Option(help: "From when (ISO 8601; default now).") var start: String?
        @Option(help: "Until when (ISO 8601; default open).") var end: String?
        @Option(help: "The basis: explicit, implied, best-interests or legal-duty.") var basis = "explicit"
        @Option(help: "The directive id (default a new one, printed).") var id: String?
    }

    static func directive(_ globals: Globals, _ o: DirectiveOptions, action: String, type: String, defaultActors: [String]) throws {
        let nhs = try Input.nhsNumber(o.patient)
        let actors = try (o.actor.isEmpty ? defaultActors : o.actor).map(actor)
        guard !actors.isEmpty else { throw Failure.usage("say whom the consent is for with --actor (e.g. --actor team:west.mdt)") }
        let now = Timestamp(Date()).text
        for (name, value) in [("--start", o.start), ("--end", o.end)] {
            if let value {
                do { _ = try Timestamp(validating: value) } catch {
                    throw Failure.usage("\(name) '\(value)' is not a date and time like 2026-03-01T00:00:00Z")
                }
            }
        }
        let directiveID = o.id ?? "cd-\(UUID().uuidString.lowercased().prefix(8))"
        var period: [String: String] = ["start": o.start ?? now]
        if let end = o.end { period["end"] = end }
        var provision: [String: Any] = ["type": type, "period": period, "actor": actors]
        if !o.categories.isEmpty { provision["class"] = o.categories }
        if !o.purpose.isEmpty { provision["purpose"] = o.purpose }
        let client = try globals.connect()
        var body: [String: Any] = [
            "action": action, "id": directiveID, "status": "active", "scope": "patient-privacy", "patient": nhs.digits,
            "dateTime": now, "performer": performer(client), "policyRule": o.basis, "provision": provision,
        ]
        body["patient"] = nhs.digits
        try send(
            globals, client, body: body, patient: nhs,
            what: "Recorded \(action == "grant" ? "consent" : "objection") \(directiveID) for \(nhs.formatted); message")
    }

    static func performer(_ client: CareRelayClient) -> [String: String] {
        var performer = ["person": client.welcome?.person.rawValue ?? ""]
        if let role = client.welcome?.roles.first(where: \.isRegisteredProfessional) ?? client.welcome?.roles.first {
            performer["role"] = role.rawValue
        }
        return performer
    }

    static func send(_ globals: Globals, _ client: CareRelayClient, body: [String: Any], patient: NHSNumber, what: String) throws {
        let bytes = try Input.jsonBytes(body)
        _ = try Input.validate(kind: .consent, bytes, source: "consent")
        let header = Sender.header(kind: .consent, to: [], patient: patient, key: nil)
        let accepted = try Sender.send(client, header, body: bytes, what: what, json: globals.json)
        try Sender.finish(accepted)
    }

    struct Record: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record the patient's explicit consent (a permit).",
            discussion: """
                Examples:
                  carerelay consent record --patient 9434765919 --actor team:west.mdt --purpose mdt-discussion
                  carerelay consent record --patient 9434765919 --actor relationship:carer --class general
                """)
        @OptionGroup var globals: Globals
        @OptionGroup var options: DirectiveOptions
        func run() throws { try ConsentCommand.directive(globals, options, action: "grant", type: "permit", defaultActors: []) }
    }

    struct Object: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record the patient's objection (a deny; beats any permit).",
            discussion: """
                Without --actor the objection is to everyone.

                Example:
                  carerelay consent object --patient 9434765919 --class mental-health
                """)
        @OptionGroup var globals: Globals
        @OptionGroup var options: DirectiveOptions
        func run() throws { try ConsentCommand.directive(globals, options, action: "object", type: "deny", defaultActors: ["everyone"]) }
    }

    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Withdraw an earlier consent or objection; takes effect at once.",
            discussion: """
                Example:
                  carerelay consent withdraw --patient 9434765919 --directive cd-1a2b3c4d --reason "patient asked on the phone"
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "The directive id to withdraw (carerelay consent show lists them).") var directive: String
        @Option(help: "Why.") var reason: String?

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            var body: [String: Any] = [
                "action": "withdraw", "patient": nhs.digits, "dateTime": Timestamp(Date()).text,
                "performer": ConsentCommand.performer(client), "withdraws": directive,
            ]
            if let reason { body["reason"] = reason }
            try ConsentCommand.send(globals, client, body: body, patient: nhs, what: "Withdrew \(directive) for \(nhs.formatted); message")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The patient's consent history (care team members and co-ordinators).",
            discussion: "Example:\n  carerelay consent show --patient 9434765919")
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let lines = try brokerCall { () throws(ClientError) in try client.query(ConsentQuery(patient: nhs)) }
            if globals.json { Console.json(lines); return }
            if lines.isEmpty { Console.out("No consent recorded for \(nhs.formatted): implied consent for direct care applies."); return }
            Console.table(
                ["RECORDED", "BY", "ACTION", "DIRECTIVE", "ACTORS", "CLASSES", "PURPOSES", "PERIOD"],
                lines.map { line in
                    let r = (try? JSONSerialization.jsonObject(with: Data(line.record.utf8))) as? [String: Any] ?? [:]
                    let p = r["provision"] as? [String: Any] ?? [:]
                    let actors = (p["actor"] as? [[String: Any]] ?? []).map { a in
                        [a["role"] as? String, a["reference"] as? String].compactMap { $0 }.joined(separator: ":")
                    }.joined(separator: ",")
                    let period = p["period"] as? [String: Any]
                    let action = r["action"] as? String ?? "?"
                    return [
                        Format.date(line.acceptedAt), line.recordedBy.rawValue, action,
                        (r["id"] as? String) ?? (r["withdraws"] as? String).map { "(\($0))" } ?? "-",
                        actors.isEmpty ? "-" : actors, (p["class"] as? [String])?.joined(separator: ",") ?? "all",
                        (p["purpose"] as? [String])?.joined(separator: ",") ?? "all",
                        period.map { "\($0["start"] as? String ?? "?") to \($0["end"] as? String ?? "open")" } ?? "-",
                    ]
                })
        }
    }
}

struct CareTeamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "careteam",
        abstract: "Who has a legitimate relationship with a patient: show, link and unlink members.",
        discussion: """
            Examples:
              carerelay careteam show --patient 9434765919
              carerelay careteam link --patient 9434765919 --member team:west.nursing
              carerelay careteam unlink --patient 9434765919 --member person:sw.lee
            """,
        subcommands: [Show.self, Link.self, Unlink.self])

    static func print(_ globals: Globals, _ members: [CareTeamMember], patient: NHSNumber) {
        if globals.json { Console.json(members); return }
        if members.isEmpty { Console.out("\(patient.formatted) has no care team yet."); return }
        Console.out("Care team of \(patient.formatted):")
        for member in members { Console.out("  \(member)") }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a patient's care team.", discussion: "Example:\n  carerelay careteam show --patient 9434765919")
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let client = try globals.connect()
            let members = try brokerCall { () throws(ClientError) in try client.query(CareTeamQuery(patient: nhs)) }
            CareTeamCommand.print(globals, members, patient: nhs)
        }
    }

    static func change(_ globals: Globals, link: Bool, patient: String, member: String) throws {
        let nhs = try Input.nhsNumber(patient)
        guard Address.isMember(member), let typed = CareTeamMember(member) else {
            throw Failure.usage("--member '\(member)': write team:ID or person:ID")
        }
        let client = try globals.connect()
        let members = try brokerCall { () throws(ClientError) in
            try client.query(CareTeamChange(link: link, patient: nhs, member: typed))
        }
        if !globals.json { Console.out(link ? "Linked \(member)." : "Unlinked \(member).") }
        print(globals, members, patient: nhs)
    }

    struct Link: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a team or person to a patient's care team.",
            discussion: "Example:\n  carerelay careteam link --patient 9434765919 --member team:west.nursing")
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "team:ID or person:ID.") var member: String
        func run() throws { try CareTeamCommand.change(globals, link: true, patient: patient, member: member) }
    }

    struct Unlink: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a team or person from a patient's care team.",
            discussion: "Example:\n  carerelay careteam unlink --patient 9434765919 --member person:sw.lee")
        @OptionGroup var globals: Globals
        @Option(help: "The patient's NHS number.") var patient: String
        @Option(help: "team:ID or person:ID.") var member: String
        func run() throws { try CareTeamCommand.change(globals, link: false, patient: patient, member: member) }
    }
}

extension Address {
    static func isMember(_ text: String) -> Bool {
        switch try? Address(parsing: text) {
        case .person?, .team?: true
        default: false
        }
    }
}
