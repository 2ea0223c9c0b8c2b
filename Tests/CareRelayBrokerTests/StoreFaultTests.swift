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
    /// A broker on a new database of the test server, reached through a proxy the test can
    /// freeze, with a short time-out so that the test is quick.
    static func brokerBehindProxy() throws -> (CareSystem, FreezingProxy) {
        let system = try CareSystem()
        let database = try #require(try CareSystem.newPostgresDatabase())
        let proxy = try FreezingProxy(toLoopbackPort: database.port)
        var location = database
        location.port = proxy.port
        location.timeout = .milliseconds(500)
        system.store = PostgresStoreProvider(location)
        try system.start()
        return (system, proxy)
    }

    @Test func aSilentDatabaseMeansRefusalsNotAHungBroker() throws {
        let (system, proxy) = try Self.brokerBehindProxy()
        defer { proxy.stop() }

        let gp = try system.client("gp.khan", receive: false, replyTimeout: .seconds(15))
        let lee = try system.client("sw.lee")
        let first = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "before", body: try Bodies.referral())
        #expect(try lee.expectDelivery().header.id == first.id)

        proxy.freeze()
        let started = ContinuousClock.now
        #expect(
            refusal { try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, key: "during", body: try Bodies.referral()) }
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

    /// The database goes silent just as a receiver confirms one referral while the next waits
    /// for her credit: the confirmation cannot be written and her mailbox cannot be read. Once
    /// the database answers, the confirmation is written and the waiting referral arrives on
    /// the connection she kept, with no new HELLO; tracking shows what she confirmed.
    @Test func nothingIsLeftBehindOnALiveSessionWhenTheDatabaseComesBack() throws {
        let (system, proxy) = try Self.brokerBehindProxy()
        defer { proxy.stop() }

        let gp = try system.client("gp.khan", receive: false, replyTimeout: .seconds(15))
        let lee = try system.client("sw.lee", credit: 1)
        let first = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        let second = try gp.send(.referral, to: [.person("sw.lee")], patient: ellis, body: try Bodies.referral())
        let delivered = try #require(try lee.nextDelivery(timeout: .seconds(10)))
        #expect(delivered.header.id == first.id)
        #expect(try lee.nextDelivery(timeout: .milliseconds(300)) == nil, "one credit: the second waits")

        proxy.freeze()
        try lee.confirm([first.id])
        // Her confirmation freed the credit, but the mailbox read behind it fails meanwhile.
        #expect(try lee.nextDelivery(timeout: .seconds(2)) == nil)
        proxy.thaw()

        let next = try #require(try lee.nextDelivery(timeout: .seconds(15)), "the waiting referral arrives once the database answers")
        #expect(next.header.id == second.id)
        try lee.confirm([second.id])
        // Written by the next retry once the database takes it (the abandoned connection's
        // transaction may still hold its rows for a moment): asked until it shows, at most 15 s.
        var state: String?
        let deadline = ContinuousClock.now + .seconds(15)
        repeat {
            state = try gp.query("track", ["id": first.id], as: Tracking.self).recipients.first { $0.person == "sw.lee" }?.state
        } while state != "confirmed" && ContinuousClock.now < deadline
        #expect(state == "confirmed", "the confirmation sent while the database was silent was kept")
    }
}
