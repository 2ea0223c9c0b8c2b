import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Crypto
import Foundation
import Logging
import ZeroMQ

/// The broker's loop. It owns the ROUTER socket and the store and runs on one thread; nothing
/// here is shared, so the hot path takes no locks. Commands read in one pass are handled as a
/// batch: all SENDs of the batch are stored in one synced transaction ("group commit") and
/// only then acknowledged, so "accepted" always means "on disk".
final class Engine {
    let configuration: BrokerConfiguration
    let router: Socket
    let control: Socket
    let store: any MessageStore
    var directory: DirectoryIndex
    let codec: CRPCodec
    var logger: Logger
    var consent: ConsentGate
    var subscriptionRules = SubscriptionRules.default
    let metrics: BrokerMetrics
    let vitals: BrokerVitals

    var sessions = SessionTable()
    /// Gateways (the carer bridge) that act for each carer.
    var gatewaysFor: [PersonID: [PersonID]] = [:]
    /// People whose mailbox may have something new to send.
    var dirty = Set<PersonID>()
    /// How often each unconfirmed delivery has gone out, for the DELIVER header.
    var attempts: [DeliveryKey: Int] = [:]
    /// Per person, the highest message sequence handed to a live connection: the mailbox is
    /// read from there on, not from the start. Cleared when a connection ends, so what it
    /// held unconfirmed is found again.
    var deliveryCursor: [PersonID: Int64] = [:]
    /// Envelopes of messages just accepted, so their first deliveries need not decode the
    /// stored JSON again (a restart or an old message falls back to the store's copy).
    var recentEnvelopes = RecentEnvelopes()
    /// Patients' care teams, read from the store once and dropped when they change.
    var careTeams: [NHSNumber: [CareTeamMember]] = [:]
    var nextDeadline: Date?
    var lastSweep = Date.distantPast
    var stopping = false
    /// Where a reloaded directory comes from (shared with the ZAP handler).
    var directorySource: BrokerServer.DirectoryBox?
    private var directoryGeneration = 0

    // Commands collected while draining the socket, handled together.
    struct PendingSend {
        let routingID: [UInt8]
        let person: Directory.Person
        let header: SendHeader
        let body: [UInt8]
    }
    var pendingSends: [PendingSend] = []
    var pendingConfirms: [(routingID: [UInt8], recipient: PersonID, ids: [String])] = []
    /// What a failing store could not take, written once it answers again.
    var storeBacklog = StoreBacklog()
    /// Malformed commands per key, and the keys being ignored for sending too many.
    var refusals: RefusalBudget

    init(configuration: BrokerConfiguration, context: ZMQContext, directory: DirectoryIndex,
         store: any MessageStore, consent: ConsentGate, controlEndpoint: String, vitals: BrokerVitals, logger: Logger) throws {
        self.configuration = configuration
        self.directory = directory
        self.store = store
        self.consent = consent
        self.logger = logger
        codec = CRPCodec(maxBodyBytes: configuration.maxBodyBytes)
        metrics = BrokerMetrics(factory: configuration.metricsFactory)
        self.vitals = vitals
        refusals = RefusalBudget(limits: configuration.refusalLimits)

        router = try context.makeSocket(.router)
        switch configuration.security {
        case .curve:
            try router.setCurveServer(true)
            try router.setCurveSecretKey(configuration.secretKey)
        case .insecureDevelopment:
            // BrokerServer.start has already refused any endpoint but loopback.
            try router.setPlainServer(true)
        }
        try router.setZAPDomain("carerelay")
        // Fail loudly instead of dropping a reply to a peer that has gone.
        try router.setRouterMandatory(true)
        // Credit keeps deliveries far below this; it only bounds replies to a peer that
        // sends without reading (and the ZMTP heartbeat below ends such a peer's connection).
        try router.setSendHighWaterMark(100_000)
        // Per connection, at most this many messages wait in the broker; beyond it libzmq
        // stops reading that peer's socket and TCP pushes back. It is what bounds the memory
        // a flooding client can take (CRP.md, security considerations).
        try router.setReceiveHighWaterMark(Int32(clamping: configuration.receiveQueueMessages))
        // No frame larger than one body plus slack, so a slightly oversize body is still read
        // and answered 409 rather than cut off; the loop drops frames beyond the fifth unread.
        try router.setMaxMessageSize(Int64(configuration.maxBodyBytes) * 2 + 64 * 1024)
        // A connection that never completes its CURVE handshake (raw TCP, garbage) is dropped
        // after this rather than libzmq's 30 s.
        try router.setHandshakeInterval(Int32(clamping: configuration.handshakeMilliseconds))
        // ZMTP heartbeats find dead peers. On Debian's unpatched libzmq 4.3.4 the heartbeat
        // timer is one of two ways a flooding peer's reset aborts the process; the patched
        // build from Scripts/libzmq/build fixes both (the other is a PING the peer sends).
        try router.setHeartbeatInterval(Int32(configuration.heartbeatMilliseconds))
        try router.setHeartbeatTimeout(Int32(configuration.heartbeatMilliseconds * 3))
        try router.setHeartbeatTTL(Int32(configuration.heartbeatMilliseconds * 3))
        try router.bind(configuration.endpoint)

        control = try context.makeSocket(.dealer)
        try control.bind(controlEndpoint)
        rebuildGatewayIndex()
        nextDeadline = try store.nextReferralDeadline()
        // After a restart every unconfirmed delivery is due again: each person's mailbox is
        // read from the start when their first session says HELLO (no scan needed here).
    }

    var boundEndpoint: String { (try? router.lastEndpoint) ?? configuration.endpoint }

    func rebuildGatewayIndex() {
        var index: [PersonID: [PersonID]] = [:]
        for person in directory.directory.people where person.roles.contains(.gateway) {
            for carer in person.actsFor ?? [] { index[carer, default: []].append(person.id) }
        }
        gatewaysFor = index
    }

    // MARK: Loop

    func run() {
        logger.info("broker serving", metadata: ["endpoint": "\(boundEndpoint)", "libzmq": "\(ZMQLibrary.buildDescription)"])
        if ZMQLibrary.carerelayPatchLevel == nil {
            logger.warning("this libzmq lacks CareRelay's patch: a client that floods a connection and then resets it can abort the broker (libzmq issue 4841). Run Scripts/setup, which builds the patched libzmq (Scripts/libzmq/build).",
                           metadata: ["libzmq": "\(ZMQLibrary.versionString)"])
        }
        while !stopping {
            let events: [PollEvents]
            do {
                events = try poll([PollItem(router), PollItem(control)], timeoutMilliseconds: timerDelay())
            } catch {
                if error.isInterrupted { continue }
                logger.error("poll failed; stopping", metadata: ["error": "\(error)"])
                break
            }
            let turnStart = DispatchTime.now().uptimeNanoseconds
            let commandsWaiting = events.count == 2 && events[0].contains(.readable)
            if events.count == 2, events[1].contains(.readable) { handleControl() }
            if commandsWaiting { drain() }
            takeSharedChanges()
            runTimers()
            let deliveriesWaiting = !dirty.isEmpty
            pumpDirty()
            if commandsWaiting || deliveriesWaiting {
                metrics.loopTurn(nanoseconds: DispatchTime.now().uptimeNanoseconds - turnStart)
            }
            // Wall time, not the configured clock: health checks compare it with the real now.
            vitals.turn(at: Date(), connectedClients: sessions.count)
            metrics.connectedClients(sessions.count)
        }
        logger.info("broker stopped")
    }

    private func timerDelay() -> Int {
        if !dirty.isEmpty { return 0 }
        var delay = 1_000
        if let deadline = nextDeadline {
            delay = min(delay, max(0, Int(deadline.timeIntervalSince(configuration.clock()) * 1000) + 1))
        }
        return delay
    }

    private func handleControl() {
        while let message = try? control.receive(dontWait: true) {
            switch message.frames.first.flatMap({ String(decoding: $0, as: UTF8.self) }) {
            case "STOP":
                stopping = true
                vitals.markStopping()
                refuseWaitingCommands()
            case "WAKE":
                adoptReloadedDirectory()  // timers and pumps run below
            default: break
            }
        }
    }

    /// Takes a reloaded directory if there is one. Checked before every command as well as
    /// on WAKE, so a command sent after `reload` returned is judged by the new directory even
    /// if it is read before the WAKE.
    private func adoptReloadedDirectory() {
        guard let source = directorySource, source.generation != directoryGeneration else { return }
        directoryGeneration = source.generation
        directory = source.current
        rebuildGatewayIndex()
        endRevokedSessions()
        logger.info("directory reloaded", metadata: ["people": "\(directory.directory.people.count)"])
    }

    /// With a store other brokers write to: act on what they wrote, as this broker would
    /// have on its own writes. Arrives by notification (see `SharedChanges`), not polling.
    private func takeSharedChanges() {
        guard let changes = store.sharedChanges?.take(), !changes.isEmpty else { return }
        var referralsChanged = false, consentChanged = false
        for change in changes {
            switch change {
            case .mail(let person): dirty.insert(person)
            case .careTeam(let patient): careTeams[patient] = nil
            case .consent: consentChanged = true
            case .referral: referralsChanged = true
            case .everything:
                for person in sessions.all.map(\.person) { dirty.insert(person) }
                careTeams.removeAll()
                consentChanged = true
                referralsChanged = true
            }
        }
        if consentChanged { refreshConsent() }
        if referralsChanged, let next = try? store.nextReferralDeadline() {
            nextDeadline = min(nextDeadline ?? next, next)
        }
    }

    /// Brings the consent registry up to date with the store. A new directive can withdraw
    /// consent for messages already queued, so everyone connected is checked again.
    func refreshConsent() {
        do {
            if try consent.catchUp(from: store) {
                for person in sessions.all.map(\.person) { dirty.insert(person) }
            }
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            logger.error("could not read consent directives", metadata: ["error": "\(error)"])
        }
    }

    /// At shutdown, whatever is still waiting is answered "shutting down" rather than left
    /// unanswered: those senders retry with the same keys elsewhere or later.
    private func refuseWaitingCommands() {
        drain()  // what was already read into this batch is stored and answered first
        while let message = try? router.receive(dontWait: true, maxFrames: Self.maxFrames), let routingID = message.frames.first {
            let frames = message.frames.dropFirst()
            let tags = frames.count >= 3 ? Self.tags(in: frames[frames.startIndex + 2]) : (req: nil, key: nil)
            reply(routingID, .rejected(Rejected(ProtocolError(.shuttingDown, "the broker is shutting down; nothing was accepted. Retry in a moment"),
                                                command: frames.dropFirst().first.flatMap { printableCommand($0) }, key: tags.key, req: tags.req)))
        }
    }

    /// Reads everything waiting (up to the batch limit), then commits the batch.
    private func drain() {
        var read = 0
        while read < configuration.batchLimit {
            let message: Multipart?
            do {
                message = try router.receive(dontWait: true, maxFrames: Self.maxFrames)
            } catch {
                logger.warning("receive failed", metadata: ["error": "\(error)"])
                break
            }
            guard let message else { break }
            read += 1
            handle(message)
        }
        commitBatch()
    }

    // MARK: Commands

    /// The routing id and at most four CRP frames plus one, to say how many there were.
    static let maxFrames = 6

    private func handle(_ message: Multipart) {
        guard let routingID = message.frames.first, message.frames.count >= 2 else { return }
        let now = configuration.clock()
        // A key over its budget of malformed commands is ignored: dropped before anything
        // is decoded, so a flood costs the loop a dictionary look-up per message.
        let peer = message.userID ?? routingID.hexPrefix
        if refusals.isIgnored(peer, now: now) {
            metrics.ignored()
            return
        }
        adoptReloadedDirectory()
        let frames = message.frames.dropFirst()
        let command: ClientCommand
        do throws(ProtocolError) {
            if message.discardedFrames > 0 {
                throw ProtocolError(.malformedMessage,
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
            reply(routingID, .rejected(Rejected(ProtocolError(.notPermitted, "this connection's key is no longer in the directory (revoked or rotated); nothing was accepted"), command: command.name, req: command.req)))
            logger.notice("command refused: key not in the directory", metadata: ["command": "\(command.name)"])
            return
        }
        if case .hello(let hello) = command {
            welcome(routingID, person: person, hello: hello, now: now)
            return
        }
        guard var session = sessions[routingID] else {
            reply(routingID, .rejected(Rejected(ProtocolError(.helloRequired, "say HELLO first: the broker has no session for this connection (it may have expired)"), command: command.name, req: command.req)))
            return
        }
        guard session.person == person.id else {
            // A routing id reused by another identity: refuse rather than mix two people up.
            reply(routingID, .rejected(Rejected(ProtocolError(.notPermitted, "this connection belongs to another identity"), command: command.name, req: command.req)))
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
                reply(routingID, .rejected(Rejected(ProtocolError(.notPermitted, "you may confirm only your own deliveries or those of people you act for"), command: command.name)))
                return
            }
            pendingConfirms.append((routingID, recipient, confirm.ids))
        case .credit(let credit):
            session.credit = max(0, min(credit.credit, 10_000))
            sessions[routingID] = session
            markDirty(forSessionOf: person)
        case .subscribe(let request):
            subscribe(routingID, person: person, request: request)
        case .unsubscribe(let request):
            guard let pattern = TopicPattern(request.topic) else {
                reply(routingID, .rejected(Rejected(ProtocolError(.invalidHeader, "topic: '\(request.topic)' is not a topic pattern"), command: "UNSUBSCRIBE", req: request.req)))
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
        reply(routingID, .rejected(Rejected(ProtocolError(.throttled,
            "too many malformed commands from this key (more than \(limits.burst) at over \(Int(limits.perSecond)) a second): the broker ignores every command from it, on every connection, for \(Int(limits.ignoreSeconds)) s. Fix the client; nothing was accepted"),
            command: refusal.command)))
        for session in sessions.all where session.key == peer || session.routingID == routingID {
            endSession(session.routingID)
        }
        vitals.throttled(keys: refusals.ignoredCount(now: now))
        logger.warning("ignoring a key that sent too many malformed commands", metadata: [
            "person": "\(directory.peopleByKey[peer]?.id.rawValue ?? "unknown")", "seconds": "\(Int(limits.ignoreSeconds))"])
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

    private func welcome(_ routingID: [UInt8], person: Directory.Person, hello: Hello, now: Date) {
        // A second HELLO on one connection starts afresh; anything in flight returns to the mailbox.
        endSession(routingID)
        sessions[routingID] = Session(
            routingID: routingID, person: person.id, key: person.key, receives: hello.receive,
            credit: max(0, min(hello.credit, 10_000)), lastHeard: now)
        reply(routingID, .welcome(Welcome(
            version: Int(CRP.version), person: person.id, name: person.name, roles: person.roles,
            teams: person.teams, heartbeat: configuration.heartbeatMilliseconds,
            maxBody: configuration.maxBodyBytes, broker: "CareRelay \(CareRelayBroker.version)", req: hello.req)))
        markDirty(forSessionOf: person)
        logger.info("session opened", metadata: ["person": "\(person.id)", "receive": "\(hello.receive)"])
    }

    /// Ends a connection's session. What it held unconfirmed goes back to the mailbox: the
    /// delivery cursor of everyone it received for is reset so the mailbox is read again.
    func endSession(_ routingID: [UInt8]) {
        guard let session = sessions[routingID] else { return }
        sessions[routingID] = nil
        var people: Set<PersonID> = [session.person]
        for key in session.inFlight.keys { people.insert(key.recipient) }
        for person in people {
            deliveryCursor[person] = nil
            dirty.insert(person)
        }
    }

    /// After a directory reload: a session whose key is no longer its person's gets nothing
    /// more, not even what is already in its mailbox. Its unconfirmed deliveries return to
    /// the mailbox for the person's new key.
    private func endRevokedSessions() {
        for session in sessions.all where directory.peopleByKey[session.key]?.id != session.person {
            endSession(session.routingID)
            logger.notice("session ended: its key was revoked or rotated", metadata: ["person": "\(session.person)"])
        }
    }

    /// Marks the person and, for a gateway, everyone it acts for.
    func markDirty(forSessionOf person: Directory.Person) {
        dirty.insert(person.id)
        if person.roles.contains(.gateway) {
            for carer in person.actsFor ?? [] { dirty.insert(carer) }
        }
    }

    func reply(_ routingID: [UInt8], _ command: BrokerCommand) {
        if case .rejected(let refusal) = command, let code = ErrorCode(rawValue: refusal.code) { metrics.rejected(code) }
        send(routingID, codec.encode(command))
    }

    /// Sends to one connection. Returns false when the peer has gone, after ending its session.
    @discardableResult
    func send(_ routingID: [UInt8], _ frames: [[UInt8]]) -> Bool {
        do {
            if try router.send([routingID] + frames, dontWait: true) { return true }
            logger.warning("peer is not reading; a reply was dropped", metadata: ["peer": "\(routingID.hexPrefix)"])
            return false
        } catch {
            if error.isHostUnreachable, let session = sessions[routingID] {
                endSession(routingID)
                logger.info("peer gone; session ended", metadata: ["person": "\(session.person)"])
            }
            return false
        }
    }

    // MARK: Subscriptions

    private func subscribe(_ routingID: [UInt8], person: Directory.Person, request: SubscriptionRequest) {
        guard let pattern = TopicPattern(request.topic) else {
            reply(routingID, .rejected(Rejected(ProtocolError(.invalidHeader, "topic: '\(request.topic)' is not a topic pattern; write kind/locality/team with * or a final #"), command: "SUBSCRIBE", req: request.req)))
            return
        }
        let allowed = subscriptionRules.patterns(for: person, in: directory)
        guard allowed.contains(where: { pattern.isCovered(by: $0) }) else {
            let offer = allowed.isEmpty ? "your roles may not subscribe to any topic" : "you may subscribe within \(allowed.map(\.description).joined(separator: ", "))"
            reply(routingID, .rejected(Rejected(ProtocolError(.subscriptionDenied, "topic '\(pattern)' is beyond your rights: \(offer)"), command: "SUBSCRIBE", req: request.req)))
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
    }

    private func expireSilentSessions(now: Date) {
        let limit = Double(configuration.heartbeatMilliseconds * 3) / 1000
        for session in sessions.all where now.timeIntervalSince(session.lastHeard) > limit {
            endSession(session.routingID)
            logger.info("session expired", metadata: ["person": "\(session.person)"])
        }
    }
}

extension Array where Element == UInt8 {
    var hexPrefix: String { prefix(8).map { String(format: "%02x", $0) }.joined() }
}

public enum CareRelayBroker {
    public static let version = "0.1.0"
}
