import Foundation

/// What can notify someone outside CareRelay (by email, SMS or a team's webhook). Each says
/// only that there is something and how urgent it is: CRP.md section 16 and
/// docs/operations.md list the words of each.
public enum NotificationEvent: String, Sendable, Hashable, Codable, CaseIterable {
    /// A referral arrived at a team's intake: for its members, its co-ordinator and the
    /// team's own mailbox or webhook.
    case referralNew = "referral.new"
    /// A referral was allocated to you.
    case referralAllocated = "referral.allocated"
    /// A referral waiting for your team has a quarter of its response time left and nobody
    /// has taken it (cancelled if someone does first).
    case referralDueSoon = "referral.due-soon"
    /// A referral waiting for your team is past its response target.
    case referralOverdue = "referral.overdue"
    /// A referral you sent was accepted or declined.
    case referralOutcome = "referral.outcome"
    /// A carer's check-in marked urgent.
    case checkInUrgent = "checkin.urgent"
    /// Someone broke glass to reach a patient of your team.
    case breakGlass = "break-glass"
    /// An MDT agenda for a meeting you attend.
    case mdtAgenda = "mdt.agenda"
    /// An action agreed at an MDT meeting is yours and due today (sent at 08:00 on the day).
    case mdtActionDue = "mdt.action-due"
    /// For carers: a new or changed care plan to read on the carer page.
    case planShared = "plan.shared"
    /// For carers: someone read your check-in and answered.
    case checkInAcknowledged = "checkin.acknowledged"
    /// You are on call and urgent work nobody has picked up is yours to acknowledge
    /// (OnCallChain). Sent on every channel the person has, whatever they chose.
    case onCall = "oncall"

    /// What a person who has not chosen receives, on every channel they have: what is theirs
    /// to act on. New referrals at the intake go to the co-ordinator, who allocates them, and
    /// to the team's own mailbox; a member asks for them by choosing `referral.new`.
    public static func defaults(coordinator: Bool) -> Set<NotificationEvent> {
        var events: Set<NotificationEvent> = [
            .referralAllocated, .referralOverdue, .referralOutcome, .checkInUrgent, .breakGlass, .mdtAgenda, .mdtActionDue, .planShared,
            .checkInAcknowledged, .onCall,
        ]
        if coordinator { events.formUnion([.referralNew, .referralDueSoon]) }
        return events
    }
}

/// The channels a notification can take.
public enum NotificationChannelKind: String, Sendable, Hashable, Codable, CaseIterable {
    case email, sms, webhook
}

/// A person's own choice of what reaches them, on which channel, in their directory entry:
///
/// ```yaml
/// notify:
///   email: [referral.new, referral.allocated, checkin.urgent]
///   sms: [checkin.urgent]
///   digest: "07:30"
/// ```
///
/// A channel left out takes the defaults (`NotificationEvent.defaults`) if the person has
/// that channel's address (an email, a mobile number); an empty list turns it off. With
/// `digest`, notifications that are not urgent wait for one email a day at that time (site
/// time); urgent ones always go at once. The site's settings have the last word: a channel
/// the site has not set up, or an event it does not send by SMS, is never used.
public struct NotificationChoices: Sendable, Hashable, Codable {
    public var email: [NotificationEvent]?
    public var sms: [NotificationEvent]?
    /// The time of the daily digest, "HH:MM".
    public var digest: String?

    public init(email: [NotificationEvent]? = nil, sms: [NotificationEvent]? = nil, digest: String? = nil) {
        self.email = email
        self.sms = sms
        self.digest = digest
    }

    /// `digest` in minutes after midnight, nil if absent; `Directory.validate` checks it reads.
    public var digestMinute: Int? {
        guard let digest else { return nil }
        let parts = digest.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
            (0...23).contains(h), (0...59).contains(m)
        else { return nil }
        return h * 60 + m
    }
}
