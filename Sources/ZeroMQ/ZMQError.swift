import CZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error reported by libzmq, carrying the errno value and libzmq's own text for it.
///
/// libzmq extends errno with its own codes (such as `ETERM`), so the message comes from
/// `zmq_strerror` rather than `strerror`, which would not know those codes.
public struct ZMQError: Error, Equatable, Hashable, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String

    public init(code: Int32) {
        self.code = code
        if let text = zmq_strerror(code) {
            self.message = String(cString: text)
        } else {
            self.message = "Unknown error \(code)"
        }
    }

    /// The error of the most recent failing libzmq call on this thread.
    ///
    /// Must be read straight after the failing call: any other libzmq or libc call may overwrite it.
    public static func last() -> ZMQError {
        ZMQError(code: zmq_errno())
    }

    public var description: String { "\(message) (errno \(code))" }

    public static var again: ZMQError { ZMQError(code: EAGAIN) }
    public static var hostUnreachable: ZMQError { ZMQError(code: EHOSTUNREACH) }
    public static var terminated: ZMQError { ZMQError(code: ZMQError.etermCode) }
    public static var invalidArgument: ZMQError { ZMQError(code: EINVAL) }
    public static var notSocket: ZMQError { ZMQError(code: ENOTSOCK) }
    public static var interrupted: ZMQError { ZMQError(code: EINTR) }

    /// The operation would block (non-blocking call) or a send/receive timeout expired.
    public var isAgain: Bool { code == EAGAIN }
    /// A ROUTER with `routerMandatory` was asked to send to a routing id it has no peer for.
    public var isHostUnreachable: Bool { code == EHOSTUNREACH }
    /// The context was shut down or terminated; the socket should be closed.
    public var isTerminated: Bool { code == ZMQError.etermCode }
    /// A signal interrupted a blocking call; retrying is normally correct.
    public var isInterrupted: Bool { code == EINTR }

    // zmq.h defines ETERM as an expression, which the Clang importer does not reliably expose.
    static let etermCode: Int32 = Int32(ZMQ_HAUSNUMERO) + 53
}
