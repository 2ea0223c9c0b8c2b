import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation

extension BrokerCore {
    struct ReferralChange {
        var record: ReferralRecord
        /// The status the change was applied to: the store keeps the change only if the
        /// referral still has it when the batch commits.
        var readStatus: ReferralRecord.Status
        var recipients: [PersonID]
        var careTeamLinks: [CareTeamMember]
    }

    /// Checks and applies a lifecycle event: who may do what, and in which order. A referral
    /// is taken once: a second "accepted" is refused, naming who took it.
    func applyReferralEvent(
        _ event: ReferralEvent, message: String, header: SendHeader, actor: Directory.Person, now: Date,
        overlay: inout [String: ReferralRecord]
    ) throws(ProtocolError) -> ReferralChange {
        guard event.by == actor.id else {
            throw ProtocolError(.notPermitted, "by: an event is recorded as its sender (\(actor.id)), not as '\(event.by)'")
        }
        if let correlation = header.correlation, correlation != event.referral {
            throw ProtocolError(.invalidHeader, "correlation: names \(correlation) but the event is about referral \(event.referral)")
        }
        var record: ReferralRecord
        do {
            guard let found = try overlay[event.referral] ?? store.referral(id: event.referral) else {
                throw ProtocolError(.unknownMessage, "referral \(event.referral) is not known to this broker")
            }
            record = found
        } catch let error as ProtocolError {
            throw error
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read the referral; nothing was accepted")
        }

        let team = record.team.flatMap { directory.team($0) }
        let teamMembers = record.team.map { directory.members(of: $0) } ?? []
        // The actor's own copy of the referral, if any (nil for one stored in this same batch).
        let ownCopy: Tracking.Recipient?
        do {
            ownCopy = try store.tracking(id: record.messageID)?.recipients.first { $0.person == actor.id }
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not read the referral; nothing was accepted")
        }
        let parties = Self.parties(of: actor.id, to: record, team: team, members: teamMembers, hasCopy: ownCopy != nil, event: event.change.type)

        let readStatus = record.status
        if event.change.type != .withdrawn && event.change.type != .escalated {
            // A referral withheld from someone does not exist for them: they cannot act on it.
            let standing = try record.patient.map { patient throws(ProtocolError) in try readStanding(of: actor, toward: patient) }
            switch consent.access.mayActOnReferral(
                isHandler: !parties.isDisjoint(with: [.member, .coordinator, .owner]),
                ownCopyWithheld: ownCopy.map { $0.decision == "withheld" || $0.state == "withheld" } ?? false,
                standing: standing ?? AccessPolicy.Standing(relationships: [], objected: false))
            {
            case .allow: break
            case .conceal: throw ProtocolError(.unknownMessage, "referral \(event.referral) is not known to this broker")
            case .refuse: throw ProtocolError(.notPermitted, ReferralLifecycle.whoMay(event.change.type))
            }
        }
        // Who the actor is to the referral; ReferralLifecycle says what each may do, from where.
        switch ReferralLifecycle.next(from: record.status, event: event.change.type, by: parties) {
        case .success(let next):
            record.status = next
        case .failure(let refusal):
            let code: ErrorCode = if case .notPermitted = refusal { .notPermitted } else { .invalidTransition }
            throw ProtocolError(code, refusal.reason(referral: record.messageID, owner: record.owner))
        }

        var links: [CareTeamMember] = []
        // Told of each step: the referrer, the team, its co-ordinator and whoever holds it.
        var recipients = [record.referrer] + teamMembers + [team?.coordinator, record.owner].compactMap { $0 }
        switch event.change {
        case .accepted:
            record.owner = actor.id
            record.takenBy = record.takenBy ?? actor.id
            record.takenAt = record.takenAt ?? now
            links.append(record.team.map(CareTeamMember.team) ?? .person(actor.id))
        case .passed:
            if !record.passedBy.contains(actor.id) { record.passedBy.append(actor.id) }
            // "Not for me" is the team's business: its co-ordinator hears of it, the referrer does not.
            recipients = [team?.coordinator].compactMap { $0 }
        case .allocated(let allocation):
            guard record.team == nil || teamMembers.contains(allocation.person) else {
                throw ProtocolError(.notPermitted, "allocatedTo: \(allocation.person) is not a member of team \(record.team.map(\.rawValue) ?? "")")
            }
            if let patient = record.patient, let allocatee = directory.person(allocation.person) {
                try AccessPolicy.enforce(consent.access.mayAllocate(to: allocatee.id, standing: try readStanding(of: allocatee, toward: patient)))
            }
            record.owner = allocation.person
            record.allocatedTo = allocation.person
            record.takenBy = record.takenBy ?? allocation.person
            record.takenAt = record.takenAt ?? now
            links.append(record.team.map(CareTeamMember.team) ?? .person(actor.id))
            links.append(.person(allocation.person))
            recipients.append(allocation.person)
        case .declined, .completed, .withdrawn, .escalated:
            break
        }
        record.history.append(ReferralStep(event, message: message, at: now))
        record.updatedAt = now
        overlay[record.messageID] = record

        var unique: [PersonID] = []
        for person in recipients where person != actor.id && !unique.contains(person) { unique.append(person) }
        return ReferralChange(record: record, readStatus: readStatus, recipients: unique, careTeamLinks: links)
    }

    /// Who `person` is to a referral, for `ReferralLifecycle`.
    static func parties(
        of person: PersonID, to record: ReferralRecord, team: Directory.Team?, members: [PersonID], hasCopy: Bool, event: ReferralEvent.EventType
    ) -> Set<ReferralLifecycle.Party> {
        var parties: Set<ReferralLifecycle.Party> = []
        if person == record.referrer { parties.insert(.referrer) }
        let isMember = record.team != nil ? members.contains(person) : hasCopy
        if isMember { parties.insert(.member) }
        if person == team?.coordinator { parties.insert(.coordinator) }
        // A team may let every member decline for it (Directory.Team.membersMayDecline); a
        // referral to persons has no team, and each person it names decides for themselves.
        if event == .declined, isMember, team?.membersMayDecline == true || record.team == nil { parties.insert(.coordinator) }
        if person == record.owner { parties.insert(.owner) }
        return parties
    }

    /// Referrals past their response target and still untaken go to the team's co-ordinator,
    /// and the referrer learns that they have.
    func escalateOverdueReferrals(now: Date) {
        let overdue: [ReferralRecord]
        do {
            overdue = try store.overdueReferrals(at: now)
        } catch {
            logger.error("could not read overdue referrals", metadata: ["error": "\(error)"])
            nextDeadline = now.addingTimeInterval(5)
            return
        }
        var batch: [NewMessage] = []
        var records: [ReferralRecord] = []
        for var record in overdue {
            record.escalatedAt = now
            records.append(record)
            let coordinator = record.team.flatMap { directory.team($0)?.coordinator }
            var recipients = [record.referrer]
            if let coordinator, coordinator != record.referrer { recipients.append(coordinator) }
            let team = record.team.map { " by team \($0)" } ?? ""
            let event = ReferralEvent(
                referral: record.messageID,
                change: .escalated(
                    reason: "not accepted\(team) within its response target; escalated to \(coordinator.map(\.rawValue) ?? "the referrer")"),
                at: Timestamp(now), by: BrokerCore.brokerIdentity)
            let envelope = Envelope(
                SendHeader(
                    key: "escalate-\(record.messageID)", kind: .referralEvent, to: recipients.map(Address.person),
                    patient: record.patient, priority: .urgent, correlation: record.messageID),
                fromName: "CareRelay")
            let id = MessageID.make(at: now)
            record.history.append(ReferralStep(event, message: id, at: now))
            let body = event.encode()
            var escalation = NewMessage(
                id: id, key: "escalate-\(record.messageID)", kind: .referralEvent, sender: BrokerCore.brokerIdentity,
                envelope: envelope.encoded(), patient: record.patient, correlation: record.messageID, body: body,
                bodyHash: Array(SHA256.hash(data: body)), acceptedAt: now,
                deliveries: recipients.map { PlannedDelivery(recipient: $0, decision: .deliver, rule: "referral-escalation") },
                // Several brokers may escalate at once: one stores it (the key is the same),
                // and none escalates a referral someone took meanwhile.
                referral: record, referralExpectedStatus: .sent, careTeamLinks: [],
                audit: [
                    AuditEntry(
                        at: now, actor: BrokerCore.brokerIdentity.rawValue, action: .escalate, patient: record.patient?.digits,
                        message: record.messageID, recipient: coordinator?.rawValue, rule: "response-target")
                ])
            escalation.notifications = overdueNotifications(record, coordinator: coordinator, message: id, now: now)
            // The team's on-call rota is told in turn until someone takes it or says they have it.
            let onCall = startOnCall(message: record.messageID, teams: record.team.map { [$0] } ?? [], reason: .overdueReferral, now: now)
            escalation.onCall = onCall.chains
            escalation.notifications += onCall.notifications
            escalation.audit += onCall.audit
            batch.append(escalation)
            sessions.wake(recipients)
        }
        let outcomes: [StoreOutcome]
        do {
            outcomes = batch.isEmpty ? [] : try store.accept(batch, confirming: [], at: now)
            if batch.contains(where: { !$0.notifications.isEmpty }) { configuration.notificationsQueued?() }
            nextDeadline = try store.nextReferralDeadline()
        } catch {
            logger.error("could not record escalations; will retry", metadata: ["error": "\(error)"])
            nextDeadline = now.addingTimeInterval(5)
            return
        }
        // With several brokers, another may have escalated it first, or a team taken it.
        for (record, outcome) in zip(records, outcomes) {
            guard case .stored = outcome else { continue }
            logger.notice("referral escalated", metadata: ["referral": "\(record.messageID)", "team": "\(record.team.map(\.rawValue) ?? "-")"])
        }
    }

    /// Tells a patient's care co-ordinator that someone broke glass to reach their patient's
    /// information.
    /// `reading`: the override was to read a copy already received, not to send.
    func notifyOverride(coordinator: PersonID, patient: NHSNumber, messageID: String, by person: Directory.Person, now: Date, reading: Bool = false) {
        let body = BrokerNotice(
            notice: .emergencyOverride, message: messageID, by: person.id, patient: patient,
            text:
                "\(person.name) used an emergency override to \(reading ? "read" : "reach") information about patient \(patient.formatted). The reason is in the audit trail."
        ).encode()
        // One notice per override: each read is its own.
        let key =
            reading
            ? "override-read-\(messageID)-\(person.id)-\(Int(now.timeIntervalSince1970 * 1000))-\(coordinator)"
            : "override-\(messageID)-\(coordinator)"
        let envelope = Envelope(
            SendHeader(
                key: key, kind: .notice, to: [.person(coordinator)],
                patient: patient, priority: .urgent, correlation: messageID),
            fromName: "CareRelay")
        let id = MessageID.make(at: now)
        var message = NewMessage(
            id: id, key: key, kind: .notice,
            sender: BrokerCore.brokerIdentity, envelope: envelope.encoded(), patient: patient, correlation: messageID,
            body: body, bodyHash: Array(SHA256.hash(data: body)), acceptedAt: now,
            deliveries: [PlannedDelivery(recipient: coordinator, decision: .deliver, rule: "R9-break-glass")],
            referral: nil,
            audit: [
                AuditEntry(
                    at: now, actor: BrokerCore.brokerIdentity.rawValue, action: .override, patient: patient.digits,
                    message: messageID, recipient: coordinator.rawValue, decision: "notify-coordinator", rule: "R9-break-glass")
            ])
        message.notifications = breakGlassNotifications(coordinator: coordinator, by: person, message: id, now: now)
        do {
            _ = try store.accept([message], confirming: [], at: now)
            sessions.wake(coordinator)
            if !message.notifications.isEmpty { configuration.notificationsQueued?() }
        } catch {
            logger.error("could not store the override notice", metadata: ["error": "\(error)"])
        }
    }

    /// How long `team` has to take a referral of `priority`: the team's own target from the
    /// directory, else the broker's.
    func responseTarget(_ priority: Priority, team: TeamID?) -> TimeInterval {
        team.flatMap { directory.team($0)?.responseTargets?[priority]?.seconds } ?? configuration.responseTargets[priority] ?? 3 * 86_400
    }
}
