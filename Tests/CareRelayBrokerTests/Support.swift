import CareRelayBroker
import CareRelayClient
import CareRelayModel
import CareRelayOperations
import CareRelayPostgres
import CareRelayStore
import CareRelayProtocol
import Foundation
import Logging
import Prometheus
import Testing
import ZeroMQ

/// A clock tests can move, so deadlines pass without waiting for them.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var offset: TimeInterval = 0
    func now() -> Date {
        lock.lock(); defer { lock.unlock() }
        return Date().addingTimeInterval(offset)
    }
    func advance(by seconds: TimeInterval) {
        lock.lock(); defer { lock.unlock() }
        offset += seconds
    }
}

/// The patient most tests are about: Mrs Ellis, 84, Sunderland West.
let ellis = try! NHSNumber(validating: "9434765919")
/// A second patient, with nobody's consent recorded.
let robson = try! NHSNumber(validating: "4010232137")

/// A small care system: one locality with a GP practice, a social care intake, community
/// nursing, a mental health team, an MDT, a voluntary sector broker, a carer and a bridge; and
/// a second locality with a GP practice and a social care team (people unrelated to the first).
final class CareSystem {
    let folder: URL
    let brokerKeys: CurveKeyPair
    let keys: [PersonID: CurveKeyPair]
    /// Replaceable before `start` (a test may give people email addresses).
    var directory: DirectoryIndex
    /// What the site has set up for notifications; nil plans none.
    var notifications: NotificationSite?
    let clock = TestClock()
    var server: BrokerServer?
    /// Set before `start` to have the broker count into a Prometheus registry.
    var metricsRegistry: PrometheusCollectorRegistry?
    var storePath: String { folder.appendingPathComponent("store.sqlite").path }
    /// Where the broker keeps its messages: SQLite at `storePath`, or, when Scripts/test sets
    /// CARERELAY_TEST_POSTGRES to a server's URL, a new PostgreSQL database of this system's own
    /// (the end-to-end and consent suites run once on each store).
    /// Replaceable before `start` (a test may put a PostgreSQL store behind a proxy).
    var store: any StoreProvider

    static let postgres: PostgresLocation? = ProcessInfo.processInfo.environment["CARERELAY_TEST_POSTGRES"]
        .flatMap { try? PostgresLocation(url: $0) }

    /// A new database on the test server, or nil when the tests run on SQLite only.
    static func newPostgresDatabase() throws -> PostgresLocation? {
        try postgres?.creatingDatabase("carerelay_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
    }

    /// Raw SQL behind the broker's back, on whichever store it uses (proves tampering shows).
    func tamper(_ sql: String) throws {
        if let provider = store as? PostgresStoreProvider {
            let store = try PostgresStore(provider.location)
            defer { store.close() }
            try store.unsafeExecute(sql)
        } else {
            try SQLiteStore.unsafeExecute(sql, onFileAt: storePath)
        }
    }

    static let people: [(PersonID, String, [Role], [TeamID], [PersonID]?)] = [
        ("gp.khan", "Dr Amina Khan", [.gp], ["west.gp"], nil),
        ("sw.okafor", "Grace Okafor", [.socialWorker], ["west.social-care"], nil),
        ("sw.lee", "Daniel Lee", [.socialWorker], ["west.social-care"], nil),
        ("coord.patel", "Priya Patel", [.careCoordinator], ["west.social-care", "west.mdt"], nil),
        ("mdt.jones", "Sam Jones", [.mdtCoordinator], ["west.mdt"], nil),
        ("nurse.ali", "Yusuf Ali", [.communityNurse], ["west.nursing", "west.mdt"], nil),
        ("cpn.brown", "Helen Brown", [.communityNurse], ["west.mental-health"], nil),
        ("vsb.green", "Tom Green", [.voluntarySectorBroker], ["west.voluntary"], nil),
        ("carer.ellis", "Jean Ellis", [.carer], [], nil),
        ("carer.robson", "Alan Robson", [.carer], [], nil),
        ("bridge", "Carer bridge", [.gateway], [], ["carer.ellis"]),
        ("admin.it", "IT service desk", [.administrator], [], nil),
        ("gp.east", "Dr Chris Moss", [.gp], ["east.gp"], nil),
        ("coord.east", "Ruth Hall", [.careCoordinator], ["east.social-care"], nil),
        ("sw.ahmed", "Farah Ahmed", [.socialWorker], ["east.social-care"], nil),
    ]

    init(heartbeat: Int = 5_000, responseTargets: [Priority: TimeInterval] = BrokerConfiguration.defaultResponseTargets) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("carerelay-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        brokerKeys = try CurveKeyPair.generate()
        var keys: [PersonID: CurveKeyPair] = [:]
        for person in Self.people { keys[person.0] = try CurveKeyPair.generate() }
        self.keys = keys
        let directory = Directory(
            organisations: [.init(id: "sunderland-ccg", name: "Sunderland CCG")],
            localities: [.init(id: "west", name: "Sunderland West"), .init(id: "east", name: "Sunderland East")],
            teams: [
                .init(id: "west.gp", name: "Pallion Health Centre", locality: "west"),
                .init(
                    id: "west.social-care", name: "West social care intake", locality: "west", coordinator: "coord.patel",
                    hours: "mon-fri 08:00-18:00", fallback: ["District nurses: 0191 555 0100", "Emergency: 999"]),
                .init(id: "west.nursing", name: "West community nursing", locality: "west"),
                .init(id: "west.mental-health", name: "West community mental health", locality: "west"),
                .init(id: "west.mdt", name: "West Wednesday MDT", kind: .mdt, locality: "west", coordinator: "mdt.jones"),
                .init(id: "west.voluntary", name: "Age UK Sunderland volunteers", locality: "west"),
                .init(id: "east.gp", name: "Hendon Surgery", locality: "east"),
                // East publishes its own targets: an emergency within 30 minutes, routine within 2 days.
                .init(
                    id: "east.social-care", name: "East social care", locality: "east", coordinator: "coord.east",
                    responseTargets: ResponseTargets(emergency: try ResponseTime(parsing: "30m"), routine: try ResponseTime(parsing: "2d")),
                    membersMayDecline: true),
            ],
            people: Self.people.map { p in
                Directory.Person(
                    id: p.0, name: p.1, roles: p.2, organisation: "sunderland-ccg", teams: p.3,
                    key: keys[p.0]!.publicKey, actsFor: p.4)
            })
        self.directory = try DirectoryIndex(directory)
        self.heartbeat = heartbeat
        self.responseTargets = responseTargets
        store =
            try Self.newPostgresDatabase().map(PostgresStoreProvider.init)
            ?? SQLiteStoreProvider(path: folder.appendingPathComponent("store.sqlite").path)
    }

    let heartbeat: Int
    let responseTargets: [Priority: TimeInterval]
    /// A site's consent policy (YAML); nil for the default.
    var consentPolicyYAML: String?

    var configuration: BrokerConfiguration {
        let clock = self.clock
        var configuration = BrokerConfiguration(
            endpoint: "tcp://127.0.0.1:*", storePath: storePath, store: store, publicKey: brokerKeys.publicKey,
            secretKey: brokerKeys.secretKey, maxBodyBytes: 256 * 1024, heartbeatMilliseconds: heartbeat,
            responseTargets: responseTargets, consentPolicyYAML: consentPolicyYAML, clock: { clock.now() })
        if let metricsRegistry { configuration.metricsFactory = OperationsEndpoint.metricsFactory(for: metricsRegistry) }
        configuration.notifications = notifications
        return configuration
    }

    @discardableResult
    func start() throws -> BrokerServer {
        var logger = Logger(label: "carerelay.test-broker")
        logger.logLevel = .warning
        let server = try BrokerServer.start(configuration: configuration, directory: directory, logger: logger)
        self.server = server
        return server
    }

    var endpoint: String { server?.endpoint ?? "" }

    /// Links each member ("person:ID", "team:ID") into the patient's care team as `person`,
    /// who must be allowed to (the first link founds the team: link yourself first).
    @discardableResult
    func linkCareTeam(of patient: NHSNumber, _ members: [String], by person: PersonID = "nurse.ali") throws -> CareRelayClient {
        let linker = try client(person, receive: false)
        for member in members {
            _ = try linker.query("careteam.link", ["patient": patient.digits, "member": member])
        }
        return linker
    }

    func client(
        _ person: PersonID, receive: Bool = true, credit: Int = 64, endpoint: String? = nil,
        keys: CurveKeyPair? = nil, brokerKey: String? = nil, replyTimeout: Duration = .seconds(5)
    ) throws -> CareRelayClient {
        try CareRelayClient(
            configuration: ClientConfiguration(
                endpoint: endpoint ?? self.endpoint, brokerPublicKey: brokerKey ?? brokerKeys.publicKey, keys: keys ?? self.keys[person]!,
                receive: receive, credit: credit, replyTimeout: replyTimeout, attempts: 2, clientName: "test"))
    }

    /// The directory with one person's key replaced, or the person removed (`key: nil`).
    func directory(replacingKeyOf person: PersonID, with key: String?) throws -> DirectoryIndex {
        var changed = directory.directory
        if let key {
            changed.people = changed.people.map { p in
                guard p.id == person else { return p }
                var rotated = p
                rotated.key = key
                return rotated
            }
        } else {
            changed.people.removeAll { $0.id == person }
        }
        return try DirectoryIndex(changed)
    }

    func stop() {
        server?.stop()
        server = nil
    }

    deinit {
        server?.stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

/// Example bodies from Protocols/examples, adjusted to the test's people and patients.
enum Bodies {
    static let examples = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocols/examples")

    static func example(_ kind: String, _ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: examples.appendingPathComponent(kind).appendingPathComponent(name))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func json(_ object: [String: Any]) throws -> [UInt8] {
        [UInt8](try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    static func referral(
        patient: NHSNumber = ellis, from person: PersonID = "gp.khan", role: Role = .gp, team: TeamID = "west.social-care", reason: String? = nil,
        priority: Priority? = nil, patientAgreed: Bool = true
    ) throws -> [UInt8] {
        var body = try example("referral", "valid-gp-to-social-care-intake.json")
        body["patientAgreed"] = patientAgreed
        if let priority { body["priority"] = priority.rawValue }
        body["subject"] = patient.digits
        // The example's details are Mrs Ellis's.
        if patient != ellis { body.removeValue(forKey: "patientDetails") }
        body["requester"] = ["person": person.rawValue, "role": role.rawValue]
        body["performer"] = ["team": team.rawValue]
        body["locality"] = "west"
        if let reason { body["reasonText"] = reason }
        return try json(body)
    }

    static func event(_ event: String, referral: String, by person: PersonID, extra: [String: Any] = [:]) throws -> [UInt8] {
        var body: [String: Any] = ["referral": referral, "event": event, "at": "2026-11-23T10:00:00Z", "by": person.rawValue]
        for (key, value) in extra { body[key] = value }
        return try json(body)
    }

    static func carePlan(patient: NHSNumber = ellis) throws -> [UInt8] {
        var body = try example("careplan.share", "valid-home-plan-with-mental-health-section.json")
        body["patient"] = patient.digits
        body["plan"] = "cp.\(patient.digits).home"
        return try json(body)
    }

    static func agenda(items: [NHSNumber]) throws -> [UInt8] {
        var body = try example("mdt.agenda", "valid-wednesday-mdt-sunderland-west.json")
        let template = try #require((body["items"] as? [[String: Any]])?.first { $0["withheld"] == nil })
        body["items"] = items.map { patient -> [String: Any] in
            var item = template
            item["patient"] = patient.digits
            return item
        }
        body["team"] = "west.mdt"
        return try json(body)
    }

    static func checkIn(patient: NHSNumber = ellis, carer: PersonID = "carer.ellis") throws -> [UInt8] {
        var body = try example("carer.checkin", "valid-night-checkin-urgent.json")
        body["patient"] = patient.digits
        body["carer"] = carer.rawValue
        return try json(body)
    }

    /// A consent directive valid from a day ago for a year.
    static func consent(
        id: String, patient: NHSNumber = ellis, type: String = "permit", actor: [String: String],
        categories: [String]? = nil, purposes: [String]? = nil, by person: PersonID = "nurse.ali", action: String = "grant"
    ) throws -> [UInt8] {
        let formatter = ISO8601DateFormatter()
        var provision: [String: Any] = [
            "type": type,
            "period": [
                "start": formatter.string(from: Date().addingTimeInterval(-86_400)),
                "end": formatter.string(from: Date().addingTimeInterval(365 * 86_400)),
            ],
            "actor": [actor],
        ]
        if let categories { provision["class"] = categories }
        if let purposes { provision["purpose"] = purposes }
        return try json([
            "action": action, "id": id, "status": "active", "scope": "patient-privacy", "patient": patient.digits,
            "dateTime": formatter.string(from: Date()), "performer": ["person": person.rawValue, "role": "community-nurse"],
            "policyRule": "explicit", "provision": provision,
        ])
    }
}

extension CareRelayClient {
    /// Sends with a fresh idempotency key.
    @discardableResult
    func send(
        _ kind: MessageKind, to: [Address], patient: NHSNumber? = nil, priority: Priority? = nil,
        labels: [DataCategory]? = nil, correlation: String? = nil, key: String = UUID().uuidString,
        breakGlass: String? = nil, onBehalfOf: PersonID? = nil, purpose: ConsentPurpose? = nil, body: [UInt8]
    ) throws -> Accepted {
        try send(
            SendHeader(
                key: key, kind: kind, to: to, patient: patient, priority: priority, labels: labels,
                correlation: correlation, breakGlass: breakGlass, onBehalfOf: onBehalfOf, purpose: purpose), body: body)
    }

    /// Waits for the next delivery and confirms it.
    func expectDelivery(within seconds: Int = 10) throws -> Delivery {
        let delivery = try #require(try nextDelivery(timeout: .seconds(seconds)), "no delivery arrived within \(seconds)s")
        try confirm([delivery.header.id], recipient: delivery.header.recipient)
        return delivery
    }
}

func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8]) throws -> T {
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try decoder.decode(T.self, from: Data(bytes))
}

func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}
