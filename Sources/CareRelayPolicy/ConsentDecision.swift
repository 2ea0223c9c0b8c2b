import CareRelayModel

/// What happens to a message for one recipient.
public enum ConsentOutcome: Hashable, Sendable {
    case deliver
    /// Deliver without these parts (in message order). The broker replaces a removed MDT item
    /// with "item withheld" and drops a removed care plan section.
    case deliverRedacted(removing: [MessagePartID])
    case withhold

    public var name: String {
        switch self {
        case .deliver: return "deliver"
        case .deliverRedacted: return "deliver-redacted"
        case .withhold: return "withhold"
        }
    }
}

/// The decision for one part of a message.
public struct PartDecision: Hashable, Sendable {
    public var partID: MessagePartID
    public var delivered: Bool
    /// The policy rule that decided (`R2-explicit-deny`, ...).
    public var ruleID: String
    /// Plain English, safe to show the sender: never names the patient's directives.
    public var reason: String
    /// The directives that made the deciding rule fire, sorted by id. For the audit trail
    /// only: **never show these to the sender.**
    public var directiveIDs: [ConsentDirectiveID]

    public init(partID: MessagePartID, delivered: Bool, ruleID: String, reason: String, directiveIDs: [ConsentDirectiveID] = []) {
        self.partID = partID
        self.delivered = delivered
        self.ruleID = ruleID
        self.reason = reason
        self.directiveIDs = directiveIDs
    }
}

/// The decision for one recipient of one message.
public struct ConsentDecision: Hashable, Sendable {
    public var recipient: PersonID
    public var outcome: ConsentOutcome
    /// The rule that decided: for `withhold` and `deliverRedacted`, the rule that withheld the
    /// first withheld part; for `deliver`, the rule that delivered the first part (or the
    /// break-glass rule).
    public var ruleID: String
    /// Plain English, safe to show the sender.
    public var reason: String
    public var parts: [PartDecision]
    /// Delivered under an emergency override (break glass). The broker must tell the
    /// patients' care co-ordinators and write the override to the audit trail.
    public var override: Bool
    /// The broker must tell each affected patient's care co-ordinator (set with `override`).
    public var notifyCareCoordinator: Bool
    /// The break-glass reason the requester gave, for the audit entry and the notice.
    public var breakGlassReason: String?

    public init(
        recipient: PersonID, outcome: ConsentOutcome, ruleID: String, reason: String, parts: [PartDecision],
        override: Bool = false, notifyCareCoordinator: Bool = false, breakGlassReason: String? = nil
    ) {
        self.recipient = recipient
        self.outcome = outcome
        self.ruleID = ruleID
        self.reason = reason
        self.parts = parts
        self.override = override
        self.notifyCareCoordinator = notifyCareCoordinator
        self.breakGlassReason = breakGlassReason
    }

    /// The rule that decided a given part.
    public func ruleID(forPart id: MessagePartID) -> String? { parts.first { $0.partID == id }?.ruleID }
}
