import Foundation

/// The words of a notification. They say that there is something, for whom, how urgent and by
/// when, and how to open it in CareRelay; never a patient's name, NHS number, condition or
/// anyone's free text, because email and SMS leave the care system's protection. Everything
/// they may use is in `NotificationTrigger`, which carries nothing about the patient.
struct NotificationWording {
    let subject: String
    let text: String
    let link: String?

    init(trigger: NotificationTrigger, directory: DirectoryIndex, site: NotificationSite, now: Date) {
        let teamName = trigger.team.flatMap { directory.team($0)?.name } ?? "your team"
        let priority = trigger.priority.map { $0 == .sameDay ? "same-day" : $0.rawValue }
        let article = priority.map { $0.first.map { "aeiou".contains($0) } == true ? "an \($0)" : "a \($0)" } ?? "a"
        let capitalArticle = article.prefix(1).uppercased() + article.dropFirst()
        let by = trigger.respondBy.map { Self.time($0, now: now, in: site.timeZone) }
        let reference = trigger.reference.map { " Reference \($0)." } ?? ""
        let respond = by.map { " Respond by \($0)." } ?? ""
        let command: String
        switch trigger.event {
        case .referralNew:
            subject = "1 new \(priority.map { "\($0) " } ?? "")referral for \(teamName)" + (by.map { ", respond by \($0)" } ?? "")
            text = "\(capitalArticle) referral has arrived for \(teamName).\(respond)\(reference)"
            command = "carerelay referral inbox" + (trigger.team.map { " --team \($0)" } ?? "")
        case .referralAllocated:
            subject = "A \(priority.map { "\($0) " } ?? "")referral was allocated to you" + (by.map { ", respond by \($0)" } ?? "")
            text = "A referral for \(teamName) was allocated to you.\(respond)\(reference)"
            command = "carerelay referral show \(trigger.reference ?? "ID")"
        case .referralDueSoon:
            subject = "\(capitalArticle) referral for \(teamName) is due" + (by.map { " by \($0)" } ?? " soon") + " and nobody has taken it"
            text = "\(capitalArticle) referral for \(teamName) has not been taken yet.\(respond)\(reference)"
            command = "carerelay referral inbox" + (trigger.team.map { " --team \($0)" } ?? "")
        case .referralOverdue:
            subject = "\(capitalArticle) referral for \(teamName) is past its response target"
            text =
                "\(capitalArticle) referral for \(teamName) has not been taken"
                + (by.map { " and was due by \($0)" } ?? "") + ".\(reference)"
            command = "carerelay referral inbox --overdue" + (trigger.team.map { " --team \($0)" } ?? "")
        case .referralOutcome:
            let outcome = trigger.detail ?? "answered"
            subject = "Your referral to \(teamName) was \(outcome)"
            text = "Your referral to \(teamName) was \(outcome).\(reference)"
            command = "carerelay referral track \(trigger.reference ?? "ID")"
        case .checkInUrgent:
            subject = "A carer check-in marked urgent" + (trigger.team == nil ? "" : " for \(teamName)")
            text = "A carer has sent a check-in marked urgent and is waiting for someone to respond."
            command = "carerelay checkin list --unread --urgency urgent"
        case .breakGlass:
            subject = "Emergency access used for a patient of \(teamName)"
            text =
                "\(trigger.detail ?? "A professional") used emergency access (break glass) to a patient's information without their consent. "
                + "Review the reason they gave."
            command = "carerelay audit query --action override"
        case .mdtAgenda:
            subject = "An MDT agenda for \(teamName)"
            text = "An agenda for a meeting of \(teamName) that you attend has been published."
            command = "carerelay mdt list"
        case .mdtActionDue:
            subject = "An MDT action of yours is due today"
            text = "An action agreed at a meeting of \(teamName) is yours and due today."
            command = "carerelay mdt actions --mine"
        case .planShared:
            subject = "A care plan you follow has changed"
            text = "A care plan you follow has been shared or changed. Read it on the carer page."
            command = ""
        case .onCall:
            let overdue = trigger.detail == OnCallChain.Reason.overdueReferral.rawValue
            subject =
                overdue
                ? "On call: a referral for \(teamName) is past its response target"
                : "On call: a carer check-in marked urgent for \(teamName) is waiting"
            text =
                "You are on call for \(teamName). "
                + (overdue ? "A referral is past its response target" : "A carer has sent a check-in marked urgent")
                + " and nobody has acknowledged it yet. If you have it, acknowledge it and nobody else will be called: "
                + "carerelay oncall ack \(trigger.reference ?? "ID")"
            command = "carerelay oncall ack \(trigger.reference ?? "ID")"
        case .checkInAcknowledged:
            subject = "Your check-in was read"
            text = "\(trigger.detail ?? "Someone in the care team") has read your check-in" + " and replied. See it on the carer page."
            command = ""
        }
        let forCarers = trigger.event == .planShared || trigger.event == .checkInAcknowledged
        link = trigger.link ?? (forCarers ? site.bridgeAddress : (command.isEmpty ? nil : command))
    }

    /// "14:30" today, "Wed 2 Dec 14:30" on another day, in the site's time zone.
    static func time(_ date: Date, now: Date, in timeZone: TimeZone) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_GB")
        formatter.timeZone = timeZone
        formatter.dateFormat = calendar.isDate(date, inSameDayAs: now) ? "HH:mm" : "EEE d MMM HH:mm"
        return formatter.string(from: date)
    }
}
