// swift-tools-version:6.1
// Benchmarks for RoasCore, kept out of the root package so that `swift build` / `swift test`
// there never fetch or build package-benchmark. Run from this folder:
//     swift package benchmark
import PackageDescription

let package = Package(
    name: "RoasBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "roas", path: ".."),
        // ordo-one/benchmark, formerly package-benchmark (its plugin warns about that old identity).
        // The malloc counters need the MallocInterposer trait; naming the traits leaves out the
        // Linux-Swift-6.3-only RuntimeInterposer trait and its extra package, which only the ARC
        // metrics (unused here) need.
        .package(url: "https://github.com/ordo-one/benchmark.git", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "RoasBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "RoasCore", package: "roas"),
            ],
            path: "Benchmarks/RoasBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ],
    swiftLanguageModes: [.v6]
)
