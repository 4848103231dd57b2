"""CloudWatch Logs through boto3, the aws CLI and `stratus logs`: groups, streams, events,
pagination, AWS's errors, durability across kill -9, and following a function's logs."""
import json
import os
import queue
import subprocess
import threading
import time
import unittest

from harness import STRATUS_BIN, StratusTestCase


def now_ms():
    return int(time.time() * 1000)


class LogsTest(StratusTestCase):
    def test_groups_streams_and_errors(self):
        logs = self.server.client("logs")
        logs.create_log_group(logGroupName="/t1/lambda/alpha", tags={"env": "test"})
        logs.create_log_group(logGroupName="/t1/lambda/beta")
        logs.create_log_group(logGroupName="/t1/other/gamma")
        resp = self.assertClientError(lambda: logs.create_log_group(logGroupName="/t1/lambda/alpha"),
                                      "ResourceAlreadyExistsException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified log group already exists")

        groups = logs.describe_log_groups(logGroupNamePrefix="/t1/lambda/")["logGroups"]
        self.assertEqual([g["logGroupName"] for g in groups], ["/t1/lambda/alpha", "/t1/lambda/beta"])
        g = groups[0]
        self.assertEqual(g["arn"], "arn:aws:logs:us-east-1:000000000000:log-group:/t1/lambda/alpha:*")
        if "logGroupArn" in g:  # older botocore models drop fields they do not know
            self.assertEqual(g["logGroupArn"], "arn:aws:logs:us-east-1:000000000000:log-group:/t1/lambda/alpha")
        self.assertEqual(g["storedBytes"], 0)
        self.assertEqual(g["metricFilterCount"], 0)
        self.assertEqual(g.get("logGroupClass", "STANDARD"), "STANDARD")
        self.assertAlmostEqual(g["creationTime"], now_ms(), delta=60000)
        self.assertEqual(logs.list_tags_log_group(logGroupName="/t1/lambda/alpha")["tags"], {"env": "test"})
        page = logs.describe_log_groups(logGroupNamePrefix="/t1/", limit=2)
        self.assertEqual(len(page["logGroups"]), 2)
        rest = logs.describe_log_groups(logGroupNamePrefix="/t1/", limit=2, nextToken=page["nextToken"])
        self.assertEqual([g["logGroupName"] for g in rest["logGroups"]], ["/t1/other/gamma"])
        self.assertNotIn("nextToken", rest)
        pattern = logs.describe_log_groups(logGroupNamePattern="r/gam")["logGroups"]
        self.assertEqual([g["logGroupName"] for g in pattern], ["/t1/other/gamma"])
        resp = self.assertClientError(
            lambda: logs.describe_log_groups(logGroupNamePrefix="/a", logGroupNamePattern="b"),
            "InvalidParameterException", 400)
        self.assertEqual(resp["Error"]["Message"],
                         "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")

        logs.create_log_stream(logGroupName="/t1/lambda/alpha", logStreamName="2026/11/23/[$LATEST]abc")
        resp = self.assertClientError(
            lambda: logs.create_log_stream(logGroupName="/t1/lambda/alpha",
                                           logStreamName="2026/11/23/[$LATEST]abc"),
            "ResourceAlreadyExistsException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified log stream already exists")
        resp = self.assertClientError(
            lambda: logs.create_log_stream(logGroupName="/nope", logStreamName="s"),
            "ResourceNotFoundException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified log group does not exist.")
        streams = logs.describe_log_streams(logGroupName="/t1/lambda/alpha")["logStreams"]
        self.assertEqual(len(streams), 1)
        self.assertEqual(streams[0]["arn"],
                         "arn:aws:logs:us-east-1:000000000000:log-group:/t1/lambda/alpha:log-stream:"
                         "2026/11/23/[$LATEST]abc")
        self.assertEqual(streams[0]["storedBytes"], 0)
        self.assertNotIn("lastEventTimestamp", streams[0])
        model = logs.meta.service_model.operation_model("DescribeLogStreams")
        if "logGroupIdentifier" in model.input_shape.members:  # newer botocore only
            by_arn = self.server.client("logs", validate=False).describe_log_streams(
                logGroupIdentifier="arn:aws:logs:us-east-1:000000000000:log-group:/t1/lambda/alpha")
            self.assertEqual(by_arn["logStreams"][0]["logStreamName"], "2026/11/23/[$LATEST]abc")
        self.assertClientError(lambda: logs.describe_log_streams(logGroupName="/nope"),
                               "ResourceNotFoundException", 400)
        self.assertClientError(
            lambda: logs.get_log_events(logGroupName="/t1/lambda/alpha", logStreamName="missing"),
            "ResourceNotFoundException", 400)

        logs.put_retention_policy(logGroupName="/t1/lambda/alpha", retentionInDays=7)
        g = logs.describe_log_groups(logGroupNamePrefix="/t1/lambda/alpha")["logGroups"][0]
        self.assertEqual(g["retentionInDays"], 7)
        self.assertClientError(
            lambda: logs.put_retention_policy(logGroupName="/t1/lambda/alpha", retentionInDays=2),
            "InvalidParameterException", 400)
        logs.delete_retention_policy(logGroupName="/t1/lambda/alpha")
        g = logs.describe_log_groups(logGroupNamePrefix="/t1/lambda/alpha")["logGroups"][0]
        self.assertNotIn("retentionInDays", g)

        logs.delete_log_stream(logGroupName="/t1/lambda/alpha", logStreamName="2026/11/23/[$LATEST]abc")
        self.assertClientError(
            lambda: logs.delete_log_stream(logGroupName="/t1/lambda/alpha",
                                           logStreamName="2026/11/23/[$LATEST]abc"),
            "ResourceNotFoundException", 400)
        for name in ("/t1/lambda/alpha", "/t1/lambda/beta", "/t1/other/gamma"):
            logs.delete_log_group(logGroupName=name)
        self.assertClientError(lambda: logs.delete_log_group(logGroupName="/t1/other/gamma"),
                               "ResourceNotFoundException", 400)

    def test_events_pagination_and_validation(self):
        logs = self.server.client("logs")
        unchecked = self.server.client("logs", validate=False)
        group = "/test/events"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="a")
        logs.create_log_stream(logGroupName=group, logStreamName="b")
        base = now_ms() - 60000
        for stream, parity in (("a", 0), ("b", 1)):
            events = [{"timestamp": base + i, "message": f"{stream} event {i} {'ERROR' if i % 5 == 0 else 'INFO'}"}
                      for i in range(parity, 30, 2)]
            out = logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events,
                                      sequenceToken="ignored")
            self.assertIn("nextSequenceToken", out)
            self.assertNotIn("rejectedLogEventsInfo", out)

        # GetLogEvents, forward from the head, ten at a time, until the token repeats.
        seen, token = [], None
        for _ in range(10):
            kwargs = {"nextToken": token} if token else {"startFromHead": True}
            out = logs.get_log_events(logGroupName=group, logStreamName="a", limit=4, **kwargs)
            seen += [e["message"] for e in out["events"]]
            self.assertRegex(out["nextForwardToken"], r"^f/\d{56}$")
            self.assertRegex(out["nextBackwardToken"], r"^b/\d{56}$")
            if out["nextForwardToken"] == token:
                break
            token = out["nextForwardToken"]
        self.assertEqual(seen, [f"a event {i} {'ERROR' if i % 5 == 0 else 'INFO'}" for i in range(0, 30, 2)])
        # The default (not from the head) is the newest events.
        tail = logs.get_log_events(logGroupName=group, logStreamName="a", limit=2)["events"]
        self.assertEqual([e["timestamp"] for e in tail], [base + 26, base + 28])
        self.assertIn("ingestionTime", tail[0])

        # FilterLogEvents interleaves streams by time and pages with nextToken.
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group,
                                                                 PaginationConfig={"PageSize": 7})
        events = [e for p in pages for e in p["events"]]
        self.assertEqual([e["timestamp"] for e in events], [base + i for i in range(30)])
        self.assertEqual(len({e["eventId"] for e in events}), 30)
        self.assertEqual(events[1]["logStreamName"], "b")
        errors = logs.filter_log_events(logGroupName=group, filterPattern="ERROR")["events"]
        self.assertEqual([e["timestamp"] - base for e in errors], [0, 5, 10, 15, 20, 25])
        either = logs.filter_log_events(logGroupName=group, filterPattern='?"b event 1 " ?"a event 2 "')["events"]
        self.assertEqual([e["message"] for e in either], ["b event 1 INFO", "a event 2 INFO"])
        window = logs.filter_log_events(logGroupName=group, logStreamNames=["a"],
                                        startTime=base + 10, endTime=base + 16)["events"]
        self.assertEqual([e["timestamp"] - base for e in window], [10, 12, 14])

        # AWS's errors.
        resp = self.assertClientError(
            lambda: logs.put_log_events(logGroupName=group, logStreamName="a", logEvents=[
                {"timestamp": base + 100, "message": "x"}, {"timestamp": base + 99, "message": "y"}]),
            "InvalidParameterException", 400)
        self.assertEqual(resp["Error"]["Message"],
                         "Log events in a single PutLogEvents request must be in chronological order.")
        resp = self.assertClientError(
            lambda: logs.put_log_events(logGroupName=group, logStreamName="zz",
                                        logEvents=[{"timestamp": base, "message": "x"}]),
            "ResourceNotFoundException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified log stream does not exist.")
        resp = self.assertClientError(
            lambda: logs.put_log_events(logGroupName="/nope", logStreamName="zz",
                                        logEvents=[{"timestamp": base, "message": "x"}]),
            "ResourceNotFoundException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified log group does not exist.")
        resp = self.assertClientError(
            lambda: unchecked.get_log_events(logGroupName=group, logStreamName="a", limit=10001),
            "InvalidParameterException", 400)
        self.assertEqual(resp["Error"]["Message"],
                         "1 validation error detected: Value '10001' at 'limit' failed to satisfy "
                         "constraint: Member must have value less than or equal to 10000")
        resp = self.assertClientError(
            lambda: logs.get_log_events(logGroupName=group, logStreamName="a", nextToken="garbage"),
            "InvalidParameterException", 400)
        self.assertEqual(resp["Error"]["Message"], "The specified nextToken is invalid.")
        self.assertClientError(
            lambda: logs.filter_log_events(logGroupName=group, nextToken="garbage"),
            "InvalidParameterException", 400)
        big = [{"timestamp": base, "message": "x" * 200000} for _ in range(6)]
        self.assertClientError(lambda: logs.put_log_events(logGroupName=group, logStreamName="a",
                                                           logEvents=big),
                               "InvalidParameterException", 400)

        # Too new / too old events are reported, the rest stored.
        out = logs.put_log_events(logGroupName=group, logStreamName="b", logEvents=[
            {"timestamp": now_ms(), "message": "fresh"},
            {"timestamp": now_ms() + 3 * 3600 * 1000, "message": "future"}])
        self.assertEqual(out["rejectedLogEventsInfo"], {"tooNewLogEventStartIndex": 1})
        out = logs.put_log_events(logGroupName=group, logStreamName="b", logEvents=[
            {"timestamp": now_ms() - 15 * 86400 * 1000, "message": "ancient"},
            {"timestamp": now_ms() - 15 * 86400 * 1000 + 1, "message": "ancient2"}])
        self.assertEqual(out["rejectedLogEventsInfo"], {"tooOldLogEventEndIndex": 1})
        msgs = [e["message"] for e in logs.filter_log_events(logGroupName=group, logStreamNames=["b"])["events"]]
        self.assertIn("fresh", msgs)
        self.assertNotIn("future", msgs)
        self.assertNotIn("ancient", msgs)

        stream = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime",
                                           descending=True)["logStreams"][0]
        self.assertEqual(stream["logStreamName"], "b")
        self.assertEqual(stream["firstEventTimestamp"], base + 1)
        self.assertGreater(stream["lastIngestionTime"], base)
        self.assertGreater(stream["storedBytes"], 0)

    def test_aws_cli(self):
        group = "/cli/group"
        self.server.aws("logs", "create-log-group", "--log-group-name", group)
        self.server.aws("logs", "create-log-stream", "--log-group-name", group, "--log-stream-name", "s")
        ts = now_ms()
        self.server.aws("logs", "put-log-events", "--log-group-name", group, "--log-stream-name", "s",
                        "--log-events", json.dumps([{"timestamp": ts, "message": "hello from cli"},
                                                    {"timestamp": ts + 1, "message": "second line"}]))
        _, out, _ = self.server.aws("logs", "get-log-events", "--log-group-name", group,
                                    "--log-stream-name", "s", "--start-from-head")
        self.assertEqual([e["message"] for e in out["events"]], ["hello from cli", "second line"])
        _, out, _ = self.server.aws("logs", "filter-log-events", "--log-group-name", group,
                                    "--filter-pattern", "second")
        self.assertEqual([e["message"] for e in out["events"]], ["second line"])
        _, out, _ = self.server.aws("logs", "describe-log-groups", "--log-group-name-prefix", "/cli/")
        self.assertEqual(out["logGroups"][0]["logGroupName"], group)
        code, _, err = self.server.aws("logs", "create-log-group", "--log-group-name", group, check=False)
        self.assertNotEqual(code, 0)
        self.assertIn("ResourceAlreadyExistsException", err)
        code, _, err = self.server.aws("logs", "get-log-events", "--log-group-name", "/cli/none",
                                       "--log-stream-name", "s", check=False)
        self.assertIn("ResourceNotFoundException", err)
        self.assertIn("The specified log group does not exist.", err)

    def test_iam_user_needs_logs_actions(self):
        iam = self.server.client("iam")
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        logs = self.server.client("logs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
        self.server.client("logs").create_log_group(logGroupName="/iam/allowed")
        resp = self.assertClientError(lambda: logs.describe_log_streams(logGroupName="/iam/allowed"),
                                      "AccessDeniedException")
        self.assertIn("logs:DescribeLogStreams", resp["Error"]["Message"])
        iam.put_user_policy(UserName="reader", PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "logs:Describe*",
                "Resource": "arn:aws:logs:us-east-1:000000000000:log-group:/iam/allowed:*"}]}))
        deadline = time.time() + 5
        while True:
            try:
                logs.describe_log_streams(logGroupName="/iam/allowed")
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.server.client("logs").create_log_group(logGroupName="/iam/other")
        self.assertClientError(lambda: logs.describe_log_streams(logGroupName="/iam/other"),
                               "AccessDeniedException")

    def test_acknowledged_events_survive_kill_9(self):
        logs = self.server.client("logs")
        group = "/durable/group"
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        ts = now_ms()
        for i in range(20):
            logs.put_log_events(logGroupName=group, logStreamName="s",
                                logEvents=[{"timestamp": ts + i, "message": f"durable {i}"}])
        self.server.restart(kill=True)
        logs = self.server.client("logs")
        out = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
        self.assertEqual([e["message"] for e in out["events"]], [f"durable {i}" for i in range(20)])
        stream = logs.describe_log_streams(logGroupName=group)["logStreams"][0]
        self.assertEqual(stream["lastEventTimestamp"], ts + 19)
        # Still writable after the restart (stream metadata reloaded from the store).
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": ts + 20, "message": "after restart"}])
        out = logs.get_log_events(logGroupName=group, logStreamName="s", limit=1)
        self.assertEqual(out["events"][0]["message"], "after restart")


class StratusLogsCliTest(StratusTestCase):
    def stratus_logs(self, *args):
        return [STRATUS_BIN, "logs", *args, "--endpoint-url", self.server.endpoint,
                "--data-dir", self.server.data_dir]

    def seed(self, group, stream, messages, ts):
        logs = self.server.client("logs")
        try:
            logs.create_log_group(logGroupName=group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.put_log_events(logGroupName=group, logStreamName=stream,
                            logEvents=[{"timestamp": ts + i, "message": m} for i, m in enumerate(messages)])

    def test_prints_like_logs_tail(self):
        stream = "2026/11/23/[$LATEST]0123456789abcdef0123456789abcdef"
        ts = now_ms() - 5000
        self.seed("/aws/lambda/x", stream, ["START RequestId: 1", "hello world\n", "END RequestId: 1"], ts)
        self.seed("/aws/lambda/x", stream, ["too old to show"], now_ms() - 3600 * 1000)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        p = subprocess.run(self.stratus_logs("x"), capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(len(lines), 3, p.stdout)
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 ")
        self.assertTrue(lines[0].endswith(f" {stream} START RequestId: 1"), lines[0])
        self.assertTrue(lines[1].endswith(f" {stream} hello world"), lines[1])
        p = subprocess.run(self.stratus_logs("x", "--since", "2h"), capture_output=True, text=True,
                           timeout=30, env=env)
        self.assertEqual(len(p.stdout.splitlines()), 4, p.stdout)
        self.assertIn("too old to show", p.stdout.splitlines()[0])
        # A function that never logged.
        p = subprocess.run(self.stratus_logs("nobody"), capture_output=True, text=True, timeout=30, env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ResourceNotFoundException", p.stderr)

    def test_follow_picks_up_new_events(self):
        ts = now_ms() - 1000
        self.seed("/aws/lambda/follow", "s1", ["first"], ts)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        proc = subprocess.Popen(self.stratus_logs("follow", "--follow"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in proc.stdout], daemon=True).start()
        try:
            self.assertIn("s1 first", lines.get(timeout=15))
            self.seed("/aws/lambda/follow", "s2", ["second", "third"], now_ms())
            self.assertIn("s2 second", lines.get(timeout=15))
            self.assertIn("s2 third", lines.get(timeout=15))
            # Nothing is printed twice.
            with self.assertRaises(queue.Empty):
                lines.get(timeout=2.5)
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    unittest.main()
