import Dispatch
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// Serves an `OperationsEndpoint` over HTTP on its own threads, for a broker whose loop runs
/// on a plain thread. `stop()` shuts the server down gracefully (open scrapes finish) and
/// returns when it has.
public final class OperationsServer: Sendable {
    private let group: ServiceGroup
    private let finished = DispatchSemaphore(value: 0)

    /// Starts listening; `onListening` receives the bound port (useful with port 0).
    public init(endpoint: OperationsEndpoint, host: String, port: Int, logger: Logger,
                onListening: @escaping @Sendable (Int) -> Void) {
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)  // a line per scrape would drown the broker's own
        let app = Application(
            router: endpoint.router(logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "carerelay-broker"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) },
            logger: quiet)
        group = ServiceGroup(services: [app], logger: quiet)
        let group = self.group
        let finished = self.finished
        Task {
            do { try await group.run() } catch {
                logger.error("operations endpoint stopped", metadata: ["error": "\(error)"])
            }
            finished.signal()
        }
    }

    public func stop() {
        let group = self.group
        Task { await group.triggerGracefulShutdown() }
        finished.wait()
    }
}
