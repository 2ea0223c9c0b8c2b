import Foundation

/// Which addresses go into MAIL FROM, RCPT TO and the headers: one mailbox, nothing that could
/// end a command or a header early (`>`, CR, LF) or make it mean two addresses.
enum SMTPAddress {
    static func isAcceptable(_ address: String) -> Bool {
        let forbidden = Set("<>()[]\\,;:\" \t")
        guard address.utf8.count <= 254, let at = address.lastIndex(of: "@") else { return false }
        let local = address[..<at]
        let domain = address[address.index(after: at)...]
        return !local.isEmpty && !domain.isEmpty && local.utf8.count <= 64
            && address.unicodeScalars.allSatisfy { $0.properties.generalCategory != .control && !forbidden.contains(Character($0)) }
    }

    /// The settings' sender, `carerelay@council.example` or `CareRelay <carerelay@council.example>`:
    /// the address for MAIL FROM and the text for the From header (the name quoted, or RFC 2047
    /// encoded when it is not ASCII). Nil when it is neither form.
    static func sender(_ from: String) -> (address: String, header: String)? {
        let trimmed = from.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasSuffix(">"), let open = trimmed.lastIndex(of: "<") else {
            return isAcceptable(trimmed) ? (trimmed, trimmed) : nil
        }
        let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        guard isAcceptable(address) else { return nil }
        var name = SMTPMessage.oneLine(String(trimmed[..<open])).trimmingCharacters(in: .whitespaces)
        if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
        guard !name.isEmpty else { return (address, address) }
        if !name.unicodeScalars.allSatisfy(\.isASCII) {
            return (address, "\(SMTPMessage.encodedHeaderText(name)) <\(address)>")
        }
        let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return (address, "\"\(escaped)\" <\(address)>")
    }
}
