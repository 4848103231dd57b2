#!/usr/bin/python3
"""Tests for runtimes/python/bootstrap.py against a fake Runtime API.

Run: /usr/bin/python3 runtimes/tests/test_python_runtime.py
"""

import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import FakeRuntimeApi, RuntimeProcess  # noqa: E402

BOOTSTRAP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "bootstrap.py")
PYTHON = "/usr/bin/python3"


class PythonRuntimeTest(unittest.TestCase):
    def setUp(self):
        self.api = FakeRuntimeApi()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.close()
        self.api.close()

    def start(self, files, handler="handler.handler", env=None, prestart=False):
        p = RuntimeProcess([PYTHON, os.path.abspath(BOOTSTRAP)], files, handler, self.api, env=env,
                           prestart=prestart)
        self.procs.append(p)
        return p

    def test_success_and_keepalive(self):
        self.start({"handler.py": "def handler(event, context):\n    return {'echo': event, 'n': 1}\n"})
        for i in range(3):
            kind, body, headers = self.api.invoke({"i": i, "s": "x"})
            self.assertEqual(kind, "response")
            self.assertEqual(body, {"echo": {"i": i, "s": "x"}, "n": 1})
        # one persistent connection for init, three nexts, three responses and the last next
        self.assertEqual(len(self.api.connections), 1, self.api.connections)

    def test_none_result_is_null(self):
        self.start({"handler.py": "def handler(event, context):\n    pass\n"})
        rid = self.api.enqueue({})
        post = self.api.wait_post(rid)
        self.assertEqual(post["kind"], "response")
        self.assertEqual(post["body"], b"null")

    def test_string_and_bytes_results(self):
        self.start({"handler.py": "def handler(event, context):\n"
                                  "    return b'raw-bytes' if event == 'b' else 'hello'\n"})
        self.assertEqual(self.api.wait_post(self.api.enqueue("s"))["body"], b'"hello"')
        self.assertEqual(self.api.wait_post(self.api.enqueue("b"))["body"], b"raw-bytes")

    def test_handler_exception(self):
        p = self.start({"lambda_handler_error.py":
                        'def handler(event, context):\n    raise Exception("Handler fails")\n'},
                       handler="lambda_handler_error.handler")
        rid = self.api.enqueue({})
        post = self.api.wait_post(rid)
        self.assertEqual(post["kind"], "error")
        self.assertEqual(post["headers"]["lambda-runtime-function-error-type"], "Unhandled")
        body = json.loads(post["body"])
        self.assertEqual(list(body), ["errorMessage", "errorType", "requestId", "stackTrace"])
        self.assertEqual(body["errorMessage"], "Handler fails")
        self.assertEqual(body["errorType"], "Exception")
        self.assertEqual(body["requestId"], rid)
        self.assertEqual(body["stackTrace"], [
            '  File "%s/lambda_handler_error.py", line 2, in handler\n'
            '    raise Exception("Handler fails")\n' % p.task_root])
        out = p.wait_for_output("[ERROR] Exception: Handler fails")
        self.assertIn("[ERROR] Exception: Handler fails\rTraceback (most recent call last):\r"
                      "\u00a0\u00a0File \"%s/lambda_handler_error.py\", line 2, in handler\r"
                      "\u00a0\u00a0\u00a0\u00a0raise Exception(\"Handler fails\")\n" % p.task_root, out)
        # the runtime survives a handler error
        self.assertEqual(self.api.invoke({})[0], "error")

    def test_custom_exception_type_and_nested_frames(self):
        self.start({"handler.py": "class MyError(Exception):\n    pass\n"
                                  "def inner():\n    raise MyError('deep')\n"
                                  "def handler(event, context):\n    inner()\n"})
        kind, body, _ = self.api.invoke({})
        self.assertEqual((kind, body["errorType"], body["errorMessage"]), ("error", "MyError", "deep"))
        self.assertEqual(len(body["stackTrace"]), 2)
        self.assertIn("in handler", body["stackTrace"][0])
        self.assertIn("in inner", body["stackTrace"][1])

    def test_import_error(self):
        p = self.start({}, handler="missing.handler")
        err = self.api.wait_init_error()
        self.assertEqual(err["headers"]["lambda-runtime-function-error-type"], "Runtime.ImportModuleError")
        self.assertEqual(json.loads(err["body"]), {
            "errorMessage": "Unable to import module 'missing': No module named 'missing'",
            "errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []})
        self.assertNotEqual(p.wait(), 0)
        self.assertIn("[ERROR] Runtime.ImportModuleError: Unable to import module 'missing'", p.stdout())

    def test_missing_handler(self):
        p = self.start({"handler.py": "def other(event, context):\n    return 1\n"}, handler="handler.nope")
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual(body, {"errorMessage": "Handler 'nope' missing on module 'handler'",
                                "errorType": "Runtime.HandlerNotFound", "requestId": "", "stackTrace": []})
        self.assertNotEqual(p.wait(), 0)

    def test_malformed_handler_name(self):
        p = self.start({}, handler="nodot")
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual(body["errorType"], "Runtime.MalformedHandlerName")
        self.assertTrue(body["errorMessage"].startswith("Bad handler 'nodot': "), body)
        self.assertNotEqual(p.wait(), 0)

    def test_syntax_error(self):
        p = self.start({"handler.py": "def handler(event, context)\n    return 1\n"})
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual(body["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertTrue(body["errorMessage"].startswith("Syntax error in module 'handler': "), body)
        self.assertNotEqual(p.wait(), 0)

    def test_module_raising_at_import(self):
        p = self.start({"lambda_runtime_error.py": 'raise Exception("Runtime startup fails")\n'},
                       handler="lambda_runtime_error.handler")
        err = self.api.wait_init_error()
        self.assertEqual(err["headers"]["lambda-runtime-function-error-type"], "Exception")
        body = json.loads(err["body"])
        self.assertEqual(list(body), ["errorMessage", "errorType", "requestId", "stackTrace"])
        self.assertEqual((body["errorMessage"], body["errorType"], body["requestId"]),
                         ("Runtime startup fails", "Exception", ""))
        # like AWS: importlib's frames, then the user's line; none of bootstrap.py's
        self.assertIn("importlib/__init__.py", body["stackTrace"][0])
        self.assertIn("in import_module", body["stackTrace"][0])
        self.assertTrue(any("<frozen importlib._bootstrap>" in f for f in body["stackTrace"]))
        self.assertEqual(body["stackTrace"][-1],
                         '  File "%s/lambda_runtime_error.py", line 1, in <module>\n'
                         '    raise Exception("Runtime startup fails")\n' % p.task_root)
        self.assertFalse(any("bootstrap.py" in f for f in body["stackTrace"]))
        self.assertEqual(p.wait(), 1)

    def test_unserialisable_result(self):
        self.start({"handler.py": "def handler(event, context):\n    return {'s': {1, 2}}\n"})
        rid = self.api.enqueue({})
        post = self.api.wait_post(rid)
        self.assertEqual(post["kind"], "error")
        self.assertEqual(json.loads(post["body"]), {
            "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
            "errorType": "Runtime.MarshalError", "requestId": rid, "stackTrace": []})

    def test_decimal_result(self):
        self.start({"handler.py": "from decimal import Decimal\n"
                                  "def handler(event, context):\n"
                                  "    return {'i': Decimal('3'), 'f': Decimal('1.5')}\n"})
        self.assertEqual(self.api.invoke({})[1], {"i": 3, "f": 1.5})

    def test_context_values(self):
        self.start({"handler.py": """
import os
def handler(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_custom": context.client_context.custom if context.client_context else None,
        "client_app": context.client_context.client.app_title if context.client_context else None,
        "cwd": os.getcwd(),
    }
"""})
        deadline = int(time.time() * 1000) + 10000
        rid = self.api.enqueue({}, deadline_ms=deadline, arn="arn:aws:lambda:us-east-1:000000000000:function:fn:7",
                               trace_id="Root=1-abc;Sampled=0",
                               client_context={"custom": {"k": "v"}, "client": {"app_title": "app"}, "env": {}},
                               cognito_identity={"cognitoIdentityId": "id1", "cognitoIdentityPoolId": "pool1"})
        body = json.loads(self.api.wait_post(rid)["body"])
        self.assertEqual(body["function_name"], "fn")
        self.assertEqual(body["function_version"], "$LATEST")
        self.assertEqual(body["invoked_function_arn"], "arn:aws:lambda:us-east-1:000000000000:function:fn:7")
        self.assertEqual(body["memory_limit_in_mb"], "128")  # a string, as on AWS
        self.assertEqual(body["aws_request_id"], rid)
        self.assertEqual(body["log_group_name"], "/aws/lambda/fn")
        self.assertEqual(body["log_stream_name"], "2026/11/23/[$LATEST]0123456789abcdef")
        self.assertTrue(5000 < body["remaining"] <= 10000, body["remaining"])
        self.assertEqual(body["trace"], "Root=1-abc;Sampled=0")
        self.assertEqual(body["identity"], ["id1", "pool1"])
        self.assertEqual(body["client_custom"], {"k": "v"})
        self.assertEqual(body["client_app"], "app")
        self.assertEqual(os.path.realpath(body["cwd"]), os.path.realpath(self.procs[0].task_root))
        # a past deadline reads as 0, never negative
        body = self.api.invoke({}, deadline_ms=int(time.time() * 1000) - 5000)[1]
        self.assertEqual(body["remaining"], 0)
        self.assertIsNone(body["client_custom"])
        self.assertEqual(body["identity"], [None, None])

    def test_global_state_kept_between_invokes(self):
        self.start({"handler.py": "COUNT = 0\ndef handler(event, context):\n"
                                  "    global COUNT\n    COUNT += 1\n    return COUNT\n"})
        self.assertEqual(self.api.invoke({})[1], 1)
        self.assertEqual(self.api.invoke({})[1], 2)

    def test_handler_in_package_and_directory(self):
        self.start({"pkg/__init__.py": "", "pkg/sub/mod.py": "def fn(e, c):\n    return 'pkg'\n"},
                   handler="pkg/sub/mod.fn")
        self.assertEqual(self.api.invoke({})[1], "pkg")

    def test_dotted_module(self):
        self.start({"pkg/__init__.py": "", "pkg/mod.py": "def fn(e, c):\n    return 'dotted'\n"},
                   handler="pkg.mod.fn")
        self.assertEqual(self.api.invoke({})[1], "dotted")

    def test_stdout_capture_and_logging(self):
        p = self.start({"handler.py": """
import logging, sys
print("init line")
logging.getLogger().setLevel(logging.INFO)
def handler(event, context):
    print("hello from", context.aws_request_id)
    sys.stdout.write("partial")
    sys.stderr.write("to stderr\\n")
    logging.getLogger("x").info("logged %s", 42)
    return 1
"""})
        rid = self.api.enqueue({})
        self.api.wait_post(rid)
        # output is written before the result is posted: no wait needed
        out = p.stdout()
        self.assertIn("init line\n", out)
        self.assertIn("hello from %s\n" % rid, out)
        self.assertIn("partial", out)
        self.assertRegex(out, r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\tlogged 42\n" % rid)
        self.assertIn("to stderr\n", p.stderr())

    def test_non_json_event_is_unmarshal_error(self):
        self.start({"handler.py": "def handler(event, context):\n    return event\n"})
        rid = self.api.enqueue(None, raw_body=b"{not json")
        body = json.loads(self.api.wait_post(rid)["body"])
        self.assertEqual(body["errorType"], "Runtime.UnmarshalError")
        self.assertTrue(body["errorMessage"].startswith("Unable to unmarshal input: "))

    def test_large_payload(self):
        self.start({"handler.py": "def handler(event, context):\n    return {'len': len(event['s']), 's': event['s']}\n"})
        s = "x" * (5 * 1024 * 1024)
        body = self.api.invoke({"s": s})[1]
        self.assertEqual(body["len"], len(s))
        self.assertEqual(body["s"], s)

    def test_prestart(self):
        p = self.start({"handler.py": """
import os
STARTED_IN = os.getcwd()
def handler(event, context):
    return {"cwd": STARTED_IN, "custom": os.environ.get("MY_VAR"), "name": context.function_name,
            "prestart": os.environ.get("STRATUS_PRESTART")}
"""}, env={"MY_VAR": "from-init"}, prestart=True)
        kind, body, _ = self.api.invoke({})
        self.assertEqual(kind, "response")
        self.assertEqual(os.path.realpath(body["cwd"]), os.path.realpath(p.task_root))
        self.assertEqual(body["custom"], "from-init")
        self.assertEqual(body["name"], "fn")
        self.assertIsNone(body["prestart"])
        self.assertEqual(self.api.init_calls, 1)
        self.assertEqual(self.api.paths[0], ("GET", "/_stratus/v1/init"))
        self.assertEqual(len(self.api.connections), 1)

    def test_prestart_pythonpath_from_init_env(self):
        # PYTHONPATH arrives with the function's environment, after the interpreter has started
        self.start({"handler.py": "import shared_lib\ndef handler(e, c):\n    return shared_lib.VALUE\n",
                        "layer/shared_lib.py": "VALUE = 'from PYTHONPATH'\n"},
                       env={"PYTHONPATH": "{TASK_ROOT}/layer"}, prestart=True)
        self.assertEqual(self.api.invoke({})[1], "from PYTHONPATH")

    def test_prestart_waits_for_init(self):
        # the runtime blocks in /_stratus/v1/init and touches nothing function-specific until then
        self.api.init_status = 200
        gate = __import__("threading").Event()
        original = self.api.server.RequestHandlerClass.do_GET

        def gated(handler_self):
            if handler_self.path == "/_stratus/v1/init":
                gate.wait(10)
            original(handler_self)

        self.api.server.RequestHandlerClass.do_GET = gated
        p = self.start({"handler.py": "print('imported')\ndef handler(e, c):\n    return 'ok'\n"},
                       prestart=True)
        time.sleep(0.5)
        self.assertIsNone(p.proc.poll())
        self.assertNotIn("imported", p.stdout())
        gate.set()
        self.assertEqual(self.api.invoke({})[1], "ok")

    def test_prestart_init_refused(self):
        self.api.init_status = 503
        p = self.start({"handler.py": "def handler(e, c):\n    return 1\n"}, prestart=True)
        self.assertEqual(p.wait(), 1)
        self.assertEqual(self.api.init_errors, [])

    def test_endpoint_url_hook(self):
        try:
            import botocore  # noqa: F401
        except ImportError:
            self.skipTest("botocore is not installed for %s" % PYTHON)
        self.start({"handler.py": """
import sys
assert "botocore" not in sys.modules  # the runtime must not import it eagerly
import boto3
def handler(event, context):
    a = boto3.client("s3", region_name="us-east-1")
    b = boto3.client("s3", region_name="us-east-1", endpoint_url="http://explicit:1")
    return [a.meta.endpoint_url, b.meta.endpoint_url]
"""}, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "y"})
        kind, body, _ = self.api.invoke({}, )
        self.assertEqual(kind, "response", body)
        self.assertEqual(body, ["http://127.0.0.1:4566", "http://explicit:1"])

    def test_no_eager_imports(self):
        self.start({"handler.py": "import sys\ndef handler(e, c):\n"
                                  "    return sorted(m for m in ('boto3', 'botocore', 'logging', 'http.client',"
                                  " 'email', 'ssl') if m in sys.modules)\n"})
        self.assertEqual(self.api.invoke({})[1], [])

    def test_sys_path_order(self):
        self.start({"handler.py": "import sys\ndef handler(e, c):\n    return sys.path[:3]\n"})
        path = self.api.invoke({})[1]
        self.assertEqual(path[1:], ["/opt/python/lib/python%d.%d/site-packages" % sys.version_info[:2],
                                    "/opt/python"])
        self.assertEqual(os.path.realpath(path[0]), os.path.realpath(self.procs[0].task_root))

    def test_wire_variations(self):
        # chunked /next bodies, Connection: close, and a server that silently drops idle connections
        self.start({"handler.py": "def handler(event, context):\n    return event\n"})
        for chunked, close_mode in ((True, None), (False, "header"), (False, "silent"), (True, "silent")):
            self.api.chunked, self.api.close_mode = chunked, close_mode
            for i in range(3):
                event = {"i": i, "chunked": chunked, "close": close_mode, "s": "\u00e9" * 1000}
                kind, body, _ = self.api.invoke(event)
                self.assertEqual((kind, body), ("response", event))
        self.assertIsNone(self.procs[0].proc.poll())
        self.assertGreater(len(self.api.connections), 12)  # it did reconnect

    def test_runtime_api_failure_exits(self):
        self.api.next_status = 500
        p = self.start({"handler.py": "def handler(e, c):\n    return 1\n"})
        self.assertEqual(p.wait(), 1)
        self.assertIn("HTTP 500", p.stderr())

    def test_warm_invoke_cpu_cost(self):
        # Not a benchmark: a guard that the loop stays cheap (CPU the runtime spends per invoke).
        p = self.start({"handler.py": "def handler(e, c):\n    return e\n"})
        self.api.invoke({})
        import resource  # noqa: F401
        before = _cpu_seconds(p.proc.pid)
        n = 300
        for i in range(n):
            self.api.invoke({"i": i})
        per_invoke_ms = (_cpu_seconds(p.proc.pid) - before) / n * 1000
        sys.stderr.write("\n[python runtime: %.3f ms CPU per warm invoke] " % per_invoke_ms)
        self.assertLess(per_invoke_ms, 2.0)


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    unittest.main(verbosity=2)
