import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

/// Puts the consent engine to work for the broker: it turns directory entries, care teams and
/// message bodies into the engine's inputs, and keeps the registry of directives in memory so
/// a decision never touches the disk.
struct ConsentGate {
    var engine: ConsentEngine
    var registry: ConsentRegistry
    /// The newest consent message applied to the registry.
    private(set) var appliedThrough: Int64 = 0

    /// Who may read or change what on the doors that are not deliveries, from the same policy.
    var access: AccessPolicy { AccessPolicy(engine: engine) }

    init(policy: ConsentPolicy, store: any ConsentLog) throws {
        engine = ConsentEngine(policy: policy)
        registry = ConsentRegistry()
        _ = try catchUp(from: store)
    }

    /// Applies consent messages stored since the last call, in the order they were accepted.
    /// Returns whether there were any.
    mutating func catchUp(from store: any ConsentLog) throws -> Bool {
        let records = try store.consentRecords(after: appliedThrough)
        for record in records {
            if case .consent(let body)? = try? MessageBody.decode(kind: .consent, json: record.body) {
                _ = registry.apply(body)
            }
            appliedThrough = record.seq
        }
        return !records.isEmpty
    }

    /// What one message is, for the engine: its labelled parts and where it comes from.
    struct Subject {
        var kind: MessageKind
        /// Why it is shared: as the sender stated it, or the kind's default.
        var purpose: ConsentPurpose
        var parts: [MessagePart]
        var originatingTeam: TeamID?
        var locality: LocalityID?
        var breakGlass: BreakGlassRequest?
    }

    /// `adding`: directives not yet in the registry that the decision must count (those a
    /// message records about itself).
    func decide(_ subject: Subject, for recipient: ConsentRecipient, now: Date, adding: [ConsentDirective] = []) -> ConsentDecision {
        guard !adding.isEmpty else { return decide(subject, for: recipient, now: now, under: registry) }
        return decide(subject, for: recipient, now: now, under: WithAdded(registry: registry, added: adding))
    }

    /// The decision under another set of directives: the registry as a consent change would
    /// leave it, to see what that change takes back.
    func decide(_ subject: Subject, for recipient: ConsentRecipient, now: Date, under directives: some ConsentDirectiveSource) -> ConsentDecision {
        let request = ConsentRequest(
            now: now, kind: subject.kind, purpose: subject.purpose,
            originatingTeam: subject.originatingTeam, locality: subject.locality, parts: subject.parts,
            breakGlass: subject.breakGlass)
        return engine.decide(request, for: recipient, directives: directives)
    }

    /// The registry with a few directives more, without copying it.
    private struct WithAdded: ConsentDirectiveSource {
        let registry: ConsentRegistry
        let added: [ConsentDirective]
        func directives(for patient: NHSNumber) -> [ConsentDirective] { registry.directives(for: patient) + added.directives(for: patient) }
    }
}

extension BrokerCore {
    /// The recipient as the directory knows them, with their relationships to each patient
    /// the message is about (from the care teams in the store and the referral's addressees).
    func consentRecipient(
        _ person: Directory.Person, patients: Set<NHSNumber>, addressedTeams: Set<TeamID>, addressedPeople: Set<PersonID>, isReferral: Bool
    ) throws -> ConsentRecipient {
        var relationships: [NHSNumber: Set<PatientRelationship>] = [:]
        let teams = Set(person.teams)
        for patient in patients {
            var set = Set<PatientRelationship>()
            for member in try careTeam(of: patient) {
                switch member {
                case .person(let id) where id == person.id:
                    set.insert(person.roles.contains(.carer) ? .registeredCarer : .careTeam)
                case .team(let id) where teams.contains(id):
                    set.insert(.careTeam)
                default: break
                }
            }
            if isReferral && (!addressedTeams.isDisjoint(with: teams) || addressedPeople.contains(person.id)) {
                set.insert(.referralTeam)
            }
            if !set.isEmpty { relationships[patient] = set }
        }
        return ConsentRecipient(
            person: person.id, roles: Set(person.roles), teams: teams, organisation: person.organisation,
            nhsNumber: nil, relationships: relationships)
    }

    /// Agenda items have no ids of their own; their position names them.
    static func agendaPartID(_ index: Int) -> String { "item-\(index + 1)" }

    /// How a person stands towards a patient for the access policy: their place in the care
    /// team and whether the patient objected to them.
    func standing(of person: Directory.Person, toward patient: NHSNumber) throws -> AccessPolicy.Standing {
        let asker = try consentRecipient(person, patients: [patient], addressedTeams: [], addressedPeople: [], isReferral: false)
        return consent.access.standing(of: asker, toward: patient, directives: consent.registry, now: configuration.clock())
    }

    func careTeam(of patient: NHSNumber) throws -> [CareTeamMember] {
        if let cached = careTeams[patient] { return cached }
        let members = try store.careTeam(of: patient)
        careTeams[patient] = members
        return members
    }

    /// The labelled parts of a message: one per care plan section or agenda item, otherwise
    /// the whole message labelled with the header's categories.
    func consentSubject(kind: MessageKind, header: Envelope, body: MessageBody?, sender: Directory.Person) -> ConsentGate.Subject {
        var parts: [MessagePart] = []
        switch body {
        case .carePlanShare(let plan):
            for section in plan.sections {
                parts.append(MessagePart(id: section.id, patient: plan.patient, categories: Set(section.labels)))
            }
        case .mdtAgenda(let agenda):
            for (index, entry) in agenda.items.enumerated() {
                if case .item(let item) = entry {
                    parts.append(
                        MessagePart(
                            id: Self.agendaPartID(index), patient: item.patient,
                            categories: Set(item.sensitivity ?? []), isMDTItem: true))
                }
            }
        default:
            if let patient = header.patient {
                parts.append(MessagePart(id: "message", patient: patient, categories: Set(header.labels ?? [])))
            }
        }
        let originatingTeam = sender.teams.first
        let breakGlass = header.breakGlass.map {
            BreakGlassRequest(requestedBy: sender.id, requesterRoles: Set(sender.roles), reason: $0)
        }
        return ConsentGate.Subject(
            kind: kind, purpose: header.purpose ?? .default(for: kind), parts: parts, originatingTeam: originatingTeam,
            locality: originatingTeam.flatMap { directory.team($0)?.locality }, breakGlass: breakGlass)
    }
}

extension BrokerCore {
    /// A member joined or left a patient's care team. Relationships decide consent, so what
    /// waits for the people whose relationship changed (the member, or a team's members) may
    /// now go, or not; nobody else's standing towards the patient moved.
    func careTeamChanged(_ patient: NHSNumber, member: CareTeamMember) {
        careTeams[patient] = nil
        switch member {
        case .person(let id): sessions.wake(id)
        case .team(let id): sessions.wake(directory.members(of: id))
        }
    }
}
