#!/usr/bin/env bash
# Store benchmark: durable Commit (WAL, synchronous=FULL) throughput and p50/p99 latency
# with 1, 8 and 32 concurrent writers, in a temp dir on the disk /tmp is on.
#
#   bench/store/run.sh BUILD_DIR     (SECONDS_PER_CASE=3 THREADS=1,8,32 BENCH_DIR=/tmp)
set -euo pipefail
build=$(realpath "${1:-build}")
bin=$build/bench/store/store_bench
if [ ! -x "$bin" ]; then
  cmake --build "$build" --target store_bench >/dev/null
fi
dir=${BENCH_DIR:-/tmp}
echo "== store: durable Commit, $(df -P "$dir" | awk 'NR==2 {print $1}') ($(findmnt -no FSTYPE -T "$dir" 2>/dev/null || echo '?')), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
"$bin" --dir "$dir" --seconds "${SECONDS_PER_CASE:-3}" --threads "${THREADS:-1,8,32}"
