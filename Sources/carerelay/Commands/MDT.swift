import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct MDTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mdt",
        abstract: "Prepare, publish and read multidisciplinary team meeting agendas.",
        discussion: """
            An agenda is drafted in a local file, then published to the MDT's members. Each item \
            about a patient reaches only attendees the patient's consent allows; the others see \
            a placeholder.

            Example:
              carerelay mdt create --team west.mdt --start 2026-03-18T13:30:00Z --location "Pallion HC room 2" --output wed.json
              carerelay mdt add-item --file wed.json --patient 9434765919 --reason "Two falls" \\
                  --intervention "Social care referral|gp.khan|Accepted by Grace Okafor" --owner coord.patel
              carerelay mdt publish --file wed.json
              carerelay mdt outcome --file wed.json --item 1 --decision "Two calls a day" --action "Arrange the second call|coord.patel|2026-03-20"
              carerelay mdt update --file wed.json
              carerelay mdt actions --mine
            """,
        subcommands: [Create.self, AddItem.self, Publish.self, Update.self, Outcome.self, List.self, Show.self, Actions.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a draft agenda file, with the team's members from the directory as attendees.",
            discussion: """
                Example:
                  carerelay mdt create --team west.mdt --start 2026-03-18T13:30:00Z --end 2026-03-18T15:00:00Z \\
                      --location "Pallion Health Centre, room 2" --output wed.json
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The MDT's team id.") var team: String
        @Option(help: "Start, ISO 8601 with seconds and offset (2026-03-18T13:30:00Z).") var start: String
        @Option(help: "End, ISO 8601.") var end: String?
        @Option(help: "Where: a room, or \"Teams call\".") var location: String
        @Option(help: "Title (default: the team's name).") var title: String?
        @Option(help: "Meeting id (default TEAM.DATE).") var meeting: String?
        @Option(help: "Chair (default you).") var chair: String?
        @Option(help: ArgumentHelp("Another attendee (person id); repeat.", valueName: "person")) var attendee: [String] = []
        @Option(help: "The draft file to write (.json, or .yaml/.yml). Default MEETING.agenda.json.") var output: String?
        @Flag(help: "Replace an existing draft file.") var force = false

        func run() throws {
            guard TeamID.isWellFormed(team) else { throw Failure.usage("--team '\(team)' is not a team id") }
            do { _ = try Timestamp(validating: start) } catch {
                throw Failure.usage("--start '\(start)' is not a date and time like 2026-03-18T13:30:00Z")
            }
            if let end {
                do { _ = try Timestamp(validating: end) } catch {
                    throw Failure.usage("--end '\(end)' is not a date and time like 2026-03-18T15:00:00Z")
                }
            }
            let extra = try attendee.map { try Input.person($0, option: "--attendee") }
            let meetingID = meeting ?? "\(team).\(start.prefix(10))"
            guard MeetingID.isWellFormed(meetingID) else {
                throw Failure.usage("--meeting '\(meetingID)' is not a meeting id (a-z, 0-9, '.', '-', '_')")
            }
            let path = output ?? "\(meetingID).agenda.json"
            if FileManager.default.fileExists(atPath: Globals.expand(path)) && !force {
                throw Failure.usage("\(path) already exists", hint: "Use --force to replace it, or --output another file.")
            }

            let client = try globals.connect()
            let directory = try brokerCall { () throws(ClientError) in try client.query(DirectoryQuery()) }
            guard let teamEntry = directory.team(TeamID(team)) else {
                throw Failure.usage(
                    "there is no team '\(team)' in the directory",
                    hint: "MDT teams: \(directory.teams.filter { $0.kind == .mdt }.map(\.id.rawValue).joined(separator: ", "))")
            }
            var people = directory.people.filter { $0.teams.contains(TeamID(team)) }.map(\.id)
            if let coordinator = teamEntry.coordinator, !people.contains(coordinator) { people.insert(coordinator, at: 0) }
            for person in extra where !people.contains(person) { people.append(person) }
            var attendees: [[String: Any]] = []
            for id in people {
                guard let entry = directory.people.first(where: { $0.id == id }) else {
                    throw Failure.usage("--attendee \(id): no such person in the directory")
                }
                attendees.append(["person": id.rawValue, "role": entry.roles.first?.rawValue ?? "other"])
            }
            var draft: [String: Any] = [
                "meeting": meetingID, "team": team, "locality": teamEntry.locality.rawValue, "title": title ?? teamEntry.name,
                "start": start, "location": location, "version": 1,
                "chair": chair.map { $0.hasPrefix("person:") ? String($0.dropFirst(7)) : $0 } ?? client.welcome?.person.rawValue ?? "",
                "attendees": attendees, "items": [[String: Any]](),
            ]
            if let end { draft["end"] = end }
            try Input.write(draft, to: path)
            if globals.json {
                Console.json(["file": path, "meeting": meetingID])
            } else {
                Console.out(
                    "Wrote draft agenda \(path) for \(meetingID) with \(attendees.count) attendees: \(people.map(\.rawValue).joined(separator: ", "))."
                )
                Console.out("Next: carerelay mdt add-item --file \(path) --patient NHS-NUMBER --reason TEXT --owner PERSON")
            }
        }
    }

    struct AddItem: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-item",
            abstract: "Add a patient to a draft agenda: why, what has been done by whom with what result, and who owns it.",
            discussion: """
                Interventions are written "action|by|result", optionally "|YYYY-MM-DD".

                Example:
                  carerelay mdt add-item --file wed.json --patient "943 476 5919" --reason "Two falls; carer in hospital" \\
                      --intervention "Social care referral|gp.khan|Accepted, visit booked" --owner coord.patel --sensitivity social-care
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The draft agenda file.") var file: String
        @Option(help: "The patient's NHS number (checked locally).") var patient: String
        @Option(help: "Why the patient is discussed.") var reason: String
        @Option(help: ArgumentHelp("\"action|by|result\" (optionally \"|date\"); repeat.", valueName: "intervention")) var intervention: [String] = []
        @Option(help: "Who takes the actions forward (person id).") var owner: String
        @Option(help: ArgumentHelp("A sensitivity label (general, social-care, mental-health, ...); repeat.", valueName: "label")) var sensitivity:
            [String] = []

        func run() throws {
            let nhs = try Input.nhsNumber(patient)
            let ownerID = try Input.person(owner, option: "--owner")
            var interventions: [[String: Any]] = []
            for text in intervention {
                let parts = text.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 3 || parts.count == 4, !parts[0].isEmpty, !parts[2].isEmpty else {
                    throw Failure.usage("--intervention '\(text)': write \"action|by|result\", e.g. \"Home safety check|ot.fenwick|Rails fitted\"")
                }
                let by = try Input.person(parts[1], option: "--intervention (by)")
                var entry: [String: Any] = ["action": parts[0], "by": by.rawValue, "result": parts[2]]
                if parts.count == 4 { entry["date"] = try MDTCommand.day(parts[3], option: "--intervention date") }
                interventions.append(entry)
            }
            var draft = try Input.object(file)
            var items = draft["items"] as? [[String: Any]] ?? []
            var item: [String: Any] = ["patient": nhs.digits, "reason": reason, "interventions": interventions, "owner": ownerID.rawValue]
            if !sensitivity.isEmpty { item["sensitivity"] = sensitivity }
            items.append(item)
            draft["items"] = items
            try Input.write(draft, to: file)
            if globals.json {
                Console.json(["file": file, "items": "\(items.count)"])
            } else {
                Console.out("Added item \(items.count) (patient \(nhs.formatted)) to \(file).")
            }
        }
    }

    struct Outcome: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record what the meeting decided about an item, and the actions that follow, in the draft.",
            discussion: """
                Actions are written "description|owner|YYYY-MM-DD" (the due date may be left out); the \
                owner is a member of the MDT, who learns of it from the agenda. The \
                outcome is part of its item, so each attendee receives it only if they may see the item. \
                Publish it with carerelay mdt update.

                Example:
                  carerelay mdt outcome --file wed.json --item 1 --decision "Package of care increased to two calls a day" \
                      --action "Arrange the second daily call|coord.patel|2026-03-20" --action "Falls clinic referral|gp.khan"
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The draft agenda file.") var file: String
        @Option(help: "The item's number on the agenda, counting from 1.") var item: Int
        @Option(help: "What was decided.") var decision: String
        @Option(help: ArgumentHelp("\"description|owner|YYYY-MM-DD\"; repeat.", valueName: "action")) var action: [String] = []

        func run() throws {
            guard !decision.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw Failure.usage("--decision: say what was decided") }
            var actions: [[String: Any]] = []
            for text in action {
                let parts = text.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 || parts.count == 3, !parts[0].isEmpty else {
                    throw Failure.usage(
                        "--action '\(text)': write \"description|owner|YYYY-MM-DD\", e.g. \"Falls clinic referral|gp.khan|2026-03-25\"")
                }
                var entry: [String: Any] = ["description": parts[0], "owner": try Input.person(parts[1], option: "--action (owner)").rawValue]
                if parts.count == 3, !parts[2].isEmpty { entry["due"] = try MDTCommand.day(parts[2], option: "--action due date") }
                actions.append(entry)
            }
            var draft = try Input.object(file)
            var items = draft["items"] as? [[String: Any]] ?? []
            guard items.indices.contains(item - 1) else {
                throw Failure.usage("--item \(item): the agenda in \(file) has \(items.count) item(s)")
            }
            guard items[item - 1]["withheld"] == nil else {
                throw Failure.usage("--item \(item) is withheld from you: only someone who may see it can record its outcome")
            }
            items[item - 1]["outcome"] = ["decision": decision, "actions": actions]
            draft["items"] = items
            try Input.write(draft, to: file)
            if globals.json {
                Console.json(["file": file, "item": "\(item)", "actions": "\(actions.count)"])
            } else {
                Console.out("Recorded the outcome of item \(item) with \(actions.count) action(s) in \(file).")
                Console.out("Next: carerelay mdt update --file \(file)")
            }
        }
    }

    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a draft agenda to the MDT's members and show what each receives.",
            discussion: """
                Prints each recipient's outcome: "deliver, redacted" means some items are withheld \
                from that attendee (no consent recorded for discussing that patient with them). \
                Exit 66 if some recipient receives nothing.

                Example:
                  carerelay mdt publish --file wed.json
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The draft agenda file.") var file: String
        @Option(help: "Idempotency key (a resend with the same key publishes once).") var key: String?

        func run() throws {
            let draft = try Input.object(file)
            try MDTCommand.publish(globals, draft: draft, source: file, key: key)
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a changed agenda as the next version (it replaces the earlier one).",
            discussion: """
                Raises the version in the draft file by one, publishes it, and saves the file.

                Example:
                  carerelay mdt update --file wed.json
                """)
        @OptionGroup var globals: Globals
        @Option(help: "The draft agenda file.") var file: String

        func run() throws {
            var draft = try Input.object(file)
            let version = (draft["version"] as? Int) ?? 1
            draft["version"] = version + 1
            let accepted = try MDTCommand.publish(globals, draft: draft, source: file, key: nil, finish: false)
            try Input.write(draft, to: file)
            if !globals.json { Console.out("Saved \(file) at version \(version + 1).") }
            try Sender.finish(accepted)
        }
    }

    @discardableResult
    static func publish(_ globals: Globals, draft: [String: Any], source: String, key: String?, finish: Bool = true) throws -> Accepted {
        let bytes = try Input.jsonBytes(draft)
        guard case .mdtAgenda(let agenda) = try Input.validate(kind: .mdtAgenda, bytes, source: source) else {
            throw Failure(Exit.software, "the draft did not read back as an agenda")
        }
        let client = try globals.connect()
        let names = try? client.query(DirectoryQuery())
        let header = Sender.header(kind: .mdtAgenda, to: [.mdt(agenda.team)], key: key)
        let accepted = try Sender.send(
            client, header, body: bytes,
            what: "Published agenda \(agenda.meeting) version \(agenda.version)", json: globals.json, names: names)
        if !globals.json {
            Console.out("Check what an attendee sees: carerelay mdt show \(accepted.id) --as PERSON")
        }
        if finish { try Sender.finish(accepted) }
        return accepted
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upcoming meetings from agendas you received or published (latest version of each).",
            discussion: "Examples:\n  carerelay mdt list\n  carerelay mdt list --all")
        @OptionGroup var globals: Globals
        @Flag(help: "Include past meetings.") var all = false

        struct Row: Codable {
            var meeting: String; var team: String; var title: String; var start: String; var version: Int; var items: Int; var id: String
        }

        func run() throws {
            let client = try globals.connect()
            let rows = try MDTCommand.latestAgendas(client).compactMap { id, agenda -> Row? in
                if !all, let start = agenda.start.date, start < Date().addingTimeInterval(-12 * 3600) { return nil }
                return Row(
                    meeting: agenda.meeting.rawValue, team: agenda.team.rawValue, title: agenda.title, start: agenda.start.text,
                    version: agenda.version, items: agenda.items.count, id: id)
            }
            if globals.json { Console.json(rows); return }
            if rows.isEmpty { Console.out(all ? "No agendas." : "No upcoming meetings (use --all for past ones)."); return }
            Console.table(
                ["START", "MEETING", "TITLE", "VERSION", "ITEMS", "AGENDA ID"],
                rows.map {
                    [$0.start, $0.meeting, $0.title, "\($0.version)", "\($0.items)", $0.id]
                })
        }
    }

    /// A calendar day typed as YYYY-MM-DD, checked.
    static func day(_ text: String, option: String) throws -> String {
        do { _ = try CalendarDate(validating: text) } catch { throw Failure.usage("\(option) '\(text)' is not YYYY-MM-DD") }
        return text
    }

    /// The latest version of each meeting's agenda among those you received or published.
    static func latestAgendas(_ client: CareRelayClient) throws -> [(id: String, agenda: MDTAgenda)] {
        var latest: [MeetingID: (id: String, agenda: MDTAgenda)] = [:]
        for message in try Inbox.messages(client, kind: .mdtAgenda) {
            guard case .mdtAgenda(let agenda) = message.body else { continue }
            if let existing = latest[agenda.meeting], existing.agenda.version >= agenda.version { continue }
            latest[agenda.meeting] = (message.line.id, agenda)
        }
        return latest.values.sorted { $0.agenda.start.text < $1.agenda.start.text }
    }

    struct Actions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Actions agreed at MDT meetings, earliest due first (the latest agenda of each meeting).",
            discussion: """
                Only actions on items you may see are listed: an outcome travels with its item.

                Examples:
                  carerelay mdt actions --mine
                  carerelay mdt actions --json
                """)
        @OptionGroup var globals: Globals
        @Flag(help: "Only actions you own.") var mine = false

        struct Row: Codable {
            var due: String?; var overdue: Bool; var meeting: String; var patient: String; var action: String; var owner: String
            var decision: String; var agenda: String
        }

        func run() throws {
            let client = try globals.connect()
            let me = client.welcome?.person
            // Due dates are UK calendar days.
            let day = DateFormatter()
            day.locale = Locale(identifier: "en_GB")
            day.timeZone = TimeZone(identifier: "Europe/London")
            day.dateFormat = "yyyy-MM-dd"
            let today = CalendarDate(unchecked: day.string(from: Date()))
            var rows: [Row] = []
            for (id, agenda) in try MDTCommand.latestAgendas(client) {
                for item in agenda.items.compactMap(\.item) {
                    for action in item.outcome?.actions ?? [] where !mine || action.owner == me {
                        rows.append(
                            Row(
                                due: action.due?.text, overdue: action.due.map { $0 < today } ?? false, meeting: agenda.meeting.rawValue,
                                patient: item.patient.formatted, action: action.description, owner: action.owner.rawValue,
                                decision: item.outcome?.decision ?? "", agenda: id))
                    }
                }
            }
            // Undated actions last: they are due whenever the owner can.
            rows.sort { ($0.due ?? "9999") < ($1.due ?? "9999") }
            if globals.json { Console.json(rows); return }
            if rows.isEmpty { Console.out(mine ? "No MDT actions of yours." : "No MDT actions."); return }
            Console.table(
                ["DUE", "ACTION", "OWNER", "PATIENT", "MEETING", "AGENDA ID"],
                rows.map { [($0.due ?? "-") + ($0.overdue ? " OVERDUE" : ""), $0.action, $0.owner, $0.patient, $0.meeting, $0.agenda] },
                emphasis: { rows[$0].overdue ? .warning : nil })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an agenda as an attendee receives it, consent applied.",
            discussion: """
                The publisher (and care co-ordinators) may look --as another attendee to see which \
                items that attendee will not see. Exit 66 if the agenda is withheld altogether.

                Examples:
                  carerelay mdt show mm7ql0b2z-81xk3
                  carerelay mdt show mm7ql0b2z-81xk3 --as vsb.green
                """)
        @OptionGroup var globals: Globals
        @Argument(help: "The agenda's message id.") var id: String
        @Option(name: .customLong("as"), help: "Show it as this attendee receives it.") var asPerson: String?
        @OptionGroup(title: "Emergency override: read the items withheld from your copy") var breakGlass: BreakGlassOptions

        func run() throws {
            if asPerson != nil, breakGlass.reason != nil { throw Failure.usage("--break-glass reads your own copy: leave out --as") }
            let override = try breakGlass.confirmed(reading: true)
            let request = MessageQuery(id: id, as: try asPerson.map { try Input.person($0, option: "--as") }, breakGlass: override)
            let client = try globals.connect()
            let view = try brokerCall { () throws(ClientError) in try client.query(request) }
            if globals.json { Console.json(view); return }
            if view.header?.override == true { BreakGlassOptions.read() }
            if let reason = view.withheld {
                throw Failure(Exit.withheld, "agenda \(id) is withheld from \(asPerson ?? "you"): \(reason)")
            }
            guard let bytes = view.bodyBytes else { throw Failure(Exit.software, "the broker sent no body") }
            guard case .mdtAgenda(let a)? = try? MessageBody.decode(kind: .mdtAgenda, json: bytes) else {
                Console.rawJSON(bytes); return
            }
            Console.out(
                Terminal.safe(
                    "\(a.title) (meeting \(a.meeting), version \(a.version))\(asPerson.map { ", as \($0) receives it" } ?? "")", singleLine: true))
            Console.out("  when:  \(a.start)\(a.end.map { " to \($0)" } ?? "")")
            Console.out("  where: \(Terminal.safe(a.location, singleLine: true))")
            if let chair = a.chair { Console.out("  chair: \(chair)") }
            Console.out("")
            Console.out("ATTENDEES")
            for attendee in a.attendees {
                Console.out("  \(attendee.person) (\(attendee.role.rawValue))\(attendee.attendance.map { ", \($0.rawValue)" } ?? "")")
            }
            Console.out("")
            Console.out("ITEMS")
            for (index, entry) in a.items.enumerated() {
                switch entry {
                case .withheld(let placeholder):
                    Console.out("  \(index + 1). [WITHHELD] \(Terminal.safe(placeholder.notice, singleLine: true))")
                case .item(let item):
                    let labels = item.sensitivity.map { " [\($0.map(\.rawValue).joined(separator: ", "))]" } ?? ""
                    Console.out("  \(index + 1). \(item.patient.formatted), owner \(item.owner)\(labels)")
                    Console.out("     \(Terminal.block(item.reason, indent: 5))")
                    for i in item.interventions {
                        Console.out(Terminal.safe("     - \(i.action), by \(i.by)\(i.date.map { " on \($0)" } ?? ""): \(i.result)", singleLine: true))
                    }
                    if let outcome = item.outcome {
                        Console.out("     Outcome: \(Terminal.block(outcome.decision, indent: 14))")
                        for action in outcome.actions {
                            Console.out(
                                Terminal.safe(
                                    "       action: \(action.description), \(action.owner)\(action.due.map { ", due \($0)" } ?? "")", singleLine: true
                                ))
                        }
                    }
                }
            }
            if let notes = a.notes { Console.out(""); Console.out("Notes: \(Terminal.block(notes, indent: 7))") }
        }
    }
}
