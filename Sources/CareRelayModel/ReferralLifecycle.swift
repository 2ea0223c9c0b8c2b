/// Where a referral stands. Its record starts `sent` when the referral is accepted by the
/// broker; the events people send move it on (Protocols/CRP.md, section 11).
public enum ReferralStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case sent, accepted, declined, allocated, completed, withdrawn
}

/// A referral's life: its statuses, the events that change them, and who may send each,
/// from which status. Pure: the broker works out who the sender is to the referral (its
/// referrer, one of the people it was sent to) and whether the access policy lets them near
/// it; this says whether the step is allowed and where it leads. The table in
/// Protocols/CRP.md section 11 states the same rules, and ReferralLifecycleTests checks every
/// row of it against `transitions`.
public enum ReferralLifecycle {
    public typealias Event = ReferralEvent.EventType

    /// Who someone is to a referral. One person may be several (a referrer in the team they
    /// referred to).
    public enum Party: String, Hashable, Sendable, CaseIterable {
        /// The referral's sender.
        case referrer
        /// A member of the team the referral was sent to (for a referral to persons, one of
        /// its recipients).
        case handler
        /// The broker itself, never a client.
        case broker
    }

    /// One allowed step: `event`, sent by `party`, moves a referral from `from` to `to`.
    public struct Transition: Hashable, Sendable {
        public var from: ReferralStatus
        public var event: Event
        public var party: Party
        public var to: ReferralStatus

        public init(from: ReferralStatus, event: Event, party: Party, to: ReferralStatus) {
            self.from = from
            self.event = event
            self.party = party
            self.to = to
        }
    }

    /// Why a step is refused.
    public enum Refusal: Error, Hashable, Sendable {
        /// The sender is not someone who may send this event (410 not-permitted).
        case notPermitted(reason: String)
        /// The event is not allowed from the referral's status (415 invalid-transition).
        case invalidTransition(from: ReferralStatus, to: ReferralStatus)

        /// The plain-English reason, naming the referral and, once someone has taken it, who.
        public func reason(referral: String, takenBy: PersonID?) -> String {
            switch self {
            case .notPermitted(let reason):
                return reason
            case .invalidTransition(let from, let to):
                var why = "referral \(referral) is \(from.rawValue)"
                if let takenBy, from != .sent { why += " (taken by \(takenBy))" }
                return "\(why); it cannot become \(to.rawValue)"
            }
        }
    }

    /// Who may send each event.
    public static func party(for event: Event) -> Party {
        switch event {
        case .accepted, .declined, .allocated, .completed: .handler
        case .withdrawn: .referrer
        case .escalated: .broker
        }
    }

    /// The status each event leads to. Escalation leaves a referral `sent`: it can still be
    /// accepted.
    public static func target(of event: Event) -> ReferralStatus {
        switch event {
        case .accepted: .accepted
        case .declined: .declined
        case .allocated: .allocated
        case .completed: .completed
        case .withdrawn: .withdrawn
        case .escalated: .sent
        }
    }

    /// The statuses each event may be sent from. Declined, completed and withdrawn are final.
    public static func sources(of event: Event) -> Set<ReferralStatus> {
        switch event {
        case .accepted, .declined, .escalated: [.sent]
        case .allocated, .withdrawn: [.sent, .accepted, .allocated]
        case .completed: [.accepted, .allocated]
        }
    }

    /// Every allowed step.
    public static let transitions: [Transition] = Event.allCases.flatMap { event in
        ReferralStatus.allCases.filter(sources(of: event).contains).map {
            Transition(from: $0, event: event, party: party(for: event), to: target(of: event))
        }
    }

    /// Where `event`, sent by someone who is `parties` to the referral, takes a referral that
    /// is `status`; or why it may not. Who may send it is checked before the status.
    public static func next(from status: ReferralStatus, event: Event, by parties: Set<Party>) -> Result<ReferralStatus, Refusal> {
        guard parties.contains(party(for: event)) else {
            let reason =
                switch event {
                case .withdrawn: "only the referrer may withdraw a referral"
                case .escalated: "only the broker escalates a referral"
                case .accepted, .declined, .allocated, .completed:
                    "only members of the team the referral was sent to may \(event.rawValue) it"
                }
            return .failure(.notPermitted(reason: reason))
        }
        guard sources(of: event).contains(status) else {
            return .failure(.invalidTransition(from: status, to: target(of: event)))
        }
        return .success(target(of: event))
    }
}
