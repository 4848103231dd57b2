"""End-to-end harness: starts a real `stratus server` on a free port with a temporary
data directory, and hands out boto3 clients and `aws` CLI runs pointed at it.

The server binary comes from $STRATUS_BIN (set by ctest). Each test class gets its own
server (StratusTestCase), stopped with SIGTERM at the end; a non-zero exit fails the class.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import boto3
import botocore.config

STRATUS_BIN = os.environ.get("STRATUS_BIN", "build/src/cli/stratus")
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_cli():
    # Prefer Debian's aws CLI (what `make test` installs), else whatever is on PATH.
    for p in ("/usr/bin/aws", shutil.which("aws")):
        if p and os.path.exists(p):
            return p
    raise RuntimeError("aws CLI not found")


class StratusServer:
    def __init__(self, extra_args=(), config_yaml=None):
        self.dir = tempfile.mkdtemp(prefix="stratus-e2e-")
        self.data_dir = os.path.join(self.dir, "data")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        args = [STRATUS_BIN, "server", "--data-dir", self.data_dir,
                "--listen", f"127.0.0.1:{self.port}", "--io-threads", "2", *extra_args]
        if config_yaml is not None:
            cfg = os.path.join(self.dir, "stratus.yaml")
            with open(cfg, "w") as f:
                f.write(config_yaml)
            args += ["--config", cfg]
        self.args = args
        self.log_path = os.path.join(self.dir, "server.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        self.access_key, self.secret_key = self._read_root_credentials()

    def restart(self, kill=False):
        """Stops the server (SIGTERM, or SIGKILL with kill=True) and starts it again on the
        same data directory and port. Returns the exit code of the stopped process."""
        if kill:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            code = self.proc.returncode
        else:
            code = self.stop()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_healthy()
        return code

    def _wait_healthy(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_stratus/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy:\n" + self.read_log())

    def _read_root_credentials(self):
        key = secret = None
        with open(os.path.join(self.data_dir, "credentials")) as f:
            for line in f:
                if "=" in line:
                    k, v = (x.strip() for x in line.split("=", 1))
                    if k == "aws_access_key_id":
                        key = v
                    elif k == "aws_secret_access_key":
                        secret = v
        return key, secret

    def read_log(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-8000:]

    def client(self, service, key=None, secret=None, token=None, region=REGION, validate=True):
        """A boto3 client for this server. validate=False turns off botocore's client-side
        parameter checks, to see what the server itself answers to out-of-range input."""
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=region,
            aws_access_key_id=key or self.access_key,
            aws_secret_access_key=secret or self.secret_key,
            aws_session_token=token,
            config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=validate))

    def cli_env(self, key=None, secret=None, token=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=key or self.access_key,
                   AWS_SECRET_ACCESS_KEY=secret or self.secret_key,
                   AWS_DEFAULT_REGION=REGION, AWS_PAGER="",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   HOME=self.dir)
        if token:
            env["AWS_SESSION_TOKEN"] = token
        return env

    def aws(self, *args, key=None, secret=None, token=None, check=True):
        """Runs the aws CLI against this server; returns (exit code, parsed JSON or text, stderr)."""
        p = subprocess.run([aws_cli(), "--endpoint-url", self.endpoint, "--output", "json", *args],
                           env=self.cli_env(key, secret, token), capture_output=True, text=True,
                           timeout=60)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        out = p.stdout
        try:
            out = json.loads(out) if out.strip() else {}
        except ValueError:
            pass
        return p.returncode, out, p.stderr

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("server did not stop on SIGTERM within %ss" % timeout)
        self.log.close()
        code = self.proc.returncode
        return code

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class StratusTestCase(unittest.TestCase):
    server_args = ()
    config_yaml = None

    @classmethod
    def setUpClass(cls):
        cls.server = StratusServer(cls.server_args, cls.config_yaml)

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = cls.server.read_log() if os.path.exists(cls.server.log_path) else ""
        cls.server.cleanup()
        if code != 0:
            raise AssertionError(f"server exited with {code} on SIGTERM:\n{log}")

    def assertClientError(self, fn, code, status=None):
        from botocore.exceptions import ClientError
        with self.assertRaises(ClientError) as cm:
            fn()
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], code, cm.exception.response)
        if status is not None:
            self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], status)
        return cm.exception.response
