"""The edge: health, metrics, protocol-shaped errors for unknown things, hostile HTTP."""
import socket
import time
import unittest
import urllib.request

from botocore.exceptions import ClientError

from harness import StratusServer, StratusTestCase


def raw_request(port, data, read=True):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


class EdgeTest(StratusTestCase):
    def test_health(self):
        with urllib.request.urlopen(self.server.endpoint + "/_stratus/health") as r:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.read(), b'{"status":"ok"}')

    def test_metrics_count_requests(self):
        self.server.client("sts").get_caller_identity()
        with urllib.request.urlopen(self.server.endpoint + "/metrics") as r:
            text = r.read().decode()
        self.assertIn('stratus_requests_total{service="sts",operation="GetCallerIdentity",status="200"}', text)
        self.assertIn("stratus_request_duration_seconds_bucket", text)
        self.assertIn("stratus_requests_in_flight", text)
        self.assertIn("stratus_store_operations_total", text)

    def test_unknown_query_action(self):
        # Signed correctly, for an action that does not exist.
        self.assertClientError(lambda: _call_unknown_query(self.server), "InvalidAction", 400)

    def test_unknown_json_service(self):
        # A JSON 1.1 service Stratus does not implement (Logs used to be the example).
        ssm = self.server.client("ssm")
        with self.assertRaises(ClientError) as cm:
            ssm.describe_parameters()
        err = cm.exception.response["Error"]
        self.assertEqual(err["Code"], "UnknownOperationException")
        self.assertEqual(cm.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertTrue(cm.exception.response["ResponseMetadata"]["RequestId"])

    def test_malformed_http_gets_400(self):
        out = raw_request(self.server.port, b"NOT HTTP AT ALL\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400"), out)

    def test_huge_header_gets_431(self):
        out = raw_request(self.server.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 200000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431"), out[:100])

    def test_huge_body_gets_413(self):
        out = raw_request(self.server.port,
                          b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out[:100])

    def test_unsigned_request_is_refused(self):
        req = urllib.request.Request(self.server.endpoint + "/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req)
        self.assertEqual(cm.exception.code, 403)
        body = cm.exception.read().decode()
        self.assertIn("<Code>MissingAuthenticationToken</Code>", body)
        self.assertTrue(cm.exception.headers.get("x-amzn-RequestId"))

    def test_server_survives_garbage(self):
        import random
        rng = random.Random(7)
        for i in range(100):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
            try:
                raw_request(self.server.port, junk + b"\r\n\r\n")
            except OSError:
                pass
        self.assertEqual(self.server.client("sts").get_caller_identity()["Account"], "000000000000")


def _call_unknown_query(server):
    # botocore will not send an action its model lacks; sign one by hand.
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    creds = botocore.credentials.Credentials(server.access_key, server.secret_key)
    req = botocore.awsrequest.AWSRequest(
        method="POST", url=server.endpoint + "/",
        data="Action=NoSuchAction&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(creds, "iam", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=req.body.encode() if isinstance(req.body, str) else req.body,
                               headers=dict(req.headers.items()), method="POST")
    try:
        urllib.request.urlopen(r)
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        raise ClientError({"Error": {"Code": _xml_code(body)},
                           "ResponseMetadata": {"HTTPStatusCode": e.code}}, "NoSuchAction")


def _xml_code(body):
    start = body.find("<Code>") + 6
    return body[start:body.find("</Code>")]


class ShutdownTest(unittest.TestCase):
    def test_sigterm_drains_and_exits_zero(self):
        server = StratusServer()
        try:
            sts = server.client("sts")
            sts.get_caller_identity()
            # An idle keep-alive connection must not hold the shutdown up.
            idle = socket.create_connection(("127.0.0.1", server.port))
            start = time.time()
            code = server.stop(timeout=20)
            self.assertEqual(code, 0, server.read_log())
            self.assertLess(time.time() - start, 15)
            idle.close()
            self.assertIn("stopped", server.read_log())
        finally:
            server.cleanup()

    def test_restart_keeps_credentials_and_state(self):
        server = StratusServer()
        try:
            server.client("iam").create_user(UserName="persisted")
            key = server.access_key
            self.assertEqual(server.restart(), 0, server.read_log())
            self.assertEqual(server._read_root_credentials()[0], key)
            users = [u["UserName"] for u in server.client("iam").list_users()["Users"]]
            self.assertIn("persisted", users)
            self.assertEqual(server.stop(), 0)
        finally:
            server.cleanup()

    def test_kill9_loses_no_acknowledged_write(self):
        server = StratusServer()
        try:
            iam = server.client("iam")
            for i in range(20):
                iam.create_user(UserName=f"u{i}")
            key = iam.create_access_key(UserName="u0")["AccessKey"]
            server.restart(kill=True)  # SIGKILL right after the last acknowledged write
            users = {u["UserName"] for u in server.client("iam").list_users()["Users"]}
            self.assertEqual(users, {f"u{i}" for i in range(20)})
            ident = server.client("sts", key=key["AccessKeyId"], secret=key["SecretAccessKey"]).get_caller_identity()
            self.assertEqual(ident["Arn"], "arn:aws:iam::000000000000:user/u0")
            self.assertEqual(server.stop(), 0)
        finally:
            server.cleanup()


if __name__ == "__main__":
    unittest.main()
