"""Invoking functions through boto3 and the aws CLI: real sandboxes, the Runtime API, warm
reuse, errors, timeouts, throttling, versions and aliases, log tails, and a function calling
Stratus's own API with its execution role's credentials.

The functions here use the `provided.al2023` runtime with a bootstrap written in Python
against the Runtime API, so they test the invoke path without our language runtimes."""
import base64
import concurrent.futures
import json
import os
import tempfile
import unittest

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
count = 0
def post(path, body, headers={}):
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse(); r.read(); return r.status
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    body = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(body or b"null") or {}
    count += 1
    a = ev.get("action", "echo") if isinstance(ev, dict) else "echo"
    base = "/2018-06-01/runtime/invocation/" + rid
    if a == "echo":
        print("handling", rid, flush=True)
        post(base + "/response", json.dumps({
            "event": ev, "count": count,
            "stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
            "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"],
            "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn"),
            "uid": os.getuid()}))
    elif a == "error":
        post(base + "/error", json.dumps({"errorMessage": "it broke", "errorType": "Boom",
                                          "stackTrace": []}),
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
    elif a == "sleep":
        time.sleep(ev["seconds"])
        post(base + "/response", json.dumps({"stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]}))
    elif a == "sdk":
        import boto3
        c = boto3.client("lambda", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        names = [f["FunctionName"] for f in c.list_functions()["Functions"]]
        post(base + "/response", json.dumps({"functions": names}))
    elif a == "exit":
        sys.exit(7)
'''




CODE = make_zip({"bootstrap": (BOOTSTRAP, 0o755)})




@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class LambdaInvokeTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        cls.role = create_function_role(cls.server, "fn-role", ["lambda:ListFunctions"])

    def create(self, name, **kw):
        args = dict(FunctionName=name, Runtime="provided.al2023", Role=self.role,
                    Handler="unused", Code={"ZipFile": CODE}, Timeout=5)
        args.update(kw)
        return self.lam.create_function(**args)

    def invoke(self, name, event, **kw):
        r = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
        r["Body"] = r["Payload"].read()
        return r

    def test_invoke_keeps_state_between_warm_invokes_and_tails_logs(self):
        self.create("echo")
        r1 = self.invoke("echo", {"action": "echo", "n": 1})
        self.assertEqual(r1["StatusCode"], 200)
        self.assertEqual(r1["ExecutedVersion"], "$LATEST")
        self.assertNotIn("FunctionError", r1)
        out1 = json.loads(r1["Body"])
        self.assertEqual(out1["event"], {"action": "echo", "n": 1})
        self.assertEqual(out1["count"], 1)
        self.assertEqual(out1["arn"], ARN + "echo")
        self.assertNotEqual(out1["uid"], 0)
        r2 = self.invoke("echo", {"action": "echo"}, LogType="Tail")
        out2 = json.loads(r2["Body"])
        self.assertEqual(out2["count"], 2, "the warm environment was not reused")
        self.assertEqual(out2["stream"], out1["stream"])
        self.assertRegex(out2["stream"], r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")
        tail = base64.b64decode(r2["LogResult"]).decode()
        rid = r2["ResponseMetadata"]["RequestId"]
        self.assertIn("START RequestId: %s Version: $LATEST" % rid, tail)
        self.assertIn("handling " + rid, tail)
        self.assertIn("END RequestId: " + rid, tail)
        self.assertRegex(tail, r"REPORT RequestId: %s\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms"
                               r"\tMemory Size: 128 MB\tMax Memory Used: \d+ MB" % rid)

    def test_cli_invoke(self):
        self.create("cli")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "out.json")
            code, res, err = self.server.aws(
                "lambda", "invoke", "--function-name", "cli", "--payload", '{"action":"echo","k":"v"}',
                "--cli-binary-format", "raw-in-base64-out", "--log-type", "Tail", out)
            self.assertEqual(code, 0, err)
            self.assertEqual(res["StatusCode"], 200)
            self.assertIn("START RequestId", base64.b64decode(res["LogResult"]).decode())
            with open(out) as f:
                self.assertEqual(json.load(f)["event"], {"action": "echo", "k": "v"})

    def test_errors_timeouts_and_crashes(self):
        self.create("bad", Timeout=1)
        e = self.invoke("bad", {"action": "error"})
        self.assertEqual(e["StatusCode"], 200)
        self.assertEqual(e["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(e["Body"])["errorType"], "Boom")
        t = self.invoke("bad", {"action": "sleep", "seconds": 20})
        self.assertEqual(t["FunctionError"], "Unhandled")
        body = json.loads(t["Body"])
        self.assertEqual(body["errorType"], "Sandbox.Timedout")
        self.assertRegex(body["errorMessage"],
                         r"^RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds$")
        x = self.invoke("bad", {"action": "exit"})
        self.assertEqual(json.loads(x["Body"])["errorType"], "Runtime.ExitError")
        ok = self.invoke("bad", {"action": "echo"})
        self.assertNotIn("FunctionError", ok)

    def test_concurrent_invokes_get_separate_sandboxes(self):
        self.create("par")
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            futs = [pool.submit(self.invoke, "par", {"action": "sleep", "seconds": 1})
                    for _ in range(3)]
            streams = {json.loads(f.result()["Body"])["stream"] for f in futs}
        self.assertEqual(len(streams), 3)

    def test_invocation_types_limits_and_throttling(self):
        self.create("types")
        dry = self.lam.invoke(FunctionName="types", InvocationType="DryRun")
        self.assertEqual(dry["StatusCode"], 204)
        ev = self.lam.invoke(FunctionName="types", InvocationType="Event", Payload=b"{}")
        self.assertEqual(ev["StatusCode"], 202)
        self.assertClientError(lambda: self.lam.invoke(FunctionName="nope", Payload=b"{}"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(
            lambda: self.lam.invoke(FunctionName="types", Payload=b"x" * (6 * 1024 * 1024 + 1)),
            "RequestTooLargeException", 413)
        self.lam.put_function_concurrency(FunctionName="types", ReservedConcurrentExecutions=0)
        from botocore.exceptions import ClientError
        with self.assertRaises(ClientError) as cm:
            self.lam.invoke(FunctionName="types", Payload=b"{}")
        err = cm.exception.response
        self.assertEqual(err["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(err["Error"]["Code"], "TooManyRequestsException")
        self.assertEqual(err["Reason"], "ReservedFunctionConcurrentInvocationLimitExceeded")
        self.lam.delete_function_concurrency(FunctionName="types")

    def test_versions_and_aliases_route_invokes(self):
        self.create("ver", Publish=True)
        self.lam.create_alias(FunctionName="ver", Name="live", FunctionVersion="1")
        self.lam.update_function_configuration(FunctionName="ver", Description="newer")
        r = self.invoke("ver", {"action": "echo"}, Qualifier="live")
        self.assertEqual(r["ExecutedVersion"], "1")
        body = json.loads(r["Body"])
        self.assertEqual(body["version"], "1")
        self.assertEqual(body["arn"], ARN + "ver:live")
        self.assertIn("[1]", body["stream"])
        latest = self.invoke("ver", {"action": "echo"})
        self.assertEqual(latest["ExecutedVersion"], "$LATEST")
        by_arn = self.invoke(ARN + "ver:1", {"action": "echo"})
        self.assertEqual(by_arn["ExecutedVersion"], "1")

        # A weighted alias (RoutingConfig) splits invocations between two versions.
        self.lam.publish_version(FunctionName="ver")
        self.lam.update_alias(FunctionName="ver", Name="live", FunctionVersion="1",
                              RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        seen = {}
        for _ in range(40):
            r = self.invoke("ver", {"action": "echo"}, Qualifier="live")
            body = json.loads(r["Body"])
            self.assertEqual(body["version"], r["ExecutedVersion"])
            seen[r["ExecutedVersion"]] = seen.get(r["ExecutedVersion"], 0) + 1
        # 40 draws at 50%: both versions show up (the chance one does not is 2 * 2^-40).
        self.assertEqual(set(seen), {"1", "2"}, seen)
        self.lam.update_alias(FunctionName="ver", Name="live",
                              RoutingConfig={"AdditionalVersionWeights": {}})
        for _ in range(5):
            self.assertEqual(self.invoke("ver", {"action": "echo"},
                                         Qualifier="live")["ExecutedVersion"], "1")

    def test_function_calls_stratus_with_its_role(self):
        self.create("caller")
        r = self.invoke("caller", {"action": "sdk"})
        self.assertNotIn("FunctionError", r, r["Body"])
        self.assertIn("caller", json.loads(r["Body"])["functions"])

    def test_metrics_count_invocations(self):
        self.create("metered")
        self.invoke("metered", {"action": "echo"})
        import urllib.request
        text = urllib.request.urlopen(self.server.endpoint + "/metrics").read().decode()
        self.assertIn('stratus_lambda_invocations_total{function="metered"} 1', text)
        self.assertIn('stratus_lambda_cold_starts_total{function="metered"} 1', text)


if __name__ == "__main__":
    unittest.main()
