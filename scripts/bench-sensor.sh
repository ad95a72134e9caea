#!/usr/bin/env bash
# Throughput of `khien sensor` against Suricata 7, side by side: with an empty ruleset, or with
# RULES=DIR every DIR/*.rules (concatenated into one file, given to both as -S).
#
# Builds a bench input (once) from the three shared pcaps: concatenated and repeated until
# it is at least BENCH_MB (default 500) MB, each copy's timestamps shifted past the previous
# one so flows do not merge. Then runs, ROUNDS times (default 1), alternating:
#   suricata -r BENCH -l DIR -k none --runmode single -c scripts/parity/suricata.yaml -S RULES
#   khien sensor -r BENCH -l DIR -k none [--workers N] [-S RULES]
# and prints each tool's "time elapsed" (packet processing, start-up excluded) and the ratio.
# Usage: scripts/bench-sensor.sh [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
WORKERS="${1:-1}"
BENCH_MB="${BENCH_MB:-500}"
ROUNDS="${ROUNDS:-1}"
WORK="${BENCH_DIR:-/var/tmp/khien-bench}"
mkdir -p "$WORK"
BENCH="$WORK/bench-${BENCH_MB}mb.pcap"

if [ ! -s "$BENCH" ]; then
  echo "== building $BENCH from $KHIEN_DATA/pcaps/*.pcap"
  python3 - "$BENCH" "$BENCH_MB" "$KHIEN_DATA"/pcaps/*.pcap <<'PY'
import struct, sys
out, want_mb, inputs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def packets(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        if hdr[:4] != b"\xd4\xc3\xb2\xa1":
            sys.exit(f"{path}: only little-endian microsecond pcap is supported here")
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            ts, us, cl, ol = struct.unpack("<IIII", h)
            yield ts, us, cl, ol, f.read(cl)
with open(out + ".tmp", "wb") as o:
    o.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    written, shift, copy = 0, 0, 0
    while written < want_mb * 1_000_000:
        last = 0
        for path in inputs:
            first = None
            for ts, us, cl, ol, data in packets(path):
                if first is None:
                    first = ts
                t = ts - first + shift
                last = max(last, t)
                o.write(struct.pack("<IIII", t, us, cl, ol))
                o.write(data)
                written += 16 + cl
            shift = last + 3600  # an hour apart: every flow of the previous copy times out
        copy += 1
    print(f"{copy} copies, {written / 1e6:.0f} MB")
import os; os.replace(out + ".tmp", out)
PY
fi

cargo build --release --locked --bin khien >/dev/null
KHIEN="$CARGO_TARGET_DIR/release/khien"
SRULES=/dev/null
KRULES=()
if [ -n "${RULES:-}" ]; then
  SRULES="$WORK/rules.rules"
  cat "$RULES"/*.rules >"$SRULES"
  KRULES=(-S "$SRULES")
fi
elapsed() { grep -o 'time elapsed [0-9.]*s' | tail -1 | grep -o '[0-9.]*'; }
for r in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/suricata" "$WORK/khien"; mkdir -p "$WORK/suricata" "$WORK/khien"
  S=$(suricata -r "$BENCH" -l "$WORK/suricata" -k none --runmode single \
        -c scripts/parity/suricata.yaml -S "$SRULES" 2>&1 | elapsed)
  K=$("$KHIEN" sensor -r "$BENCH" -l "$WORK/khien" -k none --workers "$WORKERS" "${KRULES[@]}" 2>&1 | elapsed)
  echo "round $r: suricata ${S}s  khien(workers=$WORKERS) ${K}s  ratio khien/suricata $(python3 -c "print(f'{$K/$S:.3f}')")"
  for t in flow http dns tls fileinfo alert; do
    printf '  %-9s suricata %8s  khien %8s\n' "$t" \
      "$(grep -c "\"event_type\":\"$t\"" "$WORK/suricata/eve.json" || true)" \
      "$(grep -c "\"event_type\":\"$t\"" "$WORK/khien/eve.json" || true)"
  done
done
