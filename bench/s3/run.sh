#!/usr/bin/env bash
# S3 benchmarks: PUT/GET throughput beside dd on the same disk, and S3-put-to-function-start
# latency. See bench.py.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(dirname "$(realpath "$0")")
exec /usr/bin/python3 "$here/bench.py" "$build"
