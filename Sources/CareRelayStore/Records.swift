import CareRelayModel
import Foundation

/// A message the broker has validated and routed, ready to be stored in one group commit.
public struct NewMessage: Sendable {
    public var id: String
    public var key: String
    public var kind: MessageKind
    public var sender: PersonID
    /// The routing envelope as JSON (addresses, patient, priority, labels, correlation,
    /// break-glass reason): what a delivery header is rebuilt from.
    public var envelope: [UInt8]
    public var patient: NHSNumber?
    public var correlation: String?
    public var body: [UInt8]
    public var bodyHash: [UInt8]
    public var acceptedAt: Date
    public var deliveries: [PlannedDelivery]
    public var referral: ReferralRecord?
    /// For an update to a referral already stored: the status the broker read before
    /// applying the change. The update is stored only if the referral still has it (another
    /// broker may have changed it meanwhile); nil for a new referral.
    public var referralExpectedStatus: ReferralStatus?
    /// Care team members to add for the patient, e.g. the team that accepted a referral now
    /// has a legitimate relationship.
    public var careTeamLinks: [CareTeamMember]
    public var audit: [AuditEntry]
    /// Emails, texts and webhook calls this message causes, queued in the same transaction:
    /// none is sent before the message is stored, and none is lost if the broker stops.
    public var notifications: [NotificationRecord] = []
    /// On-call chains this message starts (an urgent check-in, an escalated referral), whose
    /// first notifications are among `notifications`.
    public var onCall: [OnCallChain] = []
    /// Referrals whose reminders still queued (`referral.due-soon`) this message makes moot:
    /// someone took, declined or withdrew them.
    public var cancelsReminders: [String] = []

    public init(
        id: String, key: String, kind: MessageKind, sender: PersonID, envelope: [UInt8],
        patient: NHSNumber?, correlation: String?, body: [UInt8], bodyHash: [UInt8],
        acceptedAt: Date, deliveries: [PlannedDelivery], referral: ReferralRecord?,
        referralExpectedStatus: ReferralStatus? = nil, careTeamLinks: [CareTeamMember] = [], audit: [AuditEntry]
    ) {
        self.referralExpectedStatus = referralExpectedStatus
        self.careTeamLinks = careTeamLinks
        self.id = id
        self.key = key
        self.kind = kind
        self.sender = sender
        self.envelope = envelope
        self.patient = patient
        self.correlation = correlation
        self.body = body
        self.bodyHash = bodyHash
        self.acceptedAt = acceptedAt
        self.deliveries = deliveries
        self.referral = referral
        self.audit = audit
    }
}

/// The routing-time decision for one recipient.
public struct PlannedDelivery: Sendable, Equatable {
    public enum Decision: String, Sendable, Codable { case deliver, redacted, withheld }
    public var recipient: PersonID
    public var decision: Decision
    public var rule: String
    public var reason: String?
    public var topic: String?

    public init(recipient: PersonID, decision: Decision, rule: String, reason: String? = nil, topic: String? = nil) {
        self.recipient = recipient
        self.decision = decision
        self.rule = rule
        self.reason = reason
        self.topic = topic
    }
}

/// The outcome of storing one message of a batch.
public enum StoreOutcome: Sendable, Equatable {
    case stored(seq: Int64)
    /// The sender used this idempotency key before, with the same content.
    case duplicate(id: String, deliveries: [PlannedDelivery])
    /// The sender used this idempotency key before for a different message.
    case conflict(id: String)
    /// Not stored: the referral it updates no longer has the expected status (another broker
    /// changed it first). Carries the referral as it is now.
    case referralChanged(ReferralRecord)
}

/// A message waiting in one recipient's mailbox.
public struct MailItem: Sendable {
    public var seq: Int64
    public var id: String
    public var kind: MessageKind
    public var sender: PersonID
    public var envelope: [UInt8]
    public var patient: NHSNumber?
    public var body: [UInt8]
    public var acceptedAt: Date
    public var recipient: PersonID
    public var topic: String?

    public init(
        seq: Int64, id: String, kind: MessageKind, sender: PersonID, envelope: [UInt8], patient: NHSNumber?,
        body: [UInt8], acceptedAt: Date, recipient: PersonID, topic: String?
    ) {
        self.seq = seq
        self.id = id
        self.kind = kind
        self.sender = sender
        self.envelope = envelope
        self.patient = patient
        self.body = body
        self.acceptedAt = acceptedAt
        self.recipient = recipient
        self.topic = topic
    }
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case unavailable(String)
    case notFound(String)
    /// Another process (a running broker) has the store open for writing.
    case inUse(String)

    public var description: String {
        switch self {
        case .unavailable(let why): "the message store is unavailable: \(why)"
        case .notFound(let what): "not found: \(what)"
        case .inUse(let path): "\(path) is in use by another broker process; stop it first"
        }
    }
}

/// A recipient's confirmation of deliveries, recorded with the next batch.
public struct DeliveryConfirmation: Sendable {
    public var recipient: PersonID
    public var ids: [String]
    public init(recipient: PersonID, ids: [String]) {
        self.recipient = recipient
        self.ids = ids
    }
}

/// What was sent before under an idempotency key.
public struct EarlierSend: Sendable {
    public var id: String
    public var fingerprint: [UInt8]
    public var deliveries: [PlannedDelivery]
    public init(id: String, fingerprint: [UInt8], deliveries: [PlannedDelivery]) {
        self.id = id
        self.fingerprint = fingerprint
        self.deliveries = deliveries
    }
}

public struct StoredMessage: Sendable {
    public var seq: Int64
    public var id: String
    public var kind: MessageKind
    public var sender: PersonID
    public var envelope: [UInt8]
    public var patient: NHSNumber?
    public var body: [UInt8]
    public var acceptedAt: Date
    public init(seq: Int64, id: String, kind: MessageKind, sender: PersonID, envelope: [UInt8], patient: NHSNumber?, body: [UInt8], acceptedAt: Date)
    {
        self.seq = seq
        self.id = id
        self.kind = kind
        self.sender = sender
        self.envelope = envelope
        self.patient = patient
        self.body = body
        self.acceptedAt = acceptedAt
    }

    /// `recipient`'s copy, as a mailbox would hand it out (a read door decides on it the way
    /// a delivery does).
    public func copy(for recipient: PersonID) -> MailItem {
        MailItem(
            seq: seq, id: id, kind: kind, sender: sender, envelope: envelope, patient: patient, body: body, acceptedAt: acceptedAt,
            recipient: recipient, topic: nil)
    }
}

/// A referral as an intake's worklist needs it: its record, the referral message itself, and
/// the asker's own copy (its consent decision and state), if they were sent one.
public struct ReferralEntry: Sendable {
    public var record: ReferralRecord
    public var message: StoredMessage
    public var ownDecision: String?
    public var ownState: String?
    public init(record: ReferralRecord, message: StoredMessage, ownDecision: String?, ownState: String?) {
        self.record = record
        self.message = message
        self.ownDecision = ownDecision
        self.ownState = ownState
    }
}

/// A consent message as stored: the registry is rebuilt from these.
public struct ConsentRecord: Sendable {
    public var seq: Int64
    public var id: String
    public var sender: PersonID
    public var acceptedAt: Date
    public var body: [UInt8]
    public init(seq: Int64, id: String, sender: PersonID, acceptedAt: Date, body: [UInt8]) {
        self.seq = seq
        self.id = id
        self.sender = sender
        self.acceptedAt = acceptedAt
        self.body = body
    }
}
