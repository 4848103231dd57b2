"""S3 versioning with boto3: enabling and suspending, every write a new version, delete
markers (GET 404, GET of the marker's version 405), reading and deleting given versions,
ListObjectVersions, the "null" version of suspended buckets and of objects written before
versioning, copies of old versions, DeleteObjects with versions, and a bucket that only
deletes when every version is gone."""
from harness import StratusTestCase


class S3VersioningTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.server.client("s3")

    def versions(self, bucket, **kw):
        out = self.s3.list_object_versions(Bucket=bucket, **kw)
        return ([(v["Key"], v["VersionId"], v["IsLatest"]) for v in out.get("Versions", [])],
                [(d["Key"], d["VersionId"], d["IsLatest"]) for d in out.get("DeleteMarkers", [])])

    def test_versions_and_delete_markers(self):
        s3 = self.s3
        s3.create_bucket(Bucket="ver")
        self.assertNotIn("Status", s3.get_bucket_versioning(Bucket="ver"))
        s3.put_object(Bucket="ver", Key="k", Body=b"before")  # the "null" version
        s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Enabled"})
        self.assertEqual(s3.get_bucket_versioning(Bucket="ver")["Status"], "Enabled")
        v1 = s3.put_object(Bucket="ver", Key="k", Body=b"one")["VersionId"]
        v2 = s3.put_object(Bucket="ver", Key="k", Body=b"two")["VersionId"]
        self.assertNotEqual(v1, v2)
        self.assertEqual(s3.get_object(Bucket="ver", Key="k")["Body"].read(), b"two")
        got = s3.get_object(Bucket="ver", Key="k", VersionId=v1)
        self.assertEqual((got["Body"].read(), got["VersionId"]), (b"one", v1))
        self.assertEqual(s3.get_object(Bucket="ver", Key="k", VersionId="null")["Body"].read(),
                         b"before")
        versions, markers = self.versions("ver")
        self.assertEqual(versions, [("k", v2, True), ("k", v1, False), ("k", "null", False)])
        self.assertEqual(markers, [])

        d = s3.delete_object(Bucket="ver", Key="k")
        self.assertTrue(d["DeleteMarker"])
        marker = d["VersionId"]
        self.assertClientError(lambda: s3.get_object(Bucket="ver", Key="k"), "NoSuchKey", 404)
        self.assertClientError(lambda: s3.get_object(Bucket="ver", Key="k", VersionId=marker),
                               "MethodNotAllowed", 405)
        self.assertNotIn("Contents", s3.list_objects_v2(Bucket="ver"))
        versions, markers = self.versions("ver")
        self.assertEqual(markers, [("k", marker, True)])
        self.assertEqual(versions[0], ("k", v2, False))
        # Removing the marker brings v2 back.
        s3.delete_object(Bucket="ver", Key="k", VersionId=marker)
        self.assertEqual(s3.get_object(Bucket="ver", Key="k")["Body"].read(), b"two")
        # Removing the current version makes the next newest current.
        s3.delete_object(Bucket="ver", Key="k", VersionId=v2)
        self.assertEqual(s3.get_object(Bucket="ver", Key="k")["Body"].read(), b"one")
        self.assertClientError(lambda: s3.get_object(Bucket="ver", Key="k", VersionId=v2),
                               "NoSuchVersion", 404)
        # Copy an old version; the copy is a new version.
        out = s3.copy_object(Bucket="ver", Key="restored", CopySource={
            "Bucket": "ver", "Key": "k", "VersionId": "null"})
        self.assertEqual(out["CopySourceVersionId"] if "CopySourceVersionId" in out else "null",
                         "null")
        self.assertEqual(s3.get_object(Bucket="ver", Key="restored")["Body"].read(), b"before")
        # Suspended: writes replace the null version.
        s3.put_bucket_versioning(Bucket="ver", VersioningConfiguration={"Status": "Suspended"})
        s3.put_object(Bucket="ver", Key="k", Body=b"s1")
        s3.put_object(Bucket="ver", Key="k", Body=b"s2")
        versions, _ = self.versions("ver", Prefix="k")
        self.assertEqual([v[1] for v in versions], ["null", v1])
        self.assertEqual(s3.get_object(Bucket="ver", Key="k", VersionId="null")["Body"].read(), b"s2")
        # A bucket with versions left is not empty.
        s3.delete_object(Bucket="ver", Key="k", VersionId="null")
        s3.delete_object(Bucket="ver", Key="restored")
        self.assertClientError(lambda: s3.delete_bucket(Bucket="ver"), "BucketNotEmpty", 409)
        versions, markers = self.versions("ver")
        res = s3.delete_objects(Bucket="ver", Delete={"Objects": [
            {"Key": k, "VersionId": v} for k, v, _ in versions + markers]})
        self.assertEqual(len(res["Deleted"]), len(versions) + len(markers))
        self.assertEqual(self.versions("ver"), ([], []))
        s3.delete_bucket(Bucket="ver")

    def test_pagination_and_errors(self):
        s3 = self.s3
        s3.create_bucket(Bucket="verp")
        s3.put_bucket_versioning(Bucket="verp", VersioningConfiguration={"Status": "Enabled"})
        ids = [s3.put_object(Bucket="verp", Key="a", Body=b"%d" % i)["VersionId"] for i in range(3)]
        s3.put_object(Bucket="verp", Key="b", Body=b"b")
        page = s3.list_object_versions(Bucket="verp", MaxKeys=2)
        self.assertTrue(page["IsTruncated"])
        self.assertEqual([v["VersionId"] for v in page["Versions"]], ids[::-1][:2])
        rest = s3.list_object_versions(Bucket="verp", KeyMarker=page["NextKeyMarker"],
                                       VersionIdMarker=page["NextVersionIdMarker"])
        self.assertEqual([(v["Key"], v["VersionId"]) for v in rest["Versions"]][0], ("a", ids[0]))
        self.assertEqual(len(rest["Versions"]), 2)
        self.assertClientError(lambda: s3.put_bucket_versioning(
            Bucket="verp", VersioningConfiguration={"Status": "Sometimes"}), "MalformedXML", 400)
        self.assertClientError(lambda: s3.get_object(Bucket="verp", Key="a",
                                                     VersionId="x" * 32), "NoSuchVersion", 404)
