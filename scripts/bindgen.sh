#!/usr/bin/env bash
# Generate the Kotlin and Swift bindings from the built host library (library mode):
#   scripts/bindgen.sh [profile-dir]   (default target/debug)
# Kotlin → bindings/kotlin/target/generated (JVM tests) and android/build/generated/uniffi;
# Swift → ios/Sources/MinimaFFI (Swift + C header + modulemap).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/debug}
lib="$dir/libminima_ffi.so"
[ -f "$lib" ] || lib="$dir/libminima_ffi.dylib"
[ -f "$lib" ] || { echo "bindgen: build the library first (cargo build -p minima-ffi)"; exit 1; }
# A uniffi-bindgen built beside the library (scripts/test.sh builds both), else build one.
bindgen=("$dir/uniffi-bindgen")
[ -x "$dir/uniffi-bindgen" ] || bindgen=(cargo run -q --locked -p minima-ffi --features bindgen --bin uniffi-bindgen --)
"${bindgen[@]}" generate --library "$lib" --language kotlin --out-dir bindings/kotlin/target/generated --no-format
mkdir -p android/build/generated/uniffi
cp -r bindings/kotlin/target/generated/. android/build/generated/uniffi/
"${bindgen[@]}" generate --library "$lib" --language swift --out-dir ios/Sources/MinimaFFI --no-format
echo "bindgen: Kotlin in bindings/kotlin/target/generated, Swift in ios/Sources/MinimaFFI"
