import CareRelayClient
import CareRelayModel
import CareRelayProtocol
import Foundation
import Logging
import Synchronization

/// What the web side needs from the broker. The real one is `BrokerGateway`; tests may use a fake.
public protocol BrokerLink: Sendable {
    func send(_ header: SendHeader, body: [UInt8]) async throws -> Accepted
    func query(_ name: String, _ params: [String: String]) async throws -> [UInt8]
}

public enum GatewayError: Error, CustomStringConvertible {
    case notConnected(String)
    case stopped

    public var description: String {
        switch self {
        case .notConnected(let why): "the bridge is not connected to the broker: \(why)"
        case .stopped: "the bridge is shutting down"
        }
    }
}

/// Where deliveries go once the gateway has them: stored first, confirmed to the broker only
/// after that, then announced to open pages.
public final class DeliveryIntake: Sendable {
    let bridgeStore: BridgeStore
    let hub: LiveHub
    let gatewayID: PersonID
    let logger: Logger
    let now: @Sendable () -> Date

    public init(store: BridgeStore, hub: LiveHub, gatewayID: PersonID, logger: Logger, now: @escaping @Sendable () -> Date = Date.init) {
        self.bridgeStore = store
        self.hub = hub
        self.gatewayID = gatewayID
        self.logger = logger
        self.now = now
    }

    /// Stores a delivery durably and returns its sequence number here (nil for one addressed to
    /// the bridge itself, or one already stored). Throws when it could not be stored: then it
    /// must not be confirmed.
    @discardableResult
    public func store(_ delivery: Delivery) throws -> Int64? {
        let header = delivery.header
        if header.kind == .notice, let notice = try? BrokerNotice.decode(json: delivery.body), notice.notice == .revoked {
            // Taken back before the notice is kept, so a page never shows both.
            try bridgeStore.revoke(message: notice.message, recipient: header.recipient, parts: notice.parts)
            logger.info("copy revoked", metadata: ["message": "\(notice.message)", "carer": "\(header.recipient)"])
        }
        if header.recipient == gatewayID {
            // Addressed to the bridge itself: invitations (and broker notices, which are only logged).
            switch header.kind {
            case .carerInvite:
                do {
                    let invite = try CarerInvite.decode(json: delivery.body)
                    guard invite.issuedBy == header.from else {
                        logger.warning(
                            "invitation refused: issuedBy is not the sender",
                            metadata: [
                                "message": "\(header.id)", "from": "\(header.from)", "issuedBy": "\(invite.issuedBy)",
                            ])
                        return nil
                    }
                    try bridgeStore.storeInvite(invite, message: header.id, receivedAt: now())
                    logger.info("invitation stored", metadata: ["message": "\(header.id)", "carer": "\(invite.carer)", "from": "\(header.from)"])
                } catch let error as MessageValidationError {
                    logger.warning("invitation unreadable; dropped", metadata: ["message": "\(header.id)", "error": "\(error)"])
                }
            default:
                logger.info("message for the bridge itself", metadata: ["message": "\(header.id)", "kind": "\(header.kind.rawValue)"])
            }
            return nil
        }
        return try bridgeStore.storeDelivery(header, body: delivery.body, now: now())
    }

    /// Tells open pages about a delivery just stored as `seq`.
    public func announce(_ delivery: Delivery, seq: Int64) {
        hub.publish(
            LiveEvent(seq: seq, carer: delivery.header.recipient, patient: delivery.header.patient, header: delivery.header, body: delivery.body))
    }
}

/// Owns the one `CareRelayClient` on one dedicated thread (ZeroMQ sockets stay on the thread
/// that made them). The web side hands it requests through a locked queue and awaits the answer
/// through a continuation; between requests the thread takes deliveries, stores each, and only
/// then confirms it to the broker.
public final class BrokerGateway: BrokerLink, Sendable {
    private enum Request: Sendable {
        case send(SendHeader, [UInt8], CheckedContinuation<Accepted, any Error>)
        case query(String, [String: String], CheckedContinuation<[UInt8], any Error>)

        func fail(_ error: any Error) {
            switch self {
            case .send(_, _, let c): c.resume(throwing: error)
            case .query(_, _, let c): c.resume(throwing: error)
            }
        }
    }

    private struct Queue {
        var requests: [Request] = []
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let finished = DispatchSemaphore(value: 0)
    private let configuration: ClientConfiguration
    private let intake: DeliveryIntake
    private let logger: Logger
    private let pollInterval: Duration

    public init(configuration: ClientConfiguration, intake: DeliveryIntake, logger: Logger, pollInterval: Duration = .milliseconds(50)) {
        var configuration = configuration
        configuration.receive = true
        self.configuration = configuration
        self.intake = intake
        self.logger = logger
        self.pollInterval = pollInterval
        let thread = Thread { [self] in run() }
        thread.name = "carerelay-bridge.gateway"
        thread.start()
    }

    public func stop() {
        let already = queue.withLock { queue in
            let already = queue.stopping
            queue.stopping = true
            return already
        }
        if !already { finished.wait() }
    }

    public func send(_ header: SendHeader, body: [UInt8]) async throws -> Accepted {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.send(header, body, continuation))
        }
    }

    public func query(_ name: String, _ params: [String: String]) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.query(name, params, continuation))
        }
    }

    private func enqueue(_ request: Request) {
        let stopping = queue.withLock { queue in
            if !queue.stopping { queue.requests.append(request) }
            return queue.stopping
        }
        if stopping { request.fail(GatewayError.stopped) }
    }

    private func takeRequests() -> (requests: [Request], stopping: Bool) {
        queue.withLock { queue in
            let requests = queue.requests
            queue.requests.removeAll()
            return (requests, queue.stopping)
        }
    }

    // MARK: The gateway thread

    private func run() {
        var client: CareRelayClient?
        var lastProblem = "connecting"
        var retryAt = ContinuousClock.now
        while true {
            let (requests, stop) = takeRequests()
            if stop {
                for request in requests { request.fail(GatewayError.stopped) }
                client = nil
                finished.signal()
                return
            }
            if client == nil, ContinuousClock.now >= retryAt {
                do {
                    let made = try CareRelayClient(configuration: configuration)
                    client = made
                    logger.info(
                        "connected to the broker",
                        metadata: ["endpoint": "\(made.connectedEndpoint)", "as": "\(made.welcome?.person.rawValue ?? "?")"])
                    if let person = made.welcome?.person, person != intake.gatewayID {
                        logger.error(
                            "the broker knows this key as \(person), not \(intake.gatewayID): invitations addressed to person:\(intake.gatewayID) will not arrive"
                        )
                    }
                } catch {
                    lastProblem = "\(error)"
                    logger.warning("cannot reach the broker; retrying", metadata: ["error": "\(error)"])
                    retryAt = ContinuousClock.now + .seconds(2)
                }
            }
            guard let connected = client else {
                for request in requests { request.fail(GatewayError.notConnected(lastProblem)) }
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            for request in requests {
                switch request {
                case .send(let header, let body, let continuation):
                    do { continuation.resume(returning: try connected.send(header, body: body)) } catch {
                        continuation.resume(throwing: error)
                    }
                case .query(let name, let params, let continuation):
                    do { continuation.resume(returning: try connected.query(name, params)) } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
            do {
                // Drain what is waiting, then go back for requests.
                var delivery = try connected.nextDelivery(timeout: pollInterval)
                while let current = delivery {
                    let seq: Int64?
                    do {
                        seq = try intake.store(current)
                    } catch {
                        // Not stored, so not confirmed. The client drops ids it has handed over
                        // before, so start a fresh connection: the broker redelivers.
                        logger.error(
                            "could not store a delivery; reconnecting so it comes again",
                            metadata: [
                                "message": "\(current.header.id)", "error": "\(error)",
                            ])
                        client = nil
                        break
                    }
                    try connected.confirm([current.header.id], recipient: current.header.recipient)
                    if let seq { intake.announce(current, seq: seq) }
                    delivery = try connected.nextDelivery(timeout: .zero)
                }
            } catch {
                lastProblem = "\(error)"
                logger.warning("broker connection problem; reconnecting", metadata: ["error": "\(error)"])
                client = nil
            }
        }
    }
}
