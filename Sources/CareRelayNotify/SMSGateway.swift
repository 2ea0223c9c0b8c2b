import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Where and how `NotifySMSTransport` reaches GOV.UK Notify (or a gateway with its API).
public struct NotifySMSSettings: Sendable, Equatable, CustomStringConvertible {
    /// `https://api.notifications.service.gov.uk`, or `http://127.0.0.1:PORT` in tests.
    public var baseURL: String
    /// As Notify shows it: `keyname-<service id>-<secret>`, both UUIDs.
    public var apiKey: String
    /// The text message template, with one personalisation field, `((message))`.
    public var templateID: String
    /// The whole call, in seconds.
    public var timeout: Double
    /// A PEM file of CA certificates to trust instead of the system's.
    public var trustRootsPEM: String?

    public init(
        baseURL: String = "https://api.notifications.service.gov.uk", apiKey: String, templateID: String, timeout: Double = 30,
        trustRootsPEM: String? = nil
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.templateID = templateID
        self.timeout = timeout
        self.trustRootsPEM = trustRootsPEM
    }

    /// Settings end up in logs; the key's secret must not.
    public var description: String {
        "NotifySMSSettings(\(baseURL), key: \(NotifyAPIKey(apiKey).map { "\($0.serviceID)-<redacted>" } ?? "<malformed>"), template: \(templateID))"
    }
}

/// A Notify API key taken apart. Its last 36 characters are the secret that signs each call's
/// token; the 36 before the dash before them are the service id, the token's issuer. What
/// precedes is the key's name, which Notify never sees.
public struct NotifyAPIKey: Sendable, Equatable {
    public let serviceID: String
    public let secret: String

    /// Nil unless the key ends in `<uuid>-<uuid>` (after a name and a dash, if it has a name).
    public init?(_ key: String) {
        let characters = Array(key)
        guard characters.count >= 73, characters[characters.count - 37] == "-" else { return nil }
        if characters.count > 73, characters[characters.count - 74] != "-" { return nil }
        let serviceID = String(characters[(characters.count - 73)..<(characters.count - 37)])
        let secret = String(characters[(characters.count - 36)...])
        guard UUID(uuidString: serviceID) != nil, UUID(uuidString: secret) != nil else { return nil }
        self.serviceID = serviceID
        self.secret = secret
    }

    /// The bearer token for one call: a JWT signed HS256 with the secret, naming the service
    /// as issuer and the time of issue. Notify accepts it within 30 seconds of `now`.
    public func token(now: Date = Date()) -> String {
        let header = #"{"typ":"JWT","alg":"HS256"}"#
        let claims = #"{"iss":"\#(serviceID)","iat":\#(Int(now.timeIntervalSince1970))}"#
        let signingInput = Self.base64URL(Array(header.utf8)) + "." + Self.base64URL(Array(claims.utf8))
        let mac = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: SymmetricKey(data: Array(secret.utf8)))
        return signingInput + "." + Self.base64URL(Array(mac))
    }

    /// RFC 7515 §2: base64 with the URL alphabet and no padding.
    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// Sends `.sms` notifications through GOV.UK Notify's `POST /v2/notifications/sms`: the
/// template takes the notification's text as `message`, and the dispatch id goes as
/// `reference`, so an attempt that may have landed can be found in Notify's records.
public struct NotifySMSTransport: Transport {
    public let settings: NotifySMSSettings
    private let group: any EventLoopGroup
    private let logger: Logger

    /// The key is checked at each send (a malformed one refuses every message); check it
    /// with `NotifyAPIKey(_:)` when reading the settings, to hear of it sooner.
    public init(
        settings: NotifySMSSettings, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "carerelay.notify.sms")
    ) {
        self.settings = settings
        self.group = eventLoopGroup
        self.logger = logger
    }

    private struct Request: Encodable {
        var phone_number: String
        var template_id: String
        var personalisation: [String: String]
        var reference: String
    }

    /// Notify's error body: `{"status_code": 400, "errors": [{"error": "...", "message": "..."}]}`.
    private struct ErrorBody: Decodable {
        struct Item: Decodable {
            var error: String?
            var message: String?
        }
        var errors: [Item]?
    }

    public func send(_ dispatch: Dispatch) async throws(DispatchFailure) {
        guard case .sms(let phoneNumber) = dispatch.channel else {
            throw .refused("the SMS transport sends text messages only, not \(dispatch.channel)")
        }
        guard let key = NotifyAPIKey(settings.apiKey) else {
            throw .refused("the Notify API key is not in Notify's form (name-<service id>-<secret>, both UUIDs)")
        }
        let request = Request(
            phone_number: phoneNumber, template_id: settings.templateID, personalisation: ["message": dispatch.text],
            reference: dispatch.id)
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(request))
        } catch {
            throw .refused("could not encode the request: \(error)")
        }
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        let post = HTTPPost(
            url: base + "/v2/notifications/sms",
            headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(key.token())")],
            body: body, timeout: settings.timeout, trustRootsPEM: settings.trustRootsPEM)
        let response = try await post.send(on: group)
        switch HTTPStatusClass(response.status) {
        case .delivered:
            logger.debug("text message accepted", metadata: ["dispatch": "\(dispatch.id)"])
        case .refused:
            throw .refused("Notify answered \(response.status): \(Self.errorMessage(response.body))")
        case .retry:
            throw .retry("Notify answered \(response.status): \(Self.errorMessage(response.body))")
        }
    }

    /// The gateway's own words, `errors[].message` joined, else the start of the body.
    static func errorMessage(_ body: [UInt8]) -> String {
        if let decoded = try? JSONDecoder().decode(ErrorBody.self, from: Data(body)) {
            let messages = (decoded.errors ?? []).compactMap { item in item.message ?? item.error }
            if !messages.isEmpty { return messages.joined(separator: "; ") }
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
        return text.isEmpty ? "(no body)" : text
    }
}
