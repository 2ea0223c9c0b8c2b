import CareRelayModel
import Crypto
import Foundation

/// The audit trail's hash chain, the same in every store: each row's hash covers the previous
/// row's hash and every field of its own, so an edited, removed or truncated row shows.
public enum AuditChain {
    /// The newest row: the next one chains to it.
    public struct Head: Sendable, Equatable {
        public var seq: Int64
        public var hash: [UInt8]
        public init(seq: Int64, hash: [UInt8]) {
            self.seq = seq
            self.hash = hash
        }
    }

    public static let genesis = Head(seq: 0, hash: [UInt8](repeating: 0, count: 32))

    /// Milliseconds since 1970, as stored and hashed.
    public static func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// The row that follows `head`, and the new head.
    public static func next(after head: Head, _ entry: AuditEntry) -> (row: AuditRowToStore, head: Head) {
        let seq = head.seq + 1
        let atMillis = millis(entry.at)
        let hash = hash(previous: head.hash, seq: seq, atMillis: atMillis, entry: entry)
        return (AuditRowToStore(seq: seq, atMillis: atMillis, entry: entry, hash: hash), Head(seq: seq, hash: hash))
    }

    /// SHA-256 over the previous row's hash and every field of this row, each field length-
    /// prefixed so that moving text between fields changes the hash.
    public static func hash(previous: [UInt8], seq: Int64, atMillis: Int64, entry: AuditEntry) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(data: previous)
        let fields: [String?] = [
            String(seq), String(atMillis), entry.actor, entry.action.rawValue, entry.patient, entry.message,
            entry.recipient, entry.decision, entry.rule, entry.detail,
        ]
        for field in fields {
            let bytes = field.map { Array($0.utf8) }
            var length = UInt32(bytes?.count ?? 0xFFFF_FFFF).bigEndian
            withUnsafeBytes(of: &length) { hasher.update(bufferPointer: $0) }
            if let bytes { hasher.update(data: bytes) }
        }
        return Array(hasher.finalize())
    }

    /// Checks stored rows in sequence order, one at a time, so a store can stream them.
    public struct Verifier {
        private var previous = AuditChain.genesis.hash
        private var expectedSeq: Int64 = 1
        private var count = 0
        public init() {}

        /// Nil while the chain holds; the verdict at the first row that breaks it.
        public mutating func check(
            seq: Int64, atMillis: Int64, action: String, actor: String, patient: String?, message: String?,
            recipient: String?, decision: String?, rule: String?, detail: String?, hash stored: [UInt8]
        ) -> AuditVerification? {
            guard let parsedAction = AuditEntry.Action(rawValue: action) else {
                return .broken(atRow: seq, reason: "unknown action '\(action)'")
            }
            if seq != expectedSeq {
                return .broken(atRow: expectedSeq, reason: "row \(expectedSeq) is missing")
            }
            let entry = AuditEntry(
                at: Date(timeIntervalSince1970: Double(atMillis) / 1000), actor: actor, action: parsedAction,
                patient: patient, message: message, recipient: recipient, decision: decision, rule: rule, detail: detail)
            guard stored == AuditChain.hash(previous: previous, seq: seq, atMillis: atMillis, entry: entry) else {
                return .broken(atRow: seq, reason: "row \(seq) does not match its hash: it was changed, or a row before it was removed")
            }
            previous = stored
            count += 1
            expectedSeq += 1
            return nil
        }

        public var verdict: AuditVerification { .intact(rows: count) }
    }
}

/// One audit row with its place in the chain, ready to insert.
public struct AuditRowToStore: Sendable {
    public var seq: Int64
    public var atMillis: Int64
    public var entry: AuditEntry
    public var hash: [UInt8]
}
