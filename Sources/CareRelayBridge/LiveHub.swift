import CareRelayModel
import CareRelayProtocol
import Foundation

/// Something the broker just delivered for a carer.
public struct LiveEvent: Sendable {
    /// Where the bridge's store put it.
    public let seq: Int64
    public let carer: PersonID
    public let patient: NHSNumber?
    public let header: DeliverHeader
    public let body: [UInt8]
}

/// Fans delivered messages out to the pages a carer has open (Server-Sent Events).
public final class LiveHub: @unchecked Sendable {
    private let lock = NSLock()
    private var closed = false
    private var listeners: [UUID: (carer: PersonID, patient: NHSNumber?, continuation: AsyncStream<LiveEvent>.Continuation)] = [:]

    public init() {}

    /// Events for one carer (and one patient, when given) until the stream is dropped.
    public func subscribe(carer: PersonID, patient: NHSNumber?) -> AsyncStream<LiveEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<LiveEvent>.makeStream(bufferingPolicy: .bufferingNewest(32))
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.lock.lock()
            self.listeners[id] = nil
            self.lock.unlock()
        }
        lock.lock()
        if closed {
            lock.unlock()
            continuation.finish()
            return stream
        }
        listeners[id] = (carer, patient, continuation)
        lock.unlock()
        return stream
    }

    public func publish(_ event: LiveEvent) {
        lock.lock()
        let targets = listeners.values.filter { $0.carer == event.carer && ($0.patient == nil || $0.patient == event.patient) }
        lock.unlock()
        for target in targets { target.continuation.yield(event) }
    }

    /// Ends every open stream (at shutdown, so open pages do not hold the server up).
    public func finishAll() {
        lock.lock()
        closed = true
        let all = listeners.values.map(\.continuation)
        listeners.removeAll()
        lock.unlock()
        for continuation in all { continuation.finish() }
    }

    public var listenerCount: Int {
        lock.lock(); defer { lock.unlock() }
        return listeners.count
    }
}
