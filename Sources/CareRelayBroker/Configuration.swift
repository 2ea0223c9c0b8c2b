import CareRelayModel
import CareRelayStore
import CoreMetrics
import Foundation

/// Everything the broker needs to start. Defaults are the embedded, single-machine setup.
public struct BrokerConfiguration: Sendable {
    /// Where the ROUTER socket binds, e.g. "tcp://127.0.0.1:5570" or "tcp://127.0.0.1:*".
    public var endpoint: String
    /// Where messages, deliveries, care teams, consent and audit are kept: by default the
    /// embedded SQLite file at `storePath`; a PostgreSQL store lets several brokers share one.
    public var store: any StoreProvider
    /// The broker's CURVE keypair (Z85). Clients must know the public key.
    public var publicKey: String
    public var secretKey: String
    /// The largest message body accepted; larger ones are refused with message-too-large.
    public var maxBodyBytes: Int
    /// A client must send something (or PING) at least this often; silent sessions expire
    /// after three intervals and their unconfirmed deliveries go back to the mailbox.
    public var heartbeatMilliseconds: Int
    /// Response targets for referrals, by priority. Past the target an untaken referral is
    /// escalated to the team's co-ordinator and the referrer is told.
    public var responseTargets: [Priority: TimeInterval]
    /// Most commands read from the socket before one group commit.
    public var batchLimit: Int
    /// The consent policy (YAML text); nil uses the documented defaults.
    public var consentPolicyYAML: String?
    /// Source of time, so tests can move the clock instead of waiting.
    public var clock: @Sendable () -> Date
    /// CURVE, or for local development only PLAIN on loopback (see `ConnectionSecurity`).
    public var security: ConnectionSecurity
    /// Where the broker's counters go (e.g. a Prometheus registry); the default records nothing.
    public var metricsFactory: any MetricsFactory
    /// Most messages libzmq queues from one connection before it stops reading that
    /// connection's socket (ZMQ_RCVHWM; TCP then pushes back on the sender). With the
    /// largest frame libzmq accepts this bounds what one connection holds in the broker's
    /// memory (Protocols/CRP.md, security considerations). A client waits for its answers,
    /// so it never has many commands queued.
    public var receiveQueueMessages: Int = 32
    /// How long a new connection may take over its handshake before it is dropped.
    public var handshakeMilliseconds: Int = 5_000
    /// When a key that keeps sending malformed commands is ignored for a while.
    public var refusalLimits = RefusalLimits()
    /// How long an enrolment code works unless its issuer says otherwise (`enrol.issue`).
    public var enrolmentHours = 48
    /// The channels the site has set up for notifications (the `--notifications` file); nil
    /// plans none.
    public var notifications: NotificationSite?
    /// Called on the loop after notifications were stored, to wake whoever sends them.
    public var notificationsQueued: (@Sendable () -> Void)?

    public init(
        endpoint: String = "tcp://127.0.0.1:5570", storePath: String, store: (any StoreProvider)? = nil, publicKey: String, secretKey: String,
        maxBodyBytes: Int = 1 << 20, heartbeatMilliseconds: Int = 5_000,
        responseTargets: [Priority: TimeInterval] = BrokerConfiguration.defaultResponseTargets,
        batchLimit: Int = 512, consentPolicyYAML: String? = nil,
        clock: @escaping @Sendable () -> Date = { Date() },
        metricsFactory: any MetricsFactory = NOOPMetricsHandler.instance, security: ConnectionSecurity = .curve
    ) {
        self.endpoint = endpoint
        self.store = store ?? SQLiteStoreProvider(path: storePath)
        self.publicKey = publicKey
        self.secretKey = secretKey
        self.maxBodyBytes = maxBodyBytes
        self.heartbeatMilliseconds = heartbeatMilliseconds
        self.responseTargets = responseTargets
        self.batchLimit = batchLimit
        self.consentPolicyYAML = consentPolicyYAML
        self.clock = clock
        self.security = security
        self.metricsFactory = metricsFactory
    }

    /// From the services in the seeds: Torbay answers within 1 hour, Gwent within 4, Midhurst
    /// and Oxleas the same day (taken as 8 working hours), Sandwell within 3 days.
    public static let defaultResponseTargets: [Priority: TimeInterval] = [
        .emergency: 3_600, .urgent: 4 * 3_600, .sameDay: 8 * 3_600, .routine: 3 * 86_400,
    ]
}
