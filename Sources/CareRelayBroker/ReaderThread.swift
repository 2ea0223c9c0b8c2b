import CareRelayStore
import Dispatch
import Foundation
import Logging
import Synchronization

/// The thread that runs the reads too long for the loop (`ReadBesideTheLoop`), one at a time,
/// with a reader of the store on a connection of its own, opened on this thread when first
/// needed and opened again after a failure. The loop hands reads in (`submit`), is woken when
/// one is done, and takes the answers (`takeAnswers`); meanwhile it goes on serving.
final class ReaderThread: Sendable {
    typealias Answer = (read: ReadBesideTheLoop, result: Result<ReadOutcome, any Error>)

    private struct State {
        var waiting: [ReadBesideTheLoop] = []
        var answers: [Answer] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let work = DispatchSemaphore(value: 0)

    /// - Parameter wake: tells the loop an answer is ready (it runs on this thread).
    init(store: any StoreProvider, logger: Logger, wake: @escaping @Sendable () -> Void) {
        // The thread holds this object until it ends (`stop`).
        let thread = Thread { [self] in
            var reader: (any StoreReader)?
            while true {
                work.wait()
                guard let next = state.withLock({ $0.stopping ? nil : $0.waiting.first }) else { return }
                let result: Result<ReadOutcome, any Error>
                do {
                    let open = try reader ?? store.openReader()
                    reader = open
                    result = .success(try next.read(open))
                } catch {
                    // A fresh connection for the next read: this one may be what failed.
                    reader = nil
                    logger.error("a read beside the loop failed", metadata: ["query": "\(next.query)", "error": "\(error)"])
                    result = .failure(error)
                }
                state.withLock {
                    $0.waiting.removeFirst()
                    $0.answers.append((next, result))
                }
                wake()
            }
        }
        thread.name = "carerelay-broker.reader"
        thread.start()
    }

    func submit(_ reads: [ReadBesideTheLoop]) {
        guard !reads.isEmpty else { return }
        state.withLock { $0.waiting += reads }
        for _ in reads { work.signal() }
    }

    func takeAnswers() -> [Answer] {
        state.withLock { state in
            defer { state.answers.removeAll() }
            return state.answers
        }
    }

    /// The thread ends after the read in hand; reads still waiting are not answered.
    func stop() {
        state.withLock { $0.stopping = true }
        work.signal()
    }
}
