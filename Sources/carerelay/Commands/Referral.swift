import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

extension Priority: ExpressibleByArgument {}
extension ReferralStatus: ExpressibleByArgument {}
extension ReferralEvent.DeclineCode: ExpressibleByArgument {}
extension ReferralBody.Category: ExpressibleByArgument {}

struct ReferralCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "referral",
        abstract: "Send referrals, take them (accept, decline, allocate, complete) and track who has them.",
        discussion: """
            Example, a GP referring to the social care intake and following it up:
              carerelay referral send --to team:west.social-care \\
                  --patient "943 476 5919" --priority same-day \\
                  --category social-care --service "Package of care at home" \\
                  --reason "Two falls; main carer in hospital" --patient-agreed
              carerelay referral track 7KD4-QXM2-P9R3
            """,
        subcommands: [
            Send.self, Inbox.self, List.self, Show.self, Accept.self, Pass.self, Decline.self, Allocate.self,
            Complete.self, Withdraw.self, Track.self,
        ])

    static let idHelp = ArgumentHelp(
        "The referral's id: 7KD4-QXM2-P9R3 in any case, with or without hyphens (a mistyped one is caught here).", valueName: "id")

    // MARK: send

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refer a patient to a person, a team's single point of access, or a role in a team.",
            discussion: """
                The NHS number is checked here first: a mistyped number stops with exit 64 and \
                nothing is sent. Fields come from the options, or from a body file (--file, JSON \
                or YAML, see Protocols/examples/referral) with options overriding it. Requester \
                and performer are filled in from who you are and --to. Use --key to make a \
                resend after a failure safe: the broker stores a key once.

                Exit 66: the referral was accepted but some recipients will not receive it.

                Examples:
                  carerelay referral send --to team:west.social-care \\
                      --patient "943 476 5919" --priority same-day \\
                      --category social-care --service "Package of care at home" \\
                      --reason "Two falls in three weeks" --patient-agreed \\
                      --title Mrs --given Margaret --family Ellis --born 1940-06-14 \\
                      --address "12 Harbour View, Pallion" --town Sunderland --postcode "SR4 6TJ" \\
                      --phone "0191 496 0123" --needs "Hard of hearing: speak on her left side"
                  carerelay referral send --to person:nurse.ali --file referral.yaml
                """)
        @OptionGroup var globals: Globals
        @Option(help: ArgumentHelp("Recipient: person:ID, team:ID or role:TEAM/ROLE. Repeat for more.", valueName: "address"))
        var to: [String] = []
        @Option(help: ArgumentHelp("The patient's NHS number (checked locally).", valueName: "nhs-number"))
        var patient: String?
        @Option(help: "emergency (1 h), urgent (4 h), same-day or routine (3 days). Default routine.")
        var priority: Priority?
        @Option(help: ArgumentHelp("Why, in words (reasonText).", valueName: "text"))
        var reason: String?
        @Option(help: ArgumentHelp("What is asked for (serviceRequested), at most 200 characters.", valueName: "text"))
        var service: String?
        @Option(
            help: ArgumentHelp(
                "social-care, community-nursing, therapy, mental-health, care-coordination, voluntary-sector, assistive-technology or other.",
                valueName: "category"))
        var category: ReferralBody.Category?
        @Option(name: .customLong("supporting-info"), help: ArgumentHelp("Home situation, access, risks.", valueName: "text"))
        var supportingInfo: String?
        @Flag(inversion: .prefixedNo, help: "Whether the patient knows of and agrees to the referral (say which).")
        var patientAgreed: Bool?
        @OptionGroup(title: "The patient's details, for first contact") var details: PatientDetailsOptions
        @OptionGroup(title: "Emergency override") var breakGlass: BreakGlassOptions
        @Option(help: ArgumentHelp("A referral body (JSON, or YAML by extension); options override its fields.", valueName: "path"))
        var file: String?
        @Option(help: ArgumentHelp("Idempotency key: sending again with the same key never creates a second referral.", valueName: "key"))
        var key: String?

        func run() throws {
            guard !to.isEmpty else {
                throw Failure.usage("say whom to refer to with --to", hint: "e.g. --to team:west.social-care or --to person:nurse.ali")
            }
            let addresses = try to.map(Input.address)
            var body: [String: Any] = try file.map(Input.object) ?? [:]
            if let patient { body["subject"] = try Input.nhsNumber(patient).digits }
            guard let subjectText = body["subject"] as? String else {
                throw Failure.usage("say which patient with --patient NHS-NUMBER (or subject in --file)")
            }
            let subject = try Input.nhsNumber(subjectText, option: "subject")
            if let reason { body["reasonText"] = reason }
            if let service { body["serviceRequested"] = service }
            if let category { body["category"] = category.rawValue }
            if let supportingInfo { body["supportingInfo"] = supportingInfo }
            if let patientAgreed { body["patientAgreed"] = patientAgreed }
            if let priority { body["priority"] = priority.rawValue }
            if let patientDetails = try details.merged(into: body["patientDetails"] as? [String: Any]) {
                body["patientDetails"] = patientDetails
            }
            guard body["reasonText"] != nil else { throw Failure.usage("say why with --reason TEXT") }
            guard body["serviceRequested"] != nil else { throw Failure.usage("say what is asked for with --service TEXT") }
            guard body["patientAgreed"] != nil else {
                throw Failure.usage("say whether the patient agrees: --patient-agreed or --no-patient-agreed")
            }
            body["status"] = body["status"] ?? "active"
            body["intent"] = body["intent"] ?? "order"
            body["priority"] = body["priority"] ?? Priority.routine.rawValue
            body["category"] = body["category"] ?? ReferralBody.Category.other.rawValue
            body["authoredOn"] = body["authoredOn"] ?? Timestamp(Date()).text
            if body["performer"] == nil {
                guard let first = addresses.first else { throw Failure.usage("say whom to refer to with --to") }
                switch first {
                case .person(let id): body["performer"] = ["person": id.rawValue]
                case .team(let id): body["performer"] = ["team": id.rawValue]
                case .role(let team, let role): body["performer"] = ["team": team.rawValue, "role": role.rawValue]
                case .careTeam, .mdt:
                    throw Failure.usage("a referral goes to a person, a team or a role (--to person:ID, team:ID or role:TEAM/ROLE)")
                }
            }

            let override = try breakGlass.confirmed()
            let client = try globals.connect()
            if body["requester"] == nil, let welcome = client.welcome {
                let role = welcome.roles.first { $0.isRegisteredProfessional } ?? welcome.roles.first
                var requester: [String: Any] = ["person": welcome.person.rawValue]
                if let role { requester["role"] = role.rawValue }
                if let team = welcome.teams.first { requester["team"] = team.rawValue }
                body["requester"] = requester
            }
            let bytes = try Input.jsonBytes(body)
            guard case .referral(let referral) = try Input.validate(kind: .referral, bytes, source: file ?? "referral") else {
                throw Failure(Exit.software, "the body did not read back as a referral")
            }
            let header = Sender.header(
                kind: .referral, to: addresses, patient: subject, priority: referral.priority, key: key, breakGlass: override)
            let accepted = try Sender.send(client, header, body: bytes, what: "Referral sent", json: globals.json)
            if !globals.json {
                if override != nil { BreakGlassOptions.accepted() }
                Console.out("Track it with: carerelay referral track \(accepted.id)")
            }
            try Sender.finish(accepted)
        }
    }

    // MARK: inbox / list

    struct Inbox: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The intake's worklist: referrals to your teams (and to you), most urgent first.",
            discussion: """
                Each line: priority, how long is left to respond (or how long it is overdue), \
                status, who holds it, how long ago it came, the patient and the referrer. Open \
                referrals (sent, accepted, allocated) unless --status says otherwise. Emergency \
                and urgent lines stand out on a terminal (not in a pipe, nor with NO_COLOR set).

                Examples:
                  carerelay referral inbox
                  carerelay referral inbox --priority emergency --priority urgent --overdue
                  carerelay referral inbox --mine
                  carerelay referral inbox --team west.social-care --status declined --json
                """)
        @OptionGroup var globals: Globals
        @Option(help: "Only this priority; repeat for several.") var priority: [Priority] = []
        @Option(help: "Only this status (sent, accepted, allocated, declined, completed, withdrawn); repeat for several.")
        var status: [ReferralStatus] = []
        @Flag(help: "Only those past their respond-by time and not yet taken.") var overdue = false
        @Flag(help: "Only those you hold.") var mine = false
        @Option(help: "Only this team's (one of yours, or one you co-ordinate).") var team: String?
        @Option(help: "How many to show (1-500).") var limit = 100

        func run() throws {
            guard WorklistQuery.limits.contains(limit) else { throw Failure.usage("--limit must be between 1 and 500") }
            let client = try globals.connect()
            let query = WorklistQuery(
                team: team.map(TeamID.init), statuses: status.isEmpty ? nil : Set(status), priorities: priority.isEmpty ? nil : Set(priority),
                overdue: overdue, mine: mine, limit: limit)
            let lines = try brokerCall { () throws(ClientError) in try client.query(query) }
            if globals.json { Console.json(lines); return }
            guard !lines.isEmpty else {
                Console.out("No referrals\(query.params.keys.contains { $0 != "limit" } ? " match" : " waiting").")
                return
            }
            let now = Date()
            Console.table(
                ["PRIORITY", "RESPOND BY", "STATUS", "OWNER", "AGE", "PATIENT", "FROM", "ID"],
                lines.map { line in
                    [
                        line.priority.rawValue, ReferralCommand.respondBy(line, now: now),
                        line.status.rawValue + (line.passedByYou ? " (you passed)" : ""), line.owner?.rawValue ?? "-",
                        Format.age(now.timeIntervalSince(line.sentAt)),
                        [line.patientName, Format.nhs(line.patient?.digits)].compactMap { $0 }.joined(separator: ", "),
                        line.referrerName ?? line.referrer.rawValue, line.id,
                    ]
                },
                emphasis: { index in
                    switch lines[index].priority {
                    case .emergency: .alarm
                    case .urgent: .warning
                    default: lines[index].isOverdue(at: now) ? .warning : nil
                    }
                })
        }
    }

    /// "2 h 10 min left", "OVERDUE 35 min", or "taken" once someone holds it.
    static func respondBy(_ line: WorklistLine, now: Date) -> String {
        guard line.status == .sent else { return line.status == .accepted || line.status == .allocated ? "taken" : "-" }
        guard let deadline = line.respondBy else { return "-" }
        return deadline < now
            ? "OVERDUE \(Format.duration(now.timeIntervalSince(deadline)))" : "\(Format.duration(deadline.timeIntervalSince(now))) left"
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Referrals you sent or received, newest first.",
            discussion: "Examples:\n  carerelay referral list\n  carerelay referral list --sent")
        @OptionGroup var globals: Globals
        @Option(help: "How many to show (1-500).") var limit = 50
        @Flag(help: "Only referrals you sent.") var sent = false

        func run() throws {
            try ReferralCommand.listing(globals, limit: limit, received: !sent, sent: true)
        }
    }

    struct Row: Codable {
        var id: String
        var direction: String
        var from: String
        var sentAt: Date
        var patient: String?
        var status: String?
        var takenBy: String?
        var allocatedTo: String?
        var delivery: String?
    }

    static func listing(_ globals: Globals, limit: Int, received: Bool, sent: Bool) throws {
        guard (1...500).contains(limit) else { throw Failure.usage("--limit must be between 1 and 500") }
        let client = try globals.connect()
        let me = client.welcome?.person
        let lines = try brokerCall { () throws(ClientError) in
            try client.query(InboxQuery(kind: .referral, limit: limit))
        }
        var rows: [Row] = []
        for line in lines {
            let mine = line.from == me
            if mine && !sent { continue }
            if !mine && !received { continue }
            let referral = (try? client.query(TrackQuery(id: line.id)))?.referral
            rows.append(
                Row(
                    id: line.id, direction: mine ? "sent" : "received", from: line.from.rawValue, sentAt: line.acceptedAt,
                    patient: referral?.patient?.digits, status: referral?.status.rawValue,
                    takenBy: referral?.takenBy?.rawValue, allocatedTo: referral?.allocatedTo?.rawValue, delivery: line.state))
        }
        if globals.json { Console.json(rows); return }
        if rows.isEmpty {
            Console.out(received && !sent ? "No referrals in your inbox." : "No referrals.")
            return
        }
        Console.table(
            ["ID", "DIR", "FROM", "SENT", "PATIENT", "STATUS", "TAKEN BY"],
            rows.map {
                [
                    $0.id, $0.direction, $0.from, Format.date($0.sentAt), Format.nhs($0.patient), $0.status ?? "-",
                    $0.allocatedTo.map { "\($0) (allocated)" } ?? $0.takenBy ?? "-",
                ]
            })
    }

    // MARK: show

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a referral as you received it (consent applied).",
            discussion:
                "A referral withheld from you is not known to you: unknown-message (exit 65), as for a mistyped id.\n\nExample:\n  carerelay referral show 7KD4-QXM2-P9R3"
        )
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @OptionGroup(title: "Emergency override") var breakGlass: BreakGlassOptions

        func run() throws {
            let override = try breakGlass.confirmed(reading: true)
            let client = try globals.connect()
            let view = try brokerCall { () throws(ClientError) in try client.query(MessageQuery(id: id, breakGlass: override)) }
            if globals.json { Console.json(view); return }
            if view.header?.override == true { BreakGlassOptions.read() }
            guard let bytes = view.bodyBytes else { throw Failure(Exit.software, "the broker sent no body") }
            if let header = view.header {
                Console.out(Terminal.safe("From:      \(header.fromName) (\(header.from)), sent \(header.sentAt)", singleLine: true))
                if let redacted = header.redacted, !redacted.isEmpty { Console.out("Redacted:  \(redacted.joined(separator: ", "))") }
            }
            guard case .referral(let r)? = try? MessageBody.decode(kind: .referral, json: bytes) else {
                Console.rawJSON(bytes)
                return
            }
            Console.out("Referral:  \(id)")
            let agreed = r.patientAgreed ? " (agrees)" : " (has NOT agreed)"
            if let details = r.patientDetails {
                Console.out(Terminal.safe("Patient:   \(details.name.text), NHS \(r.subject.formatted)\(agreed)", singleLine: true))
                for line in PatientDetailsOptions.lines(details, on: r.authoredOn) { Console.out(Terminal.safe(line, singleLine: true)) }
            } else {
                Console.out("Patient:   \(r.subject.formatted)\(agreed)")
            }
            Console.out("Priority:  \(r.priority.rawValue)    Category: \(r.category.rawValue)")
            Console.out("Service:   \(Terminal.block(r.serviceRequested, indent: 11))")
            Console.out("Requester: \(r.requester.person) (\(r.requester.role.rawValue))")
            let performer = [r.performer.person.map { "person:\($0)" }, r.performer.team.map { "team:\($0)" }, r.performer.role.map(\.rawValue)]
                .compactMap { $0 }.joined(separator: " ")
            Console.out("To:        \(performer)")
            Console.out("Written:   \(r.authoredOn)")
            Console.out("Reason:    \(Terminal.block(r.reasonText, indent: 11))")
            if let info = r.supportingInfo { Console.out("Context:   \(Terminal.block(info, indent: 11))") }
        }
    }

    // MARK: lifecycle events

    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a referral: you accept it, and the referrer learns it was you.",
            discussion: """
                Only members of the team it was sent to (or the named person) may accept; a \
                referral someone else took is refused (exit 65, invalid-transition, naming who).

                Example:
                  carerelay referral accept 7KD4-QXM2-P9R3
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: "Anything the referrer should know, e.g. \"first visit Thursday\".") var note: String?
        func run() throws { try ReferralCommand.event(globals, id: id, event: "accepted", note: note, done: "Accepted referral") }
    }

    struct Pass: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Not for you: step back from a referral; it stays with the rest of the team.",
            discussion: """
                Passing closes nothing: the referral stays in the team's worklist for the others, \
                and the team's co-ordinator is told. To turn it away for the whole team, the \
                co-ordinator declines it.

                Example:
                  carerelay referral pass 7KD4-QXM2-P9R3 --reason "On leave from tomorrow"
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: "Why, for the co-ordinator.") var reason: String?
        func run() throws {
            try ReferralCommand.event(
                globals, id: id, event: "passed", extra: reason.map { ["reason": $0] } ?? [:], note: nil, done: "Passed referral")
        }
    }

    struct Decline: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decline a referral for the team, with a coded reason the referrer reads (the co-ordinator).",
            discussion: """
                Declining closes the referral for the whole team, so it takes the team's co-ordinator \
                (or any member, where the team's directory entry allows it); a member who cannot take \
                it passes it instead. The referrer is told at once, with the reason and any service \
                you suggest.

                Example:
                  carerelay referral decline 7KD4-QXM2-P9R3 --code wrong-service \\
                      --reason "Needs nursing, not social care" --suggest "West community nursing (team:west.nursing)"
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: "Why, in words.") var reason: String
        @Option(help: "no-capacity, not-eligible, wrong-service, duplicate, insufficient-information, patient-declined or other.")
        var code: ReferralEvent.DeclineCode
        @Option(help: ArgumentHelp("Where it might go instead, in words.", valueName: "service")) var suggest: String?
        @Option(help: "A note for the referrer.") var note: String?
        func run() throws {
            var extra: [String: Any] = ["reason": reason, "reasonCode": code.rawValue]
            if let suggest { extra["suggestedService"] = suggest }
            try ReferralCommand.event(globals, id: id, event: "declined", extra: extra, note: note, done: "Declined referral")
        }
    }

    struct Allocate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allocate a referral to a named person (the co-ordinator's job at a single point of access).",
            discussion: """
                Example:
                  carerelay referral allocate 7KD4-QXM2-P9R3 --to sw.lee
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: ArgumentHelp("Who now holds it: ID or person:ID.", valueName: "person")) var to: String
        @Option(help: "A note for the referrer.") var note: String?
        func run() throws {
            let person = try Input.person(to, option: "--to")
            try ReferralCommand.event(
                globals, id: id, event: "allocated", extra: ["allocatedTo": ["person": person.rawValue]],
                note: note, done: "Allocated referral to \(person)")
        }
    }

    struct Complete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a referral completed, optionally with the outcome.",
            discussion: """
                Example:
                  carerelay referral complete 7KD4-QXM2-P9R3 --outcome "Package of care started 14 March"
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: "What came of it.") var outcome: String?
        @Option(help: "A note for the referrer.") var note: String?
        func run() throws {
            try ReferralCommand.event(
                globals, id: id, event: "completed", extra: outcome.map { ["outcome": $0] } ?? [:],
                note: note, done: "Completed referral")
        }
    }

    struct Withdraw: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Withdraw a referral you sent.",
            discussion: """
                Only the referrer may withdraw.

                Example:
                  carerelay referral withdraw 7KD4-QXM2-P9R3 --reason "Admitted to hospital"
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String
        @Option(help: "Why.") var reason: String?
        @Option(help: "A note.") var note: String?
        func run() throws {
            try ReferralCommand.event(
                globals, id: id, event: "withdrawn", extra: reason.map { ["reason": $0] } ?? [:],
                note: note, done: "Withdrew referral")
        }
    }

    /// One step of a referral's life in words, as `track` and `watch` show it.
    static func describe(_ step: ReferralStep, who: (PersonID) -> String) -> String {
        let because = step.reason.map { ": \($0)" } ?? ""
        var text: String
        switch step.event {
        case .accepted: text = "accepted by \(who(step.by)), who now holds it"
        case .passed: text = "passed by \(who(step.by)) (not for them; still with the team)\(because)"
        case .declined:
            text = "DECLINED for the team by \(who(step.by))\(because)\(step.reasonCode.map { " [\($0.rawValue)]" } ?? "")"
            if let suggestion = step.suggestedService { text += "; suggests: \(suggestion)" }
        case .allocated: text = "allocated to \(step.allocatedTo.map(who) ?? "?") by \(who(step.by)), who now holds it"
        case .completed: text = "completed by \(who(step.by))\(step.outcome.map { ": \($0)" } ?? "")"
        case .withdrawn: text = "withdrawn by \(who(step.by))\(because)"
        case .escalated: text = "ESCALATED\(because)"
        }
        if let note = step.note { text += " (\(note))" }
        return text
    }

    /// Sends a referral.event naming the referral, recorded as by the connected person.
    static func event(_ globals: Globals, id: String, event: String, extra: [String: Any] = [:], note: String?, done: String) throws {
        guard !id.isEmpty else { throw Failure.usage("name the referral's message id") }
        let client = try globals.connect()
        guard let me = client.welcome?.person else { throw Failure(Exit.software, "the broker did not say who you are") }
        var body: [String: Any] = ["referral": id, "event": event, "at": Timestamp(Date()).text, "by": me.rawValue]
        for (k, v) in extra { body[k] = v }
        if let note { body["note"] = note }
        let bytes = try Input.jsonBytes(body)
        _ = try Input.validate(kind: .referralEvent, bytes, source: "referral \(event)")
        let header = Sender.header(kind: .referralEvent, to: [], correlation: id, key: nil)
        let accepted = try Sender.send(client, header, body: bytes, what: "\(done) \(id); event", json: globals.json)
        try Sender.finish(accepted)
    }

    // MARK: track

    struct Track: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where a referral stands: sent, delivered to whom, taken by whom and when, deadline, escalation.",
            discussion: """
                The sender, the recipients and the receiving team may track a referral.

                Example:
                  carerelay referral track 7KD4-QXM2-P9R3
                """)
        @OptionGroup var globals: Globals
        @Argument(help: ReferralCommand.idHelp, transform: Input.referralID) var id: String

        struct Step: Codable {
            var at: Date
            var what: String
        }

        struct Report: Codable {
            var tracking: Tracking
            var timeline: [Step]
        }

        func run() throws {
            let client = try globals.connect()
            let track = try brokerCall { () throws(ClientError) in try client.query(TrackQuery(id: id)) }
            let directory = try? client.query(DirectoryQuery())
            func who(_ person: PersonID) -> String {
                directory?.name(of: person).map { "\(person) (\($0))" } ?? person.rawValue
            }
            var steps: [Step] = [Step(at: track.acceptedAt, what: "sent by \(who(track.sender))")]
            for r in track.recipients {
                if let at = r.deliveredAt { steps.append(Step(at: at, what: "delivered to \(r.person)")) }
                if let at = r.confirmedAt { steps.append(Step(at: at, what: "received by \(r.person)")) }
            }
            for step in track.referral?.history ?? [] { steps.append(Step(at: step.at, what: ReferralCommand.describe(step, who: who))) }
            if let referral = track.referral, referral.history.isEmpty {
                // A referral recorded before its steps were kept: what its record says.
                if let taker = referral.takenBy, let at = referral.takenAt {
                    steps.append(Step(at: at, what: "\(referral.status == .declined ? "declined" : "accepted") by \(who(taker))"))
                }
                if let at = referral.escalatedAt {
                    steps.append(Step(at: at, what: "ESCALATED to the team's co-ordinator: not taken within its response target"))
                }
            }
            // In time order; steps at the same moment keep the order they were stored in.
            steps = steps.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }.map(\.element)
            if globals.json { Console.json(Report(tracking: track, timeline: steps)); return }

            Console.out("\(track.kind == .referral ? "Referral" : "Message") \(track.id)")
            if let r = track.referral {
                Console.out("  patient:      \(Format.nhs(r.patient?.digits))")
                Console.out("  referrer:     \(who(r.referrer))")
                if let team = r.team { Console.out("  team:         \(team)") }
                Console.out("  status:       \(r.status.rawValue)")
                if let owner = r.owner { Console.out("  owner:        \(who(owner))") }
                if let taker = r.takenBy { Console.out("  taken by:     \(who(taker)) at \(Format.date(r.takenAt))") }
                if !r.passedBy.isEmpty { Console.out("  passed by:    \(r.passedBy.map(who).joined(separator: ", "))") }
                if let decline = r.history.last(where: { $0.event == .declined }), r.status == .declined {
                    // Text from a message stays on its line (docs/cli.md, text from messages).
                    let why = Terminal.safe(decline.reason ?? "", singleLine: true)
                    Console.out("  declined:     \(decline.reasonCode?.rawValue ?? "-"): \(why)")
                    if let suggestion = decline.suggestedService { Console.out("  suggests:     \(Terminal.safe(suggestion, singleLine: true))") }
                }
                if let deadline = r.deadline {
                    let state: String
                    if r.status != .sent {
                        state = r.takenAt.map { $0 <= deadline ? "met" : "taken late" } ?? "closed"
                    } else {
                        state =
                            deadline < Date()
                            ? "OVERDUE by \(Format.duration(Date().timeIntervalSince(deadline)))"
                            : "\(Format.duration(deadline.timeIntervalSince(Date()))) left"
                    }
                    Console.out("  respond by:   \(Format.date(deadline)) (\(state))")
                }
                if let escalated = r.escalatedAt { Console.out("  escalated:    \(Format.date(escalated))") }
            }
            Console.out("")
            Console.out("TIMELINE")
            for step in steps { Console.out("  \(Format.date(step.at))  \(Terminal.safe(step.what, singleLine: true))") }
            Console.out("")
            Console.table(
                ["RECIPIENT", "DECISION", "STATE", "DELIVERED", "RECEIVED"],
                track.recipients.map {
                    [$0.person.rawValue, $0.decision, $0.state, Format.date($0.deliveredAt), Format.date($0.confirmedAt)]
                })
        }
    }
}
