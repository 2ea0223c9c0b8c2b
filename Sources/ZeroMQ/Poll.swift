import CZeroMQ

public struct PollEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    public static let readable = PollEvents(rawValue: Int16(ZMQ_POLLIN))
    public static let writable = PollEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// Only reported for raw file descriptors.
    public static let error = PollEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Something to wait on with ``poll(_:timeoutMilliseconds:)``: a socket or a raw file descriptor.
///
/// Not `Sendable`, because it holds a ``Socket``.
public struct PollItem {
    public enum Source {
        case socket(Socket)
        case fileDescriptor(Int32)
    }

    public var source: Source
    public var events: PollEvents

    public init(_ socket: Socket, events: PollEvents = .readable) {
        self.source = .socket(socket)
        self.events = events
    }

    public init(fileDescriptor: Int32, events: PollEvents = .readable) {
        self.source = .fileDescriptor(fileDescriptor)
        self.events = events
    }
}

/// Waits until at least one item is ready or the timeout expires.
///
/// - Parameter timeoutMilliseconds: `0` returns at once, `-1` waits indefinitely.
/// - Returns: the ready events for each item, in the same order; all empty on timeout.
public func poll(_ items: [PollItem], timeoutMilliseconds: Int) throws(ZMQError) -> [PollEvents] {
    var raw: [zmq_pollitem_t] = []
    raw.reserveCapacity(items.count)
    for item in items {
        switch item.source {
        case .socket(let socket):
            raw.append(zmq_pollitem_t(socket: try socket.liveHandle(), fd: 0, events: item.events.rawValue, revents: 0))
        case .fileDescriptor(let fd):
            raw.append(zmq_pollitem_t(socket: nil, fd: fd, events: item.events.rawValue, revents: 0))
        }
    }
    guard let count = Int32(exactly: raw.count) else { throw .invalidArgument }
    // withExtendedLifetime: the sockets must stay open while libzmq holds their raw handles.
    let rc = withExtendedLifetime(items) {
        raw.withUnsafeMutableBufferPointer { buffer in
            zmq_poll(buffer.baseAddress, count, timeoutMilliseconds)
        }
    }
    if rc < 0 { throw .last() }
    return raw.map { PollEvents(rawValue: $0.revents) }
}
