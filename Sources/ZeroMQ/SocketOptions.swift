import CZeroMQ

// Options are getters plus `set…` methods rather than settable properties because
// setting an option can fail and Swift property setters cannot throw.
extension Socket {
    // MARK: Raw access

    func setOption(_ option: Int32, _ value: Int32) throws(ZMQError) {
        let handle = try liveHandle()
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) != 0 { throw .last() }
    }

    func setOption(_ option: Int32, _ value: Bool) throws(ZMQError) {
        try setOption(option, Int32(value ? 1 : 0))
    }

    func setOption(_ option: Int32, _ value: Int64) throws(ZMQError) {
        let handle = try liveHandle()
        var value = value
        if zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) != 0 { throw .last() }
    }

    func setOption(_ option: Int32, _ value: [UInt8]) throws(ZMQError) {
        let handle = try liveHandle()
        let rc = value.withUnsafeBytes { bytes in
            zmq_setsockopt(handle, option, bytes.baseAddress, bytes.count)
        }
        if rc != 0 { throw .last() }
    }

    func int32Option(_ option: Int32) throws(ZMQError) -> Int32 {
        let handle = try liveHandle()
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        if zmq_getsockopt(handle, option, &value, &size) != 0 { throw .last() }
        return value
    }

    func int64Option(_ option: Int32) throws(ZMQError) -> Int64 {
        let handle = try liveHandle()
        var value: Int64 = 0
        var size = MemoryLayout<Int64>.size
        if zmq_getsockopt(handle, option, &value, &size) != 0 { throw .last() }
        return value
    }

    func bytesOption(_ option: Int32, capacity: Int = 256) throws(ZMQError) -> [UInt8] {
        let handle = try liveHandle()
        var buffer = [UInt8](repeating: 0, count: capacity)
        var size = capacity
        let rc = buffer.withUnsafeMutableBytes { bytes in
            zmq_getsockopt(handle, option, bytes.baseAddress, &size)
        }
        if rc != 0 { throw .last() }
        return Array(buffer.prefix(min(size, capacity)))
    }

    func stringOption(_ option: Int32) throws(ZMQError) -> String {
        // String options come back NUL-terminated, and the NUL is counted in the size.
        let bytes = try bytesOption(option, capacity: 1024)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    // MARK: Identity and routing

    /// The identity peers route to this socket by. At most 255 bytes, and must not start with 0.
    public var routingID: [UInt8] {
        get throws(ZMQError) { try bytesOption(ZMQ_ROUTING_ID) }
    }
    public func setRoutingID(_ id: [UInt8]) throws(ZMQError) { try setOption(ZMQ_ROUTING_ID, id) }
    public func setRoutingID(_ id: String) throws(ZMQError) { try setRoutingID(Array(id.utf8)) }

    /// Makes a ROUTER fail sends to unknown routing ids with `EHOSTUNREACH` instead of dropping them.
    public func setRouterMandatory(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_ROUTER_MANDATORY, on) }

    /// Lets a new connection take over a routing id still held by an older connection.
    public func setRouterHandover(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_ROUTER_HANDOVER, on) }

    /// Queues messages only to completed connections, so sends do not pile up for absent peers.
    public var immediate: Bool {
        get throws(ZMQError) { try int32Option(ZMQ_IMMEDIATE) != 0 }
    }
    public func setImmediate(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_IMMEDIATE, on) }

    // MARK: Queues and timeouts (milliseconds; -1 means infinite)

    public var linger: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_LINGER) }
    }
    public func setLinger(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_LINGER, milliseconds) }

    public var sendHighWaterMark: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_SNDHWM) }
    }
    public func setSendHighWaterMark(_ messages: Int32) throws(ZMQError) { try setOption(ZMQ_SNDHWM, messages) }

    public var receiveHighWaterMark: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_RCVHWM) }
    }
    public func setReceiveHighWaterMark(_ messages: Int32) throws(ZMQError) { try setOption(ZMQ_RCVHWM, messages) }

    public var receiveTimeout: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_RCVTIMEO) }
    }
    public func setReceiveTimeout(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_RCVTIMEO, milliseconds) }

    public var sendTimeout: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_SNDTIMEO) }
    }
    public func setSendTimeout(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_SNDTIMEO, milliseconds) }

    /// Largest inbound message accepted; a peer sending more is disconnected. -1 means no limit.
    public var maxMessageSize: Int64 {
        get throws(ZMQError) { try int64Option(ZMQ_MAXMSGSIZE) }
    }
    public func setMaxMessageSize(_ bytes: Int64) throws(ZMQError) { try setOption(ZMQ_MAXMSGSIZE, bytes) }

    /// How long a new connection may take over its ZMTP/CURVE handshake before it is dropped
    /// (libzmq's default is 30 s); bounds how long a connection that sends nothing useful lives.
    public func setHandshakeInterval(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_HANDSHAKE_IVL, milliseconds) }

    // MARK: Heartbeats (ZMTP 3.1 PING/PONG, milliseconds)

    public var heartbeatInterval: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_HEARTBEAT_IVL) }
    }
    public func setHeartbeatInterval(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_HEARTBEAT_IVL, milliseconds) }

    /// How long the remote peer should wait for traffic before it gives up on this socket.
    public var heartbeatTTL: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_HEARTBEAT_TTL) }
    }
    public func setHeartbeatTTL(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_HEARTBEAT_TTL, milliseconds) }

    /// How long to wait for any traffic after a PING before declaring the peer dead.
    public var heartbeatTimeout: Int32 {
        get throws(ZMQError) { try int32Option(ZMQ_HEARTBEAT_TIMEOUT) }
    }
    public func setHeartbeatTimeout(_ milliseconds: Int32) throws(ZMQError) { try setOption(ZMQ_HEARTBEAT_TIMEOUT, milliseconds) }

    // MARK: Subscriptions

    public func subscribe(_ prefix: [UInt8]) throws(ZMQError) { try setOption(ZMQ_SUBSCRIBE, prefix) }
    public func subscribe(_ prefix: String) throws(ZMQError) { try subscribe(Array(prefix.utf8)) }
    public func unsubscribe(_ prefix: [UInt8]) throws(ZMQError) { try setOption(ZMQ_UNSUBSCRIBE, prefix) }
    public func unsubscribe(_ prefix: String) throws(ZMQError) { try unsubscribe(Array(prefix.utf8)) }

    // MARK: Security

    public var curveServer: Bool {
        get throws(ZMQError) { try int32Option(ZMQ_CURVE_SERVER) != 0 }
    }
    public func setCurveServer(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_CURVE_SERVER, on) }

    /// Keys are 40-character Z85 text. They are decoded here, not by libzmq, so malformed
    /// text is rejected with `EINVAL` and never read past its end.
    public func setCurvePublicKey(_ z85: String) throws(ZMQError) { try setOption(ZMQ_CURVE_PUBLICKEY, Self.curveKey(z85)) }
    public func setCurveSecretKey(_ z85: String) throws(ZMQError) { try setOption(ZMQ_CURVE_SECRETKEY, Self.curveKey(z85)) }
    /// The server's public key, which a CURVE client must know before connecting.
    public func setCurveServerKey(_ z85: String) throws(ZMQError) { try setOption(ZMQ_CURVE_SERVERKEY, Self.curveKey(z85)) }

    /// PLAIN sends its username and password in clear text: CareRelay uses it only for the
    /// broker's insecure development mode, which binds loopback alone.
    public func setPlainServer(_ on: Bool) throws(ZMQError) { try setOption(ZMQ_PLAIN_SERVER, on) }
    public func setPlainUsername(_ name: String) throws(ZMQError) { try setOption(ZMQ_PLAIN_USERNAME, Array(name.utf8)) }
    public func setPlainPassword(_ password: String) throws(ZMQError) { try setOption(ZMQ_PLAIN_PASSWORD, Array(password.utf8)) }

    /// The ZAP domain; with the NULL mechanism ZAP is only consulted when this is non-empty.
    public var zapDomain: String {
        get throws(ZMQError) { try stringOption(ZMQ_ZAP_DOMAIN) }
    }
    public func setZAPDomain(_ domain: String) throws(ZMQError) { try setOption(ZMQ_ZAP_DOMAIN, Array(domain.utf8)) }

    private static func curveKey(_ z85: String) throws(ZMQError) -> [UInt8] {
        let key = try Z85.decode(z85)
        guard key.count == CurveKeyPair.keyLength else { throw .invalidArgument }
        return key
    }

    // MARK: State

    /// Whether a message can be received or sent right now without blocking.
    public var events: PollEvents {
        get throws(ZMQError) { PollEvents(rawValue: Int16(truncatingIfNeeded: try int32Option(ZMQ_EVENTS))) }
    }
}
