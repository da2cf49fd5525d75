// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "roas",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "RoasCore", targets: ["RoasCore"]),
        .executable(name: "roas", targets: ["roas"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        // OpenSSL's libcrypto (Debian: `apt-get install libssl-dev`) for HMAC-SHA256 and constant-time compare.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .target(
            name: "RoasCore",
            dependencies: [
                "COpenSSL",
                .product(name: "HeapModule", package: "swift-collections"),
            ]
        ),
        .executableTarget(
            name: "roas",
            dependencies: [
                "RoasCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RoasCoreTests", dependencies: ["RoasCore"]),
        .testTarget(name: "roasTests", dependencies: ["roas", "RoasCore"]),
    ],
    swiftLanguageModes: [.v6]
)
