#!/usr/bin/env bash
# Edge benchmark: requests/s and p50/p99 latency at 64 connections for
#   - a SigV4-signed sts:GetCallerIdentity (full signature verification per request),
#   - GET /_stratus/health,
#   - nginx answering a static 200 (the peer, ../shared/peers/nginx-static.sh), same run;
# and the server's idle RSS. wrk replays one signed request: SigV4 has no replay
# protection inside its 15-minute window, so every request is verified in full.
set -euo pipefail
build=$(realpath "${1:-build}")
here=$(dirname "$(realpath "$0")")
peers=$(realpath "$here/../../../shared/peers" 2>/dev/null || echo /work/shared/peers)
duration=${BENCH_DURATION:-10s}
conns=${BENCH_CONNECTIONS:-64}
threads=${BENCH_THREADS:-2}
tmp=$(mktemp -d /tmp/stratus-bench-edge-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(free_port); nport=$(free_port)
cleanup() {
  [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null || true
  "$peers/nginx-static.sh" stop "$tmp/nginx" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

"$build/src/cli/stratus" server --data-dir "$tmp/data" --listen "127.0.0.1:$sport" --log-level warn >"$tmp/server.log" 2>&1 &
spid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$sport/_stratus/health" >/dev/null && break; sleep 0.1; done
sleep 1
idle_rss=$(awk '/VmRSS/ {print $2}' /proc/$spid/status)

"$peers/nginx-static.sh" start "$nport" "$tmp/nginx"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$nport/" >/dev/null && break; sleep 0.1; done

# One signed request, produced by botocore exactly as the SDK would send it.
python3 - "$tmp/data/credentials" "$sport" "$tmp/gci.lua" <<'PY'
import sys, botocore.auth, botocore.awsrequest, botocore.credentials
cred_path, port, out = sys.argv[1], sys.argv[2], sys.argv[3]
kv = {k.strip(): v.strip() for k, v in (l.split("=", 1) for l in open(cred_path) if "=" in l)}
key, secret = kv["aws_access_key_id"].strip(), kv["aws_secret_access_key"].strip()
body = "Action=GetCallerIdentity&Version=2011-06-15"
req = botocore.awsrequest.AWSRequest(method="POST", url=f"http://127.0.0.1:{port}/", data=body,
    headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
botocore.auth.SigV4Auth(botocore.credentials.Credentials(key, secret), "sts", "us-east-1").add_auth(req)
lua = ['wrk.method = "POST"', 'wrk.body = "%s"' % body]
for k, v in req.headers.items():
    lua.append('wrk.headers["%s"] = "%s"' % (k, v))
open(out, "w").write("\n".join(lua) + "\n")
PY
curl -sf -o /dev/null -X POST "http://127.0.0.1:$sport/" >/dev/null 2>&1 || true

run() { # slug name url [lua]
  local slug=$1 name=$2 url=$3 lua=${4:-}
  local args=(-t"$threads" -c"$conns" -d"$duration" --latency)
  [ -n "$lua" ] && args+=(-s "$lua")
  wrk "${args[@]}" "$url" >"$tmp/$slug.txt" 2>&1
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/$slug.txt")
  p50=$(awk '$1=="50%" {print $2}' "$tmp/$slug.txt")
  p99=$(awk '$1=="99%" {print $2}' "$tmp/$slug.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/$slug.txt")
  printf "%-34s %12s %10s %10s %s\n" "$name" "$rps" "$p50" "$p99" "${non2xx:+(non-2xx: $non2xx)}"
  echo "$rps" >"$tmp/$slug.rps"
}

echo "wrk: $threads threads, $conns connections, $duration per run, 2-core machine shared by client and server"
printf "%-34s %12s %10s %10s\n" "target" "requests/s" "p50" "p99"
run gci "stratus GetCallerIdentity (SigV4)" "http://127.0.0.1:$sport/" "$tmp/gci.lua"
run health "stratus /_stratus/health" "http://127.0.0.1:$sport/_stratus/health"
run nginx "nginx static 200 (peer)" "http://127.0.0.1:$nport/"
h=$(cat "$tmp/health.rps"); n=$(cat "$tmp/nginx.rps"); g=$(cat "$tmp/gci.rps")
python3 -c "print('health / nginx ratio: %.2f   signed GetCallerIdentity / nginx: %.2f' % ($h/$n, $g/$n))"
echo "stratus idle RSS: $((idle_rss / 1024)) MiB ($idle_rss KiB); after load: $(( $(awk '/VmRSS/ {print $2}' /proc/$spid/status) / 1024 )) MiB"
