import CareRelayModel
import Foundation
import Yams

/// A site's notification settings, the broker's `--notifications FILE` (docs/operations.md,
/// "Notifications"): the mail relay, the SMS gateway, the teams' webhooks, and what may go
/// by SMS. Secrets are read from files named here, never written in it.
///
/// ```yaml
/// email:
///   host: smtp.council.example
///   port: 587
///   security: starttls          # starttls (default), tls or none
///   username: carerelay
///   passwordFile: /etc/carerelay/smtp-password
///   from: "CareRelay <carerelay@council.example>"
/// sms:
///   baseURL: https://api.notifications.service.gov.uk
///   apiKeyFile: /etc/carerelay/notify-api-key
///   templateID: 0b5d2f1e-...
///   events: [checkin.urgent, break-glass, referral.overdue]
/// webhooks:
///   sunderland-west-intake:
///     url: https://intake.sunderland.example/carerelay
///     secretFile: /etc/carerelay/sunderland-west-webhook
/// bridgeAddress: https://carers.sunderland.example
/// retry: [30s, 2m, 10m, 30m, 2h]   # the wait after each failed attempt; then it has failed
/// lease: 90s                        # default: twice the longest time-out, and 30 s
/// ```
public struct NotificationSettings: Sendable {
    public var site: NotificationSite
    public var transports: [NotificationChannelKind: any Transport]
    public var retry: RetrySchedule
    /// How long a notification being sent is held from other senders: longer than the
    /// channels' time-outs, so only a sender that died leaves one to be sent again.
    public var lease: TimeInterval

    struct File: Decodable {
        struct Email: Decodable {
            var host: String
            var port: Int?
            var security: String?
            var username: String?
            var passwordFile: String?
            var from: String
            var heloName: String?
            var trustRoots: String?
            var timeout: String?
        }
        struct SMS: Decodable {
            var baseURL: String
            var apiKeyFile: String
            var templateID: String
            var events: [NotificationEvent]?
            var trustRoots: String?
            var timeout: String?
        }
        struct Webhook: Decodable {
            var url: String
            var secretFile: String
        }
        var email: Email?
        var sms: SMS?
        var webhooks: [String: Webhook]?
        var bridgeAddress: String?
        var retry: [String]?
        var lease: String?
    }

    public struct Problem: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = "notifications: \(description)" }
    }

    /// Reads the file, and the secrets it names relative to its folder.
    public static func load(path: String) throws -> NotificationSettings {
        let url = URL(fileURLWithPath: path)
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch { throw Problem("cannot read \(path): \(error.localizedDescription)") }
        return try parse(text, relativeTo: url.deletingLastPathComponent())
    }

    public static func parse(_ yaml: String, relativeTo folder: URL) throws -> NotificationSettings {
        let file: File
        do { file = try YAMLDecoder().decode(File.self, from: yaml) } catch let error as DecodingError {
            throw Problem(DecodingErrorText.describe(error))
        } catch { throw Problem("\(error)") }
        func secret(_ path: String, _ what: String) throws -> String {
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : folder.appendingPathComponent(path)
            do {
                return try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch { throw Problem("cannot read the \(what) from \(url.path)") }
        }
        func seconds(_ text: String?) throws -> Double { try text.map(Self.delay) ?? 30 }
        var transports: [NotificationChannelKind: any Transport] = [:]
        var channels = Set<NotificationChannelKind>()
        var smsEvents = NotificationSite.defaultSMSEvents
        if let email = file.email {
            let security: SMTPSettings.Security
            switch email.security?.lowercased() ?? "starttls" {
            case "starttls": security = .startTLS
            case "tls": security = .implicitTLS
            case "none":
                // Mail crosses the network in clear without TLS: only to a relay on this machine.
                guard ["127.0.0.1", "::1", "localhost"].contains(email.host) else {
                    throw Problem("email security none is for a relay on loopback only, not \(email.host): use starttls or tls")
                }
                security = .none
            case let other: throw Problem("email security '\(other)' must be starttls, tls or none")
            }
            let settings = SMTPSettings(
                host: email.host, port: email.port, security: security, username: email.username,
                password: try email.passwordFile.map { try secret($0, "mail relay's password") }, from: email.from,
                heloName: email.heloName ?? "carerelay.localhost", trustRootsPEM: email.trustRoots, timeout: try seconds(email.timeout))
            transports[.email] = SMTPTransport(settings: settings)
            channels.insert(.email)
        }
        if let sms = file.sms {
            let key = try secret(sms.apiKeyFile, "SMS gateway's API key")
            guard NotifyAPIKey(key) != nil else {
                throw Problem("the SMS gateway's API key in \(sms.apiKeyFile) is not a GOV.UK Notify key (name-<service id>-<secret>)")
            }
            let settings = NotifySMSSettings(
                baseURL: sms.baseURL, apiKey: key, templateID: sms.templateID,
                timeout: try seconds(sms.timeout), trustRootsPEM: sms.trustRoots)
            transports[.sms] = NotifySMSTransport(settings: settings)
            channels.insert(.sms)
            if let events = sms.events { smsEvents = Set(events) }
        }
        var hooks: [String: WebhookEndpoint] = [:]
        for (name, hook) in file.webhooks ?? [:] {
            guard PersonID.isWellFormed(name) else { throw Problem("webhook name '\(name)' must be 1-64 of a-z, 0-9, '.', '-', '_'") }
            guard let url = URL(string: hook.url), url.scheme == "https" || url.scheme == "http", url.host != nil else {
                throw Problem("webhook '\(name)': '\(hook.url)' is not an http(s) address")
            }
            hooks[name] = WebhookEndpoint(url: hook.url, secret: try secret(hook.secretFile, "signing secret of webhook '\(name)'"))
        }
        if !hooks.isEmpty {
            transports[.webhook] = WebhookTransport(endpoints: hooks)
            channels.insert(.webhook)
        }
        var retry = RetrySchedule.standard
        if let delays = file.retry {
            retry = RetrySchedule(delays: try delays.map { try Self.delay($0) })
        }
        let site = NotificationSite(channels: channels, smsEvents: smsEvents, webhooks: Set(hooks.keys), bridgeAddress: file.bridgeAddress)
        let timeouts = [file.email?.timeout, file.sms?.timeout].map { try? seconds($0) }.compactMap { $0 }
        let lease = try file.lease.map(Self.delay) ?? 2 * (timeouts.max() ?? 30) + 30
        return NotificationSettings(site: site, transports: transports, retry: retry, lease: lease)
    }

    /// "30s", "2m", "1h" in seconds, read as the directory reads `escalateAfter`.
    static func delay(_ text: String) throws -> TimeInterval {
        guard let seconds = OnCallChain.seconds(text) else { throw Problem("'\(text)' is not a time like 30s, 2m or 1h") }
        return seconds
    }
}
