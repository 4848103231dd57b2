"""Lambda control plane through boto3 and the aws CLI: functions, versions, aliases,
concurrency, tags, and the errors AWS gives for bad input."""
import base64
import hashlib
import io
import os
import tempfile
import unittest
import zipfile

from harness import StratusTestCase

ROLE = "arn:aws:iam::000000000000:role/lambda-role"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."


def make_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


HANDLER = make_zip({"index.py": "def handler(event, context):\n    return event\n"})


def sha(b):
    return base64.b64encode(hashlib.sha256(b).digest()).decode()


class LambdaApiTest(StratusTestCase):
    def setUp(self):
        self.lam = self.server.client("lambda")

    def create(self, name, code=HANDLER, **kw):
        args = dict(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="index.handler",
                    Code={"ZipFile": code})
        args.update(kw)
        return self.lam.create_function(**args)

    def test_lifecycle(self):
        fn = self.create("life", Description="first", Environment={"Variables": {"A": "1"}},
                         Tags={"team": "core"})
        self.assertEqual(fn["FunctionArn"], ARN + "life")
        self.assertEqual(fn["Version"], "$LATEST")
        self.assertEqual(fn["CodeSha256"], sha(HANDLER))
        self.assertEqual(fn["CodeSize"], len(HANDLER))
        self.assertEqual((fn["Timeout"], fn["MemorySize"]), (3, 128))
        # As AWS's: Pending while the code is made ready, then Active.
        self.assertEqual(fn["State"], "Pending")
        self.assertEqual(fn["StateReasonCode"], "Creating")
        self.assertNotIn("LastUpdateStatus", fn)
        self.assertEqual(fn["PackageType"], "Zip")
        self.assertEqual(fn["Environment"]["Variables"], {"A": "1"})
        self.assertRegex(fn["LastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
        self.lam.get_waiter("function_active_v2").wait(FunctionName="life")

        got = self.lam.get_function(FunctionName="life")
        self.assertEqual(got["Configuration"]["State"], "Active")
        self.assertEqual(got["Configuration"]["LastUpdateStatus"], "Successful")
        self.assertNotIn("StateReason", got["Configuration"])
        self.assertEqual(got["Configuration"]["RevisionId"], fn["RevisionId"])
        self.assertEqual(got["Code"]["RepositoryType"], "S3")
        self.assertEqual(got["Tags"], {"team": "core"})
        conf = self.lam.get_function_configuration(FunctionName=ARN + "life")
        self.assertEqual(conf["Description"], "first")

        upd = self.lam.update_function_configuration(FunctionName="life", Timeout=30,
                                                     MemorySize=256,
                                                     RevisionId=fn["RevisionId"])
        self.assertEqual((upd["Timeout"], upd["MemorySize"]), (30, 256))
        self.assertNotEqual(upd["RevisionId"], fn["RevisionId"])
        self.assertEqual(upd["State"], "Active")
        self.assertEqual(upd["LastUpdateStatus"], "InProgress")
        self.lam.get_waiter("function_updated_v2").wait(FunctionName="life")
        self.assertEqual(self.lam.get_function_configuration(
            FunctionName="life")["LastUpdateStatus"], "Successful")
        self.assertClientError(lambda: self.lam.update_function_configuration(
            FunctionName="life", Timeout=31, RevisionId=fn["RevisionId"]),
            "PreconditionFailedException", 412)

        code2 = make_zip({"index.py": "def handler(e, c):\n    return 2\n"})
        upd = self.lam.update_function_code(FunctionName="life", ZipFile=code2)
        self.assertEqual(upd["CodeSha256"], sha(code2))
        self.assertEqual(upd["Timeout"], 30)

        v1 = self.lam.publish_version(FunctionName="life", Description="v1")
        self.assertEqual(v1["Version"], "1")
        self.assertEqual(v1["FunctionArn"], ARN + "life:1")
        self.assertEqual(self.lam.publish_version(FunctionName="life")["Version"], "1")
        self.lam.update_function_code(FunctionName="life", ZipFile=HANDLER)
        v2 = self.lam.publish_version(FunctionName="life")
        self.assertEqual(v2["Version"], "2")
        versions = [v["Version"] for v in
                    self.lam.list_versions_by_function(FunctionName="life")["Versions"]]
        self.assertEqual(versions, ["$LATEST", "1", "2"])
        pages = self.lam.get_paginator("list_versions_by_function").paginate(
            FunctionName="life", PaginationConfig={"PageSize": 1})
        self.assertEqual([v["Version"] for p in pages for v in p["Versions"]],
                         ["$LATEST", "1", "2"])

        alias = self.lam.create_alias(FunctionName="life", Name="prod", FunctionVersion="1")
        self.assertEqual(alias["AliasArn"], ARN + "life:prod")
        self.assertClientError(lambda: self.lam.create_alias(
            FunctionName="life", Name="prod", FunctionVersion="1"), "ResourceConflictException", 409)
        by_alias = self.lam.get_function(FunctionName="life", Qualifier="prod")
        self.assertEqual(by_alias["Configuration"]["Version"], "1")
        self.assertEqual(by_alias["Configuration"]["CodeSha256"], sha(code2))
        self.lam.update_alias(FunctionName="life", Name="prod", FunctionVersion="2",
                              RevisionId=alias["RevisionId"])
        self.assertEqual(self.lam.get_alias(FunctionName="life", Name="prod")["FunctionVersion"],
                         "2")
        self.assertEqual([a["Name"] for a in self.lam.list_aliases(FunctionName="life")["Aliases"]],
                         ["prod"])
        err = self.assertClientError(lambda: self.lam.get_alias(FunctionName="life", Name="nope"),
                                     "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"], "Cannot find alias arn: " + ARN + "life:nope")

        self.lam.delete_function(FunctionName="life", Qualifier="1")
        self.assertClientError(lambda: self.lam.get_function(FunctionName="life", Qualifier="1"),
                               "ResourceNotFoundException", 404)
        self.lam.delete_alias(FunctionName="life", Name="prod")
        self.lam.delete_function(FunctionName="life")
        err = self.assertClientError(lambda: self.lam.get_function(FunctionName="life"),
                                     "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"], "Function not found: " + ARN + "life")

    def test_create_errors(self):
        self.create("dup")
        err = self.assertClientError(lambda: self.create("dup"), "ResourceConflictException", 409)
        self.assertEqual(err["Error"]["Message"], "Function already exist: dup")
        for code in [b"not a zip", make_zip({"../evil.py": "x"}), make_zip({"/abs.py": "x"})]:
            err = self.assertClientError(lambda: self.create("bad", code=code),
                                         "InvalidParameterValueException", 400)
            self.assertEqual(err["Error"]["Message"], UNZIP)
        err = self.assertClientError(lambda: self.create("bad", Runtime="python2.7"),
                                     "InvalidParameterValueException", 400)
        self.assertIn("at 'runtime' failed to satisfy constraint", err["Error"]["Message"])
        err = self.assertClientError(lambda: self.create("bad", Role="r1"),
                                     "ValidationException", 400)
        self.assertTrue(err["Error"]["Message"].startswith(
            "1 validation error detected: Value 'r1' at 'role'"))
        err = self.assertClientError(
            lambda: self.create("bad", Environment={"Variables": {"BIG": "x" * 5000}}),
            "InvalidParameterValueException", 400)
        self.assertIn("exceeded the 4KB limit", err["Error"]["Message"])
        self.assertClientError(lambda: self.lam.get_function(FunctionName="bad"),
                               "ResourceNotFoundException", 404)

    def test_out_of_range_values(self):
        raw = self.server.client("lambda", validate=False)
        cases = [({"Timeout": 0}, "Value '0' at 'timeout'"),
                 ({"Timeout": 901}, "Value '901' at 'timeout'"),
                 ({"MemorySize": 127}, "Value '127' at 'memorySize'"),
                 ({"MemorySize": 10241}, "Value '10241' at 'memorySize'"),
                 ({"EphemeralStorage": {"Size": 10241}}, "Value '10241' at 'ephemeralStorage.size'")]
        for extra, fragment in cases:
            args = dict(FunctionName="range", Runtime="python3.12", Role=ROLE,
                        Handler="index.handler", Code={"ZipFile": HANDLER}, **extra)
            err = self.assertClientError(lambda: raw.create_function(**args),
                                         "ValidationException", 400)
            self.assertIn(fragment, err["Error"]["Message"])
            self.assertTrue(err["Error"]["Message"].startswith("1 validation error detected: "))

    def test_zip_bomb_over_unzipped_limit(self):
        # 260 MB of zeros deflates to ~250 KB: over the 250 MB unzipped limit.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("bomb.bin", "w", force_zip64=True) as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(260):
                    f.write(chunk)
        err = self.assertClientError(lambda: self.create("bomb", code=buf.getvalue()),
                                     "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"], "Unzipped size must be smaller than 262144000 bytes")

    def test_list_functions_pages(self):
        names = [f"page-{i}" for i in range(5)]
        for n in names:
            self.create(n)
        pages = self.lam.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 2})
        seen = [f["FunctionName"] for p in pages for f in p["Functions"]]
        for n in names:
            self.assertIn(n, seen)
        self.assertEqual(len(seen), len(set(seen)))
        first = self.lam.list_functions(MaxItems=2)
        self.assertEqual(len(first["Functions"]), 2)
        self.assertIn("NextMarker", first)

    def test_concurrency_tags_and_account_settings(self):
        self.create("conc")
        self.assertEqual(self.lam.put_function_concurrency(
            FunctionName="conc", ReservedConcurrentExecutions=10)["ReservedConcurrentExecutions"], 10)
        self.assertEqual(self.lam.get_function_concurrency(FunctionName="conc")
                         ["ReservedConcurrentExecutions"], 10)
        self.assertEqual(self.lam.get_function(FunctionName="conc")["Concurrency"]
                         ["ReservedConcurrentExecutions"], 10)
        settings = self.lam.get_account_settings()
        self.assertEqual(settings["AccountLimit"]["ConcurrentExecutions"], 1000)
        self.assertEqual(settings["AccountLimit"]["UnreservedConcurrentExecutions"], 990)
        self.assertGreaterEqual(settings["AccountUsage"]["FunctionCount"], 1)
        err = self.assertClientError(lambda: self.lam.put_function_concurrency(
            FunctionName="conc", ReservedConcurrentExecutions=950), "InvalidParameterValueException", 400)
        self.assertIn("below its minimum value of [100]", err["Error"]["Message"])
        self.lam.delete_function_concurrency(FunctionName="conc")
        self.assertNotIn("ReservedConcurrentExecutions",
                         self.lam.get_function_concurrency(FunctionName="conc"))

        arn = ARN + "conc"
        self.lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
        self.lam.untag_resource(Resource=arn, TagKeys=["a"])
        self.assertEqual(self.lam.list_tags(Resource=arn)["Tags"], {"b": "2"})
        self.assertClientError(lambda: self.lam.list_tags(Resource=arn + ":1"),
                               "InvalidParameterValueException", 400)
        self.assertClientError(lambda: self.lam.list_tags(Resource=ARN + "missing"),
                               "ResourceNotFoundException", 404)

    def test_update_code_rejects_hostile_zip_and_keeps_old_code(self):
        fn = self.create("keep")
        for code in [make_zip({"../../etc/cron.d/x": "x"}), b"PK\x03\x04garbage"]:
            err = self.assertClientError(
                lambda: self.lam.update_function_code(FunctionName="keep", ZipFile=code),
                "InvalidParameterValueException", 400)
            self.assertEqual(err["Error"]["Message"], UNZIP)
        conf = self.lam.get_function_configuration(FunctionName="keep")
        self.assertEqual((conf["CodeSha256"], conf["RevisionId"]),
                         (fn["CodeSha256"], fn["RevisionId"]))

    def test_iam_policy_scopes_lambda_actions(self):
        import json
        import time
        from botocore.exceptions import ClientError
        self.create("allowed")
        self.create("other")
        iam = self.server.client("iam")
        iam.create_user(UserName="dev")
        iam.put_user_policy(UserName="dev", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": ARN + "allowed"}]}))
        key = iam.create_access_key(UserName="dev")["AccessKey"]
        dev = self.server.client("lambda", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        deadline = time.time() + 5
        while True:
            try:
                dev.get_function(FunctionName="allowed")
                break
            except ClientError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.assertClientError(lambda: dev.get_function(FunctionName="other"),
                               "AccessDeniedException", 403)
        self.assertClientError(lambda: self.create_with(dev, "sneaky"), "AccessDeniedException", 403)
        self.assertClientError(lambda: dev.delete_function(FunctionName="allowed"),
                               "AccessDeniedException", 403)

    def create_with(self, client, name):
        return client.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                                      Handler="index.handler", Code={"ZipFile": HANDLER})

    def test_aws_cli(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "f.zip")
            with open(path, "wb") as f:
                f.write(HANDLER)
            _, out, _ = self.server.aws("lambda", "create-function", "--function-name", "cli",
                                        "--runtime", "python3.12", "--role", ROLE,
                                        "--handler", "index.handler",
                                        "--zip-file", "fileb://" + path)
            self.assertEqual(out["FunctionArn"], ARN + "cli")
            self.assertEqual(out["CodeSha256"], sha(HANDLER))
            _, out, _ = self.server.aws("lambda", "get-function", "--function-name", "cli")
            self.assertEqual(out["Configuration"]["Handler"], "index.handler")
            _, out, _ = self.server.aws("lambda", "publish-version", "--function-name", "cli")
            self.assertEqual(out["Version"], "1")
            self.server.aws("lambda", "create-alias", "--function-name", "cli", "--name", "live",
                            "--function-version", "1")
            _, out, _ = self.server.aws("lambda", "list-functions")
            self.assertIn("cli", [f["FunctionName"] for f in out["Functions"]])
            self.server.aws("lambda", "delete-function", "--function-name", "cli")
            code, _, err = self.server.aws("lambda", "get-function", "--function-name", "cli",
                                           check=False)
            self.assertNotEqual(code, 0)
            self.assertIn("ResourceNotFoundException", err)


if __name__ == "__main__":
    unittest.main()
