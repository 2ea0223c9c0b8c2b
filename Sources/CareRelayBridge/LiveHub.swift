import CareRelayModel
import CareRelayProtocol
import Foundation
import Synchronization

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
public final class LiveHub: Sendable {
    private struct State {
        var closed = false
        var listeners: [UUID: (carer: PersonID, patient: NHSNumber?, continuation: AsyncStream<LiveEvent>.Continuation)] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Events for one carer (and one patient, when given) until the stream is dropped.
    public func subscribe(carer: PersonID, patient: NHSNumber?) -> AsyncStream<LiveEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<LiveEvent>.makeStream(bufferingPolicy: .bufferingNewest(32))
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.state.withLock { $0.listeners[id] = nil }
        }
        let closed = state.withLock { state in
            if !state.closed { state.listeners[id] = (carer, patient, continuation) }
            return state.closed
        }
        if closed { continuation.finish() }
        return stream
    }

    public func publish(_ event: LiveEvent) {
        let targets = state.withLock { state in
            state.listeners.values.filter { $0.carer == event.carer && ($0.patient == nil || $0.patient == event.patient) }
        }
        for target in targets { target.continuation.yield(event) }
    }

    /// Ends every open stream (at shutdown, so open pages do not hold the server up).
    public func finishAll() {
        let all = state.withLock { state in
            state.closed = true
            let all = state.listeners.values.map(\.continuation)
            state.listeners.removeAll()
            return all
        }
        for continuation in all { continuation.finish() }
    }

    public var listenerCount: Int {
        state.withLock { $0.listeners.count }
    }
}
