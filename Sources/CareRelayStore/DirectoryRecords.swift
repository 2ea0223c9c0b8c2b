import CareRelayModel
import Foundation

/// The directory as a store keeps it: one document, numbered. Every broker sharing the store
/// serves the newest revision; a change is saved only on top of the revision it was made
/// from, so two administrators changing it at once cannot lose each other's work.
public struct StoredDirectory: Sendable, Equatable {
    public var revision: Int64
    public var directory: Directory
    public init(revision: Int64, directory: Directory) {
        self.revision = revision
        self.directory = directory
    }

    /// How the document is written: sorted keys, so the same directory is the same bytes.
    public static func encode(_ directory: Directory) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return [UInt8](try encoder.encode(directory))
    }

    public static func decode(_ bytes: [UInt8], revision: Int64) throws -> StoredDirectory {
        StoredDirectory(revision: revision, directory: try JSONDecoder().decode(Directory.self, from: Data(bytes)))
    }
}

/// A one-time enrolment code as the store keeps it: its hash only, so a copy of the store
/// enrols nobody.
public struct EnrolmentCode: Sendable, Equatable {
    /// Lower-case hex SHA-256 of the normalised code (`EnrolmentCodeText.hash`).
    public var hash: String
    public var person: PersonID
    public var issuedBy: PersonID
    public var issuedAt: Date
    public var expiresAt: Date
    public var usedAt: Date?

    public init(hash: String, person: PersonID, issuedBy: PersonID, issuedAt: Date, expiresAt: Date, usedAt: Date? = nil) {
        self.hash = hash
        self.person = person
        self.issuedBy = issuedBy
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.usedAt = usedAt
    }
}

public enum DirectoryStoreError: Error, Equatable, CustomStringConvertible {
    /// Another broker (or administrator) saved a newer revision first.
    case changedMeanwhile(stored: Int64?)
    /// The enrolment code was used, or replaced, meanwhile.
    case codeUsed

    public var description: String {
        switch self {
        case .changedMeanwhile(let stored): "the directory changed meanwhile (now revision \(stored.map(String.init) ?? "none"))"
        case .codeUsed: "the enrolment code was used meanwhile"
        }
    }
}

/// The directory and its enrolment codes.
public protocol DirectoryRegister {
    /// The newest directory; nil for a store that holds none yet.
    func storedDirectory() throws -> StoredDirectory?
    /// Saves `directory` as the revision after `revision` (nil: the store holds none yet), with
    /// its audit lines, in one transaction, and marks the enrolment code `usingCode` (a hash)
    /// used in the same transaction. Returns the new revision. Throws
    /// `DirectoryStoreError.changedMeanwhile` when the store's revision is no longer
    /// `revision`, and `.codeUsed` when the code is no longer unused.
    func saveDirectory(_ directory: Directory, after revision: Int64?, audit: [AuditEntry], usingCode: String?, at now: Date) throws -> Int64
    /// Records a code, replacing any unused one for the same person.
    func issueEnrolmentCode(_ code: EnrolmentCode, audit: [AuditEntry]) throws
    func enrolmentCode(hash: String) throws -> EnrolmentCode?
}
