import CareRelayModel
import CareRelayProtocol
import Crypto
import Foundation
import GRDB

/// What the bridge keeps: invitations (as hashes only), sessions (as hashes only), and every
/// message the broker delivered for each carer, so that what arrived while a carer was away is
/// there when they come back. SQLite through GRDB, WAL mode.
public final class BridgeStore: Sendable {
    let db: DatabasePool

    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        db = try DatabasePool(path: path, configuration: config)
        try Self.migrator.migrate(db)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE invite (
                        codeHash TEXT PRIMARY KEY NOT NULL,
                        carer TEXT NOT NULL,
                        patients TEXT NOT NULL,
                        expires REAL NOT NULL,
                        issuedBy TEXT NOT NULL,
                        message TEXT NOT NULL,
                        receivedAt REAL NOT NULL,
                        usedAt REAL
                    );
                    CREATE TABLE carerPatient (
                        carer TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        coordinator TEXT NOT NULL,
                        PRIMARY KEY (carer, patient)
                    );
                    CREATE TABLE session (
                        tokenHash TEXT PRIMARY KEY NOT NULL,
                        carer TEXT NOT NULL,
                        csrf TEXT NOT NULL,
                        createdAt REAL NOT NULL,
                        expiresAt REAL NOT NULL
                    );
                    CREATE TABLE delivered (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        sender TEXT NOT NULL,
                        senderName TEXT NOT NULL,
                        patient TEXT,
                        sentAt TEXT NOT NULL,
                        header BLOB NOT NULL,
                        body BLOB NOT NULL,
                        storedAt REAL NOT NULL,
                        UNIQUE (id, recipient)
                    );
                    CREATE INDEX deliveredByCarer ON delivered (recipient, patient, kind, seq);
                    CREATE TABLE checkin (
                        key TEXT PRIMARY KEY NOT NULL,
                        carer TEXT NOT NULL,
                        patient TEXT NOT NULL,
                        message TEXT NOT NULL,
                        recipient TEXT NOT NULL,
                        urgency TEXT NOT NULL,
                        sentAt REAL NOT NULL
                    );
                    """)
        }
        // What the carer wrote, so she can read her past check-ins again (older rows have none).
        migrator.registerMigration("v2-checkin-body") { db in
            try db.execute(sql: "ALTER TABLE checkin ADD COLUMN body BLOB")
        }
        return migrator
    }

    // MARK: Invitations

    public enum InviteProblem: Error, Equatable, Sendable {
        case unknown, used, expired
    }

    /// Stores an invitation received from the broker. A second copy of the same hash is ignored.
    public func storeInvite(_ invite: CarerInvite, message: String, receivedAt: Date) throws {
        let expires = invite.expires.date ?? receivedAt
        try db.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO invite (codeHash, carer, patients, expires, issuedBy, message, receivedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    invite.codeHash, invite.carer.rawValue, invite.patients.map(\.digits).joined(separator: ","),
                    expires.timeIntervalSince1970, invite.issuedBy.rawValue, message, receivedAt.timeIntervalSince1970,
                ])
        }
    }

    /// Uses an invitation code once: checks it is known, unused and unexpired, marks it used,
    /// links the carer to the patients it names, and opens a session, all in one transaction.
    public func redeem(codeHash: String, now: Date, sessionLifetime: TimeInterval) throws -> Result<NewSession, InviteProblem> {
        try db.write { db -> Result<NewSession, InviteProblem> in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM invite WHERE codeHash = ?", arguments: [codeHash]) else {
                return .failure(.unknown)
            }
            if (row["usedAt"] as Double?) != nil { return .failure(.used) }
            if (row["expires"] as Double) <= now.timeIntervalSince1970 { return .failure(.expired) }
            try db.execute(
                sql: "UPDATE invite SET usedAt = ? WHERE codeHash = ? AND usedAt IS NULL",
                arguments: [now.timeIntervalSince1970, codeHash])
            guard db.changesCount == 1 else { return .failure(.used) }
            let carer: String = row["carer"]
            let patients = (row["patients"] as String).split(separator: ",").map(String.init)
            for patient in patients {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO carerPatient (carer, patient, coordinator) VALUES (?, ?, ?)",
                    arguments: [carer, patient, row["issuedBy"] as String])
            }
            return .success(try Self.openSession(db, carer: carer, now: now, lifetime: sessionLifetime))
        }
    }

    // MARK: Sessions

    public struct NewSession: Sendable {
        /// Goes into the cookie; only its hash is stored.
        public let token: String
        public let session: Session
    }

    public struct Session: Sendable, Equatable {
        public let carer: PersonID
        public let csrf: String
        public let expiresAt: Date
    }

    static func openSession(_ db: Database, carer: String, now: Date, lifetime: TimeInterval) throws -> NewSession {
        let token = Tokens.random()
        let csrf = Tokens.random()
        let expires = now.addingTimeInterval(lifetime)
        try db.execute(
            sql: "INSERT INTO session (tokenHash, carer, csrf, createdAt, expiresAt) VALUES (?, ?, ?, ?, ?)",
            arguments: [Tokens.hash(token), carer, csrf, now.timeIntervalSince1970, expires.timeIntervalSince1970])
        // Old sessions go as new ones come.
        try db.execute(sql: "DELETE FROM session WHERE expiresAt <= ?", arguments: [now.timeIntervalSince1970])
        return NewSession(token: token, session: Session(carer: PersonID(carer), csrf: csrf, expiresAt: expires))
    }

    public func session(token: String, now: Date) throws -> Session? {
        try db.read { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT carer, csrf, expiresAt FROM session WHERE tokenHash = ?",
                    arguments: [Tokens.hash(token)]),
                (row["expiresAt"] as Double) > now.timeIntervalSince1970
            else { return nil }
            return Session(
                carer: PersonID(row["carer"] as String), csrf: row["csrf"],
                expiresAt: Date(timeIntervalSince1970: row["expiresAt"]))
        }
    }

    public func endSession(token: String) throws {
        try db.write { db in
            try db.execute(sql: "DELETE FROM session WHERE tokenHash = ?", arguments: [Tokens.hash(token)])
        }
    }

    // MARK: Delivered messages

    /// Stores one delivery. Returns its sequence number here, or nil when it was already stored
    /// (a redelivery).
    @discardableResult
    public func storeDelivery(_ header: DeliverHeader, body: [UInt8], now: Date) throws -> Int64? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerBytes = try encoder.encode(header)
        return try db.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO delivered (id, recipient, kind, sender, senderName, patient, sentAt, header, body, storedAt)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    header.id, header.recipient.rawValue, header.kind.rawValue, header.from.rawValue, header.fromName,
                    header.patient?.digits, header.sentAt, headerBytes, Data(body), now.timeIntervalSince1970,
                ])
            return db.changesCount == 1 ? db.lastInsertedRowID : nil
        }
    }

    /// Takes back a copy the broker revoked (CRP.md section 10.5): deleted whole, or kept
    /// without the care plan sections named. A copy whose parts cannot be read is deleted whole
    /// rather than kept with what may be the revoked part.
    public func revoke(message id: String, recipient: PersonID, parts: [String]?) throws {
        try db.write { db in
            let key: StatementArguments = [id, recipient.rawValue]
            if let parts,
                let body = try Data.fetchOne(db, sql: "SELECT body FROM delivered WHERE id = ? AND recipient = ?", arguments: key),
                let plan = try? CarePlanShare.decode(json: [UInt8](body))
            {
                let kept = plan.removingSections { parts.contains($0.id) }
                try db.execute(
                    sql: "UPDATE delivered SET body = ? WHERE id = ? AND recipient = ?", arguments: [Data(kept.encode()), id, recipient.rawValue])
            } else {
                try db.execute(sql: "DELETE FROM delivered WHERE id = ? AND recipient = ?", arguments: key)
            }
        }
    }

    public struct StoredMessage: Sendable {
        public let seq: Int64
        public let header: DeliverHeader
        public let body: [UInt8]
    }

    /// What the broker delivered for a carer about a patient, oldest first.
    public func messages(for carer: PersonID, patient: NHSNumber? = nil, kind: MessageKind? = nil) throws -> [StoredMessage] {
        var sql = "SELECT seq, header, body FROM delivered WHERE recipient = ?"
        var arguments: StatementArguments = [carer.rawValue]
        if let patient { sql += " AND patient = ?"; arguments += [patient.digits] }
        if let kind { sql += " AND kind = ?"; arguments += [kind.rawValue] }
        sql += " ORDER BY seq"
        let rows = try db.read { db in try Row.fetchAll(db, sql: sql, arguments: arguments) }
        let decoder = JSONDecoder()
        return rows.compactMap { row in
            guard let header = try? decoder.decode(DeliverHeader.self, from: row["header"] as Data) else { return nil }
            return StoredMessage(seq: row["seq"], header: header, body: [UInt8](row["body"] as Data))
        }
    }

    /// The people a carer may look at here: those their invitations named, and those the broker
    /// has delivered something about to them (consent was decided there).
    public func patients(of carer: PersonID) throws -> [NHSNumber] {
        let texts = try db.read { db in
            try String.fetchAll(
                db,
                sql: """
                    SELECT patient FROM carerPatient WHERE carer = ?
                    UNION SELECT patient FROM delivered WHERE recipient = ? AND patient IS NOT NULL
                    ORDER BY 1
                    """, arguments: [carer.rawValue, carer.rawValue])
        }
        return texts.compactMap { try? NHSNumber(validating: $0) }
    }

    /// The co-ordinator who invited this carer for this patient, if any.
    public func coordinator(carer: PersonID, patient: NHSNumber) throws -> PersonID? {
        try db.read { db in
            try String.fetchOne(
                db, sql: "SELECT coordinator FROM carerPatient WHERE carer = ? AND patient = ?",
                arguments: [carer.rawValue, patient.digits]
            ).map(PersonID.init)
        }
    }

    // MARK: Check-ins sent

    public func recordCheckIn(
        key: String, carer: PersonID, patient: NHSNumber, message: String, recipient: String,
        urgency: String, body: [UInt8], now: Date
    ) throws {
        try db.write { db in
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO checkin (key, carer, patient, message, recipient, urgency, sentAt, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [key, carer.rawValue, patient.digits, message, recipient, urgency, now.timeIntervalSince1970, Data(body)])
        }
    }

    public struct SentCheckIn: Sendable {
        /// The broker's message id.
        public let message: String
        public let sentAt: Date
        /// What she wrote; nil for a check-in kept before the bridge kept bodies.
        public let body: CarerCheckIn?
    }

    /// A carer's check-ins about a patient, newest first.
    public func checkIns(carer: PersonID, patient: NHSNumber) throws -> [SentCheckIn] {
        try db.read { db in
            try Row.fetchAll(
                db, sql: "SELECT message, sentAt, body FROM checkin WHERE carer = ? AND patient = ? ORDER BY sentAt DESC",
                arguments: [carer.rawValue, patient.digits]
            ).map { row in
                let body = (row["body"] as Data?).flatMap { try? CarerCheckIn.decode(json: [UInt8]($0)) }
                return SentCheckIn(message: row["message"], sentAt: Date(timeIntervalSince1970: row["sentAt"]), body: body)
            }
        }
    }

    public func checkInCount(carer: PersonID, patient: NHSNumber) throws -> Int {
        try db.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM checkin WHERE carer = ? AND patient = ?",
                arguments: [carer.rawValue, patient.digits]) ?? 0
        }
    }
}

/// Random tokens and hashes.
public enum Tokens {
    /// 32 random bytes, base64url without padding.
    public static func random(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let data = Data((0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) })
        return data.base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Lower-case hex SHA-256 of the UTF-8 text.
    public static func hash(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Constant-time comparison.
    public static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in x.indices { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
