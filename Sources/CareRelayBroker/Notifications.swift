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
        let addressedTeams = header.to.compactMap { address -> TeamID? in
            switch address {
            case .team(let team), .role(let team, _): team
            default: nil
            }
        }
        var triggers: [NotificationTrigger] = []
        switch body {
        case .referral(let body):
            let team = referral?.team
            triggers.append(
                NotificationTrigger(
                    event: .referralNew, message: id, people: reached, teams: team.map { [$0] } ?? [],
                    urgent: body.priority == .emergency || body.priority == .urgent, team: team, priority: body.priority,
                    respondBy: referral?.deadline, reference: id))
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
            triggers.append(
                NotificationTrigger(
                    event: .checkInUrgent, message: id, people: reached, teams: addressedTeams, urgent: true, team: addressedTeams.first))
        case .mdtAgenda(let agenda):
            triggers.append(NotificationTrigger(event: .mdtAgenda, message: id, people: reached, urgent: false, team: agenda.team))
        case .carePlanShare:
            triggers.append(NotificationTrigger(event: .planShared, message: id, people: carers(among: reached), urgent: false))
        case .checkInAcknowledgement:
            triggers.append(
                NotificationTrigger(event: .checkInAcknowledged, message: id, people: carers(among: reached), urgent: false, detail: actor.name))
        default: break
        }
        return planNotifications(triggers, at: now)
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
        let team = directory.directory.teams.first { $0.coordinator == coordinator }?.id
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
