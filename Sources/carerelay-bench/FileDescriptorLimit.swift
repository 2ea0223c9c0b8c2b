import ArgumentParser
import Foundation

/// Each connected client costs a fleet process two descriptors (its TCP connection and the
/// socket's libzmq mailbox) and the broker one; child processes inherit the limit.
enum FileDescriptorLimit {
    /// Raises the soft limit (and the hard one, where the process may) to at least `wanted`.
    static func raise(to wanted: Int) throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur < rlim_t(wanted) else { return }
        var raised = limit
        raised.rlim_cur = rlim_t(wanted)
        raised.rlim_max = max(limit.rlim_max, rlim_t(wanted))
        if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) != 0 {
            throw ValidationError(
                "\(wanted) file descriptors are needed and only \(limit.rlim_cur) (hard \(limit.rlim_max)) can be had: raise `ulimit -n`")
        }
    }
}
