#!/usr/bin/env bash
# Build the Android libraries into android/src/main/jniLibs with cargo-ndk (arm64-v8a and
# x86_64, 16 KB page alignment), then generate the Kotlin bindings.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-ndk >/dev/null; then
  echo "build-android: needs cargo-ndk (cargo install cargo-ndk) and an Android NDK (ANDROID_NDK_HOME)"; exit 2
fi
if [ -z "${ANDROID_NDK_HOME:-}" ] || [ ! -d "$ANDROID_NDK_HOME" ]; then
  echo "build-android: ANDROID_NDK_HOME is not set to an NDK (r27 or newer); the C parts (SQLite, ring, SPHINCS+) need its clang"; exit 2
fi
rustup target add aarch64-linux-android x86_64-linux-android
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384"
cargo ndk -t arm64-v8a -t x86_64 -o android/src/main/jniLibs build --release --locked -p minima-ffi
cargo build --locked -p minima-ffi
scripts/bindgen.sh target/debug
echo "build-android: jniLibs in android/src/main/jniLibs"
