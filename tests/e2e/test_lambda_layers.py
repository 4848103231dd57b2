"""Lambda layers: PublishLayerVersion and friends with boto3 and the aws CLI, functions that
use them (merged read-only at /opt: Python packages from /opt/python, a `provided` runtime's
/opt/bootstrap), and the errors AWS gives for bad layer references."""
import json
import os
import tempfile
import unittest

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

LAYER_ARN = "arn:aws:lambda:us-east-1:000000000000:layer:"

BOOTSTRAP = r'''#!/usr/bin/python3
import http.client, json, os
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    conn.request("POST", "/2018-06-01/runtime/invocation/" + rid + "/response",
                 body=json.dumps({"from": "layer bootstrap", "opt": sorted(os.listdir("/opt"))}))
    conn.getresponse().read()
'''


class LayersTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        cls.role = create_function_role(cls.server, "layers-role")

    def publish(self, name, files, **kw):
        return self.lam.publish_layer_version(LayerName=name, Content={"ZipFile": make_zip(files)},
                                              **kw)

    def test_versions_lifecycle(self):
        v1 = self.publish("lib", {"python/a.py": "X = 1\n"}, Description="first",
                          CompatibleRuntimes=["python3.11"], LicenseInfo="MIT")
        self.assertEqual(v1["Version"], 1)
        self.assertEqual(v1["LayerArn"], LAYER_ARN + "lib")
        self.assertEqual(v1["LayerVersionArn"], LAYER_ARN + "lib:1")
        self.assertEqual(v1["CompatibleRuntimes"], ["python3.11"])
        self.assertEqual(v1["LicenseInfo"], "MIT")
        self.assertGreater(v1["Content"]["CodeSize"], 0)
        v2 = self.publish("lib", {"python/a.py": "X = 2\n"})
        self.assertEqual(v2["Version"], 2)
        got = self.lam.get_layer_version(LayerName="lib", VersionNumber=1)
        self.assertEqual(got["Description"], "first")
        self.assertEqual(got["Content"]["CodeSha256"], v1["Content"]["CodeSha256"])
        versions = self.lam.list_layer_versions(LayerName="lib")["LayerVersions"]
        self.assertEqual([v["Version"] for v in versions], [2, 1])
        layers = self.lam.list_layers()["Layers"]
        mine = [l for l in layers if l["LayerName"] == "lib"]
        self.assertEqual(mine[0]["LatestMatchingVersion"]["Version"], 2)
        # Deleted versions are gone and their numbers are not reused.
        self.lam.delete_layer_version(LayerName="lib", VersionNumber=2)
        self.lam.delete_layer_version(LayerName="lib", VersionNumber=2)  # again: no error
        self.assertClientError(lambda: self.lam.get_layer_version(LayerName="lib", VersionNumber=2),
                               "ResourceNotFoundException", 404)
        self.assertEqual(self.publish("lib", {"python/a.py": "X = 3\n"})["Version"], 3)
        # The CLI, as a user would type it.
        with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as f:
            f.write(make_zip({"python/b.py": "Y = 1\n"}))
        try:
            _, out, _ = self.server.aws("lambda", "publish-layer-version", "--layer-name", "cli",
                                        "--zip-file", "fileb://" + f.name)
        finally:
            os.unlink(f.name)
        self.assertEqual(out["LayerVersionArn"], LAYER_ARN + "cli:1")

    def test_bad_layer_references(self):
        zip_ = make_zip({"app.py": "def handler(e, c):\n    return 1\n"})
        err = self.assertClientError(lambda: self.lam.create_function(
            FunctionName="bad-layers", Runtime="python3.11", Role=self.role, Handler="app.handler",
            Code={"ZipFile": zip_}, Layers=[LAYER_ARN + "missing:1"]),
            "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"],
                         "Layer version " + LAYER_ARN + "missing:1 does not exist.")
        v = self.publish("dup", {"x": "1"})
        v2 = self.publish("dup", {"x": "2"})
        err = self.assertClientError(lambda: self.lam.create_function(
            FunctionName="bad-layers", Runtime="python3.11", Role=self.role, Handler="app.handler",
            Code={"ZipFile": zip_}, Layers=[v["LayerVersionArn"], v2["LayerVersionArn"]]),
            "InvalidParameterValueException", 400)
        self.assertIn("Two different versions of the same layer", err["Error"]["Message"])
        arns = [self.publish("many%d" % i, {"x": "1"})["LayerVersionArn"] for i in range(6)]
        err = self.assertClientError(lambda: self.lam.create_function(
            FunctionName="bad-layers", Runtime="python3.11", Role=self.role, Handler="app.handler",
            Code={"ZipFile": zip_}, Layers=arns), "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"], "Cannot reference more than 5 layers.")


@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class LayerFunctionsTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        cls.role = create_function_role(cls.server, "layers-role")

    def invoke(self, name):
        r = self.lam.invoke(FunctionName=name, Payload=b"{}")
        body = json.loads(r["Payload"].read())
        self.assertNotIn("FunctionError", r, body)
        return body

    def test_python_function_imports_from_its_layers(self):
        base = self.lam.publish_layer_version(
            LayerName="greet", Content={"ZipFile": make_zip({
                "python/greeting.py": "WORD = 'hello'\n",
                "python/shared.py": "WHO = 'base'\n"})})
        top = self.lam.publish_layer_version(
            LayerName="override", Content={"ZipFile": make_zip({
                "python/shared.py": "WHO = 'top'\n"})})
        code = make_zip({"app.py": (
            "import greeting, shared\n"
            "def handler(event, context):\n"
            "    return {'word': greeting.WORD, 'who': shared.WHO}\n")})
        fn = self.lam.create_function(
            FunctionName="layered", Runtime="python3.11", Role=self.role, Handler="app.handler",
            Code={"ZipFile": code}, Layers=[base["LayerVersionArn"], top["LayerVersionArn"]])
        self.assertEqual([l["Arn"] for l in fn["Layers"]],
                         [base["LayerVersionArn"], top["LayerVersionArn"]])
        self.assertEqual(fn["Layers"][0]["CodeSize"], base["Content"]["CodeSize"])
        # Later layers sit on top of earlier ones.
        self.assertEqual(self.invoke("layered"), {"word": "hello", "who": "top"})
        # Taking a layer away is a new configuration: new environments without it.
        self.lam.update_function_configuration(FunctionName="layered",
                                               Layers=[base["LayerVersionArn"]])
        self.lam.get_waiter("function_updated_v2").wait(FunctionName="layered")
        self.assertEqual(self.invoke("layered"), {"word": "hello", "who": "base"})
        conf = self.lam.get_function_configuration(FunctionName="layered")
        self.assertEqual([l["Arn"] for l in conf["Layers"]], [base["LayerVersionArn"]])
        # A deleted layer version keeps working for the functions that use it.
        self.lam.delete_layer_version(LayerName="greet", VersionNumber=base["Version"])
        self.lam.update_function_configuration(FunctionName="layered", Timeout=5)
        self.assertEqual(self.invoke("layered"), {"word": "hello", "who": "base"})

    def test_provided_runtime_bootstrap_from_a_layer(self):
        layer = self.lam.publish_layer_version(
            LayerName="runtime", Content={"ZipFile": make_zip({"bootstrap": (BOOTSTRAP, 0o755)})})
        self.lam.create_function(
            FunctionName="opt-bootstrap", Runtime="provided.al2023", Role=self.role,
            Handler="unused", Code={"ZipFile": make_zip({"data.txt": "x"})},
            Layers=[layer["LayerVersionArn"]])
        self.assertEqual(self.invoke("opt-bootstrap"),
                         {"from": "layer bootstrap", "opt": ["bootstrap"]})


if __name__ == "__main__":
    unittest.main()
