import Foundation
import CareRelayHarness
import Testing

@testable import CareRelayNotify

/// The email's text, and the small pure pieces around the dialogue.
@Suite struct SMTPMessageTests {
    static func message(subject: String = "1 new urgent referral for West intake", text: String = "Open CareRelay.", link: String? = nil)
        -> SMTPMessage
    {
        let dispatch = Dispatch(
            id: "0b5d2f1e-1", channel: .email("intake@council.example"), subject: subject, text: text, event: "referral.new",
            urgent: true, link: link, createdAt: Date(timeIntervalSince1970: 1_751_360_700))
        return SMTPMessage(
            dispatch: dispatch, from: "\"CareRelay\" <carerelay@council.example>", to: "intake@council.example", heloName: "relay.council.example")
    }

    static func headers(_ text: String) -> [String] {
        text.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n")
    }

    @Test func theHeaders() {
        let rendered = Self.message(link: "https://carers.example/r/1").rendered(eightBitAllowed: true)
        #expect(rendered.eightBit)
        let headers = Self.headers(rendered.text)
        #expect(
            headers == [
                "From: \"CareRelay\" <carerelay@council.example>",
                "To: intake@council.example",
                "Subject: 1 new urgent referral for West intake",
                "Date: Tue, 01 Jul 2025 09:05:00 +0000",
                "Message-ID: <0b5d2f1e-1@relay.council.example>",
                "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8",
                "Content-Transfer-Encoding: 8bit",
                "Auto-Submitted: auto-generated",
                "X-CareRelay-Event: referral.new",
            ])
        #expect(rendered.text.hasSuffix("\r\n\r\nOpen CareRelay.\r\n\r\nhttps://carers.example/r/1\r\n"))
    }

    @Test func aNonASCIISubjectIsEncodedWordsThatDecodeBack() throws {
        let subject = "Référral nouveau — équipe Ouest, très urgent, à voir aujourd’hui même s’il vous plaît 🙏"
        let rendered = Self.message(subject: subject).rendered(eightBitAllowed: true).text
        let block = rendered.components(separatedBy: "\r\n\r\n")[0]
        let start = try #require(block.range(of: "Subject: "))
        let end = try #require(block.range(of: "\r\nDate:"))
        let field = String(block[start.upperBound..<end.lowerBound])
        #expect(field.unicodeScalars.allSatisfy { $0.isASCII })
        var decoded: [UInt8] = []
        for word in field.components(separatedBy: "\r\n ") {
            #expect(word.count <= 75, "RFC 2047: an encoded word is at most 75 characters")
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let payload = String(word.dropFirst(10).dropLast(2))
            decoded += try #require(Data(base64Encoded: payload))
        }
        #expect(String(decoding: decoded, as: UTF8.self) == subject)
        // Each word decodes alone: none splits a character.
        for word in field.components(separatedBy: "\r\n ") {
            let bytes = try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
            #expect(String(data: bytes, encoding: .utf8) != nil)
        }
    }

    @Test func headerInjectionIsFlattened() {
        let rendered = Self.message(subject: "hello\r\nBcc: everyone@example.org").rendered(eightBitAllowed: true).text
        #expect(!Self.headers(rendered).contains { $0.hasPrefix("Bcc:") })
        #expect(Self.headers(rendered).contains("Subject: hello  Bcc: everyone@example.org"))
    }

    @Test func withoutEightBitMIMETheBodyIsQuotedPrintable() {
        let text = "Référral for the équipe = West\n" + String(repeating: "x", count: 100) + " "
        let rendered = Self.message(text: text).rendered(eightBitAllowed: false)
        #expect(!rendered.eightBit)
        #expect(Self.headers(rendered.text).contains("Content-Transfer-Encoding: quoted-printable"))
        let body = rendered.text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        #expect(body.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(body.components(separatedBy: "\r\n").allSatisfy { $0.count <= 76 })
        #expect(body.hasPrefix("R=C3=A9f=C3=A9rral for the =C3=A9quipe =3D West\r\n"))
        #expect(body.hasSuffix("=20\r\n"), "a space at the end of a line is encoded")
        // Decoding gives the text back.
        let joined = body.replacingOccurrences(of: "=\r\n", with: "")
        var bytes: [UInt8] = []
        let utf8 = Array(joined.utf8)
        var position = 0
        while position < utf8.count {
            if utf8[position] == UInt8(ascii: "="), position + 2 < utf8.count,
                let byte = UInt8(String(decoding: utf8[(position + 1)...(position + 2)], as: UTF8.self), radix: 16)
            {
                bytes.append(byte)
                position += 3
            } else {
                bytes.append(utf8[position])
                position += 1
            }
        }
        #expect(String(decoding: bytes, as: UTF8.self) == text.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
    }

    @Test func aTooLongLineGoesQuotedPrintableEvenWithEightBitMIME() {
        let rendered = Self.message(text: String(repeating: "y", count: 1200)).rendered(eightBitAllowed: true)
        #expect(!rendered.eightBit)
    }

    @Test func dotStuffingAndTheTerminator() {
        #expect(SMTPMessage.dotStuffed("a\r\n.b\r\n.\r\nc\r\n") == "a\r\n..b\r\n..\r\nc\r\n.\r\n")
    }

    @Test func bareLineEndsBecomeCRLF() {
        #expect(SMTPMessage.lines(of: "a\nb\rc\r\nd") == ["a", "b", "c", "d"])
    }

    @Test func anOddDispatchIDCannotBreakTheMessageID() {
        let dispatch = Dispatch(
            id: "a b>\r\nX: y", channel: .email("a@b.example"), subject: "s", text: "t", event: "e", urgent: false,
            createdAt: Date(timeIntervalSince1970: 0))
        let message = SMTPMessage(dispatch: dispatch, from: "c@d.example", to: "a@b.example", heloName: "h.example")
        // "\r\n" is one Character in Swift, so one "-".
        #expect(message.messageID == "a-b--X--y@h.example")
        #expect(!message.messageID.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == " " || $0 == ">" })
    }

    @Test func replyReaderGathersMultiLineReplies() throws {
        var reader = SMTPReplyReader()
        #expect(try reader.read("250-first") == nil)
        #expect(reader.isInsideReply)
        #expect(try reader.read("250-second") == nil)
        #expect(try reader.read("250 last") == SMTPReply(code: 250, lines: ["first", "second", "last"]))
        #expect(!reader.isInsideReply)
        #expect(try reader.read("354") == SMTPReply(code: 354, lines: [""]))
        #expect(throws: SMTPReplyReader.Problem.self) { try reader.read("ok") }
    }

    @Test func capabilities() {
        let reply = SMTPReply(code: 250, lines: ["relay.example hello", "PIPELINING", "auth plain login", "AUTH=XOAUTH2", "STARTTLS", "8BITMIME"])
        let capabilities = SMTPCapabilities(ehlo: reply)
        #expect(capabilities.startTLS)
        #expect(capabilities.eightBitMIME)
        #expect(!capabilities.smtpUTF8)
        #expect(capabilities.authMechanisms == ["PLAIN", "LOGIN", "XOAUTH2"])
        // The greeting line is not a keyword, whatever it says.
        #expect(!SMTPCapabilities(ehlo: SMTPReply(code: 250, lines: ["STARTTLS"])).startTLS)
    }

    @Test func lineBufferSplitsAcrossReads() throws {
        var buffer = SMTPLineBuffer()
        buffer.append(Array("250-one\r\n250 t".utf8))
        #expect(try buffer.nextLine() == "250-one")
        #expect(try buffer.nextLine() == nil)
        #expect(!buffer.isEmpty)
        buffer.append(Array("wo\r\n".utf8))
        #expect(try buffer.nextLine() == "250 two")
        #expect(buffer.isEmpty)
        buffer.append([UInt8](repeating: UInt8(ascii: "x"), count: SMTPLineBuffer.maximumLineLength + 1))
        #expect(throws: SMTPLineBuffer.LineTooLong.self) { try buffer.nextLine() }
    }

    @Test func addresses() throws {
        #expect(SMTPAddress.isAcceptable("intake@council.example"))
        #expect(!SMTPAddress.isAcceptable("intake@council.example>\r\nRCPT TO:<someone@else.example"))
        #expect(!SMTPAddress.isAcceptable("two@a.example, three@b.example"))
        #expect(!SMTPAddress.isAcceptable("no-at-sign"))
        let named = try #require(SMTPAddress.sender("CareRelay <carerelay@council.example>"))
        #expect(named.address == "carerelay@council.example")
        #expect(named.header == "\"CareRelay\" <carerelay@council.example>")
        let bare = try #require(SMTPAddress.sender("carerelay@council.example"))
        #expect(bare.address == "carerelay@council.example" && bare.header == "carerelay@council.example")
        #expect(SMTPAddress.sender("Care \"Relay\" <x@y.example>")?.header == "\"Care \\\"Relay\\\"\" <x@y.example>")
        #expect(SMTPAddress.sender("Bad <not an address>") == nil)
    }
}
