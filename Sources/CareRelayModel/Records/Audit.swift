import Foundation

/// One line of the audit trail. The store chains each line to the one before with SHA-256.
public struct AuditEntry: Sendable, Equatable, Codable {
    public enum Action: String, Sendable, Codable {
        case accept, deliver, redact, withhold, override, reject, confirm, escalate, consent, careTeam = "care-team"
        /// A copy already delivered, taken back because consent no longer covers it.
        case revoke
        /// The directory changed (a person or team added, changed or removed, a key set or
        /// revoked), or an enrolment code was issued or used.
        case directory
        /// Someone on call was told of urgent work, or acknowledged it (OnCallChain).
        case onCall = "on-call"
    }
    public var at: Date
    public var actor: String
    public var action: Action
    public var patient: String?
    public var message: String?
    public var recipient: String?
    public var decision: String?
    public var rule: String?
    public var detail: String?

    /// An emergency override of consent: `actor` broke glass, for `reason`, to `decision`
    /// (`deliver` a SEND, `read` a copy) to `recipient`.
    public static func override(
        at: Date, by actor: PersonID, patient: NHSNumber?, message: String, recipient: PersonID, decision: String, rule: String, reason: String?
    ) -> AuditEntry {
        AuditEntry(
            at: at, actor: actor.rawValue, action: .override, patient: patient?.digits, message: message, recipient: recipient.rawValue,
            decision: decision, rule: rule, detail: reason)
    }

    public init(
        at: Date, actor: String, action: Action, patient: String? = nil, message: String? = nil,
        recipient: String? = nil, decision: String? = nil, rule: String? = nil, detail: String? = nil
    ) {
        self.at = at
        self.actor = actor
        self.action = action
        self.patient = patient
        self.message = message
        self.recipient = recipient
        self.decision = decision
        self.rule = rule
        self.detail = detail
    }
}

public struct AuditRow: Sendable, Equatable, Codable {
    public var seq: Int64
    public var entry: AuditEntry
    public var hash: String
    public init(seq: Int64, entry: AuditEntry, hash: String) {
        self.seq = seq
        self.entry = entry
        self.hash = hash
    }
}

/// Whether the audit trail's hash chain holds. On the wire (`audit.verify`):
/// `{"intact": true, "rows": N}` or `{"intact": false, "brokenAtRow": N, "reason": text}`.
public enum AuditVerification: Sendable, Equatable, Codable {
    case intact(rows: Int)
    /// The first row whose stored hash does not match its content and predecessor.
    case broken(atRow: Int64, reason: String)

    public var isIntact: Bool {
        if case .intact = self { return true }
        return false
    }

    enum CodingKeys: String, CodingKey { case intact, rows, brokenAtRow, reason }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if try c.decode(Bool.self, forKey: .intact) {
            self = .intact(rows: try c.decode(Int.self, forKey: .rows))
        } else {
            self = .broken(atRow: try c.decode(Int64.self, forKey: .brokenAtRow), reason: try c.decode(String.self, forKey: .reason))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .intact(let rows):
            try c.encode(true, forKey: .intact)
            try c.encode(rows, forKey: .rows)
        case .broken(let row, let reason):
            try c.encode(false, forKey: .intact)
            try c.encode(row, forKey: .brokenAtRow)
            try c.encode(reason, forKey: .reason)
        }
    }
}

/// Which audit lines to read: the `audit` query's parameters, as the store filters by them.
public struct AuditFilter: Sendable, Equatable {
    public var patient: String?
    public var person: String?
    public var message: String?
    public var limit: Int
    public init(patient: String? = nil, person: String? = nil, message: String? = nil, limit: Int = 200) {
        self.patient = patient
        self.person = person
        self.message = message
        self.limit = limit
    }
}
