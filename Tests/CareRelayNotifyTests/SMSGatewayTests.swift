import Crypto
import Foundation
import CareRelayHarness
import Testing

@testable import CareRelayNotify

/// `NotifySMSTransport` against Scripts/loopback/http_recorder.py standing in for GOV.UK Notify.
@Suite(.serialized) struct SMSGatewayTests {
    static let serviceID = "26785a09-ab16-4eb0-8407-a37497a57506"
    static let secret = "3d844edf-8d35-48ac-975b-e847b4f122b0"
    static let key = "carerelay_test-\(serviceID)-\(secret)"
    static let templateID = "f33517ff-2a88-4f6e-b855-c550268ce08a"

    static func dispatch(to number: String = "07700900123") -> Dispatch {
        Dispatch(
            id: "dispatch-\(UUID().uuidString)", channel: .sms(number), subject: "Urgent referral",
            text: "CareRelay: 1 new urgent referral for West intake.", event: "referral.new", urgent: true, createdAt: Date())
    }

    static func gateway(_ extra: [String] = [], in folder: URL) async throws -> LoopbackServer {
        try await LoopbackServer("http_recorder.py", ["--notify-key", key, "--template-id", templateID] + extra, in: folder)
    }

    static func transport(port: Int, key: String = key, scheme: String = "http", trustRoots: String? = nil) -> NotifySMSTransport {
        NotifySMSTransport(
            settings: NotifySMSSettings(
                baseURL: "\(scheme)://127.0.0.1:\(port)", apiKey: key, templateID: templateID, timeout: 10, trustRootsPEM: trustRoots))
    }

    static func failure(_ transport: NotifySMSTransport, _ dispatch: Dispatch) async -> DispatchFailure? {
        do {
            try await transport.send(dispatch)
            return nil
        } catch {
            return error
        }
    }

    @Test func theGatewayGetsASignedRequest() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let gateway = try await Self.gateway(in: folder)
        defer { gateway.stop() }
        let dispatch = Self.dispatch()
        try await Self.transport(port: gateway.port).send(dispatch)

        let record = try await gateway.record { $0["path"] as? String == "/v2/notifications/sms" }
        #expect(record["jwt_ok"] as? Bool == true, "\(record["jwt_problem"] ?? "")")
        #expect(record["status"] as? Int == 201)
        let body = try #require(try JSONSerialization.jsonObject(with: Data((record["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(body["phone_number"] as? String == "07700900123")
        #expect(body["template_id"] as? String == Self.templateID)
        #expect(body["reference"] as? String == dispatch.id)
        #expect((body["personalisation"] as? [String: String]) == ["message": dispatch.text])
        let headers = try #require(record["headers"] as? [String: String])
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["Connection"] == "close")
        #expect(headers["Host"] == "127.0.0.1:\(gateway.port)")
    }

    @Test func theTokenIsNotifysJWT() throws {
        let key = try #require(NotifyAPIKey(Self.key))
        #expect(key.serviceID == Self.serviceID)
        #expect(key.secret == Self.secret)
        let now = Date(timeIntervalSince1970: 1_751_360_700)
        let parts = key.token(now: now).split(separator: ".").map(String.init)
        #expect(parts.count == 3)
        func decode(_ text: String) throws -> Data {
            var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
            return try #require(Data(base64Encoded: base64))
        }
        let header = try #require(try JSONSerialization.jsonObject(with: decode(parts[0])) as? [String: String])
        #expect(header == ["typ": "JWT", "alg": "HS256"])
        let claims = try #require(try JSONSerialization.jsonObject(with: decode(parts[1])) as? [String: Any])
        #expect(claims["iss"] as? String == Self.serviceID)
        #expect(claims["iat"] as? Int == 1_751_360_700)
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(parts[0]).\(parts[1])".utf8), using: SymmetricKey(data: Data(Self.secret.utf8)))
        #expect(Data(mac) == (try decode(parts[2])))
    }

    @Test func malformedKeys() {
        #expect(NotifyAPIKey("\(Self.serviceID)-\(Self.secret)")?.serviceID == Self.serviceID, "a key without a name still parses")
        #expect(NotifyAPIKey("name-\(Self.serviceID)\(Self.secret)") == nil)
        #expect(NotifyAPIKey("name-not-a-uuid-at-all-just-some-text-here-\(Self.secret)") == nil)
        #expect(NotifyAPIKey("short") == nil)
        #expect(NotifyAPIKey("name_\(Self.serviceID)-\(Self.secret)") == nil, "the name ends with a dash")
    }

    @Test func aKeyTheGatewayDoesNotKnowIsRefused() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let gateway = try await Self.gateway(in: folder)
        defer { gateway.stop() }
        let otherSecret = UUID().uuidString.lowercased()
        let failure = await Self.failure(Self.transport(port: gateway.port, key: "old-\(Self.serviceID)-\(otherSecret)"), Self.dispatch())
        guard case .refused(let why) = failure else {
            Issue.record("expected refused, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("403") && why.contains("Invalid token: signature"), "quotes Notify: \(why)")
        let record = try await gateway.record { $0["path"] as? String == "/v2/notifications/sms" }
        #expect(record["jwt_ok"] as? Bool == false)
    }

    @Test func aNumberTheGatewayRejectsIsRefused() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let gateway = try await Self.gateway(in: folder)
        defer { gateway.stop() }
        let failure = await Self.failure(Self.transport(port: gateway.port), Self.dispatch(to: "0113 496 0000"))
        guard case .refused(let why) = failure else {
            Issue.record("expected refused, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("400") && why.contains("Not a UK mobile number"), "\(why)")
    }

    @Test func aBusyGatewayIsARetryThenItTakesIt() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let gateway = try await Self.gateway(["--fail-first", "1"], in: folder)
        defer { gateway.stop() }
        let transport = Self.transport(port: gateway.port)
        let dispatch = Self.dispatch()
        let first = await Self.failure(transport, dispatch)
        guard case .retry(let why) = first else {
            Issue.record("expected a retry, got \(String(describing: first))")
            return
        }
        #expect(why.contains("503"))
        try await transport.send(dispatch)
        _ = try await gateway.record { $0["status"] as? Int == 201 }
        #expect(gateway.records().count == 2)
    }

    @Test func overHTTPSWithTheCA() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificates = try TestCertificates.get()
        let gateway = try await Self.gateway(["--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey], in: folder)
        defer { gateway.stop() }
        try await Self.transport(port: gateway.port, scheme: "https", trustRoots: certificates.caCertificate).send(Self.dispatch())
        _ = try await gateway.record { $0["status"] as? Int == 201 && $0["jwt_ok"] as? Bool == true }

        // Another CA's roots: the call fails before a byte of it is sent.
        let failure = await Self.failure(
            Self.transport(port: gateway.port, scheme: "https", trustRoots: certificates.otherCACertificate), Self.dispatch())
        guard case .retry(let why) = failure else {
            Issue.record("expected a failure, got \(String(describing: failure))")
            return
        }
        #expect(why.contains("TLS"), "\(why)")
        #expect(gateway.records().count == 1)
    }

    @Test func nothingListeningIsARetry() async throws {
        let failure = await Self.failure(Self.transport(port: try closedPort()), Self.dispatch())
        #expect(failure?.isRetry == true, "\(String(describing: failure))")
    }

    @Test func onlySMSAndAWellFormedKey() async {
        var dispatch = Self.dispatch()
        dispatch.channel = .email("someone@example.org")
        #expect(await Self.failure(Self.transport(port: 1), dispatch)?.isRefused == true)
        #expect(await Self.failure(Self.transport(port: 1, key: "not-a-key"), Self.dispatch())?.isRefused == true)
    }
}
