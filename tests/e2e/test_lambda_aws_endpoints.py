"""Unmodified AWS code inside functions reaches Stratus at AWS's own host names: the sandbox
resolves *.amazonaws.com to 127.0.0.1, where Stratus serves HTTPS with a certificate from
its CA, which the sandbox trusts (AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, its trust store).
boto3 with no endpoint configured reads and writes S3 (virtual-host addressing) and calls
STS as the function's role; the role's policy still bounds it; other names do not resolve."""
import io
import json
import unittest
import zipfile

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, sandbox_capable

PY = '''
import json, os, socket, ssl, urllib.request
os.environ.pop("AWS_ENDPOINT_URL", None)   # as on AWS: no endpoint anywhere
import boto3
from botocore.exceptions import ClientError

def handler(event, context):
    out = {}
    s3 = boto3.client("s3")
    s3.put_object(Bucket="ep-bucket", Key="from-function", Body=b"hello over https")
    out["get"] = s3.get_object(Bucket="ep-bucket", Key="from-function")["Body"].read().decode()
    out["endpoint"] = s3.meta.endpoint_url
    out["arn"] = boto3.client("sts").get_caller_identity()["Arn"]
    try:
        s3.put_object(Bucket="ep-other", Key="x", Body=b"no")
        out["denied"] = None
    except ClientError as e:
        out["denied"] = e.response["Error"]["Code"]
    # The system trust store knows the CA too (plain urllib, no AWS_CA_BUNDLE involved).
    try:
        urllib.request.urlopen("https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/")
    except urllib.error.HTTPError as e:
        out["urllib_status"] = e.code
    try:
        socket.gethostbyname("example.com")
        out["example"] = "resolved"
    except OSError:
        out["example"] = "unresolved"
    return out
'''

NODE = '''
const https = require("https");
exports.handler = async () => new Promise((resolve, reject) => {
  https.get("https://sts.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15", (res) => {
    const authorized = res.socket.authorized;  // rejectUnauthorized is on: it must be true
    res.on("data", () => {});
    res.on("end", () => resolve({status: res.statusCode, authorized}));
  }).on("error", (e) => resolve({error: e.message}));
});
'''


def zip_of(name, text):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, text)
    return buf.getvalue()


@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class AwsEndpointsTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        s3 = cls.server.client("s3")
        s3.create_bucket(Bucket="ep-bucket")
        s3.create_bucket(Bucket="ep-other")
        cls.role = create_function_role(cls.server, "ep-role")
        cls.server.client("iam").put_role_policy(
            RoleName="ep-role", PolicyName="s3", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                    "Resource": "arn:aws:s3:::ep-bucket/*"}]}))

    def invoke(self, name):
        out = self.lam.invoke(FunctionName=name, LogType="Tail")
        payload = json.loads(out["Payload"].read())
        self.assertNotIn("FunctionError", out, payload)
        return payload

    def test_python_boto3_without_endpoint(self):
        self.lam.create_function(FunctionName="ep-py", Runtime="python3.11", Role=self.role,
                                 Handler="index.handler", Timeout=30,
                                 Code={"ZipFile": zip_of("index.py", PY)})
        self.lam.get_waiter("function_active").wait(FunctionName="ep-py")
        out = self.invoke("ep-py")
        self.assertEqual(out["get"], "hello over https")
        self.assertTrue(out["endpoint"].startswith("https://s3.amazonaws.com"), out["endpoint"])
        self.assertIn(":assumed-role/ep-role/", out["arn"])
        self.assertEqual(out["denied"], "AccessDenied")
        self.assertIn(out["urllib_status"], (400, 403))
        self.assertEqual(out["example"], "unresolved")
        got = self.server.client("s3").get_object(Bucket="ep-bucket", Key="from-function")
        self.assertEqual(got["Body"].read(), b"hello over https")

    def test_node_trusts_the_ca(self):
        self.lam.create_function(FunctionName="ep-node", Runtime="nodejs20.x", Role=self.role,
                                 Handler="index.handler", Timeout=30,
                                 Code={"ZipFile": zip_of("index.js", NODE)})
        self.lam.get_waiter("function_active").wait(FunctionName="ep-node")
        out = self.invoke("ep-node")
        self.assertNotIn("error", out)
        self.assertTrue(out["authorized"])
        self.assertIn(out["status"], (400, 403))


if __name__ == "__main__":
    unittest.main()
