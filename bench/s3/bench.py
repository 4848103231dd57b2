#!/usr/bin/python3
"""S3 benchmarks (issue: events), printed side by side in one run:

 (a) PUT then GET throughput (MB/s) of 1 MiB and 64 MiB objects with concurrent boto3
     clients (threads, one client each), beside `dd` writing (conv=fsync: S3 acknowledges a
     PUT only once it is durable) and reading the same number of bytes in the same
     directory, on the same disk; the ratio is ours / dd;
 (b) S3-put-to-function-start latency: a function notified of ObjectCreated records the time
     its handler starts; p50/p99 of (handler start − PUT request start), one PUT at a time
     (warm environment; the first, cold, is left out).

Every loop is bounded in count and time. (b) needs root (sandboxes)."""
import concurrent.futures
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

import boto3
import botocore.config

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "lambda"))
from bench import Server, pct  # noqa: E402  (the Lambda bench's server harness)

BUILD = os.path.realpath(sys.argv[1] if len(sys.argv) > 1 else "build")
MiB = 1 << 20
SIZES = [(1 * MiB, int(os.environ.get("BENCH_S3_SMALL_N", "200")), 8),
         (64 * MiB, int(os.environ.get("BENCH_S3_LARGE_N", "8")), 4)]
LATENCY_N = int(os.environ.get("BENCH_S3_LATENCY_N", "30"))


def client(server, service):
    return boto3.client(service, endpoint_url="http://127.0.0.1:%d" % server.port,
                        region_name="us-east-1", aws_access_key_id=server.creds.access_key,
                        aws_secret_access_key=server.creds.secret_key,
                        config=botocore.config.Config(retries={"max_attempts": 1},
                                                      s3={"addressing_style": "path"},
                                                      max_pool_connections=16))


def dd(args):
    t = time.perf_counter()
    subprocess.run(["dd", *args, "status=none"], check=True)
    return time.perf_counter() - t


def throughput(server, work):
    print("(a) S3 throughput, concurrent boto3 clients (MB/s; dd on the same disk, same bytes)")
    print("    %-10s %7s %8s %9s %9s %8s %9s %9s %8s" % (
        "object", "count", "clients", "PUT", "dd write", "ratio", "GET", "dd read", "ratio"))
    for size, count, threads in SIZES:
        bucket = "bench-%d" % (size // MiB)
        clients = [client(server, "s3") for _ in range(threads)]
        clients[0].create_bucket(Bucket=bucket)
        data = os.urandom(size)
        deadline = time.time() + 120

        def put(i):
            if time.time() < deadline:
                clients[i % threads].put_object(Bucket=bucket, Key="o%d" % i, Body=data)

        def get(i):
            if time.time() < deadline:
                body = clients[i % threads].get_object(Bucket=bucket, Key="o%d" % i)["Body"]
                while body.read(1 << 20):
                    pass

        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            t = time.perf_counter()
            list(pool.map(put, range(count)))
            put_s = time.perf_counter() - t
            t = time.perf_counter()
            list(pool.map(get, range(count)))
            get_s = time.perf_counter() - t
        total = size * count / 1e6
        src = os.path.join(work, "dd-src")
        with open(src, "wb") as f:
            f.write(data)
        # dd writes `count` files of `size`, each fsynced (a PUT is acknowledged once durable);
        # it reads the same bytes back in one pass over one file (page cache, like our GETs),
        # so its read figure carries no per-process cost.
        w = sum(dd(["if=" + src, "of=%s/dd-%d" % (work, i), "bs=1M", "conv=fsync"])
                for i in range(count))
        for i in range(count):
            os.unlink("%s/dd-%d" % (work, i))
        dd(["if=/dev/zero", "of=%s/dd-all" % work, "bs=1M", "count=%d" % (size * count // MiB),
            "conv=fsync"])
        r = dd(["if=%s/dd-all" % work, "of=/dev/null", "bs=1M"])
        os.unlink("%s/dd-all" % work)
        print("    %-10s %7d %8d %9.0f %9.0f %7.2fx %9.0f %9.0f %7.2fx" % (
            "%d MiB" % (size // MiB), count, threads, total / put_s, total / w,
            (total / put_s) / (total / w), total / get_s, total / r, (total / get_s) / (total / r)))


HANDLER = '''
import json, os, time
import boto3
sqs = boto3.client("sqs")
def handler(event, context):
    started = time.time()
    key = event["Records"][0]["s3"]["object"]["key"]
    sqs.send_message(QueueUrl=os.environ["QUEUE_URL"],
                     MessageBody=json.dumps({"key": key, "started": started}))
'''


def put_to_start(server):
    s3, sqs, lam, iam = (client(server, s) for s in ("s3", "sqs", "lambda", "iam"))
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="bench", PolicyName="sqs", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}]}))
    url = sqs.create_queue(QueueName="starts")["QueueUrl"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", HANDLER)
    fn = lam.create_function(FunctionName="onput", Runtime="python3.11", Role=role,
                             Handler="index.handler", Code={"ZipFile": buf.getvalue()},
                             Environment={"Variables": {"QUEUE_URL": url}})["FunctionArn"]
    lam.get_waiter("function_active").wait(FunctionName="onput")
    lam.add_permission(FunctionName="onput", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::latency")
    s3.create_bucket(Bucket="latency")
    s3.put_bucket_notification_configuration(Bucket="latency", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{"LambdaFunctionArn": fn,
                                          "Events": ["s3:ObjectCreated:*"]}]})
    sent = {}
    got = {}
    deadline = time.time() + 120
    for i in range(LATENCY_N + 1):
        if time.time() > deadline:
            break
        key = "k%d" % i
        sent[key] = time.time()
        s3.put_object(Bucket="latency", Key=key, Body=b"x")
        # Wait for this one to start before the next (warm environment, no queueing).
        while key not in got and time.time() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                         WaitTimeSeconds=1).get("Messages", []):
                body = json.loads(m["Body"])
                got[body["key"]] = body["started"]
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    lat = [(got[k] - sent[k]) * 1000 for k in sent if k in got and k != "k0"]
    cold = (got["k0"] - sent["k0"]) * 1000 if "k0" in got else float("nan")
    print("(b) S3 PUT → function handler start (ms, n=%d warm; first, cold: %.1f)" % (len(lat), cold))
    if lat:
        print("    p50 %7.2f   p99 %7.2f" % (pct(lat, 50), pct(lat, 99)))


def main():
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    tmp = tempfile.mkdtemp(prefix="stratus-s3-bench-", dir=base)
    server = Server(tmp, "s3")
    try:
        work = os.path.join(tmp, "dd")
        os.makedirs(work)
        if os.environ.get("BENCH_ONLY", "ab").find("a") >= 0:
            throughput(server, work)
        if os.environ.get("BENCH_ONLY", "ab").find("b") >= 0:
            if os.geteuid() == 0:
                put_to_start(server)
            else:
                print("(b) skipped: sandboxes need root")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
