// The broker is being reshaped (issue 19) and still uses the old, textual forms below; they go
// once it takes the typed ones. Nothing else should use them.
import CareRelayModel
import Foundation

// Moved to CareRelayModel; re-exported for files that import only this module
// (CareRelayBroker/BrokerVitals.swift). Remove once that file imports CareRelayModel.
@_exported import struct CareRelayModel.StoreStatistics

extension MessageStore {
    /// The care team as "team:ID" and "person:ID" text.
    @_disfavoredOverload
    public func careTeam(of patient: NHSNumber) throws -> [String] {
        try careTeam(of: patient).map(\.description)
    }

    @_disfavoredOverload
    public func link(patient: NHSNumber, member: String, by actor: PersonID, at now: Date) throws {
        try link(patient: patient, member: try Self.member(member), by: actor, at: now)
    }

    @_disfavoredOverload
    public func unlink(patient: NHSNumber, member: String, by actor: PersonID, at now: Date) throws {
        try unlink(patient: patient, member: try Self.member(member), by: actor, at: now)
    }

    private static func member(_ text: String) throws -> CareTeamMember {
        guard let member = CareTeamMember(text) else { throw StoreError.unavailable("'\(text)' is not team:ID or person:ID") }
        return member
    }
}

extension NewMessage {
    /// With care team links as "team:ID" and "person:ID" text.
    @_disfavoredOverload
    public init(
        id: String, key: String, kind: MessageKind, sender: PersonID, envelope: [UInt8],
        patient: NHSNumber?, correlation: String?, body: [UInt8], bodyHash: [UInt8],
        acceptedAt: Date, deliveries: [PlannedDelivery], referral: ReferralRecord?,
        referralExpectedStatus: ReferralStatus? = nil, careTeamLinks: [String], audit: [AuditEntry]
    ) {
        self.init(
            id: id, key: key, kind: kind, sender: sender, envelope: envelope, patient: patient, correlation: correlation,
            body: body, bodyHash: bodyHash, acceptedAt: acceptedAt, deliveries: deliveries, referral: referral,
            referralExpectedStatus: referralExpectedStatus, careTeamLinks: careTeamLinks.compactMap(CareTeamMember.init), audit: audit)
    }
}
