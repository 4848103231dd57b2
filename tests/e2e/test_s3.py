"""S3, first slice: buckets and single-request objects with boto3 and the aws CLI — put,
get (ranges, conditional), head, delete, metadata, ListObjectsV2 with prefixes, delimiters and
pagination, S3's XML errors, and objects surviving kill -9."""
import hashlib
import os
import tempfile
import unittest

import boto3
import botocore.config
from botocore.exceptions import ClientError

from harness import REGION, StratusTestCase


class S3Test(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.make_client()

    @classmethod
    def make_client(cls):
        # SigV4 throughout (Debian's botocore presigns S3 URLs with SigV2 unless told).
        kw = dict(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                  signature_version="s3v4")
        try:  # newer botocore sends aws-chunked CRC32 bodies by default; not served yet
            config = botocore.config.Config(request_checksum_calculation="when_required", **kw)
        except TypeError:
            config = botocore.config.Config(**kw)
        return boto3.client("s3", endpoint_url=cls.server.endpoint, region_name=REGION,
                            aws_access_key_id=cls.server.access_key,
                            aws_secret_access_key=cls.server.secret_key, config=config)

    def test_buckets(self):
        self.s3.create_bucket(Bucket="alpha")
        self.assertClientError(lambda: self.s3.create_bucket(Bucket="alpha"),
                               "BucketAlreadyOwnedByYou", 409)
        self.assertClientError(lambda: self.s3.create_bucket(Bucket="Bad_Name"),
                               "InvalidBucketName", 400)
        names = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertIn("alpha", names)
        self.s3.head_bucket(Bucket="alpha")
        self.assertIsNone(self.s3.get_bucket_location(Bucket="alpha")["LocationConstraint"])
        self.s3.put_object(Bucket="alpha", Key="k", Body=b"x")
        self.assertClientError(lambda: self.s3.delete_bucket(Bucket="alpha"), "BucketNotEmpty", 409)
        self.s3.delete_object(Bucket="alpha", Key="k")
        self.s3.delete_bucket(Bucket="alpha")
        err = self.assertClientError(lambda: self.s3.list_objects_v2(Bucket="alpha"),
                                     "NoSuchBucket", 404)
        self.assertEqual(err["Error"]["BucketName"], "alpha")

    def test_objects(self):
        self.s3.create_bucket(Bucket="objs")
        data = os.urandom(100000)
        put = self.s3.put_object(Bucket="objs", Key="dir/file.bin", Body=data,
                                 ContentType="application/x-test", Metadata={"Owner": "me"},
                                 CacheControl="max-age=60")
        self.assertEqual(put["ETag"], '"%s"' % hashlib.md5(data).hexdigest())
        got = self.s3.get_object(Bucket="objs", Key="dir/file.bin")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ContentType"], "application/x-test")
        self.assertEqual(got["Metadata"], {"owner": "me"})
        self.assertEqual(got["CacheControl"], "max-age=60")
        part = self.s3.get_object(Bucket="objs", Key="dir/file.bin", Range="bytes=10-19")
        self.assertEqual(part["Body"].read(), data[10:20])
        self.assertEqual(part["ContentRange"], "bytes 10-19/100000")
        tail = self.s3.get_object(Bucket="objs", Key="dir/file.bin", Range="bytes=-5")
        self.assertEqual(tail["Body"].read(), data[-5:])
        self.assertClientError(lambda: self.s3.get_object(Bucket="objs", Key="dir/file.bin",
                                                          Range="bytes=200000-"),
                               "InvalidRange", 416)
        head = self.s3.head_object(Bucket="objs", Key="dir/file.bin")
        self.assertEqual(head["ContentLength"], 100000)
        self.assertClientError(lambda: self.s3.get_object(Bucket="objs", Key="dir/file.bin",
                                                          IfMatch='"nope"'),
                               "PreconditionFailed", 412)
        err = self.assertClientError(lambda: self.s3.get_object(Bucket="objs", Key="missing"),
                                     "NoSuchKey", 404)
        self.assertEqual(err["Error"]["Key"], "missing")
        # Overwrite, then delete (deleting a missing key is fine).
        self.s3.put_object(Bucket="objs", Key="dir/file.bin", Body=b"new")
        self.assertEqual(self.s3.get_object(Bucket="objs", Key="dir/file.bin")["Body"].read(),
                         b"new")
        self.s3.delete_object(Bucket="objs", Key="dir/file.bin")
        self.s3.delete_object(Bucket="objs", Key="dir/file.bin")
        self.assertClientError(lambda: self.s3.head_object(Bucket="objs", Key="dir/file.bin"),
                               "404", 404)
        # Presigned GET.
        self.s3.put_object(Bucket="objs", Key="shared.txt", Body=b"hello")
        url = self.s3.generate_presigned_url("get_object",
                                             Params={"Bucket": "objs", "Key": "shared.txt"})
        import urllib.request
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.read(), b"hello")

    def test_listing(self):
        self.s3.create_bucket(Bucket="list")
        keys = ["a/1", "a/2", "a/b/3", "c", "d/4", "d/5"]
        for k in keys:
            self.s3.put_object(Bucket="list", Key=k, Body=k.encode())
        out = self.s3.list_objects_v2(Bucket="list")
        self.assertEqual([o["Key"] for o in out["Contents"]], sorted(keys))
        out = self.s3.list_objects_v2(Bucket="list", Delimiter="/")
        self.assertEqual([o["Key"] for o in out["Contents"]], ["c"])
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]], ["a/", "d/"])
        out = self.s3.list_objects_v2(Bucket="list", Prefix="a/", Delimiter="/")
        self.assertEqual([o["Key"] for o in out["Contents"]], ["a/1", "a/2"])
        self.assertEqual([p["Prefix"] for p in out["CommonPrefixes"]], ["a/b/"])
        seen = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(
            Bucket="list", PaginationConfig={"PageSize": 2})
        for page in pages:
            self.assertLessEqual(page["KeyCount"], 2)
            seen += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(seen, sorted(keys))
        v1 = self.s3.list_objects(Bucket="list", Prefix="d/")
        self.assertEqual([o["Key"] for o in v1["Contents"]], ["d/4", "d/5"])

    def test_cli_and_kill_9(self):
        self.s3.create_bucket(Bucket="cli")
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"from the cli\n" * 1000)
        try:
            self.server.aws("s3", "cp", f.name, "s3://cli/up.txt")
            _, out, _ = self.server.aws("s3", "ls", "s3://cli/")
            self.assertIn("up.txt", out)
        finally:
            os.unlink(f.name)
        self.server.restart(kill=True)
        type(self).s3 = self.make_client()
        body = self.s3.get_object(Bucket="cli", Key="up.txt")["Body"].read()
        self.assertEqual(body, b"from the cli\n" * 1000)


if __name__ == "__main__":
    unittest.main()
