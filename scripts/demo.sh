#!/usr/bin/env bash
# The main job of Khiên on this machine, end to end on the reference data:
#   1. check the Emerging Threats Open ruleset like `suricata -T`;
#   2. run the sensor on a capture and write Suricata-compatible EVE;
#   3. start the collector with its managed ClickHouse on loopback, ship that EVE to it over
#      HTTPS with a per-sensor token, and query the store.
# Installs what it needs first. Usage: scripts/demo.sh   (KHIEN_DEMO_DIR to choose where
# output goes; KHIEN_DEMO_PCAP to choose the capture; KHIEN_DEMO_KEEP=1 to leave the
# collector running at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

cargo build --release --locked --bin khien
KHIEN="$CARGO_TARGET_DIR/release/khien"
ET="$KHIEN_DATA/etopen/et-open-2024-04-18"
PCAP="${KHIEN_DEMO_PCAP:-$KHIEN_DATA/pcaps/sv-corpus-merged.pcap}"
OUT="${KHIEN_DEMO_DIR:-/var/tmp/khien-demo}"
mkdir -p "$OUT"

echo
echo "== 1. khien rules check: Emerging Threats Open 2024, like suricata -T"
"$KHIEN" rules check "$ET"

echo
echo "== 2. khien sensor: $(basename "$PCAP") with ET Open -> $OUT/sensor/eve.json"
rm -rf "$OUT/sensor"
mkdir -p "$OUT/sensor"
rule_args=()
for f in "$ET"/*.rules; do rule_args+=(-S "$f"); done
# Rules the detection engine does not implement yet are listed one per line; keep them in a log.
"$KHIEN" sensor -r "$PCAP" -l "$OUT/sensor" -k none "${rule_args[@]}" >"$OUT/sensor.log" 2>&1 \
  || { cat "$OUT/sensor.log"; exit 1; }
grep -v ' not loaded: ' "$OUT/sensor.log" || true
echo "(rules the engine does not support yet are listed in $OUT/sensor.log)"
echo "EVE records by event_type:"
grep -o '"event_type":"[a-z_]*"' "$OUT/sensor/eve.json" | sort | uniq -c | sort -rn

echo
echo "== 3. khien collector: managed ClickHouse on loopback, HTTPS ingest, ship, query"
DATA="$OUT/collector"
"$KHIEN" collector stop --data "$DATA" >/dev/null 2>&1 || true
rm -rf "$DATA"
mkdir -p "$DATA"
LISTEN="127.0.0.1:${KHIEN_DEMO_PORT:-8443}"
"$KHIEN" collector serve --data "$DATA" --listen "$LISTEN" >"$OUT/collector.log" 2>&1 &
for _ in $(seq 1 120); do
  grep -q listening "$OUT/collector.log" && break
  kill -0 $! 2>/dev/null || { cat "$OUT/collector.log"; exit 1; }
  sleep 0.5
done
grep -q listening "$OUT/collector.log" || { echo "collector did not start"; cat "$OUT/collector.log"; exit 1; }
TOKEN=$("$KHIEN" collector sensor add --data "$DATA" --tenant demo-ministry --name edge-1 | tail -n 1)
"$KHIEN" ship --eve "$OUT/sensor/eve.json" --to "https://$LISTEN" --token "$TOKEN" \
  --ca "$DATA/tls/ca.pem" --once
want=$(wc -l <"$OUT/sensor/eve.json")
for _ in $(seq 1 120); do
  got=$("$KHIEN" collector query --data "$DATA" "SELECT count() FROM events WHERE tenant = 'demo-ministry'" | tail -n 1)
  [ "$got" = "$want" ] && break
  sleep 0.5
done
echo "events stored for tenant demo-ministry: $got of $want shipped"
"$KHIEN" collector query --data "$DATA" \
  "SELECT event_type, count() AS n FROM events WHERE tenant = 'demo-ministry' GROUP BY event_type ORDER BY n DESC"

if [ "${KHIEN_DEMO_KEEP:-0}" = 1 ]; then
  echo
  echo "The collector is still running on https://$LISTEN (data in $DATA)."
  echo "Query:  $KHIEN collector query --data $DATA \"SELECT count() FROM events\""
  echo "Stop:   $KHIEN collector stop --data $DATA"
else
  "$KHIEN" collector stop --data "$DATA"
  echo
  echo "Done. Output in $OUT (KHIEN_DEMO_KEEP=1 leaves the collector running)."
fi
