#!/usr/bin/env bash
# End-to-end ingest benchmark: `khien ship --once` of N synthetic EVE events (every type, in
# Suricata 7's layout) -> collector (HTTPS, spool) -> its managed ClickHouse, all on loopback.
# Prints events/s until every event is acknowledged and until every event is queryable, and
# the collector's own CPU time per event. Usage: collector/bench.sh [N] (default 6,000,000);
# BATCH_ROWS, FLUSH_MS: the collector's settings; IN_FLIGHT: the shipper's (default 2); EVE=FILE:
# events made beforehand.
set -euo pipefail
N=${1:-6000000}
K=${KHIEN:-${CARGO_TARGET_DIR:-/var/tmp/khien-target}/release/khien}
D=$(mktemp -d /var/tmp/khien-bench.XXXXXX)
trap '"$K" collector stop --data "$D/data" >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
# EVE=FILE reuses a file made by `khien collector synth --events N --out FILE`.
if [ -n "${EVE:-}" ]; then ln -s "$(realpath "$EVE")" "$D/eve.json"; else
  "$K" collector synth --events "$N" --out "$D/eve.json" >/dev/null; fi
"$K" collector serve --data "$D/data" --listen 127.0.0.1:0 --batch-rows "${BATCH_ROWS:-500000}" --flush-ms "${FLUSH_MS:-1000}" >"$D/serve.log" 2>&1 &
for _ in $(seq 1 300); do grep -q listening "$D/serve.log" 2>/dev/null && break; sleep 0.2; done
PID=$(cat "$D/data/collector.pid")
TOKEN=$("$K" collector sensor add --data "$D/data" --tenant bench --name b1 | tail -1)
CHPID=$(cat "$D/data/clickhouse/server.pid")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
flt() { awk '{print $10}' "/proc/$1/stat"; }
TICK=$(getconf CLK_TCK)
SHIPCPU="$D/ship.cpu"
C0=$(cpu "$PID"); F0=$(flt "$PID"); H0=$(cpu "$CHPID"); T0=$(date +%s.%N)
/usr/bin/time -f "%U %S" -o "$SHIPCPU" "$K" ship --once --in-flight "${IN_FLIGHT:-2}" --eve "$D/eve.json" \
  --to "https://$(cat "$D/data/collector.addr")" --token "$TOKEN" --ca "$D/data/tls/ca.pem" 2>"$D/ship.log"
T1=$(date +%s.%N)
while [ "$("$K" collector query --data "$D/data" "SELECT count() FROM events")" -lt "$N" ]; do sleep 0.2; done
T2=$(date +%s.%N); C1=$(cpu "$PID"); F1=$(flt "$PID"); H1=$(cpu "$CHPID")
RSS=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
# Spool records the writer had to parse again (rows over the collector's memory budget).
REPARSED=$(curl -s --cacert "$D/data/tls/ca.pem" "https://$(cat "$D/data/collector.addr")/metrics" |
  awk '/^khien_collector_reparsed_batches_total/ {print $2}')
python3 - "$N" "$T0" "$T1" "$T2" "$C0" "$C1" "$TICK" "$(stat -L -c %s "$D/eve.json")" \
  "$H0" "$H1" "$(cat "$SHIPCPU")" "$F0" "$F1" "$RSS" "${REPARSED:-?}" <<'PY'
import sys
n, t0, t1, t2, c0, c1, tick, size, h0, h1, shipcpu, f0, f1, rss, reparsed = sys.argv[1:]
n = int(n); t0, t1, t2 = float(t0), float(t1), float(t2)
cpu = (int(c1) - int(c0)) / int(tick)
print(f"events: {n} ({int(size)/n:.0f} bytes/event)")
print(f"acknowledged (ship -> spool): {t1-t0:.2f} s = {n/(t1-t0):,.0f} events/s")
print(f"queryable (-> ClickHouse):    {t2-t0:.2f} s = {n/(t2-t0):,.0f} events/s")
print(f"collector CPU: {cpu:.2f} s = {cpu*1e6/n:.2f} us/event")
faults = int(f1) - int(f0)
print(f"collector page faults: {faults} ({faults*4096/n:.0f} bytes/event), peak RSS {int(rss)//1024} MiB, {reparsed} spool records parsed again")
ch = (int(h1) - int(h0)) / int(tick)
print(f"ClickHouse CPU: {ch:.2f} s = {ch*1e6/n:.2f} us/event")
ship = sum(float(x) for x in shipcpu.split())
print(f"shipper CPU: {ship:.2f} s = {ship*1e6/n:.2f} us/event")
PY
