import CZeroMQ

/// Socket lifecycle events reported by `zmq_socket_monitor`.
public struct MonitorEvents: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let connected = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
    public static let connectDelayed = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_CONNECT_DELAYED))
    public static let connectRetried = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_CONNECT_RETRIED))
    public static let listening = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_LISTENING))
    public static let bindFailed = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_BIND_FAILED))
    public static let accepted = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_ACCEPTED))
    public static let acceptFailed = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_ACCEPT_FAILED))
    public static let closed = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_CLOSED))
    public static let closeFailed = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_CLOSE_FAILED))
    public static let disconnected = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
    public static let monitorStopped = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_MONITOR_STOPPED))
    public static let handshakeFailedNoDetail = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    public static let handshakeSucceeded = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    public static let handshakeFailedProtocol = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
    /// The ZAP handler refused the peer; the event value is the ZAP status code (e.g. 400).
    public static let handshakeFailedAuth = MonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))

    public static let handshakeFailed: MonitorEvents = [.handshakeFailedNoDetail, .handshakeFailedProtocol, .handshakeFailedAuth]
    public static let all = MonitorEvents(rawValue: UInt16(truncatingIfNeeded: ZMQ_EVENT_ALL))

    public var description: String {
        let names: [(MonitorEvents, String)] = [
            (.connected, "connected"), (.connectDelayed, "connectDelayed"), (.connectRetried, "connectRetried"),
            (.listening, "listening"), (.bindFailed, "bindFailed"), (.accepted, "accepted"),
            (.acceptFailed, "acceptFailed"), (.closed, "closed"), (.closeFailed, "closeFailed"),
            (.disconnected, "disconnected"), (.monitorStopped, "monitorStopped"),
            (.handshakeFailedNoDetail, "handshakeFailedNoDetail"), (.handshakeSucceeded, "handshakeSucceeded"),
            (.handshakeFailedProtocol, "handshakeFailedProtocol"), (.handshakeFailedAuth, "handshakeFailedAuth"),
        ]
        let present = names.filter { contains($0.0) }.map(\.1)
        return present.isEmpty ? "MonitorEvents(\(rawValue))" : present.joined(separator: "|")
    }
}

/// One event read from a monitor socket.
public struct MonitorEvent: Sendable, Hashable {
    public var event: MonitorEvents
    /// Event-specific: a file descriptor, an errno, a reconnect interval or a ZAP status code.
    public var value: UInt32
    public var endpoint: String

    public init(event: MonitorEvents, value: UInt32, endpoint: String) {
        self.event = event
        self.value = value
        self.endpoint = endpoint
    }

    /// Parses libzmq's two-part event message: a 6-byte header (16-bit event, 32-bit value,
    /// native byte order) and the endpoint. Returns `nil` for anything else.
    public init?(_ message: Multipart) {
        guard message.frames.count == 2, message.frames[0].count == 6 else { return nil }
        let header = message.frames[0]
        let (event, value) = header.withUnsafeBytes { bytes in
            (
                bytes.loadUnaligned(fromByteOffset: 0, as: UInt16.self),
                bytes.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            )
        }
        self.init(
            event: MonitorEvents(rawValue: event), value: value,
            endpoint: String(decoding: message.frames[1], as: UTF8.self))
    }
}

extension Socket {
    /// Publishes this socket's `events` on a PAIR socket bound at `endpoint` (must be `inproc://`).
    /// Connect a ``SocketType/pair`` socket there and read with ``receiveMonitorEvent(dontWait:)``.
    public func monitor(endpoint: String, events: MonitorEvents = .all) throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_socket_monitor(handle, endpoint, Int32(events.rawValue)) != 0 { throw .last() }
    }

    /// Stops monitoring started with ``monitor(endpoint:events:)``.
    public func stopMonitor() throws(ZMQError) {
        let handle = try liveHandle()
        if zmq_socket_monitor(handle, nil, 0) != 0 { throw .last() }
    }

    /// Reads one event on a PAIR socket connected to a monitor endpoint.
    ///
    /// - Returns: `nil` on timeout / would-block.
    /// - Throws: `EPROTO` if the message is not a monitor event.
    public func receiveMonitorEvent(dontWait: Bool = false) throws(ZMQError) -> MonitorEvent? {
        guard let message = try receive(dontWait: dontWait) else { return nil }
        guard let event = MonitorEvent(message) else { throw ZMQError(code: EPROTO) }
        return event
    }
}
