import CareRelayModel
import CareRelayPolicy
import CareRelayStore
import Foundation
import Logging
import ZeroMQ

/// A running broker: its ZAP handler and its loop thread. Start it, read `endpoint` (useful
/// with an ephemeral port), and stop it; everything else happens on the loop thread.
public final class BrokerServer: @unchecked Sendable {
    public let endpoint: String
    /// The loop's own account of itself, for health checks and status.
    public let vitals: BrokerVitals
    /// The store it serves from, for a second reader of its figures (the operations endpoint).
    public let store: any StoreProvider
    private let context: ZMQContext
    private let zap: ZAPHandler
    private let controlEndpoint: String
    private let lock = NSLock()
    private var stopped = false
    private let directoryBox: DirectoryBox

    /// Holds the directory the ZAP handler reads; replaced whole on reload.
    final class DirectoryBox: @unchecked Sendable {
        private let lock = NSLock()
        private var index: DirectoryIndex
        private var replacements = 0
        init(_ index: DirectoryIndex) { self.index = index }
        var current: DirectoryIndex {
            lock.lock(); defer { lock.unlock() }
            return index
        }
        /// Counts replacements, so the loop can tell cheaply whether it has the newest.
        var generation: Int {
            lock.lock(); defer { lock.unlock() }
            return replacements
        }
        func replace(_ index: DirectoryIndex) {
            lock.lock(); defer { lock.unlock() }
            self.index = index
            replacements += 1
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
    public static func start(configuration: BrokerConfiguration, directory: DirectoryIndex, logger: Logger = Logger(label: "carerelay.broker")) throws -> BrokerServer {
        if configuration.security == .insecureDevelopment {
            guard LoopbackEndpoint.isLoopback(configuration.endpoint) else {
                throw StartError.insecureEndpoint(configuration.endpoint)
            }
            logger.critical("INSECURE DEVELOPMENT MODE: no encryption, no key checks; any local process can connect as anyone in the directory. Never use this with real patient data.",
                            metadata: ["endpoint": "\(configuration.endpoint)"])
        }
        let store: any MessageStore
        do { store = try configuration.store.open() } catch { throw StartError.store("\(error)") }
        let policy: ConsentPolicy
        do {
            policy = try configuration.consentPolicyYAML.map { try ConsentPolicy(yaml: $0, source: "consent policy") } ?? .default
        } catch { throw StartError.policy("\(error)") }
        let gate: ConsentGate
        do { gate = try ConsentGate(policy: policy, store: store) } catch { throw StartError.store("\(error)") }

        let context: ZMQContext
        do { context = try ZMQContext() } catch { throw StartError.socket("\(error)") }
        let box = DirectoryBox(directory)
        let zapLogger = logger
        let security = configuration.security
        // Identity is decided here, from the key the client proved it holds (or, in insecure
        // development mode, the person it names). The connection's User-Id is that person's
        // key, not the person: the loop looks the key up in the directory on every command, so
        // a key removed from the directory stops working at once, even on an open connection.
        let zap = ZAPHandler(context: context) { request in
            let decision = security.authenticate(request, directory: box.current)
            if case .deny(_, let reason) = decision {
                zapLogger.notice("connection refused: \(reason)", metadata: [
                    "address": "\(request.address)", "key": "\(request.clientPublicKey ?? request.plainUsername ?? "none")"])
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
            do {
                let engine = try Engine(
                    configuration: configuration, context: context, directory: directory, store: store,
                    consent: gate, controlEndpoint: controlEndpoint, vitals: vitals, logger: logger)
                engine.core.directorySource = box
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
                startResult.set(.failure(StartError.socket("\(error)")))
                ready.signal()
            }
            finished.leave()
        }
        thread.name = "carerelay-broker"
        thread.start()
        ready.wait()
        switch startResult.value {
        case .success(let endpoint)?:
            return BrokerServer(endpoint: endpoint, context: context, zap: zap, controlEndpoint: controlEndpoint,
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

    private init(endpoint: String, context: ZMQContext, zap: ZAPHandler, controlEndpoint: String,
                 finished: DispatchGroup, directoryBox: DirectoryBox, vitals: BrokerVitals, store: any StoreProvider) {
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

    /// Replaces the directory (SIGHUP). New connections authenticate against it at once; the
    /// loop picks it up before its next command.
    public func reload(directory: DirectoryIndex) {
        directoryBox.replace(directory)
        signalLoop("WAKE")
    }

    /// Stops the loop after the batch in hand is committed, closes sockets, ends ZAP.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        signalLoop("STOP")
        finishedSignal.wait()
        zap.stop()
        context.shutdown()
    }

    /// Blocks until the broker stops.
    public func wait() {
        finishedSignal.wait()
    }

    private func signalLoop(_ word: String) {
        Self.signal(word, context: context, endpoint: controlEndpoint)
    }

    private static func signal(_ word: String, context: ZMQContext, endpoint: String) {
        // The loop binds a DEALER, which takes any number of short-lived signallers.
        guard let socket = try? context.makeSocket(.dealer) else { return }
        defer { socket.close() }
        guard (try? socket.connect(endpoint)) != nil else { return }
        _ = try? socket.send([Array(word.utf8)])
    }
}

private final class StartResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<String, any Error>?
    func set(_ value: Result<String, any Error>) {
        lock.lock(); defer { lock.unlock() }
        result = value
    }
    var value: Result<String, any Error>? {
        lock.lock(); defer { lock.unlock() }
        return result
    }
}
