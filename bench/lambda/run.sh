#!/usr/bin/env bash
# Lambda benchmarks: cold start vs runc, warm invoke latency and throughput vs nginx.
# See bench.py for what is measured and how.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(dirname "$(realpath "$0")")
exec /usr/bin/python3 "$here/bench.py" "$build"
