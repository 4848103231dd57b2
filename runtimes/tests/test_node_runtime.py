#!/usr/bin/python3
"""Tests for runtimes/node/bootstrap.js against a fake Runtime API.

Run: /usr/bin/python3 runtimes/tests/test_node_runtime.py  (skips when /usr/bin/node is missing)
"""

import json
import os
import re
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import FakeRuntimeApi, RuntimeProcess  # noqa: E402

BOOTSTRAP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node", "bootstrap.js"))
NODE = "/usr/bin/node"


def _node_version():
    try:
        return subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return None


NODE_VERSION = _node_version()
LOG_LINE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t%s\t%s\t"


@unittest.skipIf(NODE_VERSION is None, "%s is not installed: Node.js runtime not tested" % NODE)
class NodeRuntimeTest(unittest.TestCase):
    def setUp(self):
        self.api = FakeRuntimeApi()
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.close()
        self.api.close()

    def start(self, files, handler="index.handler", env=None, prestart=False):
        p = RuntimeProcess([NODE, BOOTSTRAP], files, handler, self.api, env=env, prestart=prestart)
        self.procs.append(p)
        return p

    def test_async_handler_and_keepalive(self):
        self.start({"index.js": "exports.handler = async (event) => ({ echo: event, n: 1 });\n"})
        for i in range(3):
            kind, body, _ = self.api.invoke({"i": i})
            self.assertEqual((kind, body), ("response", {"echo": {"i": i}, "n": 1}))
        self.assertEqual(len(self.api.connections), 1, self.api.connections)

    def test_undefined_result_is_null(self):
        self.start({"index.js": "exports.handler = async () => {};\n"})
        self.assertEqual(self.api.wait_post(self.api.enqueue({}))["body"], b"null")

    def test_callback_handler(self):
        self.start({"index.js": "exports.handler = (event, context, callback) => {\n"
                                "  setTimeout(() => callback(null, { via: 'callback', event }), 10);\n};\n"})
        self.assertEqual(self.api.invoke({"a": 1})[1], {"via": "callback", "event": {"a": 1}})
        self.assertEqual(self.api.invoke({"a": 2})[1], {"via": "callback", "event": {"a": 2}})

    def test_callback_waits_for_empty_event_loop(self):
        # the response is held until the timer the handler left behind has run
        self.start({"index.js": """
let ran = [];
exports.handler = (event, context, callback) => {
  if (event.report) {
    context.callbackWaitsForEmptyEventLoop = false;
    return callback(null, ran.slice());
  }
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => ran.push(event.id), 200);
  callback(null, 'done');
};
"""})
        self.api.invoke({"wait": True, "id": "a"})
        self.assertEqual(self.api.invoke({"report": True})[1], ["a"])
        self.api.invoke({"wait": False, "id": "b"})
        self.assertEqual(self.api.invoke({"report": True})[1], ["a"])  # answered before b's timer
        time.sleep(0.3)
        self.assertEqual(self.api.invoke({"report": True})[1], ["a", "b"])

    def test_sync_handler_without_callback_gives_null(self):
        self.start({"index.js": "exports.handler = (event, context, callback) => { };\n"})
        self.assertEqual(self.api.wait_post(self.api.enqueue({}))["body"], b"null")

    def test_context_succeed(self):
        self.start({"index.js": "exports.handler = (event, context) => { context.succeed('legacy'); };\n"})
        self.assertEqual(self.api.invoke({})[1], "legacy")

    def test_mjs_handler(self):
        self.start({"app.mjs": "export const handler = async (event) => ({ esm: true, event });\n"},
                   handler="app.handler")
        self.assertEqual(self.api.invoke({"x": 1})[1], {"esm": True, "event": {"x": 1}})

    def test_js_in_type_module_package(self):
        self.start({"package.json": '{"type": "module"}',
                    "index.js": "export async function handler() { return 'esm-js'; }\n"})
        self.assertEqual(self.api.invoke({})[1], "esm-js")

    def test_cjs_handler_in_subdirectory(self):
        self.start({"src/lib/app.cjs": "module.exports.nested = { fn: async () => 'cjs' };\n"},
                   handler="src/lib/app.nested.fn")
        self.assertEqual(self.api.invoke({})[1], "cjs")

    def test_node_path_includes_opt_nodejs(self):
        self.start({"index.js": "exports.handler = async () => require('module').globalPaths;\n"})
        self.assertIn("/opt/nodejs/node_modules", self.api.invoke({})[1])

    def test_prestart_node_path_from_init_env(self):
        # NODE_PATH arrives with the function's environment, after node has started
        self.start({"index.js": "exports.handler = async () => require('shared-lib');\n",
                        "layer/shared-lib/index.js": "module.exports = 'from NODE_PATH';\n"},
                       env={"NODE_PATH": "{TASK_ROOT}/layer"}, prestart=True)
        self.assertEqual(self.api.invoke({})[1], "from NODE_PATH")

    def test_handler_error(self):
        p = self.start({"index.js": "exports.handler = async () => { throw new Error('some_error_msg'); };\n"})
        rid = self.api.enqueue({})
        post = self.api.wait_post(rid)
        self.assertEqual(post["kind"], "error")
        self.assertEqual(post["headers"]["lambda-runtime-function-error-type"], "Unhandled")
        body = json.loads(post["body"])
        self.assertEqual(list(body), ["errorType", "errorMessage", "trace"])
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Error", "some_error_msg"))
        self.assertEqual(body["trace"][0], "Error: some_error_msg")
        self.assertTrue(body["trace"][1].strip().startswith("at "), body["trace"])
        self.assertIn("index.js", body["trace"][1])
        out = p.wait_for_output("Invoke Error")
        self.assertRegex(out, LOG_LINE % (rid, "ERROR") + r"Invoke Error \t\{\"errorType\":\"Error\","
                         r"\"errorMessage\":\"some_error_msg\"")
        self.assertEqual(self.api.invoke({})[0], "error")  # still serving

    def test_callback_error_and_custom_error_type(self):
        self.start({"index.js": "class Boom extends Error { constructor(m) { super(m); this.name = 'Boom'; } }\n"
                                "exports.handler = (e, c, cb) => cb(e.str ? 'plain string' : new Boom('bang'));\n"})
        body = self.api.invoke({})[1]
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Boom", "bang"))
        body = self.api.invoke({"str": True})[1]
        self.assertEqual(body, {"errorType": "string", "errorMessage": "plain string", "trace": []})

    def test_sync_throw(self):
        self.start({"index.js": "exports.handler = (e) => { throw new TypeError('sync'); };\n"})
        body = self.api.invoke({})[1]
        self.assertEqual((body["errorType"], body["errorMessage"]), ("TypeError", "sync"))

    def test_import_error(self):
        p = self.start({}, handler="missing.handler")
        err = self.api.wait_init_error()
        self.assertEqual(err["headers"]["lambda-runtime-function-error-type"], "Runtime.ImportModuleError")
        body = json.loads(err["body"])
        self.assertEqual(list(body), ["errorType", "errorMessage", "trace"])
        self.assertEqual(body["errorType"], "Runtime.ImportModuleError")
        self.assertTrue(body["errorMessage"].startswith("Error: Cannot find module 'missing'"), body)
        self.assertEqual(body["trace"][0].split("\n")[0], "Runtime.ImportModuleError: Error: Cannot find module 'missing'")
        self.assertEqual(p.wait(), 129)
        self.assertRegex(p.stdout(), LOG_LINE % ("undefined", "ERROR") + r"Uncaught Exception \t\{\"errorType\":"
                         r"\"Runtime.ImportModuleError\"")

    def test_handler_not_found(self):
        p = self.start({"index.js": "exports.other = async () => 1;\n"}, handler="index.nope")
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual((body["errorType"], body["errorMessage"]),
                         ("Runtime.HandlerNotFound", "index.nope is undefined or not exported"))
        self.assertEqual(p.wait(), 129)

    def test_handler_not_a_function(self):
        self.start({"index.js": "exports.handler = 42;\n"})
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual((body["errorType"], body["errorMessage"]),
                         ("Runtime.HandlerNotFound", "index.handler is not a function"))

    def test_malformed_handler(self):
        self.start({"index.js": ""}, handler="nodot")
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Runtime.MalformedHandlerName", "Bad handler"))

    def test_syntax_error(self):
        self.start({"index.js": "exports.handler = async () => {\n"})
        body = json.loads(self.api.wait_init_error()["body"])
        self.assertEqual(body["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertTrue(body["errorMessage"].startswith("SyntaxError: "), body)

    def test_module_throwing_at_load(self):
        p = self.start({"index.js": "throw new Error('Runtime startup fails');\n"})
        err = self.api.wait_init_error()
        self.assertEqual(err["headers"]["lambda-runtime-function-error-type"], "Error")
        body = json.loads(err["body"])
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Error", "Runtime startup fails"))
        self.assertEqual(body["trace"][0], "Error: Runtime startup fails")
        self.assertEqual(p.wait(), 129)

    def test_unserialisable_result(self):
        # AWS's Node runtime reports JSON.stringify failures as a plain Error with this message
        self.start({"index.js": "exports.handler = async () => { const a = {}; a.self = a; return a; };\n"})
        kind, body, _ = self.api.invoke({})
        self.assertEqual(kind, "error")
        self.assertEqual((body["errorType"], body["errorMessage"]), ("Error", "Unable to stringify response body"))
        self.assertEqual(self.api.invoke({})[0], "error")  # still serving

    def test_unhandled_rejection_exits(self):
        p = self.start({"index.js": "exports.handler = (e, c, cb) => { Promise.reject(new Error('lost')); };\n"})
        kind, body, _ = self.api.invoke({})
        self.assertEqual(kind, "error")
        self.assertEqual(body["errorType"], "Runtime.UnhandledPromiseRejection")
        self.assertEqual(body["errorMessage"], "Error: lost")
        self.assertEqual(p.wait(), 128)

    def test_context_values(self):
        self.start({"index.js": """
exports.handler = async (event, context) => ({
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  trace: process.env._X_AMZN_TRACE_ID,
  identity: context.identity,
  clientContext: context.clientContext,
  waits: context.callbackWaitsForEmptyEventLoop,
  cwd: process.cwd(),
});
"""})
        deadline = int(time.time() * 1000) + 10000
        rid = self.api.enqueue({}, deadline_ms=deadline, arn="arn:aws:lambda:us-east-1:000000000000:function:fn:7",
                               trace_id="Root=1-abc;Sampled=0", client_context={"custom": {"k": "v"}},
                               cognito_identity={"cognitoIdentityId": "id1"})
        body = json.loads(self.api.wait_post(rid)["body"])
        self.assertEqual(body["functionName"], "fn")
        self.assertEqual(body["functionVersion"], "$LATEST")
        self.assertEqual(body["invokedFunctionArn"], "arn:aws:lambda:us-east-1:000000000000:function:fn:7")
        self.assertEqual(body["memoryLimitInMB"], "128")
        self.assertEqual(body["awsRequestId"], rid)
        self.assertEqual(body["logGroupName"], "/aws/lambda/fn")
        self.assertEqual(body["logStreamName"], "2026/11/23/[$LATEST]0123456789abcdef")
        self.assertTrue(5000 < body["remaining"] <= 10000, body["remaining"])
        self.assertEqual(body["trace"], "Root=1-abc;Sampled=0")
        self.assertEqual(body["identity"], {"cognitoIdentityId": "id1"})
        self.assertEqual(body["clientContext"], {"custom": {"k": "v"}})
        self.assertIs(body["waits"], True)
        self.assertEqual(os.path.realpath(body["cwd"]), os.path.realpath(self.procs[0].task_root))

    def test_global_state_kept_between_invokes(self):
        self.start({"index.js": "let n = 0;\nexports.handler = async () => ++n;\n"})
        self.assertEqual(self.api.invoke({})[1], 1)
        self.assertEqual(self.api.invoke({})[1], 2)

    def test_console_format_and_stdout(self):
        p = self.start({"index.js": """
console.log('at init');
exports.handler = async (event, context) => {
  console.log('hello %s', 'world');
  console.warn('multi\\nline');
  console.error({ a: 1 });
  process.stdout.write('raw stdout\\n');
  return 1;
};
"""})
        rid = self.api.enqueue({})
        self.api.wait_post(rid)
        out = p.wait_for_output("raw stdout")
        self.assertRegex(out, LOG_LINE % ("undefined", "INFO") + "at init\n")
        self.assertRegex(out, LOG_LINE % (rid, "INFO") + "hello world\n")
        self.assertRegex(out, LOG_LINE % (rid, "WARN") + "multi\rline\n")
        self.assertRegex(out, LOG_LINE % (rid, "ERROR") + re.escape("{ a: 1 }") + "\n")

    def test_prestart(self):
        p = self.start({"index.js": """
const startedIn = process.cwd();
exports.handler = async (event, context) => ({ cwd: startedIn, custom: process.env.MY_VAR,
                                               name: context.functionName,
                                               prestart: process.env.STRATUS_PRESTART || null });
"""}, env={"MY_VAR": "from-init"}, prestart=True)
        kind, body, _ = self.api.invoke({})
        self.assertEqual(kind, "response", body)
        self.assertEqual(os.path.realpath(body["cwd"]), os.path.realpath(p.task_root))
        self.assertEqual((body["custom"], body["name"], body["prestart"]), ("from-init", "fn", None))
        self.assertEqual(self.api.init_calls, 1)
        self.assertEqual(self.api.paths[0], ("GET", "/_stratus/v1/init"))
        self.assertEqual(len(self.api.connections), 1)

    def test_prestart_init_refused(self):
        self.api.init_status = 500
        p = self.start({"index.js": "exports.handler = async () => 1;\n"}, prestart=True)
        self.assertEqual(p.wait(), 1)
        self.assertEqual(self.api.init_errors, [])

    def test_large_payload(self):
        self.start({"index.js": "exports.handler = async (e) => ({ len: e.s.length, s: e.s });\n"})
        s = "y" * (5 * 1024 * 1024)
        body = self.api.invoke({"s": s})[1]
        self.assertEqual((body["len"], body["s"] == s), (len(s), True))

    def test_wire_variations(self):
        # chunked /next bodies, Connection: close, and a server that silently drops idle connections
        self.start({"index.js": "exports.handler = async (e) => e;\n"})
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
        p = self.start({"index.js": "exports.handler = async () => 1;\n"})
        self.assertEqual(p.wait(), 1)
        self.assertIn("HTTP 500", p.stderr())

    def test_warm_invoke_cpu_cost(self):
        p = self.start({"index.js": "exports.handler = async (e) => e;\n"})
        self.api.invoke({})
        before = _cpu_seconds(p.proc.pid)
        n = 300
        for i in range(n):
            self.api.invoke({"i": i})
        per_invoke_ms = (_cpu_seconds(p.proc.pid) - before) / n * 1000
        sys.stderr.write("\n[node %s runtime: %.3f ms CPU per warm invoke] " % (NODE_VERSION, per_invoke_ms))
        self.assertLess(per_invoke_ms, 2.0)


def _cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    if NODE_VERSION is None:
        print("SKIP: %s not found; the Node.js runtime tests are skipped" % NODE)
    else:
        print("node %s" % NODE_VERSION)
    unittest.main(verbosity=2)
