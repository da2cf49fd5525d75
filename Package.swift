// swift-tools-version:6.2
import PackageDescription

// CI (.ci/run) sets ROAS_WARNINGS_AS_ERRORS=1: a warning in roas's own targets fails the build there,
// while a local build only shows it. Dependencies are never affected.
let warningsAsErrors = Context.environment["ROAS_WARNINGS_AS_ERRORS"] == "1"
let strictness: [SwiftSetting] = warningsAsErrors ? [.treatAllWarnings(as: .error)] : []

let package = Package(
    name: "roas",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RoasCore", targets: ["RoasCore"]),
        .library(name: "RoasRuntime", targets: ["RoasRuntime"]),
        .library(name: "RoasGen", targets: ["RoasGen"]),
        .library(name: "RoasServer", targets: ["RoasServer"]),
        .library(name: "RoasLog", targets: ["RoasLog"]),
        .library(name: "RoasScaleOut", targets: ["RoasScaleOut"]),
        .executable(name: "roas", targets: ["roas"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // TLS for https --alert-webhook URLs (already built for postgres-nio).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // OpenSSL's libcrypto (Debian: `apt-get install libssl-dev`) for HMAC-SHA256 and constant-time compare.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        // NATS's C client (Debian: `apt-get install libnats-dev`), for the replicated log of scale-out.
        .systemLibrary(
            name: "CNats",
            pkgConfig: "libnats",
            providers: [.apt(["libnats-dev"]), .brew(["cnats"])]
        ),
        // Zstandard (Debian: `apt-get install libzstd-dev`), for the parts `roas serve --nats` appends.
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        // CRC-32C with the CPU's CRC32 instruction (SSE 4.2), for the write-ahead log's checksums.
        .target(name: "CRoasCRC32C"),
        // A cache prefetch hint (`__builtin_prefetch`), for the engine's hash tables.
        .target(name: "CRoasPrefetch"),
        // The engine and its formats: parsing, verification, attribution, windows, rows, snapshots as
        // values. No file descriptors, clocks or file APIs: time comes in as values. Its only threads
        // are the partition workers an engine with `--workers` over 1 starts (PartitionWorkers).
        .target(
            name: "RoasCore",
            dependencies: [
                "COpenSSL",
                "CZstd",
                "CRoasCRC32C",
                "CRoasPrefetch",
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        // The drivers around the engine: the system clock, the reading and parsing threads of
        // `roas run`, byte sinks, the write-ahead log and checkpoints.
        .target(
            name: "RoasRuntime",
            dependencies: [
                "RoasCore",
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // A replicated, append-only log behind a small interface (append with an id, read from a
        // sequence, the last message on a subject), and its NATS JetStream backend. Knows no roas types.
        .target(name: "RoasLog", dependencies: ["CNats"]),
        // Scale-out on the replicated log: where things live on a stream, and `roas worker`.
        .target(name: "RoasScaleOut", dependencies: ["RoasCore", "RoasRuntime", "RoasLog"]),
        // `roas gen`: the seeded event generator and its TCP and HTTP senders (SwiftNIO only).
        .target(
            name: "RoasGen",
            dependencies: [
                "RoasCore",
                "RoasRuntime",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // `roas serve`: TCP and HTTP ingest into the same engine, live views, metrics and the dashboard.
        .target(
            name: "RoasServer",
            dependencies: [
                "RoasCore",
                "RoasRuntime",
                "RoasLog",
                "RoasScaleOut",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            // The dashboard's page, style sheet and script, compiled into the binary (no files to ship).
            resources: [
                .embedInCode("Dashboard/dashboard.html"),
                .embedInCode("Dashboard/dashboard.css"),
                .embedInCode("Dashboard/dashboard.js"),
            ]
        ),
        .executableTarget(
            name: "roas",
            dependencies: [
                "RoasCore",
                "RoasRuntime",
                "RoasGen",
                "RoasServer",
                "RoasScaleOut",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // EngineSnapshotTests checks snapshots of a generated stream (RoasGen).
        .testTarget(name: "RoasCoreTests", dependencies: ["RoasCore", "RoasGen", "RoasCoreTestSupport", "RoasTestSupport"]),
        .testTarget(name: "RoasRuntimeTests", dependencies: ["RoasRuntime", "RoasCore", "RoasCoreTestSupport", "RoasTestSupport"]),
        .testTarget(name: "RoasLogTests", dependencies: ["RoasLog", "CNats", "RoasTestSupport"]),
        .testTarget(name: "RoasGenTests", dependencies: ["RoasGen", "RoasRuntime", "RoasCore"]),
        .testTarget(name: "RoasScaleOutTests", dependencies: ["RoasScaleOut", "RoasLog", "RoasRuntime", "RoasCore"]),
        .testTarget(
            name: "RoasServerTests",
            dependencies: [
                "RoasServer", "RoasCore", "RoasRuntime", "RoasGen", "RoasTestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "roasTests", dependencies: ["roas", "RoasCore", "RoasRuntime", "RoasGen", "RoasLog", "RoasScaleOut", "RoasTestSupport"]),
        // What the test targets share: a throwaway PostgreSQL server, blocking work off the pool.
        .target(name: "RoasTestSupport", path: "Tests/RoasTestSupport"),
        // The engine tests' helpers: a seeded generator, random event streams, a pipeline harness.
        .target(name: "RoasCoreTestSupport", dependencies: ["RoasCore"], path: "Tests/RoasCoreTestSupport"),
    ],
    swiftLanguageModes: [.v6]
)

for target in package.targets where target.type != .system && !target.name.hasPrefix("CRoas") {
    target.swiftSettings = (target.swiftSettings ?? []) + strictness
}
