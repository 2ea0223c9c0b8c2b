/// A change in a referral's life (`kind: referral.event`), naming the referral by the broker
/// message id it was accepted under. Delivery ("sent", "delivered") is the broker's own
/// tracking; these are the decisions people make.
public struct ReferralEvent: MessageBodyContent, Hashable {
    public static var kind: MessageKind { .referralEvent }

    /// The event names as they appear in the `event` field.
    public enum EventType: String, Hashable, Sendable, Codable, CaseIterable {
        case accepted
        /// "Not for me": one member steps back; the referral stays with the team.
        case passed
        case declined, allocated, completed, withdrawn
        /// Issued only by the broker, when a referral passes its response target untaken.
        case escalated
    }

    /// Why a service declined, coded so that capacity problems can be counted.
    public enum DeclineCode: String, Hashable, Sendable, Codable, CaseIterable {
        case noCapacity = "no-capacity"
        case notEligible = "not-eligible"
        case wrongService = "wrong-service"
        case duplicate
        case insufficientInformation = "insufficient-information"
        case patientDeclined = "patient-declined"
        case other
    }

    /// The named person who now holds the referral.
    public struct Allocation: Hashable, Sendable, Codable {
        public var person: PersonID
        public var team: TeamID?
        public var role: Role?

        public init(person: PersonID, team: TeamID? = nil, role: Role? = nil) {
            self.person = person
            self.team = team
            self.role = role
        }

        enum CodingKeys: String, CodingKey, CaseIterable { case person, team, role }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
            person = try c.identifier(.person)
            team = try c.identifierIfPresent(.team)
            role = try c.choiceIfPresent(.role)
        }
    }

    /// What happened, with exactly the details that event carries.
    public enum Change: Hashable, Sendable {
        case accepted
        case passed(reason: String?)
        /// Declined for the team: why, coded, and where it might go instead.
        case declined(reason: String, code: DeclineCode, suggestedService: String? = nil)
        case allocated(to: Allocation)
        case completed(outcome: String?)
        case withdrawn(reason: String?)
        case escalated(reason: String)

        public var type: EventType {
            switch self {
            case .accepted: .accepted
            case .passed: .passed
            case .declined: .declined
            case .allocated: .allocated
            case .completed: .completed
            case .withdrawn: .withdrawn
            case .escalated: .escalated
            }
        }
    }

    /// The broker message id of the referral this event is about.
    public var referral: String
    public var change: Change
    /// When it happened.
    public var at: Timestamp
    /// Who recorded it.
    public var by: PersonID
    /// Anything else the referrer should know ("first visit booked for Thursday").
    public var note: String?

    public init(referral: String, change: Change, at: Timestamp, by: PersonID, note: String? = nil) {
        self.referral = referral
        self.change = change
        self.at = at
        self.by = by
        self.note = note
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case referral, event, at, by, note, reason, reasonCode, suggestedService, allocatedTo, outcome
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.strictContainer(keyedBy: CodingKeys.self)
        referral = try c.messageID(.referral)
        let type = try c.choice(.event, as: EventType.self)
        at = try c.decode(Timestamp.self, forKey: .at)
        by = try c.identifier(.by)
        note = try c.textIfPresent(.note)

        // Each event allows only its own detail fields, as the schema's if/then rules do.
        let allowed: Set<CodingKeys> =
            switch type {
            case .accepted: []
            case .passed: [.reason]
            case .declined: [.reason, .reasonCode, .suggestedService]
            case .allocated: [.allocatedTo]
            case .completed: [.outcome]
            case .withdrawn: [.reason]
            case .escalated: [.reason]
            }
        for key in [CodingKeys.reason, .reasonCode, .suggestedService, .allocatedTo, .outcome]
        where c.contains(key) && !allowed.contains(key) {
            throw c.fail(key, "a \"\(type.rawValue)\" event does not carry \(key.rawValue)")
        }

        switch type {
        case .accepted:
            change = .accepted
        case .passed:
            change = .passed(reason: try c.textIfPresent(.reason))
        case .declined:
            change = .declined(
                reason: try c.text(.reason), code: try c.choice(.reasonCode),
                suggestedService: try c.textIfPresent(.suggestedService, max: Limits.short))
        case .allocated:
            change = .allocated(to: try c.decode(Allocation.self, forKey: .allocatedTo))
        case .completed:
            change = .completed(outcome: try c.textIfPresent(.outcome))
        case .withdrawn:
            change = .withdrawn(reason: try c.textIfPresent(.reason))
        case .escalated:
            change = .escalated(reason: try c.text(.reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(referral, forKey: .referral)
        try c.encode(change.type, forKey: .event)
        try c.encode(at, forKey: .at)
        try c.encode(by, forKey: .by)
        try c.encodeIfPresent(note, forKey: .note)
        switch change {
        case .accepted:
            break
        case .passed(let reason):
            try c.encodeIfPresent(reason, forKey: .reason)
        case .declined(let reason, let code, let suggestedService):
            try c.encode(reason, forKey: .reason)
            try c.encode(code, forKey: .reasonCode)
            try c.encodeIfPresent(suggestedService, forKey: .suggestedService)
        case .allocated(let allocation):
            try c.encode(allocation, forKey: .allocatedTo)
        case .completed(let outcome):
            try c.encodeIfPresent(outcome, forKey: .outcome)
        case .withdrawn(let reason):
            try c.encodeIfPresent(reason, forKey: .reason)
        case .escalated(let reason):
            try c.encode(reason, forKey: .reason)
        }
    }
}
