"""The OCI Distribution API on /v2/: skopeo round trips with an ECR token, raw chunked
uploads, mounts, Range reads, bad input that must leave nothing behind, anonymous access,
and restarts."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import StratusTestCase
from registry_util import Registry, digest, ecr_token, error_code

HAVE_TOOLS = all(shutil.which(t) for t in ("skopeo", "umoci")) and os.path.exists("/bin/busybox")


class RegistryTest(StratusTestCase):
    # A small buffered-body limit: blob uploads must stream past it.
    config_yaml = "max_body_bytes: 1048576\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ecr = cls.server.client("ecr")
        for name in ("app", "other", "public/busybox"):
            cls.ecr.create_repository(repositoryName=name)
        cls.token = ecr_token(cls.server)
        cls.reg = Registry(cls.server, cls.token)
        cls.anon = Registry(cls.server)
        cls.tmp = tempfile.mkdtemp(prefix="registry-e2e-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def skopeo(self, *args):
        env = dict(os.environ, REGISTRY_AUTH_FILE=os.path.join(self.tmp, "auth.json"))
        p = subprocess.run(["skopeo", *args], env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def make_layout(self):
        root = os.path.join(self.tmp, "rootfs")
        os.makedirs(os.path.join(root, "bin"), exist_ok=True)
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        layout = os.path.join(self.tmp, "oci")
        if not os.path.exists(layout):
            subprocess.run(["umoci", "init", "--layout", layout], check=True)
            subprocess.run(["umoci", "new", "--image", layout + ":bb"], check=True)
            subprocess.run(["umoci", "insert", "--image", layout + ":bb",
                            os.path.join(root, "bin", "busybox"), "/bin/busybox"], check=True,
                           capture_output=True)
        return layout

    @unittest.skipUnless(HAVE_TOOLS, "needs skopeo, umoci and busybox-static")
    def test_skopeo_push_pull_round_trip(self):
        layout = self.make_layout()
        host = f"127.0.0.1:{self.server.port}"
        # The password from `aws ecr get-login-password`, as a user would do it.
        _, password, _ = self.server.aws("ecr", "get-login-password")
        self.skopeo("login", "--tls-verify=false", "-u", "AWS", "-p", password.strip(), host)
        self.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:bb",
                    f"docker://{host}/app:latest")
        back = os.path.join(self.tmp, "back")
        self.skopeo("copy", "--src-tls-verify=false", f"docker://{host}/app:latest",
                    f"oci:{back}:bb")
        src = self.skopeo("inspect", "--raw", f"oci:{layout}:bb")
        dst = self.skopeo("inspect", "--raw", f"oci:{back}:bb")
        self.assertEqual(digest(src.encode()), digest(dst.encode()))
        images = self.ecr.describe_images(repositoryName="app")["imageDetails"]
        self.assertIn(digest(src.encode()), [i["imageDigest"] for i in images])
        tags = json.loads(self.skopeo("list-tags", "--tls-verify=false", f"docker://{host}/app"))
        self.assertIn("latest", tags["Tags"])
        # Docker schema 2 too: the same image converted on the way in.
        self.skopeo("copy", "--dest-tls-verify=false", "--format", "v2s2", f"oci:{layout}:bb",
                    f"docker://{host}/app:docker")
        raw = json.loads(self.skopeo("inspect", "--raw", "--tls-verify=false",
                                     f"docker://{host}/app:docker"))
        self.assertEqual(raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json")
        self.skopeo("copy", "--src-tls-verify=false", f"docker://{host}/app:docker",
                    f"oci:{back}:docker")

    def test_base_check_and_challenge(self):
        s, h, _ = self.anon.request("GET", "/v2/")
        self.assertEqual(s, 401)
        self.assertTrue(h["www-authenticate"].startswith("Basic realm="))
        s, _, _ = self.reg.request("GET", "/v2/")
        self.assertEqual(s, 200)
        bad = Registry(self.server, "not-a-token")
        s, _, b = bad.request("GET", "/v2/app/tags/list")
        self.assertEqual((s, error_code(b)), (401, "UNAUTHORIZED"))

    def test_chunked_upload_with_ranges_then_range_reads(self):
        data = os.urandom(300000)
        s, h, _ = self.reg.request("POST", "/v2/app/blobs/uploads/")
        self.assertEqual(s, 202)
        loc = h["location"]
        s, h, _ = self.reg.request("PATCH", loc, data[:100000],
                                   {"Content-Range": "0-99999", "Content-Type": "application/octet-stream"})
        self.assertEqual((s, h["range"]), (202, "0-99999"))
        # A chunk that does not follow on is refused and changes nothing.
        s, h, b = self.reg.request("PATCH", loc, data[:10], {"Content-Range": "5-14"})
        self.assertEqual(s, 416)
        s, h, _ = self.reg.request("GET", loc)
        self.assertEqual((s, h["range"]), (204, "0-99999"))
        s, h, _ = self.reg.request("PATCH", loc, data[100000:],
                                   {"Content-Range": f"100000-{len(data) - 1}"})
        self.assertEqual(s, 202)
        s, h, _ = self.reg.request("PUT", loc + "?digest=" + digest(data))
        self.assertEqual((s, h["docker-content-digest"]), (201, digest(data)))
        path = f"/v2/app/blobs/{digest(data)}"
        s, h, b = self.reg.request("GET", path)
        self.assertEqual((s, b), (200, data))
        s, h, b = self.reg.request("GET", path, headers={"Range": "bytes=10-19"})
        self.assertEqual((s, b, h["content-range"]), (206, data[10:20], f"bytes 10-19/{len(data)}"))
        s, h, b = self.reg.request("GET", path, headers={"Range": "bytes=-5"})
        self.assertEqual((s, b), (206, data[-5:]))
        s, h, b = self.reg.request("GET", path, headers={"Range": f"bytes={len(data)}-"})
        self.assertEqual(s, 416)
        s, h, b = self.reg.request("HEAD", path)
        self.assertEqual((s, int(h["content-length"]), b), (200, len(data), b""))

    def test_large_blob_streams_past_the_body_limit(self):
        data = os.urandom(5 * 1024 * 1024)  # the server buffers at most 1 MiB here
        d = self.reg.push_blob("app", data)
        s, h, b = self.reg.request("GET", f"/v2/app/blobs/{d}")
        self.assertEqual((s, digest(b)), (200, d))
        # Outside the registry the limit still holds.
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5242880\r\n\r\n")
        self.assertTrue(sock.recv(100).startswith(b"HTTP/1.1 413"))
        sock.close()

    def test_cross_repository_mount(self):
        data = b"mount me " + os.urandom(100)
        d = self.reg.push_blob("app", data)
        s, h, _ = self.reg.request("GET", f"/v2/other/blobs/{d}")
        self.assertEqual(s, 404)
        s, h, _ = self.reg.request("POST", f"/v2/other/blobs/uploads/?mount={d}&from=app")
        self.assertEqual((s, h["location"]), (201, f"/v2/other/blobs/{d}"))
        s, _, b = self.reg.request("GET", f"/v2/other/blobs/{d}")
        self.assertEqual((s, b), (200, data))
        # Unknown blob: falls back to an upload session.
        s, h, _ = self.reg.request("POST", f"/v2/other/blobs/uploads/?mount={digest(b'x')}&from=app")
        self.assertEqual(s, 202)

    def test_digest_mismatch_keeps_nothing(self):
        data = b"real content"
        wrong = digest(b"something else")
        s, _, b = self.reg.request("POST", f"/v2/app/blobs/uploads/?digest={wrong}", data)
        self.assertEqual((s, error_code(b)), (400, "DIGEST_INVALID"))
        for d in (wrong, digest(data)):
            s, _, b = self.reg.request("HEAD", f"/v2/app/blobs/{d}")
            self.assertEqual(s, 404)
        s, _, b = self.reg.request("GET", "/v2/app/blobs/sha256:nothex")
        self.assertEqual((s, error_code(b)), (400, "DIGEST_INVALID"))

    def test_truncated_upload_keeps_nothing(self):
        full = os.urandom(100000)
        s, h, _ = self.reg.request("POST", "/v2/app/blobs/uploads/")
        loc = h["location"]
        # Announce the whole body, send a tenth, hang up.
        sock = socket.create_connection(("127.0.0.1", self.server.port))
        head = (f"PATCH {loc} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(full)}\r\n"
                f"Authorization: {self.reg.headers()['Authorization']}\r\n\r\n").encode()
        sock.sendall(head + full[:10000])
        sock.close()
        s, _, b = self.reg.request("PUT", f"{loc}?digest={digest(full)}")
        self.assertEqual((s, error_code(b)), (400, "DIGEST_INVALID"))
        s, _, _ = self.reg.request("HEAD", f"/v2/app/blobs/{digest(full)}")
        self.assertEqual(s, 404)
        s, _, b = self.reg.request("GET", loc)  # the session is gone
        self.assertEqual((s, error_code(b)), (404, "BLOB_UPLOAD_UNKNOWN"))

    def test_manifests_naming_missing_blobs_or_invalid_are_refused(self):
        missing = digest(b"never pushed")
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": missing, "size": 12}, "layers": []}).encode()
        ct = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
        s, _, b = self.reg.request("PUT", "/v2/app/manifests/broken", manifest, ct)
        self.assertEqual((s, error_code(b)), (400, "MANIFEST_BLOB_UNKNOWN"))
        s, _, b = self.reg.request("GET", "/v2/app/manifests/broken")
        self.assertEqual((s, error_code(b)), (404, "MANIFEST_UNKNOWN"))
        for junk in (b"{", b"[]", b'{"schemaVersion":2,"mediaType":"x/y"}', os.urandom(64)):
            s, _, b = self.reg.request("PUT", "/v2/app/manifests/junk", junk, ct)
            self.assertEqual((s, error_code(b)), (400, "MANIFEST_INVALID"), junk)
        d, m = self.reg.push_image("app", "good", [b"layer"])
        s, _, b = self.reg.request("PUT", f"/v2/app/manifests/{digest(b'x')}", m, ct)
        self.assertEqual((s, error_code(b)), (400, "DIGEST_INVALID"))
        s, h, b = self.reg.request("GET", f"/v2/app/manifests/{d}")
        self.assertEqual((s, b, h["docker-content-digest"]), (200, m, d))
        s, h, b = self.reg.request("HEAD", f"/v2/app/manifests/good")
        self.assertEqual((s, int(h["content-length"]), b), (200, len(m), b""))
        # An OCI manifest is not served to a client that only accepts Docker types.
        docker_only = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        s, _, b = self.reg.request("GET", f"/v2/app/manifests/{d}", headers=docker_only)
        self.assertEqual((s, error_code(b)), (404, "MANIFEST_UNKNOWN"))
        both = {"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                          "application/vnd.oci.image.manifest.v1+json"}
        s, _, b = self.reg.request("GET", f"/v2/app/manifests/{d}", headers=both)
        self.assertEqual(s, 200)

    def test_push_to_missing_repository_is_name_unknown(self):
        s, _, b = self.reg.request("POST", "/v2/nope/blobs/uploads/")
        self.assertEqual((s, error_code(b)), (404, "NAME_UNKNOWN"))
        s, _, b = self.reg.request("GET", "/v2/Bad_Name/tags/list")
        self.assertEqual((s, error_code(b)), (400, "NAME_INVALID"))

    def test_tags_pagination_catalog_and_deletes(self):
        self.ecr.create_repository(repositoryName="tagged")
        for t in ("t1", "t2", "t3"):
            self.reg.push_image("tagged", t, [t.encode()])
        s, h, b = self.reg.request("GET", "/v2/tagged/tags/list?n=2")
        self.assertEqual(json.loads(b)["tags"], ["t1", "t2"])
        self.assertIn('rel="next"', h["link"])
        s, h, b = self.reg.request("GET", "/v2/tagged/tags/list?n=2&last=t2")
        self.assertEqual(json.loads(b)["tags"], ["t3"])
        s, _, b = self.reg.request("GET", "/v2/_catalog")
        self.assertIn("public/busybox", json.loads(b)["repositories"])
        s, _, _ = self.reg.request("DELETE", "/v2/tagged/manifests/t3")
        self.assertEqual(s, 202)
        s, _, b = self.reg.request("GET", "/v2/tagged/manifests/t3")
        self.assertEqual(s, 404)

    def test_referrers(self):
        d, m = self.reg.push_image("other", "subject", [b"subject layer"])
        cfg = b"{}"
        self.reg.push_blob("other", cfg)
        sig = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(cfg),
                       "size": 2}, "layers": [],
            "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
                        "size": len(m)}}).encode()
        s, h, _ = self.reg.request("PUT", f"/v2/other/manifests/{digest(sig)}", sig,
                                   {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        self.assertEqual((s, h.get("oci-subject")), (201, d))
        s, h, b = self.reg.request("GET", f"/v2/other/referrers/{d}")
        idx = json.loads(b)
        self.assertEqual([x["digest"] for x in idx["manifests"]], [digest(sig)])
        self.assertEqual(idx["manifests"][0]["artifactType"], "application/vnd.example.sig")

    def test_anonymous_pull_only_from_public_repositories(self):
        d, _ = self.reg.push_image("public/busybox", "v1", [b"public layer"])
        s, h, b = self.anon.request("GET", "/v2/public/busybox/manifests/v1")
        self.assertEqual((s, error_code(b)), (401, "UNAUTHORIZED"))
        self.assertIn("Basic", h["www-authenticate"])
        policy = {"Version": "2012-10-17", "Statement": [{
            "Sid": "public", "Effect": "Allow", "Principal": "*",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
                       "ecr:BatchCheckLayerAvailability"]}]}
        self.ecr.set_repository_policy(repositoryName="public/busybox",
                                       policyText=json.dumps(policy))
        s, _, b = self.anon.request("GET", "/v2/public/busybox/manifests/v1")
        self.assertEqual(s, 200)
        s, _, b = self.anon.request("GET", f"/v2/public/busybox/blobs/{digest(b'public layer')}")
        self.assertEqual((s, b), (200, b"public layer"))
        # Still private elsewhere, and nobody anonymous pushes.
        s, _, _ = self.anon.request("GET", "/v2/app/manifests/latest")
        self.assertEqual(s, 401)
        s, _, _ = self.anon.request("POST", "/v2/public/busybox/blobs/uploads/")
        self.assertEqual(s, 401)

    def test_iam_decides_what_a_token_may_do(self):
        iam = self.server.client("iam")
        iam.create_user(UserName="puller")
        key = iam.create_access_key(UserName="puller")["AccessKey"]
        iam.put_user_policy(UserName="puller", PolicyName="pull", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                 "Resource": "arn:aws:ecr:us-east-1:000000000000:repository/app"}]}))
        ecr = self.server.client("ecr", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        data = ecr.get_authorization_token()["authorizationData"][0]
        import base64
        token = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)[1]
        user = Registry(self.server, token)
        d, m = self.reg.push_image("app", "for-puller", [b"puller layer"])
        s, _, b = user.request("GET", "/v2/app/manifests/for-puller")
        self.assertEqual((s, b), (200, m))
        s, _, b = user.request("GET", "/v2/other/manifests/anything")
        self.assertEqual((s, error_code(b)), (403, "DENIED"))
        s, _, b = user.request("POST", "/v2/app/blobs/uploads/")
        self.assertEqual((s, error_code(b)), (403, "DENIED"))

    def test_hostile_requests_never_crash(self):
        import random
        rng = random.Random(5)
        paths = ["/v2/app/manifests/", "/v2/app/blobs/", "/v2/app/blobs/uploads/",
                 "/v2/app/tags/list", "/v2/_catalog", "/v2/app/referrers/", "/v2/"]
        junk = ["%00", "..", "sha256:", "sha256:" + "g" * 64, "%zz", "a" * 5000, "/" * 50,
                "latest?n=-1", "x?last=" + "z" * 3000, "?digest=sha256:" + "0" * 64, ""]
        for _ in range(200):
            path = rng.choice(paths) + rng.choice(junk)
            method = rng.choice(["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"])
            body = rng.choice([None, b"", os.urandom(rng.randint(1, 2000)), b'{"schemaVersion":2,'
                               b'"mediaType":"application/vnd.oci.image.index.v1+json",'
                               b'"manifests":[{"digest":1,"size":"x"}]}'])
            headers = rng.choice([{}, {"Range": "bytes=99999999999999999999-"},
                                  {"Content-Range": "5-1"}, {"Content-Type": "x" * 100}])
            try:
                s, _, _ = self.reg.request(method, path.replace(" ", ""), body, headers)
            except Exception as e:  # noqa: BLE001 - a closed connection is fine, a crash is not
                s = str(e)
            self.assertNotEqual(s, 500, (method, path))
        s, _, _ = self.reg.request("GET", "/v2/")
        self.assertEqual(s, 200)

    def test_sigv4_works_on_v2(self):
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        creds = botocore.credentials.Credentials(self.server.access_key, self.server.secret_key)

        def signed(method, path, body=b"", content_sha=False):
            req = botocore.awsrequest.AWSRequest(
                method=method, url=f"http://127.0.0.1:{self.server.port}{path}", data=body)
            if content_sha:
                req.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
            botocore.auth.SigV4Auth(creds, "ecr", "us-east-1").add_auth(req)
            return Registry(self.server).request(method, path, body or None, dict(req.headers))

        self.reg.push_image("app", "signed", [b"signed layer"])
        s, _, b = signed("GET", "/v2/app/tags/list")
        self.assertEqual(s, 200)
        self.assertIn("signed", json.loads(b)["tags"])
        data = os.urandom(2000)
        # Streamed upload bodies need the signed x-amz-content-sha256 (docs/decisions.md).
        # (botocore signs a URL's query as given, so it must arrive percent-encoded.)
        path = "/v2/app/blobs/uploads/?digest=" + digest(data).replace(":", "%3A")
        s, _, _ = signed("POST", path, data)
        self.assertEqual(s, 401)
        s, _, _ = signed("POST", path, data, True)
        self.assertEqual(s, 201)
        bad = Registry(self.server)
        s, _, b = bad.request("GET", "/v2/app/tags/list", headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/ecr/"
                             "aws4_request, SignedHeaders=host, Signature=00"})
        self.assertEqual((s, error_code(b)), (401, "UNAUTHORIZED"))

    def test_zz_restart_after_kill_keeps_images(self):
        d, m = self.reg.push_image("other", "durable", [os.urandom(1000)])
        self.server.restart(kill=True)
        s, h, b = self.reg.request("GET", "/v2/other/manifests/durable")
        self.assertEqual((s, b), (200, m))
        layer = json.loads(m)["layers"][0]["digest"]
        s, _, b = self.reg.request("GET", f"/v2/other/blobs/{layer}")
        self.assertEqual((s, digest(b)), (200, layer))


if __name__ == "__main__":
    unittest.main()
