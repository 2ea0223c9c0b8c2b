import Foundation

/// Where and how `SMTPTransport` hands email to the site's relay.
public struct SMTPSettings: Sendable, Equatable, CustomStringConvertible {
    /// How the connection is protected. Credentials and message text cross the network, so
    /// TLS is the rule; `.none` exists for loopback tests and development relays only.
    public enum Security: Sendable, Equatable {
        /// Plain connect, then STARTTLS (RFC 3207), which must be offered: a relay that does not
        /// offer it, or an attacker who strips the offer, gets nothing but EHLO.
        case startTLS
        /// TLS from the first byte (RFC 8314, port 465).
        case implicitTLS
        /// No TLS at all. Only for a relay on loopback.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    /// With `password`, log in with AUTH PLAIN (or AUTH LOGIN where PLAIN is not offered).
    /// Never sent before TLS unless `security` is `.none`.
    public var username: String?
    public var password: String?
    /// The envelope sender and the `From:` header.
    public var from: String
    /// The name given in EHLO and the right-hand side of every Message-ID, so a retry of a
    /// notification carries the same Message-ID and the recipient's mail system can drop it.
    public var heloName: String
    /// A PEM file of CA certificates to trust instead of the system's: a private relay's CA,
    /// or the test's throw-away CA. Certificate and host name checks stay on either way.
    public var trustRootsPEM: String?
    /// The whole attempt, from connecting to the reply to the message, in seconds.
    public var timeout: Double

    /// - Parameter port: defaults to 587 for `.startTLS`, 465 for `.implicitTLS` and 25 for `.none`.
    public init(
        host: String, port: Int? = nil, security: Security = .startTLS, username: String? = nil, password: String? = nil,
        from: String, heloName: String = "carerelay.localhost", trustRootsPEM: String? = nil, timeout: Double = 30
    ) {
        self.host = host
        self.security = security
        switch security {
        case .startTLS: self.port = port ?? 587
        case .implicitTLS: self.port = port ?? 465
        case .none: self.port = port ?? 25
        }
        self.username = username
        self.password = password
        self.from = from
        self.heloName = heloName
        self.trustRootsPEM = trustRootsPEM
        self.timeout = timeout
    }

    /// Settings end up in logs; the password must not.
    public var description: String {
        "SMTPSettings(\(host):\(port), \(security), user: \(username ?? "none"), password: \(password == nil ? "none" : "<redacted>"), from: \(from))"
    }
}
