#!/usr/bin/env bash
# Installs what building, running and testing Khiên needs on Debian bookworm.
# Idempotent: installs only what is missing. Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail

# Debian packages the build and the tests use.
APT_PACKAGES=(
  build-essential pkg-config
  libpcap-dev
  libhyperscan-dev
  clickhouse-server clickhouse-client
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "khien: installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "khien: cargo not found; install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi

# Build outside the clone so reruns are warm (CI clones afresh each time).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/khien-target}"
# Reference data (rulesets, pcaps, suricata-verify) lives beside the clone.
KHIEN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KHIEN_DATA="${KHIEN_DATA:-$KHIEN_ROOT/../shared/data}"

# Current ClickHouse in-process (PyPI chdb-core), for the collector's SQL dialect test.
if ! python3 -c "import chdb" >/dev/null 2>&1; then
  echo "khien: installing chdb-core (pip)" >&2
  python3 -m pip install -q chdb-core >&2 || pip3 install -q chdb-core >&2
fi
