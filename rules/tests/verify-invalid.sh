#!/usr/bin/env bash
# Re-checks that Suricata rejects every rule of rules/tests/data/invalid.tsv (and loads none).
# Needs Suricata 7 (`apt-get install -t bookworm-backports suricata`). Not part of the test
# suite: it is how the corpus was made. Usage: rules/tests/verify-invalid.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v suricata >/dev/null || { echo "suricata not installed" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0; bad=0
while IFS=$'\t' read -r code rule; do
  case "$code" in ''|'#'*) continue ;; esac
  n=$((n+1))
  printf '%s\n' "$rule" > "$tmp/t.rules"
  if suricata -T -S "$tmp/t.rules" -l "$tmp" >/dev/null 2>&1; then
    echo "ACCEPTED by Suricata ($code): $rule"; bad=$((bad+1))
  fi
done < "$here/data/invalid.tsv"
echo "$n rules checked, $bad accepted by Suricata"
[ "$bad" -eq 0 ]
