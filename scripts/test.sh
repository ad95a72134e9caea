#!/usr/bin/env bash
# Runs every check and test of Khiên: formatting, lints, unit, integration and
# data-driven tests. Installs what it needs first. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh

if [ ! -d "$KHIEN_DATA" ]; then
  echo "khien: reference data not found at $KHIEN_DATA (set KHIEN_DATA)" >&2
  exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== fuzz targets type-check (cargo-fuzz builds them with sanitizers; see fuzz/)"
cargo check --manifest-path fuzz/Cargo.toml --bins --locked --quiet
echo "== cargo test"
cargo test --workspace --locked --release
