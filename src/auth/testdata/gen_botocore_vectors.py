#!/usr/bin/env python3
"""Prints SigV4 requests signed by botocore, for the hard-coded vectors in sigv4_test.cpp.

Run once by hand (python3 with botocore installed); the output was pasted into
kBotocoreVectors. Time is pinned to 2015-08-30T12:36:00Z so the same clock serves all vectors.
"""
import datetime
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

NOW = datetime.datetime(2015, 8, 30, 12, 36, 0)
CREDS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
TEMP = Credentials("ASIDEXAMPLE", "tempsecret/+Example", "FQoGZXIvYXdzEXAMPLE+token/==")


def cpp(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def emit(name, req, service, signer_cls, creds, region="us-east-1", **kw):
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW):
        signer = signer_cls(creds, service, region, **kw)
        signer.add_auth(req)
    prepared = req.prepare()
    url = prepared.url.split("://", 1)[1]
    host, _, rest = url.partition("/")
    path, _, query = ("/" + rest).partition("?")
    print("    {%s, %s, %s, %s, %s, {" % (cpp(name), cpp(service), cpp(prepared.method),
                                         cpp(path), cpp(query)))
    headers = [("Host", host)] + [(k, v if isinstance(v, str) else v.decode()) for k, v in
                                  prepared.headers.items()]
    for k, v in headers:
        print("        {%s, %s}," % (cpp(k), cpp(v)))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    print("     }, %s}," % cpp(body.decode()))


emit("iam-listusers-post", AWSRequest("POST", "https://iam.amazonaws.com/",
                                      data=b"Action=ListUsers&Version=2010-05-08",
                                      headers={"Content-Type":
                                               "application/x-www-form-urlencoded; charset=utf-8"}),
     "iam", botocore.auth.SigV4Auth, CREDS)
emit("lambda-invoke-encoded-arn",
     AWSRequest("POST", "http://127.0.0.1:4566/2015-03-31/functions/"
                "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Amy-fn/invocations",
                data=b'{"hello": "world"}', headers={"X-Amz-Invocation-Type": "Event"}),
     "lambda", botocore.auth.SigV4Auth, CREDS)
emit("sqs-get-query-special-chars",
     AWSRequest("GET", "http://127.0.0.1:4566/000000000000/q1",
                params={"Action": "SendMessage", "MessageBody": "a b+c/d=e&f~g*h\u00e9",
                        "Empty": ""}),
     "sqs", botocore.auth.SigV4Auth, CREDS)
emit("s3-put-key-with-specials",
     AWSRequest("PUT", "http://127.0.0.1:4566/my-bucket/dir//a%20b%2Bc/%C3%A9.txt",
                data=b"hello s3", headers={"Content-Type": "text/plain"}),
     "s3", botocore.auth.S3SigV4Auth, CREDS)
emit("sts-session-token",
     AWSRequest("POST", "https://sts.amazonaws.com/", data=b"Action=GetCallerIdentity&Version=2011-06-15",
                headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}),
     "sts", botocore.auth.SigV4Auth, TEMP)
emit("s3-presigned-get",
     AWSRequest("GET", "http://127.0.0.1:4566/my-bucket/photos/cat%20pic.jpg",
                params={"response-content-type": "image/jpeg"}),
     "s3", botocore.auth.S3SigV4QueryAuth, CREDS, expires=3600)
emit("s3-presigned-get-temp-creds",
     AWSRequest("GET", "http://127.0.0.1:4566/my-bucket/key"),
     "s3", botocore.auth.S3SigV4QueryAuth, TEMP, expires=600)
