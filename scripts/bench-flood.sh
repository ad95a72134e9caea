#!/usr/bin/env bash
# Memory under a flood of distinct flows: builds a pcap of FLOWS (default 1,000,000)
# one-packet UDP flows (distinct source address/port), runs
#   khien sensor -r FLOOD -l DIR --set flow.memcap=MEMCAP
# under /usr/bin/time and prints the peak resident memory, the memcap and the eviction
# counters from the final EVE stats record. Usage: scripts/bench-flood.sh [MEMCAP_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
MEMCAP_MB="${1:-64}"
FLOWS="${FLOWS:-1000000}"
WORK="${BENCH_DIR:-/var/tmp/khien-bench}"
mkdir -p "$WORK"
FLOOD="$WORK/flood-$FLOWS.pcap"
if [ ! -s "$FLOOD" ]; then
  python3 - "$FLOOD" "$FLOWS" <<'PY'
import struct, sys
out, n = sys.argv[1], int(sys.argv[2])
with open(out + ".tmp", "wb") as o:
    o.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    eth = bytes(12) + b"\x08\x00"
    for i in range(n):
        src = bytes([10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 4, 0, 0, 64, 17, 0, src, bytes([192, 0, 2, 1]))
        udp = struct.pack(">HHHH", 1024 + (i % 50000), 9999, 12, 0) + b"ping"
        pkt = eth + ip + udp
        ts = 1_700_000_000 + i // 100_000
        o.write(struct.pack("<IIII", ts, (i % 100_000) * 10, len(pkt), len(pkt)) + pkt)
import os; os.replace(out + ".tmp", out)
PY
fi
cargo build --release --locked --bin khien >/dev/null
rm -rf "$WORK/flood-out"; mkdir -p "$WORK/flood-out"
/usr/bin/time -f "peak RSS %M KiB, %e s" "$CARGO_TARGET_DIR/release/khien" sensor -r "$FLOOD" \
  -l "$WORK/flood-out" --set flow.memcap="${MEMCAP_MB}mb" 2>&1 | grep -E "peak RSS|time elapsed|flows"
echo "memcap ${MEMCAP_MB} MiB = $((MEMCAP_MB * 1024)) KiB"
grep '"event_type":"stats"' "$WORK/flood-out/eve.json" | tail -1 | python3 -c '
import json, sys
f = json.loads(sys.stdin.read())["stats"]["flow"]
print("flow stats:", {k: f[k] for k in ("total", "memcap", "emerg_mode_entered", "memuse")}, f["mgr"])'
