import CareRelayModel
import CareRelayStore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Where a PostgreSQL store is: read from a URL such as
/// `postgres://carerelay@db.example.nhs.uk:5432/carerelay?sslmode=verify-full&sslrootcert=/etc/carerelay/db-ca.pem`.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var security: TransportSecurity
    /// How long any one connection attempt, statement or commit may take (`timeout=SECONDS`,
    /// default 10). One that takes longer fails, and its connection is dropped and replaced:
    /// the broker refuses what it had in hand (`500 store-unavailable`) and goes on serving.
    public var timeout: Duration = Self.defaultTimeout
    public static let defaultTimeout: Duration = .seconds(10)

    /// How the connection to the database is protected. Patient data crosses it, so anything
    /// but loopback defaults to TLS with the server's certificate verified.
    public enum TransportSecurity: Sendable, Equatable {
        /// Plain TCP: the default on loopback only (`sslmode=disable`).
        case disable
        /// TLS without checking whose certificate it is (`sslmode=require`): encrypted, but
        /// open to someone in the middle.
        case require
        /// TLS with the certificate checked against the system's roots or the given file, and
        /// the server's host name against it (`sslmode=verify-full`, `sslrootcert=FILE`).
        case verifyFull(rootCertificate: String?)
    }

    public init(
        host: String, port: Int = 5432, user: String, password: String? = nil, database: String,
        security: TransportSecurity? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.security = security ?? (Self.isLoopback(host) ? .disable : .verifyFull(rootCertificate: nil))
    }

    public init(url text: String) throws {
        guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
            let host = url.host, !host.isEmpty, let user = url.user, !user.isEmpty
        else {
            throw StoreError.unavailable("'\(text)' is not a PostgreSQL URL: write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        let database = String(url.path.drop { $0 == "/" })
        guard !database.isEmpty else {
            throw StoreError.unavailable("'\(text)' names no database: write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
        }
        var options: [String: String] = [:]
        for item in url.queryItems ?? [] { options[item.name] = item.value ?? "" }
        if let unknown = options.keys.first(where: { !["sslmode", "sslrootcert", "timeout"].contains($0) }) {
            throw StoreError.unavailable("'\(unknown)' in the PostgreSQL URL is not an option CareRelay knows: use sslmode, sslrootcert and timeout")
        }
        var timeout = Self.defaultTimeout
        if let text = options["timeout"] {
            guard let seconds = Double(text), seconds >= 0.1, seconds <= 600 else {
                throw StoreError.unavailable("timeout=\(text): give the seconds a statement may take, from 0.1 to 600")
            }
            timeout = .milliseconds(Int(seconds * 1000))
        }
        var security: TransportSecurity?
        switch options["sslmode"] {
        case nil: security = options["sslrootcert"].map { .verifyFull(rootCertificate: $0) }
        case "disable": security = .disable
        case "require": security = .require
        case "verify-full": security = .verifyFull(rootCertificate: options["sslrootcert"])
        case let mode?:
            throw StoreError.unavailable("sslmode=\(mode) is not supported: use disable, require or verify-full")
        }
        self.init(host: host, port: url.port ?? 5432, user: user, password: url.password, database: database, security: security)
        self.timeout = timeout
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Without the password: safe to log, and a URL another broker can be given.
    public var description: String {
        var options: [String] = []
        switch security {
        case .disable: if !Self.isLoopback(host) { options.append("sslmode=disable") }
        case .require: options.append("sslmode=require")
        case .verifyFull(let root):
            if let root {
                options.append("sslmode=verify-full")
                options.append("sslrootcert=" + (root.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? root))
            } else if Self.isLoopback(host) {
                options.append("sslmode=verify-full")
            }
        }
        if timeout != Self.defaultTimeout {
            let (seconds, attoseconds) = timeout.components
            options.append("timeout=\(Double(seconds) + Double(attoseconds) / 1e18)")
        }
        let base = "postgres://\(user)@\(host):\(port)/\(database)"
        return options.isEmpty ? base : base + "?" + options.joined(separator: "&")
    }
}

/// Chooses PostgreSQL in `BrokerConfiguration.store`.
public struct PostgresStoreProvider: StoreProvider {
    public var location: PostgresLocation
    public init(_ location: PostgresLocation) { self.location = location }
    public func open() throws -> any MessageStore { try PostgresStore(location) }
    public func openStatisticsReader() throws -> any StoreStatisticsReader { try PostgresReader(location) }
    public func openReader() throws -> any StoreReader { try PostgresReader(location) }
    public func openOutbox() throws -> any NotificationOutbox { try PostgresOutbox(location) }
    public var description: String { "PostgreSQL \(location)" }
}

/// A reader on a connection of its own: the operations endpoint's, so a scrape never queues
/// behind the loop's transactions (nor runs inside one), and the broker's reader of queries
/// beside its loop.
public final class PostgresReader: StoreStatisticsReader, StoreReader, Sendable {
    /// Locked for the whole of a read, so two scrapes at once take turns on the connection.
    private let connection: Mutex<PostgresConnection>
    private let logger: Logger
    private let timeout: Duration

    init(_ location: PostgresLocation) throws {
        var logger = Logger(label: "carerelay.store.postgres.statistics")
        logger.logLevel = .warning
        self.logger = logger
        timeout = location.timeout
        connection = Mutex(try PostgresStore.connect(location, logger: logger))
    }

    public func statistics(at now: Date) throws -> StoreStatistics {
        try reading { run in try PostgresStatistics.read(at: now, run) }
    }

    public func audit(_ filter: AuditFilter) throws -> [AuditRow] {
        try reading { run in try PostgresAudit.audit(filter, run: run) }
    }

    public func verifyAudit() throws -> AuditVerification {
        try reading { run in try PostgresAudit.verify(run: run) }
    }

    public func message(id: String) throws -> StoredMessage? {
        try reading { run in try PostgresRecords.message(id: id, run: run) }
    }

    public func tracking(id: String) throws -> Tracking? {
        try reading { run in try PostgresRecords.tracking(id: id, run: run) }
    }

    public func history(for person: PersonID, kind: MessageKind?, limit: Int) throws -> [InboxLine] {
        try reading { run in try PostgresRecords.history(for: person, kind: kind, limit: limit, run: run) }
    }

    public func referrals(to teams: [TeamID], orPerson person: PersonID, statuses: Set<ReferralStatus>, limit: Int) throws -> [ReferralEntry] {
        try reading { run in try PostgresRecords.referrals(to: teams, orPerson: person, statuses: statuses, limit: limit, run: run) }
    }

    /// Runs `body` with the connection to itself, each query bounded by the URL's time-out.
    private func reading<T>(_ body: ((PostgresQuery) throws -> PostgresQueryResult) throws -> T) throws -> T {
        try connection.withLock { connection in
            try body { query in
                guard let rows = try connection.query(query, logger: self.logger).wait(atMost: self.timeout) else {
                    throw StoreError.unavailable("PostgreSQL did not answer within \(self.timeout)")
                }
                return rows
            }
        }
    }

    deinit { connection.withLock { try? $0.close().wait() } }
}

enum PostgresStatistics {
    /// The same figures as SQLite's, each through an index, so the cost follows what waits.
    static func read(at now: Date, _ run: (PostgresQuery) throws -> PostgresQueryResult) throws -> StoreStatistics {
        func number(_ query: PostgresQuery) throws -> Int64 {
            try run(query).first.map { try $0.decode(Int64?.self) ?? 0 } ?? 0
        }
        let oldest = try run(
            """
            SELECT m.accepted_at FROM delivery d JOIN message m ON m.seq = d.message_seq
            WHERE d.state = 'pending' ORDER BY d.message_seq LIMIT 1
            """
        ).first.map { try $0.decode(Double.self) }
        var intake: [String: Int64] = [:]
        for row in try run("SELECT COALESCE(team, 'none'), COUNT(*) FROM referral WHERE escalated IN (0, 1) AND status = 'sent' GROUP BY 1") {
            let (team, waiting) = try row.decode((String, Int64).self)
            intake[team] = waiting
        }
        return StoreStatistics(
            storeBytes: try number("SELECT pg_database_size(current_database())"),
            messages: try number("SELECT messages FROM audit_head"),
            undelivered: try number("SELECT COUNT(*) FROM delivery WHERE state = 'pending'"),
            oldestUndeliveredAcceptedAt: oldest.map(Date.init(timeIntervalSince1970:)),
            intakeWaiting: intake,
            overdueReferrals: try number(
                """
                SELECT COUNT(*) FROM referral WHERE escalated IN (0, 1) AND status = 'sent' AND deadline <= \(now.timeIntervalSince1970)
                """),
            auditRows: try number("SELECT seq FROM audit_head"),
            notificationsWaiting: try number("SELECT COUNT(*) FROM notification WHERE state = 'queued'"),
            notificationsFailed: try number("SELECT COUNT(*) FROM notification WHERE state = 'failed'"))
    }
}

extension PostgresLocation {
    /// Creates an empty database beside this one (same server and user) and returns where it
    /// is: each test, benchmark or new locality starts from nothing.
    public func creatingDatabase(_ name: String) throws -> PostgresLocation {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw StoreError.unavailable("'\(name)': a database name here is letters, digits and underscores")
        }
        var logger = Logger(label: "carerelay.store.postgres.admin")
        logger.logLevel = .warning
        let connection = try PostgresStore.connect(self, logger: logger)
        defer { try? connection.close().wait() }
        _ = try connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger).wait()
        var created = self
        created.database = name
        return created
    }
}
