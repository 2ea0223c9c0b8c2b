/// One SMTP reply (RFC 5321 §4.2): a three-digit code and the text of each of its lines.
struct SMTPReply: Sendable, Equatable {
    var code: Int
    var lines: [String]

    /// The text as a failure reason quotes it: code first, lines joined, so an operator reading
    /// the outbox sees what the relay said (`550 5.1.1 no such user`).
    var quoted: String {
        let text = lines.filter { !$0.isEmpty }.joined(separator: " / ")
        return text.isEmpty ? String(code) : "\(code) \(text)"
    }
}

/// Gathers the lines of a multi-line reply (`250-first`, `250-second`, `250 last`) into one
/// `SMTPReply`. Pure: fed one line at a time, without its CRLF.
struct SMTPReplyReader: Sendable {
    enum Problem: Error, Equatable {
        case malformed(String)
        case codeChanged(String)
        case tooManyLines
    }

    /// A relay's EHLO reply is a dozen lines; anything much longer is a broken or hostile peer.
    static let maximumLines = 128

    private var code: Int?
    private var lines: [String] = []

    /// True between the first and the last line of a multi-line reply.
    var isInsideReply: Bool { code != nil }

    /// The reply this line completes, or nil when more lines are to come.
    mutating func read(_ line: String) throws(Problem) -> SMTPReply? {
        let bytes = Array(line.utf8)
        guard bytes.count >= 3, bytes[0...2].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            bytes[0] >= UInt8(ascii: "2"), bytes[0] <= UInt8(ascii: "5")
        else { throw .malformed(Self.excerpt(line)) }
        let code = bytes[0...2].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        let last: Bool
        if bytes.count == 3 {
            last = true
        } else if bytes[3] == UInt8(ascii: " ") {
            last = true
        } else if bytes[3] == UInt8(ascii: "-") {
            last = false
        } else {
            throw .malformed(Self.excerpt(line))
        }
        if let expected = self.code, expected != code { throw .codeChanged(Self.excerpt(line)) }
        guard lines.count < Self.maximumLines else { throw .tooManyLines }
        self.code = code
        lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
        guard last else { return nil }
        defer {
            self.code = nil
            self.lines = []
        }
        return SMTPReply(code: code, lines: lines)
    }

    private static func excerpt(_ line: String) -> String { String(line.prefix(80)) }
}

/// What a relay said it can do in its EHLO reply (RFC 5321 §4.1.1.1): the keywords this
/// client acts on.
struct SMTPCapabilities: Sendable, Equatable {
    var startTLS = false
    /// Upper-cased SASL mechanism names, e.g. PLAIN, LOGIN.
    var authMechanisms: Set<String> = []
    var eightBitMIME = false
    var smtpUTF8 = false

    init() {}

    /// The first line is the relay's name and greeting; every later line is a keyword and its
    /// parameters. Old relays wrote `AUTH=PLAIN LOGIN`; that spelling counts too.
    init(ehlo reply: SMTPReply) {
        for line in reply.lines.dropFirst() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "=" }).map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            switch keyword {
            case "STARTTLS": startTLS = true
            case "AUTH": authMechanisms.formUnion(words.dropFirst())
            case "8BITMIME": eightBitMIME = true
            case "SMTPUTF8": smtpUTF8 = true
            default: break
            }
        }
    }
}
