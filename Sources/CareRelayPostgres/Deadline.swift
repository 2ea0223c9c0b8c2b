import Foundation
import NIOCore
import Synchronization

extension EventLoopFuture where Value: Sendable {
    /// Waits for the answer, but no longer than `limit`: nil when none came in time. The
    /// broker's loop calls the store and waits for it, so nothing it calls may wait without a
    /// deadline: a database that stops answering (a restart, a lost network) must turn into a
    /// refusal the loop can act on, never into a loop that waits for good.
    func wait(atMost limit: Duration) throws -> Value? {
        let answered = DispatchSemaphore(value: 0)
        let answer = Answer<Value>()
        whenComplete { result in
            answer.set(result)
            answered.signal()
        }
        let nanoseconds = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        guard answered.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .success, let result = answer.get() else { return nil }
        return try result.get()
    }
}

/// The result handed from the event loop to the waiting thread.
private final class Answer<Value: Sendable>: Sendable {
    private let result = Mutex<Result<Value, any Error>?>(nil)

    func set(_ result: Result<Value, any Error>) {
        self.result.withLock { $0 = result }
    }

    func get() -> Result<Value, any Error>? {
        result.withLock { $0 }
    }
}
