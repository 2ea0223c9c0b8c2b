import Foundation

/// The id of one consent directive, chosen by whoever records it ("cd-2024-000123").
public struct ConsentDirectiveID: DirectoryIdentifier {
    public let rawValue: String
    public init(_ r: String) { rawValue = r }
}

/// Why information is being shared. Open, like `DataCategory`: sites may add purposes.
/// Wire name = raw value.
public struct ConsentPurpose: StringValue {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// Sharing to look after the patient (FHIR v3-ActReason TREAT).
    public static let directCare: ConsentPurpose = "direct-care"
    /// Discussing the patient at a multidisciplinary team meeting (000 L205).
    public static let mdtDiscussion: ConsentPurpose = "mdt-discussion"
    /// Co-ordinating care between services (allocation, follow-up).
    public static let careCoordination: ConsentPurpose = "care-coordination"
    /// Supporting the patient's carer.
    public static let carerSupport: ConsentPurpose = "carer-support"

    /// The purposes a sender may state for a message (CRP.md section 10.4).
    public static let stated: [ConsentPurpose] = [.directCare, .careCoordination, .carerSupport, .mdtDiscussion]

    /// A message's purpose when its sender states none: an MDT agenda is for the meeting's
    /// discussion, an invitation co-ordinates care, everything else is direct care.
    public static func `default`(for kind: MessageKind) -> ConsentPurpose {
        switch kind {
        case .mdtAgenda: .mdtDiscussion
        case .carerInvite: .careCoordination
        case .referral, .referralEvent, .carePlanShare, .carerCheckIn, .checkInAcknowledgement, .consent, .notice: .directCare
        }
    }

    /// Why `stated` cannot be the purpose of a message of `kind`, or nil when it can.
    public static func problem(stating stated: ConsentPurpose, for kind: MessageKind) -> String? {
        guard Self.stated.contains(stated) else {
            return "'\(stated)' is not a purpose; a message's purpose is one of \(Self.stated.map(\.rawValue).joined(separator: ", "))"
        }
        // An agenda is discussed at the meeting; nothing else is an MDT discussion.
        if (kind == .mdtAgenda) != (stated == .mdtDiscussion) {
            return kind == .mdtAgenda
                ? "an MDT agenda's purpose is mdt-discussion" : "only an MDT agenda is for mdt-discussion; this \(kind.rawValue) is not"
        }
        return nil
    }
}

/// FHIR `provision.type`: does the directive permit or deny?
public enum ConsentProvisionType: String, Hashable, Sendable, Codable, CaseIterable {
    case permit
    case deny
}

/// On what basis the directive was recorded (carried on the wire as FHIR `policyRule`).
public enum ConsentBasis: String, Hashable, Sendable, Codable, CaseIterable {
    /// The patient said so, and someone recorded it.
    case explicit
    /// Recorded from the patient's conduct (for example, accepting a referral).
    case implied
    /// Decided for a patient who lacks capacity (Mental Capacity Act 2005).
    case bestInterests = "best-interests"
    /// Required by law (for example a safeguarding duty).
    case legalDuty = "legal-duty"
}

/// FHIR `status` of a directive. Only `active` directives count in decisions.
public enum ConsentStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case active
    /// Withdrawn: ignored at once.
    case inactive
    case enteredInError = "entered-in-error"
}

/// A relationship to the patient a directive can name as its subject.
public enum ConsentRelationshipSubject: String, Hashable, Sendable, Codable, CaseIterable {
    /// Whoever is the patient's registered carer (family or friend).
    case carer
    /// Any voluntary sector broker or volunteer organiser.
    case voluntarySector = "voluntary-sector"
    /// Any member of the patient's care team.
    case careTeam = "care-team"
}

/// Who a directive is about (FHIR `provision.actor`).
public enum ConsentSubject: Hashable, Sendable, Comparable, CustomStringConvertible {
    case everyone
    case person(PersonID)
    case role(Role)
    case team(TeamID)
    case organisation(OrganisationID)
    case relationship(ConsentRelationshipSubject)

    /// The wire name of the subject kind (`actor.role`).
    public var kindName: String {
        switch self {
        case .everyone: return "everyone"
        case .person: return "person"
        case .role: return "role"
        case .team: return "team"
        case .organisation: return "organisation"
        case .relationship: return "relationship"
        }
    }

    /// The wire reference (`actor.reference`), nil for `everyone`.
    public var reference: String? {
        switch self {
        case .everyone: return nil
        case .person(let p): return p.rawValue
        case .role(let r): return r.rawValue
        case .team(let t): return t.rawValue
        case .organisation(let o): return o.rawValue
        case .relationship(let r): return r.rawValue
        }
    }

    public var description: String { reference.map { "\(kindName):\($0)" } ?? kindName }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.description < rhs.description }
}

/// When a directive applies: from `start` (inclusive) until `end` (exclusive), open if nil.
public struct ConsentPeriod: Hashable, Sendable {
    public var start: Date
    public var end: Date?
    public init(start: Date, end: Date? = nil) {
        self.start = start
        self.end = end
    }
    public func contains(_ instant: Date) -> Bool {
        instant >= start && (end.map { instant < $0 } ?? true)
    }
}

/// Who recorded a directive or a withdrawal (carried as FHIR-like `performer`).
public struct ConsentPerformer: Hashable, Sendable {
    public var person: PersonID
    public var role: Role?
    public init(person: PersonID, role: Role? = nil) {
        self.person = person
        self.role = role
    }
}

/// One consent directive of one patient: permit or deny, for some subjects, for some data
/// categories and purposes, over a period; recorded by someone, at some time, on a basis.
///
/// Empty `categories` means every category; empty `purposes` means every purpose.
/// An *objection* is a deny the patient made against sharing that would otherwise happen on
/// implied consent; it is always a deny.
public struct ConsentDirective: Hashable, Sendable, Identifiable {
    public var id: ConsentDirectiveID
    public var patient: NHSNumber
    public var status: ConsentStatus
    public var type: ConsentProvisionType
    public var isObjection: Bool
    public var subjects: [ConsentSubject]
    public var categories: [DataCategory]
    public var purposes: [ConsentPurpose]
    public var period: ConsentPeriod
    public var basis: ConsentBasis
    public var recordedBy: ConsentPerformer
    public var recordedAt: Date

    public init(
        id: ConsentDirectiveID, patient: NHSNumber, status: ConsentStatus = .active,
        type: ConsentProvisionType, isObjection: Bool = false, subjects: [ConsentSubject],
        categories: [DataCategory] = [], purposes: [ConsentPurpose] = [],
        period: ConsentPeriod, basis: ConsentBasis, recordedBy: ConsentPerformer, recordedAt: Date
    ) {
        self.id = id
        self.patient = patient
        self.status = status
        self.type = type
        self.isObjection = isObjection
        self.subjects = subjects
        self.categories = categories
        self.purposes = purposes
        self.period = period
        self.basis = basis
        self.recordedBy = recordedBy
        self.recordedAt = recordedAt
    }

    /// Whether the directive counts at `instant`: active and inside its period.
    public func isInForce(at instant: Date) -> Bool {
        status == .active && period.contains(instant)
    }

    /// Whether the directive's data categories include `category` (empty = all).
    public func covers(_ category: DataCategory) -> Bool {
        categories.isEmpty || categories.contains(category)
    }

    /// Whether the directive's purposes include `purpose` (empty = all).
    public func covers(_ purpose: ConsentPurpose) -> Bool {
        purposes.isEmpty || purposes.contains(purpose)
    }

    /// The rules that `ConsentBody` decoding also enforces, for directives built in code.
    public func validate() throws(ConsentValidationError) {
        if isObjection && type != .deny { throw .objectionMustDeny }
        if subjects.isEmpty { throw .noSubject }
        if let end = period.end, end <= period.start { throw .periodEndsBeforeStart }
    }
}

/// The withdrawal of an earlier directive, by id. Takes effect at once, also for messages
/// queued and not yet delivered (the broker checks consent again before delivery).
public struct ConsentWithdrawal: Hashable, Sendable {
    public var directive: ConsentDirectiveID
    public var patient: NHSNumber
    public var recordedBy: ConsentPerformer
    public var recordedAt: Date
    public var reason: String?
    public init(
        directive: ConsentDirectiveID, patient: NHSNumber, recordedBy: ConsentPerformer,
        recordedAt: Date, reason: String? = nil
    ) {
        self.directive = directive
        self.patient = patient
        self.recordedBy = recordedBy
        self.recordedAt = recordedAt
        self.reason = reason
    }
}

/// Why a consent body or directive is not acceptable, in words a user can act on.
public enum ConsentValidationError: Error, Hashable, Sendable, CustomStringConvertible {
    case objectionMustDeny
    case noSubject
    case periodEndsBeforeStart
    case grantMustBeActive

    public var description: String {
        switch self {
        case .objectionMustDeny: return "an objection is always a deny (provision.type must be \"deny\")"
        case .noSubject: return "a directive names at least one subject (provision.actor)"
        case .periodEndsBeforeStart: return "provision.period.end must be after provision.period.start"
        case .grantMustBeActive: return "a new directive is recorded with status \"active\""
        }
    }
}
