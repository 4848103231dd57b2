#!/usr/bin/env bash
# Logs benchmark: the in-process writer (Append per log line from N threads, as Lambda
# sandboxes log) and PutLogEvents, on a durable SqliteStore in a temp dir.
#
#   bench/logs/run.sh BUILD_DIR     (SECONDS_PER_CASE=3 THREADS=1,8 BENCH_DIR=/tmp)
set -euo pipefail
build=$(realpath "${1:-build}")
bin=$build/bench/logs/logs_bench
if [ ! -x "$bin" ]; then
  cmake --build "$build" --target logs_bench >/dev/null
fi
dir=${BENCH_DIR:-/tmp}
echo "== logs: $(df -P "$dir" | awk 'NR==2 {print $1}'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
"$bin" --dir "$dir" --seconds "${SECONDS_PER_CASE:-3}" --threads "${THREADS:-1,8}"
