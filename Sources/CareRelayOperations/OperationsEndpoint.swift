import CareRelayBroker
import CareRelayStore
import Foundation
import Hummingbird
import Logging
import Prometheus
import Synchronization

/// The broker's HTTP face for its operators: Prometheus metrics, liveness and readiness, and
/// a JSON status. It reads the broker's vitals and a read-only connection to the store, so a
/// scrape never waits in, or holds up, the broker's loop.
///
///   GET /metrics        Prometheus text format
///   GET /health/live    200 while the loop is turning; 503 if it has stalled
///   GET /health/ready   200 when live, the store is writable and the broker is not stopping
///   GET /status         the same report as `carerelay status`, as JSON
public final class OperationsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let vitals: BrokerVitals
    private let inspector: any StoreStatisticsReader
    private let storeGauges: StoreGauges
    /// A loop that has not turned for this long is stalled: it turns at least once a second.
    public let stallLimit: TimeInterval

    /// The factory to put in `BrokerConfiguration.metricsFactory`, so the broker's counters
    /// land in `registry`.
    public static func metricsFactory(for registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        // Store writes and loop turns: a few milliseconds each; a failing disk, seconds.
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1), .seconds(5),
        ]
        return factory
    }

    public init(registry: PrometheusCollectorRegistry, vitals: BrokerVitals, store: any StoreProvider, stallLimit: TimeInterval = 10) throws {
        self.registry = registry
        self.vitals = vitals
        self.stallLimit = stallLimit
        inspector = try store.openStatisticsReader()
        storeGauges = StoreGauges(registry: registry)
    }

    public enum Readiness: Equatable, Sendable {
        case ready
        case notReady(String)
    }

    public func liveness(now: Date = Date()) -> Readiness {
        let state = vitals.snapshot
        let quiet = now.timeIntervalSince(state.lastTurn)
        return quiet > stallLimit ? .notReady("the broker loop has not turned for \(Int(quiet)) s") : .ready
    }

    public func readiness(now: Date = Date()) -> Readiness {
        if case .notReady(let why) = liveness(now: now) { return .notReady(why) }
        let state = vitals.snapshot
        if state.stopping { return .notReady("the broker is shutting down") }
        if !state.storeHealthy { return .notReady("the store is failing: \(state.lastStoreError ?? "unknown error"); new messages are refused") }
        return .ready
    }

    public func status(now: Date = Date()) throws -> BrokerStatusReport {
        BrokerStatusReport(vitals: vitals.snapshot, store: try inspector.statistics(at: now), now: now)
    }

    /// The Prometheus exposition: the broker's counters plus the store's figures read now.
    public func metricsText(now: Date = Date()) throws -> String {
        let report = try status(now: now)
        storeGauges.update(report, ready: readiness(now: now) == .ready, now: now)
        return registry.emitToString()
    }

    public func router(logger: Logger) -> Router<BasicRequestContext> {
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            do {
                return Self.text(try self.metricsText(), contentType: "text/plain; version=0.0.4; charset=utf-8")
            } catch {
                logger.error("metrics: the store could not be read", metadata: ["error": "\(error)"])
                return Self.text("store unreadable: \(error)\n", status: .serviceUnavailable)
            }
        }
        router.get("health/live") { _, _ in Self.health(self.liveness()) }
        router.get("health/ready") { _, _ in Self.health(self.readiness()) }
        router.get("status") { _, _ -> Response in
            do {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
                encoder.dateEncodingStrategy = .iso8601
                let body = String(decoding: try encoder.encode(try self.status()), as: UTF8.self) + "\n"
                return Self.text(body, contentType: "application/json")
            } catch {
                return Self.text("store unreadable: \(error)\n", status: .serviceUnavailable)
            }
        }
        return router
    }

    private static func health(_ readiness: Readiness) -> Response {
        switch readiness {
        case .ready: text("ok\n")
        case .notReady(let why): text("\(why)\n", status: .serviceUnavailable)
        }
    }

    private static func text(_ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Gauges set from the store at each scrape.
private final class StoreGauges: Sendable {
    private let registry: PrometheusCollectorRegistry
    /// Each team's intake gauge, made when the team first appears. Held for the whole of
    /// `update`, so two scrapes at once set the gauges one after the other.
    private let intake = Mutex<[String: Gauge]>([:])
    private let undelivered, oldest, overdue, storeBytes, uptime, ready, auditRows, notificationsWaiting, notificationsFailed: Gauge

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        undelivered = registry.makeGauge(name: "carerelay_undelivered_messages", help: "Deliveries stored and not yet confirmed by their recipient")
        oldest = registry.makeGauge(
            name: "carerelay_oldest_undelivered_seconds", help: "How long the oldest unconfirmed delivery has waited (0 when none)")
        overdue = registry.makeGauge(name: "carerelay_referrals_overdue", help: "Referrals untaken past their response target")
        storeBytes = registry.makeGauge(name: "carerelay_store_bytes", help: "Size of the store file and its write-ahead log")
        uptime = registry.makeGauge(name: "carerelay_uptime_seconds", help: "Seconds since the broker started")
        ready = registry.makeGauge(name: "carerelay_ready", help: "1 when the broker accepts new messages, else 0")
        auditRows = registry.makeGauge(name: "carerelay_audit_rows", help: "Lines in the audit trail")
        notificationsWaiting = registry.makeGauge(
            name: "carerelay_notifications_waiting", help: "Notifications (email, SMS, webhook) queued and not yet sent, digests included")
        notificationsFailed = registry.makeGauge(
            name: "carerelay_notifications_failed", help: "Notifications that every retry failed to send")
    }

    func update(_ report: BrokerStatusReport, ready isReady: Bool, now: Date) {
        intake.withLock { intake in
            let store = report.store
            undelivered.set(to: Double(store.undelivered))
            oldest.set(to: store.oldestUndeliveredAcceptedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            overdue.set(to: Double(store.overdueReferrals))
            storeBytes.set(to: Double(store.storeBytes))
            uptime.set(to: Double(report.uptimeSeconds))
            ready.set(to: isReady ? 1 : 0)
            auditRows.set(to: Double(store.auditRows))
            notificationsWaiting.set(to: Double(store.notificationsWaiting))
            notificationsFailed.set(to: Double(store.notificationsFailed))
            // A team whose intake emptied reads 0, not its last figure.
            for team in Set(intake.keys).union(store.intakeWaiting.keys) {
                let gauge =
                    intake[team]
                    ?? registry.makeGauge(
                        name: "carerelay_intake_waiting_referrals", labels: [("team", team)],
                        help: "Referrals waiting at a team's intake for acceptance")
                intake[team] = gauge
                gauge.set(to: Double(store.intakeWaiting[team] ?? 0))
            }
        }
    }
}
