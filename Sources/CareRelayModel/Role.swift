/// What a person does in care. A person may hold several roles; the broker takes roles from
/// the directory entry bound to the person's CURVE key, never from anything a client says.
public enum Role: String, Hashable, Sendable, Codable, CaseIterable {
    case gp
    case communityNurse = "community-nurse"
    case socialWorker = "social-worker"
    case careCoordinator = "care-coordinator"
    case mdtCoordinator = "mdt-coordinator"
    case voluntarySectorBroker = "voluntary-sector-broker"
    case pharmacist
    case therapist
    case consultant
    case carer
    case patient
    /// The carer bridge: a trusted gateway that acts for carers registered with it.
    case gateway
    /// Directory and service administration; carries no clinical access by itself.
    case administrator

    /// Registered health and social care professionals may receive information for direct
    /// care on implied consent when they have a legitimate relationship with the patient.
    public var isRegisteredProfessional: Bool {
        switch self {
        case .gp, .communityNurse, .socialWorker, .careCoordinator, .mdtCoordinator,
            .pharmacist, .therapist, .consultant:
            return true
        case .voluntarySectorBroker, .carer, .patient, .gateway, .administrator:
            return false
        }
    }
}

/// A category of patient information. Sections of a care plan and agenda items carry these
/// as sensitivity labels. Sites may add their own categories, so this is open, not an enum.
public struct DataCategory: StringValue {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let general: DataCategory = "general"
    public static let socialCare: DataCategory = "social-care"
    public static let mentalHealth: DataCategory = "mental-health"
    public static let sexualHealth: DataCategory = "sexual-health"
    public static let safeguarding: DataCategory = "safeguarding"
    public static let medication: DataCategory = "medication"
}

/// The message kinds CareRelay carries. The wire name is the raw value.
public enum MessageKind: String, Hashable, Sendable, Codable, CaseIterable {
    case referral
    case referralEvent = "referral.event"
    case mdtAgenda = "mdt.agenda"
    case carePlanShare = "careplan.share"
    case carerCheckIn = "carer.checkin"
    /// A professional read a carer's check-in (sent to the carer and the check-in's recipients).
    case checkInAcknowledgement = "carer.checkin.ack"
    /// A care co-ordinator invites a carer to the carers' bridge (sent to the gateway).
    case carerInvite = "carer.invite"
    case consent
    /// Sent only by the broker: e.g. telling a care co-ordinator of an emergency override.
    case notice = "broker.notice"
}

/// Referral priority. Each maps to a response target taken from the seeds' services
/// (Torbay 1 hour, Gwent 4 hours, Midhurst and Oxleas same day, Sandwell 3 days); the
/// targets themselves are broker configuration.
public enum Priority: String, Hashable, Sendable, Codable, CaseIterable {
    case emergency  // respond within 1 hour
    case urgent  // within 4 hours
    case sameDay = "same-day"
    case routine  // within 3 days
}
