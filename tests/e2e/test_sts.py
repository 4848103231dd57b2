"""STS AssumeRole end to end: trust policies, temporary credentials, their expiry."""
import json
import time
import unittest

from harness import StratusTestCase

TRUST_ACCOUNT = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:root"},
    "Action": "sts:AssumeRole"}]})
TRUST_NOBODY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
    "Action": "sts:AssumeRole"}]})
ALLOW_IAM_READ = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["iam:List*", "iam:Get*"], "Resource": "*"}]})


class AssumeRoleTest(StratusTestCase):
    # A test-only knob (default 900, as in AWS) so expiry can be observed in seconds.
    config_yaml = "sts_min_duration_seconds: 1\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        iam = cls.server.client("iam")
        cls.role_arn = iam.create_role(RoleName="worker", AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
        iam.put_role_policy(RoleName="worker", PolicyName="read", PolicyDocument=ALLOW_IAM_READ)
        iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=TRUST_NOBODY)

    def test_assume_role_credentials_work(self):
        creds = self.server.client("sts").assume_role(RoleArn=self.role_arn, RoleSessionName="s1")
        c = creds["Credentials"]
        self.assertTrue(c["AccessKeyId"].startswith("ASIA"))
        self.assertTrue(c["SessionToken"])
        self.assertEqual(creds["AssumedRoleUser"]["Arn"], "arn:aws:sts::000000000000:assumed-role/worker/s1")
        self.assertTrue(creds["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1"))
        sts = self.server.client("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
        ident = sts.get_caller_identity()
        self.assertEqual(ident["Arn"], "arn:aws:sts::000000000000:assumed-role/worker/s1")
        iam = self.server.client("iam", key=c["AccessKeyId"], secret=c["SecretAccessKey"], token=c["SessionToken"])
        iam.list_roles()
        self.assertClientError(lambda: iam.create_user(UserName="x"), "AccessDenied", 403)
        # The same key without its token is not accepted.
        bare = self.server.client("sts", key=c["AccessKeyId"], secret=c["SecretAccessKey"])
        self.assertClientError(bare.get_caller_identity, "InvalidClientTokenId", 403)

    def test_assume_role_cli(self):
        code, out, err = self.server.aws("sts", "assume-role", "--role-arn", self.role_arn,
                                         "--role-session-name", "cli-session")
        c = out["Credentials"]
        code, ident, err = self.server.aws("sts", "get-caller-identity", key=c["AccessKeyId"],
                                           secret=c["SecretAccessKey"], token=c["SessionToken"])
        self.assertEqual(ident["Arn"], "arn:aws:sts::000000000000:assumed-role/worker/cli-session")

    def test_credentials_expire(self):
        creds = self.server.client("sts", validate=False).assume_role(RoleArn=self.role_arn, RoleSessionName="short",
                                                      DurationSeconds=2)["Credentials"]
        sts = self.server.client("sts", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                                 token=creds["SessionToken"])
        sts.get_caller_identity()
        time.sleep(3)
        self.assertClientError(sts.get_caller_identity, "ExpiredToken", 403)

    def test_trust_policy_refuses(self):
        resp = self.assertClientError(
            lambda: self.server.client("sts").assume_role(
                RoleArn="arn:aws:iam::000000000000:role/lambda-only", RoleSessionName="s1"),
            "AccessDenied", 403)
        self.assertIn("sts:AssumeRole", resp["Error"]["Message"])

    def test_invalid_parameters(self):
        sts = self.server.client("sts", validate=False)
        self.assertClientError(lambda: sts.assume_role(RoleArn="nothing-valid-in-here", RoleSessionName="s1"),
                               "ValidationError", 400)
        self.assertClientError(lambda: sts.assume_role(RoleArn=self.role_arn, RoleSessionName="bad:name"),
                               "ValidationError", 400)
        self.assertClientError(lambda: sts.assume_role(RoleArn=self.role_arn, RoleSessionName="s1",
                                                       DurationSeconds=100000), "ValidationError", 400)


class DefaultDurationBoundsTest(StratusTestCase):
    def test_min_duration_is_900_by_default(self):
        iam = self.server.client("iam")
        arn = iam.create_role(RoleName="r", AssumeRolePolicyDocument=TRUST_ACCOUNT)["Role"]["Arn"]
        sts = self.server.client("sts", validate=False)
        self.assertClientError(lambda: sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=899),
                               "ValidationError", 400)
        creds = sts.assume_role(RoleArn=arn, RoleSessionName="s1", DurationSeconds=900)["Credentials"]
        self.assertTrue(creds["AccessKeyId"].startswith("ASIA"))


if __name__ == "__main__":
    unittest.main()
