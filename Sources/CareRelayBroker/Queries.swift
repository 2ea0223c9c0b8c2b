import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

extension BrokerCore {
    /// A command from a key not in the directory: only `enrol` (with a code) is answered; the
    /// key becomes the person's when the code is good.
    func answerStranger(_ routingID: [UInt8], key: String, command: ClientCommand) {
        guard case .query(let query) = command, query.query == QueryName.enrol.rawValue else {
            reply(
                routingID,
                .rejected(
                    Rejected(
                        ProtocolError(
                            .notPermitted,
                            "this connection's key is not in the directory (never enrolled, revoked or rotated): it may only enrol, with a code from your administrator (carerelay enrol CODE); nothing was accepted"
                        ),
                        command: command.name, req: command.req)))
            return
        }
        proceed(routingID, query: query.query, req: query.req) {
            .now(try json(try enrol(try EnrolmentRequest(params: query.params ?? [:]), key: key)))
        }
    }

    /// Reads and small administrative requests. Identity and roles come from the directory
    /// entry of the authenticated key; whether the asker may read or change anything about a
    /// patient is the access policy's decision (`AccessPolicy`, Protocols/access-policy.md).
    func answer(_ routingID: [UInt8], person: Directory.Person, query: Query) {
        let params = query.params ?? [:]
        proceed(routingID, query: query.query, req: query.req) { try evaluate(query.query, params: params, body: query.body, person: person) }
    }

    /// What a read beside the loop came back with: the answer, or records to decide on here.
    func answer(_ done: ReadBesideTheLoop, with result: Result<ReadOutcome, any Error>) {
        proceed(done.routingID, query: done.query, req: done.req) {
            switch try result.get() {
            case .answer(let body): return .now(body)
            case .decide(let decide): return try decide(self)
            }
        }
    }

    /// Sends the answer `step` made now, hands a read to the reader thread, or refuses.
    private func proceed(_ routingID: [UInt8], query: String, req: String?, _ step: () throws -> QueryStep) {
        do {
            switch try step() {
            case .now(let result):
                reply(routingID, .result(ResultHeader(query: query, req: req), body: result))
            case .besideTheLoop(let read):
                readsBesideTheLoop.append(ReadBesideTheLoop(routingID: routingID, query: query, req: req, read: read))
            }
        } catch let error as ProtocolError {
            reply(routingID, .rejected(Rejected(error, command: "QUERY", req: req)))
        } catch {
            reply(
                routingID,
                .rejected(Rejected(ProtocolError(.storeUnavailable, "the store could not answer: \(error)"), command: "QUERY", req: req)))
        }
    }

    /// How every answer is encoded: sorted keys, unescaped slashes, ISO 8601 dates.
    private static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The loop's own encoder.
    private static let encoder = makeEncoder()

    private func json(_ value: some Encodable) throws -> [UInt8] {
        [UInt8](try Self.encoder.encode(value))
    }

    /// Encodes as the loop's answers are encoded, with an encoder of the reading thread's own.
    private static func jsonBesideTheLoop(_ value: some Encodable) throws -> [UInt8] {
        [UInt8](try makeEncoder().encode(value))
    }

    /// One handler per query, each given its request as the protocol types it (a missing or
    /// malformed parameter is refused there) and answering with the protocol's result type.
    private func evaluate(_ name: String, params: [String: String], body: [UInt8]?, person: Directory.Person) throws -> QueryStep {
        let name = try QueryName(query: name)
        guard body == nil || name == .directoryChange else {
            throw ProtocolError(.malformedMessage, "only directory.change carries a body; \(name.rawValue) has its parameters in the header")
        }
        switch name {
        case .status:
            // Figures only (counts, sizes, times): safe for anyone the directory knows.
            var vitalsNow = vitals.snapshot
            vitalsNow.connectedClients = sessions.count
            return .now(try json(BrokerStatusReport(vitals: vitalsNow, store: try store.statistics(at: configuration.clock()))))
        case .inbox: return try inbox(try InboxQuery(params: params), person: person)
        case .track:
            let request = try TrackQuery(params: params)
            return Self.readMessage(request.id) { core, read in .now(try core.json(try core.track(read, person: person))) }
        case .message:
            let request = try MessageQuery(params: params)
            return Self.readMessage(request.id) { core, read in .now(try core.json(try core.messageView(request, read, person: person))) }
        case .careTeam: return .now(try json(try careTeam(try CareTeamQuery(params: params), person: person)))
        case .careTeamLink: return .now(try json(try changeCareTeam(try CareTeamChange(link: true, params: params), person: person)))
        case .careTeamUnlink: return .now(try json(try changeCareTeam(try CareTeamChange(link: false, params: params), person: person)))
        case .consent: return .now(try json(try consentRecord(try ConsentQuery(params: params), person: person)))
        case .audit:
            let filter = AuditFilter(params: params)
            guard let message = filter.message, filter.person == nil else {
                return try audit(filter, scope: try auditScope(filter, person: person), person: person)
            }
            // Whether the asker may read the message's trail depends on their part in it.
            return Self.readMessage(message) { core, read in
                try core.audit(filter, scope: try core.auditScope(of: read, person: person), person: person)
            }
        case .auditVerify:
            try AccessPolicy.enforce(consent.access.mayVerifyAudit(asker: person))
            // Reads every row of the trail: never on the loop.
            return .besideTheLoop { reader in .answer(try Self.jsonBesideTheLoop(try reader.verifyAudit())) }
        case .worklist:
            let request = try WorklistQuery(params: params)
            let teams = try worklistTeams(request.team, person: person)
            let statuses = request.statuses ?? WorklistQuery.openStatuses
            return .besideTheLoop { reader in
                let entries = try reader.referrals(to: teams, orPerson: person.id, statuses: statuses, limit: WorklistQuery.limits.upperBound)
                // Bodies are decoded here, beside the loop; the loop only decides who sees what.
                let read = entries.compactMap { entry -> (ReferralEntry, ReferralBody)? in
                    guard case .referral(let body)? = try? MessageBody.decode(kind: .referral, json: entry.message.body) else { return nil }
                    return (entry, body)
                }
                return .decide { core in .now(try core.json(try core.worklist(read, request, person: person))) }
            }
        case .directory:
            let listing = DirectoryListing(directory.directory, defaultTargets: configuration.responseTargets, now: configuration.clock())
            return .now(try json(listing))
        case .directoryChange:
            return .now(try json(try changeDirectory(try DirectoryChangeRequest(params: params, body: body), by: person)))
        case .enrolIssue:
            return .now(try json(try issueEnrolmentCode(try EnrolmentIssue(params: params), by: person)))
        case .enrol:
            return .now(try json(try enrolledAlready(try EnrolmentRequest(params: params), person: person)))
        case .notify:
            return .now(try json(try notificationChoices(try NotifyQuery(params: params), person: person)))
        case .notifySet:
            return .now(try json(try setNotificationChoices(try NotifySet(params: params), person: person)))
        case .onCallAck:
            return .now(try json(try onCallAcknowledgement(try OnCallAcknowledge(params: params), person: person)))
        }
    }

    /// A message and its tracking as the store holds them, read beside the loop.
    struct MessageRead: Sendable {
        let id: String
        let stored: StoredMessage?
        let tracking: Tracking?
    }

    /// Reads a message and its tracking beside the loop, then `decide`s on the loop what the
    /// asker may see of them.
    private static func readMessage(
        _ id: String, decide: @escaping @Sendable (BrokerCore, MessageRead) throws -> QueryStep
    ) -> QueryStep {
        .besideTheLoop { reader in
            let read = MessageRead(id: id, stored: try reader.message(id: id), tracking: try reader.tracking(id: id))
            return .decide { core in try decide(core, read) }
        }
    }

    // MARK: A patient's record

    private func careTeam(_ request: CareTeamQuery, person: Directory.Person) throws -> CareTeamQuery.Answer {
        try AccessPolicy.enforce(consent.access.mayRead(.careTeam, asker: person, standing: try standing(of: person, toward: request.patient)))
        return try store.careTeam(of: request.patient)
    }

    /// The history of consent messages; the registry in force is what they add up to.
    private func consentRecord(_ request: ConsentQuery, person: Directory.Person) throws -> ConsentQuery.Answer {
        try AccessPolicy.enforce(
            consent.access.mayRead(.consentDirectives, asker: person, standing: try standing(of: person, toward: request.patient)))
        return try store.consentRecords(patient: request.patient).map {
            ConsentLine(message: $0.id, recordedBy: $0.sender, acceptedAt: $0.acceptedAt, record: String(decoding: $0.body, as: UTF8.self))
        }
    }

    // MARK: Inbox and messages

    private func inbox(_ request: InboxQuery, person: Directory.Person) throws -> QueryStep {
        var subject = person.id
        if let other = request.person {
            guard person.actsAsGateway(for: other) else {
                throw ProtocolError(.notPermitted, "params.for: you may read only your own inbox or that of someone you act for")
            }
            subject = other
        }
        return .besideTheLoop { [subject] reader in
            // A copy withheld from its recipient is not theirs to see, not even as a line saying so.
            let lines = try reader.history(for: subject, kind: request.kind, limit: request.effectiveLimit).filter { $0.state != "withheld" }
            return .answer(try Self.jsonBesideTheLoop(lines))
        }
    }

    /// How `person` stands to a tracked message, and towards the patient it is about.
    private func copy(of person: Directory.Person, in tracking: Tracking) -> AccessPolicy.Copy {
        if tracking.sender == person.id { return .sender }
        if let mine = tracking.recipients.first(where: { $0.person == person.id }) {
            return .recipient(withheld: mine.decision == "withheld" || mine.state == "withheld")
        }
        if let team = tracking.referral?.team, directory.members(of: team).contains(person.id) || directory.team(team)?.coordinator == person.id {
            return .handler
        }
        return .none
    }

    func unknown(_ id: String) -> ProtocolError {
        ProtocolError(.unknownMessage, "message \(id) is not known to this broker")
    }

    /// The tracked message and the asker's part in it, or "not known" when the policy hides it.
    private func visible(_ read: MessageRead, to person: Directory.Person) throws -> (
        StoredMessage, Tracking, AccessPolicy.Copy, AccessPolicy.Standing?
    ) {
        guard let stored = read.stored, let tracking = read.tracking else { throw unknown(read.id) }
        let part = copy(of: person, in: tracking)
        let patient = stored.patient ?? tracking.referral?.patient
        let towardsPatient = try patient.map { try standing(of: person, toward: $0) }
        if consent.access.mayReadMessage(part, standing: towardsPatient) != .allow { throw unknown(read.id) }
        return (stored, tracking, part, towardsPatient)
    }

    private func track(_ read: MessageRead, person: Directory.Person) throws -> TrackQuery.Answer {
        var (_, tracking, copy, standing) = try visible(read, to: person)
        if !consent.access.seesDecisions(asker: person, copy: copy, standing: standing) {
            // Who the message was withheld from says what the patient decided about them.
            tracking.recipients.removeAll { $0.decision == "withheld" || $0.state == "withheld" }
        }
        if var referral = tracking.referral, let team = referral.team,
            !directory.members(of: team).contains(person.id) && directory.team(team)?.coordinator != person.id
        {
            // A member's "not for me" is the team's business, not the referrer's.
            let passes = Set(referral.history.filter { $0.event == .passed }.compactMap(\.message))
            referral.passedBy = []
            referral.history.removeAll { $0.event == .passed }
            tracking.referral = referral
            tracking.events.removeAll(where: passes.contains)
        }
        return tracking
    }

    /// A message as one person receives it, consent applied as it stands now. The sender may
    /// ask how each recipient sees it (`as`), which is how an MDT co-ordinator checks what each
    /// attendee will read; a gateway reads the copies of the carers it acts for.
    private func messageView(_ request: MessageQuery, _ read: MessageRead, person: Directory.Person) throws -> MessageQuery.Answer {
        // The sender reads what they wrote: nothing to override.
        if let reason = request.breakGlass, read.stored?.sender != person.id { return try readWithOverride(read, person: person, reason: reason) }
        let id = request.id
        let viewerID = request.viewer ?? person.id
        var asker = person
        if viewerID != person.id, person.actsAsGateway(for: viewerID), let carer = directory.person(viewerID) {
            asker = carer  // the bridge reads exactly what the carer may read
        }
        let (stored, tracking, copy, _) = try visible(read, to: asker)
        try AccessPolicy.enforce(consent.access.mayView(as: viewerID, asker: asker, copy: copy))
        guard let viewer = directory.person(viewerID) else { throw ProtocolError(.unknownAddress, "person:\(viewerID): no such person") }
        if viewerID == stored.sender {
            return MessageView(header: nil, body: String(decoding: stored.body, as: UTF8.self), withheld: nil)
        }
        guard tracking.recipients.contains(where: { $0.person == viewerID }) else {
            throw ProtocolError(.notPermitted, "\(viewerID) is not a recipient of message \(id)")
        }
        let item = stored.copy(for: viewerID)
        switch prepareDelivery(item, to: viewer, now: configuration.clock(), attempt: 0) {
        case .send(let header, let body, _, _):
            return MessageView(header: header, body: String(decoding: body, as: UTF8.self), withheld: nil)
        case .withhold(_, let reason):
            // Only the sender learns that (and why) a recipient may not read it.
            guard copy == .sender else { throw unknown(id) }
            return MessageView(header: nil, body: nil, withheld: reason)
        case .notYet:
            throw ProtocolError(.storeUnavailable, "the broker could not read the care team to decide; ask again in a moment")
        }
    }

    // MARK: The intake's worklist

    /// The teams whose referrals `person` may list: their own and those they co-ordinate.
    private func worklistTeams(_ asked: TeamID?, person: Directory.Person) throws -> [TeamID] {
        let mine = Set(person.teams + directory.directory.teams.filter { $0.coordinator == person.id }.map(\.id))
        guard let asked else { return mine.sorted { $0.rawValue < $1.rawValue } }
        guard mine.contains(asked) else {
            throw ProtocolError(.notPermitted, "params.team: you may list the referrals of your own teams, or of teams you co-ordinate")
        }
        return [asked]
    }

    /// The entries read beside the loop, as the asker may see them: the access policy decides
    /// each line; the filters and the order are the worklist's.
    private func worklist(
        _ entries: [(entry: ReferralEntry, body: ReferralBody)], _ request: WorklistQuery, person: Directory.Person
    ) throws -> WorklistQuery.Answer {
        let now = configuration.clock()
        var lines: [WorklistLine] = []
        for (entry, body) in entries {
            let record = entry.record
            let towardsPatient = try record.patient.map { try standing(of: person, toward: $0) }
            let withheld = entry.ownDecision == "withheld" || entry.ownState == "withheld"
            let none = AccessPolicy.Standing(relationships: [], objected: false)
            guard consent.access.mayList(referral: withheld, standing: towardsPatient ?? none) == .allow else { continue }
            let line = WorklistLine(
                id: record.messageID, priority: body.priority, status: record.status, team: record.team, owner: record.owner,
                referrer: record.referrer, referrerName: directory.person(record.referrer)?.name, patient: record.patient,
                patientName: body.patientDetails?.name.text, service: body.serviceRequested, sentAt: entry.message.acceptedAt,
                respondBy: record.deadline, escalatedAt: record.escalatedAt, passedByYou: record.passedBy.contains(person.id))
            if let priorities = request.priorities, !priorities.contains(line.priority) { continue }
            if request.overdue && !line.isOverdue(at: now) { continue }
            if request.mine && line.owner != person.id { continue }
            lines.append(line)
        }
        // Most urgent first: untaken before taken, then the earliest respond-by, then priority.
        let rank = Dictionary(uniqueKeysWithValues: Priority.allCases.enumerated().map { ($0.element, $0.offset) })
        lines.sort {
            ($0.status == .sent ? 0 : 1, $0.respondBy ?? .distantFuture, rank[$0.priority] ?? 0)
                < ($1.status == .sent ? 0 : 1, $1.respondBy ?? .distantFuture, rank[$1.priority] ?? 0)
        }
        return Array(lines.prefix(request.effectiveLimit))
    }

    // MARK: Care teams

    private func changeCareTeam(_ request: CareTeamChange, person: Directory.Person) throws -> CareTeamChange.Answer {
        let (patient, member) = (request.patient, request.member)
        switch member {
        case .person(let id) where directory.person(id) == nil:
            throw ProtocolError(.unknownAddress, "\(member): no such person in the directory")
        case .team(let id) where directory.team(id) == nil:
            throw ProtocolError(.unknownAddress, "\(member): no such team in the directory")
        default: break
        }
        let current = try careTeam(of: patient)
        try AccessPolicy.enforce(
            consent.access.mayChangeCareTeam(
                asker: person, standing: try standing(of: person, toward: patient), careTeamIsEmpty: current.isEmpty, member: member))
        let now = configuration.clock()
        if request.link {
            try store.link(patient: patient, member: member, by: person.id, at: now)
        } else {
            try store.unlink(patient: patient, member: member, by: person.id, at: now)
        }
        careTeamChanged(patient, member: member)
        return try store.careTeam(of: patient)
    }

    // MARK: Audit

    /// Which audit rows the asker wants, for the access policy. A message's rows are decided
    /// with `auditScope(of:person:)`, once the message is read.
    private func auditScope(_ filter: AuditFilter, person: Directory.Person) throws -> AccessPolicy.AuditScope {
        if filter.person == person.id.rawValue { return .ownActions }
        if let text = filter.patient, filter.person == nil, filter.message == nil {
            return .patient(try standing(of: person, toward: try QueryParameter.patient(text)))
        }
        return .everything
    }

    private func auditScope(of read: MessageRead, person: Directory.Person) throws -> AccessPolicy.AuditScope {
        let readable = (try? visible(read, to: person)) != nil
        return .message(readable ? .allow : .conceal, try read.stored?.patient.map { try standing(of: person, toward: $0) })
    }

    /// Who may read which audit rows is decided here, on the loop; the rows are read beside it.
    private func audit(_ filter: AuditFilter, scope: AccessPolicy.AuditScope, person: Directory.Person) throws -> QueryStep {
        let (decision, view) = consent.access.mayQueryAudit(asker: person, scope: scope)
        if decision == .conceal, let message = filter.message { throw unknown(message) }
        try AccessPolicy.enforce(decision)
        let asker = person.id.rawValue
        return .besideTheLoop { reader in
            var rows: AuditFilter.Answer = try reader.audit(filter)
            if view == .own {
                // Nothing that says what was withheld from the asker, and no rule ids: a rule such
                // as R1-objection would tell them what the patient decided.
                rows.removeAll { $0.entry.recipient == asker && $0.entry.action == .withhold }
                for index in rows.indices { rows[index].entry.rule = nil }
            }
            return .answer(try Self.jsonBesideTheLoop(rows))
        }
    }
}

extension AccessPolicy {
    /// Turns a refusal into the protocol's answer. A concealed thing is answered as unknown by
    /// the caller, which knows what it was asked for; here it is a plain refusal.
    static func enforce(_ decision: Decision) throws(ProtocolError) {
        switch decision {
        case .allow: return
        case .refuse(let reason): throw ProtocolError(.notPermitted, reason)
        case .conceal: throw ProtocolError(.notPermitted, "not permitted")
        }
    }
}
