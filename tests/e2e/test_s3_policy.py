"""S3 bucket policies with boto3 and unsigned HTTP: Put/Get/DeleteBucketPolicy, public read
for anonymous callers (and nothing more), access granted to an IAM user by the bucket
policy alone, explicit denies that beat identity policies (but never lock the account root
out of the policy itself), and S3's errors for malformed policies."""
import json
import urllib.error
import urllib.request

from harness import StratusTestCase


def public_read(bucket):
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
        "Action": "s3:GetObject", "Resource": "arn:aws:s3:::%s/*" % bucket}]})


class S3PolicyTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.server.client("s3")
        cls.iam = cls.server.client("iam")

    def anonymous(self, method, path, body=None):
        req = urllib.request.Request(self.server.endpoint + path, data=body, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def user(self, name, statements=None):
        self.iam.create_user(UserName=name)
        if statements:
            self.iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": statements}))
        k = self.iam.create_access_key(UserName=name)["AccessKey"]
        arn = self.iam.get_user(UserName=name)["User"]["Arn"]
        return self.server.client("s3", key=k["AccessKeyId"], secret=k["SecretAccessKey"]), arn

    def test_public_read_and_policy_crud(self):
        s3 = self.s3
        s3.create_bucket(Bucket="pub")
        s3.put_object(Bucket="pub", Key="index.html", Body=b"<h1>hi</h1>")
        self.assertEqual(self.anonymous("GET", "/pub/index.html")[0], 403)
        self.assertClientError(lambda: s3.get_bucket_policy(Bucket="pub"), "NoSuchBucketPolicy", 404)
        s3.put_bucket_policy(Bucket="pub", Policy=public_read("pub"))
        self.assertEqual(json.loads(s3.get_bucket_policy(Bucket="pub")["Policy"])["Statement"][0]["Sid"],
                         "PublicRead")
        self.assertEqual(self.anonymous("GET", "/pub/index.html"), (200, b"<h1>hi</h1>"))
        status, body = self.anonymous("PUT", "/pub/evil", b"x")
        self.assertEqual(status, 403)
        self.assertIn(b"<Code>AccessDenied</Code>", body)
        self.assertEqual(self.anonymous("GET", "/pub")[0], 403)  # listing is not public
        self.assertEqual(self.anonymous("DELETE", "/pub/index.html")[0], 403)
        status, body = self.anonymous("GET", "/no-such-bucket-here/x")
        self.assertEqual(status, 404)
        self.assertIn(b"NoSuchBucket", body)
        s3.delete_bucket_policy(Bucket="pub")
        self.assertEqual(self.anonymous("GET", "/pub/index.html")[0], 403)

    def test_policy_grants_and_denies_users(self):
        s3 = self.s3
        s3.create_bucket(Bucket="shared")
        s3.put_object(Bucket="shared", Key="doc", Body=b"doc")
        reader, reader_arn = self.user("reader")  # no identity policy at all
        admin, admin_arn = self.user("admin", [{"Effect": "Allow", "Action": "s3:*",
                                                "Resource": "*"}])
        self.assertClientError(lambda: reader.get_object(Bucket="shared", Key="doc"),
                               "AccessDenied", 403)
        s3.put_bucket_policy(Bucket="shared", Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": reader_arn}, "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::shared/*"},
                {"Effect": "Deny", "Principal": {"AWS": admin_arn}, "Action": "s3:DeleteObject",
                 "Resource": "arn:aws:s3:::shared/*"},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": "arn:aws:s3:::shared/*",
                 "Condition": {"StringEquals": {"s3:ExistingObjectTag/locked": "yes"}}}]}))
        self.assertEqual(reader.get_object(Bucket="shared", Key="doc")["Body"].read(), b"doc")
        self.assertClientError(lambda: reader.put_object(Bucket="shared", Key="x", Body=b"x"),
                               "AccessDenied", 403)
        admin.put_object(Bucket="shared", Key="y", Body=b"y")
        self.assertClientError(lambda: admin.delete_object(Bucket="shared", Key="y"),
                               "AccessDenied", 403)
        # The root may always manage the policy, even under a blanket deny.
        s3.put_bucket_policy(Bucket="shared", Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"]}]}))
        self.assertClientError(lambda: s3.get_object(Bucket="shared", Key="doc"), "AccessDenied", 403)
        s3.get_bucket_policy(Bucket="shared")
        s3.delete_bucket_policy(Bucket="shared")
        self.assertEqual(s3.get_object(Bucket="shared", Key="doc")["Body"].read(), b"doc")

    def test_malformed_policies(self):
        self.s3.create_bucket(Bucket="malformed")
        for policy in ("not json", "[1]", json.dumps({"Statement": [{"Effect": "Allow",
                                                                     "Action": "s3:GetObject",
                                                                     "Resource": "*"}]}),
                       json.dumps({"Version": "2012-10-17", "Statement": [{
                           "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                           "Resource": "arn:aws:s3:::other-bucket/*"}]}),
                       json.dumps({"Version": "2012-10-17", "Statement": [{
                           "Effect": "Allow", "Principal": "*", "Action": "iam:GetUser",
                           "Resource": "arn:aws:s3:::malformed/*"}]})):
            self.assertClientError(lambda: self.s3.put_bucket_policy(Bucket="malformed",
                                                                     Policy=policy),
                                   "MalformedPolicy", 400)
