import CareRelayBroker
import CareRelayClient
import CareRelayFuzzing
import CareRelayModel
import CareRelayProtocol
import Foundation
import Testing
import ZeroMQ

/// A client that speaks raw frames, to send what no well-behaved client would.
final class RawClient {
    let context: ZMQContext
    let socket: Socket
    let codec = CRPCodec()

    init(system: CareSystem, person: PersonID, endpoint: String? = nil) throws {
        context = try ZMQContext()
        socket = try context.makeSocket(.dealer)
        try socket.setCurveServerKey(system.brokerKeys.publicKey)
        try socket.setCurvePublicKey(system.keys[person]!.publicKey)
        try socket.setCurveSecretKey(system.keys[person]!.secretKey)
        try socket.setReceiveTimeout(5_000)
        try socket.connect(endpoint ?? system.endpoint)
    }

    deinit { socket.close() }

    func send(_ frames: [[UInt8]]) throws { _ = try socket.send(frames) }

    func command(_ frames: [[UInt8]]) throws -> BrokerCommand {
        try send(frames)
        let reply = try #require(try socket.receive(), "no answer from the broker")
        return try codec.decodeBrokerCommand(reply.frames[...])
    }

    func rejection(_ frames: [[UInt8]]) throws -> Rejected? {
        if case .rejected(let r) = try command(frames) { return r }
        return nil
    }

    func hello() throws {
        guard case .welcome = try command(codec.encode(.hello(Hello(receive: false)))) else {
            Issue.record("no WELCOME")
            return
        }
    }
}

func header(_ json: String) -> [UInt8] { Array(json.utf8) }

@Suite struct HostileInputTests {
    /// Each kind of bad input has its own code and reason; the broker answers the next
    /// well-formed request on another connection after each one.
    @Test func everyBadInputGetsItsOwnCodeAndTheBrokerKeepsServing() throws {
        let system = try CareSystem()
        try system.start()
        let bystander = try system.client("nurse.ali", receive: false)
        let raw = try RawClient(system: system, person: "gp.khan")
        let carer = try RawClient(system: system, person: "carer.ellis")
        let sig = CRP.signature
        let referral = try Bodies.referral()
        func send(_ h: String, _ body: [UInt8]) -> [[UInt8]] { [sig, Array("SEND".utf8), header(h), body] }

        // Before HELLO: framing errors are still answered, anything else needs a session.
        let beforeHello: [(String, [[UInt8]], ErrorCode)] = [
            ("one frame", [sig], .malformedMessage),
            ("five frames", [sig, Array("PING".utf8), header("{}"), [], []], .malformedMessage),
            ("wrong signature", [Array("ZMTP".utf8), Array("PING".utf8), header("{}")], .badSignature),
            ("wrong version", [[0x43, 0x52, 0x50, 0x02], Array("PING".utf8), header("{}")], .unsupportedVersion),
            ("unknown command", [sig, Array("FROB".utf8), header("{}")], .unknownCommand),
            ("binary command name", [sig, [0xFF, 0xFE, 0x00], header("{}")], .unknownCommand),
            ("header not JSON", [sig, Array("PING".utf8), header("{nope")], .invalidHeader),
            ("unknown header field", [sig, Array("PING".utf8), header("{\"colour\":\"red\"}")], .invalidHeader),
            ("PING before HELLO", [sig, Array("PING".utf8), header("{}")], .helloRequired),
        ]
        for (name, frames, code) in beforeHello {
            let rejected = try #require(try raw.rejection(frames), "\(name): expected REJECTED")
            #expect(rejected.code == code.rawValue, "\(name): got \(rejected.error): \(rejected.reason)")
            #expect(!rejected.reason.isEmpty)
            try bystander.ping()
        }

        try raw.hello()
        try carer.hello()
        var oversize = try jsonObject(referral)
        oversize["supportingInfo"] = String(repeating: "x", count: 300 * 1024)
        let afterHello: [(String, RawClient, [[UInt8]], ErrorCode)] = [
            (
                "body not JSON", raw,
                send(#"{"key":"k1","kind":"referral","to":["team:west.social-care"],"patient":"9434765919"}"#, Array("{{{".utf8)), .invalidBody
            ),
            (
                "schema violation", raw,
                send(#"{"key":"k2","kind":"referral","to":["team:west.social-care"],"patient":"9434765919"}"#, header(#"{"status":"active"}"#)),
                .schemaViolation
            ),
            (
                "invalid NHS number in header", raw,
                send(#"{"key":"k3","kind":"referral","to":["team:west.social-care"],"patient":"9434765918"}"#, referral), .invalidNHSNumber
            ),
            (
                "invalid NHS number in body", raw,
                send(
                    #"{"key":"k4","kind":"referral","to":["team:west.social-care"],"patient":"9434765919"}"#,
                    try Bodies.json(try jsonObject(referral).merging(["subject": "9434765918"]) { $1 })), .invalidNHSNumber
            ),
            (
                "unknown address", raw, send(#"{"key":"k5","kind":"referral","to":["person:nobody"],"patient":"9434765919"}"#, referral),
                .unknownAddress
            ),
            (
                "unknown address scheme", raw, send(#"{"key":"k6","kind":"referral","to":["fax:0191"],"patient":"9434765919"}"#, referral),
                .invalidHeader
            ),
            (
                "oversize body", raw,
                send(#"{"key":"k7","kind":"referral","to":["team:west.social-care"],"patient":"9434765919"}"#, try Bodies.json(oversize)),
                .messageTooLarge
            ),
            (
                "SEND without body", raw, [sig, Array("SEND".utf8), header(#"{"key":"k8","kind":"referral","to":["team:west.social-care"]}"#)],
                .malformedMessage
            ),
            (
                "role may not send kind", carer, send(#"{"key":"k9","kind":"mdt.agenda","to":["mdt:west.mdt"]}"#, try Bodies.agenda(items: [ellis])),
                .notPermitted
            ),
            (
                "only the broker sends notices", raw,
                send(#"{"key":"k10","kind":"broker.notice","to":["person:coord.patel"],"patient":"9434765919"}"#, header("{}")), .notPermitted
            ),
            ("subscription beyond rights", raw, [sig, Array("SUBSCRIBE".utf8), header(#"{"topic":"referral/east/#"}"#)], .subscriptionDenied),
            (
                "carer may not subscribe", carer, [sig, Array("SUBSCRIBE".utf8), header(#"{"topic":"careplan.share/west/west.social-care"}"#)],
                .subscriptionDenied
            ),
            ("malformed topic", raw, [sig, Array("SUBSCRIBE".utf8), header(#"{"topic":"a/#/b"}"#)], .invalidHeader),
            ("unknown query", raw, [sig, Array("QUERY".utf8), header(#"{"query":"everything"}"#)], .invalidHeader),
            ("track unknown message", raw, [sig, Array("QUERY".utf8), header(#"{"query":"track","params":{"id":"m-none"}}"#)], .unknownMessage),
            (
                "break glass by a carer", carer,
                send(
                    #"{"key":"k11","kind":"carer.checkin","to":["person:coord.patel"],"patient":"9434765919","breakGlass":"I need to know"}"#,
                    try Bodies.checkIn()), .notPermitted
            ),
        ]
        for (name, client, frames, code) in afterHello {
            let rejected = try #require(try client.rejection(frames), "\(name): expected REJECTED")
            #expect(rejected.code == code.rawValue, "\(name): got \(rejected.error): \(rejected.reason)")
            #expect(!rejected.reason.isEmpty)
            try bystander.ping()
        }
        // Nothing was accepted along the way.
        let inbox = try system.client("gp.khan", receive: false).query(InboxQuery())
        #expect(inbox.isEmpty)
    }

    @Test func aKeyNotInTheDirectoryCannotConnect() throws {
        let system = try CareSystem()
        try system.start()
        let stranger = try CurveKeyPair.generate()
        // Let in only to enrol: its HELLO is refused, and the client says so (not left to time out).
        #expect(throws: ClientError.keyRefused(endpoint: system.endpoint)) {
            _ = try CareRelayClient(
                configuration: ClientConfiguration(
                    endpoint: system.endpoint, brokerPublicKey: system.brokerKeys.publicKey, keys: stranger,
                    replyTimeout: .seconds(30), attempts: 1))
        }
        // A client that does not know the broker's real key cannot connect either.
        let impostorBroker = try CurveKeyPair.generate()
        #expect(throws: ClientError.noAnswer(endpoint: system.endpoint, attempts: 1)) {
            _ = try CareRelayClient(
                configuration: ClientConfiguration(
                    endpoint: system.endpoint, brokerPublicKey: impostorBroker.publicKey, keys: system.keys["gp.khan"]!,
                    replyTimeout: .seconds(1), attempts: 1))
        }
        try system.client("gp.khan", receive: false).ping()
    }

    /// Random bytes and random command sequences at full speed: the broker neither crashes
    /// nor stops answering a well-behaved client.
    @Test func randomBytesAndCommandSequencesDoNotStopTheBroker() throws {
        let system = try CareSystem()
        try system.start()
        let raw = try RawClient(system: system, person: "sw.okafor")
        var rng = SplitMix64(seed: 0xCA7E_2E1A)
        let names = ["HELLO", "SEND", "CONFIRM", "CREDIT", "SUBSCRIBE", "UNSUBSCRIBE", "QUERY", "PING", "BYE", "WELCOME", ""]
        let headers = [
            "{}", "{\"receive\":true,\"credit\":5}", "{\"ids\":[\"x\"]}", "{\"credit\":-4}", "{\"topic\":\"*/*/*\"}",
            "{\"query\":\"status\"}", "{\"key\":\"a\",\"kind\":\"referral\",\"to\":[\"team:west.social-care\"]}",
            "[]", "null", "{\"req\":1}", "\u{0}\u{1}",
        ]
        let rounds = 3_000
        for round in 0..<rounds {
            var frames: [[UInt8]] = []
            if round % 2 == 0 {
                for _ in 0..<Int.random(in: 0...5, using: &rng) {
                    frames.append((0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
                }
            } else {
                frames = [CRP.signature, Array(names.randomElement(using: &rng)!.utf8), Array(headers.randomElement(using: &rng)!.utf8)]
                if Bool.random(using: &rng) { frames.append(Array(headers.randomElement(using: &rng)!.utf8)) }
            }
            if frames.isEmpty { frames = [[]] }
            try raw.send(frames)
            // Read whatever came back so the broker never has to drop replies for us.
            while (try? raw.socket.receive(dontWait: true)) != nil {}
        }
        let gp = try system.client("gp.khan", receive: false)
        try gp.ping()
        let accepted = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral())
        #expect(!accepted.id.isEmpty)
    }
}

/// Hands a raw client to the hostile thread; it is used there alone.
final class Hostile: @unchecked Sendable {
    let client: RawClient
    var sent = 0
    init(_ client: RawClient) { self.client = client }
}

extension HostileInputTests {
    /// A hostile but authenticated client fires mutated valid commands (the fuzzer's corpus)
    /// as fast as it can while Dr Khan refers to Daniel Lee: every referral is accepted and
    /// arrives once. Bounded by counts, not time.
    @Test func wellBehavedReferralsFlowBesideAHostileClientAtFullSpeed() throws {
        let system = try CareSystem()
        try system.start()
        let hostile = Hostile(try RawClient(system: system, person: "vsb.green"))
        try hostile.client.hello()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let frameSeeds = Corpus.seeds(examples: Bodies.examples).filter {
                if case .frames = FuzzInput.target(of: $0) { true } else { false }
            }
            var mutator = Mutator(seed: 0xBAD_C0DE, seeds: frameSeeds)
            while hostile.sent < 5_000 {
                guard case .frames(let frames) = FuzzInput.target(of: mutator.next()), !frames.isEmpty else { continue }
                if (try? hostile.client.socket.send(frames, dontWait: true)) == true { hostile.sent += 1 }
                while (try? hostile.client.socket.receive(dontWait: true)) ?? nil != nil {}
            }
            done.signal()
        }
        thread.start()
        let gp = try system.client("gp.khan", receive: false)
        let lee = try system.client("sw.lee", receive: true)
        var accepted = Set<String>()
        for index in 0..<50 {
            accepted.insert(
                try gp.send(
                    .referral, to: [.person("sw.lee")], patient: ellis, key: "beside-hostile-\(index)",
                    body: try Bodies.referral()
                ).id)
        }
        var arrived: [String] = []
        while arrived.count < accepted.count, let delivery = try lee.nextDelivery(timeout: .seconds(10)) {
            arrived.append(delivery.header.id)
            try lee.confirm([delivery.header.id])
        }
        done.wait()
        #expect(hostile.sent == 5_000)
        #expect(Set(arrived) == accepted, "every accepted referral arrived")
        #expect(arrived.count == accepted.count, "none twice")
        try gp.ping()
    }
}
