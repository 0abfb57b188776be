// swift-tools-version: 6.1
// vnic: an AF_XDP dataplane appliance with VNICs governed by an LMDB database.
// Layout: C system modules (CLibXDP, CLMDB), one small C shim for what Swift cannot
// import (CVnicShim), a platform-free core (VnicCore), the configuration database
// (VnicConfig), the dataplane (VnicDataplane), the lab topology (VnicLabKit), and
// one executable per contract name.
import PackageDescription

let hot: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]
// The configuration database: its fast-path reader runs in the workers' loops,
// where a dynamic exclusivity check per access of a reader's state was a tenth
// of a one-frame burst (callgrind). Overflow checks stay.
let reader: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "vnic",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vnicd", targets: ["vnicd"]),
        .executable(name: "vnicadm", targets: ["vnicadm"]),
        .executable(name: "vnic-lab", targets: ["vnic-lab"]),
        .executable(name: "vnic-pktgen", targets: ["vnic-pktgen"]),
        .executable(name: "vnic-guest", targets: ["vnic-guest"]),
        .executable(name: "vnic-cni", targets: ["vnic-cni"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.20.0"),
        // HMAC-SHA256 (guest notifications) and HMAC-MD5 (DHCP reconfigure keys).
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CLibXDP", path: "Sources/CLibXDP"),
        .systemLibrary(name: "CLMDB", path: "Sources/CLMDB"),
        .systemLibrary(name: "CVnicShared", path: "Sources/CVnicShared"),
        .systemLibrary(name: "CLibNL", path: "Sources/CLibNL", pkgConfig: "libnl-route-3.0",
                       providers: [.apt(["libnl-route-3-dev", "libnl-genl-3-dev"])]),
        .target(name: "CVnicShim", path: "Sources/CVnicShim",
                cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "VnicCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")], path: "Sources/VnicCore"),
        // What faces the kernel without being the dataplane: bpffs pin layout,
        // vnicadm check's facts and verdicts (netlink replies, /proc text).
        .target(name: "VnicPlatform", dependencies: ["VnicCore", "CVnicShared"], path: "Sources/VnicPlatform"),
        .target(name: "VnicConfig", dependencies: ["VnicCore", "CLMDB"], path: "Sources/VnicConfig", swiftSettings: reader),
        .target(name: "VnicDataplane",
                dependencies: ["VnicCore", "VnicPlatform", "VnicConfig", "CLibXDP", "CLibNL", "CVnicShim", .product(name: "Logging", package: "swift-log")],
                path: "Sources/VnicDataplane", swiftSettings: hot),
        // Around the dataplane, not in it: the pktgen engine and sink, the
        // in-memory pipeline the benchmark and the loop's unit tests drive, the
        // fuzzers' entry. They use the dataplane's package-level internals.
        .target(name: "VnicDataplaneTools", dependencies: ["VnicDataplane", "VnicConfig", "VnicCore", "CLibXDP", "CVnicShim"],
                path: "Sources/VnicDataplaneTools", swiftSettings: hot),
        .target(name: "VnicCLI", dependencies: ["VnicCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                .product(name: "Logging", package: "swift-log")],
                path: "Sources/VnicCLI"),
        // vnicd's Prometheus endpoint: swift-metrics fed from the daemon's status
        // (never from a worker), the Prometheus backend, FlyingFox's HTTP server.
        .target(name: "VnicMetrics",
                dependencies: ["VnicCore",
                               .product(name: "CoreMetrics", package: "swift-metrics"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "FlyingFox", package: "FlyingFox"),
                               .product(name: "FlyingSocks", package: "FlyingFox")],
                path: "Sources/VnicMetrics"),
        // vnicd's control plane as a library: guest, DHCP and RA services, the
        // reconciler, spoof warnings; it reaches the dataplane through a protocol.
        .target(name: "VnicControl", dependencies: ["VnicConfig", "VnicCore", .product(name: "Logging", package: "swift-log")],
                path: "Sources/VnicControl"),
        // The fleet (issue 19): etcd's v3 API through its JSON gateway (FoundationNetworking).
        .target(name: "VnicFleet", dependencies: ["VnicConfig", "VnicCore"], path: "Sources/VnicFleet"),
        .target(name: "VnicLabKit", dependencies: ["VnicCore", "VnicPlatform"], path: "Sources/VnicLabKit"),
        .executableTarget(name: "vnicd",
                          dependencies: ["VnicDataplane", "VnicControl", "VnicConfig", "VnicCore", "VnicPlatform", "VnicCLI", "VnicMetrics", "VnicFleet",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Sources/vnicd", swiftSettings: hot),
        .executableTarget(name: "vnicadm",
                          dependencies: ["VnicConfig", "VnicCore", "VnicPlatform", "VnicCLI", "VnicFleet",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/vnicadm"),
        .executableTarget(name: "vnic-lab",
                          dependencies: ["VnicLabKit", "VnicCLI",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/vnic-lab"),
        .executableTarget(name: "vnic-pktgen",
                          dependencies: ["VnicDataplane", "VnicDataplaneTools", "VnicCore", "VnicCLI",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/vnic-pktgen", swiftSettings: hot),
        .executableTarget(name: "vnic-config-bench",
                          dependencies: ["VnicConfig", "VnicCore", "CVnicShim"],
                          path: "Sources/vnic-config-bench", swiftSettings: hot),
        .target(name: "VnicGuest", dependencies: ["VnicCore"], path: "Sources/VnicGuest"),
        .executableTarget(name: "vnic-cni", dependencies: ["VnicConfig", "VnicCore"], path: "Sources/vnic-cni"),
        .executableTarget(name: "vnic-guest",
                          dependencies: ["VnicGuest", "VnicCore", "VnicCLI",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/vnic-guest"),
        // Only the in-memory loop: bench/c-forwarder's programs (xsk_fwd.c, ...) are built by bench/.
        .target(name: "CPlainForwarder", path: "bench/c-forwarder", sources: ["vnic_plain_forward.c"],
                cSettings: [.unsafeFlags(["-O2"])]),
        .executableTarget(name: "vnic-pipeline-bench",
                          dependencies: ["VnicDataplane", "VnicDataplaneTools", "VnicConfig", "VnicCore", "CPlainForwarder", "CVnicShim"],
                          path: "Sources/vnic-pipeline-bench", swiftSettings: hot),
        .executableTarget(name: "vnic-fleet-bench", dependencies: ["VnicFleet", "VnicConfig", "VnicCore"],
                          path: "Sources/vnic-fleet-bench"),
        .executableTarget(name: "vnic-protocol-bench", dependencies: ["VnicGuest", "VnicConfig", "VnicCore"],
                          path: "Sources/vnic-protocol-bench"),
        // Fuzz targets (scripts/fuzz.sh): libFuzzer entry points when built with
        // -sanitize=fuzzer -DVNIC_FUZZ, corpus replayers otherwise.
        .executableTarget(name: "vnic-fuzz-frames", dependencies: ["VnicDataplane", "VnicDataplaneTools", "VnicCore"],
                          path: "Sources/vnic-fuzz-frames"),
        .executableTarget(name: "vnic-fuzz-requests", dependencies: ["VnicCore", "VnicDataplaneTools"], path: "Sources/vnic-fuzz-requests"),
        .testTarget(name: "VnicCoreTests", dependencies: ["VnicCore"], path: "Tests/VnicCoreTests"),
        .testTarget(name: "VnicConfigTests", dependencies: ["VnicConfig"], path: "Tests/VnicConfigTests"),
        .testTarget(name: "VnicCLITests", dependencies: ["VnicCLI"], path: "Tests/VnicCLITests"),
        .testTarget(name: "VnicControlTests", dependencies: ["VnicControl", "VnicConfig", "VnicCore"], path: "Tests/VnicControlTests"),
        .testTarget(name: "VnicDataplaneTests", dependencies: ["VnicDataplane", "VnicDataplaneTools", "VnicConfig", "CVnicShim", "CLibXDP"],
                    path: "Tests/VnicDataplaneTests"),
        .testTarget(name: "VnicMetricsTests", dependencies: ["VnicMetrics", "VnicCore"], path: "Tests/VnicMetricsTests"),
        .testTarget(name: "VnicGuestTests", dependencies: ["VnicGuest", "VnicCore"], path: "Tests/VnicGuestTests"),
        .testTarget(name: "IntegrationTests", dependencies: ["VnicLabKit", "VnicCore", "VnicPlatform", "VnicFleet", "VnicConfig"], path: "Tests/IntegrationTests"),
        .testTarget(name: "VnicPlatformTests", dependencies: ["VnicPlatform", "CVnicShared"], path: "Tests/VnicPlatformTests"),
    ]
)
