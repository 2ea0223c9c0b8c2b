import Dispatch
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Serves an `OperationsEndpoint` over HTTP on its own threads, for a broker whose loop runs
/// on a plain thread. `stop()` shuts the server down gracefully (open scrapes finish) and
/// returns when it has.
public final class OperationsServer: Sendable {
    private let group: ServiceGroup
    private let finished = DispatchSemaphore(value: 0)

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts listening and returns once it is (`onListening` receives the bound port, useful
    /// with port 0), or throws if it cannot: an address already in use must stop the broker's
    /// start, not leave it serving without the endpoint its health checks are pointed at.
    public init(
        endpoint: OperationsEndpoint, host: String, port: Int, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void
    ) throws {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)  // a line per scrape would drown the broker's own
        let start = StartOutcome()
        let app = Application(
            router: endpoint.router(logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "carerelay-broker"),
            onServerRunning: { channel in
                onListening(channel.localAddress?.port ?? port)
                start.settle(nil)
            },
            logger: quiet)
        group = ServiceGroup(services: [app], logger: quiet)
        let group = self.group
        let finished = self.finished
        Task {
            do { try await group.run() } catch {
                logger.error("operations endpoint stopped", metadata: ["error": "\(error)"])
                start.settle("\(error)")
            }
            start.settle("it stopped before it was listening")
            finished.signal()
        }
        if let failure = start.wait() {
            throw StartError(
                description:
                    "the operations endpoint cannot listen on \(host):\(port): \(failure). Give this broker its own address with --operations HOST:PORT (port 0 takes a free one), or --operations off"
            )
        }
    }

    public func stop() {
        let group = self.group
        Task { await group.triggerGracefulShutdown() }
        finished.wait()
    }
}

/// Whether the server came up: settled once, by whichever comes first.
private final class StartOutcome: Sendable {
    private let outcome = Mutex<String??>(nil)
    private let settled = DispatchSemaphore(value: 0)

    /// nil: listening; otherwise why it is not.
    func settle(_ failure: String?) {
        let first = outcome.withLock { current -> Bool in
            guard current == nil else { return false }
            current = .some(failure)
            return true
        }
        if first { settled.signal() }
    }

    func wait() -> String? {
        settled.wait()
        return outcome.withLock { $0 ?? nil }
    }
}
