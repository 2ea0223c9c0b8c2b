import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayNotify
import CareRelayProtocol
import Crypto
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Notifications sent for real by a broker process: email to an SMTP server on loopback
/// (STARTTLS and AUTH, Scripts/loopback/smtp_server.py), SMS and webhooks to an HTTP server
/// that answers as GOV.UK Notify and records each call (Scripts/loopback/http_recorder.py).
@Suite(.serialized) struct NotificationDeliveryTests {
    static let notifyKey = "carerelay_test-26ba3fbf-1ee6-4cb2-9ad7-7a3a7a6f3a5e-0f5b3c6e-3a5a-4c2e-8a5e-1d2c3b4a5f60"
    static let webhookSecret = "west-intake-signing-secret"

    /// The care system with a co-ordinator's email, a social worker's mobile, the intake's
    /// webhook, and Mrs Ellis's care team linked once the broker runs.
    static func system() throws -> CareSystem {
        let system = try CareSystem()
        var directory = system.directory.directory
        for index in directory.people.indices where directory.people[index].id == "coord.patel" {
            directory.people[index].email = "priya.patel@care.example"
        }
        for index in directory.people.indices where directory.people[index].id == "sw.lee" {
            directory.people[index].phone = "07700 900123"
            directory.people[index].notify = NotificationChoices(email: [], sms: [.checkInUrgent])
        }
        for index in directory.teams.indices where directory.teams[index].id == "west.social-care" {
            directory.teams[index].webhook = "west-intake"
        }
        system.directory = try DirectoryIndex(directory)
        return system
    }

    /// The settings file: email to `smtpPort` (STARTTLS required, AUTH), SMS and the webhook to
    /// `httpPort` when given.
    static func settings(
        in folder: URL, smtpPort: Int, httpPort: Int?, certificates: TestCertificates, smsKey: String = notifyKey, lease: String = "30s",
        timeout: String = "5s"
    ) throws -> String {
        try "s3cret-relay-password".write(to: folder.appendingPathComponent("smtp-password"), atomically: true, encoding: .utf8)
        try smsKey.write(to: folder.appendingPathComponent("notify-key"), atomically: true, encoding: .utf8)
        try webhookSecret.write(to: folder.appendingPathComponent("hook-secret"), atomically: true, encoding: .utf8)
        var yaml = """
            email:
              host: 127.0.0.1
              port: \(smtpPort)
              security: starttls
              username: carerelay
              passwordFile: smtp-password
              from: "CareRelay <carerelay@care.example>"
              trustRoots: \(certificates.caCertificate)
              timeout: \(timeout)
            retry: [1s, 1s]
            lease: \(lease)

            """
        if let httpPort {
            yaml += """
                sms:
                  baseURL: http://127.0.0.1:\(httpPort)
                  apiKeyFile: notify-key
                  templateID: 6c2d1a8e-4b3f-4e2a-9c1d-0a9b8c7d6e5f
                webhooks:
                  west-intake:
                    url: http://127.0.0.1:\(httpPort)/hooks/west-intake
                    secretFile: hook-secret

                """
        }
        let path = folder.appendingPathComponent("notifications.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func smtpServer(in folder: URL, _ certificates: TestCertificates, _ extra: [String] = []) async throws -> LoopbackServer {
        try await LoopbackServer(
            "smtp_server.py",
            [
                "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey, "--require-tls", "--user", "carerelay",
                "--password", "s3cret-relay-password",
            ] + extra, in: folder)
    }

    /// Links Mrs Ellis's care team (the nurse, the intake, Jean) through the running broker.
    static func linkCareTeam(_ system: CareSystem, endpoint: String) throws {
        let nurse = try system.client("nurse.ali", receive: false, endpoint: endpoint)
        for member in ["person:nurse.ali", "team:west.social-care", "person:carer.ellis"] {
            _ = try nurse.query("careteam.link", ["patient": ellis.digits, "member": member])
        }
    }

    static func waitForStatus(_ client: CareRelayClient, _ done: (StoreStatistics) -> Bool) throws -> StoreStatistics {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let store = try client.query(StatusQuery()).store
            if done(store) || ContinuousClock.now > deadline { return store }
            Thread.sleep(forTimeInterval: 0.05)  // polling the broker's own figure, not waiting for time to pass
        }
    }

    /// The emails a mail server received (it also records each session).
    static func messages(_ smtp: LoopbackServer) -> [[String: Any]] {
        smtp.records().filter { $0["kind"] as? String == "message" }
    }

    static let patientWords = ["Margaret", "Ellis", ellis.digits, ellis.formatted, "confused", "Harbour View", "SR4 6TJ"]

    @Test(
        "an urgent check-in reaches the co-ordinator by email over STARTTLS, the social worker by SMS and the team's system by a signed webhook, once each"
    )
    func urgentCheckInEverywhere() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates.get()
        let smtp = try await Self.smtpServer(in: folder, certificates)
        let http = try await LoopbackServer("http_recorder.py", ["--notify-key", Self.notifyKey], in: folder)
        defer {
            smtp.stop()
            http.stop()
        }
        let system = try Self.system()
        let port = try freePort()
        let settings = try Self.settings(in: folder, smtpPort: smtp.port, httpPort: http.port, certificates: certificates)
        let broker = try BrokerProcess(system: system, port: port, extraArguments: ["--notifications", settings])
        defer { _ = broker.terminate() }
        try Self.linkCareTeam(system, endpoint: broker.endpoint)

        let carer = try system.client("carer.ellis", receive: false, endpoint: broker.endpoint)
        let checkIn = try carer.send(.carerCheckIn, to: [.team("west.social-care")], patient: ellis, body: try Bodies.checkIn())

        let email = try await smtp.record { $0["kind"] as? String == "message" && ($0["rcpt_tos"] as? [String]) == ["priya.patel@care.example"] }
        #expect(email["tls"] as? Bool == true)
        #expect(email["user"] as? String == "carerelay")
        let raw = try #require(email["message"] as? String)
        #expect(raw.contains("Subject: A carer check-in marked urgent for West social care intake"))
        #expect(raw.contains("Message-ID: <\(checkIn.id).checkin.urgent.person-coord.patel.email@"))
        #expect(raw.contains("carerelay checkin list --unread --urgency urgent"))
        for word in Self.patientWords { #expect(!raw.contains(word), "the email says '\(word)'") }

        let sms = try await http.record { ($0["path"] as? String) == "/v2/notifications/sms" }
        #expect(sms["jwt_ok"] as? Bool == true)
        let smsBody = try #require(try JSONSerialization.jsonObject(with: Data(((sms["body"] as? String) ?? "").utf8)) as? [String: Any])
        #expect(smsBody["phone_number"] as? String == "+447700900123")
        #expect(smsBody["reference"] as? String == "\(checkIn.id).checkin.urgent.person-sw.lee.sms")
        let text = try #require((smsBody["personalisation"] as? [String: String])?["message"])
        for word in Self.patientWords { #expect(!text.contains(word), "the text says '\(word)'") }

        let hook = try await http.record { ($0["path"] as? String) == "/hooks/west-intake" }
        let headers = try #require(hook["headers"] as? [String: String])
        let body = Data(((hook["body"] as? String) ?? "").utf8)
        let timestamp = try #require(headers.first { $0.key.lowercased() == "carerelay-timestamp" }?.value)
        let signature = try #require(headers.first { $0.key.lowercased() == "carerelay-signature" }?.value)
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data("\(timestamp).".utf8) + body, using: SymmetricKey(data: Data(Self.webhookSecret.utf8)))
        #expect(signature == "v1=" + mac.map { String(format: "%02x", $0) }.joined())
        #expect(headers.first { $0.key.lowercased() == "carerelay-id" }?.value == "\(checkIn.id).checkin.urgent.team-west.social-care.webhook")
        let payload = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        #expect(payload["event"] as? String == "checkin.urgent")
        #expect(payload["urgent"] as? Bool == true)

        let status = try Self.waitForStatus(carer) { $0.notificationsWaiting == 0 }
        #expect(status.notificationsWaiting == 0 && status.notificationsFailed == 0)
        #expect(Self.messages(smtp).count == 1 && http.records().count == 2, "once each")
    }

    @Test("a relay that says 'try later' is tried again; a gateway that refuses the key is recorded as failed, and status says so")
    func retriedThenFailed() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates.get()
        let smtp = try await Self.smtpServer(in: folder, certificates, ["--refuse-first", "1"])
        let http = try await LoopbackServer("http_recorder.py", ["--notify-key", Self.notifyKey], in: folder)
        defer {
            smtp.stop()
            http.stop()
        }
        let system = try Self.system()
        let wrongKey = "carerelay_test-26ba3fbf-1ee6-4cb2-9ad7-7a3a7a6f3a5e-99999999-3a5a-4c2e-8a5e-1d2c3b4a5f60"
        let settings = try Self.settings(in: folder, smtpPort: smtp.port, httpPort: http.port, certificates: certificates, smsKey: wrongKey)
        let broker = try BrokerProcess(system: system, port: try freePort(), extraArguments: ["--notifications", settings])
        defer { _ = broker.terminate() }
        try Self.linkCareTeam(system, endpoint: broker.endpoint)
        let carer = try system.client("carer.ellis", receive: false, endpoint: broker.endpoint)
        _ = try carer.send(.carerCheckIn, to: [.team("west.social-care")], patient: ellis, body: try Bodies.checkIn())

        // The first transaction is answered 451; the retry a second later delivers.
        let email = try await smtp.record { $0["kind"] as? String == "message" && ($0["rcpt_tos"] as? [String]) == ["priya.patel@care.example"] }
        #expect(email["tls"] as? Bool == true)
        let sms = try await http.record { ($0["path"] as? String) == "/v2/notifications/sms" }
        #expect(sms["jwt_ok"] as? Bool == false)
        let status = try Self.waitForStatus(carer) { $0.notificationsFailed == 1 && $0.notificationsWaiting == 0 }
        #expect(status.notificationsFailed == 1, "the SMS, refused 403, is not retried")
        #expect(status.notificationsWaiting == 0)
        #expect(http.records().filter { ($0["path"] as? String) == "/v2/notifications/sms" }.count == 1)
    }

    @Test("a broker killed while sending sends the notification once after it restarts, and never again")
    func onceAfterSIGKILL() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates.get()
        let system = try Self.system()
        let port = try freePort()
        // A relay that takes the connection and never answers: the send is in progress when
        // the broker is killed.
        let silent = try SilentListener()
        let hanging = try Self.settings(in: folder, smtpPort: silent.port, httpPort: nil, certificates: certificates, lease: "2s", timeout: "60s")
        var broker = try BrokerProcess(system: system, port: port, extraArguments: ["--notifications", hanging])
        let gp = try system.client("gp.khan", receive: false, endpoint: broker.endpoint)
        let referral = try gp.send(.referral, to: [.team("west.social-care")], patient: ellis, body: try Bodies.referral(priority: .urgent))
        #expect(silent.waitForConnection(timeout: 20), "the broker began sending")
        // The relay hangs; routing does not wait for it.
        let started = ContinuousClock.now
        _ = try gp.send(.referral, to: [.team("east.social-care")], patient: ellis, body: try Bodies.referral(team: "east.social-care"))
        #expect(ContinuousClock.now - started < .seconds(30), "accepted while the relay still hangs (its time-out is a minute)")
        broker.kill()

        let smtp = try await Self.smtpServer(in: folder, certificates)
        defer { smtp.stop() }
        let working = try Self.settings(in: folder, smtpPort: smtp.port, httpPort: nil, certificates: certificates, lease: "2s")
        broker = try BrokerProcess(system: system, port: port, extraArguments: ["--notifications", working])
        let email = try await smtp.record { $0["kind"] as? String == "message" && ($0["rcpt_tos"] as? [String]) == ["priya.patel@care.example"] }
        let raw = try #require(email["message"] as? String)
        #expect(raw.contains("Message-ID: <\(referral.id).referral.new.person-coord.patel.email@"))
        let client = try system.client("gp.khan", receive: false, endpoint: broker.endpoint)
        // What still waits is the co-ordinator's reminder, due when three quarters of the
        // response time has gone.
        #expect(try Self.waitForStatus(client) { $0.notificationsWaiting == 1 }.notificationsWaiting == 1)
        _ = broker.terminate()

        // Started again: only the reminder waits, so nothing is sent twice.
        broker = try BrokerProcess(system: system, port: port, extraArguments: ["--notifications", working])
        defer { _ = broker.terminate() }
        let again = try system.client("gp.khan", receive: false, endpoint: broker.endpoint)
        let status = try again.query(StatusQuery()).store
        #expect(status.notificationsWaiting == 1 && status.notificationsFailed == 0)
        #expect(Self.messages(smtp).count == 1)
    }
}

/// A TCP port on loopback that accepts connections and never says anything: a relay that
/// has hung.
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let fd: Int32
    private let accepted = DispatchSemaphore(value: 0)
    private var connections: [Int32] = []

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok, listen(fd, 8) == 0 else { throw TestProblem("cannot listen on loopback") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { return }
                connections.append(connection)
                accepted.signal()
            }
        }
    }

    func waitForConnection(timeout: Double) -> Bool { accepted.wait(timeout: .now() + timeout) == .success }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }
}
