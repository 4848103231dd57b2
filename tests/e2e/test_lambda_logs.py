"""A function's output reaches CloudWatch Logs: invoke a function, then read its log group
/aws/lambda/<name> with boto3 and with `stratus logs`. Skips where functions cannot run
(not root) or where this build has no invoke path yet."""
import json
import os
import subprocess
import time
import unittest

from botocore.exceptions import ClientError

from harness import STRATUS_BIN, StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    body = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    print("hello from", rid, flush=True)
    print("second line", flush=True)
    conn.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response", body=b"{}")
    conn.getresponse().read()
'''




@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class LambdaLogsTest(StratusTestCase):
    def test_function_output_lands_in_its_log_group(self):
        role = create_function_role(self.server, "logs-fn-role")
        lam = self.server.client("lambda")
        lam.create_function(FunctionName="talker", Runtime="provided.al2023", Role=role,
                            Handler="unused", Timeout=5,
                            Code={"ZipFile": make_zip({"bootstrap": (BOOTSTRAP, 0o755)})})
        r = lam.invoke(FunctionName="talker", Payload=b"{}")
        rid = r["ResponseMetadata"]["RequestId"]
        self.assertEqual(r["StatusCode"], 200)

        logs = self.server.client("logs")
        deadline = time.time() + 10
        messages = []
        while time.time() < deadline:
            try:
                events = logs.filter_log_events(logGroupName="/aws/lambda/talker")["events"]
            except ClientError as e:
                if e.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                events = []
            messages = [e["message"] for e in events]
            if any(m.startswith("REPORT RequestId: " + rid) for m in messages):
                break
            time.sleep(0.1)
        self.assertTrue(any(m.startswith("START RequestId: " + rid) for m in messages), messages)
        self.assertIn("hello from " + rid, messages)
        self.assertIn("second line", messages)
        self.assertTrue(any(m.startswith("END RequestId: " + rid) for m in messages), messages)
        streams = logs.describe_log_streams(logGroupName="/aws/lambda/talker")["logStreams"]
        self.assertEqual(len(streams), 1)
        self.assertRegex(streams[0]["logStreamName"], r"^\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}$")

        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        p = subprocess.run([STRATUS_BIN, "logs", "talker", "--endpoint-url", self.server.endpoint,
                            "--data-dir", self.server.data_dir],
                           capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f" {streams[0]['logStreamName']} hello from {rid}", p.stdout)


if __name__ == "__main__":
    unittest.main()
