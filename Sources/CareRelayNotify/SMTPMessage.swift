import Foundation

/// The email for one notification (RFC 5322 with MIME, RFC 2045-2047), rendered from the
/// dispatch alone so that every attempt sends the same bytes: the same Date and Message-ID,
/// which lets the recipient's mail system recognise a retry.
struct SMTPMessage: Sendable, Equatable {
    /// The From header's text: an address, or a name and an address.
    var from: String
    var to: String
    var subject: String
    var date: Date
    /// Without angle brackets: `<id>@<heloName>`.
    var messageID: String
    var event: String
    /// The text, then the link on a line of its own after a blank line, line ends not yet CRLF.
    var body: String

    /// RFC 5322 §2.1.1: a line must not exceed 998 octets without its CRLF.
    static let maximumLineLength = 998

    init(dispatch: Dispatch, from: String, to: String, heloName: String) {
        self.from = from
        self.to = to
        self.subject = dispatch.subject
        self.date = dispatch.createdAt
        self.messageID = "\(Self.atext(dispatch.id))@\(Self.atext(heloName))"
        self.event = dispatch.event
        var body = dispatch.text
        if let link = dispatch.link {
            body += "\n\n" + Self.oneLine(link)
        }
        self.body = body
    }

    /// The headers and body with CRLF line ends, not yet dot-stuffed. The body goes as 8bit
    /// where the relay takes 8BITMIME and no line is too long, else as quoted-printable (which
    /// any relay carries unchanged).
    func rendered(eightBitAllowed: Bool) -> (text: String, eightBit: Bool) {
        let lines = Self.lines(of: body)
        let eightBit = eightBitAllowed && lines.allSatisfy { $0.utf8.count <= Self.maximumLineLength }
        let headers = [
            "From: \(from)",
            "To: \(to)",
            "Subject: \(Self.encodedHeaderText(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(messageID)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: \(eightBit ? "8bit" : "quoted-printable")",
            // RFC 3834: no out-of-office replies or bounces-to-bounces back to the relay.
            "Auto-Submitted: auto-generated",
            "X-CareRelay-Event: \(Self.oneLine(event))",
        ]
        let bodyLines = eightBit ? lines : lines.map(Self.quotedPrintable)
        let text = headers.joined(separator: "\r\n") + "\r\n\r\n" + bodyLines.joined(separator: "\r\n") + "\r\n"
        return (text, eightBit)
    }

    /// What follows DATA: every line that begins with "." gets another (RFC 5321 §4.5.2), and
    /// the lone "." line ends the message.
    static func dotStuffed(_ text: String) -> String {
        var lines = text.components(separatedBy: "\r\n")
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n") + "\r\n.\r\n"
    }

    /// Splits on CRLF, a bare LF or a bare CR: a bare CR or LF in SMTP data is not allowed
    /// (RFC 5321 §2.3.8) and some relays treat it as the end of the data (SMTP smuggling).
    static func lines(of text: String) -> [String] {
        text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .components(separatedBy: "\n")
    }

    /// Text for a header: control characters (CR and LF above all: header injection) become
    /// spaces.
    static func oneLine(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// A header's text as is when it is printable ASCII, else as RFC 2047 encoded words
    /// (UTF-8, base64), each at most 75 characters, folded onto continuation lines. Words are
    /// cut between characters, never inside one.
    static func encodedHeaderText(_ text: String) -> String {
        let clean = oneLine(text)
        if clean.unicodeScalars.allSatisfy({ $0.isASCII }) { return clean }
        // "=?UTF-8?B?" + base64 + "?=" within 75 characters: 60 base64 characters, 45 bytes.
        var words: [[UInt8]] = []
        var chunk: [UInt8] = []
        for character in clean {
            let bytes = Array(String(character).utf8)
            if !chunk.isEmpty, chunk.count + bytes.count > 45 {
                words.append(chunk)
                chunk = []
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0).base64EncodedString())?=" }.joined(separator: "\r\n ")
    }

    /// One line as quoted-printable (RFC 2045 §6.7): printable ASCII as is, other bytes as
    /// `=XX`, a space or tab at the end encoded, soft line breaks keeping lines within 76.
    static func quotedPrintable(_ line: String) -> String {
        let bytes = Array(line.utf8)
        var tokens: [String] = []
        for (index, byte) in bytes.enumerated() {
            let isLast = index == bytes.count - 1
            let literal =
                (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                || ((byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")) && !isLast)
            tokens.append(literal ? String(UnicodeScalar(byte)) : String(format: "=%02X", byte))
        }
        var output: [String] = []
        var current = ""
        for token in tokens {
            if current.utf8.count + token.utf8.count > 75 {
                output.append(current + "=")
                current = ""
            }
            current += token
        }
        output.append(current)
        return output.joined(separator: "\r\n")
    }

    /// RFC 5322 §3.3 date-time in UTC, e.g. `Tue, 01 Jul 2025 09:05:00 +0000`. Built by hand:
    /// a formatter would follow the machine's locale.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let weekday = days[((parts.weekday ?? 1) - 1) % 7]
        let month = months[((parts.month ?? 1) - 1) % 12]
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(weekday), \(two(parts.day)) \(month) \(parts.year ?? 1970) \(two(parts.hour)):\(two(parts.minute)):\(two(parts.second)) +0000"
    }

    /// Keeps the characters a Message-ID's halves may hold (RFC 5322 atext and "."), so an odd
    /// dispatch id cannot break the header; anything else becomes "-", the same on every attempt.
    static func atext(_ text: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~.")
        let kept = String(text.map { allowed.contains($0) ? $0 : "-" })
        return kept.isEmpty ? "-" : kept
    }
}
