import Crypto
import Foundation
import CareRelayHarness
import Testing

@testable import CareRelayNotify

/// `WebhookTransport` against Scripts/loopback/http_recorder.py's `/hooks/NAME`.
@Suite(.serialized) struct WebhookTests {
    static let secret = "whsec-west-intake-\(UUID().uuidString)"

    static func dispatch(to name: String = "west-intake", link: String? = "https://carers.council.example/referrals") -> Dispatch {
        Dispatch(
            id: "dispatch-\(UUID().uuidString)", channel: .webhook(name), subject: "1 new urgent referral for West intake",
            text: "There is 1 new urgent referral.", event: "referral.new", urgent: true, link: link,
            createdAt: Date(timeIntervalSince1970: 1_751_360_700))
    }

    static func transport(_ endpoints: [String: WebhookEndpoint]) -> WebhookTransport {
        WebhookTransport(endpoints: endpoints, timeout: 10)
    }

    static func failure(_ transport: WebhookTransport, _ dispatch: Dispatch) async -> DispatchFailure? {
        do {
            try await transport.send(dispatch)
            return nil
        } catch {
            return error
        }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func aSignedPost() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let receiver = try await LoopbackServer("http_recorder.py", ["--hook-secret", "west-intake=\(Self.secret)"], in: folder)
        defer { receiver.stop() }
        let transport = Self.transport([
            "west-intake": WebhookEndpoint(url: "http://127.0.0.1:\(receiver.port)/hooks/west-intake", secret: Self.secret)
        ])
        let dispatch = Self.dispatch()
        let before = Int(Date().timeIntervalSince1970)
        try await transport.send(dispatch)
        let after = Int(Date().timeIntervalSince1970)

        let record = try await receiver.record { $0["path"] as? String == "/hooks/west-intake" }
        #expect(record["signature_ok"] as? Bool == true, "the receiver's own check")
        #expect(record["status"] as? Int == 200)
        let headers = try #require(record["headers"] as? [String: String])
        let body = try #require(record["body"] as? String)
        #expect(headers["Content-Type"] == "application/json")
        #expect(headers["CareRelay-Id"] == dispatch.id)
        let timestamp = try #require(headers["CareRelay-Timestamp"].flatMap { Int($0) })
        #expect((before...after).contains(timestamp))
        // Recomputed here from the secret, the timestamp and the body as received.
        let mac = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(body)".utf8), using: SymmetricKey(data: Data(Self.secret.utf8)))
        #expect(headers["CareRelay-Signature"] == "v1=" + Self.hex(mac))
        #expect(
            WebhookTransport.verify(
                signatureHeader: headers["CareRelay-Signature"] ?? "", timestampHeader: String(timestamp), body: Array(body.utf8),
                secret: Array(Self.secret.utf8)))

        let fields = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(Set(fields.keys) == ["id", "event", "urgent", "subject", "text", "link", "createdAt"])
        #expect(fields["id"] as? String == dispatch.id)
        #expect(fields["event"] as? String == "referral.new")
        #expect(fields["urgent"] as? Bool == true)
        #expect(fields["subject"] as? String == dispatch.subject)
        #expect(fields["text"] as? String == dispatch.text)
        #expect(fields["link"] as? String == "https://carers.council.example/referrals")
        #expect(fields["createdAt"] as? String == "2025-07-01T09:05:00Z")
    }

    @Test func noLinkNoField() throws {
        let body = try WebhookTransport.body(for: Self.dispatch(link: nil))
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(fields["link"] == nil)
        #expect(fields.count == 6)
    }

    @Test func verifyRejectsTamperingAndOldRequests() {
        let secret = Array("s".utf8)
        let body = Array(#"{"id":"1"}"#.utf8)
        let now = Date()
        let timestamp = Int(now.timeIntervalSince1970)
        let signature = WebhookTransport.signature(secret: secret, timestamp: timestamp, body: body)
        #expect(signature.hasPrefix("v1=") && signature.count == 67 && signature == signature.lowercased())
        #expect(WebhookTransport.verify(signatureHeader: signature, timestampHeader: String(timestamp), body: body, secret: secret, now: now))
        #expect(
            WebhookTransport.verify(
                signatureHeader: "v1=\(String(repeating: "0", count: 64)), \(signature)", timestampHeader: String(timestamp), body: body,
                secret: secret, now: now), "one good signature among several (a change of secret)")
        #expect(!WebhookTransport.verify(signatureHeader: signature, timestampHeader: String(timestamp), body: body + [32], secret: secret, now: now))
        #expect(!WebhookTransport.verify(signatureHeader: signature, timestampHeader: String(timestamp + 1), body: body, secret: secret, now: now))
        #expect(
            !WebhookTransport.verify(signatureHeader: signature, timestampHeader: String(timestamp), body: body, secret: Array("t".utf8), now: now))
        #expect(
            !WebhookTransport.verify(
                signatureHeader: signature, timestampHeader: String(timestamp), body: body, secret: secret, now: now.addingTimeInterval(600)),
            "replayed ten minutes later")
    }

    @Test func aReceiverThatSaysNoIsRefused() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let receiver = try await LoopbackServer("http_recorder.py", ["--hook-secret", "west-intake=\(Self.secret)"], in: folder)
        defer { receiver.stop() }
        let base = "http://127.0.0.1:\(receiver.port)"
        let transport = Self.transport([
            "wrong-secret": WebhookEndpoint(url: "\(base)/hooks/west-intake", secret: "not the secret"),
            "wrong-path": WebhookEndpoint(url: "\(base)/nowhere", secret: Self.secret),
        ])
        for (name, status) in [("wrong-secret", 400), ("wrong-path", 404)] {
            let failure = await Self.failure(transport, Self.dispatch(to: name))
            guard case .refused(let why) = failure else {
                Issue.record("\(name): expected refused, got \(String(describing: failure))")
                continue
            }
            #expect(why.contains("answered \(status)"), "\(why)")
        }
        #expect(receiver.records().map { $0["status"] as? Int } == [400, 404])
    }

    @Test func aBusyReceiverIsARetry() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let receiver = try await LoopbackServer("http_recorder.py", ["--fail-first", "1"], in: folder)
        defer { receiver.stop() }
        let transport = Self.transport([
            "west-intake": WebhookEndpoint(url: "http://127.0.0.1:\(receiver.port)/hooks/west-intake", secret: Self.secret)
        ])
        let dispatch = Self.dispatch()
        let first = await Self.failure(transport, dispatch)
        guard case .retry(let why) = first else {
            Issue.record("expected a retry, got \(String(describing: first))")
            return
        }
        #expect(why.contains("503"))
        try await transport.send(dispatch)
        let ids = receiver.records().compactMap { ($0["headers"] as? [String: String])?["CareRelay-Id"] }
        #expect(ids == [dispatch.id, dispatch.id], "the retry carries the same id")
    }

    @Test func unknownNamesAndOtherChannelsAreRefused() async {
        let transport = Self.transport(["west-intake": WebhookEndpoint(url: "http://127.0.0.1:1/hooks/west-intake", secret: Self.secret)])
        let unknown = await Self.failure(transport, Self.dispatch(to: "east-intake"))
        #expect(unknown == .refused("no webhook named 'east-intake' in the settings"))
        var email = Self.dispatch()
        email.channel = .email("someone@example.org")
        #expect(await Self.failure(transport, email)?.isRefused == true)
        let notAURL = Self.transport(["x": WebhookEndpoint(url: "ftp://example.org/x", secret: "s")])
        #expect(await Self.failure(notAURL, Self.dispatch(to: "x"))?.isRefused == true)
    }

    @Test func nothingListeningIsARetry() async throws {
        let port = try closedPort()
        let transport = Self.transport(["west-intake": WebhookEndpoint(url: "http://127.0.0.1:\(port)/hooks/west-intake", secret: Self.secret)])
        #expect(await Self.failure(transport, Self.dispatch())?.isRetry == true)
    }
}
