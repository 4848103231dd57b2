#!/usr/bin/env bash
# Runs every benchmark: bench/<area>/run.sh BUILD_DIR, one after another.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(dirname "$(realpath "$0")")
status=0
for script in "$here"/*/run.sh; do
  echo "=== $(basename "$(dirname "$script")") ==="
  "$script" "$build" || { echo "benchmark $script failed" >&2; status=1; }
  echo
done
exit $status
