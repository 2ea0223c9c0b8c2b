import Foundation

/// One notification on its way out: what the store's outbox holds, handed to the transport of
/// its channel. It says that there is something and how urgent it is, never who it is about:
/// the broker writes `subject` and `text` from templates that name no patient.
public struct Dispatch: Sendable, Equatable {
    /// The idempotency key: made once when the notification is stored, and carried by every
    /// attempt (the email's Message-ID, the SMS call's `reference`, the webhook's
    /// `CareRelay-Id`), so a receiver can tell a retry after a crash from a second notice.
    public var id: String
    public var channel: Channel
    /// One line: the email's subject, the webhook's `subject`.
    public var subject: String
    /// Plain text: the email's body, the SMS's message, the webhook's `text`.
    public var text: String
    /// What happened, e.g. `referral.new` (NotificationEvent in CareRelayModel).
    public var event: String
    public var urgent: Bool
    /// Where to open it in CareRelay: a command or an address.
    public var link: String?
    public var createdAt: Date

    public init(id: String, channel: Channel, subject: String, text: String, event: String, urgent: Bool, link: String? = nil, createdAt: Date) {
        self.id = id
        self.channel = channel
        self.subject = subject
        self.text = text
        self.event = event
        self.urgent = urgent
        self.link = link
        self.createdAt = createdAt
    }
}

/// Where a notification goes.
public enum Channel: Sendable, Hashable {
    /// An email address.
    case email(String)
    /// A mobile number as the gateway takes it (`07700900123` or `+447700900123`).
    case sms(String)
    /// A webhook endpoint named in the site's notification settings (a team's own system).
    case webhook(String)
}

/// Why one attempt did not deliver.
public enum DispatchFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// Worth trying again later: the relay or gateway was unreachable, slow, busy or said so
    /// (SMTP 4xx, HTTP 408, 429, 5xx).
    case retry(String)
    /// Trying again would get the same answer (SMTP 5xx, HTTP 4xx, an address the channel
    /// cannot use, a channel the site has not configured).
    case refused(String)

    public var description: String {
        switch self {
        case .retry(let why): "temporary failure: \(why)"
        case .refused(let why): "refused: \(why)"
        }
    }
}

/// Sends one notification on one channel. A transport returns when the far end has taken it
/// (SMTP 250 after DATA, HTTP 2xx) and throws `DispatchFailure` otherwise; it never waits
/// longer than its settings' timeout.
public protocol Transport: Sendable {
    func send(_ dispatch: Dispatch) async throws(DispatchFailure)
}
