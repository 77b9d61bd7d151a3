#!/usr/bin/env bash
# Build ios/build/minima_ffi.xcframework (device + simulator) and the Swift bindings. macOS
# with Xcode only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname)" != "Darwin" ] || ! command -v xcodebuild >/dev/null; then
  echo "build-ios: needs macOS with Xcode (xcodebuild); nothing built"; exit 2
fi
targets="aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios"
rustup target add $targets
for t in $targets; do cargo build --release --locked -p minima-ffi --target "$t"; done
cargo build --locked -p minima-ffi
scripts/bindgen.sh target/debug
mkdir -p ios/build/sim
lipo -create target/aarch64-apple-ios-sim/release/libminima_ffi.a target/x86_64-apple-ios/release/libminima_ffi.a \
  -output ios/build/sim/libminima_ffi.a
hdr=ios/build/headers; mkdir -p $hdr
cp ios/Sources/MinimaFFI/*.h $hdr/; cp ios/Sources/MinimaFFI/*.modulemap $hdr/module.modulemap
rm -rf ios/build/minima_ffi.xcframework
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libminima_ffi.a -headers $hdr \
  -library ios/build/sim/libminima_ffi.a -headers $hdr \
  -output ios/build/minima_ffi.xcframework
echo "build-ios: ios/build/minima_ffi.xcframework"
