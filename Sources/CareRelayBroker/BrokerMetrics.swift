import CareRelayModel
import CareRelayProtocol
import CoreMetrics
import Foundation

/// What the broker counts as it works, through swift-metrics. The factory is passed in, not
/// taken from the process-wide `MetricsSystem`, so several brokers in one process (the
/// tests) each count for themselves; with no factory nothing is recorded.
///
/// Figures that live in the store (queue depths, the oldest undelivered message, overdue
/// referrals) are not counted here: they are read from the store when scraped, so they are
/// right after a restart too.
final class BrokerMetrics {
    private let factory: any MetricsFactory
    private var accepted: [MessageKind: Counter] = [:]
    private var rejected: [ErrorCode: Counter] = [:]
    private let delivered: Counter
    private let redacted: Counter
    private let withheldAtRouting: Counter
    private let withheldAtDelivery: Counter
    private let duplicates: Counter
    private let ignoredCommands: Counter
    private let connected: Gauge
    private let storeCommit: CoreMetrics.Timer
    private let storeDeliveryRecord: CoreMetrics.Timer
    private let loopTurn: CoreMetrics.Timer

    init(factory: any MetricsFactory) {
        self.factory = factory
        delivered = Counter(label: "carerelay_deliveries_total", dimensions: [("outcome", "whole")], factory: factory)
        redacted = Counter(label: "carerelay_deliveries_total", dimensions: [("outcome", "redacted")], factory: factory)
        withheldAtRouting = Counter(label: "carerelay_withheld_total", dimensions: [("stage", "routing")], factory: factory)
        withheldAtDelivery = Counter(label: "carerelay_withheld_total", dimensions: [("stage", "delivery")], factory: factory)
        duplicates = Counter(label: "carerelay_duplicate_sends_total", factory: factory)
        ignoredCommands = Counter(label: "carerelay_commands_ignored_total", factory: factory)
        connected = Gauge(label: "carerelay_connected_clients", factory: factory)
        storeCommit = CoreMetrics.Timer(label: "carerelay_store_seconds", dimensions: [("operation", "accept")], factory: factory)
        storeDeliveryRecord = CoreMetrics.Timer(label: "carerelay_store_seconds", dimensions: [("operation", "record_deliveries")], factory: factory)
        loopTurn = CoreMetrics.Timer(label: "carerelay_loop_turn_seconds", factory: factory)
    }

    func accepted(_ kind: MessageKind) {
        if let counter = accepted[kind] { counter.increment(); return }
        let counter = Counter(label: "carerelay_messages_accepted_total", dimensions: [("kind", kind.rawValue)], factory: factory)
        accepted[kind] = counter
        counter.increment()
    }

    func rejected(_ code: ErrorCode) {
        if let counter = rejected[code] { counter.increment(); return }
        let counter = Counter(
            label: "carerelay_commands_rejected_total",
            dimensions: [("code", String(code.rawValue)), ("reason", code.name)], factory: factory)
        rejected[code] = counter
        counter.increment()
    }

    func delivered(redacted isRedacted: Bool) {
        (isRedacted ? redacted : delivered).increment()
    }

    func withheld(atDelivery: Bool, count: Int = 1) {
        guard count > 0 else { return }
        (atDelivery ? withheldAtDelivery : withheldAtRouting).increment(by: count)
    }

    func duplicateSend() { duplicates.increment() }

    /// A command dropped unread because its key sent too many malformed ones (RefusalBudget).
    func ignored() { ignoredCommands.increment() }

    func connectedClients(_ count: Int) { connected.record(count) }

    /// One turn of the loop that had work: everything read in one pass stored, answered and
    /// delivered. A command that arrives during a turn waits for the rest of it and then for
    /// its own, so this is what send-to-deliver latency is made of.
    func loopTurn(nanoseconds: UInt64) {
        loopTurn.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    /// Times a store write; the figure operators watch for a failing or slow disk.
    func timeStore<T>(accepting: Bool, _ body: () throws -> T) rethrows -> T {
        let start = DispatchTime.now().uptimeNanoseconds
        defer {
            (accepting ? storeCommit : storeDeliveryRecord)
                .recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - start))
        }
        return try body()
    }
}
