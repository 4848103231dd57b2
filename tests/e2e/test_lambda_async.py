"""Asynchronous invocation (InvocationType=Event): the 202 means the event is durably queued;
the queue runs it with Lambda's retry policy and sends invocation records to destinations
(PutFunctionEventInvokeConfig). Driven with boto3 and the aws CLI; the retry delay is
shortened through the server's test knob (lambda_async_retry_delay_ms)."""
import json
import time
import unittest

from botocore.exceptions import ClientError

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

PRINTER = '''
import json
def handler(event, context):
    print("EVENT " + json.dumps(event, sort_keys=True))
    return {"ok": True}
'''

FAILER = '''
def handler(event, context):
    print("ATTEMPT " + context.aws_request_id)
    raise ValueError("intentional failure")
'''


class AsyncTestBase(StratusTestCase):
    config_yaml = "lambda_async_retry_delay_ms: 300\nlambda_async_throttle_delay_ms: 100\n"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.role = create_function_role(cls.server, "async-role")
        cls.lam = cls.server.client("lambda")
        cls.logs = cls.server.client("logs")

    def create(self, name, code, **kw):
        self.lam.create_function(FunctionName=name, Runtime="python3.11", Role=self.role,
                                 Handler="app.handler", Timeout=10,
                                 Code={"ZipFile": make_zip({"app.py": code})}, **kw)

    def messages(self, name, prefix, want, timeout=30):
        """Waits until the function's log group has `want` lines starting with `prefix`."""
        deadline = time.time() + timeout
        found = []
        while time.time() < deadline:
            try:
                events = self.logs.filter_log_events(logGroupName="/aws/lambda/" + name)["events"]
            except ClientError as e:
                if e.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                events = []
            found = [e["message"].rstrip("\n") for e in events
                     if e["message"].startswith(prefix)]
            if len(found) >= want:
                return found
            time.sleep(0.2)
        return found


class EventInvokeConfigApiTest(AsyncTestBase):
    def setUp(self):
        if not hasattr(type(self), "_made"):
            self.create("cfg-fn", PRINTER)
            self.create("cfg-dest", PRINTER)
            self.lam.publish_version(FunctionName="cfg-fn")
            self.lam.create_alias(FunctionName="cfg-fn", Name="live", FunctionVersion="1")
            type(self)._made = True

    def arn(self, name, qual=None):
        base = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        return base + (":" + qual if qual else "")

    def test_lifecycle(self):
        r = self.lam.put_function_event_invoke_config(FunctionName="cfg-fn",
                                                      MaximumRetryAttempts=1)
        self.assertEqual(r["FunctionArn"], self.arn("cfg-fn", "$LATEST"))
        self.assertEqual(r["MaximumRetryAttempts"], 1)
        self.assertEqual(r["DestinationConfig"], {"OnSuccess": {}, "OnFailure": {}})
        self.assertNotIn("MaximumEventAgeInSeconds", r)
        # Update merges; Put replaces.
        r = self.lam.update_function_event_invoke_config(
            FunctionName="cfg-fn", MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": self.arn("cfg-dest")}})
        self.assertEqual(r["MaximumRetryAttempts"], 1)
        self.assertEqual(r["MaximumEventAgeInSeconds"], 60)
        self.assertEqual(r["DestinationConfig"]["OnFailure"]["Destination"], self.arn("cfg-dest"))
        r = self.lam.put_function_event_invoke_config(FunctionName="cfg-fn",
                                                      MaximumRetryAttempts=0)
        self.assertNotIn("MaximumEventAgeInSeconds", r)
        self.assertEqual(r["DestinationConfig"], {"OnSuccess": {}, "OnFailure": {}})
        # Per qualifier: version and alias.
        self.lam.put_function_event_invoke_config(FunctionName="cfg-fn", Qualifier="1",
                                                  MaximumRetryAttempts=2)
        r = self.lam.put_function_event_invoke_config(FunctionName="cfg-fn:live",
                                                      MaximumRetryAttempts=1)
        self.assertEqual(r["FunctionArn"], self.arn("cfg-fn", "live"))
        got = self.lam.get_function_event_invoke_config(FunctionName="cfg-fn", Qualifier="1")
        self.assertEqual(got["MaximumRetryAttempts"], 2)
        listed = self.lam.list_function_event_invoke_configs(FunctionName="cfg-fn")
        self.assertEqual(sorted(c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]),
                         sorted([self.arn("cfg-fn", "$LATEST"), self.arn("cfg-fn", "1"),
                                 self.arn("cfg-fn", "live")]))
        # The CLI sees the same.
        _, out, _ = self.server.aws("lambda", "get-function-event-invoke-config",
                                    "--function-name", "cfg-fn")
        self.assertEqual(out["MaximumRetryAttempts"], 0)
        for q in ("$LATEST", "1", "live"):
            self.lam.delete_function_event_invoke_config(FunctionName="cfg-fn", Qualifier=q)
        self.assertEqual(self.lam.list_function_event_invoke_configs(
            FunctionName="cfg-fn")["FunctionEventInvokeConfigs"], [])

    def test_errors(self):
        err = self.assertClientError(
            lambda: self.lam.get_function_event_invoke_config(FunctionName="cfg-fn",
                                                              Qualifier="live"),
            "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"],
                         f"The function {self.arn('cfg-fn', 'live')} doesn't have an "
                         "EventInvokeConfig")
        err = self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(FunctionName="nope",
                                                              MaximumRetryAttempts=1),
            "ResourceNotFoundException", 404)
        self.assertEqual(err["Error"]["Message"], "The function doesn't exist.")
        err = self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(FunctionName="cfg-fn"),
            "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"],
                         "You must specify at least one of error handling or destination "
                         "setting.")
        err = self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(
                FunctionName="cfg-fn",
                DestinationConfig={"OnSuccess": {"Destination": self.arn("cfg-fn")}}),
            "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"],
                         "You can't specify the function as a destination for itself.")
        err = self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(
                FunctionName="cfg-fn",
                DestinationConfig={"OnSuccess": {"Destination": self.arn("doesnotexist")}}),
            "InvalidParameterValueException", 400)
        self.assertEqual(err["Error"]["Message"],
                         f"The destination ARN {self.arn('doesnotexist')} is invalid.")
        self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(FunctionName="cfg-fn",
                                                              Qualifier="live2",
                                                              MaximumRetryAttempts=1),
            "ResourceNotFoundException", 404)
        err = self.assertClientError(
            lambda: self.lam.put_function_event_invoke_config(FunctionName="cfg-fn:live",
                                                              Qualifier="1",
                                                              MaximumRetryAttempts=1),
            "InvalidParameterValueException", 400)
        self.assertIn("derived qualifier", err["Error"]["Message"])
        lam = self.server.client("lambda", validate=False)
        self.assertClientError(
            lambda: lam.put_function_event_invoke_config(FunctionName="cfg-fn",
                                                         MaximumRetryAttempts=3),
            "ValidationException", 400)
        self.assertClientError(
            lambda: lam.put_function_event_invoke_config(FunctionName="cfg-fn",
                                                         MaximumEventAgeInSeconds=59),
            "ValidationException", 400)
        self.assertClientError(
            lambda: self.lam.update_function_event_invoke_config(FunctionName="cfg-fn",
                                                                 Qualifier="1",
                                                                 MaximumRetryAttempts=1),
            "ResourceNotFoundException", 404)


@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class AsyncInvokeTest(AsyncTestBase):
    def test_event_runs_and_reaches_on_success_destination(self):
        self.create("ok-fn", PRINTER)
        self.create("ok-sink", PRINTER)
        self.lam.put_function_event_invoke_config(
            FunctionName="ok-fn",
            DestinationConfig={"OnSuccess": {"Destination":
                                             "arn:aws:lambda:us-east-1:000000000000:function:ok-sink"}})
        r = self.lam.invoke(FunctionName="ok-fn", InvocationType="Event",
                            Payload=json.dumps({"n": 1}))
        self.assertEqual(r["StatusCode"], 202)
        rid = r["ResponseMetadata"]["RequestId"]
        self.assertEqual(self.messages("ok-fn", "EVENT ", 1), ['EVENT {"n": 1}'])
        records = self.messages("ok-sink", "EVENT ", 1)
        self.assertEqual(len(records), 1, records)
        record = json.loads(records[0][len("EVENT "):])
        self.assertEqual(record["version"], "1.0")
        self.assertEqual(record["requestContext"]["requestId"], rid)
        self.assertEqual(record["requestContext"]["condition"], "Success")
        self.assertEqual(record["requestContext"]["approximateInvokeCount"], 1)
        self.assertEqual(record["requestContext"]["functionArn"],
                         "arn:aws:lambda:us-east-1:000000000000:function:ok-fn:$LATEST")
        self.assertEqual(record["requestPayload"], {"n": 1})
        self.assertEqual(record["responseContext"], {"statusCode": 200,
                                                     "executedVersion": "$LATEST"})
        self.assertEqual(record["responsePayload"], {"ok": True})

    def test_function_error_is_retried_then_goes_to_on_failure(self):
        self.create("bad-fn", FAILER)
        self.create("bad-sink", PRINTER)
        self.lam.put_function_event_invoke_config(
            FunctionName="bad-fn", MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination":
                                             "arn:aws:lambda:us-east-1:000000000000:function:bad-sink"}})
        # The aws CLI's async invoke, as a user would type it.
        _, out, _ = self.server.aws("lambda", "invoke", "--function-name", "bad-fn",
                                    "--invocation-type", "Event", "--cli-binary-format",
                                    "raw-in-base64-out", "--payload", '{"k": "v"}', "/dev/null")
        self.assertEqual(out["StatusCode"], 202)
        records = self.messages("bad-sink", "EVENT ", 1)
        self.assertEqual(len(records), 1)
        record = json.loads(records[0][len("EVENT "):])
        self.assertEqual(record["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(record["requestContext"]["approximateInvokeCount"], 2)
        self.assertEqual(record["requestPayload"], {"k": "v"})
        self.assertEqual(record["responseContext"]["functionError"], "Unhandled")
        self.assertEqual(record["responsePayload"]["errorType"], "ValueError")
        self.assertEqual(record["responsePayload"]["errorMessage"], "intentional failure")
        # Both attempts ran with the same request id, as AWS's retries do.
        attempts = self.messages("bad-fn", "ATTEMPT ", 2)
        self.assertEqual(len(attempts), 2, attempts)
        self.assertEqual(attempts[0], attempts[1])
        self.assertEqual(attempts[0], "ATTEMPT " + record["requestContext"]["requestId"])
        # No third attempt.
        time.sleep(1.0)
        self.assertEqual(len(self.messages("bad-fn", "ATTEMPT ", 3, timeout=0.5)), 2)

    def test_unknown_function_and_oversized_event(self):
        self.assertClientError(lambda: self.lam.invoke(FunctionName="missing",
                                                       InvocationType="Event", Payload=b"{}"),
                               "ResourceNotFoundException", 404)
        self.create("big-fn", PRINTER)
        big = json.dumps({"x": "a" * 262144})
        self.assertClientError(lambda: self.lam.invoke(FunctionName="big-fn",
                                                       InvocationType="Event", Payload=big),
                               "RequestTooLargeException", 413)

    def test_queued_events_survive_kill_9(self):
        self.create("durable-fn", PRINTER)
        # Reserved concurrency 0: nothing can run, so every event is still queued when the
        # server dies.
        self.lam.put_function_concurrency(FunctionName="durable-fn",
                                          ReservedConcurrentExecutions=0)
        n = 20
        for i in range(n):
            r = self.lam.invoke(FunctionName="durable-fn", InvocationType="Event",
                                Payload=json.dumps({"i": i}))
            self.assertEqual(r["StatusCode"], 202)
        self.server.restart(kill=True)
        lam = self.server.client("lambda")
        type(self).lam = lam
        type(self).logs = self.server.client("logs")
        lam.delete_function_concurrency(FunctionName="durable-fn")
        got = self.messages("durable-fn", "EVENT ", n, timeout=60)
        self.assertEqual(sorted(got), sorted(f'EVENT {{"i": {i}}}' for i in range(n)))
        metrics = self.server_metrics()
        self.assertIn("stratus_lambda_async_succeeded_total", metrics)

    def server_metrics(self):
        import urllib.request
        with urllib.request.urlopen(self.server.endpoint + "/metrics", timeout=5) as r:
            return r.read().decode()


if __name__ == "__main__":
    unittest.main()
