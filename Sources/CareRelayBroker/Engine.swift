import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Logging
import ZeroMQ

/// The broker's loop: the thin shell around `BrokerCore`. It owns the ROUTER socket (where
/// clients connect) and the control socket (STOP and WAKE from `BrokerServer`), polls them,
/// hands each command to the core, and sends what the core put in its outbox. Commands read
/// in one pass are one batch: the core stores all its SENDs in one synced transaction
/// ("group commit") and only then acknowledges them, so "accepted" always means "on disk".
final class Engine {
    let core: BrokerCore
    let router: Socket
    let control: Socket
    private let logger: Logger
    private let batchLimit: Int
    /// Runs the reads too long for the loop (the audit trail's) beside it.
    private let reader: ReaderThread

    init(
        configuration: BrokerConfiguration, context: ZMQContext, directory: DirectoryIndex?,
        store: any MessageStore, consent: ConsentGate, controlEndpoint: String, vitals: BrokerVitals, logger: Logger
    ) throws {
        core = try BrokerCore(
            configuration: configuration, directory: directory, store: store,
            consent: consent, vitals: vitals, logger: logger)
        self.logger = logger
        batchLimit = configuration.batchLimit

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
        // Started last, once nothing above can fail: a broker that does not start leaves no
        // reader thread waiting for work.
        reader = ReaderThread(store: configuration.store, logger: logger) {
            BrokerServer.signal("WAKE", context: context, endpoint: controlEndpoint)
        }
    }

    var boundEndpoint: String { (try? router.lastEndpoint) ?? core.configuration.endpoint }

    func run() {
        logger.info("broker serving", metadata: ["endpoint": "\(boundEndpoint)", "libzmq": "\(ZMQLibrary.buildDescription)"])
        if ZMQLibrary.carerelayPatchLevel == nil {
            logger.warning(
                "this libzmq lacks CareRelay's patch: a client that floods a connection and then resets it can abort the broker (libzmq issue 4841). Run Scripts/setup, which builds the patched libzmq (Scripts/libzmq/build).",
                metadata: ["libzmq": "\(ZMQLibrary.versionString)"])
        }
        while !core.stopping {
            let events: [PollEvents]
            do {
                events = try poll([PollItem(router), PollItem(control)], timeoutMilliseconds: core.timerDelay())
            } catch {
                if error.isInterrupted { continue }
                logger.error("poll failed; stopping", metadata: ["error": "\(error)"])
                break
            }
            let turnStart = DispatchTime.now().uptimeNanoseconds
            let commandsWaiting = events.count == 2 && events[0].contains(.readable)
            if events.count == 2, events[1].contains(.readable) { handleControl() }
            if commandsWaiting { drain() }
            let deliveriesWaiting = core.housekeeping()
            for done in reader.takeAnswers() { core.answer(done.read, with: done.result) }
            flush()
            if commandsWaiting || deliveriesWaiting {
                core.metrics.loopTurn(nanoseconds: DispatchTime.now().uptimeNanoseconds - turnStart)
            }
            // Wall time, not the configured clock: health checks compare it with the real now.
            core.vitals.turn(at: Date(), connectedClients: core.sessions.count)
            core.metrics.connectedClients(core.sessions.count)
        }
        reader.stop()
        logger.info("broker stopped")
    }

    private func handleControl() {
        while let message = try? control.receive(dontWait: true) {
            switch message.frames.first.flatMap({ String(decoding: $0, as: UTF8.self) }) {
            case "STOP":
                // What was already read into this batch is stored and answered first; then
                // whatever is still waiting is answered "shutting down".
                drain()
                core.beginStopping()
                while let message = receiveOne() { core.receive(message) }
                flush()
            case "WAKE":
                core.wake()  // timers and deliveries run after this
            default: break
            }
        }
    }

    /// Reads everything waiting (up to the batch limit), then has the core commit the batch
    /// and sends its answers.
    private func drain() {
        var read = 0
        while read < batchLimit, let message = receiveOne() {
            read += 1
            core.receive(message)
        }
        core.commitBatch()
        flush()
    }

    /// The routing id and at most four CRP frames plus one, to say how many there were.
    static let maxFrames = 6

    private func receiveOne() -> InboundMessage? {
        do {
            guard let message = try router.receive(dontWait: true, maxFrames: Self.maxFrames),
                let routingID = message.frames.first
            else { return nil }
            return InboundMessage(
                routingID: routingID, frames: Array(message.frames.dropFirst()), userID: message.userID,
                discardedFrames: message.discardedFrames)
        } catch {
            logger.warning("receive failed", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Sends the core's outbox. Never blocks: a peer that is not reading loses the message
    /// (a delivery goes back to its mailbox), and one that has gone loses its session.
    private func flush() {
        reader.submit(core.takeReadsBesideTheLoop())
        core.flush { outgoing in
            do {
                return try router.send([outgoing.routingID] + outgoing.frames, dontWait: true) ? nil : .dropped
            } catch let error as ZMQError where error.isHostUnreachable {
                return .peerGone
            } catch {
                return .dropped
            }
        }
    }
}

extension Array where Element == UInt8 {
    var hexPrefix: String { prefix(8).map { String(format: "%02x", $0) }.joined() }
}

public enum CareRelayBroker {
    public static let version = "0.1.0"
}
