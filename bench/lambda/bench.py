#!/usr/bin/python3
"""Lambda benchmarks (issue: functions), printed side by side in one run:

 (a) cold start of a no-op Python handler, p50/p99, measured at the client from the invoke
     request to its answer: ours from the prestart pool (the normal cold path), ours with the
     pool off (a fresh sandbox and interpreter), and `runc run` of the same handler script in a
     busybox + host-python bundle (the peer, ../shared/peers/runc-bundle.sh);
 (b) warm invokes of a `provided` echo function (a native bootstrap, echo_bootstrap.c):
     latency at concurrency 1 and throughput at 64 concurrent clients (wrk), beside the same
     load against nginx answering a static 200 on loopback (../shared/peers/nginx-static.sh).

Every loop is bounded in count and time. Needs root (sandboxes), wrk, runc, gcc."""
import http.client
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import boto3
import botocore.config

BUILD = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else "build")
HERE = os.path.dirname(os.path.realpath(__file__))
PEERS = os.path.realpath(os.path.join(HERE, "../../../shared/peers"))
if not os.path.isdir(PEERS):
    PEERS = "/work/shared/peers"
COLD_N = int(os.environ.get("BENCH_COLD_N", "40"))
WARM_N = int(os.environ.get("BENCH_WARM_N", "3000"))
DURATION = os.environ.get("BENCH_DURATION", "10s")

NOOP = "def handler(event, context):\n    return None\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


class Server:
    def __init__(self, tmp, name, config=""):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port = free_port()
        cfg = os.path.join(self.dir, "stratus.yaml")
        with open(cfg, "w") as f:
            f.write(config)
        self.log = open(os.path.join(self.dir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [BUILD + "/src/cli/stratus", "server", "--data-dir", self.dir + "/data", "--listen",
             "127.0.0.1:%d" % self.port, "--log-level", "warn", "--config", cfg],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/_stratus/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        kv = {}
        for line in open(self.dir + "/data/credentials"):
            if "=" in line:
                k, v = line.split("=", 1)
                kv[k.strip()] = v.strip()
        self.creds = botocore.credentials.Credentials(kv["aws_access_key_id"],
                                                      kv["aws_secret_access_key"])
        self.lam = boto3.client("lambda", endpoint_url="http://127.0.0.1:%d" % self.port,
                                region_name="us-east-1", aws_access_key_id=self.creds.access_key,
                                aws_secret_access_key=self.creds.secret_key,
                                config=botocore.config.Config(retries={"max_attempts": 1}))

    def signed_invoke(self, fn, body=b"{}", headers=None):
        """(path, headers) of a signed Invoke, as the SDK sends it."""
        url = "http://127.0.0.1:%d/2015-03-31/functions/%s/invocations" % (self.port, fn)
        req = botocore.awsrequest.AWSRequest(method="POST", url=url, data=body,
                                             headers=headers or {})
        botocore.auth.SigV4Auth(self.creds, "lambda", "us-east-1").add_auth(req)
        return "/2015-03-31/functions/%s/invocations" % fn, dict(req.headers.items())

    def metric(self, name):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        c.request("GET", "/metrics")
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def zip_of(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, (data, mode) in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, data)
    return buf.getvalue()


def cold_starts(server, label):
    """Invokes a no-op Python function COLD_N times, each on a new configuration (so each
    needs a new execution environment); returns client-side latencies in ms."""
    lam = server.lam
    lam.create_function(FunctionName="noop", Runtime="python3.11", Role="arn:aws:iam::000000000000:role/r",
                        Handler="index.handler", Code={"ZipFile": zip_of({"index.py": (NOOP, 0o644)})})
    conn = http.client.HTTPConnection("127.0.0.1", server.port)
    lat = []
    inits = []
    deadline = time.time() + 120
    for i in range(COLD_N + 1):
        if time.time() > deadline:
            break
        lam.update_function_configuration(FunctionName="noop", Description="run %d" % i)
        time.sleep(0.25)  # let retired environments go and the pool refill
        path, headers = server.signed_invoke("noop")
        headers["X-Amz-Log-Type"] = "Tail"
        t0 = time.perf_counter()
        conn.request("POST", path, body=b"{}", headers=headers)
        r = conn.getresponse()
        body = r.read()
        dt = (time.perf_counter() - t0) * 1000
        if r.status != 200 or r.getheader("X-Amz-Function-Error"):
            raise SystemExit("%s: invoke failed: %s %s" % (label, r.status, body[:300]))
        import base64, re
        m = re.search(r"Init Duration: ([\d.]+) ms", base64.b64decode(r.getheader("X-Amz-Log-Result")).decode())
        if i > 0:  # the very first also starts the pool
            lat.append(dt)
            if m:
                inits.append(float(m.group(1)))
    return lat, inits


def runc_cold(tmp):
    bundle = os.path.join(tmp, "runc")
    subprocess.run([PEERS + "/runc-bundle.sh", bundle, "/usr/bin/python3", "/handler.py"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(bundle, "rootfs/handler.py"), "w") as f:
        f.write(NOOP + "print(handler({}, None))\n")
    lat = []
    deadline = time.time() + 120
    for i in range(COLD_N):
        if time.time() > deadline:
            break
        t0 = time.perf_counter()
        subprocess.run(["runc", "run", "--bundle", bundle, "stratus-bench-%d-%d" % (os.getpid(), i)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def seq_latency(port, path, headers, body, n):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    lat = []
    deadline = time.time() + 60
    for _ in range(n):
        if time.time() > deadline:
            break
        t0 = time.perf_counter()
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status != 200:
            raise SystemExit("request failed: %d" % r.status)
    return lat


def wrk(url, lua, tmp, name):
    args = ["wrk", "-t2", "-c64", "-d" + DURATION, "--latency"]
    if lua:
        args += ["-s", lua]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=120).stdout
    rps = p50 = p99 = "?"
    non2xx = "0"
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec"):
            rps = parts[1]
        elif parts[:1] == ["50%"]:
            p50 = parts[1]
        elif parts[:1] == ["99%"]:
            p99 = parts[1]
        elif "Non-2xx" in line:
            non2xx = parts[-1]
    return rps, p50, p99, non2xx


def async_bench(tmp, servers):
    """(c) durable asynchronous invokes: how many Event invokes per second the server
    acknowledges (each 202 after its store commit, fsynced), and how fast the queue drains
    through a warm `provided` echo function."""
    srv = Server(tmp, "async")
    servers.append(srv)
    exe = os.path.join(tmp, "bootstrap-async")
    subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "echo_bootstrap.c")], check=True)
    srv.lam.create_function(
        FunctionName="sink", Runtime="provided.al2023", Role="arn:aws:iam::000000000000:role/r",
        Handler="x", Code={"ZipFile": zip_of({"bootstrap": (open(exe, "rb").read(), 0o755)})})
    if os.environ.get("BENCH_ASYNC_HOLD"):
        # Accept only: the function may not run, so the queue only grows.
        srv.lam.put_function_concurrency(FunctionName="sink", ReservedConcurrentExecutions=0)
    body = b'{"hello":"world"}'
    path, headers = srv.signed_invoke("sink", body, {"X-Amz-Invocation-Type": "Event"})
    lua = os.path.join(tmp, "async.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n' % body.decode())
        for k, v in headers.items():
            f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
    url = "http://127.0.0.1:%d%s" % (srv.port, path)
    t0 = time.time()
    accepted = wrk(url, lua, tmp, "async")
    deadline = time.time() + 300
    queued = srv.metric("stratus_lambda_async_queued")
    while queued and time.time() < deadline and not os.environ.get("BENCH_ASYNC_HOLD"):
        time.sleep(0.2)
        queued = srv.metric("stratus_lambda_async_queued")
    drained = time.time() - t0
    total = srv.metric("stratus_lambda_async_accepted_total") or 0
    done = srv.metric("stratus_lambda_async_succeeded_total") or 0
    print("(c) asynchronous invokes (Event), 64 concurrent clients, %s, wrk -t2" % DURATION)
    print("  %-44s %10s req/s  p50 %8s  p99 %8s  non-2xx %s" %
          (("accepted (202 after a durable commit)",) + accepted))
    print("  %-44s %10.0f events in %.1f s = %.0f events/s (%s still queued)" %
          ("run to completion", done, drained, done / drained if drained else 0, queued))
    print("  events accepted in all: %.0f" % total)


def main():
    if os.geteuid() != 0:
        print("lambda bench: needs root (sandboxes); skipped")
        return
    for tool in ("wrk", "runc", "gcc"):
        if not shutil.which(tool):
            print("lambda bench: %s missing; skipped" % tool)
            return
    tmp = tempfile.mkdtemp(prefix="stratus-bench-lambda-")
    servers = []
    nginx_dir = os.path.join(tmp, "nginx")
    only = os.environ.get("BENCH_ONLY", "")
    try:
        if only == "c":
            return async_bench(tmp, servers)
        if only == "a":
            pooled = Server(tmp, "pooled")
            servers.append(pooled)
            ours, inits = cold_starts(pooled, "pooled")
            print("(a) stratus (prestart pool) p50 %.2f p99 %.2f; Init Duration p50 %.2f" %
                  (pct(ours, 50), pct(ours, 99), pct(inits, 50) if inits else -1))
            return
        # (a) cold starts
        pooled = Server(tmp, "pooled")
        servers.append(pooled)
        ours, inits = cold_starts(pooled, "pooled")
        fresh = Server(tmp, "fresh", "lambda_prestart_pool_size: 0\n")
        servers.append(fresh)
        ours_fresh, _ = cold_starts(fresh, "fresh")
        fresh.stop()
        runc = runc_cold(tmp)
        print("(a) cold start, no-op Python handler (ms, client-side, n=%d)" % len(ours))
        print("  %-44s p50 %7.2f  p99 %7.2f" % ("stratus (prestart pool)", pct(ours, 50), pct(ours, 99)))
        if inits:
            print("  %-44s p50 %7.2f  p99 %7.2f" % ("  of which Init Duration (user code load)",
                                                   pct(inits, 50), pct(inits, 99)))
        print("  %-44s p50 %7.2f  p99 %7.2f" % ("stratus (pool off: fresh sandbox + python)",
                                               pct(ours_fresh, 50), pct(ours_fresh, 99)))
        print("  %-44s p50 %7.2f  p99 %7.2f" % ("runc run (busybox + host python)", pct(runc, 50), pct(runc, 99)))
        print("  ratio runc/stratus p50: %.1fx   target: stratus p50 <= 10 ms" % (pct(runc, 50) / pct(ours, 50)))

        # (b) warm invokes of a native echo function vs nginx
        exe = os.path.join(tmp, "bootstrap")
        subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "echo_bootstrap.c")], check=True)
        pooled.lam.create_function(
            FunctionName="echo", Runtime="provided.al2023", Role="arn:aws:iam::000000000000:role/r",
            Handler="x", Code={"ZipFile": zip_of({"bootstrap": (open(exe, "rb").read(), 0o755)})})
        body = b'{"hello":"world"}'
        path, headers = pooled.signed_invoke("echo", body)
        seq_latency(pooled.port, path, headers, body, 50)  # warm one environment
        warm = seq_latency(pooled.port, path, headers, body, WARM_N)
        nport = free_port()
        subprocess.run([PEERS + "/nginx-static.sh", "start", str(nport), nginx_dir], check=True)
        for _ in range(50):
            try:
                http.client.HTTPConnection("127.0.0.1", nport, timeout=1).request("GET", "/")
                break
            except OSError:
                time.sleep(0.1)
        plain = seq_latency(nport, "/", {}, None, WARM_N)
        print("(b) warm invoke, provided echo function, concurrency 1 (ms, client-side, n=%d)" % len(warm))
        print("  %-44s p50 %7.3f  p99 %7.3f" % ("stratus Invoke (SigV4 + Runtime API)", pct(warm, 50), pct(warm, 99)))
        print("  %-44s p50 %7.3f  p99 %7.3f" % ("nginx static 200", pct(plain, 50), pct(plain, 99)))
        print("  target: stratus p50 <= 0.5 ms")
        lua = os.path.join(tmp, "invoke.lua")
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = \'%s\'\n' % body.decode())
            for k, v in headers.items():
                f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
        url = "http://127.0.0.1:%d%s" % (pooled.port, path)
        # Warm 64 environments first so the measured run is all warm invokes.
        wrk(url, lua, tmp, "prewarm") if False else None
        subprocess.run(["wrk", "-t2", "-c64", "-d2s", "-s", lua, url], capture_output=True, timeout=60)
        ours_t = wrk(url, lua, tmp, "invoke")
        nginx_t = wrk("http://127.0.0.1:%d/" % nport, None, tmp, "nginx")
        print("(b) throughput, 64 concurrent clients, %s, wrk -t2" % DURATION)
        print("  %-44s %10s req/s  p50 %8s  p99 %8s  non-2xx %s" % (("stratus Invoke",) + ours_t))
        print("  %-44s %10s req/s  p50 %8s  p99 %8s  non-2xx %s" % (("nginx static 200",) + nginx_t))
        try:
            print("  ratio stratus/nginx: %.2f   target: stratus >= 10,000 invokes/s" %
                  (float(ours_t[0]) / float(nginx_t[0])))
        except ValueError:
            pass
        async_bench(tmp, servers)
    finally:
        subprocess.run([PEERS + "/nginx-static.sh", "stop", nginx_dir], capture_output=True)
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
