import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation

/// What became of one SEND of a batch before the commit.
enum RouteResult {
    case routed(RoutedSend)
    /// A resend of something already stored: answered with the first answer, nothing stored.
    case duplicate(id: String, deliveries: [PlannedDelivery])
    /// A resend of a SEND earlier in this same batch.
    case repeatOf(index: Int)
}

/// A SEND that passed every check, with its recipients decided, waiting for the group commit.
struct RoutedSend {
    let pending: BrokerCore.PendingSend
    var message: NewMessage
    /// The envelope as routed, kept in memory for the deliveries that follow at once.
    var envelope: Envelope
    var outcomes: [RecipientOutcome]
    /// Co-ordinators to tell about a break-glass override, once the message is stored.
    var overrideNotices: [(coordinator: PersonID, patient: NHSNumber)]
    /// Messages the sender has evidently received: acting on a referral (accepting,
    /// declining, ...) or acknowledging a check-in confirms the actor's own copy of it, so
    /// tracking shows it received.
    var confirmsOwnCopy: [String] = []
    /// The check-in or referral whose on-call chains this message ends once stored (an
    /// acknowledgement of the check-in; the referral accepted or allocated).
    var endsOnCall: String?
    /// Messages stored with this one, in the same transaction: the consent a referral's
    /// patient agreement records (`PatientAgreement`), the revocations a consent change calls
    /// for (`Revocations`).
    var companions: [NewMessage] = []

    /// This message and its companions, as the store takes them.
    var messages: [NewMessage] { [message] + companions }
}

extension BrokerCore {
    /// Which roles may send which kinds. Identity and roles come from the directory.
    static func maySend(_ kind: MessageKind, roles: [Role]) -> Bool {
        roles.contains { role in
            switch kind {
            case .referral:
                role.isRegisteredProfessional || role == .voluntarySectorBroker || role == .carer
            case .referralEvent:
                role.isRegisteredProfessional || role == .voluntarySectorBroker
            case .mdtAgenda:
                role == .mdtCoordinator || role == .careCoordinator
            case .carePlanShare:
                role.isRegisteredProfessional
            case .carerCheckIn:
                role == .carer
            case .checkInAcknowledgement:
                role.isRegisteredProfessional
            case .carerInvite:
                role == .careCoordinator
            case .consent:
                role.isRegisteredProfessional
            case .notice:
                false
            }
        }
    }

    /// Validates, authorises and routes the batch, stores it with the batch's confirmations
    /// in one synced transaction, then answers.
    func commitBatch() {
        let confirmations = pendingConfirms
        pendingConfirms.removeAll(keepingCapacity: true)
        let batch = pendingSends
        pendingSends.removeAll(keepingCapacity: true)
        let now = configuration.clock()
        // Decisions use every directive stored so far, including other brokers' ones.
        if store.sharedChanges != nil, !batch.isEmpty { refreshConsent() }
        let earlier: [String: EarlierSend]
        do {
            earlier = try store.earlierSends(batch.map { ($0.header.onBehalfOf ?? $0.person.id, $0.header.key) })
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            logger.error("store read failed; batch refused", metadata: ["error": "\(error)"])
            refuseUnstored(batch, "the broker could not read its store; nothing was accepted. Retry with the same key")
            recordConfirmations(confirmations, now: now)
            return
        }
        let results = routeBatch(batch, earlier: earlier, now: now)
        let routed = results.compactMap { entry -> RoutedSend? in
            if case .routed(let item) = entry.result { item } else { nil }
        }
        if routed.isEmpty {
            recordConfirmations(confirmations, now: now)
            answer(results, outcomes: [:], now: now)
            return
        }
        let implied = routed.filter { !$0.confirmsOwnCopy.isEmpty }
            .map { (routingID: $0.pending.routingID, recipient: $0.message.sender, ids: $0.confirmsOwnCopy) }
        let allConfirmations = confirmations + implied
        let outcomes: [StoreOutcome]
        do {
            outcomes = try metrics.timeStore(accepting: true) {
                try store.accept(
                    routed.flatMap(\.messages),
                    confirming: allConfirmations.map { DeliveryConfirmation(recipient: $0.recipient, ids: $0.ids) }, at: now)
            }
            let messageCount = routed.reduce(0) { $0 + $1.messages.count }
            guard outcomes.count == messageCount else {
                throw StoreError.unavailable("it answered \(outcomes.count) outcomes for \(messageCount) messages")
            }
            vitals.store(healthy: true)
            applyConfirmations(allConfirmations)
            if routed.contains(where: { !$0.message.notifications.isEmpty }) { configuration.notificationsQueued?() }
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            // Nothing of this batch is acknowledged: the senders retry with the same keys.
            // The confirmations still free their credit and are kept for the store (see
            // recordConfirmations).
            keepUnrecorded(confirmations)
            applyConfirmations(confirmations)
            logger.error("store write failed; batch refused", metadata: ["error": "\(error)", "messages": "\(routed.count)"])
            refuseUnstored(results.map(\.pending), "the broker could not store the message; nothing was accepted. Retry with the same key")
            return
        }
        // The store answers one outcome per message, in order: pair each with its SEND.
        var outcomeOf: [String: StoreOutcome] = [:]
        for (message, outcome) in zip(routed.flatMap(\.messages), outcomes) { outcomeOf[message.id] = outcome }
        answer(results, outcomes: outcomeOf, now: now)
    }

    /// Routes each SEND of the batch; a refused one is answered at once and left out.
    private func routeBatch(_ batch: [PendingSend], earlier: [String: EarlierSend], now: Date) -> [(pending: PendingSend, result: RouteResult)] {
        var results: [(pending: PendingSend, result: RouteResult)] = []
        var referralOverlay: [String: ReferralRecord] = [:]
        var keysInBatch: [String: Int] = [:]
        plansInBatch.removeAll()
        defer { plansInBatch.removeAll() }
        for pending in batch {
            do {
                let result = try route(pending, now: now, referrals: &referralOverlay, keysInBatch: keysInBatch, earlier: earlier)
                if case .routed(let item) = result {
                    keysInBatch[idempotencyKey(item.message.sender, item.message.key)] = results.count
                }
                results.append((pending, result))
            } catch {
                reply(pending.routingID, .rejected(Rejected(error, command: "SEND", key: pending.header.key, req: pending.header.req)))
                logger.notice(
                    "send refused",
                    metadata: [
                        "person": "\(pending.person.id)", "code": "\(error.code.name)", "key": "\(pending.header.key)",
                        "req": "\(pending.header.req ?? "-")",
                    ])
                // The reason can quote what was sent (an NHS number, a field): debug only.
                logger.debug("send refused: reason", metadata: ["key": "\(pending.header.key)", "reason": "\(error.reason)"])
            }
        }
        return results
    }

    private func refuseUnstored(_ sends: [PendingSend], _ reason: String) {
        for pending in sends {
            reply(
                pending.routingID,
                .rejected(
                    Rejected(
                        ProtocolError(.storeUnavailable, reason),
                        command: "SEND", key: pending.header.key, req: pending.header.req)))
        }
    }

    /// Answers every SEND of a stored batch, in the order they came, and acts on what was
    /// stored. `outcomes` holds the store's outcome for each routed message, by message id.
    private func answer(_ results: [(pending: PendingSend, result: RouteResult)], outcomes: [String: StoreOutcome], now: Date) {
        var answers: [Int: Accepted] = [:]
        for (index, entry) in results.enumerated() {
            let header = entry.pending.header
            let answer: Accepted
            switch entry.result {
            case .routed(let item):
                switch outcomes[item.message.id] {
                case .stored(let seq)?:
                    stored(item, seq: seq, now: now)
                    answer = Accepted(key: header.key, id: item.message.id, duplicate: false, recipients: item.outcomes, req: header.req)
                case .duplicate(let id, let deliveries)?:
                    answer = Accepted(key: header.key, id: id, duplicate: true, recipients: deliveries.map { Self.outcome(for: $0) }, req: header.req)
                case .conflict(let id)?:
                    reply(
                        entry.pending.routingID,
                        .rejected(Rejected(Self.conflict(key: header.key, id: id), command: "SEND", key: header.key, req: header.req)))
                    continue
                case .referralChanged(let current)?:
                    // Another broker on the same store changed the referral between our read
                    // and our write; nothing was stored, and the sender sees where it stands.
                    var why = "referral \(current.messageID) was changed by someone else at the same moment: it is now \(current.status.rawValue)"
                    if let taker = current.takenBy { why += " (taken by \(taker))" }
                    reply(
                        entry.pending.routingID,
                        .rejected(
                            Rejected(
                                ProtocolError(.invalidTransition, why + "; nothing was stored"),
                                command: "SEND", key: header.key, req: header.req)))
                    continue
                case nil:
                    continue
                }
            case .duplicate(let id, let deliveries):
                answer = Accepted(key: header.key, id: id, duplicate: true, recipients: deliveries.map { Self.outcome(for: $0) }, req: header.req)
            case .repeatOf(let first):
                guard var earlier = answers[first] else { continue }
                earlier.duplicate = true
                earlier.req = header.req
                answer = earlier
            }
            answers[index] = answer
            if answer.duplicate { metrics.duplicateSend() }
            reply(entry.pending.routingID, .accepted(answer))
        }
    }

    /// A message just stored: its recipients are woken and what follows from it is done.
    private func stored(_ item: RoutedSend, seq: Int64, now: Date) {
        recentEnvelopes.remember(item.envelope, for: seq)
        // The companions' recipients too: those a revocation notice is for.
        for delivery in item.messages.flatMap(\.deliveries) where delivery.decision != .withheld {
            sessions.wake(delivery.recipient)
        }
        metrics.accepted(item.message.kind)
        // Ids, kinds and counts only: nothing that identifies a patient at info level.
        logger.info(
            "message accepted",
            metadata: [
                "message": "\(item.message.id)", "kind": "\(item.message.kind.rawValue)", "sender": "\(item.message.sender)",
                "req": "\(item.pending.header.req ?? "-")", "recipients": "\(item.message.deliveries.count)",
            ])
        metrics.withheld(atDelivery: false, count: item.message.deliveries.count { $0.decision == .withheld })
        afterStored(item, now: now)
    }

    static func conflict(key: String, id: String) -> ProtocolError {
        ProtocolError(
            .idempotencyConflict, "key '\(key)' was already used for message \(id) with different content; choose a new key for a new message")
    }

    /// What makes two SENDs "the same message": everything the sender chose, not what the
    /// broker derived (names, recipients), so a resend matches even after a directory change.
    static func fingerprint(_ header: SendHeader, body: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        let fields: [String] =
            [
                header.kind.rawValue, header.to.map(\.description).joined(separator: ","), header.patient?.digits ?? "",
                header.priority?.rawValue ?? "", (header.labels ?? []).map(\.rawValue).joined(separator: ","),
                header.correlation ?? "", header.breakGlass ?? "", header.onBehalfOf?.rawValue ?? "",
            ] + (header.purpose.map { [$0.rawValue] } ?? [])
        for field in fields {
            hasher.update(data: Array(field.utf8))
            hasher.update(data: [0])
        }
        hasher.update(data: body)
        return Array(hasher.finalize())
    }

    static func outcome(for delivery: PlannedDelivery) -> RecipientOutcome {
        let decision: RecipientOutcome.Decision =
            switch delivery.decision {
            case .deliver: .deliver
            case .redacted: .redacted
            case .withheld: .withheld
            }
        return RecipientOutcome(person: delivery.recipient, decision: decision, reason: delivery.reason)
    }

    /// Everything that follows from a message being stored: registry and deadline updates,
    /// notices of overrides.
    private func afterStored(_ item: RoutedSend, now: Date) {
        if item.messages.contains(where: { $0.kind == .consent }) {
            // Read back from the store rather than applied from the message in hand, so the
            // registry takes directives in the store's order even when other brokers add some.
            refreshConsent()
        }
        if let patient = item.message.patient, !item.message.careTeamLinks.isEmpty {
            careTeams[patient] = nil
        }
        if let deadline = item.message.referral?.deadline, item.message.referral?.status == .sent {
            nextDeadline = min(nextDeadline ?? deadline, deadline)
        }
        if let ended = item.endsOnCall {
            let how = item.message.kind == .referralEvent ? "took the referral" : "acknowledged the check-in"
            do { try acknowledgeOnCall(message: ended, by: item.message.sender, how: how, now: now) } catch {
                logger.error("could not end an on-call chain", metadata: ["message": "\(ended)", "error": "\(error)"])
            }
        }
        for notice in item.overrideNotices {
            notifyOverride(
                coordinator: notice.coordinator, patient: notice.patient, messageID: item.message.id,
                by: item.pending.person, now: now)
        }
    }

    // MARK: Routing one message

    /// One SEND, checked and routed: who acts, whether it is a resend, whether its content
    /// holds, who receives it, and what consent decides for each of them.
    private func route(
        _ pending: PendingSend, now: Date, referrals: inout [String: ReferralRecord], keysInBatch: [String: Int],
        earlier: [String: EarlierSend]
    ) throws(ProtocolError) -> RouteResult {
        let header = pending.header
        let actor = try actingPerson(pending)
        // A resend is answered before anything else is checked or applied again: what was
        // accepted once stays accepted, whatever changed since.
        let fingerprint = Self.fingerprint(header, body: pending.body)
        let idempotencyKey = idempotencyKey(actor.id, header.key)
        if let first = keysInBatch[idempotencyKey] { return .repeatOf(index: first) }
        if let earlier = earlier[idempotencyKey] {
            // Answered by the same rule the store applies (BatchPlan).
            switch earlier.answer(resendWith: fingerprint) {
            case .duplicate(let id, let deliveries):
                return .duplicate(id: id, deliveries: mayListRecipients(to: header.to, sender: actor) ? deliveries : [])
            default:
                throw Self.conflict(key: header.key, id: earlier.id)
            }
        }
        let content = try checkContent(pending, actor: actor)
        // A referral's id is one people read over the phone (ReferralID); others sort by time.
        let id = header.kind == .referral ? ReferralID.make() : MessageID.make(at: now)
        var addressing = try address(header, content: content, id: id, actor: actor, now: now, referrals: &referrals)
        if header.kind == .referral, var record = addressing.referral {
            record.messageID = id
            addressing.referral = record
            referrals[id] = record
        }
        let envelope = Envelope(header, fromName: actor.name)
        let agreement = patientAgreement(to: header, body: content.body, referral: id, actor: actor, now: now)
        let decisions = try decide(
            addressing.recipients, message: id, kind: header.kind, envelope: envelope, body: content.body, actor: actor,
            patient: addressing.patient, now: now, agreed: agreement?.unrecorded ?? [])
        if header.kind == .referral {
            try Self.requireSomeoneToReceive(decisions.deliveries, header: header, agreement: agreement, body: content.body)
        }
        let audit =
            [
                AuditEntry(
                    at: now, actor: pending.person.id.rawValue, action: .accept, patient: addressing.patient?.digits, message: id,
                    detail: header.onBehalfOf.map { "\(header.kind.rawValue) on behalf of \($0)" } ?? header.kind.rawValue)
            ] + decisions.audit
        var message = NewMessage(
            id: id, key: header.key, kind: header.kind, sender: actor.id, envelope: envelope.encoded(),
            patient: addressing.patient, correlation: header.correlation, body: pending.body,
            bodyHash: fingerprint, acceptedAt: now,
            deliveries: decisions.deliveries, referral: addressing.referral, referralExpectedStatus: addressing.expectedStatus,
            careTeamLinks: addressing.careTeamLinks, audit: audit)
        message.notifications = notifications(
            for: content.body, id: id, header: header, deliveries: decisions.deliveries, referral: addressing.referral, actor: actor, now: now)
        if case .mdtAgenda(let agenda) = content.body, configuration.notifications != nil { message.cancelsReminders = [agenda.meeting.rawValue] }
        if case .carerCheckIn(let checkIn) = content.body, checkIn.urgency == .urgent {
            let withheld = Set(decisions.deliveries.filter { $0.decision == .withheld }.map(\.recipient))
            let onCall = startOnCall(
                message: id, teams: onCallTeams(for: header, patient: addressing.patient), reason: .urgentCheckIn, excluding: withheld, now: now)
            message.onCall = onCall.chains
            message.notifications += onCall.notifications
            message.audit += onCall.audit
        }
        var routed = RoutedSend(
            pending: pending, message: message, envelope: envelope,
            outcomes: mayListRecipients(to: header.to, sender: actor) ? decisions.deliveries.map { Self.outcome(for: $0) } : [],
            overrideNotices: decisions.overrideNotices)
        if let message = agreement?.message { routed.companions.append(message) }
        if case .consent(let change) = content.body {
            routed.companions += try revocations(after: change, recordedIn: id, by: actor, now: now)
        }
        if case .referralEvent(let event) = content.body {
            routed.confirmsOwnCopy = [event.referral]
            // Reminders and on-call chains exist only where the site sends notifications: no
            // store work otherwise.
            if configuration.notifications != nil {
                switch event.change {
                case .accepted, .allocated:
                    routed.message.cancelsReminders = [event.referral]
                    routed.endsOnCall = event.referral
                case .declined, .withdrawn, .completed:
                    routed.message.cancelsReminders = [event.referral]
                default: break
                }
            }
        }
        if case .checkInAcknowledgement(let acknowledgement) = content.body {
            routed.confirmsOwnCopy = [acknowledgement.checkIn]
            if configuration.notifications != nil { routed.endsOnCall = acknowledgement.checkIn }
        }
        return .routed(routed)
    }

    /// The actor is the authenticated person, or a carer a gateway is entitled to act for.
    private func actingPerson(_ pending: PendingSend) throws(ProtocolError) -> Directory.Person {
        guard let carer = pending.header.onBehalfOf else { return pending.person }
        guard pending.person.actsAsGateway(for: carer), let carerEntry = directory.person(carer) else {
            throw ProtocolError(.notPermitted, "onBehalfOf: only a gateway may act for someone, and only for the people its directory entry lists")
        }
        return carerEntry
    }

    /// A SEND's body, decoded and checked against its envelope and its sender, with the
    /// patient and priority they settle between them.
    private struct CheckedContent {
        var body: MessageBody
        var patient: NHSNumber?
        var priority: Priority?
    }

    private func checkContent(_ pending: PendingSend, actor: Directory.Person) throws(ProtocolError) -> CheckedContent {
        let header = pending.header
        guard Self.maySend(header.kind, roles: actor.roles) else {
            throw ProtocolError(
                .notPermitted, "your roles (\(actor.roles.map(\.rawValue).joined(separator: ", "))) may not send \(header.kind.rawValue) messages")
        }
        let body = try validateBody(kind: header.kind, bytes: pending.body)
        let patient = try checkPatient(header: header, body: body)
        var priority = header.priority
        if case .referral(let referral) = body {
            // The body must agree with who sent it and with the envelope's priority, which sets
            // the response target.
            guard referral.requester.person == actor.id else {
                throw ProtocolError(
                    .notPermitted, "body requester.person: a referral is made by its sender (\(actor.id)), not '\(referral.requester.person)'")
            }
            guard actor.roles.contains(referral.requester.role) else {
                throw ProtocolError(.notPermitted, "body requester.role: you do not hold the role '\(referral.requester.role.rawValue)'")
            }
            if let stated = header.priority, stated != referral.priority {
                throw ProtocolError(.schemaViolation, "the header says priority \(stated.rawValue) but the body says \(referral.priority.rawValue)")
            }
            priority = referral.priority
        }
        if header.breakGlass != nil, !actor.roles.contains(where: \.isRegisteredProfessional) {
            throw ProtocolError(.notPermitted, "breakGlass: only a registered professional may override consent")
        }
        try authorise(body, header: header, actor: actor)
        return CheckedContent(body: body, patient: patient, priority: priority)
    }

    /// Who a message goes to and what it changes besides: its recipients (a subscriber's copy
    /// with the topic it matched), the referral it opens or moves on, and care-team links.
    private struct Addressing {
        var recipients: [(person: PersonID, topic: String?)]
        var patient: NHSNumber?
        var referral: ReferralRecord?
        /// For a referral event: the status it was applied to (see `ReferralChange.readStatus`).
        var expectedStatus: ReferralRecord.Status?
        var careTeamLinks: [CareTeamMember] = []
    }

    private func address(
        _ header: SendHeader, content: CheckedContent, id: String, actor: Directory.Person, now: Date, referrals: inout [String: ReferralRecord]
    ) throws(ProtocolError) -> Addressing {
        var addressing: Addressing
        if case .referralEvent(let event) = content.body {
            let change = try applyReferralEvent(event, message: id, header: header, actor: actor, now: now, overlay: &referrals)
            addressing = Addressing(
                recipients: change.recipients.map { ($0, nil) }, patient: content.patient ?? change.record.patient,
                referral: change.record, expectedStatus: change.readStatus, careTeamLinks: change.careTeamLinks)
        } else if case .checkInAcknowledgement(let acknowledgement) = content.body {
            // Its recipients follow from the check-in, whatever `to` says.
            addressing = Addressing(
                recipients: try acknowledgementRecipients(acknowledgement, actor: actor).map { ($0, nil) }, patient: content.patient)
        } else {
            addressing = Addressing(recipients: try resolve(header.to, sender: actor.id).map { ($0, nil) }, patient: content.patient)
        }
        if header.kind == .referral {
            let team = header.to.lazy.compactMap(\.addressedTeam).first
            let target = responseTarget(content.priority ?? .routine, team: team)
            addressing.referral = ReferralRecord(
                messageID: "", referrer: actor.id, team: team, patient: content.patient, status: .sent,
                deadline: now.addingTimeInterval(target), updatedAt: now)
            // The referrer has a legitimate relationship with the patient they refer.
            if actor.roles.contains(where: \.isRegisteredProfessional) { addressing.careTeamLinks.append(.person(actor.id)) }
        }
        // Topic subscribers get a copy, with their own consent decision.
        let topic = self.topic(for: header, sender: actor)
        let listed = Set(addressing.recipients.map(\.person))
        var subscribers = Set<PersonID>()
        for session in sessions.withSubscriptions where session.person != actor.id {
            if !listed.contains(session.person), session.subscriptions.contains(where: { $0.matches(topic) }) {
                subscribers.insert(session.person)
            }
        }
        addressing.recipients += subscribers.sorted().map { ($0, topic.joined(separator: "/")) }
        return addressing
    }

    /// What consent decides for each recipient, the audit line of each decision, and the
    /// co-ordinators to tell of a break-glass override.
    private struct Decisions {
        var deliveries: [PlannedDelivery] = []
        var audit: [AuditEntry] = []
        var overrideNotices: [(coordinator: PersonID, patient: NHSNumber)] = []
    }

    /// `agreed`: directives the message itself records (a referral's patient agreement),
    /// decided on as if already stored.
    private func decide(
        _ recipients: [(person: PersonID, topic: String?)], message id: String, kind: MessageKind, envelope: Envelope, body: MessageBody,
        actor: Directory.Person, patient: NHSNumber?, now: Date, agreed: [ConsentDirective] = []
    ) throws(ProtocolError) -> Decisions {
        let subject = consentSubject(kind: kind, header: envelope, body: body, sender: actor)
        let patients = Set(subject.parts.map(\.patient))
        let addressedTeams = envelope.to.addressedTeams, addressedPeople = envelope.to.addressedPeople
        var decisions = Decisions()
        for (recipientID, viaTopic) in recipients {
            guard let recipient = directory.person(recipientID) else { continue }
            let decision: PlannedDelivery
            var partRules: String?
            if kind == .consent || subject.parts.isEmpty {
                // Consent records and messages about no patient carry no patient data to decide on.
                decision = PlannedDelivery(recipient: recipientID, decision: .deliver, rule: "no-patient-data", topic: viaTopic)
            } else {
                let who: ConsentRecipient
                do {
                    who = try consentRecipient(
                        recipient, patients: patients, addressedTeams: addressedTeams,
                        addressedPeople: addressedPeople, isReferral: kind == .referral || kind == .referralEvent)
                } catch {
                    throw ProtocolError(.storeUnavailable, "the broker could not read care teams; nothing was accepted. Retry with the same key")
                }
                let verdict = consent.decide(subject, for: who, now: now, adding: agreed)
                if verdict.ruleID == consent.engine.policy.breakGlass.refusedRuleID {
                    throw ProtocolError(.notPermitted, "breakGlass: \(verdict.reason)")
                }
                // Which rule decided each part, for the audit (never shown to the sender).
                if Set(verdict.parts.map(\.ruleID)).count > 1 {
                    partRules = "parts: " + verdict.parts.map { "\($0.partID)=\($0.ruleID)" }.joined(separator: ", ")
                }
                decision = PlannedDelivery(
                    recipient: recipientID, decision: Self.plannedDecision(verdict.outcome), rule: verdict.ruleID,
                    reason: verdict.outcome == .deliver ? nil : verdict.reason, topic: viaTopic)
                if verdict.override {
                    decisions.audit.append(
                        .override(
                            at: now, by: actor.id, patient: patient, message: id, recipient: recipientID, decision: "deliver", rule: verdict.ruleID,
                            reason: verdict.breakGlassReason))
                    for p in patients {
                        for coordinator in coordinators(of: p)
                        where coordinator != actor.id
                            && !decisions.overrideNotices.contains(where: { $0.coordinator == coordinator && $0.patient == p })
                        {
                            decisions.overrideNotices.append((coordinator, p))
                        }
                    }
                }
            }
            decisions.deliveries.append(decision)
            decisions.audit.append(
                AuditEntry(
                    at: now, actor: actor.id.rawValue, action: Self.auditAction(decision.decision), patient: patient?.digits,
                    message: id, recipient: recipientID.rawValue, decision: "route:\(decision.decision.rawValue)", rule: decision.rule,
                    detail: [viaTopic.map { "topic \($0)" }, partRules].compactMap { $0 }.joined(separator: "; ").nilIfEmpty))
        }
        return decisions
    }

    static func plannedDecision(_ outcome: ConsentOutcome) -> PlannedDelivery.Decision {
        switch outcome {
        case .deliver: .deliver
        case .deliverRedacted: .redacted
        case .withhold: .withheld
        }
    }

    static func auditAction(_ decision: PlannedDelivery.Decision) -> AuditEntry.Action {
        switch decision {
        case .deliver: .deliver
        case .redacted: .redact
        case .withheld: .withhold
        }
    }

    /// The care co-ordinators of the teams in a patient's care team.
    func coordinators(of patient: NHSNumber) -> [PersonID] {
        var result: [PersonID] = []
        for member in (try? careTeam(of: patient)) ?? [] {
            if case .team(let id) = member, let coordinator = directory.team(id)?.coordinator, !result.contains(coordinator) {
                result.append(coordinator)
            }
        }
        return result
    }

    func validateBody(kind: MessageKind, bytes: [UInt8]) throws(ProtocolError) -> MessageBody {
        do {
            return try MessageBody.decode(kind: kind, json: bytes)
        } catch {
            if (try? JSONSerialization.jsonObject(with: Data(bytes))) == nil {
                throw ProtocolError(.invalidBody, "the body is not valid JSON")
            }
            let code: ErrorCode = error.kind == .invalidNHSNumber ? .invalidNHSNumber : .schemaViolation
            throw ProtocolError(code, "body \(error.path): \(error.reason)")
        }
    }

    /// The patient named in the header must agree with the body, so routing and consent
    /// decisions are made on the patient the content is really about.
    private func checkPatient(header: SendHeader, body: MessageBody) throws(ProtocolError) -> NHSNumber? {
        let fromBody: NHSNumber? =
            switch body {
            case .referral(let r): r.subject
            case .carePlanShare(let p): p.patient
            case .carerCheckIn(let c): c.patient
            case .checkInAcknowledgement(let a): a.patient
            case .consent(let c): c.patient
            default: nil
            }
        switch header.kind {
        case .referral, .carePlanShare, .carerCheckIn, .checkInAcknowledgement:
            guard let patient = header.patient else {
                throw ProtocolError(.invalidHeader, "patient: a \(header.kind.rawValue) must name the patient's NHS number in the header")
            }
            if let fromBody, fromBody != patient {
                throw ProtocolError(.schemaViolation, "the header names patient \(patient.digits) but the body is about another patient")
            }
            return patient
        case .consent:
            if let patient = header.patient, patient != fromBody {
                throw ProtocolError(.schemaViolation, "the header names patient \(patient.digits) but the consent record is about another patient")
            }
            return fromBody
        case .referralEvent, .mdtAgenda, .notice, .carerInvite:
            return header.patient
        }
    }

    /// Turns addresses into people. Every address must name something in the directory.
    func resolve(_ addresses: [Address], sender: PersonID) throws(ProtocolError) -> [PersonID] {
        var result: [PersonID] = []
        var seen = Set<PersonID>()
        func add(_ id: PersonID) {
            if id != sender, seen.insert(id).inserted { result.append(id) }
        }
        for address in addresses {
            switch address {
            case .person(let id):
                guard directory.person(id) != nil else { throw ProtocolError(.unknownAddress, "\(address): no such person in the directory") }
                add(id)
            case .team(let id):
                guard directory.team(id) != nil else { throw ProtocolError(.unknownAddress, "\(address): no such team in the directory") }
                guard directory.members(of: id).contains(where: { $0 != sender }) else {
                    throw ProtocolError(.unknownAddress, "\(address): the team has no other members to receive this")
                }
                directory.members(of: id).forEach(add)
            case .mdt(let id):
                guard let team = directory.team(id), team.kind == .mdt else {
                    throw ProtocolError(.unknownAddress, "\(address): no such MDT in the directory (an mdt: address names a team of kind mdt)")
                }
                directory.members(of: id).forEach(add)
            case .role(let team, let role):
                guard directory.team(team) != nil else { throw ProtocolError(.unknownAddress, "\(address): no such team in the directory") }
                let holders = directory.members(of: team).filter { directory.person($0)?.roles.contains(role) == true }
                guard !holders.isEmpty else { throw ProtocolError(.unknownAddress, "\(address): nobody in that team holds that role") }
                holders.forEach(add)
            case .careTeam(let patient):
                let members: [CareTeamMember]
                do { members = try careTeam(of: patient) } catch {
                    throw ProtocolError(.storeUnavailable, "the broker could not read the care team; nothing was accepted")
                }
                guard !members.isEmpty else {
                    throw ProtocolError(
                        .unknownAddress, "\(address): this patient has no care team yet; address a team or person, or link a care team first")
                }
                for member in members {
                    switch member {
                    case .person(let id): add(id)
                    case .team(let id): directory.members(of: id).forEach(add)
                    }
                }
            }
        }
        return result
    }

    /// "kind/locality/team": the first team the message is addressed to, else the sender's.
    func topic(for header: SendHeader, sender: Directory.Person) -> [String] {
        let team =
            header.to.lazy.compactMap { address -> TeamID? in
                if case .mdt(let id) = address { id } else { address.addressedTeam }
            }.first ?? sender.teams.first
        let locality = team.flatMap { directory.team($0)?.locality.rawValue } ?? "none"
        return [header.kind.rawValue, locality, team?.rawValue ?? "none"]
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
