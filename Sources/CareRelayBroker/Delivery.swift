import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation

extension BrokerCore {
    /// Puts what is waiting for everyone woken in the outbox, within each
    /// connection's credit. Their records are written by `flush` once they have left.
    func pumpDirty() {
        let now = configuration.clock()
        retryStoreBacklog(now: now)
        guard !sessions.waiting.isEmpty else { return }
        // The delivery-time check uses every directive stored so far, other brokers' too.
        if store.sharedChanges != nil { refreshConsent() }
        for person in sessions.takeWaiting() {
            pump(person, now: now)
        }
    }

    private func pump(_ person: PersonID, now: Date) {
        guard let recipient = directory.person(person) else { return }
        let connections = sessions.connections(for: person)
        for routingID in connections {
            guard let session = sessions[routingID], session.spareCredit > 0 else { continue }
            let inFlight = sessions.inFlight(for: person, via: connections)
            let items: [MailItem]
            do {
                items = try store.mailbox(for: person, after: sessions.cursor(of: person), excluding: inFlight, limit: session.spareCredit)
            } catch {
                // Read again once the store answers, for as long as they stay connected.
                storeBacklog.keepUnread(person, now: now)
                logger.error(
                    "could not read a mailbox; reading it again once the store answers", metadata: ["person": "\(person)", "error": "\(error)"])
                return
            }
            for item in items {
                sessions.read(item.seq, of: person)
                let key = DeliveryKey(seq: item.seq, recipient: person)
                let attempt = sessions.nextAttempt(key)
                switch prepareDelivery(item, to: recipient, now: now, attempt: attempt) {
                case .notYet:
                    // Read again from the start once the store answers (`retryStoreBacklog`).
                    storeBacklog.keepUnread(person, now: now)
                    logger.error(
                        "could not read a care team to decide a delivery; deciding it once the store answers", metadata: ["person": "\(person)"])
                    return
                case .withhold(let rule, let reason):
                    metrics.withheld(atDelivery: true)
                    unrecordedDeliveries.entries.append(
                        .withheld(
                            key, rule: rule, reason: reason,
                            audit: AuditEntry(
                                at: now, actor: "carerelay", action: .withhold, patient: item.patient?.digits,
                                message: item.id, recipient: person.rawValue, decision: "deliver:withheld", rule: rule,
                                detail: "consent checked again before delivery")))
                case .send(let header, let body, let rule, let action):
                    deliver(routingID, codec.encode(.deliver(header, body: body)), key: key)
                    sessions.handedOut(key, id: item.id, via: routingID, attempt: attempt)
                    unrecordedDeliveries.entries.append(
                        .sent(
                            key, redacted: action == .redact,
                            audit: AuditEntry(
                                at: now, actor: "carerelay", action: action, patient: item.patient?.digits,
                                message: item.id, recipient: person.rawValue, decision: "deliver:\(action.rawValue)", rule: rule,
                                detail: header.attempt > 1 ? "attempt \(header.attempt)" : nil)))
                }
            }
        }
    }

    /// A delivery that could not leave: it is no longer in flight, so the mailbox offers it
    /// again (the cursor is reset), and it has no record.
    func unsent(_ key: DeliveryKey, via routingID: [UInt8]) {
        sessions.notHandedOut(key, via: routingID)
        unrecordedDeliveries.entries.removeAll { if case .sent(key, _, _) = $0 { true } else { false } }
    }

    /// Writes the records of the deliveries that left, and of those withheld at delivery.
    func recordDeliveries() {
        let records = unrecordedDeliveries
        guard !records.isEmpty else { return }
        unrecordedDeliveries = DeliveryRecords()
        let now = configuration.clock()
        var sent: [(seq: Int64, recipient: PersonID)] = []
        var withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)] = []
        var audit: [AuditEntry] = []
        for entry in records.entries {
            switch entry {
            case .sent(let key, let redacted, let line):
                sent.append((key.seq, key.recipient))
                metrics.delivered(redacted: redacted)
                audit.append(line)
            case .withheld(let key, let rule, let reason, let line):
                withheld.append((key.seq, key.recipient, rule, reason))
                audit.append(line)
            }
        }
        do {
            try metrics.timeStore(accepting: false) {
                try store.recordDeliveries(sent: sent, withheld: withheld, audit: audit, at: now)
            }
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            // The deliveries went out and stay pending until confirmed, so nothing is lost;
            // their records and audit lines are written once the store answers again.
            storeBacklog.keep(sent: sent, withheld: withheld, audit: audit)
            logger.error("could not record deliveries; kept until the store answers", metadata: ["error": "\(error)", "count": "\(sent.count)"])
        }
    }

    enum PreparedDelivery {
        case send(DeliverHeader, [UInt8], rule: String, action: AuditEntry.Action)
        case withhold(rule: String, reason: String)
        /// The store could not be read to decide (a care team): the copy stays pending and is
        /// decided once the store answers. A passing fault must never withhold it for good.
        case notYet
    }

    /// Checks consent again, as it stands now, and redacts the body for this recipient.
    func prepareDelivery(_ item: MailItem, to recipient: Directory.Person, now: Date, attempt: Int) -> PreparedDelivery {
        guard let envelope = recentEnvelopes[item.seq] ?? Envelope.decode(item.envelope) else {
            return .withhold(rule: "broker-integrity", reason: "the stored envelope could not be read")
        }
        var body = item.body
        var rule = "no-patient-data"
        var action = AuditEntry.Action.deliver
        var redacted: [String]?
        var override: Bool?
        let decoded = Self.partsDecidedOneByOne(item.kind) ? try? MessageBody.decode(kind: item.kind, json: item.body) : nil
        let decision: ConsentDecision?
        do {
            decision = try consentDecision(for: item, envelope: envelope, body: decoded, to: recipient, now: now)
        } catch {
            return .notYet
        }
        if let verdict = decision {
            rule = verdict.ruleID
            override = verdict.override ? true : nil
            if verdict.override { action = .override }
            switch verdict.outcome {
            case .withhold:
                return .withhold(rule: verdict.ruleID, reason: verdict.reason)
            case .deliver:
                break
            case .deliverRedacted(let removing):
                redacted = removing
                action = .redact
                body = redact(decoded, removing: Set(removing)) ?? body
            }
        }
        let header = Self.deliverHeader(item, envelope: envelope, redacted: redacted, override: override, attempt: attempt)
        return .send(header, body, rule: rule, action: action)
    }

    static func deliverHeader(_ item: MailItem, envelope: Envelope, redacted: [String]?, override: Bool?, attempt: Int) -> DeliverHeader {
        DeliverHeader(
            id: item.id, recipient: item.recipient, kind: item.kind, from: item.sender, fromName: envelope.fromName,
            to: envelope.to, patient: envelope.patient, priority: envelope.priority, labels: envelope.labels,
            correlation: envelope.correlation, sentAt: ISO8601DateFormatter.careRelay.string(from: item.acceptedAt),
            redacted: redacted, override: override, topic: item.topic, attempt: attempt)
    }

    /// Only plans and agendas have parts decided one by one; other kinds are decided whole
    /// from the envelope, so their bodies need not be parsed again.
    static func partsDecidedOneByOne(_ kind: MessageKind) -> Bool { kind == .carePlanShare || kind == .mdtAgenda }

    /// What consent decides now for one recipient's copy of a stored message, under the
    /// registry as it stands or under `registry`. Nil when there is nothing to decide: a
    /// consent record, the broker's own notice (it says only that something happened, to the
    /// people who must hear it), a message about nobody. Throws when care teams cannot be read.
    /// `breakGlass`: a reader's own override (a break-glass read), in place of the sender's.
    func consentDecision(
        for item: MailItem, envelope: Envelope, body decoded: MessageBody?, to recipient: Directory.Person, now: Date,
        registry: ConsentRegistry? = nil, breakGlass: BreakGlassRequest? = nil
    ) throws -> ConsentDecision? {
        guard item.kind != .consent, item.kind != .notice, let sender = directory.person(item.sender) ?? systemSender(item.sender)
        else { return nil }
        var subject = consentSubject(kind: item.kind, header: envelope, body: decoded, sender: sender)
        if let breakGlass { subject.breakGlass = breakGlass }
        guard !subject.parts.isEmpty else { return nil }
        let who = try consentRecipient(
            recipient, patients: Set(subject.parts.map(\.patient)), addressedTeams: envelope.to.addressedTeams,
            addressedPeople: envelope.to.addressedPeople, isReferral: item.kind == .referral || item.kind == .referralEvent)
        if let registry { return consent.decide(subject, for: who, now: now, under: registry) }
        return consent.decide(subject, for: who, now: now)
    }

    /// The broker itself sends escalation and override notices; it is not in the directory.
    func systemSender(_ id: PersonID) -> Directory.Person? {
        guard id == BrokerCore.brokerIdentity else { return nil }
        return Directory.Person(id: id, name: "CareRelay", roles: [.administrator], organisation: nil, teams: [], key: "", actsFor: nil)
    }

    static let brokerIdentity = PersonID("carerelay")

    /// Removes what this recipient may not see: care plan sections are dropped, agenda items
    /// become "item withheld" placeholders with no patient details.
    func redact(_ body: MessageBody?, removing: Set<String>) -> [UInt8]? {
        switch body {
        case .carePlanShare(let plan):
            // The copy's change summary is made from the kept sections' own notes.
            return plan.removingSections { removing.contains($0.id) }.encode()
        case .mdtAgenda(var agenda):
            // Items are named by position (see agendaPartID), so redact by position.
            agenda.items = agenda.items.enumerated().map { index, entry in
                entry.item != nil && removing.contains(Self.agendaPartID(index)) ? .withheld(MDTAgenda.WithheldItem()) : entry
            }
            return agenda.encode()
        default:
            // A single-part message is delivered whole or withheld, never half.
            return nil
        }
    }

    // MARK: Confirmations

    /// Confirmations read without any SEND in the same pass: recorded on their own, unsynced.
    func recordConfirmations(_ batch: [(routingID: [UInt8], recipient: PersonID, ids: [String])], now: Date) {
        guard !batch.isEmpty else { return }
        do {
            for confirm in batch { _ = try store.confirm(recipient: confirm.recipient, ids: confirm.ids, at: now) }
        } catch {
            // The store cannot write (a full disk, a database restarting). The recipient has
            // the messages, so their credit is freed anyway and deliveries keep flowing from
            // what is stored; the confirmations are kept and written once the store answers.
            // Withholding credit instead would stall every recipient until it recovered.
            keepUnrecorded(batch)
            logger.error("could not record confirmations; kept until the store answers", metadata: ["error": "\(error)"])
        }
        applyConfirmations(batch)
    }

    /// Confirmations the store could not take, for `retryStoreBacklog`. Writing one twice is
    /// harmless (only pending deliveries change), so a batch that partly succeeded is kept whole.
    func keepUnrecorded(_ batch: [(routingID: [UInt8], recipient: PersonID, ids: [String])]) {
        storeBacklog.confirmations += batch.map { DeliveryConfirmation(recipient: $0.recipient, ids: $0.ids) }
    }

    /// Frees the credit the confirmed deliveries held.
    func applyConfirmations(_ batch: [(routingID: [UInt8], recipient: PersonID, ids: [String])]) {
        for confirm in batch {
            sessions.confirmed(Set(confirm.ids), for: confirm.recipient, via: confirm.routingID)
        }
    }
}

/// Deliveries put in the outbox and not yet recorded in the store, in the order they were
/// decided (the audit chain keeps that order): those sent and those withheld by the
/// delivery-time consent check, each with its audit line.
struct DeliveryRecords {
    enum Entry {
        case sent(DeliveryKey, redacted: Bool, audit: AuditEntry)
        case withheld(DeliveryKey, rule: String, reason: String, audit: AuditEntry)
    }
    var entries: [Entry] = []

    var isEmpty: Bool { entries.isEmpty }
}
