import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation

extension Engine {
    /// Reads and small administrative requests. Each checks who is asking: identity and roles
    /// come from the directory entry of the authenticated key.
    func answer(_ routingID: [UInt8], person: Directory.Person, query: Query) {
        let params = query.params ?? [:]
        do {
            let result = try evaluate(query.query, params: params, person: person)
            reply(routingID, .result(ResultHeader(query: query.query, req: query.req), body: result))
        } catch let error as ProtocolError {
            reply(routingID, .rejected(Rejected(error, command: "QUERY", req: query.req)))
        } catch {
            reply(routingID, .rejected(Rejected(ProtocolError(.storeUnavailable, "the store could not answer: \(error)"), command: "QUERY", req: query.req)))
        }
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    private func json(_ value: some Encodable) throws -> [UInt8] {
        [UInt8](try Self.encoder.encode(value))
    }

    private func patientParam(_ params: [String: String]) throws -> NHSNumber {
        guard let text = params["patient"] else { throw ProtocolError(.invalidHeader, "params.patient: name the patient's NHS number") }
        do { return try NHSNumber(validating: text) } catch {
            throw ProtocolError(.invalidNHSNumber, "params.patient: \(error.description)")
        }
    }

    private func require(_ allowed: Bool, _ reason: String) throws {
        if !allowed { throw ProtocolError(.notPermitted, reason) }
    }

    private func evaluate(_ name: String, params: [String: String], person: Directory.Person) throws -> [UInt8] {
        let now = configuration.clock()
        let isProfessional = person.roles.contains(where: \.isRegisteredProfessional)
        let isGovernance = person.roles.contains(.administrator) || person.roles.contains(.careCoordinator)
        switch name {
        case "status":
            // Figures only (counts, sizes, times): safe for anyone the directory knows.
            var vitalsNow = vitals.snapshot
            vitalsNow.connectedClients = sessions.count
            return try json(BrokerStatusReport(vitals: vitalsNow, store: try store.statistics(at: now)))

        case "inbox":
            var subject = person.id
            if let other = params["for"].map(PersonID.init) {
                try require(person.actsAsGateway(for: other), "params.for: you may read only your own inbox or that of someone you act for")
                subject = other
            }
            let kind = try params["kind"].map { text -> MessageKind in
                guard let kind = MessageKind(rawValue: text) else { throw ProtocolError(.invalidHeader, "params.kind: unknown kind '\(text)'") }
                return kind
            }
            let limit = min(max(Int(params["limit"] ?? "") ?? 50, 1), 500)
            struct Line: Encodable { var id: String, kind: MessageKind, from: PersonID, acceptedAt: Date, state: String? }
            return try json(try store.history(for: subject, kind: kind, limit: limit).map {
                Line(id: $0.id, kind: $0.kind, from: $0.sender, acceptedAt: $0.acceptedAt, state: $0.state)
            })

        case "track":
            guard let id = params["id"] else { throw ProtocolError(.invalidHeader, "params.id: name the message id to track") }
            guard let tracking = try store.tracking(id: id) else { throw ProtocolError(.unknownMessage, "message \(id) is not known to this broker") }
            let teamMembers = tracking.referral?.team.map { directory.members(of: $0) } ?? []
            let coordinator = tracking.referral?.team.flatMap { directory.team($0)?.coordinator }
            // A recipient whose copy was withheld may not track it: the recipients and the
            // referral record describe a patient whose consent kept the message from them.
            try require(
                tracking.sender == person.id || tracking.recipients.contains { $0.person == person.id && $0.decision != "withheld" }
                    || teamMembers.contains(person.id) || coordinator == person.id,
                "only the sender, the recipients and the receiving team may track message \(id)")
            return try json(tracking)

        case "careteam":
            try require(isProfessional, "only registered professionals may see care teams")
            let patient = try patientParam(params)
            return try json(try store.careTeam(of: patient))

        case "careteam.link", "careteam.unlink":
            try require(isProfessional, "only registered professionals may change care teams")
            let patient = try patientParam(params)
            guard let memberText = params["member"], let member = CareTeamMember(memberText) else {
                throw ProtocolError(.invalidHeader, "params.member: write team:ID or person:ID")
            }
            switch member {
            case .person(let id) where directory.person(id) == nil:
                throw ProtocolError(.unknownAddress, "\(memberText): no such person in the directory")
            case .team(let id) where directory.team(id) == nil:
                throw ProtocolError(.unknownAddress, "\(memberText): no such team in the directory")
            default: break
            }
            let current = try careTeam(of: patient)
            let inTeam = current.contains { m in
                switch m {
                case .person(let id): id == person.id
                case .team(let id): person.teams.contains(id)
                }
            }
            // The first link founds the care team; after that only its members or a
            // co-ordinator may change it.
            try require(current.isEmpty || inTeam || person.roles.contains(.careCoordinator),
                        "only members of this patient's care team, or a care co-ordinator, may change it")
            if name == "careteam.link" {
                try store.link(patient: patient, member: member.text, by: person.id, at: now)
            } else {
                try store.unlink(patient: patient, member: member.text, by: person.id, at: now)
            }
            careTeams[patient] = nil
            for session in sessions.all { dirty.insert(session.person) }
            return try json(try store.careTeam(of: patient))

        case "consent":
            let patient = try patientParam(params)
            let inTeam = try careTeam(of: patient).contains { m in
                switch m {
                case .person(let id): id == person.id
                case .team(let id): person.teams.contains(id)
                }
            }
            try require(isProfessional && (inTeam || person.roles.contains(.careCoordinator)),
                        "only registered professionals in the patient's care team may read their consent record")
            struct Line: Encodable { var message: String, recordedBy: PersonID, acceptedAt: Date, record: String }
            // The history of consent messages; the registry in force is what they add up to.
            return try json(try store.consentRecords(patient: patient).map {
                Line(message: $0.id, recordedBy: $0.sender, acceptedAt: $0.acceptedAt, record: String(decoding: $0.body, as: UTF8.self))
            })

        case "audit":
            let filter = AuditFilter(
                patient: params["patient"], person: params["person"], message: params["message"],
                limit: min(max(Int(params["limit"] ?? "") ?? 200, 1), 5_000))
            try require(isGovernance || filter.person == person.id.rawValue,
                        "only administrators and care co-ordinators may query the audit trail beyond their own actions (add person=\(person.id))")
            return try json(try store.audit(filter))

        case "audit.verify":
            try require(isGovernance, "only administrators and care co-ordinators may verify the audit trail")
            struct Verification: Encodable { var intact: Bool, rows: Int?, brokenAtRow: Int64?, reason: String? }
            switch try store.verifyAudit() {
            case .intact(let rows): return try json(Verification(intact: true, rows: rows, brokenAtRow: nil, reason: nil))
            case .broken(let row, let reason): return try json(Verification(intact: false, rows: nil, brokenAtRow: row, reason: reason))
            }

        case "message":
            // A message as one person receives it, consent applied as it stands now. The sender
            // and governance roles may ask how another recipient sees it ("as"), which is how an
            // MDT co-ordinator checks what each attendee will read.
            guard let id = params["id"] else { throw ProtocolError(.invalidHeader, "params.id: name the message id") }
            guard let stored = try store.message(id: id), let tracking = try store.tracking(id: id) else {
                throw ProtocolError(.unknownMessage, "message \(id) is not known to this broker")
            }
            let viewerID = params["as"].map(PersonID.init) ?? person.id
            let isSender = stored.sender == person.id
            let actsFor = person.actsAsGateway(for: viewerID)
            try require(viewerID == person.id || isSender || isGovernance || actsFor,
                        "only the sender may see how another recipient receives message \(id)")
            guard let viewer = directory.person(viewerID) else { throw ProtocolError(.unknownAddress, "person:\(viewerID): no such person") }
            let isRecipient = tracking.recipients.contains { $0.person == viewerID }
            try require(isRecipient || viewerID == stored.sender, "\(viewerID) is not a recipient of message \(id)")
            if viewerID == stored.sender {
                return try json(MessageView(header: nil, body: String(decoding: stored.body, as: UTF8.self), withheld: nil))
            }
            let item = MailItem(seq: stored.seq, id: stored.id, kind: stored.kind, sender: stored.sender, envelope: stored.envelope,
                                patient: stored.patient, body: stored.body, acceptedAt: stored.acceptedAt, recipient: viewerID, topic: nil)
            switch prepareDelivery(item, to: viewer, now: now, attempt: 0) {
            case .send(let header, let body, _, _):
                return try json(MessageView(header: header, body: String(decoding: body, as: UTF8.self), withheld: nil))
            case .withhold(_, let reason):
                return try json(MessageView(header: nil, body: nil, withheld: reason))
            }

        case "directory":
            struct Entry: Encodable { var id: PersonID, name: String, roles: [Role], teams: [TeamID] }
            struct Team: Encodable { var id: TeamID, name: String, kind: String, locality: LocalityID, coordinator: PersonID?, hours: String?, fallback: [String]? }
            struct Listing: Encodable { var people: [Entry], teams: [Team] }
            return try json(Listing(
                people: directory.directory.people.map { Entry(id: $0.id, name: $0.name, roles: $0.roles, teams: $0.teams) },
                teams: directory.directory.teams.map {
                    Team(id: $0.id, name: $0.name, kind: $0.kind.rawValue, locality: $0.locality, coordinator: $0.coordinator, hours: $0.hours, fallback: $0.fallback)
                }))

        default:
            throw ProtocolError(.invalidHeader, "query: unknown query '\(name)'; queries are status, inbox, track, message, careteam, careteam.link, careteam.unlink, consent, audit, audit.verify, directory")
        }
    }
}

/// A message as one recipient sees it: the DELIVER header and the (possibly redacted) body as
/// JSON text, or the plain-English reason it is withheld from them.
struct MessageView: Encodable {
    var header: DeliverHeader?
    var body: String?
    var withheld: String?
}
