// swift-tools-version:6.2
import PackageDescription

/// Upcoming features make dependency leaks visible (`public import`) and keep existentials explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "thingdata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "thingdata", targets: ["thingdata"]),
        .executable(name: "thingdata-admin", targets: ["thingdata-admin"]),
        .library(name: "ThingDataCore", targets: ["ThingDataCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.2"),
    ],
    targets: [
        // Pure domain: model, validation, JSON values and their canonical form, search text,
        // revisions, version vectors and the merge engine. No I/O (SHA-256 from swift-crypto).
        .target(
            name: "ThingDataCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Node keys and signatures: Ed25519 key files, signing and verifying revisions.
        .target(
            name: "ThingDataSigning",
            dependencies: ["ThingDataCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Storage: the ContentStore protocol and its SQLite, PostgreSQL and in-memory implementations.
        .target(
            name: "ThingDataStore",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Federation: the peer table, signed requests, the changes feed and the sync engine
        // (runs the core's schedule and checks over HTTP with AsyncHTTPClient).
        .target(
            name: "ThingDataFederation",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // libavahi-client (mDNS/DNS-SD through avahi-daemon over D-Bus): headers and link flags
        // from `pkg-config avahi-client` (Debian: libavahi-client-dev).
        .systemLibrary(name: "CAvahi", pkgConfig: "avahi-client", providers: [.apt(["libavahi-client-dev"])]),
        // glibc's libresolv (SRV, TXT and PTR lookups); headers come with libc6-dev.
        .systemLibrary(name: "CResolv", providers: [.apt(["libc6-dev"])]),
        // Discovery: mDNS (Avahi), DNS (libresolv), peer exchange and seeds feeding the core's
        // candidate table; verified candidates join the federation's peer table.
        .target(
            name: "ThingDataDiscovery",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataFederation",
                "CAvahi",
                "CResolv",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP front (Hummingbird), configuration and the composition root.
        .target(
            name: "ThingDataServer",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataFederation",
                "ThingDataDiscovery",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "thingdata",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "thingdata-admin",
            dependencies: [
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Figures for signed revisions: `swift run -c release thingdata-bench`.
        .executableTarget(
            name: "thingdata-bench",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/thingdata-bench",
            swiftSettings: swiftSettings
        ),
        // Figures for federation: `swift run -c release thingdata-syncbench`.
        .executableTarget(
            name: "thingdata-syncbench",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataFederation",
                "ThingDataServer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/thingdata-syncbench",
            swiftSettings: swiftSettings
        ),
        // A dishonest node for testnet's byzantine scenario (tampered and forged revisions, a
        // flood of peer records): a test tool, not part of a node.
        .executableTarget(
            name: "thingdata-byzantine",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataFederation",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "testnet/byzantine",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ThingDataCoreTests",
            dependencies: ["ThingDataCore", "ThingDataSigning", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ThingDataStoreTests",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ThingDataServerTests",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataServer",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ThingDataFederationTests",
            dependencies: [
                "ThingDataCore",
                "ThingDataSigning",
                "ThingDataStore",
                "ThingDataFederation",
                "ThingDataDiscovery",
                "ThingDataServer",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresKit", package: "postgres-kit"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
