"""SigV4 at the edge, with real clients where they allow it and a hand signer where they don't."""
import datetime
import time
import unittest
import urllib.request

from harness import StratusTestCase
from sigv4_client import signed_query_request, xml_code

GCI = "Action=GetCallerIdentity&Version=2011-06-15"


class AuthTest(StratusTestCase):
    def test_root_get_caller_identity_boto3(self):
        ident = self.server.client("sts").get_caller_identity()
        self.assertEqual(ident["Account"], "000000000000")
        self.assertEqual(ident["Arn"], "arn:aws:iam::000000000000:root")
        self.assertEqual(ident["UserId"], "000000000000")

    def test_root_get_caller_identity_cli(self):
        code, out, err = self.server.aws("sts", "get-caller-identity")
        self.assertEqual(out["Arn"], "arn:aws:iam::000000000000:root")

    def test_wrong_secret(self):
        sts = self.server.client("sts", secret="x" * 40)
        self.assertClientError(sts.get_caller_identity, "SignatureDoesNotMatch", 403)
        code, out, err = self.server.aws("sts", "get-caller-identity", secret="y" * 40, check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("SignatureDoesNotMatch", err)

    def test_wrong_secret_on_iam(self):
        iam = self.server.client("iam", secret="x" * 40)
        self.assertClientError(iam.list_users, "SignatureDoesNotMatch", 403)

    def test_unknown_access_key(self):
        sts = self.server.client("sts", key="AKIAUNKNOWNUNKNOWN00")
        resp = self.assertClientError(sts.get_caller_identity, "InvalidClientTokenId", 403)
        self.assertEqual(resp["Error"]["Message"], "The security token included in the request is invalid.")

    def test_hand_signed_request_matches(self):
        status, body = signed_query_request(self.server.endpoint, self.server.access_key,
                                            self.server.secret_key, GCI)
        self.assertEqual(status, 200, body)
        self.assertIn("<Arn>arn:aws:iam::000000000000:root</Arn>", body)

    def test_tampered_body(self):
        status, body = signed_query_request(self.server.endpoint, self.server.access_key,
                                            self.server.secret_key, GCI,
                                            tamper_body="Action=GetCallerIdentity&Version=2011-06-16")
        self.assertEqual(status, 403)
        self.assertEqual(xml_code(body), "SignatureDoesNotMatch")

    def test_clock_skew_past_and_future(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        for delta in (datetime.timedelta(minutes=-16), datetime.timedelta(minutes=16)):
            status, body = signed_query_request(self.server.endpoint, self.server.access_key,
                                                self.server.secret_key, GCI, when=now + delta)
            self.assertEqual(status, 403, body)
            self.assertEqual(xml_code(body), "SignatureDoesNotMatch")
            self.assertIn("Signature", body)
        # Within the 15-minute window is fine.
        status, body = signed_query_request(self.server.endpoint, self.server.access_key,
                                            self.server.secret_key, GCI,
                                            when=now - datetime.timedelta(minutes=10))
        self.assertEqual(status, 200, body)

    def test_presigned_url(self):
        sts = self.server.client("sts")
        url = sts.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")
        with urllib.request.urlopen(url) as r:
            self.assertEqual(r.status, 200)
            self.assertIn(b"arn:aws:iam::000000000000:root", r.read())
        short = sts.generate_presigned_url("get_caller_identity", ExpiresIn=1, HttpMethod="GET")
        time.sleep(2.1)
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(short)
        self.assertEqual(cm.exception.code, 403)

    def test_garbage_authorization_header(self):
        # (Control characters in a header value are malformed HTTP: the HTTP layer answers 400
        # before any protocol is known; see test_edge.)
        for value in ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=", "Basic Zm9vOmJhcg==",
                      "AWS4-HMAC-SHA256 Credential=AKIA/2026/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=zz",
                      "AWS4-HMAC-SHA256 " + "Credential=x, " * 2000):
            req = urllib.request.Request(self.server.endpoint + "/", data=GCI.encode(), method="POST",
                                         headers={"Content-Type": "application/x-www-form-urlencoded",
                                                  "Authorization": value})
            with self.assertRaises(urllib.error.HTTPError) as cm:
                urllib.request.urlopen(req)
            self.assertIn(cm.exception.code, (400, 403), value)
            self.assertIsNotNone(xml_code(cm.exception.read().decode()))
        self.assertEqual(self.server.client("sts").get_caller_identity()["Account"], "000000000000")


if __name__ == "__main__":
    unittest.main()
