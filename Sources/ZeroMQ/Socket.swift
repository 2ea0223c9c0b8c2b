import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

public enum SocketType: Sendable, Hashable {
    case router, dealer, pub, sub, xpub, xsub, pair, req, rep

    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .xpub: ZMQ_XPUB
        case .xsub: ZMQ_XSUB
        case .pair: ZMQ_PAIR
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }
}

/// One multipart message as received, with the connection metadata libzmq attached to it.
public struct Multipart: Sendable, Hashable {
    public var frames: [[UInt8]]
    /// The "User-Id" a ZAP handler returned when it authenticated the sending peer.
    public var userID: String?
    /// The "Peer-Address" of the sending peer (the IP address for TCP).
    public var peerAddress: String?
    /// Parts received beyond `receive(maxFrames:)`'s limit and thrown away unread: libzmq
    /// bounds each part's size but not how many parts a message has.
    public var discardedFrames = 0

    public init(frames: [[UInt8]], userID: String? = nil, peerAddress: String? = nil) {
        self.frames = frames
        self.userID = userID
        self.peerAddress = peerAddress
    }
}

/// A ZeroMQ socket.
///
/// Deliberately not `Sendable`: libzmq sockets are not thread-safe, so a socket must stay
/// on the thread (or actor) that created it.
public final class Socket {
    public let type: SocketType
    /// Held so the context cannot be terminated (which blocks) while this socket is open.
    public let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?

    init(context: ZMQContext, type: SocketType) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else { throw .last() }
        self.handle = handle
        self.type = type
        self.context = context
        // libzmq's default linger is infinite, which makes context termination hang on any
        // undelivered message; a broker must be able to shut down promptly.
        try setLinger(0)
    }

    deinit {
        close()
    }

    public var isClosed: Bool { handle == nil }

    /// Closes the socket; further calls do nothing.
    public func close() {
        guard let handle else { return }
        self.handle = nil
        zmq_close(handle)
    }

    func liveHandle() throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw .notSocket }
        return handle
    }

    /// Calls `body` with the libzmq socket handle, for features this wrapper does not cover.
    /// The handle must not escape `body`, be closed, or be used from another thread.
    public func withUnsafeHandle<Result>(
        _ body: (UnsafeMutableRawPointer) throws(ZMQError) -> Result
    ) throws(ZMQError) -> Result {
        try body(try liveHandle())
    }

    // MARK: Endpoints

    public func bind(_ endpoint: String) throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_bind(handle, endpoint) != 0 { throw .last() }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_connect(handle, endpoint) != 0 { throw .last() }
    }

    public func unbind(_ endpoint: String) throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_unbind(handle, endpoint) != 0 { throw .last() }
    }

    public func disconnect(_ endpoint: String) throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_disconnect(handle, endpoint) != 0 { throw .last() }
    }

    /// The endpoint most recently bound or connected, with wildcard ports resolved,
    /// e.g. `tcp://127.0.0.1:40123` after binding `tcp://127.0.0.1:*`.
    public var lastEndpoint: String {
        get throws(ZMQError) { try stringOption(ZMQ_LAST_ENDPOINT) }
    }

    // MARK: Messages

    /// Sends `frames` as one multipart message.
    ///
    /// - Returns: `false` if `dontWait` is set and the message could not be queued right now.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(ZMQError) -> Bool {
        let handle = try liveHandle()
        // A message with no parts does not exist in ZeroMQ; sending nothing would be a silent no-op.
        guard !frames.isEmpty else { throw .invalidArgument }
        for index in frames.indices {
            var flags: Int32 = index == frames.index(before: frames.endIndex) ? 0 : ZMQ_SNDMORE
            // Later parts of a message are queued atomically with the first, so only the
            // first part can legitimately report EAGAIN.
            if dontWait { flags |= ZMQ_DONTWAIT }
            while true {
                let rc = frames[index].withUnsafeBytes { bytes in
                    zmq_send(handle, bytes.baseAddress, bytes.count, flags)
                }
                if rc >= 0 { break }
                let error = ZMQError.last()
                if error.isInterrupted { continue }
                if error.isAgain && index == frames.startIndex { return false }
                throw error
            }
        }
        return true
    }

    @discardableResult
    public func send(_ frames: [String], dontWait: Bool = false) throws(ZMQError) -> Bool {
        try send(frames.map { Array($0.utf8) }, dontWait: dontWait)
    }

    /// Receives one whole multipart message. Parts beyond `maxFrames` are taken off the socket
    /// and dropped without being copied (counted in `discardedFrames`), so a peer sending a
    /// message of a million parts costs a loop, not memory.
    ///
    /// - Returns: `nil` if `dontWait` is set and nothing is waiting, or the receive timeout expired.
    public func receive(dontWait: Bool = false, maxFrames: Int = .max) throws(ZMQError) -> Multipart? {
        let handle = try liveHandle()
        var result = Multipart(frames: [])
        var message = zmq_msg_t()
        while true {
            guard zmq_msg_init(&message) == 0 else { throw .last() }
            // Once the first part has arrived the rest are already queued, so blocking is safe.
            let flags: Int32 = dontWait && result.frames.isEmpty ? ZMQ_DONTWAIT : 0
            if zmq_msg_recv(&message, handle, flags) < 0 {
                let error = ZMQError.last()
                zmq_msg_close(&message)
                if error.isInterrupted { continue }
                if error.isAgain && result.frames.isEmpty { return nil }
                throw error
            }
            let size = zmq_msg_size(&message)
            if result.frames.count >= maxFrames {
                result.discardedFrames += 1
            } else if size > 0, let data = zmq_msg_data(&message) {
                result.frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                result.frames.append([])
            }
            // Metadata points into the message, so it must be read before the message is closed.
            // Which part carries it depends on the socket type (a ROUTER synthesises the
            // routing-id part), so take it from whichever part has it first.
            if result.userID == nil { result.userID = Self.metadata(&message, "User-Id") }
            if result.peerAddress == nil { result.peerAddress = Self.metadata(&message, "Peer-Address") }
            let more = zmq_msg_more(&message) != 0
            zmq_msg_close(&message)
            if !more { return result }
        }
    }

    private static func metadata(_ message: inout zmq_msg_t, _ property: String) -> String? {
        guard let value = zmq_msg_gets(&message, property) else { return nil }
        return String(cString: value)
    }
}
