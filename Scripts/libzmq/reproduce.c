// Reproduces libzmq 4.3.4's "Assertion failed: !_io_error (src/stream_engine_base.cpp:331)"
// both ways, in one process over loopback TCP. Use it to decide whether a libzmq still needs
// io-error-out-event.patch: on Debian's build each mode aborts (exit status 134) within a few
// rounds; on a fixed build both print "survived".
//
//   cc -O1 -o /tmp/reproduce Scripts/libzmq/reproduce.c -lzmq
//   /tmp/reproduce A 10      # the server's heartbeat timer (the broker sets ZMQ_HEARTBEAT_IVL)
//   /tmp/reproduce B 60      # a client's ZMTP PING among input already read (no server heartbeat)
//   LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu /tmp/reproduce B 60    # Debian's copy, not /usr/local's
//
// Each round: the server answers the client 2,000 times; the client reads nothing (RCVHWM 1,
// so the answers wait unread in its socket), floods the server, whose queue (RCVHWM 10) fills
// and input stops, and closes with linger 0, which resets the connection. The server then
// drains. The sleeps give the I/O threads time to move data; this is a demonstration, not a test.
#include <zmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3 || (argv[1][0] != 'A' && argv[1][0] != 'B')) {
        fprintf(stderr, "usage: %s A|B ROUNDS\n", argv[0]);
        return 2;
    }
    char mode = argv[1][0];
    int rounds = atoi(argv[2]);
    void *ctx = zmq_ctx_new();
    void *server = zmq_socket(ctx, ZMQ_ROUTER);
    int hwm = 10;
    zmq_setsockopt(server, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (mode == 'A') {
        int ivl = 20, timeout = 10000;
        zmq_setsockopt(server, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
        zmq_setsockopt(server, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
    }
    zmq_bind(server, "tcp://127.0.0.1:*");
    char endpoint[256];
    size_t length = sizeof endpoint;
    zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, endpoint, &length);
    for (int round = 0; round < rounds; round++) {
        void *client = zmq_socket(ctx, ZMQ_DEALER);
        if (mode == 'B') {
            int ivl = 1, timeout = 10000;
            zmq_setsockopt(client, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
            zmq_setsockopt(client, ZMQ_HEARTBEAT_TIMEOUT, &timeout, sizeof timeout);
        }
        int zero = 0, one = 1;
        zmq_setsockopt(client, ZMQ_SNDHWM, &zero, sizeof zero);
        zmq_setsockopt(client, ZMQ_RCVHWM, &one, sizeof one);
        zmq_connect(client, endpoint);
        char buf[100];
        memset(buf, 'x', sizeof buf);
        zmq_send(client, buf, sizeof buf, 0);
        char id[256];
        int idlen = zmq_recv(server, id, sizeof id, 0);
        zmq_recv(server, buf, sizeof buf, 0);
        for (int i = 0; i < 2000; i++) {
            zmq_send(server, id, idlen, ZMQ_SNDMORE);
            zmq_send(server, buf, sizeof buf, 0);
        }
        int count = mode == 'B' ? 2000 : 20000;
        for (int i = 0; i < count; i++) {
            zmq_send(client, buf, sizeof buf, 0);
            if (mode == 'B' && i % 10 == 0) usleep(300);  // PINGs fall among the messages
        }
        usleep(50000);
        zmq_setsockopt(client, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(client);
        usleep(100000);
        zmq_msg_t message;
        zmq_msg_init(&message);
        while (zmq_msg_recv(&message, server, ZMQ_DONTWAIT) >= 0) {}
        usleep(50000);
        while (zmq_msg_recv(&message, server, ZMQ_DONTWAIT) >= 0) {}
    }
    int major, minor, patch;
    zmq_version(&major, &minor, &patch);
    printf("survived %d rounds (libzmq %d.%d.%d)\n", rounds, major, minor, patch);
    return 0;
}
