import CareRelayModel
import CareRelayPolicy
import CareRelayStore
import Foundation
import Logging
import Synchronization
import ZeroMQ

/// A running broker: its ZAP handler and its loop thread. Start it, read `endpoint` (useful
/// with an ephemeral port), and stop it; everything else happens on the loop thread.
public final class BrokerServer: Sendable {
    public let endpoint: String
    /// The loop's own account of itself, for health checks and status.
    public let vitals: BrokerVitals
    /// The store it serves from, for a second reader of its figures (the operations endpoint).
    public let store: any StoreProvider
    private let context: ZMQContext
    private let zap: ZAPHandler
    private let controlEndpoint: String
    private let stopped = Mutex(false)
    private let directoryBox: DirectoryBox

    /// The directory the ZAP handler reads (the loop publishes each one it adopts), and an
    /// operator's import on its way to the loop, which saves it in the store.
    final class DirectoryBox: Sendable {
        private let state: Mutex<(index: DirectoryIndex, imported: DirectoryIndex?)>
        init(_ index: DirectoryIndex) { state = Mutex((index, nil)) }
        var current: DirectoryIndex { state.withLock { $0.index } }
        /// Served by the ZAP handler at once; the loop takes it on its next turn.
        func importing(_ index: DirectoryIndex) {
            state.withLock { $0 = (index, index) }
        }
        func takeImport() -> DirectoryIndex? {
            state.withLock { state in
                defer { state.imported = nil }
                return state.imported
            }
        }
        /// An import the store could not take yet, unless a newer one arrived meanwhile.
        func retryImport(_ index: DirectoryIndex) {
            state.withLock { if $0.imported == nil { $0.imported = index } }
        }
        func publish(_ index: DirectoryIndex) {
            state.withLock { $0.index = index }
        }
    }

    public enum StartError: Error, CustomStringConvertible {
        case store(String)
        case policy(String)
        case socket(String)
        case insecureEndpoint(String)
        public var description: String {
            switch self {
            case .insecureEndpoint(let endpoint):
                "insecure development mode refuses to bind \(endpoint): without CURVE anyone who can reach the socket can claim to be anyone, so only loopback is allowed (tcp://127.0.0.1:PORT, tcp://localhost:PORT, tcp://[::1]:PORT, ipc://, inproc://)"
            case .store(let why): "cannot open the store: \(why)"
            case .policy(let why): "cannot load the consent policy: \(why)"
            case .socket(let why): "cannot start the broker socket: \(why)"
            }
        }
    }

    /// Opens the store, starts ZAP authentication and the loop thread, and returns once the
    /// broker is bound and serving.
    /// `directory` seeds a store that holds none; a store that holds one serves its own (see
    /// `reload` to replace it). Nil: the store must hold one.
    public static func start(configuration: BrokerConfiguration, directory: DirectoryIndex?, logger: Logger = Logger(label: "carerelay.broker"))
        throws
        -> BrokerServer
    {
        if configuration.security == .insecureDevelopment {
            guard LoopbackEndpoint.isLoopback(configuration.endpoint) else {
                throw StartError.insecureEndpoint(configuration.endpoint)
            }
            logger.critical(
                "INSECURE DEVELOPMENT MODE: no encryption, no key checks; any local process can connect as anyone in the directory. Never use this with real patient data.",
                metadata: ["endpoint": "\(configuration.endpoint)"])
        }
        let policy: ConsentPolicy
        do {
            policy = try configuration.consentPolicyYAML.map { try ConsentPolicy(yaml: $0, source: "consent policy") } ?? .default
        } catch { throw StartError.policy("\(error)") }

        let context: ZMQContext
        do { context = try ZMQContext() } catch { throw StartError.socket("\(error)") }
        // Until the loop has read the store's directory, nobody is let in.
        let box = DirectoryBox(directory ?? DirectoryIndex.empty)
        let zapLogger = logger
        let security = configuration.security
        // Identity is decided here, from the key the client proved it holds (or, in insecure
        // development mode, the person it names). The connection's User-Id is that person's
        // key, not the person: the loop looks the key up in the directory on every command, so
        // a key removed from the directory stops working at once, even on an open connection.
        let zap = ZAPHandler(context: context) { request in
            let decision = security.authenticate(request, directory: box.current)
            if case .deny(_, let reason) = decision {
                zapLogger.notice(
                    "connection refused: \(reason)",
                    metadata: [
                        "address": "\(request.address)", "key": "\(request.clientPublicKey ?? request.plainUsername ?? "none")",
                    ])
            }
            return decision
        }
        do { try zap.start() } catch { throw StartError.socket("ZAP handler: \(error)") }

        let controlEndpoint = "inproc://carerelay.broker.control"
        let ready = DispatchSemaphore(value: 0)
        let startResult = StartResultBox()
        let vitals = BrokerVitals(startedAt: Date())
        // A group, not a semaphore: stop() and wait() may both wait for the loop to end.
        let finished = DispatchGroup()
        finished.enter()
        let thread = Thread {
            // The store is opened, used and closed on this thread alone.
            let store: any MessageStore, gate: ConsentGate
            do throws(StartError) {
                (store, gate) = try openStore(configuration.store, policy: policy)
            } catch {
                startResult.set(.failure(error))
                ready.signal()
                finished.leave()
                return
            }
            do {
                let engine = try Engine(
                    configuration: configuration, context: context, directory: directory, store: store,
                    consent: gate, controlEndpoint: controlEndpoint, vitals: vitals, logger: logger)
                engine.core.directorySource = box
                box.publish(engine.core.directory)
                // Another broker on a shared store wrote something for us: take it now.
                store.sharedChanges?.onArrival { Self.signal("WAKE", context: context, endpoint: controlEndpoint) }
                startResult.set(.success(engine.boundEndpoint))
                ready.signal()
                engine.run()
                engine.router.close()
                engine.control.close()
                store.close()
            } catch {
                store.close()
                startResult.set(.failure(error is StoreError ? .store("\(error)") : .socket("\(error)")))
                ready.signal()
            }
            finished.leave()
        }
        thread.name = "carerelay-broker"
        thread.start()
        ready.wait()
        switch startResult.value {
        case .success(let endpoint)?:
            return BrokerServer(
                endpoint: endpoint, context: context, zap: zap, controlEndpoint: controlEndpoint,
                finished: finished, directoryBox: box, vitals: vitals, store: configuration.store)
        case .failure(let error)?:
            zap.stop()
            finished.wait()
            throw error
        case nil:
            zap.stop()
            throw StartError.socket("the broker thread ended without starting")
        }
    }

    /// The store and the consent registry read from it.
    private static func openStore(_ provider: any StoreProvider, policy: ConsentPolicy) throws(StartError) -> (any MessageStore, ConsentGate) {
        let store: any MessageStore
        do { store = try provider.open() } catch { throw StartError.store("\(error)") }
        do {
            return (store, try ConsentGate(policy: policy, store: store))
        } catch {
            store.close()
            throw StartError.store("\(error)")
        }
    }

    private init(
        endpoint: String, context: ZMQContext, zap: ZAPHandler, controlEndpoint: String,
        finished: DispatchGroup, directoryBox: DirectoryBox, vitals: BrokerVitals, store: any StoreProvider
    ) {
        self.endpoint = endpoint
        self.vitals = vitals
        self.store = store
        self.context = context
        self.zap = zap
        self.controlEndpoint = controlEndpoint
        self.finishedSignal = finished
        self.directoryBox = directoryBox
    }

    private let finishedSignal: DispatchGroup

    /// An operator's import (SIGHUP): replaces the directory. New connections authenticate
    /// against it at once; the loop saves it as the store's next revision, where every other
    /// broker sharing the store takes it from, before its next command.
    public func reload(directory: DirectoryIndex) {
        directoryBox.importing(directory)
        signalLoop("WAKE")
    }

    /// Stops the loop after the batch in hand is committed, closes sockets, ends ZAP.
    public func stop() {
        // Held until stopped: a second caller returns once the first has stopped it.
        stopped.withLock { stopped in
            guard !stopped else { return }
            stopped = true
            signalLoop("STOP")
            finishedSignal.wait()
            zap.stop()
            context.shutdown()
        }
    }

    /// Blocks until the broker stops.
    public func wait() {
        finishedSignal.wait()
    }

    private func signalLoop(_ word: String) {
        Self.signal(word, context: context, endpoint: controlEndpoint)
    }

    static func signal(_ word: String, context: ZMQContext, endpoint: String) {
        // The loop binds a DEALER, which takes any number of short-lived signallers.
        guard let socket = try? context.makeSocket(.dealer) else { return }
        defer { socket.close() }
        guard (try? socket.connect(endpoint)) != nil else { return }
        _ = try? socket.send([Array(word.utf8)])
    }
}

/// What the loop thread reports of its start, read by `start` once the thread signals.
private final class StartResultBox: Sendable {
    private let result = Mutex<Result<String, BrokerServer.StartError>?>(nil)
    func set(_ value: Result<String, BrokerServer.StartError>) { result.withLock { $0 = value } }
    var value: Result<String, BrokerServer.StartError>? { result.withLock { $0 } }
}
