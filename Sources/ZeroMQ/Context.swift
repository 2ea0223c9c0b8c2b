import CZeroMQ

/// A libzmq context: the I/O threads and the in-process (`inproc://`) namespace shared by its sockets.
///
/// libzmq documents contexts as thread-safe, hence `@unchecked Sendable`. Every ``Socket`` keeps
/// its context alive, so the context is only terminated once all of its sockets are gone;
/// otherwise `zmq_ctx_term` in `deinit` would block forever.
public final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init(ioThreads: Int = 1) throws(ZMQError) {
        guard ioThreads >= 0, ioThreads <= Int(Int32.max) else { throw .invalidArgument }
        guard let handle = zmq_ctx_new() else { throw .last() }
        if zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) != 0 {
            let error = ZMQError.last()
            zmq_ctx_term(handle)
            throw error
        }
        self.handle = handle
    }

    deinit {
        // EINTR only means a signal arrived while waiting; the context still has to go.
        while zmq_ctx_term(handle) != 0, zmq_errno() == EINTR {}
    }

    public func makeSocket(_ type: SocketType) throws(ZMQError) -> Socket {
        try Socket(context: self, type: type)
    }

    /// Makes blocking calls on this context's sockets, in any thread, fail with `ETERM`,
    /// so their owners can notice, close their sockets and let the context terminate.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }
}
