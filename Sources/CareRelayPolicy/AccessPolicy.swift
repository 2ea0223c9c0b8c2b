import CareRelayModel
import Foundation

/// Who may read or change what about a patient, on every door that is not a delivery: the
/// queries (care team, consent record, audit, tracking, a message's view, an inbox) and the
/// messages that change a patient's record (referral events, consent directives, care-team
/// links, carer check-ins and invitations). Deliveries are decided by `ConsentEngine`; this is
/// its companion for everything else, and asks the same engine whether the patient objected.
///
/// Pure, like the engine: no I/O, no clock. The broker gathers the facts (the asker's
/// directory entry, their `Standing` towards the patient, how they stand to a message) and
/// turns the decision into an answer. `Protocols/access-policy.md` states these rules as a
/// table, and the broker's matrix test checks every cell of it over a live connection.
public struct AccessPolicy: Sendable {
    public let engine: ConsentEngine

    public init(engine: ConsentEngine) {
        self.engine = engine
    }

    /// What a door answers.
    public enum Decision: Hashable, Sendable {
        case allow
        /// Refused, with a reason that may be shown to the asker (`410 not-permitted`). Used
        /// where the asker may know that the thing exists.
        case refuse(String)
        /// Answered exactly as an id nobody knows would be (`414 unknown-message`): the asker
        /// must not learn that the thing exists, e.g. a message withheld from them.
        case conceal
    }

    /// How one person stands towards one patient.
    public struct Standing: Hashable, Sendable {
        /// From the patient's care team (`careTeam`, `registeredCarer`) and, for a referral,
        /// the team it is addressed to (`referralTeam`).
        public var relationships: Set<PatientRelationship>
        /// An objection or another deny in force names this person for the patient's general
        /// information for direct care. It closes every door on that patient to them.
        public var objected: Bool

        public init(relationships: Set<PatientRelationship>, objected: Bool) {
            self.relationships = relationships
            self.objected = objected
        }

        /// A member of the care team whom the patient has not objected to.
        public var inCareTeam: Bool { relationships.contains(.careTeam) && !objected }
        public var isRegisteredCarer: Bool { relationships.contains(.registeredCarer) }
    }

    /// The asker's standing towards `patient`: their relationships (given by the broker) and
    /// whether a deny in force covers them for the patient's general information.
    public func standing(
        of asker: ConsentRecipient, toward patient: NHSNumber, directives: some ConsentDirectiveSource, now: Date
    ) -> Standing {
        let relationships = asker.relationships(to: patient)
        let denied = ConsentEngine.inForce(directives, patient, now).contains { directive in
            directive.type == .deny && directive.covers(ConsentPurpose.directCare) && directive.covers(DataCategory.general)
                && directive.subjects.contains { engine.matches($0, asker, relationships) }
        }
        return Standing(relationships: relationships, objected: denied)
    }

    // MARK: A patient's record

    /// What of a patient's record a query reads.
    public enum PatientRecord: String, Sendable {
        case careTeam = "care team"
        case consentDirectives = "consent record"
    }

    /// The `careteam` and `consent` queries: registered professionals in the patient's care
    /// team, unless the patient objected to them.
    public func mayRead(_ record: PatientRecord, asker: Directory.Person, standing: Standing) -> Decision {
        guard asker.isRegisteredProfessional else {
            return .refuse("only registered professionals in the patient's care team may read their \(record.rawValue)")
        }
        guard standing.inCareTeam else {
            return .refuse("only members of this patient's care team may read their \(record.rawValue)")
        }
        return .allow
    }

    /// `careteam.link` and `careteam.unlink`. Once a care team exists only its members may
    /// change it; the first link founds it and must name the asker or one of their own teams,
    /// so nobody makes a relationship between a patient and people unrelated to them.
    public func mayChangeCareTeam(
        asker: Directory.Person, standing: Standing, careTeamIsEmpty: Bool, member: CareTeamMember
    ) -> Decision {
        guard asker.isRegisteredProfessional else {
            return .refuse("only registered professionals may change care teams")
        }
        if standing.objected { return .refuse("only members of this patient's care team may change it") }
        if careTeamIsEmpty {
            switch member {
            case .person(let id) where id == asker.id: return .allow
            case .team(let id) where asker.teams.contains(id): return .allow
            default:
                return .refuse("this patient has no care team yet: found it by linking yourself or one of your own teams first")
            }
        }
        return standing.inCareTeam ? .allow : .refuse("only members of this patient's care team may change it")
    }

    /// A consent directive or a withdrawal. It is recorded by a registered professional in the
    /// patient's care team (their care co-ordinator among them) writing down the patient's
    /// wish, as themselves: `performer.person` is the sender. A professional the patient
    /// objected to can neither record nor withdraw anything for them.
    public func mayRecordConsent(asker: Directory.Person, standing: Standing, performer: PersonID) -> Decision {
        guard performer == asker.id else {
            return .refuse("performer.person: a consent directive is recorded by its sender (\(asker.id)), not '\(performer)'")
        }
        guard asker.isRegisteredProfessional, standing.inCareTeam else {
            return .refuse("only registered professionals in the patient's care team may record or withdraw their consent directives")
        }
        return .allow
    }

    /// A carer check-in: by the patient's registered carer (directly or through a gateway that
    /// acts for them), naming that carer as its author.
    public func mayCheckIn(carer: Directory.Person, standing: Standing, author: PersonID) -> Decision {
        guard author == carer.id else {
            return .refuse("carer: a check-in is written by the carer who sends it (\(carer.id)), not '\(author)'")
        }
        guard standing.isRegisteredCarer else {
            return .refuse("you may check in only about a patient whose care team lists you as their carer")
        }
        return .allow
    }

    /// A carer invitation: issued in the sender's own name, by a member of each patient's care
    /// team, for a carer that care team already lists as the patient's carer.
    public func mayInvite(
        issuer: Directory.Person, issuedBy: PersonID, issuerStanding: Standing, carerStanding: Standing, carer: PersonID
    ) -> Decision {
        guard issuedBy == issuer.id else {
            return .refuse("issuedBy: an invitation is issued by its sender (\(issuer.id)), not '\(issuedBy)'")
        }
        guard issuerStanding.inCareTeam else {
            return .refuse("only members of the patient's care team may invite their carer")
        }
        guard carerStanding.isRegisteredCarer else {
            return .refuse("carer: \(carer) is not listed as this patient's carer in their care team; link them first")
        }
        return .allow
    }

    // MARK: Messages

    /// How the asker stands to one stored message.
    public enum Copy: Hashable, Sendable {
        case sender
        /// A recipient; `withheld` when consent kept the message from them, at routing or now.
        case recipient(withheld: Bool)
        /// A member or the co-ordinator of the team a referral was sent to, with no copy of
        /// their own (a colleague took it, or they joined the team later).
        case handler
        case none
    }

    /// `track`, and the asker's own view of a message. A copy withheld from its recipient is
    /// invisible to them: they are answered as if the id did not exist. So is everything about
    /// a patient who objected to the asker, whatever their part in the message.
    public func mayReadMessage(_ copy: Copy, standing: Standing?) -> Decision {
        switch copy {
        case .sender: return .allow
        case .recipient(withheld: true), .none: return .conceal
        case .recipient(withheld: false), .handler:
            return standing?.objected == true ? .conceal : .allow
        }
    }

    /// Whether the asker sees every recipient's decision (the sender, and the care co-ordinators
    /// who govern the patient's care) or only the recipients who were not withheld.
    public func seesDecisions(asker: Directory.Person, copy: Copy, standing: Standing?) -> Bool {
        if copy == .sender { return true }
        return asker.roles.contains(.careCoordinator) && standing?.inCareTeam == true
    }

    /// `message` with `as`: reading the message as another person receives it. A gateway may
    /// for a carer it acts for; the sender may see how each recipient receives what they sent.
    /// Nobody reads another person's copy otherwise.
    public func mayView(as viewer: PersonID, asker: Directory.Person, copy: Copy) -> Decision {
        if viewer == asker.id || asker.actsAsGateway(for: viewer) || copy == .sender { return .allow }
        return .refuse("you may read only your own copy of a message (or, as its sender, see how a recipient receives it)")
    }

    /// Accepting, declining, allocating or completing a referral: a member of its team from
    /// whom the referral was not withheld (to anyone else it does not exist).
    public func mayActOnReferral(isHandler: Bool, ownCopyWithheld: Bool, standing: Standing) -> Decision {
        if ownCopyWithheld || standing.objected { return .conceal }
        return isHandler ? .allow : .refuse("only members of the team the referral was sent to may act on it")
    }

    /// A referral on the asker's worklist: listed unless it was withheld from them or its
    /// patient objected to them; then it is not there at all, not even as a line.
    public func mayList(referral ownCopyWithheld: Bool, standing: Standing) -> Decision {
        ownCopyWithheld || standing.objected ? .conceal : .allow
    }

    /// Allocating a referral to someone the patient objected to would make them its owner.
    public func mayAllocate(to person: PersonID, standing: Standing) -> Decision {
        standing.objected ? .refuse("allocatedTo: \(person) may not receive this patient's information") : .allow
    }

    // MARK: Audit

    /// What an `audit` query asks for.
    public enum AuditScope: Hashable, Sendable {
        /// `person` = the asker: their own actions and deliveries.
        case ownActions
        /// `patient` = one patient (with the asker's standing towards them).
        case patient(Standing)
        /// `message` = one message: the answer `mayReadMessage` gives the asker, and their
        /// standing towards the patient it is about (if any).
        case message(Decision, Standing?)
        /// Anything wider: every patient, another person.
        case everything
    }

    /// How audit rows are shown.
    public enum AuditView: Hashable, Sendable {
        /// Every row as stored, rules included: administrators, and care co-ordinators for the
        /// patients they co-ordinate.
        case full
        /// The asker's own rows without those that record something withheld from them, and
        /// without rule ids (a rule such as R1-objection would tell them what the patient said).
        case own
    }

    public func mayQueryAudit(asker: Directory.Person, scope: AuditScope) -> (Decision, AuditView) {
        if asker.roles.contains(.administrator) { return (.allow, .full) }
        let coordinates = asker.roles.contains(.careCoordinator)
        switch scope {
        case .ownActions:
            return (.allow, .own)
        case .patient(let standing) where coordinates && standing.inCareTeam:
            return (.allow, .full)
        case .message(let readable, let standing) where coordinates && (readable == .allow || standing?.inCareTeam == true):
            return (.allow, .full)
        case .message(let readable, _) where readable != .allow:
            return (.conceal, .own)
        default:
            return (
                .refuse(
                    "only administrators, and care co-ordinators for patients in their care, may query the audit trail beyond their own actions (add person=\(asker.id))"
                ), .own
            )
        }
    }

    /// `audit.verify` says only whether the chain is intact and how long it is.
    /// `notify` and `notify.set` (rule 14): a person's own notification choices, or those of
    /// someone a gateway acts for.
    public func mayChooseNotifications(for person: PersonID, asker: Directory.Person) -> Decision {
        person == asker.id || asker.actsAsGateway(for: person)
            ? .allow : .refuse("you may see and choose only your own notifications (administrators change contact details in the directory)")
    }

    /// `oncall.ack` (rule 15): someone on the chain's rota, a member of its team or its
    /// co-ordinator. (A gateway with the link sent to someone acts as them.)
    public func mayAcknowledgeOnCall(rota: [PersonID], team: Directory.Team?, asker: Directory.Person) -> Decision {
        if rota.contains(asker.id) || team.map({ asker.teams.contains($0.id) || $0.coordinator == asker.id }) == true { return .allow }
        return .conceal
    }

    public func mayVerifyAudit(asker: Directory.Person) -> Decision {
        asker.roles.contains(.administrator) || asker.roles.contains(.careCoordinator)
            ? .allow : .refuse("only administrators and care co-ordinators may verify the audit trail")
    }
}

extension Directory.Person {
    public var isRegisteredProfessional: Bool { roles.contains(where: \.isRegisteredProfessional) }

    /// Only a gateway acts for others, and only for those its directory entry lists.
    public func actsAsGateway(for other: PersonID) -> Bool {
        roles.contains(.gateway) && (actsFor ?? []).contains(other)
    }
}
