import CareRelayModel
import Foundation
import Synchronization

/// What the broker needs from durable storage: one protocol per concern, so each part of the
/// broker names only what it uses (the consent registry reads a `ConsentLog`, the operations
/// endpoint a `StoreStatisticsReader`). Two stores implement them all: `SQLiteStore`, the
/// embedded single-machine default, and `PostgresStore` (module CareRelayPostgres), which
/// several brokers can share. The broker's loop is the only caller of one instance, on one
/// thread; every call blocks until the store has answered.
///
/// The contract both keep (checked on both by StoreContractTests and, for several writers,
/// SharedStoreTests; the broker suites also run on both stores in Scripts/test):
/// - `accept` is one durable transaction: when it returns, every stored message survives a
///   crash. A (sender, key) pair is stored once; a resend with the same content is a
///   `duplicate`, with different content a `conflict`, whichever broker it reaches.
/// - A referral update is stored only if the referral still has the status the broker read
///   (`NewMessage.referralExpectedStatus`); otherwise the message is not stored and the outcome
///   is `referralChanged`. Two brokers can never both take the same referral.
/// - Message sequence numbers grow in commit order, so a mailbox read "after" the highest
///   sequence already handed out never skips a message committed later.
/// - The audit trail is one hash chain, however many brokers write to it.
public protocol MessageStore: MessageLog, ReferralBook, CareTeamRegister, ConsentLog, AuditTrail, DirectoryRegister, OnCallRegister, AnyObject {
    /// Operators' figures, costing what waits, not the store's history.
    func statistics(at now: Date) throws -> StoreStatistics
    /// Changes other brokers made that this one must act on; nil for a store with one writer.
    var sharedChanges: SharedChanges? { get }
    /// Ends the store's use; nothing may call it afterwards.
    func close()
}

/// Looking records up: a message, how it went, and a person's history. The broker's store
/// answers them, and so does the reader beside its loop (`StoreReader`).
public protocol MessageRecords {
    func message(id: String) throws -> StoredMessage?
    func tracking(id: String) throws -> Tracking?
    /// Messages a person sent or received, newest first.
    func history(for person: PersonID, kind: MessageKind?, limit: Int) throws -> [InboxLine]
    /// Referrals with one of `statuses` sent to any of `teams`, or to `person` by name, with
    /// `person`'s own copy: an intake's worklist, earliest deadline first, at most `limit`.
    func referrals(to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int) throws -> [ReferralEntry]
}

/// The message log and the mailboxes: the hot path.
public protocol MessageLog: MessageRecords {
    /// Stores a batch of messages (deliveries, referral records, care team links, audit lines)
    /// and the confirmations read in the same pass, in one durable transaction. One outcome
    /// per message, in order.
    func accept(_ batch: [NewMessage], confirming confirmations: [DeliveryConfirmation], at now: Date) throws -> [StoreOutcome]
    /// What each (sender, key) pair already sent, keyed by `idempotencyKey(_:_:)`.
    func earlierSends(_ keys: [(sender: PersonID, key: String)]) throws -> [String: EarlierSend]
    /// Undelivered messages for one recipient after sequence `after`, oldest first, skipping
    /// those in flight.
    func mailbox(for recipient: PersonID, after: Int64, excluding inFlight: Set<Int64>, limit: Int) throws -> [MailItem]
    /// Deliveries that went out, those the delivery-time consent check withheld, and their
    /// audit lines. Need not wait for the disk: losing it in a power cut means a redelivery.
    func recordDeliveries(
        sent: [(seq: Int64, recipient: PersonID)], withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)], audit: [AuditEntry],
        at now: Date) throws
    /// Marks deliveries confirmed; returns the sequences that were pending.
    func confirm(recipient: PersonID, ids: [String], at now: Date) throws -> [Int64]
    /// Every copy of a message about `patient` that went out to its recipient (confirmed or
    /// not), one item per copy, oldest first: what a change of consent may have to revoke.
    func deliveredCopies(about patient: NHSNumber) throws -> [MailItem]
    /// The messages of one kind about `patient`, oldest first (a patient's care plan versions).
    func messages(about patient: NHSNumber, kind: MessageKind) throws -> [StoredMessage]
}

/// Referrals as records: their status, who took them, and their response targets. They change
/// only through `MessageLog.accept`, with the message that changes them.
public protocol ReferralBook {
    func referral(id: String) throws -> ReferralRecord?
    /// Referrals still waiting to be taken whose response target has passed.
    func overdueReferrals(at now: Date) throws -> [ReferralRecord]
    /// The earliest deadline of a referral still waiting, so the broker knows when to wake.
    func nextReferralDeadline() throws -> Date?
}

/// Patients' care teams.
public protocol CareTeamRegister {
    /// Members of a patient's care team (stored as the text "team:ID" and "person:ID").
    func careTeam(of patient: NHSNumber) throws -> [CareTeamMember]
    func link(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws
    func unlink(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws
}

/// The consent messages the consent registry is built from.
public protocol ConsentLog {
    /// Consent messages after sequence `after`, in the order they were accepted: the consent
    /// registry is built from them (and, with several brokers, caught up from them).
    func consentRecords(after: Int64) throws -> [ConsentRecord]
    /// One patient's consent messages, in order.
    func consentRecords(patient: NHSNumber) throws -> [ConsentRecord]
}

/// The audit trail: one hash chain of every disclosure and refusal.
public protocol AuditTrail: AuditReader {
    func appendAudit(_ entries: [AuditEntry]) throws
}

/// Reading the audit trail.
public protocol AuditReader {
    func audit(_ filter: AuditFilter) throws -> [AuditRow]
    /// Recomputes the whole chain, reading it a page at a time.
    func verifyAudit() throws -> AuditVerification
}

/// The reads a person's query makes, on a connection of its own (`StoreProvider.openReader`):
/// the broker answers queries with it beside its loop, so a long read never holds up routing.
public protocol StoreReader: MessageRecords, AuditReader {}

/// How a (sender, key) pair is written as one dictionary key.
public func idempotencyKey(_ sender: PersonID, _ key: String) -> String { "\(sender)\u{0}\(key)" }

/// Opens the store a broker is configured with, and a second, independent reader of its
/// figures for the operations endpoint (so a scrape never waits in the broker's loop).
public protocol StoreProvider: Sendable, CustomStringConvertible {
    func open() throws -> any MessageStore
    func openStatisticsReader() throws -> any StoreStatisticsReader
    /// A reader of records and the audit trail on a connection of its own, for the thread
    /// that opens it.
    func openReader() throws -> any StoreReader
    /// The notification outbox on a writing connection of its own, for the sender beside
    /// the loop (the broker's store must have been opened first: it builds the tables).
    func openOutbox() throws -> any NotificationOutbox
}

/// Operators' figures, costing what waits, not the store's history. The broker's store is
/// one; the operations endpoint opens a second, independent one.
public protocol StoreStatisticsReader: Sendable {
    func statistics(at now: Date) throws -> StoreStatistics
}

public struct SQLiteStoreProvider: StoreProvider {
    public var path: String
    public init(path: String) { self.path = path }
    public func open() throws -> any MessageStore { try SQLiteStore(path: path) }
    public func openStatisticsReader() throws -> any StoreStatisticsReader { try StoreInspector(path: path) }
    public func openReader() throws -> any StoreReader { try StoreInspector(path: path) }
    public func openOutbox() throws -> any NotificationOutbox { try SQLiteOutbox(path: path) }
    public var description: String { "SQLite \(path)" }
}

/// What one broker learns of another's writes to a shared store. The store collects them
/// (from PostgreSQL notifications) and calls `wake` once when the first arrives, so the
/// broker's loop takes them on its next turn instead of polling.
public final class SharedChanges: Sendable {
    public enum Change: Sendable, Equatable {
        /// A message was stored with a delivery for this person.
        case mail(PersonID)
        /// A consent directive was stored.
        case consent
        /// A patient's care team changed.
        case careTeam(NHSNumber)
        /// A referral was stored or changed: deadlines may have moved.
        case referral
        /// The directory was changed: read it again.
        case directory
        /// Notifications may have been missed (the connection carrying them was lost):
        /// everything shared must be read again.
        case everything
    }

    private struct State {
        var waiting: [Change] = []
        var wake: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    public init() {}

    /// Set by the broker before it serves.
    public func onArrival(_ wake: @escaping @Sendable () -> Void) {
        state.withLock { $0.wake = wake }
    }

    public func post(_ changes: [Change]) {
        guard !changes.isEmpty else { return }
        let (wasEmpty, wake) = state.withLock { state in
            let wasEmpty = state.waiting.isEmpty
            state.waiting += changes
            return (wasEmpty, state.wake)
        }
        if wasEmpty { wake?() }
    }

    /// Everything that arrived since the last call.
    public func take() -> [Change] {
        state.withLock { state in
            let taken = state.waiting
            state.waiting.removeAll()
            return taken
        }
    }
}
