import CareRelayBroker
import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation
import ArgumentParser
import CoreMetrics
import Logging
import ZeroMQ

/// Hands a value to another thread. ZeroMQ sockets may move between threads when the move
/// is ordered by a memory barrier (starting the thread is one); they are never shared.
///
/// `@unchecked Sendable` although `Value` is not: the thread that makes the handoff gives the
/// value up (never touches it again) before it starts the one thread that takes it.
final class Handoff<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// NHS numbers with valid check digits, generated in order from a 9-digit start.
func nhsNumbers(count: Int, from start: Int = 100_000_000) -> [NHSNumber] {
    var result: [NHSNumber] = []
    result.reserveCapacity(count)
    var base = start
    while result.count < count {
        let digits = String(base)
        let weighted = digits.enumerated().reduce(0) { $0 + ($1.element.wholeNumberValue ?? 0) * (10 - $1.offset) }
        let check = (11 - weighted % 11) % 11
        if check != 10, let number = try? NHSNumber(validating: digits + String(check)) { result.append(number) }
        base += 1
    }
    return result
}

/// A broker in this process with a generated directory: a GP, a social worker and an MDT.
/// With a shared store, several brokers (nodes) in this process on one database, and a
/// sending GP and a receiving social worker per node.
final class BenchSystem {
    let folder: URL
    let servers: [BrokerServer]
    var server: BrokerServer { servers[0] }
    /// (sender, recipient, sender's node, recipient's node) for each pair of people.
    let pairs: [(sender: PersonID, recipient: PersonID, senderNode: Int, recipientNode: Int)]
    let brokerKeys: CurveKeyPair
    let keys: [PersonID: CurveKeyPair]
    let patient = nhsNumbers(count: 1)[0]

    init(mdtMembers: Int = 0, store: (any StoreProvider)? = nil, nodes: Int = 1, timers: RecordedTimers? = nil) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        var people: [Directory.Person] = []
        var keys: [PersonID: CurveKeyPair] = [:]
        func person(_ id: PersonID, _ roles: [Role], _ teams: [TeamID]) throws {
            let pair = try CurveKeyPair.generate()
            keys[id] = pair
            people.append(Directory.Person(id: id, name: id.rawValue, roles: roles, teams: teams, key: pair.publicKey))
        }
        try person("gp.bench", [.gp], ["bench.gp"])
        try person("sw.bench", [.socialWorker], ["bench.social-care"])
        // Each further node has a pair of its own, sending to the next node: every message
        // crosses from one broker to another through the shared store.
        var pairs: [(sender: PersonID, recipient: PersonID, senderNode: Int, recipientNode: Int)] = [("gp.bench", "sw.bench", 0, nodes > 1 ? 1 : 0)]
        for node in 1..<max(1, nodes) {
            try person(PersonID("gp.bench.\(node)"), [.gp], ["bench.gp"])
            try person(PersonID("sw.bench.\(node)"), [.socialWorker], ["bench.social-care"])
            pairs.append((PersonID("gp.bench.\(node)"), PersonID("sw.bench.\(node)"), node, (node + 1) % nodes))
        }
        self.pairs = pairs
        try person("chair.bench", [.mdtCoordinator], ["bench.mdt"])
        for index in 0..<mdtMembers { try person(PersonID("member.\(index)"), [.communityNurse], ["bench.mdt"]) }
        let directory = Directory(
            organisations: [], localities: [.init(id: "bench", name: "Bench")],
            teams: [
                .init(id: "bench.gp", name: "GP", locality: "bench"),
                .init(id: "bench.social-care", name: "Social care", locality: "bench"),
                .init(id: "bench.mdt", name: "MDT", kind: .mdt, locality: "bench", coordinator: "chair.bench"),
            ],
            people: people)
        self.keys = keys
        var logger = Logger(label: "carerelay.bench")
        logger.logLevel = .error
        let index = try DirectoryIndex(directory)
        let folder = self.folder
        let brokerKeys = self.brokerKeys
        servers = try (0..<max(1, nodes)).map { _ in
            try BrokerServer.start(
                configuration: BrokerConfiguration(
                    endpoint: "tcp://127.0.0.1:*", storePath: folder.appendingPathComponent("store.sqlite").path, store: store,
                    publicKey: brokerKeys.publicKey, secretKey: brokerKeys.secretKey, maxBodyBytes: 1 << 20,
                    heartbeatMilliseconds: 60_000, batchLimit: 1_024, metricsFactory: timers ?? NOOPMetricsHandler.instance),
                directory: index, logger: logger)
        }
    }

    deinit {
        servers.forEach { $0.stop() }
        try? FileManager.default.removeItem(at: folder)
    }

    /// A raw CRP connection that has said HELLO.
    func connection(_ person: PersonID, receive: Bool, credit: Int = 1_000, node: Int = 0) throws -> Socket {
        guard let pair = keys[person] else { throw CocoaError(.featureUnsupported) }
        return try CRPConnection.open(
            in: try ZMQContext(), keys: pair, brokerKey: brokerKeys.publicKey,
            endpoint: servers[node].endpoint, receive: receive, credit: credit)
    }

    /// A valid referral body padded to about `bytes` bytes.
    func referralBody(bytes: Int) -> [UInt8] {
        ReferralBody.padded(patient: patient, from: "gp.bench", to: "sw.bench", bytes: bytes)
    }

    /// Mrs Bench's care team includes the MDT, and she agreed to be discussed there.
    func prepareAgendaPatient() throws -> [UInt8] {
        let codec = CRPCodec()
        let nurse = try connection("gp.bench", receive: false)
        _ = try nurse.send(codec.encode(.query(CareTeamChange(link: true, patient: patient, member: .team("bench.mdt")).query())))
        _ = try nurse.receive()
        let formatter = ISO8601DateFormatter()
        let consent = """
            {"action":"grant","id":"cd-bench","status":"active","scope":"patient-privacy","patient":"\(patient.digits)",\
            "dateTime":"\(formatter.string(from: Date()))","performer":{"person":"gp.bench","role":"gp"},"policyRule":"explicit",\
            "provision":{"type":"permit","period":{"start":"\(formatter.string(from: Date().addingTimeInterval(-3600)))"},\
            "actor":[{"role":"team","reference":"bench.mdt"}],"purpose":["mdt-discussion"]}}
            """
        _ = try nurse.send(codec.encode(.send(SendHeader(key: "consent-bench", kind: .consent, to: []), body: Array(consent.utf8))))
        _ = try nurse.receive()
        return Array(
            """
            {"meeting":"bench-mdt","team":"bench.mdt","title":"Wednesday MDT","start":"2026-11-25T13:00:00Z","location":"Room 2",\
            "version":1,"attendees":[{"person":"chair.bench","role":"mdt-coordinator"}],\
            "items":[{"patient":"\(patient.digits)","reason":"Falls","interventions":[{"action":"OT visit","by":"chair.bench","result":"rails fitted"}],"owner":"chair.bench"}]}
            """.utf8)
    }
}

/// A raw CRP connection as a client opens one: CURVE with the person's own key, then HELLO.
enum CRPConnection {
    /// Returns once the broker has answered WELCOME, so the person has a live session.
    static func open(
        in context: ZMQContext, keys: CurveKeyPair, brokerKey: String, endpoint: String,
        receive: Bool, credit: Int = 64
    ) throws -> Socket {
        let socket = try dial(in: context, keys: keys, brokerKey: brokerKey, endpoint: endpoint)
        try sendHello(on: socket, receive: receive, credit: credit)
        try awaitWelcome(on: socket)
        return socket
    }

    /// A DEALER connecting (in the background, as libzmq does) with the person's key.
    static func dial(
        in context: ZMQContext, keys: CurveKeyPair, brokerKey: String, endpoint: String,
        timeoutMilliseconds: Int32 = 10_000
    ) throws -> Socket {
        let socket = try context.makeSocket(.dealer)
        try socket.setCurveServerKey(brokerKey)
        try socket.setCurvePublicKey(keys.publicKey)
        try socket.setCurveSecretKey(keys.secretKey)
        try socket.setSendHighWaterMark(0)
        try socket.setReceiveHighWaterMark(0)
        try socket.setReceiveTimeout(timeoutMilliseconds)
        // Closing must not wait for unsent messages: the benchmark closes thousands at once.
        try socket.setLinger(0)
        try socket.connect(endpoint)
        return socket
    }

    /// Queued until the CURVE handshake completes, then sent.
    static func sendHello(on socket: Socket, receive: Bool, credit: Int) throws {
        _ = try socket.send(CRPCodec().encode(.hello(Hello(receive: receive, credit: credit))))
    }

    static func awaitWelcome(on socket: Socket) throws {
        guard let reply = try socket.receive(), case .welcome = try CRPCodec().decodeBrokerCommand(reply.frames[...]) else {
            throw ValidationError("the broker did not answer HELLO with WELCOME")
        }
    }
}

/// Referral bodies as a GP writes them, padded to a chosen size with reason text.
enum ReferralBody {
    static func padded(patient: NHSNumber, from requester: PersonID, to performer: PersonID, bytes: Int) -> [UInt8] {
        let base = """
            {"authoredOn":"2026-11-23T10:00:00Z","category":"social-care","intent":"order","patientAgreed":true,\
            "performer":{"person":"\(performer)"},"priority":"routine","reasonText":"%@",\
            "requester":{"person":"\(requester)","role":"gp"},"serviceRequested":"Assessment","status":"active","subject":"\(patient.digits)"}
            """
        let padding = String(repeating: "x", count: max(1, bytes - base.utf8.count))
        return Array(base.replacingOccurrences(of: "%@", with: padding).utf8)
    }
}
