#!/usr/bin/env bash
# The protocol's socket-free code (issue 14) names no runtime, socket or clock: time and
# randomness are inputs. Fails, listing the lines, if a file under core/src/net/proto names
# tokio, quinn, Instant::now or SystemTime.
set -uo pipefail
cd "$(dirname "$0")/.."
if hits=$(grep -rnE '\btokio\b|\bquinn\b|Instant::now|SystemTime' core/src/net/proto); then
    echo "core/src/net/proto must stay free of I/O and clocks:" >&2
    echo "$hits" >&2
    exit 1
fi
echo "core/src/net/proto: no tokio, quinn, Instant::now or SystemTime"
