#!/usr/bin/env bash
# The main job of Khiên on this machine, end to end on bundled reference data.
# Installs what it needs first. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

cargo build --release --locked --bin khien
KHIEN="$CARGO_TARGET_DIR/release/khien"
ET="$KHIEN_DATA/etopen/et-open-2024-04-18"

echo "== khien rules check: Emerging Threats Open 2024 (enabled rules), like suricata -T"
"$KHIEN" rules check "$ET"/*.rules
