import ArgumentParser
import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Synchronization

/// Set by SIGINT; the watch loop checks it between short waits.
final class StopFlag: Sendable {
    private let stopped = Mutex(false)
    var isSet: Bool { stopped.withLock { $0 } }
    func set() { stopped.withLock { $0 = true } }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print messages as they arrive and confirm each (the window a duty desk leaves open).",
        discussion: """
            Shows everything addressed to you (and your teams), plus --topic subscriptions \
            ("kind/locality/team", * for one segment, # for the rest). Messages waiting in your \
            mailbox arrive first. Stops on Ctrl-C, after --count messages or after --timeout \
            seconds. With --json, one JSON object per line.

            Examples:
              carerelay watch
              carerelay watch --topic "referral/west/#"
              carerelay watch --count 1 --timeout 60
            """)
    @OptionGroup var globals: Globals
    @Option(help: ArgumentHelp("Subscribe to a topic, e.g. referral/west/west.social-care; repeat.", valueName: "topic")) var topic: [String] = []
    @Option(help: "Stop after this many messages.") var count: Int?
    @Option(name: .customLong("timeout"), help: "Stop after this many seconds.") var seconds: Double?

    struct Line: Codable {
        var header: DeliverHeader
        var summary: String
        var body: String
    }

    func run() throws {
        if let count, count < 1 { throw Failure.usage("--count must be at least 1") }
        if let seconds, seconds <= 0 { throw Failure.usage("--timeout must be a positive number of seconds") }
        let stop = StopFlag()
        signal(SIGINT, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler { stop.set() }
        source.resume()
        defer { source.cancel() }

        let client = try globals.connect(receive: true)
        for t in topic {
            try brokerCall { () throws(ClientError) in try client.subscribe(t) }
        }
        let me = client.welcome.map { "\($0.name) (\($0.person))" } ?? "you"
        Console.err("Watching as \(me)\(topic.isEmpty ? "" : "; topics: \(topic.joined(separator: ", "))"). Ctrl-C to stop.")
        let deadline = seconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) }
        var received = 0
        while !stop.isSet {
            if let count, received >= count { break }
            var slice = Duration.milliseconds(500)
            if let deadline {
                let remaining = deadline - .now
                if remaining <= .zero { break }
                slice = min(slice, remaining)
            }
            guard let delivery = try brokerCall({ () throws(ClientError) in try client.nextDelivery(timeout: slice) }) else { continue }
            received += 1
            let summary = Self.summary(delivery)
            if globals.json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                let line = Line(header: delivery.header, summary: summary, body: String(decoding: delivery.body, as: UTF8.self))
                if let data = try? encoder.encode(line) { Console.out(String(decoding: data, as: UTF8.self)) }
            } else {
                let h = delivery.header
                var text = "\(h.sentAt)  \(h.kind.rawValue)  \(h.id)  from \(h.fromName) (\(h.from))"
                if let patient = h.patient { text += "  patient \(patient.formatted)" }
                if let priority = h.priority { text += "  \(priority.rawValue.uppercased())" }
                Console.out(Terminal.safe(text, singleLine: true))
                Console.out("    " + Terminal.safe(summary, singleLine: true))
                if let redacted = h.redacted, !redacted.isEmpty { Console.out("    (redacted for you: \(redacted.joined(separator: ", ")))") }
                if h.override == true { Console.out("    (sent by breaking glass: consent overridden, audited)") }
            }
            try brokerCall { () throws(ClientError) in try client.confirm([delivery.header.id], recipient: delivery.header.recipient) }
        }
        // A last round trip so the broker has read every confirmation before we hang up.
        try? client.ping()
        if !globals.json { Console.err("Stopped after \(received) message(s).") }
    }

    static func summary(_ delivery: Delivery) -> String {
        guard let body = try? MessageBody.decode(kind: delivery.header.kind, json: delivery.body) else {
            return "(\(delivery.body.count) bytes)"
        }
        switch body {
        case .referral(let r):
            let patient = r.patientDetails.map { " for \($0.name.text)" } ?? ""
            return "referral\(patient): \(r.serviceRequested) [\(r.category.rawValue)]: \(Format.oneLine(r.reasonText))"
        case .referralEvent(let e):
            return "referral \(e.referral) " + ReferralCommand.describe(ReferralStep(e, message: delivery.header.id, at: Date()), who: \.rawValue)
        case .mdtAgenda(let a):
            let withheld = a.items.filter { $0.item == nil }.count
            return "MDT agenda \(a.title), \(a.start), version \(a.version): \(a.items.count) item(s)\(withheld > 0 ? ", \(withheld) withheld" : "")"
        case .carePlanShare(let p):
            return "care plan \(p.plan) version \(p.version): \(Format.oneLine(p.changeSummary))"
        case .carerCheckIn(let c):
            let readings = (c.readings ?? []).map(CheckInCommand.reading).joined(separator: "; ")
            return
                "carer check-in from \(c.carer) about \(c.patient.formatted), \(c.urgency.rawValue): person \(c.patientWellbeing.score)/5 (\(Format.oneLine(c.patientWellbeing.text))), carer \(c.carerWellbeing.wellbeing)/5, strain \(c.carerWellbeing.strain)/10\(c.concerns.map { "; concerns: " + Format.oneLine($0) } ?? "")\(readings.isEmpty ? "" : "; readings: " + readings)"
        case .checkInAcknowledgement(let a):
            return "check-in \(a.checkIn) read by \(a.by)\(a.note.map { ": " + Format.oneLine($0) } ?? "")"
        case .consent(let c):
            return "consent \(c.action) for \(c.patient.formatted)"
        case .carerInvite(let invite):
            return "carer invitation for \(invite.carer) from \(invite.issuedBy)"
        case .notice(let n):
            switch n.notice {
            case .revoked: return "REVOKED \(n.message): \(Format.oneLine(n.text))"
            case .emergencyOverride: return "emergency override notice: \(Format.oneLine(n.text))"
            }
        }
    }
}

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Read and verify the audit trail (administrators and care co-ordinators; others see their own actions).",
        discussion: """
            Examples:
              carerelay audit query --patient 9434765919
              carerelay audit query --person gp.khan --limit 20
              carerelay audit verify
            """,
        subcommands: [QueryCommand.self, Verify.self])

    struct QueryCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "query",
            abstract: "Audit rows: every accept, deliver, redact, withhold, override and revocation, with the rule that decided.",
            discussion: "Example:\n  carerelay audit query --patient 9434765919 --limit 50")
        @OptionGroup var globals: Globals
        @Option(help: "Only rows about this patient.") var patient: String?
        @Option(help: "Only rows by or for this person.") var person: String?
        @Option(help: "Only rows about this message id.") var message: String?
        @Option(help: "At most this many rows (1-5000).") var limit = 200
        @Option(help: "Only rows with this action (accept, deliver, redact, withhold, override, revoke, ...), of those the broker returned.")
        var action: String?

        func run() throws {
            let filter = AuditFilter(
                patient: try patient.map { try Input.nhsNumber($0).digits },
                person: try person.map { try Input.person($0, option: "--person").rawValue },
                message: message, limit: limit)
            guard AuditFilter.limits.contains(limit) else { throw Failure.usage("--limit must be between 1 and 5000") }
            let wanted = try action.map { action in
                guard let wanted = AuditEntry.Action(rawValue: action) else { throw Failure.usage("--action '\(action)' is not an audit action") }
                return wanted
            }
            let client = try globals.connect()
            var rows = try brokerCall { () throws(ClientError) in try client.query(filter) }
            if let wanted { rows = rows.filter { $0.entry.action == wanted } }
            if globals.json { Console.json(rows); return }
            if rows.isEmpty { Console.out("No audit rows match."); return }
            Console.table(
                ["SEQ", "AT", "ACTOR", "ACTION", "PATIENT", "MESSAGE", "RECIPIENT", "DECISION", "RULE", "DETAIL"],
                rows.map { r in
                    let e = r.entry
                    return [
                        "\(r.seq)", Format.date(e.at), e.actor, e.action.rawValue, e.patient ?? "-", e.message ?? "-", e.recipient ?? "-",
                        e.decision ?? "-", e.rule ?? "-", e.detail.map { Format.oneLine($0, max: 80) } ?? "-",
                    ]
                })
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the audit trail's hash chain. Exit 1 if it is broken.",
            discussion: "Example:\n  carerelay audit verify")
        @OptionGroup var globals: Globals

        func run() throws {
            let client = try globals.connect()
            let result = try brokerCall { () throws(ClientError) in try client.query(AuditVerifyQuery()) }
            if globals.json { Console.json(result) }
            switch result {
            case .intact(let rows):
                if !globals.json { Console.out("Audit trail intact: \(rows) rows.") }
            case .broken(let row, let reason):
                throw Failure(
                    Exit.auditBroken, "AUDIT TRAIL BROKEN at row \(row): \(reason)",
                    hint: "Rows from there on cannot be trusted. Tell your information governance lead; do not restart the broker on a copied store.")
            }
        }
    }
}
