"""`stratus sandbox run` as a person would use it: stdio passes through, exit codes come back."""
import os
import subprocess
import unittest

from harness import STRATUS_BIN


def run(*args, input=None, timeout=60):
    return subprocess.run([STRATUS_BIN, "sandbox", "run", *args], input=input, capture_output=True,
                          text=True, timeout=timeout)


@unittest.skipUnless(os.geteuid() == 0, "sandboxes need root (namespaces, cgroups, mounts)")
class SandboxCliTest(unittest.TestCase):
    def test_stdio_and_exit_code(self):
        p = run("--lean", "--", "/bin/sh", "-c", "read x; echo got:$x; echo err >&2; exit 7", input="hello\n")
        self.assertEqual(p.returncode, 7, p.stderr)
        self.assertEqual(p.stdout, "got:hello\n")
        self.assertIn("err", p.stderr)

    def test_isolated_view(self):
        p = run("--lean", "--", "/bin/sh", "-c", "echo $$; hostname; id -u; ls /proc | grep -c '^[0-9]'")
        self.assertEqual(p.returncode, 0, p.stderr)
        pid, host, uid, nprocs = p.stdout.split()
        self.assertEqual(pid, "2")          # the sandbox's init is pid 1, the command pid 2
        self.assertNotEqual(host, os.uname().nodename)
        self.assertNotEqual(uid, "0")       # not root inside by default
        self.assertLess(int(nprocs), 10)    # cannot see the host's processes

    def test_oom_is_reported(self):
        p = run("--lean", "--memory", "32M", "--", "/usr/bin/python3", "-c", "x = bytearray(256 * 1024 * 1024)")
        self.assertEqual(p.returncode, 137, p.stderr)
        self.assertIn("out of memory", p.stderr)

    def test_timeout_is_reported(self):
        p = run("--lean", "--timeout", "0.5", "--", "/bin/sleep", "30")
        self.assertEqual(p.returncode, 137, p.stderr)
        self.assertIn("timed out", p.stderr)

    def test_bad_flags(self):
        p = run("--lean", "--net", "wifi", "--", "/bin/true")
        self.assertNotEqual(p.returncode, 0)
        p = run("--lean", "--memory", "lots", "--", "/bin/true")
        self.assertEqual(p.returncode, 125, p.stderr)


if __name__ == "__main__":
    unittest.main()
