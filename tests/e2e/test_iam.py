"""IAM through boto3 and the aws CLI: users, keys, policies, and their effect on calls."""
import json
import time
import unittest

from harness import StratusTestCase

ALLOW_LIST_USERS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["iam:ListUsers", "iam:GetUser"], "Resource": "*"}]})
DENY_LIST_USERS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": "iam:ListUsers", "Resource": "*"}]})


def eventually(fn, timeout=5.0):
    """IAM is eventually consistent (in AWS too): retry briefly."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except AssertionError:
            if time.time() > deadline:
                raise
            time.sleep(0.05)


class IamTest(StratusTestCase):
    def new_user_with_key(self, name):
        iam = self.server.client("iam")
        user = iam.create_user(UserName=name)["User"]
        self.assertEqual(user["Arn"], f"arn:aws:iam::000000000000:user/{name}")
        self.assertTrue(user["UserId"].startswith("AIDA"))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        self.assertTrue(key["AccessKeyId"].startswith("AKIA"))
        self.assertEqual(key["Status"], "Active")
        return key["AccessKeyId"], key["SecretAccessKey"]

    def test_new_user_key_works_immediately(self):
        key, secret = self.new_user_with_key("alice")
        ident = self.server.client("sts", key=key, secret=secret).get_caller_identity()
        self.assertEqual(ident["Arn"], "arn:aws:iam::000000000000:user/alice")
        self.assertEqual(ident["Account"], "000000000000")
        self.assertTrue(ident["UserId"].startswith("AIDA"))

    def test_policy_decides(self):
        key, secret = self.new_user_with_key("bob")
        iam_root = self.server.client("iam")
        iam_bob = self.server.client("iam", key=key, secret=secret)
        # No policy: implicit deny.
        resp = self.assertClientError(iam_bob.list_users, "AccessDenied", 403)
        self.assertIn("arn:aws:iam::000000000000:user/bob is not authorized to perform: iam:ListUsers",
                      resp["Error"]["Message"])
        # Inline allow.
        iam_root.put_user_policy(UserName="bob", PolicyName="read", PolicyDocument=ALLOW_LIST_USERS)
        eventually(lambda: self.assertIn("bob", [u["UserName"] for u in iam_bob.list_users()["Users"]]))
        # Still denied for what the policy does not name.
        self.assertClientError(lambda: iam_bob.create_user(UserName="mallory"), "AccessDenied", 403)
        # An attached managed policy with an explicit deny wins over the allow.
        arn = iam_root.create_policy(PolicyName="no-list", PolicyDocument=DENY_LIST_USERS)["Policy"]["Arn"]
        self.assertEqual(arn, "arn:aws:iam::000000000000:policy/no-list")
        iam_root.attach_user_policy(UserName="bob", PolicyArn=arn)

        def denied():
            from botocore.exceptions import ClientError
            try:
                iam_bob.list_users()
            except ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "AccessDenied")
                return
            raise AssertionError("ListUsers still allowed")
        eventually(denied)
        # GetUser is still allowed by the inline policy.
        self.assertEqual(iam_bob.get_user(UserName="bob")["User"]["UserName"], "bob")

    def test_deleted_key_stops_working(self):
        key, secret = self.new_user_with_key("carol")
        sts = self.server.client("sts", key=key, secret=secret)
        sts.get_caller_identity()
        self.server.client("iam").delete_access_key(UserName="carol", AccessKeyId=key)

        def refused():
            from botocore.exceptions import ClientError
            try:
                sts.get_caller_identity()
            except ClientError as e:
                self.assertEqual(e.response["Error"]["Code"], "InvalidClientTokenId")
                return
            raise AssertionError("deleted key still accepted")
        eventually(refused)

    def test_user_lifecycle_and_errors_cli(self):
        self.server.aws("iam", "create-user", "--user-name", "dave", "--path", "/team/")
        code, out, err = self.server.aws("iam", "get-user", "--user-name", "dave")
        self.assertEqual(out["User"]["Path"], "/team/")
        self.assertEqual(out["User"]["Arn"], "arn:aws:iam::000000000000:user/team/dave")
        code, out, err = self.server.aws("iam", "create-user", "--user-name", "dave", check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("EntityAlreadyExists", err)
        code, out, err = self.server.aws("iam", "get-user", "--user-name", "nobody", check=False)
        self.assertIn("NoSuchEntity", err)
        self.assertIn("The user with name nobody cannot be found.", err)
        self.server.aws("iam", "create-access-key", "--user-name", "dave")
        code, out, err = self.server.aws("iam", "delete-user", "--user-name", "dave", check=False)
        self.assertIn("DeleteConflict", err)

    def test_malformed_policy(self):
        iam = self.server.client("iam")
        iam.create_user(UserName="erin")
        self.assertClientError(
            lambda: iam.put_user_policy(UserName="erin", PolicyName="p", PolicyDocument="{not json"),
            "MalformedPolicyDocument", 400)
        self.assertClientError(
            lambda: iam.create_role(RoleName="r", AssumeRolePolicyDocument="[]"),
            "MalformedPolicyDocument", 400)


if __name__ == "__main__":
    unittest.main()
