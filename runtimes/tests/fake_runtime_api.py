"""A fake Lambda Runtime API (2018-06-01 plus Stratus's /_stratus/v1/init) for runtime tests.

Hands out queued invocations to GET /runtime/invocation/next, records what the runtime posts back,
and runs a runtime bootstrap as a subprocess against itself. Standard library only.
"""

import http.server
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

DEFAULT_TIMEOUT = 15.0


class FakeRuntimeApi:
    def __init__(self, init_env=None, init_status=200):
        self.events = queue.Queue()
        self.posts = {}  # request id -> {"kind": "response"|"error", "headers": {...}, "body": bytes}
        self.init_errors = []  # [{"headers": {...}, "body": bytes}]
        self.init_calls = 0
        self.init_env = init_env or {}
        self.init_status = init_status
        self.connections = set()  # client (host, port) pairs seen, to check keep-alive
        self.paths = []
        # Wire variations a real server may use: "chunked" bodies for /next; "close" after every
        # reply ("header": with Connection: close, "silent": without it, as an idle-timeout would).
        self.chunked = False
        self.next_status = 200  # anything else: /next fails (the runtime must exit)
        self.close_mode = None
        self.cond = threading.Condition()
        self.stopping = False
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=None, chunked=False):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if api.close_mode == "header":
                    self.send_header("Connection", "close")
                if api.close_mode is not None:
                    self.close_connection = True
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    half = len(body) // 2
                    self._headers_buffer.append(b"\r\n")
                    for part in (body[:half], body[half:]):
                        if part:
                            self._headers_buffer.append(b"%x;ext=1\r\n" % len(part) + part + b"\r\n")
                    self._headers_buffer.append(b"0\r\nX-Trailer: t\r\n\r\n")
                    self.flush_headers()
                    return
                self.send_header("Content-Length", str(len(body)))
                self._headers_buffer.append(b"\r\n")
                self._headers_buffer.append(body)  # one write: headers and body together
                self.flush_headers()

            def _note(self):
                with api.cond:
                    api.connections.add(self.client_address)
                    api.paths.append((self.command, self.path))

            def do_GET(self):
                self._note()
                if self.path == "/2018-06-01/runtime/invocation/next":
                    if api.next_status != 200:
                        self._reply(api.next_status, b'{"errorMessage":"gone"}')
                        return
                    while True:
                        try:
                            event = api.events.get(timeout=0.1)
                            break
                        except queue.Empty:
                            if api.stopping:
                                self.close_connection = True
                                return
                    headers = {"Content-Type": "application/json"}
                    headers.update(event["headers"])
                    self._reply(200, event["body"], headers, chunked=api.chunked)
                elif self.path == "/_stratus/v1/init":
                    with api.cond:
                        api.init_calls += 1
                    body = json.dumps({"env": api.init_env}).encode()
                    self._reply(api.init_status, body if api.init_status == 200 else b"{}",
                                {"Content-Type": "application/json"})
                else:
                    self._reply(404, b'{"message":"not found"}')

            def do_POST(self):
                self._note()
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                parts = self.path.split("/")
                # /2018-06-01/runtime/invocation/<id>/(response|error)
                if len(parts) == 6 and parts[3] == "invocation" and parts[5] in ("response", "error"):
                    with api.cond:
                        api.posts[parts[4]] = {"kind": parts[5], "headers": headers, "body": body}
                        api.cond.notify_all()
                    self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
                elif self.path == "/2018-06-01/runtime/init/error":
                    with api.cond:
                        api.init_errors.append({"headers": headers, "body": body})
                        api.cond.notify_all()
                    self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
                else:
                    self._reply(404, b'{"message":"not found"}')

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a runtime killed mid-request is expected at the end of every test

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()

    def enqueue(self, event, request_id=None, deadline_ms=None, arn=None, trace_id=None,
                client_context=None, cognito_identity=None, raw_body=None):
        request_id = request_id or str(uuid.uuid4())
        if deadline_ms is None:
            deadline_ms = int(time.time() * 1000) + 30000
        headers = {
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn":
                arn or "arn:aws:lambda:us-east-1:000000000000:function:fn",
            "Lambda-Runtime-Trace-Id": trace_id or "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
        }
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(cognito_identity)
        body = raw_body if raw_body is not None else json.dumps(event).encode()
        self.events.put({"headers": headers, "body": body})
        return request_id

    def wait_post(self, request_id, timeout=DEFAULT_TIMEOUT):
        deadline = time.time() + timeout
        with self.cond:
            while request_id not in self.posts:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("no post for invocation %s" % request_id)
                self.cond.wait(left)
            return self.posts[request_id]

    def wait_init_error(self, timeout=DEFAULT_TIMEOUT):
        deadline = time.time() + timeout
        with self.cond:
            while not self.init_errors:
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("no init error posted")
                self.cond.wait(left)
            return self.init_errors[0]

    def invoke(self, event, **kwargs):
        """Queue one event, wait for the runtime's answer: (kind, decoded JSON body, headers)."""
        post = self.wait_post(self.enqueue(event, **kwargs))
        return post["kind"], json.loads(post["body"]), post["headers"]


class RuntimeProcess:
    """A runtime bootstrap running as a subprocess, its task root a temp dir of given files."""

    def __init__(self, argv, files, handler, api, env=None, prestart=False, task_root=None):
        self.dir = tempfile.mkdtemp(prefix="stratus-rt-")
        self.task_root = task_root or os.path.join(self.dir, "task")
        os.makedirs(self.task_root, exist_ok=True)
        for name, text in files.items():
            path = os.path.join(self.task_root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        base = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": api.address,
        }
        function_env = {
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/23/[$LATEST]0123456789abcdef",
            "AWS_REGION": "us-east-1",
        }
        # "{TASK_ROOT}" in a value stands for the temp task root
        function_env.update({k: v.replace("{TASK_ROOT}", self.task_root) for k, v in (env or {}).items()})
        if prestart:
            base["STRATUS_PRESTART"] = "1"
            api.init_env.update(function_env)
            cwd = "/"
        else:
            base.update(function_env)
            cwd = self.task_root
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(argv, env=base, cwd=cwd, stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        return self.proc.wait(timeout)

    def stdout(self):
        self._out.flush()
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for_output(self, needle, timeout=5.0, stream="stdout"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.stdout() if stream == "stdout" else self.stderr()
            if needle in text:
                return text
            time.sleep(0.02)
        raise AssertionError("%r not in %s: %r / stderr %r" % (needle, stream, self.stdout(), self.stderr()))

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()
        shutil.rmtree(self.dir, ignore_errors=True)
