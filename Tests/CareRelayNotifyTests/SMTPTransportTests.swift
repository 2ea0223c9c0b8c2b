import Foundation
import CareRelayHarness
import Testing

@testable import CareRelayNotify

/// `SMTPTransport` against Scripts/loopback/smtp_server.py (aiosmtpd) on loopback, with TLS
/// certificates made for the run.
@Suite(.serialized) struct SMTPTransportTests {
    static func dispatch(id: String = "dispatch-\(UUID().uuidString)", to: String = "west-intake@council.example") -> Dispatch {
        Dispatch(
            id: id, channel: .email(to), subject: "1 new urgent referral for West intake",
            text: "There is 1 new urgent referral.\n.Open CareRelay to see it.", event: "referral.new", urgent: true,
            link: "https://carers.council.example/referrals", createdAt: Date())
    }

    static func settings(port: Int, security: SMTPSettings.Security = .startTLS, password: String? = "correct horse", trustRoots: String?)
        -> SMTPSettings
    {
        SMTPSettings(
            host: "127.0.0.1", port: port, security: security, username: password == nil ? nil : "carerelay", password: password,
            from: "CareRelay <carerelay@council.example>", heloName: "broker.council.example", trustRootsPEM: trustRoots, timeout: 10)
    }

    /// Runs the send and returns how it failed, or nil if it delivered.
    static func failure(_ transport: SMTPTransport, _ dispatch: Dispatch) async -> DispatchFailure? {
        do {
            try await transport.send(dispatch)
            return nil
        } catch {
            return error
        }
    }

    static func relay(_ extra: [String], in folder: URL) async throws -> LoopbackServer {
        let certificates = try TestCertificates.get()
        return try await LoopbackServer(
            "smtp_server.py",
            ["--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey, "--user", "carerelay", "--password", "correct horse"]
                + extra, in: folder)
    }

    @Test func startTLSAndAuthDeliver() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay(["--require-tls"], in: folder)
        defer { relay.stop() }
        let dispatch = Self.dispatch()
        let transport = SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: try TestCertificates.get().caCertificate))
        try await transport.send(dispatch)

        let record = try await relay.record { $0["kind"] as? String == "message" }
        #expect(record["tls"] as? Bool == true)
        #expect(record["user"] as? String == "carerelay")
        #expect(record["mail_from"] as? String == "carerelay@council.example")
        #expect(record["rcpt_tos"] as? [String] == ["west-intake@council.example"])
        #expect((record["mail_options"] as? [String])?.contains("BODY=8BITMIME") == true)
        let message = try #require(record["message"] as? String)
        let (head, body) = try Self.split(message)
        #expect(head.contains("Message-ID: <\(dispatch.id)@broker.council.example>"))
        #expect(head.contains("Subject: 1 new urgent referral for West intake"))
        #expect(head.contains("From: \"CareRelay\" <carerelay@council.example>"))
        #expect(head.contains("To: west-intake@council.example"))
        #expect(head.contains("Auto-Submitted: auto-generated"))
        #expect(head.contains("X-CareRelay-Event: referral.new"))
        #expect(head.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(head.contains { $0.hasPrefix("Date: ") })
        // The relay undid the dot-stuffing: the line that starts with a dot arrived as written.
        #expect(body == "There is 1 new urgent referral.\r\n.Open CareRelay to see it.\r\n\r\nhttps://carers.council.example/referrals\r\n")

        let session = try await relay.record { $0["kind"] as? String == "session" }
        let commands = try #require(session["commands"] as? [String])
        #expect(commands == ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"])
    }

    @Test func implicitTLSDelivers() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay(["--implicit-tls"], in: folder)
        defer { relay.stop() }
        let dispatch = Self.dispatch()
        try await SMTPTransport(
            settings: Self.settings(port: relay.port, security: .implicitTLS, trustRoots: try TestCertificates.get().caCertificate)
        )
        .send(dispatch)
        let record = try await relay.record { $0["kind"] as? String == "message" }
        #expect(record["tls"] as? Bool == true)
        #expect(record["user"] as? String == "carerelay")
        #expect((record["message"] as? String)?.contains(dispatch.id) == true)
    }

    @Test func authLoginWhenPlainIsNotOffered() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay(["--no-plain"], in: folder)
        defer { relay.stop() }
        try await SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: try TestCertificates.get().caCertificate)).send(Self.dispatch())
        let session = try await relay.record { $0["kind"] as? String == "session" }
        let attempts = try #require(session["auth_attempts"] as? [[String: Any]])
        #expect(attempts.count == 1)
        #expect(attempts.first?["mechanism"] as? String == "LOGIN")
        #expect(attempts.first?["tls"] as? Bool == true)
        _ = try await relay.record { $0["kind"] as? String == "message" && $0["user"] as? String == "carerelay" }
    }

    @Test func aRelayWithoutStartTLSGetsNoCredentials() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // No certificate: no STARTTLS, and this relay would take AUTH in clear.
        let relay = try await LoopbackServer("smtp_server.py", ["--user", "carerelay", "--password", "correct horse"], in: folder)
        defer { relay.stop() }
        let failure = await Self.failure(SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: nil)), Self.dispatch())
        guard case .retry(let why) = failure else {
            Issue.record("expected a retry failure, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("STARTTLS"))
        let session = try await relay.record { $0["kind"] as? String == "session" }
        #expect(session["commands"] as? [String] == ["EHLO"])
        #expect((session["auth_attempts"] as? [Any])?.isEmpty == true)
        #expect(!relay.records().contains { $0["kind"] as? String == "message" })
    }

    @Test func aWrongPasswordIsRefused() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay([], in: folder)
        defer { relay.stop() }
        let failure = await Self.failure(
            SMTPTransport(settings: Self.settings(port: relay.port, password: "wrong", trustRoots: try TestCertificates.get().caCertificate)),
            Self.dispatch())
        guard case .refused(let why) = failure else {
            Issue.record("expected refused, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("535"), "quotes the relay: \(why)")
        let session = try await relay.record { $0["kind"] as? String == "session" }
        #expect(!(session["commands"] as? [String] ?? []).contains("MAIL"))
    }

    @Test func aTemporaryRefusalThenDelivery() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay(["--refuse-first", "1"], in: folder)
        defer { relay.stop() }
        let transport = SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: try TestCertificates.get().caCertificate))
        let dispatch = Self.dispatch()
        let first = await Self.failure(transport, dispatch)
        guard case .retry(let why) = first else {
            Issue.record("expected a retry, got \(String(describing: first))")
            return
        }
        #expect(why.contains("451 4.3.0 try again later"))
        try await transport.send(dispatch)
        let record = try await relay.record { $0["kind"] as? String == "message" }
        #expect((record["message"] as? String)?.contains("Message-ID: <\(dispatch.id)@broker.council.example>") == true)
        #expect(relay.records().filter { $0["kind"] as? String == "message" }.count == 1)
    }

    @Test func nothingListeningIsARetry() async throws {
        let port = try closedPort()
        let failure = await Self.failure(SMTPTransport(settings: Self.settings(port: port, trustRoots: nil)), Self.dispatch())
        guard case .retry(let why) = failure else {
            Issue.record("expected a retry, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("could not connect to 127.0.0.1:\(port)"))
    }

    @Test func aSilentServerTimesOut() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // An HTTP server waits for the client to speak first: no SMTP greeting ever comes.
        let silent = try await LoopbackServer("http_recorder.py", [], in: folder)
        defer { silent.stop() }
        var settings = Self.settings(port: silent.port, trustRoots: nil)
        settings.timeout = 0.5
        let started = Date()
        let failure = await Self.failure(SMTPTransport(settings: settings), Self.dispatch())
        guard case .retry(let why) = failure else {
            Issue.record("expected a retry, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("timed out") && why.contains("greeting"), "\(why)")
        #expect(Date().timeIntervalSince(started) < 5)
    }

    @Test func aCertificateTheTrustRootsDoNotCoverFails() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let relay = try await Self.relay([], in: folder)
        defer { relay.stop() }
        let certificates = try TestCertificates.get()
        for roots in [certificates.otherCACertificate, nil] {
            // Another CA's roots, then the system's: neither signed the relay's certificate.
            let failure = await Self.failure(SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: roots)), Self.dispatch())
            guard case .retry(let why) = failure else {
                Issue.record("expected a failure, got \(String(describing: failure))")
                continue
            }
            #expect(why.contains("TLS"), "\(why)")
        }
        // Both sessions got as far as STARTTLS and no further: no AUTH, no message.
        let deadline = Date().addingTimeInterval(10)
        while relay.records().filter({ $0["kind"] as? String == "session" }).count < 2, Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let sessions = relay.records().filter { $0["kind"] as? String == "session" }
        #expect(sessions.count == 2)
        for session in sessions {
            #expect(session["commands"] as? [String] == ["EHLO", "STARTTLS"])
        }
    }

    @Test func aCertificateForAnotherNameFails() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates.get()
        // Signed by the trusted CA, but for relay.elsewhere.example, not 127.0.0.1.
        let relay = try await LoopbackServer(
            "smtp_server.py",
            [
                "--tls-cert", certificates.wrongNameCertificate, "--tls-key", certificates.wrongNameKey, "--user", "carerelay", "--password",
                "correct horse",
            ],
            in: folder)
        defer { relay.stop() }
        let failure = await Self.failure(
            SMTPTransport(settings: Self.settings(port: relay.port, trustRoots: certificates.caCertificate)), Self.dispatch())
        guard case .retry(let why) = failure else {
            Issue.record("expected a failure, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("TLS"), "\(why)")
        let session = try await relay.record { $0["kind"] as? String == "session" }
        #expect(session["commands"] as? [String] == ["EHLO", "STARTTLS"])
    }

    @Test func onlyEmail() async {
        var dispatch = Self.dispatch()
        dispatch.channel = .sms("07700900123")
        #expect(await Self.failure(SMTPTransport(settings: Self.settings(port: 1, trustRoots: nil)), dispatch)?.isRefused == true)
        let bad = Self.dispatch(to: "someone@example.org>\r\nRCPT TO:<other@example.org")
        #expect(await Self.failure(SMTPTransport(settings: Self.settings(port: 1, trustRoots: nil)), bad)?.isRefused == true)
    }

    /// The header lines and the body of a received message.
    static func split(_ message: String) throws -> (head: [String], body: String) {
        let range = try #require(message.range(of: "\r\n\r\n"))
        return (message[..<range.lowerBound].components(separatedBy: "\r\n"), String(message[range.upperBound...]))
    }
}

extension DispatchFailure {
    var isRefused: Bool {
        if case .refused = self { true } else { false }
    }
    var isRetry: Bool {
        if case .retry = self { true } else { false }
    }
}
