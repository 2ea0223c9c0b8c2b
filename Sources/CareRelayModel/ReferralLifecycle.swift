/// Where a referral stands. Its record starts `sent` when the referral is accepted by the
/// broker; the events people send move it on (Protocols/CRP.md, section 11).
public enum ReferralStatus: String, Hashable, Sendable, Codable, CaseIterable {
    case sent, accepted, declined, allocated, completed, withdrawn
}

/// A referral's life: its statuses, the events that change them, and who may send each,
/// from which status. Pure: the broker works out who the sender is to the referral (its
/// referrer, a member of the team it was sent to, the team's co-ordinator, its current owner)
/// and whether the access policy lets them near it; this says whether the step is allowed and
/// where it leads. The table in Protocols/CRP.md section 11 states the same rules, and
/// ReferralLifecycleTests checks every row of it against `transitions`.
public enum ReferralLifecycle {
    public typealias Event = ReferralEvent.EventType

    /// Who someone is to a referral. One person may be several (a co-ordinator who is also a
    /// member; an owner who is a member).
    public enum Party: String, Hashable, Sendable, CaseIterable {
        /// The referral's sender.
        case referrer
        /// A member of the team the referral was sent to (for a referral to persons, one of
        /// the people it was sent to).
        case member
        /// The co-ordinator of the team it was sent to. For `declined`, a team whose directory
        /// entry sets `membersMayDecline` counts every member as one.
        case coordinator
        /// Whoever holds it now: the member who accepted it, or the person it was allocated to.
        case owner
        /// The broker itself, never a client.
        case broker
    }

    /// One row of the table: `event`, sent by any of `parties`, moves a referral from any of
    /// `from` to `to`.
    public struct Rule: Hashable, Sendable {
        public var event: Event
        public var parties: Set<Party>
        public var from: Set<ReferralStatus>
        public var to: ReferralStatus
    }

    /// The table, as CRP.md section 11 writes it.
    public static let rules: [Rule] = [
        Rule(event: .accepted, parties: [.member, .coordinator], from: [.sent], to: .accepted),
        Rule(event: .accepted, parties: [.owner], from: [.allocated], to: .accepted),
        Rule(event: .passed, parties: [.member], from: [.sent], to: .sent),
        Rule(event: .allocated, parties: [.coordinator, .owner], from: [.sent, .accepted, .allocated], to: .allocated),
        Rule(event: .declined, parties: [.coordinator], from: [.sent, .accepted, .allocated], to: .declined),
        Rule(event: .completed, parties: [.owner, .coordinator], from: [.accepted, .allocated], to: .completed),
        Rule(event: .withdrawn, parties: [.referrer], from: [.sent, .accepted, .allocated], to: .withdrawn),
        Rule(event: .escalated, parties: [.broker], from: [.sent], to: .sent),
    ]

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

    /// Every allowed step, one per status and party.
    public static let transitions: [Transition] = rules.flatMap { rule in
        rule.from.flatMap { from in rule.parties.map { Transition(from: from, event: rule.event, party: $0, to: rule.to) } }
    }

    /// Why a step is refused.
    public enum Refusal: Error, Hashable, Sendable {
        /// The sender is not someone who may send this event at all (410 not-permitted).
        case notPermitted(reason: String)
        /// The event is not allowed from the referral's status, or not for this sender from
        /// it (415 invalid-transition).
        case invalidTransition(from: ReferralStatus, event: Event)

        /// The plain-English reason, naming the referral and, once someone holds it, who.
        public func reason(referral: String, owner: PersonID?) -> String {
            switch self {
            case .notPermitted(let reason):
                return reason
            case .invalidTransition(let from, let event):
                var why = "referral \(referral) is \(from.rawValue)"
                if let owner, from != .sent { why += " (held by \(owner))" }
                return "\(why); it cannot be \(event.rawValue) now"
            }
        }
    }

    /// Everyone who may send `event`, from some status.
    public static func parties(for event: Event) -> Set<Party> {
        rules.filter { $0.event == event }.reduce(into: []) { $0.formUnion($1.parties) }
    }

    /// Where `event`, sent by someone who is `parties` to the referral, takes a referral that
    /// is `status`; or why it may not. Who may send it at all is checked before the status.
    public static func next(from status: ReferralStatus, event: Event, by parties: Set<Party>) -> Result<ReferralStatus, Refusal> {
        guard !parties.isDisjoint(with: Self.parties(for: event)) else {
            return .failure(.notPermitted(reason: whoMay(event)))
        }
        guard let rule = rules.first(where: { $0.event == event && $0.from.contains(status) && !$0.parties.isDisjoint(with: parties) })
        else { return .failure(.invalidTransition(from: status, event: event)) }
        return .success(rule.to)
    }

    /// Who may send `event`, in words.
    public static func whoMay(_ event: Event) -> String {
        switch event {
        case .withdrawn: "only the referrer may withdraw a referral"
        case .escalated: "only the broker escalates a referral"
        case .accepted: "only a member of the team the referral was sent to, its co-ordinator, or the person it was allocated to may accept it"
        case .passed: "only a member of the team the referral was sent to may pass it"
        case .allocated: "only the team's co-ordinator, or whoever holds the referral, may allocate it"
        case .declined: "only the team's co-ordinator (or any member, where the team's directory entry allows) may decline a referral for the team"
        case .completed: "only whoever holds the referral, or the team's co-ordinator, may complete it"
        }
    }
}
