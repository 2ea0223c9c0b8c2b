import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation

struct CheckInCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkin",
        abstract: "Read carers' check-ins and tell the carer you read them.",
        discussion: """
            A check-in reaches its patient's care co-ordinator (and whoever the carer's bridge sends it to). \
            Acknowledging one tells the carer, on her web page, who read it and when, with your note; \
            the check-in's other recipients see it too, so nobody picks up what a colleague already has.

            Examples:
              carerelay checkin list --unread
              carerelay checkin show mmx2k9q1-3f8a
              carerelay checkin acknowledge mmx2k9q1-3f8a --note "I will ring you at 2pm"
            """,
        subcommands: [List.self, Show.self, Acknowledge.self])

    /// A check-in you received (or sent), with every acknowledgement of it that reached you.
    struct Entry: Codable {
        var id: String
        var received: Date
        var checkIn: CarerCheckIn
        var carerName: String
        var acknowledgements: [Acknowledgement]
    }

    struct Acknowledgement: Codable {
        var id: String
        var by: PersonID
        var name: String
        var at: Timestamp
        var note: String?
    }

    /// Your check-ins, newest first, each with its acknowledgements.
    static func entries(_ client: CareRelayClient, limit: Int = 500) throws -> [Entry] {
        let acknowledgements = try bodies(client, kind: .checkInAcknowledgement, limit: limit).compactMap {
            line, view, body -> (String, Acknowledgement)? in
            guard case .checkInAcknowledgement(let a) = body else { return nil }
            let name = a.by == client.welcome?.person ? "you" : view.header?.fromName ?? a.by.rawValue
            return (a.checkIn, Acknowledgement(id: line.id, by: a.by, name: name, at: a.at, note: a.note))
        }
        let byCheckIn = Dictionary(grouping: acknowledgements, by: \.0).mapValues { $0.map(\.1).sorted { $0.at < $1.at } }
        return try bodies(client, kind: .carerCheckIn, limit: limit).compactMap { line, view, body in
            guard case .carerCheckIn(let c) = body else { return nil }
            return Entry(
                id: line.id, received: line.acceptedAt, checkIn: c, carerName: view.header?.fromName ?? c.carer.rawValue,
                acknowledgements: byCheckIn[line.id] ?? [])
        }
    }

    /// The messages of one kind in your inbox, with their bodies as consent lets you see them.
    static func bodies(_ client: CareRelayClient, kind: MessageKind, limit: Int) throws -> [(InboxLine, MessageView, MessageBody)] {
        try Inbox.messages(client, kind: kind, limit: limit).map { ($0.line, $0.view, $0.body) }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Carers' check-ins you received, newest first, urgent ones marked.",
            discussion: """
                Examples:
                  carerelay checkin list
                  carerelay checkin list --unread --urgency urgent
                  carerelay checkin list --patient 9434765919
                """)
        @OptionGroup var globals: Globals
        @Option(help: "Only about this patient (NHS number).") var patient: String?
        @Option(help: "Only from this carer (directory id).") var carer: String?
        @Option(help: "Only this urgency: routine, soon or urgent.") var urgency: String?
        @Flag(help: "Only those nobody has acknowledged yet.") var unread = false

        func run() throws {
            let nhs = try patient.map { try Input.nhsNumber($0) }
            let carerID = try carer.map { try Input.person($0, option: "--carer") }
            let wanted = try urgency.map { text in
                guard let value = CarerCheckIn.Urgency(rawValue: text) else {
                    throw Failure.usage("--urgency '\(text)': write routine, soon or urgent")
                }
                return value
            }
            let client = try globals.connect()
            let entries = try CheckInCommand.entries(client).filter { entry in
                (nhs == nil || entry.checkIn.patient == nhs) && (carerID == nil || entry.checkIn.carer == carerID)
                    && (wanted == nil || entry.checkIn.urgency == wanted) && (!unread || entry.acknowledgements.isEmpty)
            }
            if globals.json { Console.json(entries); return }
            if entries.isEmpty { Console.out("No check-ins match."); return }
            Console.table(
                ["RECEIVED", "URGENCY", "PATIENT", "CARER", "PERSON", "CARER'S OWN", "READ BY", "ID"],
                entries.map { entry in
                    let c = entry.checkIn
                    return [
                        Format.date(entry.received), c.urgency.rawValue.uppercased(), c.patient.formatted, entry.carerName,
                        "\(c.patientWellbeing.score)/5", "wellbeing \(c.carerWellbeing.wellbeing)/5, strain \(c.carerWellbeing.strain)/10",
                        entry.acknowledgements.isEmpty ? "nobody yet" : entry.acknowledgements.map(\.name).joined(separator: ", "), entry.id,
                    ]
                },
                emphasis: { index in
                    let entry = entries[index]
                    guard entry.acknowledgements.isEmpty else { return nil }
                    return entry.checkIn.urgency == .urgent ? .alarm : entry.checkIn.urgency == .soon ? .warning : nil
                })
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "A check-in in full: the carer's words, every reading, and who has read it.",
            discussion: "Example:\n  carerelay checkin show mmx2k9q1-3f8a")
        @OptionGroup var globals: Globals
        @Argument(help: "The check-in's message id (checkin list shows them).") var id: String

        func run() throws {
            let client = try globals.connect()
            guard let entry = try CheckInCommand.entries(client).first(where: { $0.id == id }) else {
                throw Failure(Exit.rejected, "no check-in \(id) among those you received", hint: "carerelay checkin list shows them")
            }
            if globals.json { Console.json(entry); return }
            for line in CheckInCommand.describe(entry) { Console.out(line) }
        }
    }

    /// The check-in as a person reads it, line by line.
    static func describe(_ entry: Entry) -> [String] {
        let c = entry.checkIn
        var lines = [
            "Check-in \(entry.id) from \(entry.carerName) (\(c.carer)), the carer",
            "Patient:   \(c.patient.formatted)",
            "Written:   \(Format.date(c.authored.date))    Urgency: \(c.urgency.rawValue.uppercased())",
            "The person: \(c.patientWellbeing.score)/5",
            "  \(Terminal.block(c.patientWellbeing.text, indent: 2))",
            "The carer:  wellbeing \(c.carerWellbeing.wellbeing)/5, strain \(c.carerWellbeing.strain)/10",
        ]
        if let text = c.carerWellbeing.text { lines.append("  \(Terminal.block(text, indent: 2))") }
        if let concerns = c.concerns { lines += ["Concerns:", "  \(Terminal.block(concerns, indent: 2))"] }
        if let readings = c.readings, !readings.isEmpty {
            lines.append("Readings:")
            lines += readings.map { "  \(reading($0))" }
        }
        if entry.acknowledgements.isEmpty {
            lines.append("Read by:   nobody yet (carerelay checkin acknowledge \(entry.id))")
        } else {
            for a in entry.acknowledgements {
                lines.append("Read by:   \(a.name) (\(a.by)) at \(Format.date(a.at.date))\(a.note.map { ": \(Format.oneLine($0, max: 200))" } ?? "")")
            }
        }
        return lines.map { Terminal.safe($0) }
    }

    /// "Body temperature: 38.1 °C at 2025-03-22 02:40 UTC".
    static func reading(_ r: CarerCheckIn.Reading) -> String {
        let units = ["Cel": "°C", "/min": "a minute", "%": "%", "kg": "kg", "mmol/L": "mmol/L", "mm[Hg]": "mmHg"]
        let value = r.value.rounded() == r.value ? String(Int(r.value)) : String(r.value)
        let unit = units[r.unit] ?? r.unit
        return "\(r.code.display ?? r.code.code): \(value)\(unit == "%" ? "" : " ")\(unit) at \(Format.date(r.time.date))"
    }

    struct Acknowledge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Tell the carer you read her check-in, with a note if you like.",
            discussion: """
                The carer sees on her web page who read it, when, and your note; the check-in's other \
                recipients see it too. Only someone the check-in was delivered to may acknowledge it.

                Example:
                  carerelay checkin acknowledge mmx2k9q1-3f8a --note "Thank you. I will ring you at 2pm."
                """)
        @OptionGroup var globals: Globals
        @Argument(help: "The check-in's message id (checkin list shows them).") var id: String
        @Option(help: "A note for the carer (at most 1000 characters).") var note: String?
        @Option(help: "Idempotency key.") var key: String?

        func run() throws {
            if let note, note.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || note.count > 1000 {
                throw Failure.usage("--note: write 1 to 1000 characters, or leave it out")
            }
            let client = try globals.connect()
            let view = try brokerCall { () throws(ClientError) in try client.query(MessageQuery(id: id)) }
            guard let bytes = view.bodyBytes, case .carerCheckIn(let checkIn)? = try? MessageBody.decode(kind: .carerCheckIn, json: bytes) else {
                throw Failure(Exit.rejected, "\(id) is not a carer check-in you received")
            }
            guard let me = client.welcome?.person else { throw Failure(Exit.software, "the broker did not say who you are") }
            let body = CheckInAcknowledgement(checkIn: id, patient: checkIn.patient, by: me, at: Timestamp(Date()), note: note)
            let header = Sender.header(kind: .checkInAcknowledgement, to: [], patient: checkIn.patient, key: key)
            let accepted = try Sender.send(
                client, header, body: body.encode(), what: "Acknowledged check-in \(id)", json: globals.json)
            try Sender.finish(accepted)
        }
    }
}
