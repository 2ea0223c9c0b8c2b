import CareRelayModel
import Foundation

/// The id of one labelled part of a message (a care plan section, an MDT agenda item).
public typealias MessagePartID = String

/// How a recipient stands to one patient, as the broker's directory and referral records say.
public enum PatientRelationship: String, Hashable, Sendable, Codable, CaseIterable {
    /// A member of the patient's care team.
    case careTeam = "care-team"
    /// A member of the team a referral about the patient is addressed to.
    case referralTeam = "referral-team"
    /// The patient's registered carer.
    case registeredCarer = "registered-carer"
}

/// One labelled part of a message: what it is about (a patient) and what it contains
/// (data categories). A care plan has one part per section; an MDT agenda has one part per
/// item, each with its own patient.
public struct MessagePart: Hashable, Sendable {
    public var id: MessagePartID
    public var patient: NHSNumber
    /// Empty means `general`.
    public var categories: Set<DataCategory>
    /// An MDT agenda item: needs the patient's permission to be discussed.
    public var isMDTItem: Bool

    public init(id: MessagePartID, patient: NHSNumber, categories: Set<DataCategory> = [.general], isMDTItem: Bool = false) {
        self.id = id
        self.patient = patient
        self.categories = categories
        self.isMDTItem = isMDTItem
    }

    var effectiveCategories: Set<DataCategory> { categories.isEmpty ? [.general] : categories }
}

/// Who would receive the message, as the broker's directory knows them (never as the
/// recipient or the sender claims).
public struct ConsentRecipient: Hashable, Sendable {
    public var person: PersonID
    public var roles: Set<Role>
    public var teams: Set<TeamID>
    public var organisation: OrganisationID?
    /// Set when the recipient is a patient: their own NHS number.
    public var nhsNumber: NHSNumber?
    /// The recipient's relationships to patients the message is about. Absent = none.
    public var relationships: [NHSNumber: Set<PatientRelationship>]

    public init(
        person: PersonID, roles: Set<Role>, teams: Set<TeamID> = [], organisation: OrganisationID? = nil,
        nhsNumber: NHSNumber? = nil, relationships: [NHSNumber: Set<PatientRelationship>] = [:]
    ) {
        self.person = person
        self.roles = roles
        self.teams = teams
        self.organisation = organisation
        self.nhsNumber = nhsNumber
        self.relationships = relationships
    }

    public func relationships(to patient: NHSNumber) -> Set<PatientRelationship> {
        relationships[patient] ?? []
    }

    public var isRegisteredProfessional: Bool { roles.contains { $0.isRegisteredProfessional } }
}

/// An emergency override of consent ("break glass"). Allowed only as the policy says
/// (by default: registered professionals, with a reason of at least 10 characters).
public struct BreakGlassRequest: Hashable, Sendable {
    public var requestedBy: PersonID
    /// The requester's roles, from the directory.
    public var requesterRoles: Set<Role>
    public var reason: String

    public init(requestedBy: PersonID, requesterRoles: Set<Role>, reason: String) {
        self.requestedBy = requestedBy
        self.requesterRoles = requesterRoles
        self.reason = reason
    }
}

/// Everything about a message that a consent decision needs, apart from the recipient and
/// the patients' directives. `now` is an input: the engine never reads a clock.
public struct ConsentRequest: Hashable, Sendable {
    public var now: Date
    public var kind: MessageKind
    public var purpose: ConsentPurpose
    /// The sender's team the information comes from; sensitive categories need explicit
    /// consent outside it. Nil: every recipient is outside.
    public var originatingTeam: TeamID?
    /// Where the message is handled; policy rules may be scoped to localities.
    public var locality: LocalityID?
    /// The labelled parts. A message with no parts is withheld (by the policy's last rule).
    public var parts: [MessagePart]
    /// Patients whose permission to be discussed at this MDT is recorded with the meeting
    /// (in addition to `mdt-discussion` permits among their directives).
    public var mdtPermissions: Set<NHSNumber>
    public var breakGlass: BreakGlassRequest?

    public init(
        now: Date, kind: MessageKind, purpose: ConsentPurpose = .directCare, originatingTeam: TeamID? = nil,
        locality: LocalityID? = nil, parts: [MessagePart], mdtPermissions: Set<NHSNumber> = [],
        breakGlass: BreakGlassRequest? = nil
    ) {
        self.now = now
        self.kind = kind
        self.purpose = purpose
        self.originatingTeam = originatingTeam
        self.locality = locality
        self.parts = parts
        self.mdtPermissions = mdtPermissions
        self.breakGlass = breakGlass
    }
}
