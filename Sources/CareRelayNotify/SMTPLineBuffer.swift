/// Splits the bytes a relay sends into reply lines. Kept by the SMTP channel handler itself
/// rather than by a decoder in the pipeline, so that at STARTTLS the handler can see whether
/// the relay sent anything past its `220` (bytes an attacker injected before the handshake,
/// CVE-2011-0411 style) and refuse to carry them into the TLS session.
struct SMTPLineBuffer: Sendable {
    struct LineTooLong: Error, Equatable {}

    /// RFC 5321 allows 512 octets per reply line; a little slack for relays that exceed it.
    static let maximumLineLength = 2048

    private var pending: [UInt8] = []

    /// Whether bytes wait that do not yet make a line.
    var isEmpty: Bool { pending.isEmpty }

    mutating func append(_ bytes: some Sequence<UInt8>) {
        pending.append(contentsOf: bytes)
    }

    /// The next complete line without its CRLF (a bare LF also ends a line), or nil if none is
    /// complete yet.
    mutating func nextLine() throws(LineTooLong) -> String? {
        guard let newline = pending.firstIndex(of: UInt8(ascii: "\n")) else {
            if pending.count > Self.maximumLineLength { throw LineTooLong() }
            return nil
        }
        guard newline <= Self.maximumLineLength else { throw LineTooLong() }
        var end = newline
        if end > 0, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = String(decoding: pending[..<end], as: UTF8.self)
        pending.removeSubrange(...newline)
        return line
    }
}
