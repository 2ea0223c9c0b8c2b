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
    public var takenBy: PersonID?
    public var takenAt: Date?
    public var allocatedTo: PersonID?
    public var deadline: Date?
    public var escalatedAt: Date?
    public var updatedAt: Date

    public init(
        messageID: String, referrer: PersonID, team: TeamID?, patient: NHSNumber?, status: Status,
        takenBy: PersonID? = nil, takenAt: Date? = nil, allocatedTo: PersonID? = nil,
        deadline: Date?, escalatedAt: Date? = nil, updatedAt: Date
    ) {
        self.messageID = messageID
        self.referrer = referrer
        self.team = team
        self.patient = patient
        self.status = status
        self.takenBy = takenBy
        self.takenAt = takenAt
        self.allocatedTo = allocatedTo
        self.deadline = deadline
        self.escalatedAt = escalatedAt
        self.updatedAt = updatedAt
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
