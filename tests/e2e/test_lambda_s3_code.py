"""Lambda deployment packages from S3: CreateFunction, UpdateFunctionCode and
PublishLayerVersion with S3Bucket/S3Key, read with the caller's own S3 permissions; Lambda's
errors for missing buckets and keys and for callers who may not read the object."""
import base64
import hashlib
import io
import json
import unittest
import zipfile

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, sandbox_capable


def make_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def sha(b):
    return base64.b64encode(hashlib.sha256(b).digest()).decode()


V1 = make_zip({"index.py": "def handler(event, context):\n    return {'v': 1}\n"})
V2 = make_zip({"index.py": "def handler(event, context):\n    return {'v': 2}\n"})


class LambdaS3CodeTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.server.client("s3")
        cls.lam = cls.server.client("lambda")
        cls.s3.create_bucket(Bucket="code")
        cls.s3.put_object(Bucket="code", Key="v1.zip", Body=V1)
        cls.s3.put_object(Bucket="code", Key="v2.zip", Body=V2)
        cls.role = create_function_role(cls.server, "s3-code-role")

    def test_create_update_and_layer_from_s3(self):
        out = self.lam.create_function(FunctionName="from-s3", Runtime="python3.11",
                                       Role=self.role, Handler="index.handler",
                                       Code={"S3Bucket": "code", "S3Key": "v1.zip"})
        self.assertEqual(out["CodeSha256"], sha(V1))
        self.assertEqual(out["CodeSize"], len(V1))
        out = self.lam.update_function_code(FunctionName="from-s3", S3Bucket="code",
                                            S3Key="v2.zip")
        self.assertEqual(out["CodeSha256"], sha(V2))
        layer = self.lam.publish_layer_version(LayerName="s3-layer", Content={
            "S3Bucket": "code", "S3Key": "v1.zip"})
        self.assertEqual(layer["Content"]["CodeSha256"], sha(V1))
        if sandbox_capable():
            self.lam.get_waiter("function_updated").wait(FunctionName="from-s3")
            got = self.lam.invoke(FunctionName="from-s3")
            self.assertEqual(json.loads(got["Payload"].read()), {"v": 2})

    def test_errors(self):
        def create(code):
            return lambda: self.lam.create_function(
                FunctionName="bad-s3", Runtime="python3.11", Role=self.role,
                Handler="index.handler", Code=code)
        err = self.assertClientError(create({"S3Bucket": "code", "S3Key": "nope.zip"}),
                                     "InvalidParameterValueException", 400)
        self.assertIn("S3 Error Code: NoSuchKey", err["Error"]["Message"])
        err = self.assertClientError(create({"S3Bucket": "no-such-bucket", "S3Key": "x.zip"}),
                                     "InvalidParameterValueException", 400)
        self.assertIn("S3 Error Code: NoSuchBucket", err["Error"]["Message"])
        self.assertClientError(create({"S3Bucket": "code", "S3Key": "v1.zip",
                                       "ZipFile": V1}), "InvalidParameterValueException", 400)
        # A user who may create functions but not read the bucket.
        iam = self.server.client("iam")
        iam.create_user(UserName="deployer")
        iam.put_user_policy(UserName="deployer", PolicyName="lambda", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["lambda:*", "iam:PassRole"], "Resource": "*"}]}))
        key = iam.create_access_key(UserName="deployer")["AccessKey"]
        lam = self.server.client("lambda", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        err = self.assertClientError(lambda: lam.create_function(
            FunctionName="denied-s3", Runtime="python3.11", Role=self.role,
            Handler="index.handler", Code={"S3Bucket": "code", "S3Key": "v1.zip"}),
            "InvalidParameterValueException", 400)
        self.assertIn("S3 Error Code: AccessDenied", err["Error"]["Message"])


if __name__ == "__main__":
    unittest.main()
