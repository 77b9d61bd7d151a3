#!/usr/bin/env bash
# The protocol's socket-free code and the network simulator (issue 14) do no I/O of their own
# and read no clock or entropy: time and randomness are inputs (the simulator's are its own
# clock and seeded RNG). Fails, listing the lines, if a file under core/src/net/proto or
# core/src/sim names the async runtime or the QUIC library, a clock (Instant, SystemTime), a
# sleep, a std socket, or OS randomness — or if a directory cannot be read.
set -uo pipefail
cd "$(dirname "$0")/.."
pattern='\btokio\b|\bquinn\b|\bInstant\b|SystemTime|thread::sleep|UdpSocket|TcpStream|TcpListener|OsRng|thread_rng|getrandom'
status=0
for dir in core/src/net/proto core/src/sim; do
    hits=$(grep -rnE "$pattern" "$dir")
    case $? in
        0) echo "$dir must stay free of I/O, clocks and entropy:" >&2; echo "$hits" >&2; status=1 ;;
        1) echo "$dir: no runtime, socket, clock, sleep or OS randomness named" ;;
        *) echo "$dir: cannot be read" >&2; exit 2 ;;
    esac
done
exit $status
