import Foundation
import Synchronization

/// One ZAP 1.0 authentication request (ZeroMQ RFC 27).
public struct ZAPRequest: Sendable, Hashable {
    public var domain: String
    /// The peer's address, e.g. its IP for TCP.
    public var address: String
    /// The routing id the connecting peer announced, if any.
    public var routingID: [UInt8]
    /// "NULL", "PLAIN" or "CURVE".
    public var mechanism: String
    /// Mechanism-specific credentials as sent (CURVE: the 32-byte client public key).
    public var credentials: [[UInt8]]

    /// The CURVE client's long-term public key as Z85 text; `nil` for other mechanisms.
    public var clientPublicKey: String? {
        guard mechanism == "CURVE", credentials.count == 1, credentials[0].count == CurveKeyPair.keyLength else {
            return nil
        }
        return try? Z85.encode(credentials[0])
    }

    /// The PLAIN client's username (credentials are username then password); `nil` for other
    /// mechanisms.
    public var plainUsername: String? {
        guard mechanism == "PLAIN", credentials.count == 2 else { return nil }
        return String(validating: credentials[0], as: UTF8.self)
    }

    public init(domain: String, address: String, routingID: [UInt8], mechanism: String, credentials: [[UInt8]]) {
        self.domain = domain
        self.address = address
        self.routingID = routingID
        self.mechanism = mechanism
        self.credentials = credentials
    }
}

public enum ZAPDecision: Sendable, Hashable {
    /// Accept the peer; `userID` becomes the "User-Id" metadata on its messages.
    case allow(userID: String)
    /// Refuse the peer. RFC 27 status codes: "400" for refused credentials, "300" for a
    /// temporary failure, "500" for an internal error.
    case deny(status: String = "400", reason: String)
}

/// Answers ZAP requests for every socket in one context.
///
/// libzmq asks whatever is bound at `inproc://zeromq.zap.01` in the socket's own context, so
/// there can be only one handler per context. The handler runs on its own thread with its own
/// sockets; the control socket that stops it is used only with `running`'s lock held.
public final class ZAPHandler: Sendable {
    public static let endpoint = "inproc://zeromq.zap.01"

    public let context: ZMQContext
    private let authenticate: @Sendable (ZAPRequest) -> ZAPDecision
    private let running = Mutex<Running?>(nil)

    private struct Running {
        var control: Socket
        var controlEndpoint: String
        var finished: DispatchSemaphore
    }

    public init(context: ZMQContext, authenticate: @escaping @Sendable (ZAPRequest) -> ZAPDecision) {
        self.context = context
        self.authenticate = authenticate
    }

    deinit {
        stop()
    }

    /// Starts the handler thread and returns once it is bound and answering requests.
    ///
    /// - Throws: the bind error, e.g. `EADDRINUSE` if this context already has a handler.
    public func start() throws(ZMQError) {
        try running.withLock { (running: inout sending Running?) throws(ZMQError) in
            guard running == nil else { return }

            // A private inproc pair tells the thread to stop; it lives in this context's namespace,
            // and the object address keeps it unique while this handler exists.
            let controlEndpoint = "inproc://carerelay.zap.control.\(UInt(bitPattern: ObjectIdentifier(self)))"
            let control = try context.makeSocket(.pair)
            try control.bind(controlEndpoint)

            let ready = DispatchSemaphore(value: 0)
            let finished = DispatchSemaphore(value: 0)
            let startResult = StartResult()
            // Captures only Sendable values, never `self`, so dropping the handler still runs deinit.
            let context = self.context
            let authenticate = self.authenticate
            let thread = Thread {
                Self.serve(
                    context: context, controlEndpoint: controlEndpoint, authenticate: authenticate,
                    startResult: startResult, ready: ready
                )
                finished.signal()
            }
            thread.name = "carerelay.zap"
            thread.start()
            ready.wait()

            if let error = startResult.error {
                finished.wait()
                try? control.unbind(controlEndpoint)
                control.close()
                throw error
            }
            running = Running(control: control, controlEndpoint: controlEndpoint, finished: finished)
        }
    }

    /// Stops the handler thread and waits for it to close its sockets. Safe to call repeatedly.
    public func stop() {
        running.withLock { current in
            guard let running = current else { return }
            current = nil
            // If the thread already ended (context shut down) nobody is reading the pair and a
            // blocking send would hang; it has then also signalled `finished`, so no wake-up is needed.
            _ = try? running.control.send([[]], dontWait: true)
            running.finished.wait()
            try? running.control.unbind(running.controlEndpoint)
            running.control.close()
        }
    }

    private final class StartResult: Sendable {
        // Written by the handler thread before `ready.signal()` and read after `ready.wait()`.
        private let stored = Mutex<ZMQError?>(nil)
        var error: ZMQError? {
            get { stored.withLock { $0 } }
            set { stored.withLock { $0 = newValue } }
        }
    }

    private static func serve(
        context: ZMQContext,
        controlEndpoint: String,
        authenticate: @Sendable (ZAPRequest) -> ZAPDecision,
        startResult: StartResult,
        ready: DispatchSemaphore
    ) {
        let zap: Socket
        let control: Socket
        do {
            zap = try context.makeSocket(.rep)
            try zap.bind(endpoint)
            control = try context.makeSocket(.pair)
            try control.connect(controlEndpoint)
        } catch {
            startResult.error = error
            ready.signal()
            return
        }
        ready.signal()
        defer {
            // zmq_close releases an inproc name later, on libzmq's reaper thread; unbinding
            // releases it now, so a new handler can start as soon as `stop()` returns.
            try? zap.unbind(endpoint)
            zap.close()
            control.close()
        }

        let items = [PollItem(zap), PollItem(control)]
        while true {
            let ready: [PollEvents]
            do {
                ready = try poll(items, timeoutMilliseconds: -1)
            } catch  where error.isInterrupted {
                continue
            } catch {
                return  // ETERM: the context is shutting down.
            }
            if ready[1].contains(.readable) { return }
            guard ready[0].contains(.readable) else { continue }
            do {
                guard let request = try zap.receive(dontWait: true) else { continue }
                try zap.send(reply(to: request.frames, authenticate: authenticate))
            } catch {
                // A REP socket that received must reply before it can receive again; if the
                // reply failed the socket is unusable, and libzmq will fail pending handshakes.
                if error.isTerminated { return }
            }
        }
    }

    static func reply(to frames: [[UInt8]], authenticate: (ZAPRequest) -> ZAPDecision) -> [[UInt8]] {
        let version = Array("1.0".utf8)
        let requestID = frames.count > 1 ? frames[1] : []
        guard frames.count >= 6, frames[0] == version else {
            return [version, requestID, Array("500".utf8), Array("Malformed ZAP request".utf8), [], []]
        }
        let text = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self) }
        let request = ZAPRequest(
            domain: text(frames[2]), address: text(frames[3]), routingID: frames[4],
            mechanism: text(frames[5]), credentials: Array(frames.dropFirst(6))
        )
        switch authenticate(request) {
        case .allow(let userID):
            return [version, requestID, Array("200".utf8), Array("OK".utf8), Array(userID.utf8), []]
        case .deny(let status, let reason):
            return [version, requestID, Array(status.utf8), Array(reason.utf8), [], []]
        }
    }
}
