"""Function URLs: the config API (boto3, AWS's shapes and errors), resource policies
(AddPermission / GetPolicy / RemovePermission), and real HTTP requests to
http://<id>.lambda-url.us-east-1.localhost:<port>/ with curl and http.client: payload 2.0
events, response mapping, AuthType NONE and AWS_IAM, CORS."""
import base64
import http.client
import json
import subprocess
import unittest
import urllib.parse

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

ECHO = '''
import base64, json
def handler(event, context):
    if event.get("rawPath") == "/custom":
        return {"statusCode": 201, "headers": {"X-Test": "yes", "Content-Type": "text/plain"},
                "cookies": ["a=1", "b=2"], "body": "created"}
    if event.get("rawPath") == "/binary":
        return {"statusCode": 200, "body": base64.b64encode(b"\\x00\\x01\\xff").decode(),
                "isBase64Encoded": True, "headers": {"Content-Type": "application/octet-stream"}}
    if event.get("rawPath") == "/string":
        return "just text"
    return event
'''


def knows_invoke_mode(client):
    """Debian's botocore (1.26) predates InvokeMode: it neither sends nor parses it."""
    shape = client.meta.service_model.operation_model("CreateFunctionUrlConfig").input_shape
    return "InvokeMode" in shape.members


class UrlConfigTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        role = create_function_role(cls.server, "url-role")
        cls.lam.create_function(FunctionName="cfg", Runtime="python3.11", Role=role,
                                Handler="app.handler", Code={"ZipFile": make_zip({"app.py": ECHO})})
        cls.lam.publish_version(FunctionName="cfg")
        cls.lam.create_alias(FunctionName="cfg", Name="live", FunctionVersion="1")

    def test_lifecycle(self):
        c = self.lam.create_function_url_config(FunctionName="cfg", AuthType="NONE")
        self.assertEqual(c["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(c["FunctionArn"], ARN + "cfg")
        self.assertRegex(c["FunctionUrl"],
                         r"^http://[a-z0-9]{32}\.lambda-url\.us-east-1\.localhost:%d/$" %
                         self.server.port)
        self.assertNotIn("InvokeMode", c)
        self.assertClientError(lambda: self.lam.create_function_url_config(FunctionName="cfg",
                                                                           AuthType="NONE"),
                               "ResourceConflictException", 409)
        got = self.lam.get_function_url_config(FunctionName="cfg")
        if knows_invoke_mode(self.lam):
            self.assertEqual(got["InvokeMode"], "BUFFERED")
        self.assertEqual(got["FunctionUrl"], c["FunctionUrl"])
        self.assertIn("LastModifiedTime", got)
        upd = self.lam.update_function_url_config(
            FunctionName="cfg", AuthType="AWS_IAM",
            Cors={"AllowOrigins": ["https://example.com"], "MaxAge": 60})
        self.assertEqual(upd["AuthType"], "AWS_IAM")
        self.assertEqual(upd["Cors"]["AllowOrigins"], ["https://example.com"])
        extra = {"InvokeMode": "BUFFERED"} if knows_invoke_mode(self.lam) else {}
        alias = self.lam.create_function_url_config(FunctionName="cfg", Qualifier="live",
                                                    AuthType="NONE", **extra)
        self.assertEqual(alias["FunctionArn"], ARN + "cfg:live")
        if extra:
            self.assertEqual(alias["InvokeMode"], "BUFFERED")
        listed = self.lam.list_function_url_configs(FunctionName="cfg")["FunctionUrlConfigs"]
        self.assertEqual(sorted(x["FunctionArn"] for x in listed), [ARN + "cfg", ARN + "cfg:live"])
        self.lam.delete_function_url_config(FunctionName="cfg", Qualifier="live")
        self.lam.delete_function_url_config(FunctionName="cfg")
        self.assertEqual(self.lam.list_function_url_configs(FunctionName="cfg")
                         ["FunctionUrlConfigs"], [])

    def test_errors(self):
        err = self.assertClientError(lambda: self.lam.create_function_url_config(
            FunctionName="nope", AuthType="NONE"), "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"], "Function does not exist")
        for q in ("1", "$LATEST"):
            err = self.assertClientError(lambda: self.lam.create_function_url_config(
                FunctionName="cfg", Qualifier=q, AuthType="NONE"), "ValidationException", 400)
            self.assertIn("at 'qualifier'", err["Error"]["Message"])
        err = self.assertClientError(lambda: self.lam.get_function_url_config(FunctionName="cfg"),
                                     "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"], "The resource you requested does not exist.")
        self.assertClientError(lambda: self.lam.create_function_url_config(
            FunctionName="cfg", Qualifier="missing", AuthType="NONE"),
            "ResourceNotFoundException", 404)
        lam = self.server.client("lambda", validate=False)
        if knows_invoke_mode(lam):
            err = self.assertClientError(lambda: lam.create_function_url_config(
                FunctionName="cfg", AuthType="NONE", InvokeMode="UNKNOWN"),
                "ValidationException", 400)
            self.assertIn("[RESPONSE_STREAM, BUFFERED]", err["Error"]["Message"])
        err = self.assertClientError(lambda: lam.create_function_url_config(
            FunctionName="cfg", AuthType="SOMETIMES"), "ValidationException", 400)
        self.assertIn("[NONE, AWS_IAM]", err["Error"]["Message"])

    def test_permissions(self):
        r = self.lam.add_permission(FunctionName="cfg", StatementId="s3", Action="lambda:InvokeFunction",
                                    Principal="s3.amazonaws.com",
                                    SourceArn="arn:aws:s3:::bucket")
        st = json.loads(r["Statement"])
        self.assertEqual(st["Principal"], {"Service": "s3.amazonaws.com"})
        self.assertEqual(st["Resource"], ARN + "cfg")
        self.assertEqual(st["Condition"]["ArnLike"]["AWS:SourceArn"], "arn:aws:s3:::bucket")
        self.assertClientError(lambda: self.lam.add_permission(
            FunctionName="cfg", StatementId="s3", Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com"), "ResourceConflictException", 409)
        pol = self.lam.get_policy(FunctionName="cfg")
        doc = json.loads(pol["Policy"])
        self.assertEqual([s["Sid"] for s in doc["Statement"]], ["s3"])
        self.assertTrue(pol["RevisionId"])
        self.lam.remove_permission(FunctionName="cfg", StatementId="s3")
        self.assertClientError(lambda: self.lam.get_policy(FunctionName="cfg"),
                               "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.remove_permission(FunctionName="cfg",
                                                                  StatementId="s3"),
                               "ResourceNotFoundException", 404)


@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class UrlInvokeTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        role = create_function_role(cls.server, "url-role")
        cls.lam.create_function(FunctionName="web", Runtime="python3.11", Role=role,
                                Handler="app.handler", Code={"ZipFile": make_zip({"app.py": ECHO})})
        url = cls.lam.create_function_url_config(
            FunctionName="web", AuthType="NONE",
            Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
                  "AllowHeaders": ["x-custom"], "MaxAge": 300})["FunctionUrl"]
        cls.url = url
        cls.host = urllib.parse.urlparse(url).netloc
        cls.url_id = cls.host.split(".")[0]

    def request(self, method, path, body=None, headers=None, host=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        h = {"Host": host or self.host}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body, r

    def test_none_needs_a_resource_policy_then_serves_anyone(self):
        status, headers, body, _ = self.request("GET", "/")
        self.assertEqual(status, 403)
        self.assertTrue(json.loads(body)["Message"].startswith("Forbidden."))
        self.assertEqual(headers["x-amzn-errortype"], "AccessDeniedException")
        self.lam.add_permission(FunctionName="web", StatementId="public",
                                Action="lambda:InvokeFunctionUrl", Principal="*",
                                FunctionUrlAuthType="NONE")
        # curl resolves *.localhost to the loopback address itself.
        out = subprocess.run(["curl", "-s", "-i", self.url + "echo/path?a=1&a=2&b=x%20y",
                              "-H", "Cookie: c1=v1; c2=v2", "-H", "X-Thing: one"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        head, _, payload = out.stdout.partition("\n\n")
        self.assertTrue(payload, out.stdout)
        self.assertIn("HTTP/1.1 200", head)
        event = json.loads(payload)
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["rawPath"], "/echo/path")
        self.assertEqual(event["rawQueryString"], "a=1&a=2&b=x%20y")
        self.assertEqual(event["queryStringParameters"], {"a": "1,2", "b": "x y"})
        self.assertEqual(event["cookies"], ["c1=v1", "c2=v2"])
        self.assertEqual(event["headers"]["x-thing"], "one")
        self.assertEqual(event["requestContext"]["http"]["method"], "GET")
        self.assertEqual(event["requestContext"]["apiId"], self.url_id)
        self.assertEqual(event["requestContext"]["domainPrefix"], self.url_id)
        self.assertEqual(event["requestContext"]["accountId"], "anonymous")
        self.assertFalse(event["isBase64Encoded"])

        # Response mapping.
        status, headers, body, r = self.request("GET", "/custom")
        self.assertEqual((status, body), (201, b"created"))
        self.assertEqual(headers["x-test"], "yes")
        self.assertEqual(headers["content-type"], "text/plain")
        self.assertEqual(r.msg.get_all("Set-Cookie"), ["a=1", "b=2"])
        status, headers, body, _ = self.request("GET", "/binary")
        self.assertEqual((status, body), (200, b"\x00\x01\xff"))
        status, headers, body, _ = self.request("GET", "/string")
        self.assertEqual((status, body, headers["content-type"]),
                         (200, b"just text", "application/json"))
        # A binary request body arrives base64-encoded; JSON as text.
        status, _, body, _ = self.request("POST", "/up", body=b"\x00\xfe",
                                          headers={"Content-Type": "application/octet-stream"})
        event = json.loads(body)
        self.assertTrue(event["isBase64Encoded"])
        self.assertEqual(base64.b64decode(event["body"]), b"\x00\xfe")
        status, _, body, _ = self.request("POST", "/up", body=b'{"k": 1}',
                                          headers={"Content-Type": "application/json"})
        self.assertEqual(json.loads(json.loads(body)["body"]), {"k": 1})
        # The path form, for clients that cannot set Host.
        status, _, body, _ = self.request("GET", "/_stratus/lambda-url/%s/via/path" % self.url_id,
                                          host="127.0.0.1:%d" % self.server.port)
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["rawPath"], "/via/path")
        # An unknown URL id.
        status, _, _, _ = self.request("GET", "/", host="x" * 32 + ".lambda-url.us-east-1.localhost")
        self.assertEqual(status, 403)

    def test_cors(self):
        status, headers, _, _ = self.request("OPTIONS", "/", headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], "https://app.example")
        self.assertEqual(headers["access-control-allow-methods"], "GET,POST")
        self.assertEqual(headers["access-control-allow-headers"], "x-custom")
        self.assertEqual(headers["access-control-max-age"], "300")
        status, headers, _, _ = self.request("OPTIONS", "/", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        self.assertNotIn("access-control-allow-origin", headers)

    def test_aws_iam_requires_a_signature(self):
        self.lam.create_function(FunctionName="private", Runtime="python3.11",
                                 Role=create_function_role(self.server, "private-role"),
                                 Handler="app.handler", Code={"ZipFile": make_zip({"app.py": ECHO})})
        url = self.lam.create_function_url_config(FunctionName="private",
                                                  AuthType="AWS_IAM")["FunctionUrl"]
        host = urllib.parse.urlparse(url).netloc
        status, _, _, _ = self.request("GET", "/x", host=host)
        self.assertEqual(status, 403)
        # Signed by the root keys, as an SDK signs for service "lambda".
        creds = botocore.credentials.Credentials(self.server.access_key, self.server.secret_key)
        req = botocore.awsrequest.AWSRequest(method="GET", url="http://%s/x" % host)
        botocore.auth.SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
        status, _, body, _ = self.request("GET", "/x", host=host, headers=dict(req.headers.items()))
        self.assertEqual(status, 200, body)
        ctx = json.loads(body)["requestContext"]
        self.assertEqual(ctx["authorizer"]["iam"]["accessKey"], self.server.access_key)
        self.assertEqual(ctx["accountId"], "000000000000")


if __name__ == "__main__":
    unittest.main()
