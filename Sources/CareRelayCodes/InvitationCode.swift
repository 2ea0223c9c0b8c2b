import Crypto
import Foundation

/// One-time codes, for a carer's invitation to the web page and a person's enrolment: 12
/// characters from an alphabet without look-alikes (no 0/O, 1/I/L),
/// shown in groups of four. What is hashed is the code upper-cased with spaces and dashes
/// removed, so "k7qm 4txp-9whd" and "K7QM-4TXP-9WHD" are the same code.
public enum InvitationCode {
    static let alphabet = Array("ABCDEFGHJKMNPQRSTUVWXYZ23456789")

    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let chars = (0..<12).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return stride(from: 0, to: 12, by: 4).map { String(chars[$0..<$0 + 4]) }.joined(separator: "-")
    }

    public static func normalise(_ typed: String) -> String {
        String(typed.uppercased().filter { !$0.isWhitespace && $0 != "-" })
    }

    /// The hash a `carer.invite` carries and the bridge stores, and the broker's store keeps
    /// for an enrolment code.
    public static func hash(_ typed: String) -> String {
        SHA256.hash(data: Data(normalise(typed).utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
