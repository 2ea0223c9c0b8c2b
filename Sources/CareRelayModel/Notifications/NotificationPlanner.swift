import Foundation

/// What a site has set up for notifications (the broker's `--notifications` file, read into
/// this by the executable): which channels exist and what may go by SMS. The planner never
/// plans a notification for a channel the site has not set up.
public struct NotificationSite: Sendable, Equatable {
    public var channels: Set<NotificationChannelKind>
    /// Events the site allows by SMS (texts cost money and interrupt).
    public var smsEvents: Set<NotificationEvent>
    /// The webhook endpoints the site's settings name.
    public var webhooks: Set<String>
    /// The carer page's address, the link in carers' notifications.
    public var bridgeAddress: String?
    /// The time zone of "respond by 14:30" and of digest times.
    public var timeZone: TimeZone

    public static let defaultSMSEvents: Set<NotificationEvent> = [
        .checkInUrgent, .breakGlass, .referralAllocated, .referralOverdue, .planShared, .checkInAcknowledged, .onCall,
    ]

    public init(
        channels: Set<NotificationChannelKind>, smsEvents: Set<NotificationEvent> = defaultSMSEvents, webhooks: Set<String> = [],
        bridgeAddress: String? = nil, timeZone: TimeZone = ServiceHours.siteTimeZone
    ) {
        self.channels = channels
        self.smsEvents = smsEvents
        self.webhooks = webhooks
        self.bridgeAddress = bridgeAddress
        self.timeZone = timeZone
    }
}

/// One notification as the store's outbox holds it, from the moment the message that caused it
/// is stored until the channel has taken it.
public struct NotificationRecord: Sendable, Equatable, Codable {
    /// The idempotency key, the same on every attempt: message, event, recipient, channel.
    public var id: String
    /// The message that caused it.
    public var message: String
    /// `person:ID` or `team:ID`.
    public var recipient: String
    public var channel: NotificationChannelKind
    /// An email address, a mobile number (+44...), or a webhook endpoint's name.
    public var address: String
    public var event: NotificationEvent
    public var urgent: Bool
    public var subject: String
    public var text: String
    public var link: String?
    public var createdAt: Date
    /// When to send: at once, or at the recipient's digest time.
    public var dueAt: Date
    /// Waits for the recipient's daily digest, sent with the others due then as one email.
    public var digest: Bool

    public init(
        id: String, message: String, recipient: String, channel: NotificationChannelKind, address: String, event: NotificationEvent,
        urgent: Bool, subject: String, text: String, link: String?, createdAt: Date, dueAt: Date, digest: Bool
    ) {
        self.id = id
        self.message = message
        self.recipient = recipient
        self.channel = channel
        self.address = address
        self.event = event
        self.urgent = urgent
        self.subject = subject
        self.text = text
        self.link = link
        self.createdAt = createdAt
        self.dueAt = dueAt
        self.digest = digest
    }
}

/// Something that happened which may notify people: the event, who it concerns and the facts
/// its words may use. It holds nothing about the patient, so no template can show any.
public struct NotificationTrigger: Sendable, Equatable {
    public var event: NotificationEvent
    /// The message that caused it (the referral, the check-in, the notice).
    public var message: String
    /// People it is for (recipients consent let it reach, the allocatee, the referrer).
    public var people: [PersonID]
    /// Teams whose own mailbox and webhook hear of it.
    public var teams: [TeamID]
    public var urgent: Bool
    /// The team it is for or from, named in the words.
    public var team: TeamID?
    public var priority: Priority?
    public var respondBy: Date?
    /// A referral's id, which people read over the phone: not about the patient.
    public var reference: String?
    /// "accepted" or "declined" for an outcome; who acted for a break-glass notice or an
    /// acknowledgement (a professional's name); for `oncall`, the chain's reason.
    public var detail: String?
    /// Where the notification's link points instead of the command (an on-call
    /// acknowledgement link).
    public var link: String?
    /// Not to be sent before this (a reminder); nil for at once.
    public var notBefore: Date?
    /// Told apart from other notifications of the same event and message for the same person
    /// (an on-call chain's step): part of the idempotency key.
    public var occasion: String?

    public init(
        event: NotificationEvent, message: String, people: [PersonID], teams: [TeamID] = [], urgent: Bool, team: TeamID? = nil,
        priority: Priority? = nil, respondBy: Date? = nil, reference: String? = nil, detail: String? = nil, link: String? = nil,
        occasion: String? = nil, notBefore: Date? = nil
    ) {
        self.notBefore = notBefore
        self.link = link
        self.occasion = occasion
        self.event = event
        self.message = message
        self.people = people
        self.teams = teams
        self.urgent = urgent
        self.team = team
        self.priority = priority
        self.respondBy = respondBy
        self.reference = reference
        self.detail = detail
    }
}

/// Turns what happened into the notifications to queue: who, on which channel, when, and the
/// words. Pure: the broker calls it while routing and stores what it returns with the message.
public struct NotificationPlanner: Sendable {
    public let site: NotificationSite
    public let directory: DirectoryIndex

    public init(site: NotificationSite, directory: DirectoryIndex) {
        self.site = site
        self.directory = directory
    }

    public func plan(_ trigger: NotificationTrigger, at now: Date) -> [NotificationRecord] {
        guard !site.channels.isEmpty else { return [] }
        // A reminder's words are read when it is sent: "by 14:30" is today then.
        let start = max(now, trigger.notBefore ?? now)
        let words = NotificationWording(trigger: trigger, directory: directory, site: site, now: start)
        var records: [NotificationRecord] = []
        func add(_ recipient: String, _ channel: NotificationChannelKind, _ address: String, dueAt: Date = start, digest: Bool = false) {
            let occasion = trigger.occasion.map { ".\($0)" } ?? ""
            let id =
                "\(trigger.message).\(trigger.event.rawValue)\(occasion).\(recipient.replacingOccurrences(of: ":", with: "-")).\(channel.rawValue)"
            records.append(
                NotificationRecord(
                    id: id, message: trigger.message, recipient: recipient, channel: channel, address: address, event: trigger.event,
                    urgent: trigger.urgent, subject: words.subject, text: words.text, link: words.link, createdAt: now, dueAt: dueAt,
                    digest: digest))
        }
        var seen = Set<PersonID>()
        for id in trigger.people where seen.insert(id).inserted {
            guard let person = directory.person(id) else { continue }
            let defaults = NotificationEvent.defaults(coordinator: !directory.teams(coordinatedBy: id).isEmpty)
            // Someone on call is told on every channel they have: that is what on call means.
            let choices = trigger.event == .onCall ? NotificationChoices() : person.notify ?? NotificationChoices()
            let byEmail = choices.email.map(Set.init) ?? defaults
            let bySMS = choices.sms.map(Set.init) ?? defaults
            // Not urgent, and the person takes those as a digest: one email a day, nothing else.
            if !trigger.urgent, let minute = choices.digestMinute, let email = person.email, site.channels.contains(.email) {
                if byEmail.contains(trigger.event) || bySMS.contains(trigger.event) {
                    add("person:\(id)", .email, email, dueAt: Self.next(minute: minute, after: start, in: site.timeZone), digest: true)
                }
                continue
            }
            if site.channels.contains(.email), let email = person.email, byEmail.contains(trigger.event) {
                add("person:\(id)", .email, email)
            }
            if site.channels.contains(.sms), site.smsEvents.contains(trigger.event), let phone = person.phone.flatMap(MobileNumber.init),
                bySMS.contains(trigger.event)
            {
                add("person:\(id)", .sms, phone.international)
            }
        }
        for id in Set(trigger.teams).sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let team = directory.team(id) else { continue }
            if site.channels.contains(.email), let email = team.email { add("team:\(id)", .email, email) }
            if site.channels.contains(.webhook), let hook = team.webhook, site.webhooks.contains(hook) { add("team:\(id)", .webhook, hook) }
        }
        return records
    }

    /// The first time after `now` that the clock in `timeZone` reads `minute` (minutes after
    /// midnight): today's if still to come, else tomorrow's.
    public static func next(minute: Int, after now: Date, in timeZone: TimeZone) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.startOfDay(for: now)
        for day in 0...2 {
            guard let date = calendar.date(byAdding: .day, value: day, to: start),
                let due = calendar.date(bySettingHour: minute / 60, minute: minute % 60, second: 0, of: date)
            else { continue }
            if due > now { return due }
        }
        return now.addingTimeInterval(86_400)
    }
}

/// A UK mobile number, as people write it (`07700 900123`, `+44 7700 900123`), kept as
/// `+447700900123`.
public struct MobileNumber: Sendable, Hashable {
    public let international: String

    public init?(_ text: String) {
        var digits = text.filter { !" -()".contains($0) }
        if digits.hasPrefix("+44") {
            digits = "0" + digits.dropFirst(3)
        }
        guard digits.count == 11, digits.hasPrefix("07"), digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        international = "+44" + digits.dropFirst()
    }
}
