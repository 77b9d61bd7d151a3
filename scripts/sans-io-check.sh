#!/usr/bin/env bash
# The protocol's socket-free code (issue 14) does no I/O and reads no clock or entropy: time
# and randomness are inputs. Fails, listing the lines, if a file under core/src/net/proto
# names the async runtime or the QUIC library, a clock (Instant, SystemTime), a sleep, a std
# socket, or OS randomness — or if the directory cannot be read.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=core/src/net/proto
pattern='\btokio\b|\bquinn\b|\bInstant\b|SystemTime|thread::sleep|UdpSocket|TcpStream|TcpListener|OsRng|thread_rng|getrandom'
hits=$(grep -rnE "$pattern" "$dir")
case $? in
    0) echo "$dir must stay free of I/O, clocks and entropy:" >&2; echo "$hits" >&2; exit 1 ;;
    1) echo "$dir: no runtime, socket, clock, sleep or OS randomness named" ;;
    *) echo "$dir: cannot be read" >&2; exit 2 ;;
esac
