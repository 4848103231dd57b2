"""Stratus Lambda runtime client for Python (AWS Lambda Runtime API 2018-06-01).

One self-contained, standard-library-only file. The server embeds it and bind-mounts it into the
sandbox; it runs as `/usr/bin/python3 /var/runtime/python/bootstrap.py`.

Wire behaviour (payload shapes, error types, log lines) follows AWS's awslambdaric so recorded AWS
responses match. Differences are listed in runtimes/README.md.

Performance notes: the Runtime API client is a tiny HTTP/1.1 client over one keep-alive socket
rather than http.client, whose import (email.*, ssl) costs ~30 ms of cold start here; a warm invoke
is two sendall() and two recv() calls. Nothing is imported per invoke.
"""

import json
import os
import socket
import sys
import time

_ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_TRACE_ENV = "_X_AMZN_TRACE_ID"
# AWS joins the lines of a logged error with "\r" so the whole error stays one log event, and
# indents with NO-BREAK SPACE (awslambdaric's ERROR_LOG_LINE_TERMINATE / ERROR_LOG_IDENT).
_ERROR_LOG_LINE_TERMINATE = "\r"
_ERROR_LOG_IDENT = "\u00a0"

_current_request_id = None  # read by the logging filter


class FaultException(Exception):
    """An error the runtime itself reports (errorType "Runtime.*"), never user code's."""

    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


# ---------------------------------------------------------------------------------------------
# Runtime API client: HTTP/1.1 over one persistent socket.


class _ConnectionLost(Exception):
    """The peer closed a reused connection before sending any byte of the response."""


class RuntimeApiClient:
    def __init__(self, address):
        self.connect_to(address)

    def connect_to(self, address):
        host, _, port = address.rpartition(":")
        if not host:  # "host" without a port
            host, port = address, "80"
        self._addr = (host.strip("[]"), int(port))
        self._host_line = ("Host: %s\r\n" % address).encode("latin-1")
        self._sock = None
        self._buf = bytearray()
        self._rbuf = bytearray(65536)
        self._rview = memoryview(self._rbuf)

    def close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        self._sock = None
        self._buf = bytearray()

    def request(self, method, path, body=b"", extra_headers=""):
        """Returns (status, headers with lower-case names, body bytes). Raises OSError."""
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        if method == "POST":
            extra_headers += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        message = head.encode("latin-1") + self._host_line + extra_headers.encode("latin-1") + b"\r\n"
        if body:
            message += body
        # A keep-alive connection the server has since closed fails on first use; retry exactly once
        # on a fresh connection, and only when nothing of a response was received.
        while True:
            fresh = self._sock is None
            if fresh:
                sock = socket.create_connection(self._addr)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sock = sock
                self._buf = bytearray()
            try:
                self._sock.sendall(message)
                return self._read_response()
            except (_ConnectionLost, ConnectionResetError, BrokenPipeError):
                self.close()
                if fresh:
                    raise ConnectionError("Runtime API closed the connection: %s %s" % (method, path))
            except BaseException:
                self.close()
                raise

    def _recv_more(self, buf, partial_ok):
        # recv_into a reused buffer: recv(n) would allocate n bytes per call, and large allocations
        # cost mmap/mremap/munmap syscalls on every invoke.
        n = self._sock.recv_into(self._rbuf)
        if not n:
            if not buf and not partial_ok:
                raise _ConnectionLost()
            raise ConnectionError("Runtime API closed the connection mid-response")
        buf += self._rview[:n]

    def _read_response(self):
        buf = self._buf
        scan_from = 0
        while True:
            end = buf.find(b"\r\n\r\n", scan_from)
            if end >= 0:
                break
            scan_from = max(0, len(buf) - 3)
            self._recv_more(buf, False)
        lines = buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        del buf[: end + 4]

        keep_alive = headers.get("connection", "").lower() != "close"
        length = headers.get("content-length")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(buf)
        elif length is not None:
            n = int(length)
            while len(buf) < n:
                self._recv_more(buf, True)
            body = bytes(buf[:n])
            del buf[:n]
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # delimited by close
            while True:
                n = self._sock.recv_into(self._rbuf)
                if not n:
                    break
                buf += self._rview[:n]
            body = bytes(buf)
            keep_alive = False
        if keep_alive:
            self._buf = buf
        else:
            self.close()
        return status, headers, body

    def _read_chunked(self, buf):
        body = bytearray()
        while True:
            while True:
                eol = buf.find(b"\r\n")
                if eol >= 0:
                    break
                self._recv_more(buf, True)
            size = int(bytes(buf[:eol]).split(b";", 1)[0], 16)
            del buf[: eol + 2]
            if size == 0:  # trailers end with an empty line
                while True:
                    eol = buf.find(b"\r\n")
                    if eol < 0:
                        self._recv_more(buf, True)
                        continue
                    line_empty = eol == 0
                    del buf[: eol + 2]
                    if line_empty:
                        return bytes(body)
            while len(buf) < size + 2:
                self._recv_more(buf, True)
            body += buf[:size]
            del buf[: size + 2]

    # -- Runtime API calls --------------------------------------------------------------------

    def stratus_init(self):
        return self.request("GET", "/_stratus/v1/init")

    def next_invocation(self):
        status, headers, body = self.request("GET", "/2018-06-01/runtime/invocation/next")
        if status != 200:
            raise ConnectionError("GET /runtime/invocation/next returned HTTP %d: %r" % (status, body[:200]))
        return headers, body

    def post_invocation_result(self, request_id, payload):
        self._post_checked("/2018-06-01/runtime/invocation/%s/response" % request_id, payload, "")

    def post_invocation_error(self, request_id, error_json):
        self._post_checked(
            "/2018-06-01/runtime/invocation/%s/error" % request_id,
            error_json,
            "%s: Unhandled\r\n" % _ERROR_TYPE_HEADER,
        )

    def post_init_error(self, error_result):
        self._post_checked(
            "/2018-06-01/runtime/init/error",
            to_json(error_result).encode("utf-8"),
            "%s: %s\r\n" % (_ERROR_TYPE_HEADER, error_result["errorType"]),
        )

    def _post_checked(self, path, body, extra_headers):
        status, _, reply = self.request("POST", path, body, extra_headers)
        if not 200 <= status < 300:
            # The server already decided this invocation's outcome (e.g. it timed out or the payload
            # is too large); keep serving the next one.
            sys.stderr.write("stratus runtime: POST %s returned HTTP %d: %r\n" % (path, status, reply[:200]))


# ---------------------------------------------------------------------------------------------
# JSON, errors and logs shaped as AWS's runtime shapes them.


def _json_default(obj):
    # Decimal (e.g. from DynamoDB) encodes as a number, as awslambdaric does; no eager import.
    if type(obj).__name__ == "Decimal" and hasattr(obj, "is_nan"):
        if obj.is_nan():
            return float("nan")
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % obj.__class__.__name__)


to_json = json.JSONEncoder(default=_json_default).encode


def make_error(error_message, error_type, stack_trace, invoke_id=None):
    return {
        "errorMessage": error_message if error_message else "",
        "errorType": error_type if error_type else "",
        "requestId": invoke_id if invoke_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def build_fault_result(exc_info, invoke_id=None):
    import traceback  # already loaded by a prestarted runtime; once otherwise

    etype, value, tb = exc_info
    tb_tuples = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i in range(len(tb_tuples)):  # drop this file's frames above the user's code
        if "/bootstrap.py" not in tb_tuples[i][0]:
            tb_tuples = tb_tuples[i:]
            break
    return make_error(str(value), etype.__name__, traceback.format_list(tb_tuples), invoke_id)


def _replace_line_indentation(line, indent_char, new_indent_char):
    count = len(line) - len(line.lstrip(indent_char))
    return new_indent_char * count + line[count:]


def log_error(error_result):
    description = "[ERROR]"
    error_type = error_result.get("errorType")
    if error_type:
        description += " " + error_type
    message = error_result.get("errorMessage")
    if message:
        if error_type:
            description += ":"
        description += " " + message
    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
            else:
                for trace_line in element.splitlines():
                    lines.append(_replace_line_indentation(trace_line, " ", _ERROR_LOG_IDENT))
    # Same stream as print() so the error lands after the handler's own output, as on AWS.
    try:
        sys.stdout.write(_ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")
    except Exception:
        pass  # the handler broke sys.stdout; the error still goes to the Runtime API
    _flush_output()


def _flush_output():
    """The handler's unterminated lines reach the log before its result (no syscall if none)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------
# The context object handed to handlers (awslambdaric's LambdaContext).


class CognitoIdentity:
    __slots__ = ["cognito_identity_id", "cognito_identity_pool_id"]

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ["installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name"]


class ClientContext:
    __slots__ = ["custom", "env", "client"]


def _obj_from_dict(cls, d):
    if d is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, d.get(field) if isinstance(d, dict) else None)
    return obj


class LambdaContext:
    # Read once per process: the environment of a function does not change between invokes.
    _static = None

    def __init__(self, invoke_id, client_context, cognito_identity, deadline_ms, invoked_function_arn, tenant_id):
        static = LambdaContext._static
        self.aws_request_id = invoke_id
        self.log_group_name = static[0]
        self.log_stream_name = static[1]
        self.function_name = static[2]
        self.memory_limit_in_mb = static[3]
        self.function_version = static[4]
        self.invoked_function_arn = invoked_function_arn
        self.tenant_id = tenant_id
        self.client_context = _obj_from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _obj_from_dict(Client, self.client_context.client)
        identity = CognitoIdentity()
        identity.cognito_identity_id = None
        identity.cognito_identity_pool_id = None
        if isinstance(cognito_identity, dict):
            identity.cognito_identity_id = cognito_identity.get("cognitoIdentityId")
            identity.cognito_identity_pool_id = cognito_identity.get("cognitoIdentityPoolId")
        self.identity = identity
        self._epoch_deadline_time_in_ms = deadline_ms

    @classmethod
    def load_environment(cls):
        env = os.environ
        cls._static = (
            env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_NAME"),
            env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            env.get("AWS_LAMBDA_FUNCTION_VERSION"),
        )

    def get_remaining_time_in_millis(self):
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s,tenant_id=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
                self.tenant_id,
            )
        )


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR, "Unable to parse %s JSON: %s" % (name, e)
        )


# ---------------------------------------------------------------------------------------------
# Lazy hooks on modules the user's code may import: nothing is imported eagerly.


class _PostImportHooks:
    """A sys.meta_path finder that runs hook(module) right after `name` is first executed."""

    def __init__(self):
        self.hooks = {}

    def add(self, name, hook):
        module = sys.modules.get(name)
        if module is not None:
            hook(module)
            return
        self.hooks[name] = hook
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(self, name, path=None, target=None):
        hook = self.hooks.pop(name, None)
        if hook is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _HookedLoader(spec.loader, hook, name)
        return spec


class _HookedLoader:
    """Delegates to the real loader, which it puts back in place before the module runs."""

    def __init__(self, loader, hook, name):
        self._loader = loader
        self._hook = hook
        self._name = name

    def __getattr__(self, attr):
        return getattr(self._loader, attr)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        try:
            self._hook(module)
        except Exception as e:  # a hook must never break the user's import
            sys.stderr.write("stratus runtime: import hook for %s failed: %r\n" % (self._name, e))


def _patch_botocore_session(module):
    """Clients default to $AWS_ENDPOINT_URL, which botocore < 1.31 (Debian 12's) ignores."""
    session_class = module.Session
    original = session_class.create_client
    if getattr(original, "_stratus_endpoint", False):
        return

    def create_client(self, *args, **kwargs):
        # endpoint_url is create_client's 6th parameter after self (service_name, region_name,
        # api_version, use_ssl, verify, endpoint_url, ...); respect it when passed positionally.
        if kwargs.get("endpoint_url") is None and len(args) < 6:
            endpoint = os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                kwargs["endpoint_url"] = endpoint
        return original(self, *args, **kwargs)

    create_client._stratus_endpoint = True
    create_client.__doc__ = original.__doc__
    session_class.create_client = create_client


def _setup_logging(logging):
    """The root logger writes AWS's text format to stdout, as the AWS runtime sets it up."""

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                sys.stdout.write(self.format(record))
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id or ""
            return True

    logging.Formatter.converter = time.gmtime
    handler = LambdaLoggerHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(LambdaLoggerFilter())
    logger = logging.getLogger()
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging._nameToLevel:
        logger.setLevel(level)
    logger.addHandler(handler)


_hooks = _PostImportHooks()


# ---------------------------------------------------------------------------------------------
# Start-up.


def _prestart(client):
    """Stratus zygote: wait for the server to assign a function, then adopt its environment."""
    import importlib  # noqa: F401  (what loading a handler and reporting errors will need)
    import importlib.util  # noqa: F401
    import traceback  # noqa: F401

    # Warm what the first invocation would otherwise pay for: the first compile() in a
    # process faults in the parser and compiler (~1 ms here; handlers are compiled from
    # source since /var/task is read-only and has no .pyc), and the JSON codecs.
    compile("def _warm(event, context):\n    return {'k': [event, context]}\n", "<warm>", "exec")
    json.loads(json.dumps({"warm": [1, 2.5, "x", None, True]}))

    try:
        status, _, body = client.stratus_init()
    except OSError as e:
        sys.stderr.write("stratus runtime: GET /_stratus/v1/init failed: %s\n" % e)
        sys.exit(1)
    if status != 200:
        sys.stderr.write("stratus runtime: GET /_stratus/v1/init returned HTTP %d\n" % status)
        sys.exit(1)
    try:
        env = json.loads(body)["env"]
        items = [(str(k), str(v)) for k, v in env.items()]
    except Exception as e:
        sys.stderr.write("stratus runtime: bad /_stratus/v1/init body: %s\n" % e)
        sys.exit(1)
    del os.environ["STRATUS_PRESTART"]  # the function's processes are not zygotes
    old_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    old_tz = os.environ.get("TZ")
    for name, value in items:
        os.environ[name] = value
    if os.environ.get("TZ") != old_tz:
        time.tzset()
    new_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if new_api and new_api != old_api:
        client.close()
        client.connect_to(new_api)
    # The interpreter read PYTHONPATH before the function's environment existed.
    for entry in reversed([p for p in os.environ.get("PYTHONPATH", "").split(":") if p]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def _setup_process(task_root):
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, write_through=True)
    try:
        os.chdir(task_root)
    except OSError:
        pass
    # sys.path: the task root, then layers, then whatever else; never this file's directory.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    version = "python%d.%d" % sys.version_info[:2]
    front = [task_root, "/opt/python/lib/%s/site-packages" % version, "/opt/python"]
    sys.path[:] = front + [p for p in sys.path if p not in front]

    _hooks.add("logging", _setup_logging)
    if os.environ.get("AWS_ENDPOINT_URL"):
        _hooks.add("botocore.session", _patch_botocore_session)


def _get_handler(handler):
    import importlib

    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(FaultException.MALFORMED_HANDLER_NAME, "Bad handler '%s': %s" % (handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module %s as a handler module" % modname,
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(FaultException.IMPORT_MODULE_ERROR, "Unable to import module '%s': %s" % (modname, e))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR, "Syntax error in module '%s': %s" % (modname, e), trace
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND, "Handler '%s' missing on module '%s'" % (fname, modname)
        )


# ---------------------------------------------------------------------------------------------
# The loop.


def _handle_invocation(client, request_handler, headers, body):
    global _current_request_id
    invoke_id = headers.get("lambda-runtime-aws-request-id", "")
    _current_request_id = invoke_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id is not None:
        os.environ[_TRACE_ENV] = trace_id
    elif _TRACE_ENV in os.environ:
        del os.environ[_TRACE_ENV]

    error_result = None
    try:
        client_context = headers.get("lambda-runtime-client-context")
        cognito_identity = headers.get("lambda-runtime-cognito-identity")
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context, "Client Context") if client_context else None,
            _parse_json_header(cognito_identity, "Cognito Identity") if cognito_identity else None,
            int(headers.get("lambda-runtime-deadline-ms") or 0),
            headers.get("lambda-runtime-invoked-function-arn"),
            headers.get("lambda-runtime-aws-tenant-id"),
        )
        content_type = headers.get("content-type")
        if content_type is None or content_type.startswith("application/json"):
            try:
                event = json.loads(body)
            except Exception as e:
                raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: %s" % e)
        else:
            event = body
        response = request_handler(event, context)
        if isinstance(response, bytes):
            payload = response
        else:
            try:
                payload = to_json(response).encode("utf-8")
            except Exception as e:
                raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: %s" % e)
    except FaultException as e:
        error_result = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        error_result = build_fault_result(sys.exc_info(), invoke_id)

    if error_result is not None:
        log_error(error_result)
        client.post_invocation_error(invoke_id, to_json(error_result).encode("utf-8"))
    else:
        _flush_output()
        client.post_invocation_result(invoke_id, payload)


def main():
    api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api:
        sys.stderr.write("stratus runtime: AWS_LAMBDA_RUNTIME_API is not set\n")
        sys.exit(1)
    client = RuntimeApiClient(api)
    if os.environ.get("STRATUS_PRESTART") == "1":
        _prestart(client)

    task_root = os.environ.get("LAMBDA_TASK_ROOT", "/var/task")
    _setup_process(task_root)
    LambdaContext.load_environment()

    try:
        request_handler = _get_handler(os.environ.get("_HANDLER", ""))
    except Exception as e:
        if isinstance(e, FaultException):
            error_result = make_error(e.msg, e.exception_type, e.trace)
        else:
            error_result = build_fault_result(sys.exc_info())
        log_error(error_result)
        client.post_init_error(error_result)
        sys.exit(1)

    try:
        while True:
            headers, body = client.next_invocation()
            _handle_invocation(client, request_handler, headers, body)
    except OSError as e:
        sys.stderr.write("stratus runtime: Runtime API failure: %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
