import Foundation
import Testing
import ZeroMQ

/// Debian's libzmq 4.3.4 aborts the process when a peer resets a connection whose inbound
/// queue is full: the engine stops reading at the high-water mark, the reset is then found
/// while input is stopped (stream_engine_base.cpp: `rm_fd`, `_io_error = true`, the engine
/// kept alive to hand over what it has read), and before the application drains the queue
/// (1) the heartbeat timer, or (2) a ZMTP PING among the input already read, calls
/// `out_event`, which asserts `!_io_error`: SIGABRT. Scripts/libzmq/build patches it;
/// Scripts/libzmq/reproduce.c shows both ways in C. The test below takes way (2), which
/// aborts Debian's build within a few rounds.
///
/// On a library without the patch the reproduction aborts the whole test process, so it
/// runs only on the patched build or when CARERELAY_REPRODUCE_LIBZMQ_ABORT=1 asks to see
/// the abort; otherwise the library itself is reported as the failure.
@Suite struct ResetAfterFloodTests {
    static var mayRun: Bool {
        ZMQLibrary.carerelayPatchLevel != nil || ProcessInfo.processInfo.environment["CARERELAY_REPRODUCE_LIBZMQ_ABORT"] == "1"
    }

    @Test func theLibraryIsThePatchedBuild() {
        #expect(
            ZMQLibrary.carerelayPatchLevel != nil,
            """
            libzmq \(ZMQLibrary.versionString) lacks CareRelay's patch: a client that floods a connection and resets it can \
            abort the broker. Run Scripts/setup (Scripts/libzmq/build), or set CARERELAY_REPRODUCE_LIBZMQ_ABORT=1 to see the abort.
            """)
    }

    /// (2) A PING already read: the client sends ZMTP heartbeats between its messages; the
    /// server has none of its own (so turning the broker's heartbeats off would not help).
    @Test(.enabled(if: mayRun)) func clientPingAmongBufferedInputAfterAReset() throws {
        try reproduce(serverHeartbeat: false, clientHeartbeat: true, rounds: 30)
    }

    /// Rounds of: the client floods a server that is not reading, then resets; the server then
    /// drains. `serverHeartbeat` adds way (1), `clientHeartbeat` way (2).
    private func reproduce(serverHeartbeat: Bool, clientHeartbeat: Bool, rounds: Int) throws {
        let context = try ZMQContext()
        let server = try context.makeSocket(.router)
        try server.setReceiveHighWaterMark(10)
        if serverHeartbeat {
            try server.setHeartbeatInterval(20)
            // Long enough that the silent client is not dropped for missing PONGs first.
            try server.setHeartbeatTimeout(10_000)
        }
        try server.bind("tcp://127.0.0.1:*")
        let endpoint = try server.lastEndpoint
        let payload = [UInt8](repeating: 0x78, count: 100)
        for round in 0..<rounds {
            let client = try context.makeSocket(.dealer)
            try client.setReceiveHighWaterMark(1)
            // Sends block once 1,000 wait here, so by the end of the flood most of it has
            // left for the server, whose queue is then full and its input stopped.
            try client.setSendHighWaterMark(1_000)
            try client.setSendTimeout(5_000)
            if clientHeartbeat {
                try client.setHeartbeatInterval(1)
                try client.setHeartbeatTimeout(10_000)
            }
            try client.setLinger(0)
            try client.connect(endpoint)
            // The server answers the first message 2,000 times; the client reads none of it,
            // so its close resets the connection (unread data in its socket).
            try client.send([payload])
            try server.setReceiveTimeout(5_000)
            let first = try #require(try server.receive(), "round \(round): nothing arrived")
            for _ in 0..<2_000 { try server.send([first.frames[0], payload], dontWait: true) }
            // A flood far beyond the server's queue of 10, with pauses so the client's ZMTP
            // PINGs fall among the messages; the server reads none of it yet.
            for index in 0..<(clientHeartbeat ? 2_000 : 20_000) {
                try client.send([payload])
                if clientHeartbeat, index % 10 == 0 { Thread.sleep(forTimeInterval: 0.000_3) }
            }
            // The client has an answer waiting: the connection is up and answers are unread.
            _ = try poll([PollItem(client)], timeoutMilliseconds: 2_000)
            client.close()
            // Drain for a bounded time: reading is what restarts input (path 2), and the
            // heartbeat timer fires within it (path 1). Unpatched, the process aborts here.
            let deadline = ContinuousClock.now + .milliseconds(150)
            try server.setReceiveTimeout(10)
            while ContinuousClock.now < deadline { _ = try server.receive() }
        }
        server.close()
    }
}
