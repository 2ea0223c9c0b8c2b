import CareRelayStore
import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    /// Versioned migrations, applied in order at start-up, each once, like SQLite's
    /// (`SQLiteStore.migrator`). Several brokers may start together: an advisory lock makes
    /// the others wait while the first one migrates.
    static let migrations: [(version: String, sql: [String])] = [
        (
            "v1",
            [
                """
                CREATE TABLE message (
                    seq BIGSERIAL PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    kind TEXT NOT NULL,
                    sender TEXT NOT NULL,
                    idempotency_key TEXT NOT NULL,
                    body_hash BYTEA NOT NULL,
                    envelope BYTEA NOT NULL,
                    patient TEXT,
                    correlation TEXT,
                    body BYTEA NOT NULL,
                    accepted_at DOUBLE PRECISION NOT NULL,
                    UNIQUE (sender, idempotency_key)
                )
                """,
                "CREATE INDEX message_patient ON message(patient)",
                "CREATE INDEX message_correlation ON message(correlation)",
                // The consent registry is built and caught up from these (see SQLite's v3).
                "CREATE INDEX message_consent ON message(seq) WHERE kind = 'consent'",
                """
                CREATE TABLE delivery (
                    message_seq BIGINT NOT NULL REFERENCES message(seq),
                    recipient TEXT NOT NULL,
                    state TEXT NOT NULL,
                    decision TEXT NOT NULL,
                    rule TEXT NOT NULL,
                    reason TEXT,
                    topic TEXT,
                    delivered_at DOUBLE PRECISION,
                    confirmed_at DOUBLE PRECISION,
                    PRIMARY KEY (message_seq, recipient)
                )
                """,
                "CREATE INDEX delivery_mailbox ON delivery(recipient, state, message_seq)",
                "CREATE INDEX delivery_pending ON delivery(message_seq) WHERE state = 'pending'",
                """
                CREATE TABLE referral (
                    message_id TEXT PRIMARY KEY,
                    record TEXT NOT NULL,
                    team TEXT,
                    status TEXT NOT NULL,
                    deadline DOUBLE PRECISION,
                    escalated INTEGER NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX referral_deadline ON referral(escalated, status, deadline)",
                """
                CREATE TABLE care_team (
                    patient TEXT NOT NULL,
                    member TEXT NOT NULL,
                    added_by TEXT NOT NULL,
                    added_at DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (patient, member)
                )
                """,
                """
                CREATE TABLE audit (
                    seq BIGINT PRIMARY KEY,
                    at_ms BIGINT NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    patient TEXT,
                    message TEXT,
                    recipient TEXT,
                    decision TEXT,
                    rule TEXT,
                    detail TEXT,
                    hash BYTEA NOT NULL
                )
                """,
                "CREATE INDEX audit_patient ON audit(patient)",
                "CREATE INDEX audit_message ON audit(message)",
                "CREATE INDEX audit_recipient ON audit(recipient)",
                // One row: the newest audit row. Every writer locks it first (see PostgresStore).
                """
                CREATE TABLE audit_head (
                    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
                    seq BIGINT NOT NULL,
                    hash BYTEA NOT NULL
                )
                """,
                "INSERT INTO audit_head (seq, hash) VALUES (0, decode(repeat('00', 32), 'hex'))",
            ]
        ),
        // How many messages are stored, kept on the row every writer locks (status reports it).
        (
            "v2",
            [
                "ALTER TABLE audit_head ADD COLUMN messages BIGINT NOT NULL DEFAULT 0",
                "UPDATE audit_head SET messages = (SELECT COUNT(*) FROM message)",
            ]
        ),
        // The directory, changed by commands, and enrolment codes by their hashes only.
        (
            "v3",
            [
                """
                CREATE TABLE directory (
                    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
                    revision BIGINT NOT NULL,
                    document BYTEA NOT NULL,
                    changed_at DOUBLE PRECISION NOT NULL
                )
                """,
                """
                CREATE TABLE enrolment_code (
                    hash TEXT PRIMARY KEY,
                    person TEXT NOT NULL,
                    issued_by TEXT NOT NULL,
                    issued_at DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION NOT NULL,
                    used_at DOUBLE PRECISION
                )
                """,
                "CREATE INDEX enrolment_code_person ON enrolment_code(person)",
            ]
        ),
        // The outbox of emails, texts and webhook calls, written with the message causing each.
        (
            "v4",
            [
                """
                CREATE TABLE notification (
                    id TEXT PRIMARY KEY,
                    message TEXT NOT NULL,
                    recipient TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    address TEXT NOT NULL,
                    event TEXT NOT NULL,
                    urgent BOOLEAN NOT NULL,
                    subject TEXT NOT NULL,
                    body TEXT NOT NULL,
                    link TEXT,
                    created_at DOUBLE PRECISION NOT NULL,
                    due_at DOUBLE PRECISION NOT NULL,
                    digest BOOLEAN NOT NULL,
                    state TEXT NOT NULL DEFAULT 'queued',
                    attempts INTEGER NOT NULL DEFAULT 0,
                    last_error TEXT,
                    claimed_until DOUBLE PRECISION,
                    sent_at DOUBLE PRECISION
                )
                """,
                "CREATE INDEX notification_due ON notification(state, due_at)",
            ]
        ),
        // On-call chains for urgent work nobody has picked up.
        (
            "v5",
            [
                """
                CREATE TABLE oncall (
                    id TEXT PRIMARY KEY,
                    message TEXT NOT NULL,
                    state TEXT NOT NULL,
                    next_at DOUBLE PRECISION,
                    told INTEGER NOT NULL,
                    document BYTEA NOT NULL
                )
                """,
                "CREATE INDEX oncall_due ON oncall(state, next_at)",
                "CREATE INDEX oncall_message ON oncall(message)",
            ]
        ),
        // Reminders are cancelled by the message they are about, when a referral is taken.
        ("v6", ["CREATE INDEX notification_message ON notification(message)"]),
    ]

    static func migrate(_ connection: PostgresConnection, logger: Logger) throws {
        func run(_ query: PostgresQuery) throws -> PostgresQueryResult {
            try connection.query(query, logger: logger).wait()
        }
        _ = try run("BEGIN")
        do {
            _ = try run("SELECT pg_advisory_xact_lock(20261123)")
            _ = try run(
                """
                CREATE TABLE IF NOT EXISTS carerelay_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """)
            let applied = Set(try run("SELECT version FROM carerelay_migrations").map { try $0.decode(String.self) })
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.sql { _ = try run(PostgresQuery(unsafeSQL: statement)) }
                _ = try run("INSERT INTO carerelay_migrations (version) VALUES (\(migration.version))")
                logger.notice("store migrated", metadata: ["version": "\(migration.version)"])
            }
            _ = try run("COMMIT")
        } catch {
            _ = try? run("ROLLBACK")
            throw StoreError.unavailable("PostgreSQL migration failed: \(explain(error))")
        }
    }
}
