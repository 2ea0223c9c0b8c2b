import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix

/// A team's own system that takes notifications: where to POST them and the secret both
/// sides know, with which each request is signed.
public struct WebhookEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var url: String
    public var secret: [UInt8]

    public init(url: String, secret: [UInt8]) {
        self.url = url
        self.secret = secret
    }

    /// The secret as the receiver was given it, e.g. a random string from a file.
    public init(url: String, secret: String) {
        self.init(url: url, secret: Array(secret.utf8))
    }

    /// Settings end up in logs; the secret must not.
    public var description: String { "WebhookEndpoint(\(url), secret: <\(secret.count) bytes>)" }
}

/// Sends `.webhook(name)` notifications as signed JSON POSTs to the endpoint of that name.
///
/// The body is `{"id", "event", "urgent", "subject", "text", "link" (when there is one),
/// "createdAt" (ISO 8601)}`; the headers `CareRelay-Id` (the dispatch id, the same on every
/// retry, for the receiver to drop repeats), `CareRelay-Timestamp` (Unix seconds) and
/// `CareRelay-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Signing the
/// timestamp with the body lets a receiver refuse an old request replayed
/// (`WebhookTransport.verify`).
public struct WebhookTransport: Transport {
    public let endpoints: [String: WebhookEndpoint]
    /// Each call, in seconds.
    public let timeout: Double
    /// A PEM file of CA certificates to trust instead of the system's.
    public let trustRootsPEM: String?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let clock: @Sendable () -> Date

    public init(
        endpoints: [String: WebhookEndpoint], timeout: Double = 30, trustRootsPEM: String? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "carerelay.notify.webhook"), clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.endpoints = endpoints
        self.timeout = timeout
        self.trustRootsPEM = trustRootsPEM
        self.group = eventLoopGroup
        self.logger = logger
        self.clock = clock
    }

    /// The body's fields, in this order.
    private struct Body: Encodable {
        var id: String
        var event: String
        var urgent: Bool
        var subject: String
        var text: String
        var link: String?
        var createdAt: Date
    }

    public func send(_ dispatch: Dispatch) async throws(DispatchFailure) {
        guard case .webhook(let name) = dispatch.channel else {
            throw .refused("the webhook transport sends to webhooks only, not \(dispatch.channel)")
        }
        guard let endpoint = endpoints[name] else { throw .refused("no webhook named '\(name)' in the settings") }
        let body = try Self.body(for: dispatch)
        let timestamp = Int(clock().timeIntervalSince1970)
        let post = HTTPPost(
            url: endpoint.url,
            headers: [
                ("Content-Type", "application/json"),
                ("CareRelay-Id", dispatch.id),
                ("CareRelay-Timestamp", String(timestamp)),
                ("CareRelay-Signature", Self.signature(secret: endpoint.secret, timestamp: timestamp, body: body)),
            ],
            body: body, timeout: timeout, trustRootsPEM: trustRootsPEM)
        let response = try await post.send(on: group)
        let said = String(decoding: response.body.prefix(200), as: UTF8.self)
        switch HTTPStatusClass(response.status) {
        case .delivered:
            logger.debug("webhook delivered", metadata: ["dispatch": "\(dispatch.id)", "webhook": "\(name)"])
        case .refused:
            throw .refused("webhook '\(name)' answered \(response.status)\(said.isEmpty ? "" : ": \(said)")")
        case .retry:
            throw .retry("webhook '\(name)' answered \(response.status)\(said.isEmpty ? "" : ": \(said)")")
        }
    }

    /// The JSON body for a dispatch: no slashes escaped, so a link reads as it is.
    static func body(for dispatch: Dispatch) throws(DispatchFailure) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.withoutEscapingSlashes]
        do {
            return Array(
                try encoder.encode(
                    Body(
                        id: dispatch.id, event: dispatch.event, urgent: dispatch.urgent, subject: dispatch.subject, text: dispatch.text,
                        link: dispatch.link, createdAt: dispatch.createdAt)))
        } catch {
            throw .refused("could not encode the webhook body: \(error)")
        }
    }

    /// The `CareRelay-Signature` value: `v1=` and the lowercase hex HMAC-SHA256, keyed with the
    /// secret, of the timestamp, a dot and the body's bytes exactly as sent.
    public static func signature(secret: [UInt8], timestamp: Int, body: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret))
        return "v1=" + mac.map { byte in String(byte, radix: 16).leftPadded(to: 2) }.joined()
    }

    /// For a receiver: whether `signatureHeader` (one or more comma-separated `v1=<hex>`, as
    /// during a change of secret) signs this timestamp and body with `secret`, and the
    /// timestamp lies within `tolerance` seconds of `now` (an old request replayed fails).
    /// The comparison takes the same time whatever the bytes.
    public static func verify(
        signatureHeader: String, timestampHeader: String, body: [UInt8], secret: [UInt8], now: Date = Date(), tolerance: TimeInterval = 300
    ) -> Bool {
        guard let timestamp = Int(timestampHeader), abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let signed = Array("\(timestamp).".utf8) + body
        let key = SymmetricKey(data: secret)
        return signatureHeader.split(separator: ",").contains { part in
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("v1="), let mac = Self.bytes(hex: trimmed.dropFirst(3)) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: key)
        }
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
