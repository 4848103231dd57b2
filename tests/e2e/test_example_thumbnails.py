"""examples/thumbnails, followed to the letter: every ```sh block of its README runs, in
order, in a copy of the example directory, with the aws CLI pointed at a test server. Then
the function's role is shown to be the limit of what it may do."""
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import StratusTestCase, aws_cli
from lambda_util import SKIP_REASON, sandbox_capable

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                       "thumbnails")


def pil_available():
    return subprocess.run(["/usr/bin/python3", "-c", "import PIL"], capture_output=True).returncode == 0


@unittest.skipUnless(sandbox_capable() and pil_available(),
                     SKIP_REASON + "; and python3-pil")
class ThumbnailsExampleTest(StratusTestCase):
    def blocks(self):
        with open(os.path.join(EXAMPLE, "README.md")) as f:
            text = f.read()
        return re.findall(r"```sh\n(.*?)```", text, re.S)

    def run_block(self, workdir, block):
        preamble = (
            "set -euo pipefail\n"
            f"aws() {{ command {aws_cli()} --endpoint-url {self.server.endpoint} \"$@\"; }}\n"
            "python3() { /usr/bin/python3 \"$@\"; }\n")
        p = subprocess.run(["bash", "-c", preamble + block], cwd=workdir, capture_output=True,
                           text=True, timeout=240, env=self.server.cli_env())
        self.assertEqual(p.returncode, 0, f"block failed:\n{block}\nstdout:{p.stdout}\n"
                         f"stderr:{p.stderr}\nserver log:\n{self.server.read_log()}")
        return p.stdout

    def test_readme(self):
        blocks = self.blocks()
        self.assertGreaterEqual(len(blocks), 5)
        with tempfile.TemporaryDirectory() as d:
            work = os.path.join(d, "thumbnails")
            shutil.copytree(EXAMPLE, work)
            outputs = []
            for block in blocks[:-1]:  # the last one cleans up; run it after the checks
                outputs.append(self.run_block(work, block))
            self.assertIn("(128, 96)", outputs[3])
            self.assertIn("thumbnail of s3://photos/teal.jpg (128x96)", outputs[4])
            s3 = self.server.client("s3")
            head = s3.head_object(Bucket="photos-thumbnails", Key="teal.jpg")
            self.assertEqual(head["ContentType"], "image/png")
            self.assertEqual(head["Metadata"], {"source": "photos/teal.jpg"})

            # The role is the limit: the same code pointed at its own bucket is refused.
            lam = self.server.client("lambda")
            lam.update_function_configuration(FunctionName="thumbnails", Environment={
                "Variables": {"THUMBNAIL_BUCKET": "photos"}})
            lam.get_waiter("function_updated").wait(FunctionName="thumbnails")
            event = {"Records": [{"s3": {"bucket": {"name": "photos"},
                                         "object": {"key": "teal.jpg"}}}]}
            out = lam.invoke(FunctionName="thumbnails", Payload=json.dumps(event), LogType="Tail")
            self.assertEqual(out.get("FunctionError"), "Unhandled")
            err = json.loads(out["Payload"].read())
            self.assertIn("AccessDenied", err["errorMessage"])
            self.assertIn("thumbnails", base64.b64decode(out["LogResult"]).decode())
            self.run_block(work, blocks[-1])
            names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
            self.assertNotIn("photos", names)


if __name__ == "__main__":
    unittest.main()
