"""S3, second slice: multipart uploads (boto3 low level and `aws s3 cp`/`sync` of a 100 MB
file), CopyObject and UploadPartCopy, DeleteObjects, x-amz-checksum-* and aws-chunked bodies
(signed chunks, signed and unsigned trailers) — with S3's error codes for bad sequences,
wrong checksums and bad chunk signatures."""
import base64
import datetime
import filecmp
import hashlib
import hmac
import os
import tempfile
import unittest
import urllib.request
import zlib

import boto3
import botocore.config
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from harness import REGION, StratusTestCase

MiB = 1 << 20


class S3MultipartTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        kw = dict(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                  signature_version="s3v4")
        cls.s3 = boto3.client("s3", endpoint_url=cls.server.endpoint, region_name=REGION,
                              aws_access_key_id=cls.server.access_key,
                              aws_secret_access_key=cls.server.secret_key,
                              config=botocore.config.Config(**kw))

    def test_multipart_low_level(self):
        s3 = self.s3
        s3.create_bucket(Bucket="mpu")
        up = s3.create_multipart_upload(Bucket="mpu", Key="big.bin", ContentType="app/x",
                                        Metadata={"k": "v"})
        uid = up["UploadId"]
        p1, p2 = os.urandom(5 * MiB), os.urandom(1234)
        e1 = s3.upload_part(Bucket="mpu", Key="big.bin", UploadId=uid, PartNumber=1, Body=p1)["ETag"]
        e2 = s3.upload_part(Bucket="mpu", Key="big.bin", UploadId=uid, PartNumber=2, Body=p2)["ETag"]
        self.assertEqual(e1, '"%s"' % hashlib.md5(p1).hexdigest())
        parts = s3.list_parts(Bucket="mpu", Key="big.bin", UploadId=uid)["Parts"]
        self.assertEqual([(p["PartNumber"], p["Size"]) for p in parts], [(1, 5 * MiB), (2, 1234)])
        uploads = s3.list_multipart_uploads(Bucket="mpu")["Uploads"]
        self.assertEqual([(u["Key"], u["UploadId"]) for u in uploads], [("big.bin", uid)])
        self.assertClientError(lambda: s3.complete_multipart_upload(
            Bucket="mpu", Key="big.bin", UploadId=uid, MultipartUpload={"Parts": [
                {"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]}),
            "InvalidPartOrder", 400)
        self.assertClientError(lambda: s3.complete_multipart_upload(
            Bucket="mpu", Key="big.bin", UploadId=uid, MultipartUpload={"Parts": [
                {"PartNumber": 1, "ETag": '"0000"'}]}), "InvalidPart", 400)
        self.assertClientError(lambda: s3.complete_multipart_upload(
            Bucket="mpu", Key="big.bin", UploadId=uid, MultipartUpload={"Parts": [
                {"PartNumber": 2, "ETag": e2}, {"PartNumber": 3, "ETag": e2}]}), "InvalidPart", 400)
        # Nothing is visible before completion.
        self.assertClientError(lambda: s3.head_object(Bucket="mpu", Key="big.bin"), "404", 404)
        done = s3.complete_multipart_upload(
            Bucket="mpu", Key="big.bin", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        md5s = hashlib.md5(p1).digest() + hashlib.md5(p2).digest()
        self.assertEqual(done["ETag"], '"%s-2"' % hashlib.md5(md5s).hexdigest())
        got = s3.get_object(Bucket="mpu", Key="big.bin")
        self.assertEqual(got["Body"].read(), p1 + p2)
        self.assertEqual(got["ContentType"], "app/x")
        self.assertEqual(got["Metadata"], {"k": "v"})
        rng = s3.get_object(Bucket="mpu", Key="big.bin", Range="bytes=%d-%d" % (5 * MiB - 2, 5 * MiB + 1))
        self.assertEqual(rng["Body"].read(), (p1 + p2)[5 * MiB - 2:5 * MiB + 2])
        self.assertClientError(lambda: s3.list_parts(Bucket="mpu", Key="big.bin", UploadId=uid),
                               "NoSuchUpload", 404)
        # Too small a part; aborting.
        uid2 = s3.create_multipart_upload(Bucket="mpu", Key="small")["UploadId"]
        a = s3.upload_part(Bucket="mpu", Key="small", UploadId=uid2, PartNumber=1, Body=b"a")["ETag"]
        b = s3.upload_part(Bucket="mpu", Key="small", UploadId=uid2, PartNumber=2, Body=b"b")["ETag"]
        self.assertClientError(lambda: s3.complete_multipart_upload(
            Bucket="mpu", Key="small", UploadId=uid2, MultipartUpload={"Parts": [
                {"PartNumber": 1, "ETag": a}, {"PartNumber": 2, "ETag": b}]}), "EntityTooSmall", 400)
        s3.abort_multipart_upload(Bucket="mpu", Key="small", UploadId=uid2)
        self.assertClientError(lambda: s3.upload_part(Bucket="mpu", Key="small", UploadId=uid2,
                                                      PartNumber=3, Body=b"c"), "NoSuchUpload", 404)
        self.assertClientError(lambda: s3.abort_multipart_upload(
            Bucket="mpu", Key="small", UploadId="nope"), "NoSuchUpload", 404)
        self.assertEqual(s3.list_multipart_uploads(Bucket="mpu").get("Uploads", []), [])
        # Malformed completion documents.
        uid3 = s3.create_multipart_upload(Bucket="mpu", Key="m")["UploadId"]
        status, body = self.raw("POST", "/mpu/m?uploadId=" + uid3, b"<CompleteMultipartUpload><Part>")
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>MalformedXML</Code>", body)

    def test_cli_cp_and_sync_100mb(self):
        self.server.aws("s3", "mb", "s3://cli-big")
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "up")
            os.mkdir(src)
            with open(os.path.join(src, "big.bin"), "wb") as f:
                for _ in range(100):
                    f.write(os.urandom(MiB))
            with open(os.path.join(src, "small.txt"), "w") as f:
                f.write("hello")
            self.server.aws("s3", "cp", os.path.join(src, "big.bin"), "s3://cli-big/big.bin")
            head = self.s3.head_object(Bucket="cli-big", Key="big.bin")
            self.assertEqual(head["ContentLength"], 100 * MiB)
            self.assertTrue(head["ETag"].endswith('-13"'), head["ETag"])  # 8 MiB parts
            down = os.path.join(d, "down.bin")
            self.server.aws("s3", "cp", "s3://cli-big/big.bin", down)
            self.assertTrue(filecmp.cmp(os.path.join(src, "big.bin"), down, shallow=False))
            # Server-side copy of a large object: UploadPartCopy.
            self.server.aws("s3", "cp", "s3://cli-big/big.bin", "s3://cli-big/copy.bin")
            self.assertEqual(self.s3.head_object(Bucket="cli-big", Key="copy.bin")["ContentLength"],
                             100 * MiB)
            self.server.aws("s3", "sync", src, "s3://cli-big/synced/")
            keys = sorted(o["Key"] for o in self.s3.list_objects_v2(
                Bucket="cli-big", Prefix="synced/")["Contents"])
            self.assertEqual(keys, ["synced/big.bin", "synced/small.txt"])
            # A second sync has nothing to do.
            _, out, _ = self.server.aws("s3", "sync", src, "s3://cli-big/synced/")
            self.assertEqual(out, {})
            self.server.aws("s3", "rm", "--recursive", "s3://cli-big/")
            self.server.aws("s3", "rb", "s3://cli-big")

    def test_copy_and_delete_objects(self):
        s3 = self.s3
        s3.create_bucket(Bucket="cpy")
        s3.put_object(Bucket="cpy", Key="src", Body=b"data", Metadata={"a": "1"},
                      ContentType="text/x")
        out = s3.copy_object(Bucket="cpy", Key="dst", CopySource={"Bucket": "cpy", "Key": "src"})
        self.assertEqual(out["CopyObjectResult"]["ETag"], '"%s"' % hashlib.md5(b"data").hexdigest())
        got = s3.get_object(Bucket="cpy", Key="dst")
        self.assertEqual((got["Body"].read(), got["Metadata"], got["ContentType"]),
                         (b"data", {"a": "1"}, "text/x"))
        s3.copy_object(Bucket="cpy", Key="dst2", CopySource="cpy/src", MetadataDirective="REPLACE",
                       Metadata={"b": "2"}, ContentType="text/y")
        got = s3.head_object(Bucket="cpy", Key="dst2")
        self.assertEqual((got["Metadata"], got["ContentType"]), ({"b": "2"}, "text/y"))
        self.assertClientError(lambda: s3.copy_object(Bucket="cpy", Key="src", CopySource="cpy/src"),
                               "InvalidRequest", 400)
        self.assertClientError(lambda: s3.copy_object(Bucket="cpy", Key="x", CopySource="cpy/none"),
                               "NoSuchKey", 404)
        self.assertClientError(lambda: s3.copy_object(
            Bucket="cpy", Key="x", CopySource="cpy/src", CopySourceIfMatch='"nope"'),
            "PreconditionFailed", 412)
        res = s3.delete_objects(Bucket="cpy", Delete={"Objects": [
            {"Key": "src"}, {"Key": "dst"}, {"Key": "never-existed"}]})
        self.assertEqual(sorted(d["Key"] for d in res["Deleted"]), ["dst", "never-existed", "src"])
        quiet = s3.delete_objects(Bucket="cpy", Delete={"Objects": [{"Key": "dst2"}], "Quiet": True})
        self.assertNotIn("Deleted", quiet)
        self.assertNotIn("Contents", s3.list_objects_v2(Bucket="cpy"))
        status, body = self.raw("POST", "/cpy?delete", b"<Delete><Object><Key>a</Key></Object>",
                                {"Content-MD5": base64.b64encode(hashlib.md5(
                                    b"<Delete><Object><Key>a</Key></Object>").digest()).decode()})
        self.assertEqual(status, 400)
        self.assertIn(b"MalformedXML", body)

    def test_checksums(self):
        s3 = self.s3
        s3.create_bucket(Bucket="sums")
        data = b"checksummed bytes"
        sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
        s3.put_object(Bucket="sums", Key="k", Body=data, ChecksumSHA256=sha)
        got = s3.get_object(Bucket="sums", Key="k", ChecksumMode="ENABLED")
        self.assertEqual(got["ChecksumSHA256"], sha)
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        status, body = self.raw("PUT", "/sums/c", data, {"x-amz-checksum-crc32": crc})
        self.assertEqual(status, 200, body)
        status, body = self.raw("PUT", "/sums/bad", data, {"x-amz-checksum-crc32": "AAAAAA=="})
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>BadDigest</Code>", body)
        status, body = self.raw("PUT", "/sums/bad", data, {"Content-MD5": base64.b64encode(
            hashlib.md5(b"other").digest()).decode()})
        self.assertEqual(status, 400)
        self.assertIn(b"<Code>BadDigest</Code>", body)
        self.assertClientError(lambda: s3.head_object(Bucket="sums", Key="bad"), "404", 404)

    def test_aws_chunked(self):
        s3 = self.s3
        s3.create_bucket(Bucket="chunks")
        data = os.urandom(200000)
        # Signed chunks (what SDKs send for streaming uploads), with a signed trailer.
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        for mode, trailer in (("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", None),
                              ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                               ("x-amz-checksum-crc32", crc))):
            status, body = self.chunked_put("/chunks/signed", data, mode, trailer)
            self.assertEqual(status, 200, body)
            got = s3.get_object(Bucket="chunks", Key="signed")
            self.assertEqual(got["Body"].read(), data)
            self.assertNotIn("ContentEncoding", got)
        status, body = self.chunked_put("/chunks/tampered", data,
                                        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", None, tamper=True)
        self.assertEqual(status, 403)
        self.assertIn(b"SignatureDoesNotMatch", body)
        # Unsigned chunks with a checksum trailer (newer SDKs' default for PutObject).
        status, body = self.chunked_put("/chunks/unsigned", data, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                        ("x-amz-checksum-crc32", crc))
        self.assertEqual(status, 200, body)
        got = s3.get_object(Bucket="chunks", Key="unsigned", ChecksumMode="ENABLED")
        self.assertEqual(got["Body"].read(), data)
        self.assertEqual(got["ChecksumCRC32"], crc)
        status, body = self.chunked_put("/chunks/wrong", data, "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                        ("x-amz-checksum-crc32", "AAAAAA=="))
        self.assertEqual(status, 400)
        self.assertIn(b"BadDigest", body)
        self.assertClientError(lambda: s3.head_object(Bucket="chunks", Key="wrong"), "404", 404)

    # ---- helpers: requests botocore would not send as we want them ----

    def signed(self, method, path, body, headers):
        req = AWSRequest(method=method, url=self.server.endpoint + path, data=body,
                         headers=dict(headers))
        SigV4Auth(Credentials(self.server.access_key, self.server.secret_key), "s3",
                  REGION).add_auth(req)
        return req

    def send(self, req, body=None):
        r = urllib.request.Request(req.url, data=req.body if body is None else body,
                                   method=req.method,
                                   headers=dict(req.headers.items()))
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def raw(self, method, path, body, headers=None):
        h = dict(headers or {})
        h["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
        return self.send(self.signed(method, path, body, h))

    def chunked_put(self, path, data, mode, trailer, tamper=False):
        now = datetime.datetime.utcnow()
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        scope = "%s/%s/s3/aws4_request" % (now.strftime("%Y%m%d"), REGION)
        headers = {"x-amz-content-sha256": mode, "Content-Encoding": "aws-chunked",
                   "x-amz-decoded-content-length": str(len(data)), "X-Amz-Date": amz_date}
        if trailer:
            headers["x-amz-trailer"] = trailer[0]
        # Sign the head first (botocore uses the header as the payload hash), then frame.
        req = AWSRequest(method="PUT", url=self.server.endpoint + path, data=b"", headers=headers)
        SigV4Auth(Credentials(self.server.access_key, self.server.secret_key), "s3",
                  REGION).add_auth(req)
        seed = req.headers["Authorization"].split("Signature=")[1]
        key = ("AWS4" + self.server.secret_key).encode()
        for part in (now.strftime("%Y%m%d"), REGION, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signed = "HMAC" in mode
        empty = hashlib.sha256(b"").hexdigest()
        out, prev = b"", seed
        chunks = [data[i:i + 65536] for i in range(0, len(data), 65536)] + [b""]
        for c in chunks:
            line = b"%x" % len(c)
            if signed:
                sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, empty,
                                 hashlib.sha256(c).hexdigest()])
                prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
                line += b";chunk-signature=" + prev.encode()
            out += line + b"\r\n" + c + (b"\r\n" if c else b"")
        if trailer:
            t = ("%s:%s" % trailer).encode()
            out += t + b"\r\n"
            if signed:
                sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                                 hashlib.sha256(t + b"\n").hexdigest()])
                out += b"x-amz-trailer-signature:" + hmac.new(
                    key, sts.encode(), hashlib.sha256).hexdigest().encode() + b"\r\n"
        out += b"\r\n"
        if tamper:
            i = out.index(b"\r\n") + 10
            out = out[:i] + bytes([out[i] ^ 1]) + out[i + 1:]
        req.headers["Content-Length"] = str(len(out))
        return self.send(req, out)


if __name__ == "__main__":
    unittest.main()
