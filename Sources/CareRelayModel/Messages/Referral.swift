/// A referral (`kind: referral`): a request for a service for one patient, sent to a person
/// or to a team's single point of access. Field names follow FHIR R4 `ServiceRequest`.
///
/// Lifecycle changes (accepted, declined, allocated, completed, withdrawn) travel separately
/// as `referral.event` bodies that name this referral's broker message id.
public struct ReferralBody: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .referral }

    /// FHIR `ServiceRequest.status`. A sent referral is `active`; later changes are events.
    public enum Status: String, Hashable, Sendable, Codable, CaseIterable {
        case active
    }

    /// FHIR `ServiceRequest.intent` (subset of RequestIntent).
    public enum Intent: String, Hashable, Sendable, Codable, CaseIterable {
        case proposal, plan, order
    }

    /// The kind of service asked for (FHIR `ServiceRequest.category`, local codes).
    public enum Category: String, Hashable, Sendable, Codable, CaseIterable {
        case socialCare = "social-care"
        case communityNursing = "community-nursing"
        case therapy
        case mentalHealth = "mental-health"
        case careCoordination = "care-coordination"
        case voluntarySector = "voluntary-sector"
        case assistiveTechnology = "assistive-technology"
        case other
    }

    /// Who asks (FHIR `ServiceRequest.requester`).
    public struct Requester: Hashable, Sendable, Codable {
        public var person: PersonID
        public var role: Role
        public var organisation: OrganisationID?
        public var team: TeamID?

        public init(person: PersonID, role: Role, organisation: OrganisationID? = nil, team: TeamID? = nil) {
            self.person = person
            self.role = role
            self.organisation = organisation
            self.team = team
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case person, role, organisation, team }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            person = try c.identifier(.person)
            role = try c.choice(.role)
            organisation = try c.identifierIfPresent(.organisation)
            team = try c.identifierIfPresent(.team)
        }
    }

    public var status: Status
    public var intent: Intent
    /// CareRelay priority; FHIR mapping: emergency → stat, urgent → asap, same-day → urgent,
    /// routine → routine. Must agree with the envelope's priority.
    public var priority: Priority
    public var category: Category
    /// What is asked for, in words (FHIR `ServiceRequest.code.text`), at most 200 characters.
    public var serviceRequested: String
    /// The patient's NHS number (FHIR `ServiceRequest.subject`). Must agree with the envelope.
    public var subject: NHSNumber
    /// Who the patient is and how to reach them (FHIR UK Core Patient's name, birth date,
    /// address, telecom and communication).
    public var patientDetails: PatientDetails?
    public var requester: Requester
    /// To whom: a person, a team's intake (single point of access), or a role in a team.
    public var performer: PerformerReference
    public var locality: LocalityID?
    /// When the referral was written (FHIR `authoredOn`).
    public var authoredOn: Timestamp
    /// Coded reasons (FHIR `reasonCode`), 1-10 when present.
    public var reasonCode: [Coding]?
    /// Why, in words; at most 4000 characters.
    public var reasonText: String
    /// Context the receiving service needs (home situation, access, risks); at most 4000.
    public var supportingInfo: String?
    /// Whether the patient knows of and agrees to the referral.
    public var patientAgreed: Bool

    public init(
        status: Status = .active, intent: Intent = .order, priority: Priority, category: Category,
        serviceRequested: String, subject: NHSNumber, patientDetails: PatientDetails? = nil, requester: Requester,
        performer: PerformerReference,
        locality: LocalityID? = nil, authoredOn: Timestamp, reasonCode: [Coding]? = nil, reasonText: String,
        supportingInfo: String? = nil, patientAgreed: Bool
    ) {
        self.status = status
        self.intent = intent
        self.priority = priority
        self.category = category
        self.serviceRequested = serviceRequested
        self.subject = subject
        self.patientDetails = patientDetails
        self.requester = requester
        self.performer = performer
        self.locality = locality
        self.authoredOn = authoredOn
        self.reasonCode = reasonCode
        self.reasonText = reasonText
        self.supportingInfo = supportingInfo
        self.patientAgreed = patientAgreed
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case status, intent, priority, category, serviceRequested, subject, patientDetails, requester, performer
        case locality, authoredOn, reasonCode, reasonText, supportingInfo, patientAgreed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        status = try c.choice(.status)
        intent = try c.choice(.intent)
        priority = try c.choice(.priority)
        category = try c.choice(.category)
        serviceRequested = try c.text(.serviceRequested, max: Limits.short)
        subject = try c.nhsNumber(.subject)
        patientDetails = try c.decodeIfPresent(PatientDetails.self, forKey: .patientDetails)
        requester = try c.decode(Requester.self, forKey: .requester)
        performer = try c.decode(PerformerReference.self, forKey: .performer)
        locality = try c.identifierIfPresent(.locality)
        authoredOn = try c.decode(Timestamp.self, forKey: .authoredOn)
        if let problem = patientDetails?.birthDateProblem(authoredOn: authoredOn) {
            throw MessageValidationError(c.codingPath + [CodingKeys.patientDetails, PatientDetails.CodingKeys.birthDate], problem)
        }
        reasonCode = try c.listIfPresent(.reasonCode, count: 1...10)
        reasonText = try c.text(.reasonText)
        supportingInfo = try c.textIfPresent(.supportingInfo)
        patientAgreed = try c.decode(Bool.self, forKey: .patientAgreed)
    }
}
