"""Python and Node.js functions on our runtime clients (runtimes/), through boto3: handlers,
the context object, state kept in globals between warm invokes, AWS's error shapes, boto3
inside a function, and cold starts served from the pool of pre-started runtimes."""
import base64
import json
import os
import shutil
import time
import unittest
import urllib.request

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable




PY = make_zip({"app.py": '''
import os
calls = 0
def handler(event, context):
    global calls
    calls += 1
    print("got", event)
    return {"event": event, "calls": calls, "fn": context.function_name,
            "rid": context.aws_request_id, "mem": context.memory_limit_in_mb,
            "left": context.get_remaining_time_in_millis(),
            "arn": context.invoked_function_arn, "cwd": os.getcwd()}
def fail(event, context):
    raise ValueError("Handler fails")
def sdk(event, context):
    import boto3
    return sorted(f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"])
'''})

NODE = make_zip({"index.js": '''
let calls = 0;
exports.handler = async (event, context) => {
  calls += 1;
  console.log("got", JSON.stringify(event));
  return {event, calls, fn: context.functionName, rid: context.awsRequestId,
          left: context.getRemainingTimeInMillis()};
};
exports.fail = async () => { throw new TypeError("node says no"); };
'''})




@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class LambdaRuntimesTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        cls.role = create_function_role(cls.server, "rt-role", ["lambda:ListFunctions"])

    def create(self, name, runtime, handler, code, **kw):
        self.lam.create_function(FunctionName=name, Runtime=runtime, Role=self.role,
                                 Handler=handler, Code={"ZipFile": code}, Timeout=10, **kw)

    def invoke(self, name, event, **kw):
        r = self.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
        r["Body"] = json.loads(r["Payload"].read())
        return r

    def metric(self, name, fn):
        text = urllib.request.urlopen(self.server.endpoint + "/metrics").read().decode()
        for line in text.splitlines():
            if line.startswith('%s{function="%s"} ' % (name, fn)):
                return float(line.split()[-1])
        return 0.0

    def test_python_handler_context_and_warm_state(self):
        self.create("py", "python3.11", "app.handler", PY, MemorySize=256)
        r1 = self.invoke("py", {"a": 1})
        self.assertNotIn("FunctionError", r1, r1["Body"])
        b = r1["Body"]
        self.assertEqual((b["event"], b["calls"], b["fn"], b["mem"]), ({"a": 1}, 1, "py", "256"))
        self.assertEqual(b["rid"], r1["ResponseMetadata"]["RequestId"])
        self.assertEqual(b["cwd"], "/var/task")
        self.assertTrue(0 < b["left"] <= 10000)
        r2 = self.invoke("py", {"a": 2}, LogType="Tail")
        self.assertEqual(r2["Body"]["calls"], 2)
        tail = base64.b64decode(r2["LogResult"]).decode()
        self.assertIn("got {'a': 2}", tail)

    def test_python_errors_have_aws_shapes(self):
        self.create("pyfail", "python3.12", "app.fail", PY)
        r = self.invoke("pyfail", {})
        self.assertEqual(r["FunctionError"], "Unhandled")
        b = r["Body"]
        self.assertEqual((b["errorType"], b["errorMessage"]), ("ValueError", "Handler fails"))
        self.assertEqual(b["requestId"], r["ResponseMetadata"]["RequestId"])
        self.assertIn('raise ValueError("Handler fails")', "".join(b["stackTrace"]))
        self.create("pymissing", "python3.12", "nomodule.handler", PY)
        m = self.invoke("pymissing", {})
        self.assertEqual(m["FunctionError"], "Unhandled")
        self.assertEqual(m["Body"]["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(m["Body"]["errorMessage"],
                         "Unable to import module 'nomodule': No module named 'nomodule'")
        self.create("pynohandler", "python3.12", "app.nothere", PY)
        h = self.invoke("pynohandler", {})
        self.assertEqual(h["Body"]["errorType"], "Runtime.HandlerNotFound")

    def test_boto3_inside_a_python_function_reaches_stratus(self):
        self.create("pysdk", "python3.11", "app.sdk", PY)
        r = self.invoke("pysdk", {})
        self.assertNotIn("FunctionError", r, r["Body"])
        self.assertIn("pysdk", r["Body"])

    def test_cold_start_from_the_prestart_pool(self):
        # The first cold start of this (runtime, memory) fills the pool; the next function
        # with the same shape is served from it, with an honest Init Duration.
        self.create("warmup", "python3.11", "app.handler", PY, MemorySize=192)
        self.invoke("warmup", {})
        self.create("pooled", "python3.11", "app.handler", PY, MemorySize=192)
        deadline = time.time() + 20
        r = None
        while time.time() < deadline:
            time.sleep(0.3)
            if self.metric("stratus_lambda_environments", "warmup") >= 1:
                break
        time.sleep(1.0)  # let the pool's runtimes finish starting
        r = self.invoke("pooled", {"x": 1}, LogType="Tail")
        self.assertNotIn("FunctionError", r, r["Body"])
        self.assertEqual(r["Body"]["event"], {"x": 1})
        self.assertEqual(r["Body"]["fn"], "pooled")
        self.assertEqual(self.metric("stratus_lambda_prestarted_starts_total", "pooled"), 1)
        self.assertRegex(base64.b64decode(r["LogResult"]).decode(), r"Init Duration: [\d.]+ ms")

    @unittest.skipUnless(shutil.which("node") and os.path.exists("/usr/bin/node"), "no node")
    def test_node_handler_and_error(self):
        self.create("nd", "nodejs20.x", "index.handler", NODE)
        r1 = self.invoke("nd", {"k": "v"})
        self.assertNotIn("FunctionError", r1, r1["Body"])
        self.assertEqual((r1["Body"]["event"], r1["Body"]["calls"]), ({"k": "v"}, 1))
        r2 = self.invoke("nd", {})
        self.assertEqual(r2["Body"]["calls"], 2)
        self.create("ndfail", "nodejs20.x", "index.fail", NODE)
        f = self.invoke("ndfail", {})
        self.assertEqual(f["FunctionError"], "Unhandled")
        self.assertEqual(f["Body"]["errorType"], "TypeError")
        self.assertEqual(f["Body"]["errorMessage"], "node says no")


if __name__ == "__main__":
    unittest.main()
