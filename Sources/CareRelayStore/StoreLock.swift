import Foundation
import Synchronization
#if canImport(Glibc)
    import Glibc
#endif

/// An exclusive advisory lock on `<store>.lock`, held for as long as one writer has the store
/// open. The kernel drops it when the process ends, however it ends, so a broker killed with
/// SIGKILL never leaves a stale lock behind.
final class StoreLock: Sendable {
    /// The open lock file; nil once released.
    private let descriptor: Mutex<Int32?>

    init(storePath: String) throws {
        let lockPath = storePath + ".lock"
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw StoreError.unavailable("cannot open \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StoreError.inUse(storePath)
        }
        descriptor = Mutex(fd)
    }

    /// Gives the lock up; safe to call more than once.
    func release() {
        descriptor.withLock { descriptor in
            guard let fd = descriptor else { return }
            flock(fd, LOCK_UN)
            close(fd)
            descriptor = nil
        }
    }

    deinit { release() }
}
