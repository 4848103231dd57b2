"""Helpers shared by the end-to-end tests that invoke functions."""
import io
import json
import os
import zipfile


def sandbox_capable():
    """Invoking runs sandboxes: root and the host's python3 (the test bootstraps use it)."""
    return os.geteuid() == 0 and os.path.exists("/usr/bin/python3")


SKIP_REASON = "invoking runs sandboxes: needs root and /usr/bin/python3"


def make_zip(files):
    """files: {name: data} (mode 0644) or {name: (data, mode)}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, entry in files.items():
            data, mode = entry if isinstance(entry, tuple) else (entry, 0o644)
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def create_function_role(server, name, actions=()):
    """An IAM role that Lambda may assume, allowed `actions` on "*"; returns its ARN."""
    iam = server.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if actions:
        iam.put_role_policy(RoleName=name, PolicyName="allow", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}]}))
    return arn
