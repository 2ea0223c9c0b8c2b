import CareRelayModel
import Foundation

// The records the stores return, built from their columns as both schemas store them
// (StoreSchema): times as seconds since 1970 (the audit's as milliseconds), kinds and actions
// as their raw text, hashes as bytes. Each store only reads its driver's row into these
// values; what they mean is decided here, once.

extension AuditRow {
    /// One row of `audit`.
    public init(
        seq: Int64, atMillis: Int64, actor: String, action: String, patient: String?, message: String?, recipient: String?,
        decision: String?, rule: String?, detail: String?, hash: some Sequence<UInt8>
    ) {
        let entry = AuditEntry(
            at: Date(timeIntervalSince1970: Double(atMillis) / 1000), actor: actor, action: AuditEntry.Action(rawValue: action) ?? .accept,
            patient: patient, message: message, recipient: recipient, decision: decision, rule: rule, detail: detail)
        self.init(seq: seq, entry: entry, hash: hash.map { String(format: "%02x", $0) }.joined())
    }
}

extension Tracking.Recipient {
    /// One row of `delivery`, as tracking shows it.
    public init(recipient: String, decision: String, state: String, deliveredAt: Double?, confirmedAt: Double?) {
        self.init(
            person: PersonID(recipient), decision: decision, state: state,
            deliveredAt: deliveredAt.map(Date.init(timeIntervalSince1970:)), confirmedAt: confirmedAt.map(Date.init(timeIntervalSince1970:)))
    }
}

extension InboxLine {
    /// A message a person sent or received, with their delivery's state; nil for a kind this
    /// broker does not know.
    public init?(id: String, kind: String, sender: String, acceptedAt: Double, state: String?) {
        guard let kind = MessageKind(rawValue: kind) else { return nil }
        self.init(id: id, kind: kind, from: PersonID(sender), acceptedAt: Date(timeIntervalSince1970: acceptedAt), state: state)
    }
}

extension MailItem {
    /// A pending delivery joined with its message; nil for a kind this broker does not know.
    public init?(
        seq: Int64, id: String, kind: String, sender: String, envelope: [UInt8], patient: String?, body: [UInt8], acceptedAt: Double,
        recipient: PersonID, topic: String?
    ) {
        guard let kind = MessageKind(rawValue: kind) else { return nil }
        self.init(
            seq: seq, id: id, kind: kind, sender: PersonID(sender), envelope: envelope, patient: patient.flatMap { try? NHSNumber(validating: $0) },
            body: body, acceptedAt: Date(timeIntervalSince1970: acceptedAt), recipient: recipient, topic: topic)
    }
}
