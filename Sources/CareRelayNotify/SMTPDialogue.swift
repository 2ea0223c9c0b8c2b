import Foundation

/// The client side of one SMTP session (RFC 5321, 3207, 4954) as a pure state machine: fed the
/// relay's reply lines, it says what to send next. No sockets, clocks or TLS here, so every
/// branch (each 4xx and 5xx, a missing STARTTLS, a wrong password) is tested with canned
/// replies; `SMTPTransport` is the thin NIO shell that drives it.
///
/// One message to one recipient per session: EHLO, STARTTLS and EHLO again, AUTH, MAIL FROM,
/// RCPT TO, DATA, the message, QUIT. No pipelining: a notification is a few hundred bytes.
struct SMTPDialogue: Sendable {
    /// What the shell does after a line.
    enum Action: Sendable, Equatable {
        /// Nothing yet: the line was part of a multi-line reply.
        case wait
        /// Write these bytes (one command with its CRLF, or the dot-stuffed message).
        case send(String)
        /// The relay said yes to STARTTLS: put TLS in place, then call `tlsEstablished()`.
        case startTLS
        /// The relay took the message and answered QUIT: close the connection; delivered.
        case close
        /// The attempt is over and failed: close the connection.
        case fail(DispatchFailure)
    }

    struct Credentials: Sendable, Equatable {
        var username: String
        var password: String
    }

    private enum State: Sendable, Equatable {
        case greeting, ehlo, helo, startTLS, handshake, authResult, authLoginUsername, authLoginPassword
        case mailFrom, rcptTo, data, message, quit, finished, failed
    }

    let security: SMTPSettings.Security
    let heloName: String
    let credentials: Credentials?
    let from: String
    let to: String
    let message: SMTPMessage

    private var state = State.greeting
    private var reader = SMTPReplyReader()
    private(set) var capabilities = SMTPCapabilities()
    /// Whether the session is under TLS: from the start with implicit TLS, after the handshake
    /// with STARTTLS.
    private(set) var isTLS: Bool
    /// True once the relay answered 250 to the message: it has taken responsibility for it,
    /// whatever happens to QUIT.
    private(set) var delivered = false

    init(security: SMTPSettings.Security, heloName: String, credentials: Credentials?, from: String, to: String, message: SMTPMessage) {
        self.security = security
        self.heloName = heloName
        self.credentials = credentials
        self.from = from
        self.to = to
        self.message = message
        self.isTLS = security == .implicitTLS
    }

    init(settings: SMTPSettings, recipient: String, dispatch: Dispatch) {
        var credentials: Credentials?
        if let username = settings.username, let password = settings.password {
            credentials = Credentials(username: username, password: password)
        }
        // The transport has checked the sender; an unusable one would fail at MAIL FROM.
        let sender = SMTPAddress.sender(settings.from) ?? (settings.from, settings.from)
        self.init(
            security: settings.security, heloName: settings.heloName, credentials: credentials, from: sender.address, to: recipient,
            message: SMTPMessage(dispatch: dispatch, from: sender.header, to: recipient, heloName: settings.heloName))
    }

    /// The step the session is at, for failure reasons ("timed out during RCPT TO").
    var step: String {
        switch state {
        case .greeting: "the greeting"
        case .ehlo: "EHLO"
        case .helo: "HELO"
        case .startTLS: "STARTTLS"
        case .handshake: "the TLS handshake"
        case .authResult, .authLoginUsername, .authLoginPassword: "AUTH"
        case .mailFrom: "MAIL FROM"
        case .rcptTo: "RCPT TO"
        case .data: "DATA"
        case .message: "the message"
        case .quit: "QUIT"
        case .finished: "the end of the session"
        case .failed: "a failed session"
        }
    }

    /// One line from the relay, without its CRLF.
    mutating func receive(line: String) -> Action {
        switch state {
        case .finished, .failed: return .wait
        case .handshake: return fail(.retry("the relay sent data after agreeing to STARTTLS, before the TLS handshake"))
        default: break
        }
        let reply: SMTPReply
        do {
            guard let complete = try reader.read(line) else { return .wait }
            reply = complete
        } catch {
            return fail(.retry("the relay sent a malformed reply during \(step): \(error)"))
        }
        return receive(reply)
    }

    /// TLS is in place after the last `.startTLS`: everything written from now on goes through
    /// it, and leaves only once the handshake has checked the relay's certificate (NIOSSL holds
    /// writes back until then). RFC 3207 §4.2: forget what the relay said before TLS, and ask
    /// again.
    mutating func tlsEstablished() -> Action {
        guard state == .handshake else { return fail(.retry("a TLS handshake completed during \(step), unasked")) }
        isTLS = true
        capabilities = SMTPCapabilities()
        state = .ehlo
        return .send("EHLO \(heloName)\r\n")
    }

    /// The connection ended. Nil when the message was already delivered (a relay may drop the
    /// connection instead of answering QUIT), else why the attempt failed.
    mutating func connectionClosed() -> DispatchFailure? {
        if delivered {
            state = .finished
            return nil
        }
        if state == .failed || state == .finished { return nil }
        let why = DispatchFailure.retry("the relay closed the connection during \(step)")
        state = .failed
        return why
    }

    private mutating func receive(_ reply: SMTPReply) -> Action {
        switch state {
        case .greeting:
            guard reply.code == 220 else { return fail(reply) }
            state = .ehlo
            return .send("EHLO \(heloName)\r\n")
        case .ehlo:
            if reply.code == 250 {
                capabilities = SMTPCapabilities(ehlo: reply)
                return afterHello()
            }
            // RFC 5321 §3.2: a relay that does not know EHLO gets HELO, when nothing that needs
            // an extension (STARTTLS, AUTH) is wanted.
            if [500, 502, 504].contains(reply.code), security == .none, credentials == nil {
                state = .helo
                return .send("HELO \(heloName)\r\n")
            }
            return fail(reply)
        case .helo:
            guard reply.code == 250 else { return fail(reply) }
            capabilities = SMTPCapabilities()
            return afterHello()
        case .startTLS:
            guard reply.code == 220 else { return fail(reply) }
            state = .handshake
            return .startTLS
        case .authLoginUsername:
            guard reply.code == 334, let credentials else { return fail(reply) }
            state = .authLoginPassword
            return .send(Self.base64(credentials.username) + "\r\n")
        case .authLoginPassword:
            guard reply.code == 334, let credentials else { return fail(reply) }
            state = .authResult
            return .send(Self.base64(credentials.password) + "\r\n")
        case .authResult:
            guard reply.code == 235 else { return fail(reply) }
            return mailFrom()
        case .mailFrom:
            guard reply.code == 250 else { return fail(reply) }
            state = .rcptTo
            return .send("RCPT TO:<\(to)>\r\n")
        case .rcptTo:
            guard reply.code == 250 || reply.code == 251 else { return fail(reply) }
            state = .data
            return .send("DATA\r\n")
        case .data:
            guard reply.code == 354 else { return fail(reply) }
            state = .message
            let rendered = message.rendered(eightBitAllowed: capabilities.eightBitMIME)
            return .send(SMTPMessage.dotStuffed(rendered.text))
        case .message:
            guard reply.code == 250 else { return fail(reply) }
            delivered = true
            state = .quit
            return .send("QUIT\r\n")
        case .quit:
            state = .finished
            return .close
        case .handshake, .finished, .failed:
            return .wait
        }
    }

    /// After EHLO (or HELO): STARTTLS if it is required and not yet done, then AUTH if there
    /// are credentials, then the mail transaction.
    private mutating func afterHello() -> Action {
        if security == .startTLS, !isTLS {
            // Nothing more is sent in clear: not the credentials, not the addresses. Retry, not
            // refuse: an attacker on the path can strip the offer, and a relay's configuration
            // can be fixed; the notification itself is fine.
            guard capabilities.startTLS else {
                return fail(.retry("the relay does not offer STARTTLS, which these settings require; sent nothing but EHLO"))
            }
            state = .startTLS
            return .send("STARTTLS\r\n")
        }
        guard let credentials else { return mailFrom() }
        guard isTLS || security == .none else {
            return fail(.refused("will not send credentials over a connection without TLS"))
        }
        if capabilities.authMechanisms.contains("PLAIN") {
            state = .authResult
            // RFC 4616: authorization identity (empty), NUL, user, NUL, password.
            let response = Data([0] + Array(credentials.username.utf8) + [0] + Array(credentials.password.utf8))
            return .send("AUTH PLAIN \(response.base64EncodedString())\r\n")
        }
        if capabilities.authMechanisms.contains("LOGIN") {
            state = .authLoginUsername
            return .send("AUTH LOGIN\r\n")
        }
        let offered = capabilities.authMechanisms.sorted().joined(separator: " ")
        return fail(.refused("the relay offers no AUTH PLAIN or LOGIN (it offers: \(offered.isEmpty ? "none" : offered))"))
    }

    private mutating func mailFrom() -> Action {
        // Addresses are checked by the transport; here only what the relay must support.
        let needsUTF8 = !(from + to).unicodeScalars.allSatisfy(\.isASCII)
        if needsUTF8, !capabilities.smtpUTF8 {
            return fail(.refused("the address needs SMTPUTF8, which the relay does not offer"))
        }
        let eightBit = message.rendered(eightBitAllowed: capabilities.eightBitMIME).eightBit
        state = .mailFrom
        return .send("MAIL FROM:<\(from)>\(eightBit ? " BODY=8BITMIME" : "")\(needsUTF8 ? " SMTPUTF8" : "")\r\n")
    }

    /// 4xx: the relay asks to try later; 5xx: it will not take this; anything else out of
    /// place is a confused relay, worth another try.
    private mutating func fail(_ reply: SMTPReply) -> Action {
        let reason = "the relay answered \(step) with \(reply.quoted)"
        switch reply.code {
        case 400..<500: return fail(.retry(reason))
        case 500..<600: return fail(.refused(reason))
        default: return fail(.retry("unexpected reply: \(reason)"))
        }
    }

    private mutating func fail(_ failure: DispatchFailure) -> Action {
        state = .failed
        return .fail(failure)
    }

    private static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
}
