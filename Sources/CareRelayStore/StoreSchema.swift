/// The tables and columns every store keeps, in one place. The SQLite migrations
/// (`SQLiteStore.migrator`) and the PostgreSQL ones (`PostgresMigrations`) each build this
/// schema in their own dialect; StoreSchemaTests migrates a new store of each kind and checks
/// it against this definition, so the two cannot drift apart unnoticed.
public enum StoreSchema {
    /// Table name to column names, in order.
    public static let tables: [String: [String]] = [
        "message": ["seq", "id", "kind", "sender", "idempotency_key", "body_hash", "envelope", "patient", "correlation", "body", "accepted_at"],
        "delivery": ["message_seq", "recipient", "state", "decision", "rule", "reason", "topic", "delivered_at", "confirmed_at"],
        "referral": ["message_id", "record", "status", "deadline", "escalated", "team"],
        "care_team": ["patient", "member", "added_by", "added_at"],
        "audit": ["seq", "at_ms", "actor", "action", "patient", "message", "recipient", "decision", "rule", "detail", "hash"],
        "directory": ["only_row", "revision", "document", "changed_at"],
        "enrolment_code": ["hash", "person", "issued_by", "issued_at", "expires_at", "used_at"],
        "notification": [
            "id", "message", "recipient", "channel", "address", "event", "urgent", "subject", "body", "link", "created_at", "due_at", "digest",
            "state", "attempts", "last_error", "claimed_until", "sent_at",
        ],
        "oncall": ["id", "message", "state", "next_at", "told", "document"],
    ]

    /// Tables only PostgreSQL has, and why: several brokers write to one database there.
    public static let postgresOnly: [String: [String]] = [
        // The newest audit row and the message count, on the one row every writer locks, so
        // brokers append to one hash chain in turn (SQLite's single writer keeps the head in
        // memory and counts messages by sequence).
        "audit_head": ["only_row", "seq", "hash", "messages"],
        // Which migrations have run (GRDB keeps its own table in SQLite).
        "carerelay_migrations": ["version", "applied_at"],
    ]
}
