import Foundation

/// A referral as the broker keeps it: who sent it to which team, about whom, where it stands
/// in its lifecycle (`ReferralLifecycle`) and who took it. Stored as this JSON, and part of the
/// `track` query's answer.
public struct ReferralRecord: Sendable, Equatable, Codable {
    public typealias Status = ReferralStatus
    public var messageID: String
    public var referrer: PersonID
    public var team: TeamID?
    public var patient: NHSNumber?
    public var status: Status
    /// Who first took it for the team (accepted it, or was allocated it), and when: the time
    /// the response target is measured against.
    public var takenBy: PersonID?
    public var takenAt: Date?
    /// Who holds it now: the member who accepted it, or the person it was last allocated to.
    public var owner: PersonID?
    public var allocatedTo: PersonID?
    /// Members who passed it ("not for me"); it stays with the rest of the team.
    public var passedBy: [PersonID]
    public var deadline: Date?
    public var escalatedAt: Date?
    public var updatedAt: Date
    /// Every step of its life after it was sent, in the order the broker stored them.
    public var history: [ReferralStep]

    public init(
        messageID: String, referrer: PersonID, team: TeamID?, patient: NHSNumber?, status: Status,
        takenBy: PersonID? = nil, takenAt: Date? = nil, owner: PersonID? = nil, allocatedTo: PersonID? = nil, passedBy: [PersonID] = [],
        deadline: Date?, escalatedAt: Date? = nil, updatedAt: Date, history: [ReferralStep] = []
    ) {
        self.messageID = messageID
        self.referrer = referrer
        self.team = team
        self.patient = patient
        self.status = status
        self.takenBy = takenBy
        self.takenAt = takenAt
        self.owner = owner
        self.allocatedTo = allocatedTo
        self.passedBy = passedBy
        self.deadline = deadline
        self.escalatedAt = escalatedAt
        self.updatedAt = updatedAt
        self.history = history
    }

    enum CodingKeys: String, CodingKey {
        case messageID, referrer, team, patient, status, takenBy, takenAt, owner, allocatedTo, passedBy, deadline, escalatedAt, updatedAt
        case history
    }

    /// Records stored before owners, passes and history were kept read with none.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        messageID = try c.decode(String.self, forKey: .messageID)
        referrer = try c.decode(PersonID.self, forKey: .referrer)
        team = try c.decodeIfPresent(TeamID.self, forKey: .team)
        patient = try c.decodeIfPresent(NHSNumber.self, forKey: .patient)
        status = try c.decode(Status.self, forKey: .status)
        takenBy = try c.decodeIfPresent(PersonID.self, forKey: .takenBy)
        takenAt = try c.decodeIfPresent(Date.self, forKey: .takenAt)
        allocatedTo = try c.decodeIfPresent(PersonID.self, forKey: .allocatedTo)
        owner = try c.decodeIfPresent(PersonID.self, forKey: .owner) ?? allocatedTo ?? takenBy
        passedBy = try c.decodeIfPresent([PersonID].self, forKey: .passedBy) ?? []
        deadline = try c.decodeIfPresent(Date.self, forKey: .deadline)
        escalatedAt = try c.decodeIfPresent(Date.self, forKey: .escalatedAt)
        updatedAt = try c.decode(Date.self, forKey: .updatedAt)
        history = try c.decodeIfPresent([ReferralStep].self, forKey: .history) ?? []
    }
}

/// One step of a referral's life as the broker stored it: what, by whom, when (the broker's
/// clock), in which message, and the step's details.
public struct ReferralStep: Sendable, Equatable, Codable {
    public var event: ReferralEvent.EventType
    public var at: Date
    public var by: PersonID
    /// The `referral.event` message that made it (none for a broker's escalation record).
    public var message: String?
    public var allocatedTo: PersonID?
    public var reason: String?
    public var reasonCode: ReferralEvent.DeclineCode?
    public var suggestedService: String?
    public var outcome: String?
    public var note: String?

    public init(
        event: ReferralEvent.EventType, at: Date, by: PersonID, message: String? = nil, allocatedTo: PersonID? = nil, reason: String? = nil,
        reasonCode: ReferralEvent.DeclineCode? = nil, suggestedService: String? = nil, outcome: String? = nil, note: String? = nil
    ) {
        self.event = event
        self.at = at
        self.by = by
        self.message = message
        self.allocatedTo = allocatedTo
        self.reason = reason
        self.reasonCode = reasonCode
        self.suggestedService = suggestedService
        self.outcome = outcome
        self.note = note
    }

    /// The step an event records.
    public init(_ event: ReferralEvent, message: String?, at: Date) {
        self.init(event: event.change.type, at: at, by: event.by, message: message, note: event.note)
        switch event.change {
        case .accepted: break
        case .passed(let reason): self.reason = reason
        case .declined(let reason, let code, let suggestion):
            self.reason = reason
            reasonCode = code
            suggestedService = suggestion
        case .allocated(let allocation): allocatedTo = allocation.person
        case .completed(let outcome): self.outcome = outcome
        case .withdrawn(let reason): self.reason = reason
        case .escalated(let reason): self.reason = reason
        }
    }
}

/// Tracking of one message: who has it, and for a referral where it stands.
public struct Tracking: Sendable, Codable, Equatable {
    public struct Recipient: Sendable, Codable, Equatable {
        public var person: PersonID
        public var decision: String
        public var state: String
        public var deliveredAt: Date?
        public var confirmedAt: Date?
        public init(person: PersonID, decision: String, state: String, deliveredAt: Date?, confirmedAt: Date?) {
            self.person = person
            self.decision = decision
            self.state = state
            self.deliveredAt = deliveredAt
            self.confirmedAt = confirmedAt
        }
    }
    public var id: String
    public var kind: MessageKind
    public var sender: PersonID
    public var acceptedAt: Date
    public var recipients: [Recipient]
    public var referral: ReferralRecord?
    public var events: [String]
    public init(
        id: String, kind: MessageKind, sender: PersonID, acceptedAt: Date, recipients: [Recipient], referral: ReferralRecord?, events: [String]
    ) {
        self.id = id
        self.kind = kind
        self.sender = sender
        self.acceptedAt = acceptedAt
        self.recipients = recipients
        self.referral = referral
        self.events = events
    }
}

/// One line of a person's history: a message they sent or received. The `inbox` query answers
/// with these, newest first, leaving out copies withheld from the person.
public struct InboxLine: Codable, Sendable, Equatable {
    public var id: String
    public var kind: MessageKind
    public var from: PersonID
    public var acceptedAt: Date
    /// The person's delivery state; absent for messages they sent.
    public var state: String?

    public init(id: String, kind: MessageKind, from: PersonID, acceptedAt: Date, state: String?) {
        self.id = id
        self.kind = kind
        self.from = from
        self.acceptedAt = acceptedAt
        self.state = state
    }
}

/// One referral on an intake's worklist (the `worklist` query): what it asks, for whom, how
/// urgent, who holds it and how long is left.
public struct WorklistLine: Codable, Sendable, Equatable {
    public var id: String
    public var priority: Priority
    public var status: ReferralStatus
    public var team: TeamID?
    public var owner: PersonID?
    public var referrer: PersonID
    public var referrerName: String?
    public var patient: NHSNumber?
    /// From the referral's patient details, when it carries them.
    public var patientName: String?
    public var service: String
    public var sentAt: Date
    /// The response target (absent for a referral with none).
    public var respondBy: Date?
    public var escalatedAt: Date?
    /// Whether the asker passed it ("not for me").
    public var passedByYou: Bool

    public init(
        id: String, priority: Priority, status: ReferralStatus, team: TeamID?, owner: PersonID?, referrer: PersonID, referrerName: String?,
        patient: NHSNumber?, patientName: String?, service: String, sentAt: Date, respondBy: Date?, escalatedAt: Date?, passedByYou: Bool
    ) {
        self.id = id
        self.priority = priority
        self.status = status
        self.team = team
        self.owner = owner
        self.referrer = referrer
        self.referrerName = referrerName
        self.patient = patient
        self.patientName = patientName
        self.service = service
        self.sentAt = sentAt
        self.respondBy = respondBy
        self.escalatedAt = escalatedAt
        self.passedByYou = passedByYou
    }

    /// Not yet taken, and past its response target at `now`.
    public func isOverdue(at now: Date) -> Bool { status == .sent && (respondBy.map { $0 < now } ?? false) }
}
