import CareRelayModel
import CareRelayProtocol
import Foundation
import ZeroMQ

/// How to reach a broker and who we are.
public struct ClientConfiguration: Sendable {
    /// The brokers to try, in order: the first that answers serves this client, and when it
    /// stops answering the client moves on to the next (brokers sharing one store).
    public var endpoints: [String]
    /// The first endpoint, or all of them comma-separated when there are several.
    public var endpoint: String { endpoints.joined(separator: ",") }
    public var brokerPublicKey: String
    public var keys: CurveKeyPair
    /// Whether this connection takes deliveries (an inbox or watch window) or only sends and asks.
    public var receive: Bool
    /// How many deliveries may be unconfirmed at once.
    public var credit: Int
    /// How long to wait for an answer before reconnecting and asking again.
    public var replyTimeout: Duration
    /// How many times to ask before giving up.
    public var attempts: Int
    public var clientName: String
    /// Set only against a broker in insecure development mode (loopback, no CURVE): the
    /// person to connect as, sent as the ZeroMQ PLAIN username. `nil` means CURVE with `keys`.
    public var insecureDevelopmentPerson: PersonID?
    /// False for a key not yet in the directory, which may only enrol: no HELLO is said.
    public var sayHello = true

    public init(
        endpoint: String, brokerPublicKey: String, keys: CurveKeyPair, receive: Bool = false, credit: Int = 64,
        replyTimeout: Duration = .seconds(5), attempts: Int = 3, clientName: String = "carerelay-client"
    ) {
        // "tcp://a:5570,tcp://b:5570" names several brokers; ZeroMQ endpoints have no commas.
        endpoints = endpoint.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if endpoints.isEmpty { endpoints = [endpoint] }
        self.brokerPublicKey = brokerPublicKey
        self.keys = keys
        self.receive = receive
        self.credit = credit
        self.replyTimeout = replyTimeout
        self.attempts = attempts
        self.clientName = clientName
    }

    /// A connection to a broker in insecure development mode, as `person`. No encryption and
    /// no proof of identity: for a developer's own machine only.
    public static func insecureDevelopment(
        endpoint: String, person: PersonID, receive: Bool = false, credit: Int = 64,
        replyTimeout: Duration = .seconds(5), attempts: Int = 3, clientName: String = "carerelay-client"
    ) -> ClientConfiguration {
        var configuration = ClientConfiguration(
            endpoint: endpoint, brokerPublicKey: "", keys: CurveKeyPair(publicKey: "", secretKey: ""), receive: receive,
            credit: credit, replyTimeout: replyTimeout, attempts: attempts, clientName: clientName)
        configuration.insecureDevelopmentPerson = person
        return configuration
    }
}

public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// The broker refused, with its code and reason.
    case rejected(ProtocolError)
    /// No answer after every attempt: the broker is down or unreachable, or the broker key
    /// we hold is not the broker's.
    case noAnswer(endpoint: String, attempts: Int)
    /// The broker completed the handshake far enough to refuse our key: it is not in the
    /// directory (never added, revoked, or rotated).
    case keyRefused(endpoint: String)
    case transport(String)
    case unexpectedAnswer(String)

    public var description: String {
        switch self {
        case .rejected(let failure): "refused by the broker (\(failure.code)): \(failure.reason)"
        case .noAnswer(let endpoint, let attempts):
            "no answer from \(endpoint) after \(attempts) attempts: the broker may be down, or it does not know your key (check the endpoint, the broker's public key, and that your public key is in the directory)"
        case .keyRefused(let endpoint):
            "the broker at \(endpoint) refused your key: it is not in the directory (never enrolled, revoked, or replaced by a new one)"
        case .transport(let why): "connection problem: \(why)"
        case .unexpectedAnswer(let what): "unexpected answer from the broker: \(what)"
        }
    }
}

/// A message delivered to us.
public struct Delivery: Sendable, Equatable {
    public var header: DeliverHeader
    public var body: [UInt8]
}

/// A connection to a CareRelay broker. Not thread-safe (ZeroMQ sockets are not): use it from
/// one thread. Requests are synchronous; deliveries that arrive meanwhile are kept for
/// `nextDelivery`. Deliveries are handed to the application once each: a redelivery of a
/// message already handed over is confirmed again and dropped.
public final class CareRelayClient {
    public let configuration: ClientConfiguration
    private let context: ZMQContext
    private var socket: Socket?
    /// Which of `configuration.endpoints` this client is connected to.
    private var current = 0
    public var connectedEndpoint: String { configuration.endpoints[current] }
    /// Reads the socket's handshake events: the only way ZeroMQ tells a client that the
    /// broker's ZAP handler refused its key (the broker sends nothing on such a connection).
    private var handshakeEvents: Socket?
    private let codec = CRPCodec(maxBodyBytes: 64 << 20)
    private var pendingDeliveries: [Delivery] = []
    /// Ids (with recipient) already handed to the application.
    private var seen = Set<String>()
    private var requestCounter = 0
    private var lastSent = ContinuousClock.now
    /// When the broker last said anything (a PONG at least every half heartbeat while idle).
    private var lastHeard = ContinuousClock.now
    public private(set) var welcome: Welcome?

    public init(configuration: ClientConfiguration) throws(ClientError) {
        self.configuration = configuration
        do { context = try ZMQContext() } catch { throw .transport("\(error)") }
        try connect()
    }

    deinit {
        if let socket {
            // A polite goodbye lets the broker return anything in flight at once.
            _ = try? socket.send(codec.encode(.bye(Empty())), dontWait: true)
            try? socket.stopMonitor()
            socket.close()
        }
        handshakeEvents?.close()
    }

    // MARK: Connection

    /// Connects to the first broker that answers, starting with the current one (or the one
    /// after it, when the current one has just stopped answering).
    private func connect(movingOn: Bool = false) throws(ClientError) {
        let count = configuration.endpoints.count
        for step in 0..<count {
            let index = (current + (movingOn ? 1 : 0) + step) % count
            do {
                try connect(to: index)
                return
            } catch .noAnswer where count > 1 {
                continue
            } catch .transport where count > 1 {
                continue
            }
        }
        throw .noAnswer(endpoint: configuration.endpoint, attempts: configuration.attempts)
    }

    private func connect(to index: Int) throws(ClientError) {
        current = index
        let endpoint = configuration.endpoints[index]
        try? socket?.stopMonitor()
        socket?.close()
        do {
            let socket = try context.makeSocket(.dealer)
            if let person = configuration.insecureDevelopmentPerson {
                try socket.setPlainUsername(person.rawValue)
                // libzmq refuses an empty password; the broker ignores it anyway.
                try socket.setPlainPassword("insecure-development")
            } else {
                try socket.setCurveServerKey(configuration.brokerPublicKey)
                try socket.setCurvePublicKey(configuration.keys.publicKey)
                try socket.setCurveSecretKey(configuration.keys.secretKey)
            }
            try socket.setHeartbeatInterval(2_000)
            try socket.setHeartbeatTimeout(6_000)
            // Queue nothing for a connection that is not up, so a request is never sent twice
            // through a stale pipe.
            try socket.setImmediate(true)
            handshakeEvents?.close()
            let monitorEndpoint = "inproc://carerelay.client.handshake.\(UUID().uuidString)"
            try socket.monitor(endpoint: monitorEndpoint, events: [.handshakeFailedAuth])
            let events = try context.makeSocket(.pair)
            try events.connect(monitorEndpoint)
            handshakeEvents = events
            try socket.connect(endpoint)
            self.socket = socket
        } catch {
            throw .transport("cannot connect to \(endpoint): \(error)")
        }
        welcome = nil
        lastHeard = .now
        guard configuration.sayHello else { return }
        let answer: BrokerCommand
        do {
            answer = try exchange(
                .hello(Hello(receive: configuration.receive, credit: configuration.credit, client: configuration.clientName, req: nextReq())),
                reconnect: false)
        } catch .rejected(let failure) where failure.code == .notPermitted {
            // A key the directory does not hold is let in only to enrol.
            throw .keyRefused(endpoint: endpoint)
        }
        guard case .welcome(let welcome) = answer else { throw .unexpectedAnswer("expected WELCOME, got \(answer.name)") }
        self.welcome = welcome
    }

    /// Registers `configuration.keys` (new, made on this machine) as the key of the person an
    /// administrator issued `code` for. Only the public half travels.
    public static func enrol(_ configuration: ClientConfiguration, code: String) throws(ClientError) -> Enrolment {
        var configuration = configuration
        configuration.sayHello = false
        let client = try CareRelayClient(configuration: configuration)
        return try client.query(EnrolmentRequest(code: code))
    }

    private func nextReq() -> String {
        requestCounter += 1
        return "r\(requestCounter)"
    }

    // MARK: Requests

    /// Sends a message and waits until the broker has stored it. On a timeout it reconnects
    /// and sends again with the same idempotency key, so a referral is never created twice.
    public func send(_ header: SendHeader, body: [UInt8]) throws(ClientError) -> Accepted {
        var header = header
        header.req = nextReq()
        let answer = try exchange(.send(header, body: body), reconnect: true)
        guard case .accepted(let accepted) = answer else { throw .unexpectedAnswer("expected ACCEPTED, got \(answer.name)") }
        return accepted
    }

    public func query(_ name: String, _ params: [String: String] = [:]) throws(ClientError) -> [UInt8] {
        try query(Query(query: name, params: params.isEmpty ? nil : params))
    }

    private func query(_ query: Query) throws(ClientError) -> [UInt8] {
        var query = query
        query.req = nextReq()
        let answer = try exchange(.query(query), reconnect: true)
        guard case .result(_, let body) = answer else { throw .unexpectedAnswer("expected RESULT, got \(answer.name)") }
        return body
    }

    public func query<T: Decodable>(_ name: String, _ params: [String: String] = [:], as type: T.Type) throws(ClientError) -> T {
        try Self.decode(T.self, try query(name, params), query: name)
    }

    private static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8], query name: String) throws(ClientError) -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(T.self, from: Data(body)) } catch {
            throw .unexpectedAnswer("result of \(name) could not be read: \(error)")
        }
    }

    /// Asks a query and reads its answer as the type the protocol gives it.
    public func query<Request: QueryRequest>(_ request: Request) throws(ClientError) -> Request.Answer {
        try Self.decode(Request.Answer.self, try query(request.query()), query: request.name.rawValue)
    }

    public func subscribe(_ topic: String) throws(ClientError) {
        let answer = try exchange(.subscribe(SubscriptionRequest(topic: topic, req: nextReq())), reconnect: true)
        guard case .subscribed = answer else { throw .unexpectedAnswer("expected SUBSCRIBED, got \(answer.name)") }
    }

    public func ping() throws(ClientError) {
        _ = try exchange(.ping(Empty(req: nextReq())), reconnect: true)
    }

    /// Confirms deliveries, so the broker will not send them again.
    public func confirm(_ ids: [String], recipient: PersonID? = nil) throws(ClientError) {
        guard let socket, !ids.isEmpty else { return }
        do {
            // Never block: with the broker down (immediate mode, no connection) a blocking send
            // would wait for ever. A confirmation that cannot go now is not lost work: the
            // broker delivers the message again and it is confirmed then, unseen by the caller.
            if try socket.send(codec.encode(.confirm(Confirm(ids: ids, recipient: recipient))), dontWait: true) {
                lastSent = .now
            }
        } catch { throw .transport("\(error)") }
    }

    /// The next delivery not seen before, waiting up to `timeout`. Returns nil on timeout.
    /// The caller confirms it (`confirm`) once it has handled it.
    public func nextDelivery(timeout: Duration) throws(ClientError) -> Delivery? {
        let deadline = ContinuousClock.now + timeout
        while true {
            while !pendingDeliveries.isEmpty {
                let delivery = pendingDeliveries.removeFirst()
                let key = "\(delivery.header.recipient)/\(delivery.header.id)"
                if seen.insert(key).inserted { return delivery }
                // Already handed over: the broker did not see our confirmation; confirm again.
                try confirm([delivery.header.id], recipient: delivery.header.recipient)
            }
            let remaining = deadline - .now
            guard remaining > .zero else { return nil }
            if configuration.endpoints.count > 1, ContinuousClock.now - lastHeard > heartbeatSlice * 4 {
                // Our broker has not answered two heartbeats' worth of PINGs: it is gone.
                // Another broker on the same store has our mailbox, unconfirmed messages too.
                try connect(movingOn: true)
            }
            try keepAlive()
            guard let command = try receive(within: min(remaining, heartbeatSlice)) else { continue }
            if case .rejected(let rejected) = command, let failure = rejected.failure, failure.code == .helloRequired {
                // Our session expired (or the broker restarted): start a new one.
                try connect()
            }
        }
    }

    private var heartbeatSlice: Duration {
        .milliseconds(max(100, (welcome?.heartbeat ?? 5_000) / 2))
    }

    /// Sends a PING when we have been quiet for half a heartbeat, so the broker keeps our session.
    private func keepAlive() throws(ClientError) {
        guard ContinuousClock.now - lastSent > heartbeatSlice, let socket else { return }
        do {
            _ = try socket.send(codec.encode(.ping(Empty())), dontWait: true)
            lastSent = .now
        } catch { throw .transport("\(error)") }
    }

    // MARK: Plumbing

    /// Sends a command and waits for the answer carrying the same `req` tag.
    private func exchange(_ command: ClientCommand, reconnect: Bool) throws(ClientError) -> BrokerCommand {
        let req = command.req
        for attempt in 1...max(1, configuration.attempts) {
            if attempt > 1 && reconnect { try connect(movingOn: true) }
            guard let socket else { throw .transport("not connected") }
            do {
                guard try socket.send(codec.encode(command), dontWait: true) else {
                    // The connection is not up yet (immediate mode): wait for it below.
                    if try waitWritable(socket), try socket.send(codec.encode(command), dontWait: true) {
                        lastSent = .now
                    } else {
                        continue
                    }
                    return try awaitAnswer(req: req, command: command)
                }
                lastSent = .now
            } catch let error as ClientError {
                throw error
            } catch {
                throw .transport("\(error)")
            }
            do {
                return try awaitAnswer(req: req, command: command)
            } catch .noAnswer {
                continue
            } catch .rejected(let failure) where failure.code == .helloRequired && reconnect {
                // The broker restarted or our session expired: say HELLO again and resend.
                continue
            }
        }
        throw .noAnswer(endpoint: configuration.endpoint, attempts: configuration.attempts)
    }

    /// Waits for the connection to come up. Throws `keyRefused` as soon as the broker
    /// refuses our key, instead of waiting out the timeout.
    private func waitWritable(_ socket: Socket) throws -> Bool {
        let deadline = ContinuousClock.now + configuration.replyTimeout
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { return false }
            var items = [PollItem(socket, events: .writable)]
            if let handshakeEvents { items.append(PollItem(handshakeEvents)) }
            let events = try poll(
                items,
                timeoutMilliseconds: max(1, Int(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)))
            if events.first?.contains(.writable) == true { return true }
            try checkHandshake(events)
        }
    }

    /// Throws `keyRefused` if the handshake monitor (polled second in `events`) reports the
    /// broker's ZAP handler refused our key.
    private func checkHandshake(_ events: [PollEvents]) throws {
        guard events.count == 2, events[1].contains(.readable),
            let event = try handshakeEvents?.receiveMonitorEvent(dontWait: true)
        else { return }
        if event.event.contains(.handshakeFailedAuth) { throw ClientError.keyRefused(endpoint: connectedEndpoint) }
    }

    private func awaitAnswer(req: String?, command: ClientCommand) throws(ClientError) -> BrokerCommand {
        let deadline = ContinuousClock.now + configuration.replyTimeout
        while true {
            let remaining = deadline - .now
            guard remaining > .zero else { throw .noAnswer(endpoint: configuration.endpoint, attempts: configuration.attempts) }
            guard let answer = try receive(within: remaining) else { continue }
            switch answer {
            case .rejected(let r) where r.req == req || (req == nil && r.command == command.name):
                throw .rejected(r.failure ?? ProtocolError(.malformedMessage, r.reason))
            case .welcome(let w) where w.req == req: return answer
            case .accepted(let a) where a.req == req: return answer
            case .result(let h, _) where h.req == req: return answer
            case .subscribed(let s) where s.req == req: return answer
            case .unsubscribed(let s) where s.req == req: return answer
            case .pong(let p) where p.req == req: return answer
            default: continue
            }
        }
    }

    /// Receives one command, keeping deliveries aside. Returns nil on timeout.
    private func receive(within timeout: Duration) throws(ClientError) -> BrokerCommand? {
        guard let socket else { throw .transport("not connected") }
        let millis = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        do {
            var items = [PollItem(socket)]
            if let handshakeEvents { items.append(PollItem(handshakeEvents)) }
            let events = try poll(items, timeoutMilliseconds: max(0, millis))
            try checkHandshake(events)
            guard events.first?.contains(.readable) == true, let message = try socket.receive(dontWait: true) else { return nil }
            let command = try codec.decodeBrokerCommand(message.frames[...])
            lastHeard = .now
            if case .deliver(let header, let body) = command {
                pendingDeliveries.append(Delivery(header: header, body: body))
            }
            return command
        } catch let error as ProtocolError {
            throw .unexpectedAnswer(error.description)
        } catch let error as ClientError {
            throw error
        } catch {
            throw .transport("\(error)")
        }
    }
}
