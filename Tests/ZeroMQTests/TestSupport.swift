import Foundation
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The binary frames every round-trip test sends: edge-case sizes and every byte value.
let binaryFrames: [[UInt8]] = [
    [],
    [0x2A],
    (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) },
    Array(0...255),
]

/// A per-test inproc endpoint, so tests running in parallel can never share one.
func uniqueInproc(_ label: String) -> String {
    "inproc://\(label)-\(UUID().uuidString)"
}

/// Starts monitoring `socket` and returns the PAIR socket its events arrive on.
/// Call before bind/connect: events emitted before the PAIR connects are dropped.
func attachMonitor(to socket: Socket, events: MonitorEvents = .all) throws -> Socket {
    let endpoint = uniqueInproc("monitor")
    try socket.monitor(endpoint: endpoint, events: events)
    let pair = try socket.context.makeSocket(.pair)
    try pair.connect(endpoint)
    return pair
}

/// Reads monitor events until one in `wanted` arrives, or returns nil after `milliseconds`.
func waitForEvent(
    on monitor: Socket, _ wanted: MonitorEvents, withinMilliseconds milliseconds: Int
) throws -> MonitorEvent? {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(milliseconds)
    while clock.now < deadline {
        let remaining = deadline - clock.now
        let remainingMilliseconds = max(1, Int(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
        let ready = try poll([PollItem(monitor)], timeoutMilliseconds: remainingMilliseconds)
        guard ready[0].contains(.readable) else { continue }
        while let event = try monitor.receiveMonitorEvent(dontWait: true) {
            if !event.event.isDisjoint(with: wanted) { return event }
        }
    }
    return nil
}

/// The port of a resolved `tcp://host:port` endpoint.
func port(of endpoint: String) -> UInt16? {
    guard let colon = endpoint.lastIndex(of: ":") else { return nil }
    return UInt16(endpoint[endpoint.index(after: colon)...])
}

final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<Result>(_ body: (inout Value) -> Result) -> Result {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// A TCP peer that completes a ZMTP 3.1 NULL handshake as a DEALER and then goes silent:
/// it never reads or writes again, yet keeps the connection open, like a hung process.
final class SilentZMTPPeer {
    private let fd: Int32

    init(port: UInt16) throws {
        #if canImport(Glibc)
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EBADF) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connectIPv4(fd, $0) }
        }
        guard rc == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }

        // Greeting (RFC 23): signature, version 3.1, mechanism "NULL", as-server 0, filler.
        var greeting = [UInt8](repeating: 0, count: 64)
        greeting[0] = 0xFF
        greeting[9] = 0x7F
        greeting[10] = 3
        greeting[11] = 1
        for (offset, byte) in "NULL".utf8.enumerated() { greeting[12 + offset] = byte }
        // READY command announcing Socket-Type DEALER.
        var body: [UInt8] = [5] + Array("READY".utf8)
        body += [11] + Array("Socket-Type".utf8) + [0, 0, 0, 6] + Array("DEALER".utf8)
        let ready: [UInt8] = [0x04, UInt8(body.count)] + body
        let bytes = greeting + ready
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            close(fd)
            throw POSIXError(.EIO)
        }
    }

    deinit { close(fd) }
}

// A free function, because inside the initialiser `connect` would be looked up on the type first.
private func connectIPv4(_ fd: Int32, _ address: UnsafePointer<sockaddr>) -> Int32 {
    connect(fd, address, socklen_t(MemoryLayout<sockaddr_in>.size))
}
