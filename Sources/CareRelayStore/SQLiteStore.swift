import CareRelayModel
import Foundation
import GRDB

/// The embedded store: SQLite through GRDB, in WAL mode with full sync, so a transaction that
/// has committed survives a crash or power loss. The broker owns one instance on its loop
/// thread; every write that must be durable before an acknowledgement goes through one
/// transaction per batch ("group commit").
/// Not `Sendable`: an instance belongs to the thread that opened it (`auditHead` is a plain
/// `var`).
public final class SQLiteStore: MessageStore {
    private let db: DatabaseQueue
    /// The newest audit row; the next row chains to it. Kept in memory because the store is
    /// the only writer, and advanced only after a transaction commits.
    private var auditHead: AuditChain.Head
    public let path: String
    /// Held while this store is open: a second broker, or a restore, on the same file is
    /// refused instead of corrupting the chain head this instance keeps in memory.
    private let ownership: StoreLock

    public init(path: String) throws {
        self.path = path
        ownership = try StoreLock(storePath: path)
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            // FULL: the WAL is synced at every commit, so "accepted" means on disk.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // 32 MiB of pages (SQLite's default is 2 MiB): referral ids are random, so each
            // referral inserts into its indexes (message id, referral, audit by message) at
            // random places, and a small cache reads most of those pages back from the file.
            try db.execute(sql: "PRAGMA cache_size = -32768")
        }
        db = try DatabaseQueue(path: path, configuration: config)
        try Self.migrator.migrate(db)
        auditHead =
            try db.read { db in
                try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").map {
                    AuditChain.Head(seq: $0["seq"], hash: [UInt8]($0["hash"] as Data))
                }
            } ?? AuditChain.genesis
    }

    /// One transaction. `synced` commits wait for the disk (fsync of the WAL): used for
    /// everything the broker acknowledges. Unsynced commits (deliveries sent, confirmations)
    /// survive a crash of the process and are made durable by the next synced commit; a power
    /// failure can lose only those last unsynced commits, which means a redelivery, never a
    /// lost message. This keeps one fsync on the path of a message instead of three.
    private func write<T>(synced: Bool, _ body: (Database) throws -> T) throws -> T {
        if synced { return try db.write(body) }
        return try db.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute()
            defer { try? db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute() }
            var result: Result<T, any Error>?
            try db.inTransaction {
                result = Result { try body(db) }
                if case .failure = result { return .rollback }
                return .commit
            }
            guard let result else { throw StoreError.unavailable("transaction did not run") }
            return try result.get()
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE message (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        sender TEXT NOT NULL,
                        idempotency_key TEXT NOT NULL,
                        body_hash BLOB NOT NULL,
                        envelope BLOB NOT NULL,
                        patient TEXT,
                        correlation TEXT,
                        body BLOB NOT NULL,
                        accepted_at REAL NOT NULL,
                        UNIQUE (sender, idempotency_key)
                    );
                    CREATE INDEX message_patient ON message(patient);
                    CREATE INDEX message_correlation ON message(correlation);
                    CREATE TABLE delivery (
                        message_seq INTEGER NOT NULL REFERENCES message(seq),
                        recipient TEXT NOT NULL,
                        state TEXT NOT NULL,
                        decision TEXT NOT NULL,
                        rule TEXT NOT NULL,
                        reason TEXT,
                        topic TEXT,
                        delivered_at REAL,
                        confirmed_at REAL,
                        PRIMARY KEY (message_seq, recipient)
                    ) WITHOUT ROWID;
                    CREATE INDEX delivery_mailbox ON delivery(recipient, state, message_seq);
                    CREATE TABLE referral (
                        message_id TEXT PRIMARY KEY,
                        record TEXT NOT NULL,
                        status TEXT NOT NULL,
                        deadline REAL,
                        escalated INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE INDEX referral_deadline ON referral(escalated, status, deadline);
                    CREATE TABLE care_team (
                        patient TEXT NOT NULL,
                        member TEXT NOT NULL,
                        added_by TEXT NOT NULL,
                        added_at REAL NOT NULL,
                        PRIMARY KEY (patient, member)
                    ) WITHOUT ROWID;
                    CREATE TABLE audit (
                        seq INTEGER PRIMARY KEY,
                        at_ms INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        patient TEXT,
                        message TEXT,
                        recipient TEXT,
                        decision TEXT,
                        rule TEXT,
                        detail TEXT,
                        hash BLOB NOT NULL
                    );
                    CREATE INDEX audit_patient ON audit(patient);
                    CREATE INDEX audit_message ON audit(message);
                    CREATE INDEX audit_recipient ON audit(recipient);
                    """)
        }
        // Versioned migrations run in order at start-up, each once; a store written by an
        // older broker is brought up to date before anything else touches it.
        migrator.registerMigration("v2-pending-deliveries") { db in
            // Operators' figures (undelivered count, oldest waiting) without a full scan.
            try db.execute(sql: "CREATE INDEX delivery_pending ON delivery(message_seq) WHERE state = 'pending'")
        }
        migrator.registerMigration("v3-consent-records") { db in
            // The consent registry is rebuilt from consent messages at every start-up. Without
            // this index that read scanned the whole message table, bodies included: about a
            // second per million stored messages before the broker listened (carerelay-bench
            // --only queued). Partial, so it holds consent messages only.
            try db.execute(sql: "CREATE INDEX message_consent ON message(seq) WHERE kind = 'consent'")
        }
        migrator.registerMigration("v4-referral-team") { db in
            // The team a referral waits with, as a column as in PostgreSQL (StoreSchema): the
            // intake figures group by it.
            try db.execute(
                sql: """
                    ALTER TABLE referral ADD COLUMN team TEXT;
                    UPDATE referral SET team = json_extract(record, '$.team');
                    """)
        }
        migrator.registerMigration("v5-directory") { db in
            // The directory lives in the store, changed by commands (CRP.md section 13), and
            // enrolment codes by their hashes only.
            try db.execute(
                sql: """
                    CREATE TABLE directory (
                        only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
                        revision INTEGER NOT NULL,
                        document BLOB NOT NULL,
                        changed_at REAL NOT NULL
                    );
                    CREATE TABLE enrolment_code (
                        hash TEXT PRIMARY KEY,
                        person TEXT NOT NULL,
                        issued_by TEXT NOT NULL,
                        issued_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        used_at REAL
                    );
                    CREATE INDEX enrolment_code_person ON enrolment_code(person);
                    """)
        }
        migrator.registerMigration("v6-notifications") { db in
            // The outbox of emails, texts and webhook calls (NotificationOutbox), written with
            // the message that causes each.
            try db.execute(sql: NotificationColumns.sqliteTable)
        }
        migrator.registerMigration("v7-oncall") { db in
            // On-call chains for urgent work nobody has picked up (OnCallRegister).
            try db.execute(sql: OnCallColumns.sqliteTable)
        }
        migrator.registerMigration("v8-notification-message") { db in
            // Reminders are cancelled by the message they are about, when a referral is taken.
            try db.execute(sql: "CREATE INDEX notification_message ON notification(message)")
        }
        return migrator
    }

    // MARK: Accepting messages

    /// Stores a batch of messages, their planned deliveries, referral records and audit lines,
    /// and the confirmations read in the same pass, in one synced transaction. Returns one
    /// outcome per message, in order.
    public func accept(_ batch: [NewMessage], confirming confirmations: [DeliveryConfirmation] = [], at now: Date = Date()) throws -> [StoreOutcome] {
        var head = auditHead
        let outcomes = try write(synced: true) { db -> [StoreOutcome] in
            for confirmation in confirmations {
                _ = try Self.confirm(confirmation.recipient, ids: confirmation.ids, at: now, db)
            }
            guard !batch.isEmpty else { return [] }
            // Read inside the write transaction: what the rules see is what is stored.
            var referrals: [String: ReferralRecord] = [:]
            for id in BatchPlan.referralsRead(by: batch) { referrals[id] = try Self.referral(id: id, db) }
            let plan = BatchPlan(batch, earlier: try Self.earlierSends(batch.map { ($0.sender, $0.key) }, db), referrals: referrals)
            var sequences: [Int64] = []
            sequences.reserveCapacity(plan.toStore.count)
            for message in plan.toStore.map({ batch[$0] }) {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO message (id, kind, sender, idempotency_key, body_hash, envelope, patient, correlation, body, accepted_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """
                ).execute(arguments: [
                    message.id, message.kind.rawValue, message.sender.rawValue, message.key,
                    Data(message.bodyHash), Data(message.envelope), message.patient?.digits,
                    message.correlation, Data(message.body), message.acceptedAt.timeIntervalSince1970,
                ])
                let seq = db.lastInsertedRowID
                for delivery in message.deliveries {
                    try db.cachedStatement(
                        sql: """
                            INSERT OR IGNORE INTO delivery (message_seq, recipient, state, decision, rule, reason, topic)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            """
                    ).execute(arguments: [
                        seq, delivery.recipient.rawValue,
                        delivery.decision == .withheld ? "withheld" : "pending",
                        delivery.decision.rawValue, delivery.rule, delivery.reason, delivery.topic,
                    ])
                }
                if let referral = message.referral {
                    try Self.save(referral, db)
                }
                if let patient = message.patient {
                    for member in message.careTeamLinks {
                        try db.cachedStatement(
                            sql: """
                                INSERT OR IGNORE INTO care_team (patient, member, added_by, added_at) VALUES (?, ?, ?, ?)
                                """
                        ).execute(arguments: [patient.digits, member.description, message.sender.rawValue, message.acceptedAt.timeIntervalSince1970])
                    }
                }
                for entry in message.audit {
                    head = try Self.append(entry, after: head, db)
                }
                // Reminders made moot first: a new agenda version plans its reminders again.
                for subject in message.cancelsReminders {
                    try db.execute(sql: NotificationColumns.sqliteCancel, arguments: [subject])
                }
                for notification in message.notifications {
                    try db.cachedStatement(sql: NotificationColumns.sqliteInsert).execute(
                        arguments: StatementArguments(NotificationColumns.values(notification)))
                }
                try Self.startOnCall(message.onCall, db)
                sequences.append(seq)
            }
            return try plan.outcomes(storedAs: sequences)
        }
        auditHead = head
        return outcomes
    }

    /// What each (sender, key) pair already sent, if anything: its id, content fingerprint
    /// and the recipients' outcomes, so a resend is answered exactly as the first send was.
    /// One read for a whole batch.
    public func earlierSends(_ keys: [(sender: PersonID, key: String)]) throws -> [String: EarlierSend] {
        guard !keys.isEmpty else { return [:] }
        return try db.read { db in try Self.earlierSends(keys, db) }
    }

    private static func earlierSends(_ keys: [(sender: PersonID, key: String)], _ db: Database) throws -> [String: EarlierSend] {
        var found: [String: EarlierSend] = [:]
        let statement = try db.cachedStatement(sql: "SELECT seq, id, body_hash FROM message WHERE sender = ? AND idempotency_key = ?")
        for (sender, key) in keys {
            guard let row = try Row.fetchOne(statement, arguments: [sender.rawValue, key]) else { continue }
            found[idempotencyKey(sender, key)] = EarlierSend(
                id: row["id"], fingerprint: [UInt8](row["body_hash"] as Data), deliveries: try Self.deliveries(db, seq: row["seq"]))
        }
        return found
    }

    private static func deliveries(_ db: Database, seq: Int64) throws -> [PlannedDelivery] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT recipient, decision, rule, reason, topic FROM delivery WHERE message_seq = ? ORDER BY recipient
                    """), arguments: [seq]
        ).map { row in
            PlannedDelivery(
                recipient: PersonID(row["recipient"]),
                decision: PlannedDelivery.Decision(rawValue: row["decision"]) ?? .deliver,
                rule: row["rule"], reason: row["reason"], topic: row["topic"])
        }
    }

    // MARK: Mailboxes

    /// Undelivered messages for one recipient after sequence `after`, oldest first, skipping
    /// those already in flight.
    public func mailbox(for recipient: PersonID, after: Int64 = 0, excluding inFlight: Set<Int64>, limit: Int) throws -> [MailItem] {
        guard limit > 0 else { return [] }
        return try db.read { db in
            let rows = try Row.fetchCursor(
                db.cachedStatement(
                    sql: """
                        SELECT m.seq, m.id, m.kind, m.sender, m.envelope, m.patient, m.body, m.accepted_at, d.topic
                        FROM delivery d JOIN message m ON m.seq = d.message_seq
                        WHERE d.recipient = ? AND d.state = 'pending' AND d.message_seq > ?
                        ORDER BY d.message_seq
                        """), arguments: [recipient.rawValue, after])
            var items: [MailItem] = []
            while let row = try rows.next(), items.count < limit {
                let seq: Int64 = row["seq"]
                guard !inFlight.contains(seq),
                    let item = MailItem(
                        seq: seq, id: row["id"], kind: row["kind"], sender: row["sender"], envelope: [UInt8](row["envelope"] as Data),
                        patient: row["patient"], body: [UInt8](row["body"] as Data), acceptedAt: row["accepted_at"], recipient: recipient,
                        topic: row["topic"])
                else { continue }
                items.append(item)
            }
            return items
        }
    }

    /// Records that deliveries went out (with their audit lines), and withholds those the
    /// delivery-time consent check stopped.
    public func recordDeliveries(
        sent: [(seq: Int64, recipient: PersonID)], withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)], audit: [AuditEntry],
        at now: Date
    ) throws {
        guard !sent.isEmpty || !withheld.isEmpty || !audit.isEmpty else { return }
        var head = auditHead
        try write(synced: false) { db in
            for item in sent {
                try db.cachedStatement(
                    sql: """
                        UPDATE delivery SET delivered_at = COALESCE(delivered_at, ?) WHERE message_seq = ? AND recipient = ?
                        """
                ).execute(arguments: [now.timeIntervalSince1970, item.seq, item.recipient.rawValue])
            }
            for item in withheld {
                try db.cachedStatement(
                    sql: """
                        UPDATE delivery SET state = 'withheld', decision = 'withheld', rule = ?, reason = ?
                        WHERE message_seq = ? AND recipient = ? AND state = 'pending'
                        """
                ).execute(arguments: [item.rule, item.reason, item.seq, item.recipient.rawValue])
            }
            for entry in audit {
                head = try Self.append(entry, after: head, db)
            }
        }
        auditHead = head
    }

    public func messages(about patient: NHSNumber, kind: MessageKind) throws -> [StoredMessage] {
        try db.read { db in
            try Row.fetchAll(
                db.cachedStatement(sql: "SELECT * FROM message WHERE patient = ? AND kind = ? ORDER BY seq"),
                arguments: [patient.digits, kind.rawValue]
            ).compactMap(Self.storedMessage)
        }
    }

    public func deliveredCopies(about patient: NHSNumber) throws -> [MailItem] {
        try db.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT m.seq, m.id, m.kind, m.sender, m.envelope, m.patient, m.body, m.accepted_at, d.recipient, d.topic
                        FROM message m JOIN delivery d ON d.message_seq = m.seq
                        WHERE m.patient = ? AND d.delivered_at IS NOT NULL AND d.state IN ('pending', 'confirmed')
                        ORDER BY m.seq, d.recipient
                        """), arguments: [patient.digits]
            ).compactMap { row in
                MailItem(
                    seq: row["seq"], id: row["id"], kind: row["kind"], sender: row["sender"], envelope: [UInt8](row["envelope"] as Data),
                    patient: row["patient"], body: [UInt8](row["body"] as Data), acceptedAt: row["accepted_at"],
                    recipient: PersonID(row["recipient"]),
                    topic: row["topic"])
            }
        }
    }

    /// Marks deliveries confirmed by their recipient. Returns the sequence numbers confirmed;
    /// ids the recipient does not have pending are ignored (a repeated confirm is harmless).
    public func confirm(recipient: PersonID, ids: [String], at now: Date) throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        return try write(synced: false) { db in try Self.confirm(recipient, ids: ids, at: now, db) }
    }

    private static func confirm(_ recipient: PersonID, ids: [String], at now: Date, _ db: Database) throws -> [Int64] {
        var confirmed: [Int64] = []
        for id in ids {
            guard let seq = try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM message WHERE id = ?"), arguments: [id]) else { continue }
            try db.cachedStatement(
                sql: """
                    UPDATE delivery SET state = 'confirmed', confirmed_at = ?, delivered_at = COALESCE(delivered_at, ?)
                    WHERE message_seq = ? AND recipient = ? AND state = 'pending'
                    """
            ).execute(arguments: [now.timeIntervalSince1970, now.timeIntervalSince1970, seq, recipient.rawValue])
            if db.changesCount > 0 { confirmed.append(seq) }
        }
        return confirmed
    }

    // MARK: Messages and referrals

    var records: DatabaseQueue { db }

    // The lookups, for the broker's connection and for a reader's (`StoreInspector`).

    static func message(id: String, _ db: Database) throws -> StoredMessage? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM message WHERE id = ?"), arguments: [id]).flatMap(storedMessage)
    }

    /// A message from a row holding the message table's columns.
    static func storedMessage(_ row: Row) -> StoredMessage? {
        guard let kind = MessageKind(rawValue: row["kind"]) else { return nil }
        let patient: String? = row["patient"]
        return StoredMessage(
            seq: row["seq"], id: row["id"], kind: kind, sender: PersonID(row["sender"]),
            envelope: [UInt8](row["envelope"] as Data),
            patient: patient.flatMap { try? NHSNumber(validating: $0) },
            body: [UInt8](row["body"] as Data), acceptedAt: Date(timeIntervalSince1970: row["accepted_at"]))
    }

    public func referral(id: String) throws -> ReferralRecord? {
        try db.read { db in try Self.referral(id: id, db) }
    }

    private static func referral(id: String, _ db: Database) throws -> ReferralRecord? {
        guard let json = try Data.fetchOne(db.cachedStatement(sql: "SELECT record FROM referral WHERE message_id = ?"), arguments: [id]) else {
            return nil
        }
        return try JSONDecoder().decode(ReferralRecord.self, from: json)
    }

    private static func save(_ referral: ReferralRecord, _ db: Database) throws {
        let json = try JSONEncoder().encode(referral)
        try db.cachedStatement(
            sql: """
                INSERT INTO referral (message_id, record, team, status, deadline, escalated) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(message_id) DO UPDATE SET record = excluded.record, team = excluded.team, status = excluded.status,
                    deadline = excluded.deadline, escalated = excluded.escalated
                """
        ).execute(arguments: [
            referral.messageID, json, referral.team?.rawValue, referral.status.rawValue,
            referral.deadline?.timeIntervalSince1970, referral.escalatedAt == nil ? 0 : 1,
        ])
    }

    /// Referrals still waiting to be taken whose response target has passed.
    public func overdueReferrals(at now: Date) throws -> [ReferralRecord] {
        try db.read { db in
            try Data.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT record FROM referral WHERE escalated = 0 AND status = 'sent' AND deadline <= ?
                        """), arguments: [now.timeIntervalSince1970]
            ).map { try JSONDecoder().decode(ReferralRecord.self, from: $0) }
        }
    }

    /// The earliest deadline of a referral still waiting, so the broker knows when to wake.
    public func nextReferralDeadline() throws -> Date? {
        try db.read { db in
            try Double.fetchOne(db, sql: "SELECT MIN(deadline) FROM referral WHERE escalated = 0 AND status = 'sent'")
                .map(Date.init(timeIntervalSince1970:))
        }
    }

    static func tracking(id: String, _ db: Database) throws -> Tracking? {
        guard
            let row = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT seq, kind, sender, accepted_at FROM message WHERE id = ?"), arguments: [id]),
            let kind = MessageKind(rawValue: row["kind"])
        else { return nil }
        let seq: Int64 = row["seq"]
        let recipients = try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT recipient, decision, state, delivered_at, confirmed_at FROM delivery WHERE message_seq = ? ORDER BY recipient
                    """), arguments: [seq]
        ).map { r in
            Tracking.Recipient(
                recipient: r["recipient"], decision: r["decision"], state: r["state"], deliveredAt: r["delivered_at"],
                confirmedAt: r["confirmed_at"])
        }
        let events = try String.fetchAll(db.cachedStatement(sql: "SELECT id FROM message WHERE correlation = ? ORDER BY seq"), arguments: [id])
        return Tracking(
            id: id, kind: kind, sender: PersonID(row["sender"]),
            acceptedAt: Date(timeIntervalSince1970: row["accepted_at"]), recipients: recipients,
            referral: try Self.referral(id: id, db), events: events)
    }

    static func referrals(
        to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int, _ db: Database
    ) throws -> [ReferralEntry] {
        guard !statuses.isEmpty else { return [] }
        let teamMarks = teams.isEmpty ? "NULL" : Array(repeating: "?", count: teams.count).joined(separator: ", ")
        let statusMarks = Array(repeating: "?", count: statuses.count).joined(separator: ", ")
        let sql = """
            SELECT r.record, m.*, d.decision AS own_decision, d.state AS own_state FROM referral r
            JOIN message m ON m.id = r.message_id
            LEFT JOIN delivery d ON d.message_seq = m.seq AND d.recipient = ?
            WHERE r.status IN (\(statusMarks)) AND (r.team IN (\(teamMarks)) OR (r.team IS NULL AND d.recipient IS NOT NULL))
            ORDER BY r.deadline IS NULL, r.deadline, m.seq LIMIT ?
            """
        var arguments: StatementArguments = [person.rawValue]
        arguments += StatementArguments(statuses.map(\.rawValue).sorted())
        arguments += StatementArguments(teams.map(\.rawValue))
        arguments += [limit]
        return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).compactMap { row in
            guard let message = storedMessage(row) else { return nil }
            let record = try JSONDecoder().decode(ReferralRecord.self, from: row["record"] as Data)
            return ReferralEntry(record: record, message: message, ownDecision: row["own_decision"], ownState: row["own_state"])
        }
    }

    static func history(for person: PersonID, kind: MessageKind?, limit: Int, _ db: Database) throws -> [InboxLine] {
        var sql = """
            SELECT m.id, m.kind, m.sender, m.accepted_at, d.state FROM message m
            LEFT JOIN delivery d ON d.message_seq = m.seq AND d.recipient = ?
            WHERE (m.sender = ? OR d.recipient IS NOT NULL)
            """
        var arguments: StatementArguments = [person.rawValue, person.rawValue]
        if let kind {
            sql += " AND m.kind = ?"
            arguments += [kind.rawValue]
        }
        sql += " ORDER BY m.seq DESC LIMIT ?"
        arguments += [limit]
        return try Row.fetchAll(db.cachedStatement(sql: sql), arguments: arguments).compactMap { row in
            InboxLine(id: row["id"], kind: row["kind"], sender: row["sender"], acceptedAt: row["accepted_at"], state: row["state"])
        }
    }

    /// The tables and columns the migrations built, for the schema check (StoreSchema).
    public func tablesAndColumns() throws -> [String: [String]] {
        try db.read { db in
            var result: [String: [String]] = [:]
            let tables = try String.fetchAll(
                db,
                sql: """
                    SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'
                    """)
            for table in tables { result[table] = try db.columns(in: table).map(\.name) }
            return result
        }
    }

    // MARK: Care teams

    /// Members of a patient's care team, stored as "team:ID" and "person:ID" text.
    public func careTeam(of patient: NHSNumber) throws -> [CareTeamMember] {
        try db.read { db in
            try String.fetchAll(
                db.cachedStatement(sql: "SELECT member FROM care_team WHERE patient = ? ORDER BY member"), arguments: [patient.digits])
        }.compactMap(CareTeamMember.init)
    }

    public func link(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        var head = auditHead
        try db.write { db in
            try db.cachedStatement(
                sql: """
                    INSERT OR IGNORE INTO care_team (patient, member, added_by, added_at) VALUES (?, ?, ?, ?)
                    """
            ).execute(arguments: [patient.digits, member.description, actor.rawValue, now.timeIntervalSince1970])
            head = try Self.append(
                AuditEntry(at: now, actor: actor.rawValue, action: .careTeam, patient: patient.digits, detail: "link \(member)"), after: head, db)
        }
        auditHead = head
    }

    public func unlink(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        var head = auditHead
        try db.write { db in
            try db.cachedStatement(sql: "DELETE FROM care_team WHERE patient = ? AND member = ?").execute(arguments: [
                patient.digits, member.description,
            ])
            head = try Self.append(
                AuditEntry(at: now, actor: actor.rawValue, action: .careTeam, patient: patient.digits, detail: "unlink \(member)"), after: head, db)
        }
        auditHead = head
    }

    // MARK: Directory

    public func storedDirectory() throws -> StoredDirectory? {
        try db.read { db in try Self.storedDirectory(db) }
    }

    static func storedDirectory(_ db: Database) throws -> StoredDirectory? {
        guard let row = try Row.fetchOne(db, sql: "SELECT revision, document FROM directory WHERE only_row = 1") else { return nil }
        return try StoredDirectory.decode([UInt8](row["document"] as Data), revision: row["revision"])
    }

    public func saveDirectory(_ directory: Directory, after revision: Int64?, audit: [AuditEntry], usingCode: String?, at now: Date) throws
        -> Int64
    {
        let document = try StoredDirectory.encode(directory)
        var head = auditHead
        let saved = try db.write { db -> Int64 in
            let stored = try Int64.fetchOne(db, sql: "SELECT revision FROM directory WHERE only_row = 1")
            guard stored == revision else { throw DirectoryStoreError.changedMeanwhile(stored: stored) }
            if let usingCode {
                try db.execute(
                    sql: "UPDATE enrolment_code SET used_at = ? WHERE hash = ? AND used_at IS NULL",
                    arguments: [now.timeIntervalSince1970, usingCode])
                guard db.changesCount == 1 else { throw DirectoryStoreError.codeUsed }
            }
            let next = (revision ?? 0) + 1
            try db.execute(
                sql: "INSERT OR REPLACE INTO directory (only_row, revision, document, changed_at) VALUES (1, ?, ?, ?)",
                arguments: [next, Data(document), now.timeIntervalSince1970])
            for entry in audit { head = try Self.append(entry, after: head, db) }
            return next
        }
        auditHead = head
        return saved
    }

    public func issueEnrolmentCode(_ code: EnrolmentCode, audit: [AuditEntry]) throws {
        var head = auditHead
        try db.write { db in
            // One code at a time per person: issuing another replaces the one not yet used.
            try db.execute(sql: "DELETE FROM enrolment_code WHERE person = ? AND used_at IS NULL", arguments: [code.person.rawValue])
            try db.execute(
                sql: "INSERT INTO enrolment_code (hash, person, issued_by, issued_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    code.hash, code.person.rawValue, code.issuedBy.rawValue, code.issuedAt.timeIntervalSince1970,
                    code.expiresAt.timeIntervalSince1970,
                ])
            for entry in audit { head = try Self.append(entry, after: head, db) }
        }
        auditHead = head
    }

    public func enrolmentCode(hash: String) throws -> EnrolmentCode? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM enrolment_code WHERE hash = ?", arguments: [hash]).map { row in
                EnrolmentCode(
                    hash: row["hash"], person: PersonID(row["person"]), issuedBy: PersonID(row["issued_by"]),
                    issuedAt: Date(timeIntervalSince1970: row["issued_at"]), expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
                    usedAt: (row["used_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    // MARK: Consent records

    public func consentRecords(after: Int64) throws -> [ConsentRecord] {
        try consentRecords(where: "seq > ?", [after])
    }

    public func consentRecords(patient: NHSNumber) throws -> [ConsentRecord] {
        try consentRecords(where: "patient = ?", [patient.digits])
    }

    private func consentRecords(where condition: String, _ arguments: StatementArguments) throws -> [ConsentRecord] {
        try db.read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT seq, id, sender, accepted_at, body FROM message WHERE kind = 'consent' AND \(condition) ORDER BY seq"),
                arguments: arguments
            ).map { row in
                ConsentRecord(
                    seq: row["seq"], id: row["id"], sender: PersonID(row["sender"]),
                    acceptedAt: Date(timeIntervalSince1970: row["accepted_at"]), body: [UInt8](row["body"] as Data))
            }
        }
    }

    /// One writer: nothing changes behind this broker's back.
    public var sharedChanges: SharedChanges? { nil }

    // MARK: Audit trail

    /// One synced transaction whose audit lines are appended if `body` says it changed
    /// something.
    func writingAudit(_ audit: [AuditEntry], _ body: (Database) throws -> Bool) throws -> Bool {
        var head = auditHead
        let changed = try db.write { db -> Bool in
            guard try body(db) else { return false }
            for entry in audit { head = try Self.append(entry, after: head, db) }
            return true
        }
        if changed { auditHead = head }
        return changed
    }

    public func appendAudit(_ entries: [AuditEntry]) throws {
        guard !entries.isEmpty else { return }
        var head = auditHead
        try db.write { db in
            for entry in entries { head = try Self.append(entry, after: head, db) }
        }
        auditHead = head
    }

    private static func append(_ entry: AuditEntry, after previous: AuditChain.Head, _ db: Database) throws -> AuditChain.Head {
        // The store is the only writer, so the next row number is known before the insert and
        // the row goes in once, with its hash.
        let (row, head) = AuditChain.next(after: previous, entry)
        try db.cachedStatement(
            sql: """
                INSERT INTO audit (seq, at_ms, actor, action, patient, message, recipient, decision, rule, detail, hash)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            row.seq, row.atMillis, entry.actor, entry.action.rawValue, entry.patient, entry.message,
            entry.recipient, entry.decision, entry.rule, entry.detail, Data(row.hash),
        ])
        return head
    }

    public func audit(_ filter: AuditFilter) throws -> [AuditRow] {
        try db.read { db in try Self.audit(filter, db) }
    }

    static func audit(_ filter: AuditFilter, _ db: Database) throws -> [AuditRow] {
        var clauses: [String] = []
        var arguments: StatementArguments = []
        if let patient = filter.patient { clauses.append("patient = ?"); arguments += [patient] }
        if let person = filter.person { clauses.append("(actor = ? OR recipient = ?)"); arguments += [person, person] }
        if let message = filter.message { clauses.append("message = ?"); arguments += [message] }
        let whereClause = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
        arguments += [filter.limit]
        return try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM audit\(whereClause) ORDER BY seq LIMIT ?"), arguments: arguments)
            .map(Self.auditRow)
    }

    private static func auditRow(_ row: Row) -> AuditRow {
        AuditRow(
            seq: row["seq"], atMillis: row["at_ms"], actor: row["actor"], action: row["action"], patient: row["patient"],
            message: row["message"], recipient: row["recipient"], decision: row["decision"], rule: row["rule"], detail: row["detail"],
            hash: row["hash"] as Data)
    }

    /// Recomputes the whole chain. An edited row breaks its own hash; a deleted row breaks the
    /// next row's link; a truncated tail shows as a head that no longer matches.
    public func verifyAudit() throws -> AuditVerification {
        try db.read { db in try Self.verifyAudit(db) }
    }

    /// Closes the database and gives up the store's lock, so a restore or another broker may
    /// take it. Called when the broker's loop ends; nothing may use the store afterwards.
    public func close() {
        try? db.close()
        ownership.release()
    }

    func reading<T>(_ body: (Database) throws -> T) throws -> T {
        try db.read(body)
    }

    static func verifyAudit(_ db: Database) throws -> AuditVerification {
        var verifier = AuditChain.Verifier()
        let rows = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
        while let row = try rows.next() {
            if let broken = verifier.check(
                seq: row["seq"], atMillis: row["at_ms"], action: row["action"], actor: row["actor"], patient: row["patient"],
                message: row["message"], recipient: row["recipient"], decision: row["decision"], rule: row["rule"],
                detail: row["detail"], hash: [UInt8](row["hash"] as Data))
            {
                return broken
            }
        }
        return verifier.verdict
    }

    /// For tests and operators: run raw SQL against the store (used to prove tampering shows).
    public func unsafeExecute(_ sql: String) throws {
        try db.write { db in try db.execute(sql: sql) }
    }

    /// Raw SQL on a store file behind the back of the broker that has it open, as someone
    /// with access to the file could: used to prove that tampering shows in `verifyAudit`.
    public static func unsafeExecute(_ sql: String, onFileAt path: String) throws {
        let db = try DatabaseQueue(path: path)
        try db.write { db in try db.execute(sql: sql) }
        try db.close()
    }
}
