// swift-tools-version: 6.1
// CareRelay: a ZeroMQ message broker for integrated health and social care.
// Module arrows point one way: ZeroMQ <- Protocol/Client; Model <- Protocol, Policy, Store <- Broker.
import PackageDescription

let package = Package(
    name: "CareRelay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "carerelay-broker", targets: ["carerelay-broker"]),
        .executable(name: "carerelay", targets: ["carerelay"]),
        .executable(name: "carerelay-bridge", targets: ["carerelay-bridge"]),
        .library(name: "CareRelayClient", targets: ["CareRelayClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        // libzmq's headers live in /usr/include; naming pkgConfig here would pull in
        // libzmq.pc's Kerberos include flags, which SwiftPM refuses with a warning.
        .systemLibrary(name: "CZeroMQ"),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"]),
        .target(name: "CareRelayModel"),
        .target(name: "CareRelayProtocol", dependencies: ["CareRelayModel"]),
        // One-time codes (carers' invitations, enrolment): made by clients, kept as hashes.
        .target(name: "CareRelayCodes", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "CareRelayPolicy",
            dependencies: [
                "CareRelayModel",
                .product(name: "Yams", package: "Yams"),
            ]),
        .target(
            name: "CareRelayStore",
            dependencies: [
                "CareRelayModel",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        // The store several brokers share. Beside SQLite, never instead of it: the broker
        // sees only the MessageStore protocol.
        .target(
            name: "CareRelayPostgres",
            dependencies: [
                "CareRelayModel", "CareRelayStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Notifications leaving CareRelay: SMTP (STARTTLS, AUTH), an SMS gateway's HTTP API and
        // signed webhooks, sent from the store's outbox. Knows nothing of the broker.
        .target(
            name: "CareRelayNotify",
            dependencies: [
                "CareRelayModel", "CareRelayStore",
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .target(
            name: "CareRelayBroker",
            dependencies: [
                "ZeroMQ", "CareRelayModel", "CareRelayProtocol", "CareRelayPolicy", "CareRelayStore", "CareRelayCodes",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]),
        // What operators see: metrics, health, backups. Beside the broker, never in its loop.
        .target(
            name: "CareRelayOperations",
            dependencies: [
                "CareRelayBroker", "CareRelayStore", "CareRelayModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .target(
            name: "CareRelayClient",
            dependencies: [
                "ZeroMQ", "CareRelayModel", "CareRelayProtocol", "CareRelayCodes",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .executableTarget(
            name: "carerelay-broker",
            dependencies: [
                "CareRelayBroker", "CareRelayOperations", "CareRelayNotify", "CareRelayStore", "CareRelayPostgres", "ZeroMQ",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "carerelay",
            dependencies: [
                "CareRelayClient", "CareRelayCodes", "ZeroMQ", "CareRelayModel", "CareRelayProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]),
        // The carers' web app: a trusted gateway in front of the broker.
        .target(
            name: "CareRelayBridge",
            dependencies: [
                "CareRelayClient", "CareRelayCodes", "CareRelayModel", "CareRelayProtocol", "ZeroMQ",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "carerelay-bridge",
            dependencies: [
                "CareRelayBridge", "ZeroMQ",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .executableTarget(
            name: "carerelay-bench",
            dependencies: [
                "CareRelayBroker", "CareRelayClient", "CareRelayPolicy", "CareRelayStore", "CareRelayPostgres", "CareRelayHarness", "ZeroMQ",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Reliability under faults, load and hostile input (RELIABILITY.md, Scripts/soak).
        .target(name: "CareRelayFuzzing", dependencies: ["CareRelayModel", "CareRelayProtocol"]),
        // The seeded generator by default; built with -sanitize=fuzzer -DLIBFUZZER by Scripts/soak.
        .executableTarget(
            name: "carerelay-fuzz",
            dependencies: [
                "CareRelayFuzzing",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Test and soak support: broker processes, a freezing proxy, raw sockets, and the
        // loopback mail and HTTP servers with throw-away certificates.
        .target(name: "CareRelayHarness", dependencies: ["ZeroMQ"]),
        .executableTarget(
            name: "carerelay-soak",
            dependencies: [
                "CareRelayHarness", "CareRelayFuzzing", "CareRelayBroker", "CareRelayClient", "CareRelayStore", "CareRelayPostgres", "CareRelayModel",
                "CareRelayProtocol", "ZeroMQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ"]),
        .testTarget(name: "CareRelayModelTests", dependencies: ["CareRelayModel"]),
        .testTarget(name: "CareRelayProtocolTests", dependencies: ["CareRelayProtocol", "CareRelayFuzzing"]),
        .testTarget(name: "CareRelayPolicyTests", dependencies: ["CareRelayPolicy"]),
        .testTarget(
            name: "CareRelayNotifyTests", dependencies: ["CareRelayNotify", "CareRelayHarness", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "CareRelayStoreTests",
            dependencies: [
                "CareRelayStore", "CareRelayPostgres", "CareRelayHarness", .product(name: "GRDB", package: "GRDB.swift"),
            ]),
        .testTarget(
            name: "CareRelayBrokerTests",
            dependencies: [
                "CareRelayBroker", "CareRelayClient", "CareRelayCodes", "CareRelayHarness", "CareRelayFuzzing", "CareRelayOperations",
                "CareRelayStore", "CareRelayPostgres", "CareRelayNotify",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CarerelayCLITests", dependencies: ["CareRelayBroker", "CareRelayClient", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "CareRelayBridgeTests",
            dependencies: [
                "CareRelayBridge", "CareRelayBroker", "CareRelayClient", "CareRelayCodes", "CareRelayModel", "ZeroMQ",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]),
    ]
)
