import CareRelayModel

// The header of each command: a small JSON object in frame 2. Field names and meanings are
// specified in Protocols/CRP.md, section "Commands". Optional `req` fields let a client match
// an answer to its request; the broker echoes them unchanged.

// MARK: Client to broker

public struct Hello: Codable, Sendable, Equatable, StrictlyDecodable {
    /// Whether this connection takes deliveries. Command-line calls that only send or query
    /// say false, so they never take a message meant for the person's open inbox.
    public var receive: Bool
    /// How many deliveries may be unconfirmed at once on this connection.
    public var credit: Int
    /// Free text naming the client software, for logs.
    public var client: String?
    public var req: String?

    public init(receive: Bool, credit: Int = 64, client: String? = nil, req: String? = nil) {
        self.receive = receive
        self.credit = credit
        self.client = client
        self.req = req
    }
    public enum CodingKeys: String, CodingKey, CaseIterable { case receive, credit, client, req }
    public typealias FieldKeys = CodingKeys

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        receive = try c.decode(Bool.self, forKey: .receive)
        credit = try CreditWindow.decode(from: c, forKey: .credit)
        client = try c.decodeIfPresent(String.self, forKey: .client)
        req = try c.decodeIfPresent(String.self, forKey: .req)
    }
}

/// The window of unconfirmed deliveries a connection asks for (HELLO and CREDIT): a whole
/// number from 0 to 10000. JSON can say 1e30, 2.5 or -4; each is refused with
/// `404 invalid-header` and a reason, never clamped silently or left unanswered.
public enum CreditWindow {
    public static let range = 0...10_000

    static func decode<Key: CodingKey>(from c: KeyedDecodingContainer<Key>, forKey key: Key) throws -> Int {
        // Missing: the usual "required field is missing".
        if !c.contains(key) { return try c.decode(Int.self, forKey: key) }
        // An Int first; a number an Int cannot hold (1e30, 2^70, 2.5) is read again as a
        // Double only to say what was wrong with it.
        if let whole = try? c.decode(Int.self, forKey: key) {
            guard range.contains(whole) else {
                throw DecodingError.dataCorruptedError(
                    forKey: key, in: c,
                    debugDescription:
                        "\(whole) is out of range: the window is a whole number of deliveries from \(range.lowerBound) to \(range.upperBound)")
            }
            return whole
        }
        guard let number = try? c.decode(Double.self, forKey: key) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: c,
                debugDescription:
                    "must be a number: a whole number of deliveries from \(range.lowerBound) to \(range.upperBound)")
        }
        let what = number.rounded() == number ? "is out of range" : "is not a whole number"
        throw DecodingError.dataCorruptedError(
            forKey: key, in: c,
            debugDescription:
                "\(number) \(what): the window is a whole number of deliveries from \(range.lowerBound) to \(range.upperBound)")
    }
}

public struct SendHeader: Codable, Sendable, Equatable, StrictlyDecodable {
    /// Client-chosen idempotency key: a resend with the same key returns the first answer.
    public var key: String
    public var kind: MessageKind
    public var to: [Address]
    public var patient: NHSNumber?
    public var priority: Priority?
    /// Sensitivity labels of the message as a whole (sections may carry their own).
    public var labels: [DataCategory]?
    /// The broker message id this message is about (a referral event names its referral).
    public var correlation: String?
    /// A professional's stated reason to override consent ("break glass"). Audited.
    public var breakGlass: String?
    /// Only for a gateway (the carer bridge): the carer it is sending for. The broker checks
    /// that the gateway's directory entry lists that carer.
    public var onBehalfOf: PersonID?
    /// Why the information is shared, for the consent policy; absent: the kind's default
    /// (`ConsentPurpose.default(for:)`, CRP.md section 10.4).
    public var purpose: ConsentPurpose?
    public var req: String?

    public init(
        key: String, kind: MessageKind, to: [Address], patient: NHSNumber? = nil,
        priority: Priority? = nil, labels: [DataCategory]? = nil, correlation: String? = nil,
        breakGlass: String? = nil, onBehalfOf: PersonID? = nil, purpose: ConsentPurpose? = nil, req: String? = nil
    ) {
        self.onBehalfOf = onBehalfOf
        self.key = key
        self.kind = kind
        self.to = to
        self.patient = patient
        self.priority = priority
        self.labels = labels
        self.correlation = correlation
        self.breakGlass = breakGlass
        self.purpose = purpose
        self.req = req
    }
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case key, kind, to, patient, priority, labels, correlation, breakGlass, onBehalfOf, purpose, req
    }
    public typealias FieldKeys = CodingKeys
}

public struct Confirm: Codable, Sendable, Equatable, StrictlyDecodable {
    public var ids: [String]
    /// For a gateway: the carer whose deliveries these are.
    public var recipient: PersonID?
    public init(ids: [String], recipient: PersonID? = nil) {
        self.ids = ids
        self.recipient = recipient
    }
    public enum CodingKeys: String, CodingKey, CaseIterable { case ids, recipient }
    public typealias FieldKeys = CodingKeys
}

public struct Credit: Codable, Sendable, Equatable, StrictlyDecodable {
    public var credit: Int
    public init(credit: Int) { self.credit = credit }
    public enum CodingKeys: String, CodingKey, CaseIterable { case credit }
    public typealias FieldKeys = CodingKeys

    public init(from decoder: any Decoder) throws {
        credit = try CreditWindow.decode(from: try decoder.container(keyedBy: CodingKeys.self), forKey: .credit)
    }
}

public struct SubscriptionRequest: Codable, Sendable, Equatable, StrictlyDecodable {
    public var topic: String
    public var req: String?
    public init(topic: String, req: String? = nil) {
        self.topic = topic
        self.req = req
    }
    public enum CodingKeys: String, CodingKey, CaseIterable { case topic, req }
    public typealias FieldKeys = CodingKeys
}

public struct Query: Codable, Sendable, Equatable, StrictlyDecodable {
    public var query: String
    public var params: [String: String]?
    public var req: String?
    /// The optional body frame (not part of the header): a query that writes a list sends it here.
    public var body: [UInt8]? = nil
    public init(query: String, params: [String: String]? = nil, req: String? = nil, body: [UInt8]? = nil) {
        self.query = query
        self.params = params
        self.req = req
        self.body = body
    }
    public enum CodingKeys: String, CodingKey, CaseIterable { case query, params, req }
    public typealias FieldKeys = CodingKeys
}

public struct Empty: Codable, Sendable, Equatable, StrictlyDecodable {
    public var req: String?
    public init(req: String? = nil) { self.req = req }
    public enum CodingKeys: String, CodingKey, CaseIterable { case req }
    public typealias FieldKeys = CodingKeys
}

// MARK: Broker to client

public struct Welcome: Codable, Sendable, Equatable {
    public var version: Int
    public var person: PersonID
    public var name: String
    public var roles: [Role]
    public var teams: [TeamID]
    /// How often the client must show it is alive (any command, or PING), in milliseconds.
    public var heartbeat: Int
    /// The largest body the broker accepts, in bytes.
    public var maxBody: Int
    public var broker: String
    public var req: String?

    public init(
        version: Int, person: PersonID, name: String, roles: [Role], teams: [TeamID],
        heartbeat: Int, maxBody: Int, broker: String, req: String?
    ) {
        self.version = version
        self.person = person
        self.name = name
        self.roles = roles
        self.teams = teams
        self.heartbeat = heartbeat
        self.maxBody = maxBody
        self.broker = broker
        self.req = req
    }
}

/// What happened for one recipient of an accepted message. The reason never discloses the
/// patient's consent directives: it says only what the sender is entitled to know.
public struct RecipientOutcome: Codable, Sendable, Equatable {
    public enum Decision: String, Codable, Sendable { case deliver, redacted, withheld }
    public var person: PersonID
    public var decision: Decision
    public var reason: String?
    public init(person: PersonID, decision: Decision, reason: String? = nil) {
        self.person = person
        self.decision = decision
        self.reason = reason
    }
}

public struct Accepted: Codable, Sendable, Equatable {
    public var key: String
    public var id: String
    /// True when this answers a resend: nothing new was stored.
    public var duplicate: Bool
    public var recipients: [RecipientOutcome]
    public var req: String?
    public init(key: String, id: String, duplicate: Bool, recipients: [RecipientOutcome], req: String?) {
        self.key = key
        self.id = id
        self.duplicate = duplicate
        self.recipients = recipients
        self.req = req
    }
}

public struct Rejected: Codable, Sendable, Equatable {
    public var code: Int
    public var error: String
    public var reason: String
    /// The command that was refused, when it could be read.
    public var command: String?
    public var key: String?
    public var req: String?
    public init(_ failure: ProtocolError, command: String?, key: String? = nil, req: String? = nil) {
        code = failure.code.rawValue
        error = failure.code.name
        reason = failure.reason
        self.command = command
        self.key = key
        self.req = req
    }
    public var failure: ProtocolError? {
        ErrorCode(rawValue: code).map { ProtocolError($0, reason) }
    }
}

public struct DeliverHeader: Codable, Sendable, Equatable {
    public var id: String
    /// Whom this copy is for: the connected person, or a carer a gateway acts for.
    public var recipient: PersonID
    public var kind: MessageKind
    public var from: PersonID
    public var fromName: String
    public var to: [Address]
    public var patient: NHSNumber?
    public var priority: Priority?
    public var labels: [DataCategory]?
    public var correlation: String?
    /// ISO 8601 time the broker accepted the message.
    public var sentAt: String
    /// Parts removed for this recipient by the consent policy.
    public var redacted: [String]?
    /// True when the sender broke glass to reach this recipient.
    public var override: Bool?
    /// The subscription topic that brought this copy, if any.
    public var topic: String?
    /// 1 on first delivery; higher when redelivered after no confirmation.
    public var attempt: Int

    public init(
        id: String, recipient: PersonID, kind: MessageKind, from: PersonID, fromName: String, to: [Address],
        patient: NHSNumber?, priority: Priority?, labels: [DataCategory]?, correlation: String?,
        sentAt: String, redacted: [String]?, override: Bool?, topic: String?, attempt: Int
    ) {
        self.id = id
        self.recipient = recipient
        self.kind = kind
        self.from = from
        self.fromName = fromName
        self.to = to
        self.patient = patient
        self.priority = priority
        self.labels = labels
        self.correlation = correlation
        self.sentAt = sentAt
        self.redacted = redacted
        self.override = override
        self.topic = topic
        self.attempt = attempt
    }
}

public struct Subscribed: Codable, Sendable, Equatable {
    public var topic: String
    public var req: String?
    public init(topic: String, req: String?) {
        self.topic = topic
        self.req = req
    }
}

public struct ResultHeader: Codable, Sendable, Equatable {
    public var query: String
    public var req: String?
    public init(query: String, req: String?) {
        self.query = query
        self.req = req
    }
}
