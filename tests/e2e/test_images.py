"""Images end to end: `stratus image import` of a busybox root, `stratus build` of a
two-stage Dockerfile (RUN in a sandbox, COPY --from, whiteouts), pulled back with skopeo and
checked file by file; hostile layers pushed with skopeo are refused by the image store; a
failing RUN fails the build clearly."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

from harness import STRATUS_BIN, StratusTestCase
from lambda_util import create_function_role, make_zip

HAVE_TOOLS = shutil.which("skopeo") and os.path.exists("/bin/busybox")


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


@unittest.skipUnless(os.geteuid() == 0, "RUN steps need sandboxes (root)")
@unittest.skipUnless(HAVE_TOOLS, "needs skopeo and busybox-static")
class ImagesTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="images-e2e-")
        cls.host = f"127.0.0.1:{cls.server.port}"
        cls.auth = os.path.join(cls.tmp, "auth.json")
        # A busybox root filesystem, tarred, imported as base:1.
        root = os.path.join(cls.tmp, "rootfs")
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "root"):
            os.makedirs(os.path.join(root, d))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a != "busybox":
                os.symlink("busybox", os.path.join(root, "bin", a))
        with open(os.path.join(root, "etc", "passwd"), "w") as f:
            f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
        cls.rootfs_tar = os.path.join(cls.tmp, "busybox.tar")
        with tarfile.open(cls.rootfs_tar, "w") as t:
            t.add(root, arcname=".")
        p = cls.stratus("image", "import", cls.rootfs_tar, "base:1")
        if p.returncode != 0:
            raise RuntimeError("import failed: " + p.stderr + p.stdout)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    @classmethod
    def stratus(cls, *args):
        return subprocess.run([STRATUS_BIN, *args, "--data-dir", cls.server.data_dir,
                               "--endpoint-url", cls.server.endpoint],
                              capture_output=True, text=True, timeout=300)

    def skopeo(self, *args, check=True):
        env = dict(os.environ, REGISTRY_AUTH_FILE=self.auth)
        p = subprocess.run(["skopeo", *args], env=env, capture_output=True, text=True, timeout=120)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def login(self):
        _, password, _ = self.server.aws("ecr", "get-login-password")
        self.skopeo("login", "--tls-verify=false", "-u", "AWS", "-p", password.strip(), self.host)

    def build(self, name, dockerfile, files=None, *extra):
        ctx = os.path.join(self.tmp, "ctx-" + name)
        os.makedirs(ctx, exist_ok=True)
        with open(os.path.join(ctx, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        for rel, data in (files or {}).items():
            with open(os.path.join(ctx, rel), "wb") as f:
                f.write(data)
        return self.stratus("build", "-t", name, *extra, ctx)

    def pull(self, ref):
        """skopeo copy into an OCI layout; returns (manifest, config, [layer tar members])."""
        out = os.path.join(self.tmp, "pull-" + ref.replace(":", "-").replace("/", "-"))
        self.skopeo("copy", "--src-tls-verify=false", f"docker://{self.host}/{ref}", f"oci:{out}:x")

        def blob(d):
            with open(os.path.join(out, "blobs", "sha256", d.split(":")[1]), "rb") as f:
                data = f.read()
            self.assertEqual(sha256(data), d)
            return data

        with open(os.path.join(out, "index.json")) as f:
            index = json.load(f)
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layers = []
        for i, l in enumerate(manifest["layers"]):
            self.assertEqual(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")
            raw = gzip.decompress(blob(l["digest"]))
            self.assertEqual(sha256(raw), config["rootfs"]["diff_ids"][i])
            with tarfile.open(fileobj=io.BytesIO(raw)) as t:
                layers.append({m.name.lstrip("./"): (m, t.extractfile(m).read() if m.isfile() else None)
                               for m in t.getmembers()})
        return manifest, config, layers

    def test_two_stage_build_pulled_back_with_skopeo(self):
        dockerfile = """\
ARG BASE=base:1
FROM ${BASE} AS build
ARG WHO=nobody
ENV GREETING="hello from stage one"
WORKDIR /work
COPY msg.txt ./
ADD bundle.tar.gz /bundle/
RUN echo "$GREETING to $WHO" > out.txt && cat msg.txt >> out.txt && cat /bundle/inside.txt >> out.txt

FROM base:1
COPY --from=build /work/out.txt /app/out.txt
RUN rm /bin/false && mkdir -p /var/data && echo x > /var/data/x
USER nobody
LABEL org.example.team=images version="1.0"
EXPOSE 8080 53/udp
ENV MODE=prod
WORKDIR /app
ENTRYPOINT ["/bin/cat"]
CMD ["/app/out.txt"]
"""
        bundle = io.BytesIO()
        with tarfile.open(fileobj=bundle, mode="w:gz") as t:
            data = b"from the bundle\n"
            info = tarfile.TarInfo("inside.txt")
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        p = self.build("app:v1", dockerfile, {"msg.txt": b"from the context\n",
                                               "bundle.tar.gz": bundle.getvalue()},
                       "--build-arg", "WHO=the test")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("Step 3/", p.stdout)
        self.assertIn("Step 10/17 : RUN rm /bin/false", p.stdout)
        self.assertIn("Pushed app:v1 sha256:", p.stdout)

        self.login()
        manifest, config, layers = self.pull("app:v1")
        self.assertEqual(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json")
        c = config["config"]
        self.assertEqual(c["Entrypoint"], ["/bin/cat"])
        self.assertEqual(c["Cmd"], ["/app/out.txt"])
        self.assertEqual(c["User"], "nobody")
        self.assertEqual(c["WorkingDir"], "/app")
        self.assertIn("MODE=prod", c["Env"])
        self.assertTrue(any(e.startswith("PATH=") for e in c["Env"]))
        self.assertEqual(set(c["ExposedPorts"]), {"8080/tcp", "53/udp"})
        self.assertEqual(c["Labels"], {"org.example.team": "images", "version": "1.0"})
        self.assertEqual((config["os"], config["architecture"]), ("linux", "amd64"))
        # base layer + COPY --from + RUN (WORKDIR /app exists already: no layer)
        self.assertEqual(len(layers), 3)
        self.assertIn("bin/busybox", layers[0])
        out = layers[1]["app/out.txt"][1]
        self.assertEqual(out, b"hello from stage one to the test\nfrom the context\nfrom the bundle\n")
        run = layers[2]
        self.assertIn("bin/.wh.false", run)          # the rm, as an OCI whiteout
        self.assertEqual(run["var/data/x"][1], b"x\n")
        self.assertNotIn("work/out.txt", {k for l in layers for k in l})  # stage 1 stays out

        # inspect agrees with what skopeo saw.
        p = self.stratus("image", "inspect", "app:v1")
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(info["Entrypoint"], ["/bin/cat"])
        self.assertEqual(len(info["Layers"]), 3)
        p = self.stratus("image", "ls")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("app", p.stdout)

        # The built image is a base too: its layers (with the whiteout) stack correctly.
        p = self.build("app:v2", "FROM app:v1\nRUN test ! -e /bin/false && cat /app/out.txt "
                       "&& test -f /var/data/x\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("from the bundle", p.stdout)

    def test_failing_run_fails_the_build(self):
        p = self.build("fails:1", "FROM base:1\nRUN echo about to fail; exit 3\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("about to fail", p.stdout)
        self.assertIn("returned a non-zero code: 3", p.stderr)
        self.assertIn("step 2/2", p.stderr)
        # Nothing was pushed.
        r = self.server.client("ecr").list_images(repositoryName="fails")
        self.assertEqual(r["imageIds"], [])

    def test_bad_dockerfiles_and_missing_images(self):
        p = self.build("bad:1", "FROM base:1\nHEALTHCHECK CMD true\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("line 2", p.stderr)
        p = self.build("bad:1", "FROM nosuch:1\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("nosuch:1", p.stderr)
        p = self.build("bad:1", "FROM base:1\nCOPY missing.txt /x\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.txt", p.stderr)

    def push_layout(self, name, members):
        """Pushes, with skopeo, an OCI layout whose one layer holds `members` (TarInfo, data)."""
        layout = os.path.join(self.tmp, "hostile-" + name)
        os.makedirs(os.path.join(layout, "blobs", "sha256"))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for info, data in members:
                t.addfile(info, io.BytesIO(data) if data is not None else None)
        layer = gzip.compress(buf.getvalue())
        config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                             "rootfs": {"type": "layers",
                                        "diff_ids": [sha256(buf.getvalue())]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha256(layer), "size": len(layer)}]}).encode()
        for b in (layer, config, manifest):
            with open(os.path.join(layout, "blobs", "sha256", sha256(b).split(":")[1]), "wb") as f:
                f.write(b)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                 "digest": sha256(manifest), "size": len(manifest),
                 "annotations": {"org.opencontainers.image.ref.name": "x"}}]}, f)
        try:
            self.server.client("ecr").create_repository(repositoryName=name)
        except Exception:  # noqa: BLE001 - already there
            pass
        self.login()
        self.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:x",
                    f"docker://{self.host}/{name}:1")
        return sha256(layer)

    def test_hostile_layers_are_refused(self):
        def file(name, data=b"x"):
            i = tarfile.TarInfo(name)
            i.size = len(data)
            return i, data

        def link(name, target, kind=tarfile.SYMTYPE):
            i = tarfile.TarInfo(name)
            i.type = kind
            i.linkname = target
            return i, None

        def dev(name):
            i = tarfile.TarInfo(name)
            i.type = tarfile.CHRTYPE
            i.devmajor, i.devminor = 1, 3
            return i, None

        cases = {
            "traversal": ([file("../../../../tmp/stratus-escaped")], ".."),
            "absolute": ([file("/tmp/stratus-escaped")], "absolute"),
            "symlink-escape": ([link("esc", "/tmp"), file("esc/stratus-escaped")], "symlink"),
            "hardlink-escape": ([link("pw", "../../etc/passwd", tarfile.LNKTYPE)], ".."),
            "device": ([dev("dev/mem")], "device"),
        }
        for name, (members, why) in cases.items():
            with self.subTest(name):
                digest = self.push_layout(name, members)
                p = self.build("victim-" + name, f"FROM {name}:1\nRUN true\n")
                self.assertNotEqual(p.returncode, 0, p.stdout)
                self.assertIn(why, p.stderr)
                self.assertIn(digest, p.stderr)
                self.assertFalse(os.path.exists("/tmp/stratus-escaped"))
                layers = os.path.join(self.server.data_dir, "image", "layers")
                self.assertFalse(os.path.exists(os.path.join(layers, digest.split(":")[1])))

    # A Lambda runtime client in busybox sh: the image's entrypoint is the runtime.
    BOOTSTRAP = r"""#!/bin/sh
API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  wget -S -O /tmp/event "$API/invocation/next" 2> /tmp/headers || exit 1
  ID=$(grep -i "Lambda-Runtime-Aws-Request-Id" /tmp/headers | sed 's/.*: *//' | tr -d '\r')
  if grep -q '"fail"' /tmp/event; then
    wget -q -O /dev/null --post-data '{"errorMessage":"asked to fail","errorType":"Failed"}' \
      "$API/invocation/$ID/error"
    continue
  fi
  echo "handling $ID with $1"
  BODY="{\"handler\":\"$1\",\"args\":\"$*\",\"greeting\":\"$GREETING\",\"extra\":\"$EXTRA\",\"event\":$(cat /tmp/event),\"cwd\":\"$(pwd)\",\"uid\":$(id -u),\"fn\":\"$AWS_LAMBDA_FUNCTION_NAME\",\"h\":\"$_HANDLER\"}"
  wget -q -O /dev/null --post-data "$BODY" "$API/invocation/$ID/response"
done
"""

    def test_container_image_function(self):
        p = self.build("fn:v1", """\
FROM base:1
COPY --chmod=755 bootstrap /lambda/bootstrap
ENV GREETING=hello
WORKDIR /work
ENTRYPOINT ["/lambda/bootstrap"]
CMD ["app.handler"]
""", {"bootstrap": self.BOOTSTRAP.encode()})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        repo_uri = self.server.client("ecr").describe_repositories(
            repositoryNames=["fn"])["repositories"][0]["repositoryUri"]
        lam = self.server.client("lambda")
        role = create_function_role(self.server, "image-fn-role")

        def wait_active(name):
            for _ in range(100):
                c = lam.get_function_configuration(FunctionName=name)
                if c["State"] != "Pending" and c.get("LastUpdateStatus") != "InProgress":
                    return c
                time.sleep(0.1)
            self.fail("function stayed Pending")

        created = lam.create_function(FunctionName="img", Role=role, PackageType="Image",
                                      Code={"ImageUri": repo_uri + ":v1"},
                                      Environment={"Variables": {"EXTRA": "x"}})
        self.assertEqual(created["PackageType"], "Image")
        self.assertNotIn("Runtime", created)
        self.assertEqual(wait_active("img")["State"], "Active")
        got = lam.get_function(FunctionName="img")
        self.assertEqual(got["Code"]["RepositoryType"], "ECR")
        self.assertEqual(got["Code"]["ImageUri"], repo_uri + ":v1")
        resolved = got["Code"]["ResolvedImageUri"]
        self.assertTrue(resolved.startswith(repo_uri + "@sha256:"), resolved)
        self.assertEqual(got["Configuration"]["CodeSha256"], resolved.split(":")[-1])
        # The resolved digest is the manifest skopeo sees for the tag.
        self.login()
        raw = self.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{self.host}/fn:v1")
        self.assertEqual(resolved.split("@")[1], sha256(raw.stdout.encode()))

        # aws lambda invoke, as a user would.
        out = os.path.join(self.tmp, "out.json")
        _, meta, _ = self.server.aws("lambda", "invoke", "--function-name", "img",
                                     "--cli-binary-format", "raw-in-base64-out",
                                     "--payload", '{"n": 1}', out)
        self.assertEqual(meta["StatusCode"], 200)
        self.assertNotIn("FunctionError", meta)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual(r["handler"], "app.handler")  # the image's CMD
        self.assertEqual(r["h"], "app.handler")
        self.assertEqual(r["greeting"], "hello")  # the image's Env
        self.assertEqual(r["extra"], "x")  # the function's Environment
        self.assertEqual(r["event"], {"n": 1})
        self.assertEqual(r["cwd"], "/work")  # the image's WorkingDir
        self.assertEqual(r["uid"], 65534)  # not root
        self.assertEqual(r["fn"], "img")

        # A function error from the runtime.
        resp = lam.invoke(FunctionName="img", Payload=b'{"fail": true}')
        self.assertEqual(resp["FunctionError"], "Unhandled")
        self.assertEqual(json.loads(resp["Payload"].read())["errorMessage"], "asked to fail")

        # ImageConfig overrides the image's Cmd and WorkingDir.
        lam.update_function_configuration(
            FunctionName="img", ImageConfig={"Command": ["other.handler", "arg2"],
                                             "WorkingDirectory": "/tmp"})
        wait_active("img")
        c = lam.get_function_configuration(FunctionName="img")
        self.assertEqual(c["ImageConfigResponse"]["ImageConfig"],
                         {"Command": ["other.handler", "arg2"], "WorkingDirectory": "/tmp"})
        r = json.loads(lam.invoke(FunctionName="img", Payload=b"{}")["Payload"].read())
        self.assertEqual((r["handler"], r["args"], r["cwd"]),
                         ("other.handler", "other.handler arg2", "/tmp"))

        # Bad input: a missing image, zip code for an image function, no ImageUri.
        with self.assertRaises(lam.exceptions.InvalidParameterValueException) as e:
            lam.create_function(FunctionName="img2", Role=role, PackageType="Image",
                                Code={"ImageUri": repo_uri + ":nope"})
        self.assertIn("does not exist", str(e.exception))
        with self.assertRaises(lam.exceptions.InvalidParameterValueException) as e:
            lam.update_function_code(FunctionName="img", ZipFile=b"PK")
        self.assertIn("Please provide ImageUri", str(e.exception))
        with self.assertRaises(lam.exceptions.InvalidParameterValueException):
            lam.create_function(FunctionName="img3", Role=role, PackageType="Image", Code={})
        with self.assertRaises(lam.exceptions.InvalidParameterValueException):
            lam.update_function_configuration(FunctionName="img", Runtime="python3.12")
        # A Zip function takes no ImageConfig.
        lam.create_function(FunctionName="zipfn", Role=role, Runtime="provided.al2023",
                            Handler="x", Code={"ZipFile": make_zip({"bootstrap": "#!/bin/sh\n"})})
        with self.assertRaises(lam.exceptions.InvalidParameterValueException):
            lam.update_function_configuration(FunctionName="zipfn",
                                              ImageConfig={"Command": ["x"]})
        with self.assertRaises(lam.exceptions.InvalidParameterValueException):
            lam.update_function_code(FunctionName="zipfn", ImageUri=repo_uri + ":v1")


if __name__ == "__main__":
    unittest.main()
