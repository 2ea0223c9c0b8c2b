import CareRelayBroker
import CareRelayClient
import CareRelayHarness
import CareRelayModel
import CareRelayPostgres
import CareRelayProtocol
import CareRelayStore
import Foundation
import Testing

/// A broker whose PostgreSQL database stops answering (a restart, a lost network): senders are
/// refused with `500 store-unavailable` within the store's time-out instead of meeting a broker
/// that hangs; once the database answers, the same key is accepted and a receiver that stayed
/// connected throughout gets it without a new HELLO; and the broker stops when asked, even
/// while the database is silent. Through a proxy the test freezes, so other suites sharing the
/// test server are not disturbed.
@Suite(.enabled(if: CareSystem.postgres != nil, "needs a PostgreSQL server: run Scripts/test, or set CARERELAY_TEST_POSTGRES"))
struct StoreFaultTests {
    @Test func aSilentDatabaseMeansRefusalsNotAHungBroker() throws {
        let system = try CareSystem()
        let database = try #require(try CareSystem.newPostgresDatabase())
        let proxy = try FreezingProxy(toLoopbackPort: database.port)
        defer { proxy.stop() }
        var location = database
        location.port = proxy.port
        location.timeout = .milliseconds(500)
        system.store = PostgresStoreProvider(location)
        try system.start()

        let gp = try system.client("gp.khan", receive: false, replyTimeout: .seconds(15))
        let lee = try system.client("sw.lee")
        let first = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "before", body: try Bodies.referral())
        #expect(try lee.expectDelivery().header.id == first.id)

        proxy.freeze()
        let started = ContinuousClock.now
        #expect(refusal { try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "during", body: try Bodies.referral()) }
                == .storeUnavailable)
        #expect(ContinuousClock.now - started < .seconds(10), "refused within the store's time-out, not left waiting")
        // The loop is not stuck: it still answers what needs no store.
        try gp.ping()

        proxy.thaw()
        let resent = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "during", body: try Bodies.referral())
        #expect(!resent.duplicate, "nothing was stored while the database was silent")
        #expect(try lee.expectDelivery().header.id == resent.id, "the receiver that stayed connected gets it, no new HELLO")

        // Stopping while the database is silent and a send waits on it.
        proxy.freeze()
        // Used by that thread alone.
        nonisolated(unsafe) let another = try system.client("gp.khan", receive: false, replyTimeout: .seconds(15))
        let body = try Bodies.referral()
        let sender = Thread { _ = try? another.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "at-stop", body: body) }
        sender.start()
        let stopping = ContinuousClock.now
        system.stop()
        #expect(ContinuousClock.now - stopping < .seconds(10), "the broker stopped within its store's time-out")
    }
}
