"""`stratus env`: eval its output and the aws CLI just works."""
import os
import subprocess
import unittest

from harness import STRATUS_BIN, StratusTestCase, aws_cli


class EnvTest(StratusTestCase):
    def run_shell(self, script):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(HOME=self.server.dir, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   PATH=os.path.dirname(aws_cli()) + ":" + env.get("PATH", ""))
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)

    def test_eval_env_then_aws(self):
        listen = f"127.0.0.1:{self.server.port}"
        p = self.run_shell(
            f'shopt -s expand_aliases\n'
            f'eval "$({STRATUS_BIN} env --data-dir {self.server.data_dir} --listen {listen})"\n'
            f'aws sts get-caller-identity --output text --query Arn\n')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "arn:aws:iam::000000000000:root")

    def test_env_prints_exports(self):
        p = subprocess.run([STRATUS_BIN, "env", "--data-dir", self.server.data_dir,
                            "--listen", f"127.0.0.1:{self.server.port}"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"export AWS_ACCESS_KEY_ID='{self.server.access_key}'", p.stdout)
        self.assertIn(f"export AWS_ENDPOINT_URL='http://127.0.0.1:{self.server.port}'", p.stdout)
        self.assertIn("export AWS_DEFAULT_REGION='us-east-1'", p.stdout)

    def test_credentials_file_is_private(self):
        mode = os.stat(os.path.join(self.server.data_dir, "credentials")).st_mode & 0o777
        self.assertEqual(mode, 0o600)


if __name__ == "__main__":
    unittest.main()
