#!/usr/bin/env bash
# Memory under a flood of distinct flows: builds a pcap of FLOWS (default 1,000,000)
# one-packet UDP flows (distinct source address/port), runs
#   khien sensor -r FLOOD -l DIR --set flow.memcap=MEMCAP
# and prints the peak resident memory (the kernel's VmHWM, read just before the process
# exits, and the peak of its anonymous and file-backed parts sampled every 20 ms), the
# memcap, and the flow counters from the final EVE stats record. A second run with the
# smallest memcap (1 MiB) gives the process baseline (code, libraries, buffers).
# Usage: scripts/bench-flood.sh [MEMCAP_MB]
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

# run MEMCAP_MB OUTDIR: prints "hwm_kib anon_peak_kib file_peak_kib"
run() {
  local out="$2"
  rm -rf "$out"; mkdir -p "$out"
  "$CARGO_TARGET_DIR/release/khien" sensor -r "$FLOOD" -l "$out" --set flow.memcap="$1mb" \
    >"$out/stdout" 2>"$out/stderr" &
  local pid=$! hwm=0 anon=0 file=0 v h a f
  while [ -r "/proc/$pid/status" ]; do
    v=$(awk '/^VmHWM/{h=$2} /^RssAnon/{a=$2} /^RssFile/{f=$2} END{print h+0, a+0, f+0}' \
      "/proc/$pid/status" 2>/dev/null || true)
    if [ -n "$v" ]; then
      read -r h a f <<<"$v"
      if [ "$h" -gt "$hwm" ]; then hwm=$h; fi
      if [ "$a" -gt "$anon" ]; then anon=$a; fi
      if [ "$f" -gt "$file" ]; then file=$f; fi
    fi
    sleep 0.02
  done
  wait "$pid"
  echo "$hwm $anon $file"
}

read -r hwm anon file < <(run "$MEMCAP_MB" "$WORK/flood-out")
read -r bhwm banon bfile < <(run 1 "$WORK/flood-base")
cap=$((MEMCAP_MB * 1024))
grep -E "time elapsed" "$WORK/flood-out/stdout"
echo "memcap ${MEMCAP_MB} MiB = ${cap} KiB; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "peak RSS ${hwm} KiB = $((hwm * 1000 / cap / 10)).$((hwm * 1000 / cap % 10))% of the memcap" \
  "(anonymous peak ${anon} KiB = $((anon * 1000 / cap / 10)).$((anon * 1000 / cap % 10))%, file-backed peak ${file} KiB)"
echo "baseline (same flood, 1 MiB memcap): peak RSS ${bhwm} KiB (anonymous ${banon}, file-backed ${bfile})"
echo "above the baseline: $((hwm - bhwm)) KiB = $(((hwm - bhwm) * 1000 / cap / 10)).$(((hwm - bhwm) * 1000 / cap % 10))% of the memcap"
grep '"event_type":"stats"' "$WORK/flood-out/eve.json" | tail -1 | python3 -c '
import json, sys
f = json.loads(sys.stdin.read())["stats"]["flow"]
print("flow stats:", {k: f[k] for k in ("total", "memcap", "emerg_mode_entered", "memuse")}, f["mgr"])'
