import CareRelayModel
import CareRelayStore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The connection that LISTENs for other brokers' writes. If the server drops it, the broker
/// is told to re-read everything shared (notifications may be missed while it is down) and it
/// reconnects every second until it can, then says so again.
final class NotificationListener: Sendable {
    private let location: PostgresLocation
    private let node: String
    private let changes: SharedChanges
    private let logger: Logger
    private struct State {
        var connection: PostgresConnection?
        var stopped = false
    }

    private let state = Mutex(State())

    init(_ location: PostgresLocation, node: String, changes: SharedChanges, logger: Logger) throws {
        self.location = location
        self.node = node
        self.changes = changes
        self.logger = logger
        try listen()
    }

    private func listen() throws {
        let connection = try PostgresStore.connect(location, logger: logger)
        let node = self.node
        let changes = self.changes
        connection.addListener(channel: PostgresStore.channel) { _, notification in
            changes.post(PostgresStore.changes(in: notification.payload, from: node))
        }
        guard try connection.query("LISTEN carerelay", logger: logger).wait(atMost: location.timeout) != nil else {
            let closing: EventLoopFuture<Void> = connection.close()
            closing.whenComplete { _ in }
            throw StoreError.unavailable("PostgreSQL did not answer LISTEN within \(location.timeout)")
        }
        let stopped = state.withLock { state in
            if !state.stopped { state.connection = connection }
            return state.stopped
        }
        guard !stopped else {
            _ = try? connection.close().wait(atMost: location.timeout)
            return
        }
        connection.closeFuture.whenComplete { [weak self] _ in self?.lost() }
    }

    private func lost() {
        let stopped = state.withLock { state in
            state.connection = nil
            return state.stopped
        }
        guard !stopped else { return }
        logger.warning("lost the PostgreSQL notification connection; re-reading shared state and reconnecting", metadata: ["database": "\(location)"])
        changes.post([.everything])
        retry()
    }

    private func retry() {
        // Off the event loop: connecting waits for the answer.
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { [weak self] in
            guard let self else { return }
            do {
                try self.listen()
                self.changes.post([.everything])
            } catch {
                self.retry()
            }
        }
    }

    func stop() {
        let connection = state.withLock { state in
            state.stopped = true
            let connection = state.connection
            state.connection = nil
            return connection
        }
        _ = try? connection?.close().wait(atMost: location.timeout)
    }
}
