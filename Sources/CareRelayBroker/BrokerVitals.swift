import CareRelayModel
import CareRelayProtocol
import CareRelayStore
import Foundation
import Synchronization
import ZeroMQ

/// What the loop thread tells the rest of the process about itself, for health checks and
/// `status`: written by the loop once per turn, read by the operations endpoint. The loop
/// never waits on a reader for longer than one lock hand-over.
public final class BrokerVitals: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var startedAt: Date
        /// When the loop last went round: a loop stuck in a store call stops advancing this.
        public var lastTurn: Date
        public var connectedClients: Int
        /// False from the moment a store read or write fails until one succeeds again.
        public var storeHealthy: Bool
        public var lastStoreError: String?
        public var stopping: Bool
        /// Keys whose commands are being ignored after too many malformed ones (RefusalBudget).
        public var throttledKeys: Int = 0
    }

    private let state: Mutex<Snapshot>

    init(startedAt: Date) {
        state = Mutex(
            Snapshot(
                startedAt: startedAt, lastTurn: startedAt, connectedClients: 0, storeHealthy: true,
                lastStoreError: nil, stopping: false))
    }

    public var snapshot: Snapshot {
        state.withLock { $0 }
    }

    func turn(at now: Date, connectedClients: Int) {
        state.withLock { state in
            state.lastTurn = now
            state.connectedClients = connectedClients
        }
    }

    func throttled(keys: Int) {
        state.withLock { $0.throttledKeys = keys }
    }

    func store(healthy: Bool, error: String? = nil) {
        state.withLock { state in
            state.storeHealthy = healthy
            if let error { state.lastStoreError = error }
        }
    }

    func markStopping() {
        state.withLock { $0.stopping = true }
    }
}

/// What `carerelay status` and the operations endpoint's `/status` report: the protocol's
/// `status` answer.
public typealias BrokerStatusReport = StatusReport

extension StatusReport {
    /// The broker's vitals beside the store's figures. Counts and times only, nothing about any
    /// patient.
    public init(vitals: BrokerVitals.Snapshot, store: StoreStatistics, now: Date = Date()) {
        self.init(
            broker: CareRelayBroker.version, protocolVersion: Int(CRP.version), startedAt: vitals.startedAt,
            uptimeSeconds: max(0, Int(now.timeIntervalSince(vitals.startedAt))), connectedClients: vitals.connectedClients,
            storeHealthy: vitals.storeHealthy, stopping: vitals.stopping, store: store,
            libzmq: ZMQLibrary.buildDescription, throttledKeys: vitals.throttledKeys)
    }
}
