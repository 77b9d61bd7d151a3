// swift-tools-version:5.9
// The iOS package: the generated Swift (scripts/bindgen.sh writes ios/Sources/MinimaFFI),
// the XCFramework (scripts/build-ios.sh, on macOS) and a small wrapper. Generated, not
// compiled here (no Swift toolchain on the CI machines).
import PackageDescription

let package = Package(
    name: "MinimaNode",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "MinimaNode", targets: ["MinimaNode"])],
    targets: [
        .binaryTarget(name: "minima_ffiFFI", path: "ios/build/minima_ffi.xcframework"),
        .target(name: "MinimaFFI", dependencies: ["minima_ffiFFI"], path: "ios/Sources/MinimaFFI"),
        .target(name: "MinimaNode", dependencies: ["MinimaFFI"], path: "ios/Sources/MinimaNode"),
    ]
)
