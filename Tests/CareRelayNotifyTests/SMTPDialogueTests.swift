import Foundation
import CareRelayHarness
import Testing

@testable import CareRelayNotify

/// The SMTP state machine alone, fed canned replies: no sockets.
@Suite struct SMTPDialogueTests {
    static let dispatch = Dispatch(
        id: "d-42", channel: .email("intake@council.example"), subject: "1 new urgent referral for West intake",
        text: "Open CareRelay to see it.\n.a line that starts with a dot\n..and two", event: "referral.new", urgent: true,
        link: "carerelay referrals --team west", createdAt: Date(timeIntervalSince1970: 1_751_360_700))

    static func dialogue(security: SMTPSettings.Security = .startTLS, username: String? = "relay-user", password: String? = "s3cret")
        -> SMTPDialogue
    {
        let settings = SMTPSettings(
            host: "relay.example", security: security, username: username, password: password, from: "carerelay@council.example")
        return SMTPDialogue(settings: settings, recipient: "intake@council.example", dispatch: dispatch)
    }

    /// Feeds each line of a (possibly multi-line) reply; every line but the last must ask to wait.
    static func reply(_ dialogue: inout SMTPDialogue, _ lines: String...) -> SMTPDialogue.Action {
        for line in lines.dropLast() {
            #expect(dialogue.receive(line: line) == .wait, "\(line) is inside a multi-line reply")
        }
        return dialogue.receive(line: lines.last ?? "")
    }

    static func sent(_ action: SMTPDialogue.Action) -> String? {
        if case .send(let text) = action { text } else { nil }
    }

    /// The session up to the message, STARTTLS and AUTH PLAIN on the way, returning each step's
    /// action.
    static func driveToDelivery(_ dialogue: inout SMTPDialogue) -> [SMTPDialogue.Action] {
        var actions: [SMTPDialogue.Action] = []
        actions.append(reply(&dialogue, "220 relay.example ESMTP ready"))
        actions.append(reply(&dialogue, "250-relay.example greets you", "250-SIZE 10240000", "250-8BITMIME", "250 STARTTLS"))
        actions.append(reply(&dialogue, "220 2.0.0 go ahead"))
        actions.append(dialogue.tlsEstablished())
        actions.append(reply(&dialogue, "250-relay.example", "250-8BITMIME", "250-AUTH PLAIN LOGIN", "250 SMTPUTF8"))
        actions.append(reply(&dialogue, "235 2.7.0 authenticated"))
        actions.append(reply(&dialogue, "250 2.1.0 sender ok"))
        actions.append(reply(&dialogue, "250 2.1.5 recipient ok"))
        actions.append(reply(&dialogue, "354 go ahead"))
        actions.append(reply(&dialogue, "250 2.0.0 queued as 1234"))
        return actions
    }

    @Test func startTLSThenAuthPlainThenTheMessage() throws {
        var dialogue = Self.dialogue()
        let actions = Self.driveToDelivery(&dialogue)
        #expect(actions[0] == .send("EHLO carerelay.localhost\r\n"))
        #expect(actions[1] == .send("STARTTLS\r\n"))
        #expect(actions[2] == .startTLS)
        #expect(actions[3] == .send("EHLO carerelay.localhost\r\n"), "EHLO again under TLS (RFC 3207)")
        let auth = try #require(Self.sent(actions[4]))
        #expect(auth.hasPrefix("AUTH PLAIN ") && auth.hasSuffix("\r\n"))
        let encoded = auth.dropFirst("AUTH PLAIN ".count).trimmingCharacters(in: .newlines)
        let decoded = try #require(Data(base64Encoded: String(encoded)))
        #expect(Array(decoded) == [0] + Array("relay-user".utf8) + [0] + Array("s3cret".utf8))
        #expect(actions[5] == .send("MAIL FROM:<carerelay@council.example> BODY=8BITMIME\r\n"))
        #expect(actions[6] == .send("RCPT TO:<intake@council.example>\r\n"))
        #expect(actions[7] == .send("DATA\r\n"))
        let message = try #require(Self.sent(actions[8]))
        #expect(message.contains("Message-ID: <d-42@carerelay.localhost>\r\n"))
        #expect(message.hasSuffix("\r\n.\r\n"))
        #expect(actions[9] == .send("QUIT\r\n"))
        #expect(dialogue.delivered)
        #expect(dialogue.isTLS)
        #expect(Self.reply(&dialogue, "221 2.0.0 bye") == .close)
    }

    @Test func noStartTLSOfferedSendsNothingButEHLO() {
        var dialogue = Self.dialogue()
        #expect(Self.reply(&dialogue, "220 relay.example ESMTP") == .send("EHLO carerelay.localhost\r\n"))
        let action = Self.reply(&dialogue, "250-relay.example", "250-AUTH PLAIN LOGIN", "250 8BITMIME")
        guard case .fail(.retry(let why)) = action else {
            Issue.record("expected a retry failure, got \(action)")
            return
        }
        #expect(why.contains("STARTTLS"))
        // Over: later lines change nothing, and no credentials ever leave.
        #expect(dialogue.receive(line: "250 OK") == .wait)
        #expect(!dialogue.delivered)
    }

    @Test func authLoginWhenPlainIsNotOffered() throws {
        var dialogue = Self.dialogue(security: .implicitTLS)
        #expect(dialogue.isTLS)
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        #expect(Self.reply(&dialogue, "250-relay.example", "250 AUTH=LOGIN CRAM-MD5") == .send("AUTH LOGIN\r\n"))
        #expect(Self.reply(&dialogue, "334 VXNlcm5hbWU6") == .send(Data("relay-user".utf8).base64EncodedString() + "\r\n"))
        #expect(Self.reply(&dialogue, "334 UGFzc3dvcmQ6") == .send(Data("s3cret".utf8).base64EncodedString() + "\r\n"))
        // No 8BITMIME: the body goes quoted-printable, and MAIL FROM asks for nothing.
        #expect(Self.reply(&dialogue, "235 ok") == .send("MAIL FROM:<carerelay@council.example>\r\n"))
    }

    @Test func noUsableAuthMechanismIsRefused() {
        var dialogue = Self.dialogue(security: .implicitTLS)
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        let action = Self.reply(&dialogue, "250-relay.example", "250 AUTH CRAM-MD5")
        guard case .fail(.refused(let why)) = action else {
            Issue.record("expected refused, got \(action)")
            return
        }
        #expect(why.contains("CRAM-MD5"))
    }

    @Test func withoutCredentialsNoAuth() {
        var dialogue = Self.dialogue(security: .none, username: nil, password: nil)
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        #expect(Self.reply(&dialogue, "250-relay.example", "250 AUTH PLAIN") == .send("MAIL FROM:<carerelay@council.example>\r\n"))
    }

    @Test func heloWhenEHLOIsUnknownAndNothingNeedsIt() {
        var dialogue = Self.dialogue(security: .none, username: nil, password: nil)
        _ = Self.reply(&dialogue, "220 old relay")
        #expect(Self.reply(&dialogue, "502 command not implemented") == .send("HELO carerelay.localhost\r\n"))
        #expect(Self.reply(&dialogue, "250 hello") == .send("MAIL FROM:<carerelay@council.example>\r\n"))
    }

    /// The failing reply at each step: 4xx asks for a retry, 5xx refuses, and the reason quotes
    /// the relay.
    @Test(arguments: 0..<10, [("451 4.3.0 try again later", true), ("554 5.7.1 go away", false)])
    func failureAtEachStep(step: Int, reply: (line: String, temporary: Bool)) {
        var dialogue = Self.dialogue()
        let script: [[String]] = [
            ["220 relay.example ESMTP"],
            ["250-relay.example", "250 STARTTLS"],
            ["220 go ahead"],
            [],  // the TLS handshake
            ["250-relay.example", "250-8BITMIME", "250 AUTH PLAIN"],
            ["235 ok"],
            ["250 sender ok"],
            ["250 recipient ok"],
            ["354 go ahead"],
            ["250 queued"],
        ]
        for (index, lines) in script.enumerated() where index < step {
            if lines.isEmpty {
                _ = dialogue.tlsEstablished()
            } else {
                for line in lines { _ = dialogue.receive(line: line) }
            }
        }
        if script[step].isEmpty {
            // At the handshake, a line from the relay is out of place.
            guard case .fail(.retry) = dialogue.receive(line: reply.line) else {
                Issue.record("a reply during the TLS handshake must fail")
                return
            }
            return
        }
        let action = dialogue.receive(line: reply.line)
        switch action {
        case .fail(.retry(let why)) where reply.temporary:
            #expect(why.contains(reply.line), "the reason quotes the relay: \(why)")
        case .fail(.refused(let why)) where !reply.temporary:
            #expect(why.contains(reply.line), "the reason quotes the relay: \(why)")
        default:
            Issue.record("step \(step): \(reply.line) gave \(action)")
        }
        #expect(!dialogue.delivered)
    }

    @Test func failureInAMultiLineReplyQuotesEveryLine() {
        var dialogue = Self.dialogue()
        let action = Self.reply(&dialogue, "554-relay.example does not take mail", "554 from your address")
        #expect(action == .fail(.refused("the relay answered the greeting with 554 relay.example does not take mail / from your address")))
    }

    @Test func malformedRepliesFail() {
        for line in ["hello there", "25", "250*odd", "650 no such code"] {
            var dialogue = Self.dialogue()
            guard case .fail(.retry(let why)) = dialogue.receive(line: line) else {
                Issue.record("\(line) must fail")
                continue
            }
            #expect(why.contains("malformed"))
        }
        var dialogue = Self.dialogue()
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        #expect(dialogue.receive(line: "250-relay.example") == .wait)
        guard case .fail(.retry) = dialogue.receive(line: "251 another code") else {
            Issue.record("a code that changes mid-reply must fail")
            return
        }
    }

    @Test func closingEarlyIsARetryButAfterTheMessageItIsDelivered() {
        var early = Self.dialogue()
        _ = Self.reply(&early, "220 relay.example ESMTP")
        #expect(early.connectionClosed() == .retry("the relay closed the connection during EHLO"))

        var late = Self.dialogue()
        _ = Self.driveToDelivery(&late)
        #expect(late.connectionClosed() == nil)
    }

    @Test func theMessageIsDotStuffed() throws {
        var dialogue = Self.dialogue()
        let message = try #require(Self.sent(Self.driveToDelivery(&dialogue)[8]))
        let lines = message.components(separatedBy: "\r\n")
        #expect(lines.contains("..a line that starts with a dot"))
        #expect(lines.contains("...and two"))
        // Only the terminator is a lone dot.
        #expect(lines.filter { $0 == "." }.count == 1)
        #expect(!message.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "no bare LF")
    }

    @Test func credentialsNeverGoInClearUnlessSecurityIsNone() {
        var dialogue = Self.dialogue(security: .none)
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        // .none is the loopback-only mode: AUTH in clear is what was asked for.
        let action = Self.reply(&dialogue, "250-relay.example", "250 AUTH PLAIN")
        #expect(Self.sent(action)?.hasPrefix("AUTH PLAIN ") == true)
    }

    @Test func nonASCIIAddressNeedsSMTPUTF8() {
        let settings = SMTPSettings(host: "relay.example", security: .none, from: "carerelay@council.example")
        var dialogue = SMTPDialogue(settings: settings, recipient: "zoë@council.example", dispatch: Self.dispatch)
        _ = Self.reply(&dialogue, "220 relay.example ESMTP")
        guard case .fail(.refused) = Self.reply(&dialogue, "250-relay.example", "250 8BITMIME") else {
            Issue.record("without SMTPUTF8 a non-ASCII address cannot go")
            return
        }
        var offered = SMTPDialogue(settings: settings, recipient: "zoë@council.example", dispatch: Self.dispatch)
        _ = Self.reply(&offered, "220 relay.example ESMTP")
        #expect(
            Self.reply(&offered, "250-relay.example", "250-8BITMIME", "250 SMTPUTF8")
                == .send("MAIL FROM:<carerelay@council.example> BODY=8BITMIME SMTPUTF8\r\n"))
    }
}
