import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation

/// Which notifications (email, SMS, a team's webhook) a message causes. They are planned while
/// the message is routed, from the recipients consent let it reach, and stored in the same
/// transaction (`NewMessage.notifications`); the sender beside the loop sends them. Nothing
/// is planned unless the site has set up notifications (`BrokerConfiguration.notifications`).
extension BrokerCore {
    /// What a SEND about to be stored causes. `deliveries` are the routing decisions: a
    /// recipient consent withholds the message from is not told of it either.
    func notifications(
        for body: MessageBody, id: String, header: SendHeader, deliveries: [PlannedDelivery], referral: ReferralRecord?, actor: Directory.Person,
        now: Date
    ) -> [NotificationRecord] {
        guard configuration.notifications != nil else { return [] }
        let reached = deliveries.filter { $0.decision != .withheld }.map(\.recipient)
        var triggers: [NotificationTrigger] = []
        switch body {
        case .referral(let body):
            let team = referral?.team
            triggers.append(
                NotificationTrigger(
                    event: .referralNew, message: id, people: reached, teams: team.map { [$0] } ?? [],
                    urgent: body.priority == .emergency || body.priority == .urgent, team: team, priority: body.priority,
                    respondBy: referral?.deadline, reference: id))
            // A reminder when three quarters of the response time has gone, cancelled if
            // someone takes it first (`NewMessage.cancelsReminders`).
            if let deadline = referral?.deadline {
                triggers.append(
                    NotificationTrigger(
                        event: .referralDueSoon, message: id, people: reached, teams: team.map { [$0] } ?? [],
                        urgent: body.priority == .emergency || body.priority == .urgent, team: team, priority: body.priority, respondBy: deadline,
                        reference: id, notBefore: now.addingTimeInterval(deadline.timeIntervalSince(now) * 0.75)))
            }
        case .referralEvent(let event):
            guard let record = referral else { break }
            let soon = record.deadline.map { $0.timeIntervalSince(now) <= 4 * 3_600 } ?? false
            switch event.change {
            case .allocated(let allocation) where allocation.person != actor.id:
                triggers.append(
                    NotificationTrigger(
                        event: .referralAllocated, message: id, people: [allocation.person], urgent: soon, team: record.team,
                        respondBy: record.status == .sent ? record.deadline : nil, reference: record.messageID))
            case .accepted, .declined:
                let outcome = if case .accepted = event.change { "accepted" } else { "declined" }
                triggers.append(
                    NotificationTrigger(
                        event: .referralOutcome, message: id, people: [record.referrer], urgent: false, team: record.team,
                        reference: record.messageID, detail: outcome))
            default: break
            }
        case .carerCheckIn(let checkIn) where checkIn.urgency == .urgent:
            // The teams whose rota is called are the teams whose mailbox is told.
            let teams = onCallTeams(for: header, patient: header.patient)
            triggers.append(
                NotificationTrigger(event: .checkInUrgent, message: id, people: reached, teams: teams, urgent: true, team: teams.first))
        case .mdtAgenda(let agenda):
            triggers.append(NotificationTrigger(event: .mdtAgenda, message: id, people: reached, urgent: false, team: agenda.team))
            triggers += actionReminders(agenda, message: id, reached: Set(reached), now: now)
        case .carePlanShare:
            triggers.append(NotificationTrigger(event: .planShared, message: id, people: carers(among: reached), urgent: false))
        case .checkInAcknowledgement:
            triggers.append(
                NotificationTrigger(event: .checkInAcknowledged, message: id, people: carers(among: reached), urgent: false, detail: actor.name))
        default: break
        }
        return planNotifications(triggers, at: now)
    }

    /// A reminder at 08:00 on the day each agreed action is due, for its owner if the agenda
    /// reached them. Keyed by the meeting, so the agenda's next version cancels them and plans
    /// its own (`NewMessage.cancelsReminders`).
    private func actionReminders(_ agenda: MDTAgenda, message: String, reached: Set<PersonID>, now: Date) -> [NotificationTrigger] {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = configuration.notifications?.timeZone ?? ServiceHours.siteTimeZone
        var reminders: [NotificationTrigger] = []
        for (itemIndex, entry) in agenda.items.enumerated() {
            for (actionIndex, action) in (entry.item?.outcome?.actions ?? []).enumerated() where reached.contains(action.owner) {
                // "2026-12-03": eight o'clock that morning, site time.
                let parts = (action.due?.text ?? "").split(separator: "-").compactMap { Int($0) }
                guard parts.count == 3,
                    let morning = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2], hour: 8)), morning > now
                else { continue }
                reminders.append(
                    NotificationTrigger(
                        event: .mdtActionDue, message: agenda.meeting.rawValue, people: [action.owner], urgent: false, team: agenda.team,
                        occasion: "\(message).\(itemIndex).\(actionIndex)", notBefore: morning))
            }
        }
        return reminders
    }

    /// The co-ordinator (and the team's mailbox) told of a referral past its response target.
    func overdueNotifications(_ record: ReferralRecord, coordinator: PersonID?, message: String, now: Date) -> [NotificationRecord] {
        planNotifications(
            [
                NotificationTrigger(
                    event: .referralOverdue, message: message, people: coordinator.map { [$0] } ?? [], teams: record.team.map { [$0] } ?? [],
                    urgent: true, team: record.team, respondBy: record.deadline, reference: record.messageID)
            ], at: now)
    }

    /// The co-ordinator told that someone broke glass to a patient of their team.
    func breakGlassNotifications(coordinator: PersonID, by person: Directory.Person, message: String, now: Date) -> [NotificationRecord] {
        let team = directory.teams(coordinatedBy: coordinator).first
        return planNotifications(
            [NotificationTrigger(event: .breakGlass, message: message, people: [coordinator], urgent: true, team: team, detail: person.name)],
            at: now)
    }

    func planNotifications(_ triggers: [NotificationTrigger], at now: Date) -> [NotificationRecord] {
        guard let site = configuration.notifications, !triggers.isEmpty else { return [] }
        let planner = NotificationPlanner(site: site, directory: directory)
        return triggers.flatMap { planner.plan($0, at: now) }
    }

    private func carers(among people: [PersonID]) -> [PersonID] {
        people.filter { directory.person($0)?.roles.contains(.carer) == true }
    }
}
