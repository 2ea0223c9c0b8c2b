import CareRelayModel
import CareRelayStore
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// The connection that LISTENs for other brokers' writes. If the server drops it, the broker
/// is told to re-read everything shared (notifications may be missed while it is down) and it
/// reconnects every second until it can, then says so again.
final class NotificationListener: @unchecked Sendable {
    private let location: PostgresLocation
    private let node: String
    private let changes: SharedChanges
    private let logger: Logger
    private let lock = NSLock()
    private var connection: PostgresConnection?
    private var stopped = false

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
        lock.lock()
        let stopped = self.stopped
        if !stopped { self.connection = connection }
        lock.unlock()
        guard !stopped else {
            _ = try? connection.close().wait(atMost: location.timeout)
            return
        }
        connection.closeFuture.whenComplete { [weak self] _ in self?.lost() }
    }

    private func lost() {
        lock.lock()
        let stopped = self.stopped
        connection = nil
        lock.unlock()
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
        lock.lock()
        stopped = true
        let connection = self.connection
        self.connection = nil
        lock.unlock()
        _ = try? connection?.close().wait(atMost: location.timeout)
    }
}
