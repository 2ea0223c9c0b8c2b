import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A loopback TCP proxy in front of the test's PostgreSQL server that can stop passing bytes
/// without closing anything: what a database that hangs, or a network that drops packets,
/// looks like from the broker. Only this test's connections go through it, so other suites on
/// the same server are not disturbed. Used by the store and broker tests.
///
/// `@unchecked Sendable`: `frozen`, `stopped` and `sockets` are read and written only with
/// `gate` held; the rest is constant. `gate` is an `NSCondition`, not a `Mutex`, because the
/// pumping threads wait on it while the proxy is frozen.
public final class FreezingProxy: @unchecked Sendable {
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let gate = NSCondition()
    private var frozen = false
    private var stopped = false
    private var sockets: [Int32] = []

    public init(toLoopbackPort targetPort: Int) throws {
        self.targetPort = targetPort
        let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listening >= 0 else { throw ProxyError("socket: \(errno)") }
        var address = LoopbackSocket.address(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(listening, 16) == 0 else { throw ProxyError("bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listening, $0, &length) }
        }
        listener = listening
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// From now on no byte passes, in either direction, until `thaw`.
    public func freeze() { gate.lock(); frozen = true; gate.unlock() }
    public func thaw() { gate.lock(); frozen = false; gate.broadcast(); gate.unlock() }

    public func stop() {
        gate.lock()
        stopped = true
        frozen = false
        gate.broadcast()
        let open = sockets
        gate.unlock()
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for socket in open { shutdown(socket, Int32(SHUT_RDWR)) }
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            guard let server = LoopbackSocket.connect(port: targetPort) else { close(client); continue }
            gate.lock(); sockets += [client, server]; gate.unlock()
            Thread.detachNewThread { [self] in pump(from: client, to: server) }
            Thread.detachNewThread { [self] in pump(from: server, to: client) }
        }
    }

    /// Copies one direction, holding each chunk while frozen; an end on one side ends the other.
    private func pump(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        defer { shutdown(destination, Int32(SHUT_WR)) }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            gate.lock()
            while frozen && !stopped { gate.wait() }
            let stop = stopped
            gate.unlock()
            if stop { return }
            var sent = 0
            while sent < count {
                let wrote = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
                guard wrote > 0 else { return }
                sent += wrote
            }
        }
    }

    public struct ProxyError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
