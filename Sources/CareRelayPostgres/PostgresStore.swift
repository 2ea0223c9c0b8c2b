import CareRelayModel
import CareRelayStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The store several brokers share: PostgreSQL through postgres-nio. Each broker holds one
/// instance with two connections: one its loop writes and reads through (every call waits
/// for its answer, as the loop does with SQLite), and one that LISTENs for what the other
/// brokers write (`sharedChanges`).
///
/// Several writers, one history:
/// - Every transaction that stores messages or audit lines first locks the one row of
///   `audit_head`. Writers therefore commit one after another, which keeps the audit trail a
///   single chain and makes message sequence numbers grow in commit order (a mailbox cursor
///   never skips a message another broker commits later). That lock is the cluster's
///   durable-write ceiling; see docs/scale-out.md.
/// - Under that lock an idempotency key, or a referral's status, cannot change between the
///   check and the write: two brokers never both store one (sender, key) or both take a referral.
/// - After each write the store NOTIFYs who has new mail, and whether consent, a care team
///   or a referral changed; PostgreSQL delivers notifications only once the transaction
///   commits, and every broker LISTENs.
/// Not `Sendable`: an instance belongs to the thread that opened it (`connection` and
/// `abandoned` are plain `var`s). The LISTEN side (`NotificationListener`, `SharedChanges`) is
/// `Sendable` and shared.
public final class PostgresStore: MessageStore {
    public let location: PostgresLocation
    public let sharedChanges: SharedChanges?
    /// Used by the broker's loop thread only. Replaced when the server drops it, or when it
    /// stopped answering within the location's timeout (`abandoned`).
    private var connection: PostgresConnection
    private var abandoned = false
    private let listener: NotificationListener
    private let logger: Logger
    /// Tells this broker's own notifications from the others'.
    private let node = UUID().uuidString
    static let channel = "carerelay"

    public init(_ location: PostgresLocation, logger: Logger = Logger(label: "carerelay.store.postgres")) throws {
        self.location = location
        var quiet = logger
        quiet.logLevel = .warning
        self.logger = quiet
        connection = try Self.connect(location, logger: quiet)
        let changes = SharedChanges()
        sharedChanges = changes
        do {
            try Self.migrate(connection, logger: quiet)
            listener = try NotificationListener(location, node: node, changes: changes, logger: quiet)
        } catch {
            try? connection.close().wait()
            throw error
        }
    }

    static func connect(_ location: PostgresLocation, logger: Logger) throws -> PostgresConnection {
        let tls: PostgresConnection.Configuration.TLS
        switch location.security {
        case .disable:
            tls = .disable
        case .require:
            var settings = TLSConfiguration.makeClientConfiguration()
            settings.certificateVerification = .none
            tls = .require(try NIOSSLContext(configuration: settings))
        case .verifyFull(let root):
            var settings = TLSConfiguration.makeClientConfiguration()
            settings.certificateVerification = .fullVerification
            if let root { settings.trustRoots = .file(root) }
            tls = .require(try NIOSSLContext(configuration: settings))
        }
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        configuration.options.connectTimeout = .nanoseconds(
            Int64(location.timeout.components.seconds) * 1_000_000_000
                + location.timeout.components.attoseconds / 1_000_000_000)
        let connecting = PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration, id: 1, logger: logger)
        let connection: PostgresConnection?
        do {
            // The connect time-out covers TCP; the start-up exchange after it gets the same again.
            connection = try connecting.wait(atMost: location.timeout * 2)
        } catch {
            throw StoreError.unavailable("cannot connect to PostgreSQL at \(location): \(explain(error))")
        }
        guard let connection else {
            connecting.whenSuccess { late in
                let closing: EventLoopFuture<Void> = late.close()
                closing.whenComplete { _ in }
            }
            throw StoreError.unavailable("cannot connect to PostgreSQL at \(location): no answer within \(location.timeout * 2)")
        }
        return connection
    }

    /// The server's own words when it gave any ("database \"x\" does not exist"), else the
    /// network's ("connection refused"): postgres-nio keeps both out of its description.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] { return message }
        if let underlying = error.underlying { return "\(underlying)" }
        return "\(error.code)"
    }

    public func close() {
        listener.stop()
        _ = try? connection.close().wait(atMost: location.timeout)
    }

    // MARK: Running statements

    /// Runs one statement, waiting at most the location's timeout. A connection the server or
    /// the network dropped, or one that stopped answering, is replaced by the next statement:
    /// the one that saw the fault failed, so its batch was refused and will be resent.
    @discardableResult
    private func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
        if connection.isClosed || abandoned {
            connection = try Self.connect(location, logger: logger)
            abandoned = false
            logger.warning("reconnected to PostgreSQL after losing the connection", metadata: ["database": "\(location)"])
        }
        let answer: PostgresQueryResult?
        do {
            answer = try connection.query(query, logger: logger).wait(atMost: location.timeout)
        } catch let error as PSQLError {
            throw StoreError.unavailable("PostgreSQL: \(Self.explain(error))")
        }
        guard let answer else {
            abandonConnection()
            throw StoreError.unavailable("PostgreSQL did not answer within \(location.timeout); the connection was dropped and will be replaced")
        }
        return answer
    }

    /// Gives up on a connection that stopped answering, without waiting for it: closing it
    /// fails whatever it still had in hand, and the server rolls back an open transaction
    /// when it sees the connection go.
    private func abandonConnection() {
        abandoned = true
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in }
        logger.warning(
            "PostgreSQL stopped answering; dropped the connection", metadata: ["database": "\(location)", "timeout": "\(location.timeout)"])
    }

    /// One transaction. Its commit waits for the disk unless the body says otherwise (see
    /// `lockAuditHead(commitWithoutWaiting:)` and `confirm`).
    private func transaction<T>(_ body: () throws -> T) throws -> T {
        try run("BEGIN")
        do {
            let result = try body()
            try run("COMMIT")
            return result
        } catch {
            // On a connection still answering, within the same time as any statement; an
            // abandoned one has nothing left to roll back.
            if !abandoned, !connection.isClosed { _ = try? run("ROLLBACK") }
            throw error
        }
    }

    /// Takes the chain's lock for the rest of the transaction and returns its head.
    /// `commitWithoutWaiting` lets this transaction's commit return before the WAL reaches the
    /// disk (deliveries sent): as with SQLite's unsynced commits, a crash of the database
    /// server loses at most those records, which means a redelivery, never a lost message.
    /// Set in the same statement, to save a round trip.
    private func lockAuditHead(commitWithoutWaiting: Bool = false) throws -> AuditChain.Head {
        let rows = try run(
            """
            SELECT seq, hash, set_config('synchronous_commit', \(commitWithoutWaiting ? "off" : "on"), true)
            FROM audit_head FOR UPDATE
            """)
        guard let row = rows.first else { throw StoreError.unavailable("the audit_head row is missing") }
        let (seq, hash, _) = try row.decode((Int64, ByteBuffer, String).self)
        return AuditChain.Head(seq: seq, hash: Array(hash.readableBytesView))
    }

    /// The audit lines after `head` and the new head, as two parts of a WITH clause
    /// (`audit_rows AS (...), audit_moved AS (...)`), so they go in the statement that ends
    /// the transaction's work rather than in round trips of their own.
    private static func appendAudit(
        _ entries: [AuditEntry], after head: AuditChain.Head, countingMessages stored: Int = 0, to statement: inout Statement
    ) {
        var head = head
        var rows: [AuditRowToStore] = []
        rows.reserveCapacity(entries.count)
        for entry in entries {
            let next = AuditChain.next(after: head, entry)
            rows.append(next.row)
            head = next.head
        }
        statement.sql(
            """
            audit_rows AS (
                INSERT INTO audit (seq, at_ms, actor, action, patient, message, recipient, decision, rule, detail, hash)
                SELECT seq, at_ms, actor, action, NULLIF(patient, ''), NULLIF(message, ''), NULLIF(recipient, ''),
                       NULLIF(decision, ''), NULLIF(rule, ''), NULLIF(detail, ''), hash
                FROM unnest(
            """)
        statement.bind(rows.map(\.seq), as: "int8[]", then: ", ")
        statement.bind(rows.map(\.atMillis), as: "int8[]", then: ", ")
        statement.bind(rows.map(\.entry.actor), as: "text[]", then: ", ")
        statement.bind(rows.map(\.entry.action.rawValue), as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.patient ?? "" }, as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.message ?? "" }, as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.recipient ?? "" }, as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.decision ?? "" }, as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.rule ?? "" }, as: "text[]", then: ", ")
        statement.bind(rows.map { $0.entry.detail ?? "" }, as: "text[]", then: ", ")
        statement.bind(
            rows.map { ByteBuffer(bytes: $0.hash) }, as: "bytea[]",
            then: """
                ) AS a(seq, at_ms, actor, action, patient, message, recipient, decision, rule, detail, hash)
                ),
                audit_moved AS (UPDATE audit_head SET seq =
                """)
        statement.bind(head.seq, as: "int8", then: ", hash = ")
        // The count of messages rides on the same locked row: sequences skip numbers when a
        // transaction rolls back or a broker dies mid-batch, so the highest is not a count.
        statement.bind(ByteBuffer(bytes: head.hash), as: "bytea", then: ", messages = messages + ")
        statement.bind(Int64(stored), as: "int8", then: ")")
    }

    /// What the other brokers are told on commit, as payloads under PostgreSQL's 8,000-byte limit.
    private func payloads(_ changes: [SharedChanges.Change]) -> [String] {
        guard !changes.isEmpty else { return [] }
        var payloads: [String] = []
        var current = node
        for change in changes {
            let word: String =
                switch change {
                case .mail(let person): "m:\(person)"
                case .consent: "c"
                case .careTeam(let patient): "t:\(patient.digits)"
                case .referral: "r"
                case .directory: "d"
                case .everything: "e"
                }
            if current.utf8.count + word.utf8.count > 7_000 {
                payloads.append(current)
                current = node
            }
            current += "\t" + word
        }
        payloads.append(current)
        return payloads
    }

    /// Ends a writing transaction's work in one statement: its audit lines, the chain's new
    /// head, and the notifications PostgreSQL sends on commit.
    private func finish(
        audit entries: [AuditEntry], after head: AuditChain.Head, countingMessages stored: Int = 0,
        notifying changes: [SharedChanges.Change], alsoWith preceding: (inout Statement) -> Void = { _ in }
    ) throws {
        var statement = Statement("WITH ")
        preceding(&statement)
        Self.appendAudit(entries, after: head, countingMessages: stored, to: &statement)
        statement.sql(" SELECT pg_notify('carerelay', p) FROM unnest(")
        statement.bind(payloads(changes), as: "text[]", then: ") AS p")
        try run(statement.query)
    }

    static func changes(in payload: String, from ownNode: String) -> [SharedChanges.Change] {
        let words = payload.split(separator: "\t", omittingEmptySubsequences: true)
        guard let sender = words.first, sender != ownNode else { return [] }
        return words.dropFirst().compactMap { word -> SharedChanges.Change? in
            if word.hasPrefix("m:") { return .mail(PersonID(String(word.dropFirst(2)))) }
            if word.hasPrefix("t:") { return (try? NHSNumber(validating: String(word.dropFirst(2)))).map { .careTeam($0) } }
            if word == "c" { return .consent }
            if word == "r" { return .referral }
            if word == "d" { return .directory }
            if word == "e" { return .everything }
            return nil
        }
    }

    // MARK: Accepting messages

    public func accept(_ batch: [NewMessage], confirming confirmations: [DeliveryConfirmation], at now: Date) throws -> [StoreOutcome] {
        try transaction {
            let head = try lockAuditHead()
            _ = try confirm(confirmations.flatMap { confirmation in confirmation.ids.map { (confirmation.recipient, $0) } }, at: now)
            guard !batch.isEmpty else { return [] }
            // Read again under the lock: another broker may have stored one of these keys, or
            // changed one of these referrals, since.
            let plan = BatchPlan(
                batch, earlier: try earlierSends(batch.map { ($0.sender, $0.key) }),
                referrals: try storedReferrals(BatchPlan.referralsRead(by: batch)))
            let stored = plan.toStore.map { batch[$0] }
            let outcomes = try plan.outcomes(storedAs: try insertMessagesAndDeliveries(stored))
            try saveReferrals(stored.compactMap(\.referral))
            try linkCareTeams(stored)
            // Reminders made moot first: a new agenda version plans its reminders again.
            let moot = stored.flatMap(\.cancelsReminders)
            if !moot.isEmpty {
                try run(
                    """
                    UPDATE notification SET state = 'cancelled'
                    WHERE message = ANY(\(moot)::text[]) AND state = 'queued' AND event = ANY(\(NotificationColumns.cancelEvents)::text[])
                    """)
            }
            try queueNotifications(stored.flatMap(\.notifications))
            try startOnCall(stored.flatMap(\.onCall))
            try finish(audit: stored.flatMap(\.audit), after: head, countingMessages: stored.count, notifying: Self.changes(storing: stored))
            return outcomes
        }
    }

    private static func changes(storing messages: [NewMessage]) -> [SharedChanges.Change] {
        var recipients = Set<PersonID>()
        var changes: [SharedChanges.Change] = []
        for message in messages {
            for delivery in message.deliveries where delivery.decision != .withheld && recipients.insert(delivery.recipient).inserted {
                changes.append(.mail(delivery.recipient))
            }
            if message.kind == .consent { changes.append(.consent) }
            if let patient = message.patient, !message.careTeamLinks.isEmpty { changes.append(.careTeam(patient)) }
            // On-call chains have deadlines too: another broker moves them on if this one stops.
            if message.referral != nil || !message.onCall.isEmpty { changes.append(.referral) }
        }
        return changes
    }

    /// The messages and their deliveries, in one statement; returns each message's sequence.
    private func insertMessagesAndDeliveries(_ messages: [NewMessage]) throws -> [Int64] {
        guard !messages.isEmpty else { return [] }
        var statement = Statement(
            """
            WITH stored AS (
                INSERT INTO message (id, kind, sender, idempotency_key, body_hash, envelope, patient, correlation, body, accepted_at)
                SELECT id, kind, sender, idempotency_key, body_hash, envelope, NULLIF(patient, ''), NULLIF(correlation, ''), body, accepted_at
                FROM unnest(
            """)
        statement.bind(messages.map(\.id), as: "text[]", then: ", ")
        statement.bind(messages.map(\.kind.rawValue), as: "text[]", then: ", ")
        statement.bind(messages.map(\.sender.rawValue), as: "text[]", then: ", ")
        statement.bind(messages.map(\.key), as: "text[]", then: ", ")
        statement.bind(messages.map { ByteBuffer(bytes: $0.bodyHash) }, as: "bytea[]", then: ", ")
        statement.bind(messages.map { ByteBuffer(bytes: $0.envelope) }, as: "bytea[]", then: ", ")
        statement.bind(messages.map { $0.patient?.digits ?? "" }, as: "text[]", then: ", ")
        statement.bind(messages.map { $0.correlation ?? "" }, as: "text[]", then: ", ")
        statement.bind(messages.map { ByteBuffer(bytes: $0.body) }, as: "bytea[]", then: ", ")
        statement.bind(
            messages.map(\.acceptedAt.timeIntervalSince1970), as: "float8[]",
            then: """
                ) WITH ORDINALITY AS m(id, kind, sender, idempotency_key, body_hash, envelope, patient, correlation, body, accepted_at, ord)
                    ORDER BY ord
                    RETURNING seq, id
                ),
                planned AS (
                    INSERT INTO delivery (message_seq, recipient, state, decision, rule, reason, topic)
                    SELECT stored.seq, d.recipient, d.state, d.decision, d.rule, NULLIF(d.reason, ''), NULLIF(d.topic, '')
                    FROM unnest(
                """)
        var columns = (
            id: [String](), recipient: [String](), state: [String](), decision: [String](), rule: [String](), reason: [String](), topic: [String]()
        )
        for message in messages {
            for delivery in message.deliveries {
                columns.id.append(message.id)
                columns.recipient.append(delivery.recipient.rawValue)
                columns.state.append(delivery.decision == .withheld ? "withheld" : "pending")
                columns.decision.append(delivery.decision.rawValue)
                columns.rule.append(delivery.rule)
                columns.reason.append(delivery.reason ?? "")
                columns.topic.append(delivery.topic ?? "")
            }
        }
        statement.bind(columns.id, as: "text[]", then: ", ")
        statement.bind(columns.recipient, as: "text[]", then: ", ")
        statement.bind(columns.state, as: "text[]", then: ", ")
        statement.bind(columns.decision, as: "text[]", then: ", ")
        statement.bind(columns.rule, as: "text[]", then: ", ")
        statement.bind(columns.reason, as: "text[]", then: ", ")
        statement.bind(
            columns.topic, as: "text[]",
            then: """
                ) AS d(id, recipient, state, decision, rule, reason, topic)
                    JOIN stored ON stored.id = d.id
                    ON CONFLICT DO NOTHING
                )
                SELECT seq, id FROM stored
                """)
        var seqByID: [String: Int64] = [:]
        for row in try run(statement.query) {
            let (seq, id) = try row.decode((Int64, String).self)
            seqByID[id] = seq
        }
        return try messages.map {
            guard let seq = seqByID[$0.id] else { throw StoreError.unavailable("message \($0.id) was not stored") }
            return seq
        }
    }

    private func saveReferrals(_ records: [ReferralRecord]) throws {
        // A batch may change one referral twice: its last state is what is kept.
        var last: [String: ReferralRecord] = [:]
        var order: [String] = []
        for record in records {
            if last.updateValue(record, forKey: record.messageID) == nil { order.append(record.messageID) }
        }
        guard !order.isEmpty else { return }
        let final = order.compactMap { last[$0] }
        let json = try final.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try run(
            """
            INSERT INTO referral (message_id, record, team, status, deadline, escalated)
            SELECT id, record, NULLIF(team, ''), status, NULLIF(deadline, 'NaN'::float8), escalated
            FROM unnest(\(final.map(\.messageID))::text[], \(json)::text[], \(final.map { $0.team?.rawValue ?? "" })::text[],
                        \(final.map(\.status.rawValue))::text[], \(final.map { $0.deadline?.timeIntervalSince1970 ?? .nan })::float8[],
                        \(final.map { $0.escalatedAt == nil ? 0 : 1 })::int8[])
                AS r(id, record, team, status, deadline, escalated)
            ON CONFLICT (message_id) DO UPDATE SET record = excluded.record, team = excluded.team, status = excluded.status,
                deadline = excluded.deadline, escalated = excluded.escalated
            """)
    }

    private func linkCareTeams(_ messages: [NewMessage]) throws {
        var columns = (patient: [String](), member: [String](), by: [String](), at: [Double]())
        for message in messages {
            guard let patient = message.patient else { continue }
            for member in message.careTeamLinks {
                columns.patient.append(patient.digits)
                columns.member.append(member.description)
                columns.by.append(message.sender.rawValue)
                columns.at.append(message.acceptedAt.timeIntervalSince1970)
            }
        }
        guard !columns.patient.isEmpty else { return }
        try run(
            """
            INSERT INTO care_team (patient, member, added_by, added_at)
            SELECT * FROM unnest(\(columns.patient)::text[], \(columns.member)::text[], \(columns.by)::text[], \(columns.at)::float8[])
            ON CONFLICT DO NOTHING
            """)
    }

    private func startOnCall(_ chains: [OnCallChain]) throws {
        for chain in chains {
            try run(
                """
                INSERT INTO oncall (id, message, state, next_at, told, document)
                VALUES (\(chain.id), \(chain.message), \(chain.state.rawValue), \(chain.nextAt?.timeIntervalSince1970), \(chain.told),
                        \(ByteBuffer(bytes: try JSONEncoder().encode(chain))))
                ON CONFLICT DO NOTHING
                """)
        }
    }

    private func queueNotifications(_ notifications: [NotificationRecord]) throws {
        guard !notifications.isEmpty else { return }
        let n = notifications
        try run(
            """
            INSERT INTO notification (id, message, recipient, channel, address, event, urgent, subject, body, link, created_at, due_at, digest)
            SELECT id, message, recipient, channel, address, event, urgent, subject, body, NULLIF(link, ''), created_at, due_at, digest
            FROM unnest(\(n.map(\.id))::text[], \(n.map(\.message))::text[], \(n.map(\.recipient))::text[], \(n.map(\.channel.rawValue))::text[],
                        \(n.map(\.address))::text[], \(n.map(\.event.rawValue))::text[], \(n.map(\.urgent))::bool[], \(n.map(\.subject))::text[],
                        \(n.map(\.text))::text[], \(n.map { $0.link ?? "" })::text[], \(n.map(\.createdAt.timeIntervalSince1970))::float8[],
                        \(n.map(\.dueAt.timeIntervalSince1970))::float8[], \(n.map(\.digest))::bool[])
                AS t(id, message, recipient, channel, address, event, urgent, subject, body, link, created_at, due_at, digest)
            ON CONFLICT DO NOTHING
            """)
    }

    public func earlierSends(_ keys: [(sender: PersonID, key: String)]) throws -> [String: EarlierSend] {
        guard !keys.isEmpty else { return [:] }
        let rows = try run(
            """
            SELECT m.seq, m.id, m.sender, m.idempotency_key, m.body_hash FROM message m
            JOIN unnest(\(keys.map(\.sender.rawValue))::text[], \(keys.map(\.key))::text[]) AS k(sender, key)
              ON m.sender = k.sender AND m.idempotency_key = k.key
            """)
        guard !rows.isEmpty else { return [:] }
        var found: [String: EarlierSend] = [:]
        var keyBySeq: [Int64: String] = [:]
        for row in rows {
            let (seq, id, sender, key, hash) = try row.decode((Int64, String, String, String, ByteBuffer).self)
            let dictionaryKey = idempotencyKey(PersonID(sender), key)
            found[dictionaryKey] = EarlierSend(id: id, fingerprint: Array(hash.readableBytesView), deliveries: [])
            keyBySeq[seq] = dictionaryKey
        }
        for row in try run(
            """
            SELECT message_seq, recipient, decision, rule, reason, topic FROM delivery
            WHERE message_seq = ANY(\(Array(keyBySeq.keys))::int8[]) ORDER BY message_seq, recipient
            """)
        {
            let (seq, recipient, decision, rule, reason, topic) = try row.decode((Int64, String, String, String, String?, String?).self)
            guard let key = keyBySeq[seq] else { continue }
            found[key]?.deliveries.append(
                PlannedDelivery(
                    recipient: PersonID(recipient), decision: PlannedDelivery.Decision(rawValue: decision) ?? .deliver,
                    rule: rule, reason: reason, topic: topic))
        }
        return found
    }

    // MARK: Mailboxes

    public func mailbox(for recipient: PersonID, after: Int64, excluding inFlight: Set<Int64>, limit: Int) throws -> [MailItem] {
        guard limit > 0 else { return [] }
        let rows = try run(
            """
            SELECT m.seq, m.id, m.kind, m.sender, m.envelope, m.patient, m.body, m.accepted_at, d.topic
            FROM delivery d JOIN message m ON m.seq = d.message_seq
            WHERE d.recipient = \(recipient.rawValue) AND d.state = 'pending' AND d.message_seq > \(after)
            ORDER BY d.message_seq LIMIT \(limit + inFlight.count)
            """)
        var items: [MailItem] = []
        for row in rows where items.count < limit {
            let (seq, id, kind, sender, envelope, patient, body, acceptedAt, topic) =
                try row.decode((Int64, String, String, String, ByteBuffer, String?, ByteBuffer, Double, String?).self)
            guard !inFlight.contains(seq),
                let item = MailItem(
                    seq: seq, id: id, kind: kind, sender: sender, envelope: Array(envelope.readableBytesView), patient: patient,
                    body: Array(body.readableBytesView), acceptedAt: acceptedAt, recipient: recipient, topic: topic)
            else { continue }
            items.append(item)
        }
        return items
    }

    public func recordDeliveries(
        sent: [(seq: Int64, recipient: PersonID)], withheld: [(seq: Int64, recipient: PersonID, rule: String, reason: String)], audit: [AuditEntry],
        at now: Date
    ) throws {
        guard !sent.isEmpty || !withheld.isEmpty || !audit.isEmpty else { return }
        try transaction {
            let head = try lockAuditHead(commitWithoutWaiting: true)
            try finish(audit: audit, after: head, notifying: []) { statement in
                statement.sql("went AS (UPDATE delivery d SET delivered_at = COALESCE(d.delivered_at, ")
                statement.bind(now.timeIntervalSince1970, as: "float8", then: ") FROM unnest(")
                statement.bind(sent.map(\.seq), as: "int8[]", then: ", ")
                statement.bind(
                    sent.map(\.recipient.rawValue), as: "text[]",
                    then: """
                        ) AS s(seq, recipient) WHERE d.message_seq = s.seq AND d.recipient = s.recipient),
                        held AS (UPDATE delivery d SET state = 'withheld', decision = 'withheld', rule = w.rule, reason = w.reason FROM unnest(
                        """)
                statement.bind(withheld.map(\.seq), as: "int8[]", then: ", ")
                statement.bind(withheld.map(\.recipient.rawValue), as: "text[]", then: ", ")
                statement.bind(withheld.map(\.rule), as: "text[]", then: ", ")
                statement.bind(
                    withheld.map(\.reason), as: "text[]",
                    then: """
                        ) AS w(seq, recipient, rule, reason)
                        WHERE d.message_seq = w.seq AND d.recipient = w.recipient AND d.state || '' = 'pending'),
                        """)
            }
        }
    }

    public func deliveredCopies(about patient: NHSNumber) throws -> [MailItem] {
        let rows = try run(
            """
            SELECT m.seq, m.id, m.kind, m.sender, m.envelope, m.patient, m.body, m.accepted_at, d.recipient, d.topic
            FROM message m JOIN delivery d ON d.message_seq = m.seq
            WHERE m.patient = \(patient.digits) AND d.delivered_at IS NOT NULL AND d.state IN ('pending', 'confirmed')
            ORDER BY m.seq, d.recipient
            """)
        return try rows.compactMap { row in
            let (seq, id, kind, sender, envelope, patient, body, acceptedAt, recipient, topic) =
                try row.decode((Int64, String, String, String, ByteBuffer, String?, ByteBuffer, Double, String, String?).self)
            return MailItem(
                seq: seq, id: id, kind: kind, sender: sender, envelope: Array(envelope.readableBytesView), patient: patient,
                body: Array(body.readableBytesView), acceptedAt: acceptedAt, recipient: PersonID(recipient), topic: topic)
        }
    }

    public func confirm(recipient: PersonID, ids: [String], at now: Date) throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        return try transaction {
            // Need not wait for the disk: a confirmation lost in a crash means a redelivery.
            try run("SET LOCAL synchronous_commit = off")
            return try confirm(ids.map { (recipient, $0) }, at: now)
        }
    }

    /// Marks each (recipient, message id) confirmed if pending; returns the sequences that were.
    private func confirm(_ pairs: [(PersonID, String)], at now: Date) throws -> [Int64] {
        guard !pairs.isEmpty else { return [] }
        let at = now.timeIntervalSince1970
        // `state || ''` keeps the planner on the primary key: left to choose, with a young
        // table's statistics, it can walk the recipient's whole mailbox instead (15 ms, not 0.5).
        return try run(
            """
            UPDATE delivery d SET state = 'confirmed', confirmed_at = \(at), delivered_at = COALESCE(d.delivered_at, \(at))
            FROM (SELECT m.seq, c.recipient FROM unnest(\(pairs.map(\.0.rawValue))::text[], \(pairs.map(\.1))::text[]) AS c(recipient, id)
                  JOIN message m ON m.id = c.id) AS c
            WHERE d.message_seq = c.seq AND d.recipient = c.recipient AND d.state || '' = 'pending'
            RETURNING d.message_seq
            """
        ).map { try $0.decode(Int64.self) }
    }

    // MARK: Messages and referrals

    public func message(id: String) throws -> StoredMessage? {
        try PostgresRecords.message(id: id) { try self.run($0) }
    }

    public func messages(about patient: NHSNumber, kind: MessageKind) throws -> [StoredMessage] {
        try PostgresRecords.messages(about: patient, kind: kind) { try self.run($0) }
    }

    public func tracking(id: String) throws -> Tracking? {
        try PostgresRecords.tracking(id: id) { try self.run($0) }
    }

    public func history(for person: PersonID, kind: MessageKind?, limit: Int) throws -> [InboxLine] {
        try PostgresRecords.history(for: person, kind: kind, limit: limit) { try self.run($0) }
    }

    public func referrals(to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int) throws -> [ReferralEntry] {
        try PostgresRecords.referrals(to: teams, orPerson: person, statuses: statuses, limit: limit) { try self.run($0) }
    }

    public func referral(id: String) throws -> ReferralRecord? {
        try storedReferrals([id])[id]
    }

    private func storedReferrals(_ ids: [String]) throws -> [String: ReferralRecord] {
        try PostgresRecords.referrals(ids) { try self.run($0) }
    }

    public func overdueReferrals(at now: Date) throws -> [ReferralRecord] {
        try run(
            """
            SELECT record FROM referral WHERE escalated = 0 AND status = 'sent' AND deadline <= \(now.timeIntervalSince1970)
            """
        ).map { try JSONDecoder().decode(ReferralRecord.self, from: Data(try $0.decode(String.self).utf8)) }
    }

    public func nextReferralDeadline() throws -> Date? {
        try run("SELECT MIN(deadline) FROM referral WHERE escalated = 0 AND status = 'sent'").first
            .flatMap { try $0.decode(Double?.self) }.map(Date.init(timeIntervalSince1970:))
    }

    // MARK: Care teams

    public func careTeam(of patient: NHSNumber) throws -> [CareTeamMember] {
        try run("SELECT member FROM care_team WHERE patient = \(patient.digits) ORDER BY member").map { try $0.decode(String.self) }
            .compactMap(CareTeamMember.init)
    }

    public func link(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        try transaction {
            let head = try lockAuditHead()
            try run(
                """
                INSERT INTO care_team (patient, member, added_by, added_at)
                VALUES (\(patient.digits), \(member.description), \(actor.rawValue), \(now.timeIntervalSince1970)) ON CONFLICT DO NOTHING
                """)
            try finish(
                audit: [AuditEntry(at: now, actor: actor.rawValue, action: .careTeam, patient: patient.digits, detail: "link \(member)")],
                after: head, notifying: [.careTeam(patient)])
        }
    }

    public func unlink(patient: NHSNumber, member: CareTeamMember, by actor: PersonID, at now: Date) throws {
        try transaction {
            let head = try lockAuditHead()
            try run("DELETE FROM care_team WHERE patient = \(patient.digits) AND member = \(member.description)")
            try finish(
                audit: [AuditEntry(at: now, actor: actor.rawValue, action: .careTeam, patient: patient.digits, detail: "unlink \(member)")],
                after: head, notifying: [.careTeam(patient)])
        }
    }

    // MARK: Directory

    public func storedDirectory() throws -> StoredDirectory? {
        guard let row = try run("SELECT revision, document FROM directory").first else { return nil }
        let (revision, document) = try row.decode((Int64, ByteBuffer).self)
        return try StoredDirectory.decode(Array(document.readableBytesView), revision: revision)
    }

    public func saveDirectory(_ directory: Directory, after revision: Int64?, audit: [AuditEntry], usingCode: String?, at now: Date) throws
        -> Int64
    {
        let document = try StoredDirectory.encode(directory)
        return try transaction {
            // Under the lock every writer takes: the revision read here cannot change before commit.
            let head = try lockAuditHead()
            let stored = try run("SELECT revision FROM directory").first.map { try $0.decode(Int64.self) }
            guard stored == revision else { throw DirectoryStoreError.changedMeanwhile(stored: stored) }
            if let usingCode {
                let used = try run(
                    "UPDATE enrolment_code SET used_at = \(now.timeIntervalSince1970) WHERE hash = \(usingCode) AND used_at IS NULL RETURNING hash")
                guard used.first != nil else { throw DirectoryStoreError.codeUsed }
            }
            let next = (revision ?? 0) + 1
            try run(
                """
                INSERT INTO directory (only_row, revision, document, changed_at)
                VALUES (TRUE, \(next), \(ByteBuffer(bytes: document)), \(now.timeIntervalSince1970))
                ON CONFLICT (only_row) DO UPDATE SET revision = EXCLUDED.revision, document = EXCLUDED.document, changed_at = EXCLUDED.changed_at
                """)
            try finish(audit: audit, after: head, notifying: [.directory])
            return next
        }
    }

    public func issueEnrolmentCode(_ code: EnrolmentCode, audit: [AuditEntry]) throws {
        try transaction {
            let head = try lockAuditHead()
            // One code at a time per person: issuing another replaces the one not yet used.
            try run("DELETE FROM enrolment_code WHERE person = \(code.person.rawValue) AND used_at IS NULL")
            try run(
                """
                INSERT INTO enrolment_code (hash, person, issued_by, issued_at, expires_at)
                VALUES (\(code.hash), \(code.person.rawValue), \(code.issuedBy.rawValue), \(code.issuedAt.timeIntervalSince1970), \(code.expiresAt.timeIntervalSince1970))
                """)
            try finish(audit: audit, after: head, notifying: [])
        }
    }

    public func enrolmentCode(hash: String) throws -> EnrolmentCode? {
        guard
            let row = try run(
                "SELECT hash, person, issued_by, issued_at, expires_at, used_at FROM enrolment_code WHERE hash = \(hash)"
            ).first
        else { return nil }
        let (hash, person, issuedBy, issuedAt, expiresAt, usedAt) = try row.decode((String, String, String, Double, Double, Double?).self)
        return EnrolmentCode(
            hash: hash, person: PersonID(person), issuedBy: PersonID(issuedBy), issuedAt: Date(timeIntervalSince1970: issuedAt),
            expiresAt: Date(timeIntervalSince1970: expiresAt), usedAt: usedAt.map(Date.init(timeIntervalSince1970:)))
    }

    // MARK: Consent records

    public func consentRecords(after: Int64) throws -> [ConsentRecord] {
        try consentRecords(
            run(
                """
                SELECT seq, id, sender, accepted_at, body FROM message WHERE kind = 'consent' AND seq > \(after) ORDER BY seq
                """))
    }

    public func consentRecords(patient: NHSNumber) throws -> [ConsentRecord] {
        try consentRecords(
            run(
                """
                SELECT seq, id, sender, accepted_at, body FROM message WHERE kind = 'consent' AND patient = \(patient.digits) ORDER BY seq
                """))
    }

    private func consentRecords(_ rows: PostgresQueryResult) throws -> [ConsentRecord] {
        try rows.map { row in
            let (seq, id, sender, acceptedAt, body) = try row.decode((Int64, String, String, Double, ByteBuffer).self)
            return ConsentRecord(
                seq: seq, id: id, sender: PersonID(sender), acceptedAt: Date(timeIntervalSince1970: acceptedAt),
                body: Array(body.readableBytesView))
        }
    }

    // MARK: Audit trail

    public func appendAudit(_ entries: [AuditEntry]) throws {
        guard !entries.isEmpty else { return }
        try transaction { try finish(audit: entries, after: try lockAuditHead(), notifying: []) }
    }

    // MARK: On-call chains

    public func dueOnCallChains(at now: Date) throws -> [OnCallChain] {
        try chains(
            run(
                """
                SELECT document FROM oncall WHERE state = 'open' AND next_at <= \(now.timeIntervalSince1970) ORDER BY next_at LIMIT 500
                """))
    }

    public func nextOnCallDeadline() throws -> Date? {
        try run("SELECT MIN(next_at) FROM oncall WHERE state = 'open'").first.flatMap { try $0.decode(Double?.self) }
            .map(Date.init(timeIntervalSince1970:))
    }

    public func onCallChains(message: String) throws -> [OnCallChain] {
        try chains(run("SELECT document FROM oncall WHERE message = \(message) ORDER BY id"))
    }

    public func onCallChain(id: String) throws -> OnCallChain? {
        try chains(run("SELECT document FROM oncall WHERE id = \(id)")).first
    }

    public func saveOnCall(_ chain: OnCallChain, expectingTold told: Int, notifications: [NotificationRecord], audit: [AuditEntry]) throws -> Bool {
        let document = ByteBuffer(bytes: try JSONEncoder().encode(chain))
        return try transaction {
            let head = try lockAuditHead()
            let moved = try run(
                """
                UPDATE oncall SET state = \(chain.state.rawValue), next_at = \(chain.nextAt?.timeIntervalSince1970), told = \(chain.told),
                    document = \(document)
                WHERE id = \(chain.id) AND state = 'open' AND told = \(told) RETURNING id
                """)
            guard moved.first != nil else { return false }
            try queueNotifications(notifications)
            try finish(audit: audit, after: head, notifying: [.referral])
            return true
        }
    }

    private func chains(_ rows: PostgresQueryResult) throws -> [OnCallChain] {
        try rows.map { row in
            var buffer = try row.decode(ByteBuffer.self)
            return try JSONDecoder().decode(OnCallChain.self, from: Data(buffer.readBytes(length: buffer.readableBytes) ?? []))
        }
    }

    public func audit(_ filter: AuditFilter) throws -> [AuditRow] {
        try PostgresAudit.audit(filter) { try self.run($0) }
    }

    public func verifyAudit() throws -> AuditVerification {
        try PostgresAudit.verify { try self.run($0) }
    }

    public func statistics(at now: Date) throws -> StoreStatistics {
        try PostgresStatistics.read(at: now) { try self.run($0) }
    }

    /// Whether the server says this connection is encrypted (TLS), for operators and tests.
    public func isEncrypted() throws -> Bool {
        try run("SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)").first?.decode(Bool.self) ?? false
    }

    /// The tables and columns the migrations built, for the schema check (StoreSchema).
    public func tablesAndColumns() throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for row in try run(
            """
            SELECT table_name::text, column_name::text FROM information_schema.columns
            WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position
            """)
        {
            let (table, column) = try row.decode((String, String).self)
            result[table, default: []].append(column)
        }
        return result
    }

    /// For tests: raw SQL, as someone with access to the database could run it.
    public func unsafeExecute(_ sql: String) throws {
        try run(PostgresQuery(unsafeSQL: sql))
    }
}
