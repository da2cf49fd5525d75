// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for RoasCore (see run.sh). Build only with the sanitizers, as run.sh does:
//   swift build -c release --scratch-path .build-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing -Xswiftc -use-ld=lld
// `-enable-testing` lets the targets use RoasCore's internal API (`@testable import`).

// SwiftPM names a path dependency after its folder, so the root package's identity is the name of
// the folder this repository was cloned into.
let root = Context.packageDirectory.split(separator: "/").dropLast().last.map(String.init) ?? "roas"
let roasCore = Target.Dependency.product(name: "RoasCore", package: root)
let roasRuntime = Target.Dependency.product(name: "RoasRuntime", package: root)
let roasGen = Target.Dependency.product(name: "RoasGen", package: root)
// The write-ahead log lives in RoasRuntime; the seed corpora are made with RoasGen's generator.
let extra: [String: [Target.Dependency]] = ["FuzzLog": [roasRuntime], "FuzzSeeds": [roasRuntime, roasGen]]

let targets = ["FuzzJSON", "FuzzFrames", "FuzzEngine", "FuzzLog", "FuzzSnapshot", "FuzzParts", "FuzzSeeds"]

let package = Package(
    name: "roas-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver", roasCore]),
    ]
        + targets.map {
            .executableTarget(name: $0, dependencies: ["FuzzSupport", roasCore] + (extra[$0] ?? []))
        },
    swiftLanguageModes: [.v6]
)
