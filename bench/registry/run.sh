#!/usr/bin/env bash
# Registry benchmark (issue 5): push then pull of the same ~200 MB, 4-layer OCI image
# (random, incompressible layers made with umoci) with skopeo, to Stratus (ECR token as
# Basic credentials) and to Debian's docker-registry (the distribution registry, started
# by ../shared/peers/docker-registry.sh) in the same run: seconds and ours/theirs ratio.
# Then blob GET throughput on loopback (curl, the largest layer, several times).
# BENCH_LAYER_MB (default 50) and BENCH_LAYERS (default 4) size the image.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(dirname "$(realpath "$0")")
peers=$(realpath "$here/../../../shared/peers" 2>/dev/null || echo /work/shared/peers)
[ -x "$peers/docker-registry.sh" ] || peers=/work/shared/peers
layer_mb=${BENCH_LAYER_MB:-50}
layers=${BENCH_LAYERS:-4}
gets=${BENCH_GETS:-5}
for tool in skopeo umoci curl; do
  command -v $tool >/dev/null || { echo "registry bench: $tool missing (scripts/install-deps.sh bench)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/stratus-bench-registry-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(free_port); dport=$(free_port)
cleanup() {
  [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  "$peers/docker-registry.sh" stop "$tmp/dreg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
t() { timeout 600 "$@"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

"$build/src/cli/stratus" server --data-dir "$tmp/data" --listen "127.0.0.1:$sport" --log-level warn >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$sport/_stratus/health" >/dev/null && break; sleep 0.1; done
"$peers/docker-registry.sh" start "$dport" "$tmp/dreg" >/dev/null

export AWS_SHARED_CREDENTIALS_FILE="$tmp/data/credentials" AWS_CONFIG_FILE=/dev/null AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
aws --endpoint-url "http://127.0.0.1:$sport" ecr create-repository --repository-name bench >/dev/null
password=$(aws --endpoint-url "http://127.0.0.1:$sport" ecr get-login-password)

# The image: $layers layers of $layer_mb MB of random bytes each.
echo "building a $((layer_mb * layers)) MB image ($layers layers) with umoci..."
umoci init --layout "$tmp/oci" >/dev/null
umoci new --image "$tmp/oci:img" >/dev/null
for i in $(seq 1 "$layers"); do
  head -c "$((layer_mb * 1024 * 1024))" /dev/urandom >"$tmp/layer$i.bin"
  t umoci insert --image "$tmp/oci:img" "$tmp/layer$i.bin" "/data/layer$i.bin" >/dev/null
  rm -f "$tmp/layer$i.bin"
done
image_mb=$(du -sm "$tmp/oci/blobs" | awk '{print $1}')

export REGISTRY_AUTH_FILE="$tmp/auth.json"
push_pull() { # name host creds-args...
  local name=$1 host=$2; shift 2
  local t0 t1 t2
  t0=$(now)
  t skopeo copy -q --dest-tls-verify=false "$@" "oci:$tmp/oci:img" "docker://$host/bench:latest"
  t1=$(now)
  t skopeo copy -q --src-tls-verify=false "${@/--dest-creds/--src-creds}" "docker://$host/bench:latest" "oci:$tmp/pull-$name:img"
  t2=$(now)
  echo "$(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t0" "$t2")"
}
read -r s_push s_pull s_total < <(push_pull stratus "127.0.0.1:$sport" --dest-creds "AWS:$password")
read -r d_push d_pull d_total < <(push_pull docker-registry "127.0.0.1:$dport")
ratio=$(python3 -c "print(f'{$s_total / $d_total:.2f}')")

# Blob GET throughput: the largest layer, $gets times, from each.
big=$(python3 - "$tmp/oci" <<'PY'
import json, sys, os
oci = sys.argv[1]
idx = json.load(open(os.path.join(oci, "index.json")))
m = json.load(open(os.path.join(oci, "blobs", *idx["manifests"][0]["digest"].split(":"))))
print(max(m["layers"], key=lambda l: l["size"])["digest"])
PY
)
basic=$(printf 'AWS:%s' "$password" | base64 -w0)
throughput() { # url [header]
  local total=0 s
  for _ in $(seq 1 "$gets"); do
    s=$(t curl -sf -o /dev/null -w '%{speed_download}' ${2:+-H "$2"} "$1")
    total=$(python3 -c "print($total + $s)")
  done
  python3 -c "print(f'{$total / $gets / 1048576:.0f}')"
}
s_get=$(throughput "http://127.0.0.1:$sport/v2/bench/blobs/$big" "Authorization: Basic $basic")
d_get=$(throughput "http://127.0.0.1:$dport/v2/bench/blobs/$big")

printf '%-34s %10s %10s %10s\n' "image $image_mb MB, $layers layers" push_s pull_s total_s
printf '%-34s %10s %10s %10s\n' "stratus" "$s_push" "$s_pull" "$s_total"
printf '%-34s %10s %10s %10s\n' "docker-registry (distribution)" "$d_push" "$d_pull" "$d_total"
echo "push+pull ratio stratus/docker-registry: ${ratio}x (target <= 1.0)"
echo "blob GET throughput, ${layer_mb} MB layer, loopback, mean of $gets: stratus ${s_get} MB/s, docker-registry ${d_get} MB/s"
