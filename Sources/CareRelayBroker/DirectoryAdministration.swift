import CareRelayCodes
import CareRelayModel
import CareRelayPolicy
import CareRelayProtocol
import CareRelayStore
import Foundation
import Logging

/// The directory as the broker serves it: kept in the store, changed by administrators'
/// commands (`directory.change`), by enrolment (`enrol.issue`, `enrol`), by a care
/// co-ordinator's invitation of a carer, and by an operator's import of a directory file.
/// Every change is one new revision, saved with its audit lines before it takes effect;
/// other brokers sharing the store take it from the store when told (`SharedChanges`).
extension BrokerCore {
    /// The store's directory; for a store without one, `seed` saved as its first revision.
    static func openDirectory(seed: DirectoryIndex?, store: any MessageStore, now: Date, logger: Logger) throws -> (DirectoryIndex, Int64) {
        if let stored = try store.storedDirectory() {
            if let seed, seed.directory != stored.directory {
                logger.notice(
                    "serving the store's directory; the directory file given differs and seeds only an empty store (SIGHUP imports it)",
                    metadata: ["revision": "\(stored.revision)"])
            }
            return (try DirectoryIndex(stored.directory), stored.revision)
        }
        guard let seed else {
            throw StoreError.unavailable(
                "the store holds no directory yet: start the broker once with --directory FILE, or run carerelay-broker directory import FILE")
        }
        do {
            let revision = try store.saveDirectory(
                seed.directory, after: nil,
                audit: [AuditEntry(at: now, actor: "operator", action: .directory, detail: "directory imported from a file (revision 1)")],
                usingCode: nil, at: now)
            return (seed, revision)
        } catch DirectoryStoreError.changedMeanwhile {
            // Another broker sharing the store, started at the same moment, saved it first.
            guard let stored = try store.storedDirectory() else { throw StoreError.unavailable("the store lost its directory") }
            return (try DirectoryIndex(stored.directory), stored.revision)
        }
    }

    // MARK: Administrators' changes

    func changeDirectory(_ request: DirectoryChangeRequest, by person: Directory.Person) throws(ProtocolError) -> DirectoryChangeResult {
        let now = configuration.clock()
        // Made again on the newer directory if another broker saved one meanwhile.
        for _ in 0..<3 {
            let before = directory.directory
            let after: Directory
            do {
                after = try before.applying(request.changes)
            } catch {
                // Whose change it is comes first: an outsider learns nothing of the directory.
                try refuseIfNotPermitted(request.changes, by: person, before: before, after: before)
                throw ProtocolError(.invalidDirectoryChange, error.description)
            }
            try refuseIfNotPermitted(request.changes, by: person, before: before, after: after)
            let summaries = request.changes.map(\.summary)
            if request.dryRun { return DirectoryChangeResult(revision: directoryRevision, dryRun: true, changes: summaries) }
            let audit = summaries.map { AuditEntry(at: now, actor: person.id.rawValue, action: .directory, detail: $0) }
            switch save(after, audit: audit, now: now) {
            case .saved(let revision):
                logger.notice("directory changed", metadata: ["by": "\(person.id)", "changes": "\(summaries.count)", "revision": "\(revision)"])
                return DirectoryChangeResult(revision: revision, dryRun: false, changes: summaries)
            case .changedMeanwhile:
                continue
            case .failed(let error):
                throw error
            }
        }
        throw ProtocolError(.storeUnavailable, "the directory kept changing while this change was made; nothing was saved. Try again")
    }

    private func refuseIfNotPermitted(
        _ changes: [DirectoryChange], by person: Directory.Person, before: Directory, after: Directory
    ) throws(ProtocolError) {
        if let refusal = AccessPolicy.mayChange(changes, asker: person, before: before, after: after) {
            throw ProtocolError(.notPermitted, refusal.index.map { "changes[\($0)]: \(refusal.reason)" } ?? refusal.reason)
        }
    }

    enum DirectorySave {
        case saved(Int64)
        /// Another broker saved a revision first; this one has now adopted it.
        case changedMeanwhile
        case failed(ProtocolError)
    }

    /// Saves `directory` as the next revision and, once saved, serves it.
    func save(_ new: Directory, audit: [AuditEntry], usingCode code: String? = nil, now: Date) -> DirectorySave {
        let index: DirectoryIndex
        do { index = try DirectoryIndex(new) } catch { return .failed(ProtocolError(.invalidDirectoryChange, error.description)) }
        do {
            let revision = try store.saveDirectory(new, after: directoryRevision, audit: audit, usingCode: code, at: now)
            adopt(index, revision: revision)
            return .saved(revision)
        } catch DirectoryStoreError.changedMeanwhile {
            reloadDirectoryFromStore()
            return .changedMeanwhile
        } catch DirectoryStoreError.codeUsed {
            return .failed(ProtocolError(.enrolmentRefused, "this enrolment code has been used; ask your administrator for a new one"))
        } catch {
            vitals.store(healthy: false, error: "\(error)")
            return .failed(ProtocolError(.storeUnavailable, "the broker could not save the directory; nothing was changed. Retry"))
        }
    }

    /// Serves `index` from now on: routing, the ZAP handler and every session. A session whose
    /// key no longer belongs to its person ends at once; subscriptions the person's new
    /// roles and teams no longer allow are dropped.
    func adopt(_ index: DirectoryIndex, revision: Int64) {
        directory = index
        directoryRevision = revision
        directorySource?.publish(index)
        sessions.actFor(index.directory)
        endRevokedSessions()
        for session in sessions.withSubscriptions {
            guard let person = index.person(session.person) else { continue }
            let allowed = subscriptionRules.patterns(for: person, in: index)
            let kept = session.subscriptions.filter { pattern in allowed.contains { pattern.isCovered(by: $0) } }
            if kept.count != session.subscriptions.count { sessions[session.routingID]?.subscriptions = kept }
        }
        sessions.wakeEveryone()
        logger.info("directory adopted", metadata: ["revision": "\(revision)", "people": "\(index.directory.people.count)"])
    }

    /// Another broker changed the directory: read it from the store.
    func reloadDirectoryFromStore() {
        do {
            guard let stored = try store.storedDirectory(), stored.revision != directoryRevision else { return }
            adopt(try DirectoryIndex(stored.directory), revision: stored.revision)
        } catch {
            logger.error("could not read the directory from the store; serving the one held", metadata: ["error": "\(error)"])
        }
    }

    /// An operator's import (SIGHUP, `BrokerServer.reload`): saved as the next revision,
    /// whatever the store holds, as the operator asked.
    func saveImportedDirectory(_ index: DirectoryIndex) -> Bool {
        let now = configuration.clock()
        do {
            let current = try store.storedDirectory()?.revision
            let revision = try store.saveDirectory(
                index.directory, after: current,
                audit: [AuditEntry(at: now, actor: "operator", action: .directory, detail: "directory imported from a file")],
                usingCode: nil, at: now)
            adopt(index, revision: revision)
            return true
        } catch {
            logger.error("could not save the imported directory; will try again", metadata: ["error": "\(error)"])
            return false
        }
    }

    // MARK: Enrolment

    func issueEnrolmentCode(_ request: EnrolmentIssue, by admin: Directory.Person) throws(ProtocolError) -> EnrolmentCodeIssued {
        guard let person = directory.person(request.person) else {
            if let refusal = AccessPolicy.mayChange([], asker: admin, before: directory.directory, after: directory.directory) {
                throw ProtocolError(.notPermitted, refusal.reason)
            }
            throw ProtocolError(.unknownAddress, "person:\(request.person): no such person in the directory (add them first)")
        }
        if let refusal = AccessPolicy.mayEnrol(person, asker: admin, in: directory.directory) {
            throw ProtocolError(.notPermitted, refusal.reason)
        }
        guard !person.roles.contains(.carer) else {
            throw ProtocolError(
                .notPermitted, "person:\(person.id) is a carer: carers use the web page, invited by their care co-ordinator (carerelay carer invite)")
        }
        let now = configuration.clock()
        let code = InvitationCode.generate()
        let expires = now.addingTimeInterval(Double(request.hours ?? configuration.enrolmentHours) * 3_600)
        let record = EnrolmentCode(hash: InvitationCode.hash(code), person: person.id, issuedBy: admin.id, issuedAt: now, expiresAt: expires)
        do {
            try store.issueEnrolmentCode(
                record,
                audit: [
                    AuditEntry(
                        at: now, actor: admin.id.rawValue, action: .directory,
                        detail: "enrolment code issued for \(person.id), until \(Timestamp(expires).text)")
                ])
        } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not store the code; nothing was issued. Retry")
        }
        return EnrolmentCodeIssued(person: person.id, name: person.name, code: code, expires: expires)
    }

    /// A key not yet in the directory presents a code: the key becomes the person's. Wrong
    /// codes are counted broker-wide (`EnrolmentAttempts`), so guessing is throttled.
    func enrol(_ request: EnrolmentRequest, key: String) throws(ProtocolError) -> Enrolment {
        let now = configuration.clock()
        if let wait = enrolmentAttempts.refusal(at: now) {
            throw ProtocolError(.throttled, "too many wrong enrolment codes have been tried; try again in \(wait) seconds")
        }
        let hash = InvitationCode.hash(request.code)
        let code: EnrolmentCode?
        do { code = try store.enrolmentCode(hash: hash) } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not check the code; nothing was changed. Retry")
        }
        guard let code, code.usedAt == nil, code.expiresAt > now, let person = directory.person(code.person) else {
            enrolmentAttempts.failed(at: now)
            let why =
                if code == nil { "this code is not one the broker issued: check it for typing mistakes" } else if code?.usedAt != nil {
                    "this code has been used"
                } else if let code, code.expiresAt <= now { "this code expired at \(Timestamp(code.expiresAt).text)" } else {
                    "the person this code was issued for is no longer in the directory"
                }
            throw ProtocolError(.enrolmentRefused, "\(why); ask your administrator for a new code")
        }
        var after = directory.directory
        guard let index = after.people.firstIndex(where: { $0.id == person.id }) else {
            throw ProtocolError(.enrolmentRefused, "the person this code was issued for is no longer in the directory")
        }
        after.people[index].key = key
        let audit = AuditEntry(
            at: now, actor: person.id.rawValue, action: .directory,
            detail: "\(person.id) enrolled a key with a code issued by \(code.issuedBy)\(person.key == nil ? "" : ", replacing the key they had")")
        for _ in 0..<3 {
            switch save(after, audit: [audit], usingCode: hash, now: now) {
            case .saved:
                logger.notice("enrolled", metadata: ["person": "\(person.id)"])
                return Enrolment(person: person.id, name: person.name, roles: person.roles, teams: person.teams)
            case .changedMeanwhile:
                after = directory.directory
                guard let index = after.people.firstIndex(where: { $0.id == person.id }) else { break }
                after.people[index].key = key
            case .failed(let error):
                throw error
            }
        }
        throw ProtocolError(.storeUnavailable, "the directory kept changing while enrolling; nothing was saved. Try the same code again")
    }
}

extension BrokerCore {
    /// `enrol` from a key already in the directory: the same code from the key it enrolled is
    /// answered again (the first answer was lost), anything else refused.
    func enrolledAlready(_ request: EnrolmentRequest, person: Directory.Person) throws(ProtocolError) -> Enrolment {
        let code: EnrolmentCode?
        do { code = try store.enrolmentCode(hash: InvitationCode.hash(request.code)) } catch {
            throw ProtocolError(.storeUnavailable, "the broker could not check the code; nothing was changed. Retry")
        }
        guard let code, code.person == person.id, code.usedAt != nil else {
            throw ProtocolError(
                .enrolmentRefused,
                "this connection's key already belongs to \(person.id): enrol from a new key (carerelay enrol makes one), or ask your administrator to revoke this one"
            )
        }
        return Enrolment(person: person.id, name: person.name, roles: person.roles, teams: person.teams)
    }
}

/// Wrong enrolment codes, broker-wide: after `limit` in `window` seconds, every `enrol` is
/// answered `429` until the oldest of them is `window` old. A code is 12 characters from 31
/// (about 59 bits), so at this rate a guess succeeds in far longer than any code lives; the
/// cost is that a flood of wrong codes pauses enrolment for everyone for a minute.
struct EnrolmentAttempts {
    var limit = 10
    var window: TimeInterval = 60
    private var failures: [Date] = []

    mutating func failed(at now: Date) {
        failures.removeAll { now.timeIntervalSince($0) >= window }
        failures.append(now)
    }

    /// Seconds to wait, or nil when an attempt may be made now.
    mutating func refusal(at now: Date) -> Int? {
        failures.removeAll { now.timeIntervalSince($0) >= window }
        guard failures.count >= limit, let oldest = failures.first else { return nil }
        return max(1, Int((window - now.timeIntervalSince(oldest)).rounded(.up)))
    }
}
