import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayStore
import CareRelayProtocol
import Foundation
import ZeroMQ

/// A small care system on disk for the soak: a directory of GPs who refer, social workers who
/// receive, and one hostile but authenticated client; the broker's key; a store path. The
/// broker itself runs as a child process so it can be killed.
final class SoakSystem: Sendable {
    let folder: URL
    let storePath: String
    /// Set when the broker runs on PostgreSQL instead of the SQLite file at `storePath`.
    let postgres: PostgresLocation?
    let directoryPath: String
    let keyPath: String
    let brokerKeys: CurveKeyPair
    let keys: [PersonID: CurveKeyPair]
    let executable: URL
    let heartbeat: Int
    static let patient = "9434765919"

    static let people: [(PersonID, Role, TeamID)] = [
        ("gp.1", .gp, "soak.gp"), ("gp.2", .gp, "soak.gp"), ("gp.3", .gp, "soak.gp"), ("gp.4", .gp, "soak.gp"),
        ("gp.hostile", .gp, "soak.gp"),
        ("sw.1", .socialWorker, "soak.social-care"), ("sw.2", .socialWorker, "soak.social-care"),
        ("sw.slow", .socialWorker, "soak.social-care"),
    ]

    /// `storeFolder` puts the store elsewhere (a small tmpfs, to fill the disk).
    init(executable: URL, storeFolder: URL? = nil, postgres: PostgresLocation? = nil, heartbeat: Int = 1_000) throws {
        self.postgres = postgres
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        storePath = (storeFolder ?? folder).appendingPathComponent("store.sqlite").path
        directoryPath = folder.appendingPathComponent("directory.yaml").path
        keyPath = folder.appendingPathComponent("broker.key").path
        self.executable = executable
        self.heartbeat = heartbeat
        brokerKeys = try CurveKeyPair.generate()
        try brokerKeys.save(path: keyPath, comment: "soak broker")
        var keys: [PersonID: CurveKeyPair] = [:]
        var people: [Directory.Person] = []
        for (id, role, team) in Self.people {
            let pair = try CurveKeyPair.generate()
            keys[id] = pair
            people.append(Directory.Person(id: id, name: id.rawValue, roles: [role], teams: [team], key: pair.publicKey))
        }
        self.keys = keys
        let directory = Directory(
            organisations: [], localities: [.init(id: "soak", name: "Soak")],
            teams: [.init(id: "soak.gp", name: "GP", locality: "soak"), .init(id: "soak.social-care", name: "Social care", locality: "soak")],
            people: people)
        try DirectoryFile.encode(directory).write(toFile: directoryPath, atomically: true, encoding: .utf8)
    }

    func removeFiles() { try? FileManager.default.removeItem(at: folder) }

    /// The broker's store, opened beside it (or after it was killed) to check what it holds.
    func openStore() throws -> any MessageStore {
        if let postgres { return try PostgresStore(postgres) }
        return try SQLiteStore(path: storePath)
    }

    func startBroker(port: Int) throws -> BrokerProcess {
        try BrokerProcess(
            executable: executable, directory: directoryPath, store: postgres?.description ?? storePath, keyFile: keyPath,
            endpoint: "tcp://127.0.0.1:\(port)", extraArguments: ["--heartbeat", "\(heartbeat)", "--operations", "off"],
            logLevel: ProcessInfo.processInfo.environment["CARERELAY_SOAK_BROKER_LOG_LEVEL"] ?? "error",
            logFile: ProcessInfo.processInfo.environment["CARERELAY_SOAK_BROKER_LOG"])
    }

    static func endpoint(_ port: Int) -> String { "tcp://127.0.0.1:\(port)" }

    func configuration(_ person: PersonID, endpoint: String, receive: Bool, credit: Int = 32, replyTimeout: Duration = .seconds(2), attempts: Int = 2)
        -> ClientConfiguration
    {
        ClientConfiguration(
            endpoint: endpoint, brokerPublicKey: brokerKeys.publicKey, keys: keys[person] ?? CurveKeyPair(publicKey: "", secretKey: ""),
            receive: receive, credit: credit, replyTimeout: replyTimeout, attempts: attempts, clientName: "carerelay-soak")
    }

    /// A raw DEALER that has said HELLO, for clients that misbehave on purpose.
    func rawConnection(_ person: PersonID, port: Int, context: ZMQContext, receive: Bool, credit: Int = 64) throws -> Socket {
        let socket = try context.makeSocket(.dealer)
        guard let pair = keys[person] else { throw CocoaError(.featureUnsupported) }
        try socket.setCurveServerKey(brokerKeys.publicKey)
        try socket.setCurvePublicKey(pair.publicKey)
        try socket.setCurveSecretKey(pair.secretKey)
        try socket.setLinger(0)
        try socket.setReceiveTimeout(10_000)
        try socket.connect("tcp://127.0.0.1:\(port)")
        let codec = CRPCodec()
        _ = try socket.send(codec.encode(.hello(Hello(receive: receive, credit: credit))))
        guard let reply = try socket.receive(), case .welcome = try codec.decodeBrokerCommand(reply.frames[...]) else {
            throw CocoaError(.fileReadUnknown)
        }
        return socket
    }

    /// A referral from `sender` to `recipient` whose reason names its idempotency key, so the
    /// receiving application can tell which send a delivery came from.
    static func referral(from sender: PersonID, to recipient: PersonID, key: String) -> (SendHeader, [UInt8]) {
        let body = """
            {"authoredOn":"2026-11-23T10:00:00Z","category":"social-care","intent":"order","patientAgreed":true,\
            "performer":{"person":"\(recipient)"},"priority":"routine","reasonText":"soak key \(key)",\
            "requester":{"person":"\(sender)","role":"gp"},"serviceRequested":"Assessment","status":"active","subject":"\(patient)"}
            """
        let header = SendHeader(key: key, kind: .referral, to: [.person(recipient)], patient: try? NHSNumber(validating: patient))
        return (header, Array(body.utf8))
    }

    /// The idempotency key a referral body names, read back by the receiving application.
    static func key(in body: [UInt8]) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let reason = object["reasonText"] as? String, reason.hasPrefix("soak key ")
        else { return nil }
        return String(reason.dropFirst("soak key ".count))
    }
}
