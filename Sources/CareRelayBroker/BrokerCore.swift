import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation
import Logging

/// One command as it came off the broker's socket: who sent it (the connection's routing id
/// and the key its handshake authenticated) and its CRP frames, not yet decoded.
struct InboundMessage {
    let routingID: [UInt8]
    /// Signature, command, header and body frames, after the routing id.
    let frames: [[UInt8]]
    /// The key the ZAP handler authenticated the connection with ("User-Id"); nil if none.
    let userID: String?
    /// Frames the socket threw away unread because there were too many.
    var discardedFrames = 0
}

/// A read that would hold the loop (`audit.verify` reads the whole trail, `audit` up to 5,000
/// rows, `track` every recipient of a message, `inbox` up to 500 lines): `read` runs beside the
/// loop on the shell's reader thread, with a connection of its own, and what it read comes back
/// through `BrokerCore.answer(_:with:)`.
struct ReadBesideTheLoop: Sendable {
    let routingID: [UInt8]
    let query: String
    let req: String?
    let read: @Sendable (any StoreReader) throws -> ReadOutcome
}

/// What a read beside the loop came back with.
enum ReadOutcome: Sendable {
    /// The answer, encoded: the access policy was applied before the read.
    case answer([UInt8])
    /// Records for the loop to apply the access policy to (it needs the directory and the
    /// consent registry, which only the loop holds); the decision may ask for a further read.
    case decide(@Sendable (BrokerCore) throws -> QueryStep)
}

/// Where a query's answer comes from: made on the loop now, or read beside it.
enum QueryStep {
    case now([UInt8])
    case besideTheLoop(@Sendable (any StoreReader) throws -> ReadOutcome)
}

/// Something the core wants sent on one connection: a reply or a delivery.
struct Outgoing {
    let routingID: [UInt8]
    let frames: [[UInt8]]
    /// Set for a delivery: what it carries, so a copy that never left goes back to the mailbox.
    let delivery: DeliveryKey?
}

/// What became of one `Outgoing` that could not be sent.
enum TransmitFailure {
    /// The peer's connection has gone: its session ends.
    case peerGone
    /// The peer is not reading (its queue is full): this one was dropped.
    case dropped
}

/// The broker's rules and state, with no socket: sessions, credit, delivery cursors,
/// routing, consent decisions, referrals and queries. Commands come in already read off the
/// socket (`receive`), with the authenticated key; what the broker says goes into `outbox`,
/// which the shell (`Engine`) sends and reports back on (`flush`). The store is called
/// synchronously from here: a batch of SENDs is one durable transaction, taken before any of
/// them is acknowledged. Everything runs on the thread that owns the core; nothing in it is
/// shared, so the hot path takes no locks. Tests drive it in-process (BrokerCoreTests).
final class BrokerCore {
    let configuration: BrokerConfiguration
    let store: any MessageStore
    var directory: DirectoryIndex
    let codec: CRPCodec
    var logger: Logger
    var consent: ConsentGate
    var subscriptionRules = SubscriptionRules.default
    let metrics: BrokerMetrics
    let vitals: BrokerVitals

    /// Who is connected, with their credit, what they hold and how far their mailbox is read.
    var sessions = SessionTable()
    /// Envelopes of messages just accepted, so their first deliveries need not decode the
    /// stored JSON again (a restart or an old message falls back to the store's copy).
    var recentEnvelopes = RecentEnvelopes()
    /// Patients' care teams, read from the store once and dropped when they change.
    var careTeams: [NHSNumber: [CareTeamMember]] = [:]
    var nextDeadline: Date?
    /// When the next on-call chain moves on.
    var nextOnCall: Date?
    var lastSweep = Date.distantPast
    private(set) var stopping = false
    /// Where an operator's import arrives, and where the ZAP handler reads the directory served.
    var directorySource: BrokerServer.DirectoryBox?
    /// The store's revision of `directory`.
    var directoryRevision: Int64 = 0
    /// Wrong enrolment codes lately, broker-wide.
    var enrolmentAttempts = EnrolmentAttempts()

    // Commands collected while draining the socket, handled together.
    struct PendingSend {
        let routingID: [UInt8]
        let person: Directory.Person
        let header: SendHeader
        let body: [UInt8]
    }
    var pendingSends: [PendingSend] = []
    var pendingConfirms: [(routingID: [UInt8], recipient: PersonID, ids: [String])] = []
    /// Care plan versions routed in the batch being routed, by plan id: two versions under one
    /// number in the same batch are told apart before either is stored.
    var plansInBatch: [String: [(sender: PersonID, plan: CarePlanShare)]] = [:]
    /// What a failing store could not take, written once it answers again.
    var storeBacklog = StoreBacklog()
    /// Malformed commands per key, and the keys being ignored for sending too many.
    var refusals: RefusalBudget

    /// Replies and deliveries waiting for the shell to send them, in order.
    private(set) var outbox: [Outgoing] = []
    /// Records of the deliveries in `outbox`, written to the store once they have left.
    var unrecordedDeliveries = DeliveryRecords()
    /// Reads for the shell to run beside the loop (`takeReadsBesideTheLoop`).
    var readsBesideTheLoop: [ReadBesideTheLoop] = []

    /// `directory`: the directory to seed a store that holds none; a store that holds one
    /// serves its own.
    init(
        configuration: BrokerConfiguration, directory seed: DirectoryIndex?, store: any MessageStore,
        consent: ConsentGate, vitals: BrokerVitals, logger: Logger
    ) throws {
        self.configuration = configuration
        (directory, directoryRevision) = try Self.openDirectory(seed: seed, store: store, now: configuration.clock(), logger: logger)
        self.store = store
        self.consent = consent
        self.logger = logger
        codec = CRPCodec(maxBodyBytes: configuration.maxBodyBytes)
        metrics = BrokerMetrics(factory: configuration.metricsFactory)
        self.vitals = vitals
        refusals = RefusalBudget(limits: configuration.refusalLimits)
        sessions.actFor(directory.directory)
        nextDeadline = try store.nextReferralDeadline()
        nextOnCall = try store.nextOnCallDeadline()
        // After a restart every unconfirmed delivery is due again: each person's mailbox is
        // read from the start when their first session says HELLO (no scan needed here).
    }

    // MARK: One turn

    /// How long the shell may wait for a command before the core has work of its own.
    func timerDelay() -> Int {
        if !sessions.waiting.isEmpty { return 0 }
        var delay = 1_000
        for deadline in [nextDeadline, nextOnCall].compactMap({ $0 }) {
            delay = min(delay, max(0, Int(deadline.timeIntervalSince(configuration.clock()) * 1000) + 1))
        }
        return delay
    }

    /// What the core does on every turn of the loop, whether or not a command came in:
    /// other brokers' changes, timers, and deliveries to everyone with something waiting.
    /// Returns whether there were deliveries to make.
    @discardableResult
    func housekeeping() -> Bool {
        takeSharedChanges()
        runTimers()
        let deliveriesWaiting = !sessions.waiting.isEmpty
        pumpDirty()
        return deliveriesWaiting
    }

    /// The shell's STOP: from now on every command is answered "shutting down".
    func beginStopping() {
        stopping = true
        vitals.markStopping()
    }

    /// Hands what is waiting to `transmit`, one message at a time, in order; then writes the
    /// records of the deliveries that left. A delivery that could not leave goes back to the
    /// mailbox; a peer that has gone loses its session.
    func flush(_ transmit: (Outgoing) -> TransmitFailure?) {
        let sending = outbox
        outbox.removeAll(keepingCapacity: true)
        var gone = Set<[UInt8]>()
        for outgoing in sending {
            // Nothing more for a connection that has gone in this flush.
            let failure: TransmitFailure? = gone.contains(outgoing.routingID) ? .peerGone : transmit(outgoing)
            guard let failure else { continue }
            if let key = outgoing.delivery { unsent(key, via: outgoing.routingID) }
            switch failure {
            case .peerGone:
                if gone.insert(outgoing.routingID).inserted, let session = sessions[outgoing.routingID] {
                    endSession(outgoing.routingID)
                    logger.info("peer gone; session ended", metadata: ["person": "\(session.person)"])
                }
            case .dropped:
                logger.warning("peer is not reading; a reply was dropped", metadata: ["peer": "\(outgoing.routingID.hexPrefix)"])
            }
        }
        recordDeliveries()
    }

    /// The reads waiting to be run beside the loop, handed to the shell.
    func takeReadsBesideTheLoop() -> [ReadBesideTheLoop] {
        defer { readsBesideTheLoop.removeAll() }
        return readsBesideTheLoop
    }

    /// Adopts a reloaded directory and acts on changes other brokers made (the shell's WAKE).
    func wake() {
        adoptReloadedDirectory()
    }

    /// Takes an operator's import if there is one, saving it as the store's next revision.
    /// Checked before every command as well as on WAKE, so a command sent after `reload`
    /// returned is judged by the new directory even if it is read before the WAKE.
    private func adoptReloadedDirectory() {
        guard let source = directorySource, let imported = source.takeImport() else { return }
        // Served at once even if the store cannot take it now; saved on a later turn.
        if !saveImportedDirectory(imported) {
            directory = imported
            sessions.actFor(imported.directory)
            endRevokedSessions()
            source.retryImport(imported)
        }
    }

    /// With a store other brokers write to: act on what they wrote, as this broker would
    /// have on its own writes. Arrives by notification (see `SharedChanges`), not polling.
    private func takeSharedChanges() {
        guard let changes = store.sharedChanges?.take(), !changes.isEmpty else { return }
        var referralsChanged = false, consentChanged = false
        for change in changes {
            switch change {
            case .mail(let person): sessions.wake(person)
            case .careTeam(let patient): careTeams[patient] = nil
            case .consent: consentChanged = true
            case .referral: referralsChanged = true
            case .directory: reloadDirectoryFromStore()
            case .everything:
                reloadDirectoryFromStore()
                sessions.wakeEveryone()
                careTeams.removeAll()
                consentChanged = true
                referralsChanged = true
            }
        }
        if consentChanged { refreshConsent() }
        if referralsChanged, let next = try? store.nextReferralDeadline() {
            nextDeadline = min(nextDeadline ?? next, next)
        }
        if referralsChanged, let next = try? store.nextOnCallDeadline() {
            nextOnCall = min(nextOnCall ?? next, next)
        }
    }

    /// Brings the consent registry up to date with the store. A new directive can withdraw
    /// consent for messages already queued, so everyone connected is checked again.
    func refreshConsent() {
        do {
            if try consent.catchUp(from: store) { sessions.wakeEveryone() }
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            logger.error("could not read consent directives", metadata: ["error": "\(error)"])
        }
    }

    /// At shutdown, a command still waiting is answered "shutting down" rather than left
    /// unanswered: its sender retries with the same key elsewhere or later.
    func refuseShuttingDown(_ message: InboundMessage) {
        let frames = message.frames
        let tags = frames.count >= 3 ? Self.tags(in: frames[2]) : (req: nil, key: nil)
        reply(
            message.routingID,
            .rejected(
                Rejected(
                    ProtocolError(.shuttingDown, "the broker is shutting down; nothing was accepted. Retry in a moment"),
                    command: frames.dropFirst().first.flatMap { printableCommand($0) }, key: tags.key, req: tags.req)))
    }

    // MARK: Commands

    /// Takes one command. A SEND or CONFIRM waits for the end of the batch (`commitBatch`);
    /// everything else is answered at once.
    func receive(_ message: InboundMessage) {
        let routingID = message.routingID
        guard !message.frames.isEmpty else { return }
        if stopping {
            refuseShuttingDown(message)
            return
        }
        let now = configuration.clock()
        // A key over its budget of malformed commands is ignored: dropped before anything
        // is decoded, so a flood costs the loop a dictionary look-up per message.
        let peer = message.userID ?? routingID.hexPrefix
        if refusals.isIgnored(peer, now: now) {
            metrics.ignored()
            return
        }
        adoptReloadedDirectory()
        let frames = message.frames[...]
        let command: ClientCommand
        do throws(ProtocolError) {
            if message.discardedFrames > 0 {
                throw ProtocolError(
                    .malformedMessage,
                    "a CRP message has 3 or 4 frames (signature, command, header[, body]); this one has \(frames.count + message.discardedFrames)")
            }
            command = try codec.decodeClientCommand(frames)
        } catch {
            let name = frames.dropFirst().first.flatMap { printableCommand($0) }
            // Echo the request's tags when the header can be read at all, so the client can
            // match the refusal to its request instead of waiting for an answer.
            let tags = frames.count >= 3 ? Self.tags(in: frames[frames.startIndex + 2]) : (req: nil, key: nil)
            refuseMalformed(routingID, peer: peer, Rejected(error, command: name, key: tags.key, req: tags.req), now: now)
            logger.notice("refused a malformed command", metadata: ["code": "\(error.code.name)", "req": "\(tags.req ?? "-")"])
            // The reason can quote what was sent (an NHS number, a field): debug only.
            logger.debug("refused a malformed command: reason", metadata: ["req": "\(tags.req ?? "-")", "reason": "\(error.reason)"])
            return
        }
        // Identity comes from the key this connection authenticated with (the ZAP handler's
        // User-Id), looked up in the directory now: a revoked key is refused from this moment.
        guard let key = message.userID, let person = directory.peopleByKey[key] else {
            if sessions[routingID] != nil { endSession(routingID) }
            if let key = message.userID {
                answerStranger(routingID, key: key, command: command)
            } else {
                reply(
                    routingID,
                    .rejected(
                        Rejected(
                            ProtocolError(.notPermitted, "this connection has no key; nothing was accepted"), command: command.name, req: command.req)
                    ))
            }
            logger.notice("command from a key not in the directory", metadata: ["command": "\(command.name)"])
            return
        }
        if case .hello(let hello) = command {
            welcome(routingID, person: person, key: key, hello: hello, now: now)
            return
        }
        // An enrolment retried after its answer was lost comes from the key it enrolled,
        // on a connection that never said HELLO.
        if case .query(let query) = command, query.query == QueryName.enrol.rawValue, sessions[routingID] == nil {
            answer(routingID, person: person, query: query)
            return
        }
        guard var session = sessions[routingID] else {
            reply(
                routingID,
                .rejected(
                    Rejected(
                        ProtocolError(.helloRequired, "say HELLO first: the broker has no session for this connection (it may have expired)"),
                        command: command.name, req: command.req)))
            return
        }
        guard session.person == person.id else {
            // A routing id reused by another identity: refuse rather than mix two people up.
            reply(
                routingID,
                .rejected(
                    Rejected(ProtocolError(.notPermitted, "this connection belongs to another identity"), command: command.name, req: command.req)))
            return
        }
        session.lastHeard = now
        sessions[routingID] = session

        switch command {
        case .hello: break
        case .send(let header, let body):
            pendingSends.append(PendingSend(routingID: routingID, person: person, header: header, body: body))
        case .confirm(let confirm):
            let recipient = confirm.recipient ?? person.id
            guard recipient == person.id || person.actsAsGateway(for: recipient) else {
                reply(
                    routingID,
                    .rejected(
                        Rejected(
                            ProtocolError(.notPermitted, "you may confirm only your own deliveries or those of people you act for"),
                            command: command.name)))
                return
            }
            pendingConfirms.append((routingID, recipient, confirm.ids))
        case .credit(let credit):
            session.credit = max(0, min(credit.credit, 10_000))
            sessions[routingID] = session
            sessions.wake(sessionOf: person)
        case .subscribe(let request):
            subscribe(routingID, person: person, request: request)
        case .unsubscribe(let request):
            guard let pattern = TopicPattern(request.topic) else {
                reply(
                    routingID,
                    .rejected(
                        Rejected(
                            ProtocolError(.invalidHeader, "topic: '\(request.topic)' is not a topic pattern"), command: "UNSUBSCRIBE",
                            req: request.req)))
                return
            }
            sessions[routingID]?.subscriptions.removeAll { $0 == pattern }
            reply(routingID, .unsubscribed(Subscribed(topic: pattern.description, req: request.req)))
        case .query(let query):
            answer(routingID, person: person, query: query)
        case .ping(let empty):
            reply(routingID, .pong(Empty(req: empty.req)))
        case .bye:
            endSession(routingID)
        }
    }

    /// Answers a malformed command and charges it to the sender's key. The refusal that
    /// empties the key's budget is followed by `429 throttled`; then the key's sessions end
    /// (what they held unconfirmed goes back to the mailbox) and it is ignored for a while.
    private func refuseMalformed(_ routingID: [UInt8], peer: String, _ refusal: Rejected, now: Date) {
        reply(routingID, .rejected(refusal))
        guard refusals.charge(peer, now: now) == .answerAndThrottle else { return }
        let limits = refusals.limits
        reply(
            routingID,
            .rejected(
                Rejected(
                    ProtocolError(
                        .throttled,
                        "too many malformed commands from this key (more than \(limits.burst) at over \(Int(limits.perSecond)) a second): the broker ignores every command from it, on every connection, for \(Int(limits.ignoreSeconds)) s. Fix the client; nothing was accepted"
                    ),
                    command: refusal.command)))
        for session in sessions.all where session.key == peer || session.routingID == routingID {
            endSession(session.routingID)
        }
        vitals.throttled(keys: refusals.ignoredCount(now: now))
        logger.warning(
            "ignoring a key that sent too many malformed commands",
            metadata: [
                "person": "\(directory.peopleByKey[peer]?.id.rawValue ?? "unknown")", "seconds": "\(Int(limits.ignoreSeconds))",
            ])
    }

    /// The `req` and `key` fields of a header that failed stricter decoding, if present.
    static func tags(in header: [UInt8]) -> (req: String?, key: String?) {
        guard header.count <= CRP.maxHeaderBytes,
            let object = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any]
        else { return (nil, nil) }
        func tag(_ name: String) -> String? {
            (object[name] as? String).map { String($0.prefix(128)) }
        }
        return (tag("req"), tag("key"))
    }

    private func printableCommand(_ frame: [UInt8]) -> String? {
        guard frame.count <= 16, frame.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return nil }
        return String(decoding: frame, as: UTF8.self)
    }

    private func welcome(_ routingID: [UInt8], person: Directory.Person, key: String, hello: Hello, now: Date) {
        // A second HELLO on one connection starts afresh; anything in flight returns to the mailbox.
        endSession(routingID)
        sessions[routingID] = Session(
            routingID: routingID, person: person.id, key: key, receives: hello.receive,
            credit: max(0, min(hello.credit, 10_000)), lastHeard: now)
        reply(
            routingID,
            .welcome(
                Welcome(
                    version: Int(CRP.version), person: person.id, name: person.name, roles: person.roles,
                    teams: person.teams, heartbeat: configuration.heartbeatMilliseconds,
                    maxBody: configuration.maxBodyBytes, broker: "CareRelay \(CareRelayBroker.version)", req: hello.req)))
        sessions.wake(sessionOf: person)
        logger.info("session opened", metadata: ["person": "\(person.id)", "receive": "\(hello.receive)"])
    }

    /// Ends a connection's session. What it held unconfirmed goes back to the mailbox.
    func endSession(_ routingID: [UInt8]) {
        sessions.end(routingID)
    }

    /// After a directory reload: a session whose key is no longer its person's gets nothing
    /// more, not even what is already in its mailbox. Its unconfirmed deliveries return to
    /// the mailbox for the person's new key.
    func endRevokedSessions() {
        for session in sessions.all where directory.peopleByKey[session.key]?.id != session.person {
            endSession(session.routingID)
            logger.notice("session ended: its key was revoked or rotated", metadata: ["person": "\(session.person)"])
        }
    }

    func reply(_ routingID: [UInt8], _ command: BrokerCommand) {
        if case .rejected(let refusal) = command, let code = ErrorCode(rawValue: refusal.code) { metrics.rejected(code) }
        outbox.append(Outgoing(routingID: routingID, frames: codec.encode(command), delivery: nil))
    }

    /// Puts a delivery in the outbox; `flush` undoes its bookkeeping if it cannot leave.
    func deliver(_ routingID: [UInt8], _ frames: [[UInt8]], key: DeliveryKey) {
        outbox.append(Outgoing(routingID: routingID, frames: frames, delivery: key))
    }

    // MARK: Subscriptions

    private func subscribe(_ routingID: [UInt8], person: Directory.Person, request: SubscriptionRequest) {
        guard let pattern = TopicPattern(request.topic) else {
            reply(
                routingID,
                .rejected(
                    Rejected(
                        ProtocolError(
                            .invalidHeader, "topic: '\(request.topic)' is not a topic pattern; write kind/locality/team with * or a final #"),
                        command: "SUBSCRIBE", req: request.req)))
            return
        }
        let allowed = subscriptionRules.patterns(for: person, in: directory)
        guard allowed.contains(where: { pattern.isCovered(by: $0) }) else {
            let offer =
                allowed.isEmpty
                ? "your roles may not subscribe to any topic" : "you may subscribe within \(allowed.map(\.description).joined(separator: ", "))"
            reply(
                routingID,
                .rejected(
                    Rejected(
                        ProtocolError(.subscriptionDenied, "topic '\(pattern)' is beyond your rights: \(offer)"), command: "SUBSCRIBE",
                        req: request.req)))
            logger.notice("subscription denied", metadata: ["person": "\(person.id)", "topic": "\(pattern)"])
            return
        }
        if sessions[routingID]?.subscriptions.contains(pattern) == false {
            sessions[routingID]?.subscriptions.append(pattern)
        }
        reply(routingID, .subscribed(Subscribed(topic: pattern.description, req: request.req)))
    }

    // MARK: Timers

    private func runTimers() {
        let now = configuration.clock()
        if now.timeIntervalSince(lastSweep) >= 1 {
            lastSweep = now
            expireSilentSessions(now: now)
            refusals.sweep(now: now)
            vitals.throttled(keys: refusals.ignoredCount(now: now))
        }
        if let deadline = nextDeadline, deadline <= now {
            escalateOverdueReferrals(now: now)
        }
        if let deadline = nextOnCall, deadline <= now {
            advanceOnCall(now: now)
        }
    }

    private func expireSilentSessions(now: Date) {
        let limit = Double(configuration.heartbeatMilliseconds * 3) / 1000
        for session in sessions.all where now.timeIntervalSince(session.lastHeard) > limit {
            endSession(session.routingID)
            logger.info("session expired", metadata: ["person": "\(session.person)"])
        }
    }
}
