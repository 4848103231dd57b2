#!/usr/bin/env bash
# Sandbox benchmark: create -> run /bin/true -> exit -> destroy, p50/p99, for a fresh
# Stratus sandbox, one claimed from the pool, and `runc run`, on the same busybox-static
# root filesystem; then the 1,000-cycle leak check (mounts, cgroups, veths, fds, processes).
#
#   bench/sandbox/run.sh            (root; BUILD_DIR=build ITERATIONS=200 LEAK_CYCLES=1000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$repo/build}
iterations=${ITERATIONS:-200}
leak_cycles=${LEAK_CYCLES:-1000}

if [ "$(id -u)" != 0 ]; then
  echo "bench/sandbox: needs root (namespaces, cgroups); skipped" >&2
  exit 0
fi
bin=$build/bench/sandbox/sandbox_bench
if [ ! -x "$bin" ]; then
  cmake --build "$build" --target sandbox_bench >/dev/null
fi
[ -x /bin/busybox ] || DEBIAN_FRONTEND=noninteractive apt-get install -y busybox-static >/dev/null

work=$(mktemp -d /tmp/stratus-sandbox-bench-XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

# One bundle: its rootfs (busybox-static + applet links) is also the lower layer of ours.
# The peers script adds read-only binds of /usr and /lib* that /bin/true does not need;
# drop them so both runtimes build exactly the same root.
/work/shared/peers/runc-bundle.sh "$work/bundle" /bin/true >/dev/null
python3 - "$work/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
s["mounts"] = [m for m in s["mounts"] if m["destination"] not in ("/usr", "/lib", "/lib64")]
json.dump(s, open(p, "w"), indent=1)
PY
chmod 0755 "$work" "$work/bundle"

echo "== sandbox (load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs)"
"$bin" --rootfs "$work/bundle/rootfs" --runc-bundle "$work/bundle" \
  --iterations "$iterations" --leak-cycles "$leak_cycles" --phases
