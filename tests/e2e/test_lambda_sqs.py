"""SQS → Lambda: event source mappings created with boto3 poll a queue and invoke a function
with batches of AWS's SQS event; ReportBatchItemFailures keeps failed messages in the
queue, and the queue's redrive policy moves poison messages to its dead-letter queue."""
import json
import time
import unittest

from harness import StratusTestCase
from lambda_util import SKIP_REASON, create_function_role, make_zip, sandbox_capable

HANDLER = '''
import json
def handler(event, context):
    failures = []
    for r in event["Records"]:
        assert r["eventSource"] == "aws:sqs"
        if "bad" in r["body"]:
            failures.append({"itemIdentifier": r["messageId"]})
        else:
            print("GOT " + r["body"] + " " + r["attributes"]["ApproximateReceiveCount"])
    return {"batchItemFailures": failures}
'''


@unittest.skipUnless(sandbox_capable(), SKIP_REASON)
class SqsEventSourceTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lam = cls.server.client("lambda")
        cls.sqs = cls.server.client("sqs")
        cls.logs = cls.server.client("logs")
        cls.role = create_function_role(cls.server, "esm-role")

    def lines(self, fn, prefix):
        try:
            events = self.logs.filter_log_events(logGroupName="/aws/lambda/" + fn)["events"]
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"].strip() for e in events if e["message"].startswith(prefix)]

    def test_batches_partial_failures_and_dead_letters(self):
        dlq = self.sqs.create_queue(QueueName="esm-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        src = self.sqs.create_queue(QueueName="esm-src", Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": 2})})["QueueUrl"]
        src_arn = self.sqs.get_queue_attributes(QueueUrl=src, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.lam.create_function(FunctionName="consumer", Runtime="python3.11", Role=self.role,
                                 Handler="app.handler", Timeout=10,
                                 Code={"ZipFile": make_zip({"app.py": HANDLER})})
        m = self.lam.create_event_source_mapping(
            EventSourceArn=src_arn, FunctionName="consumer", BatchSize=10,
            FunctionResponseTypes=["ReportBatchItemFailures"])
        self.assertEqual(m["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(m["EventSourceArn"], src_arn)
        self.assertEqual(m["FunctionResponseTypes"], ["ReportBatchItemFailures"])
        uuid = m["UUID"]
        for i in range(5):
            self.sqs.send_message(QueueUrl=src, MessageBody="good %d" % i)
        self.sqs.send_message(QueueUrl=src, MessageBody="bad one")

        deadline = time.time() + 45
        got = []
        while time.time() < deadline:
            got = self.lines("consumer", "GOT ")
            if len(got) >= 5:
                break
            time.sleep(0.3)
        self.assertEqual(sorted(g.split()[2] for g in got), ["0", "1", "2", "3", "4"])
        # Each good message was processed once and deleted.
        self.assertTrue(all(g.endswith(" 1") for g in got), got)
        dead = self.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=20)
        self.assertEqual(dead["Messages"][0]["Body"], "bad one")
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=src, WaitTimeSeconds=2))

        self.assertEqual(self.lam.get_event_source_mapping(UUID=uuid)["UUID"], uuid)
        listed = self.lam.list_event_source_mappings(FunctionName="consumer")
        self.assertEqual([x["UUID"] for x in listed["EventSourceMappings"]], [uuid])
        upd = self.lam.update_event_source_mapping(UUID=uuid, Enabled=False, BatchSize=5)
        self.assertEqual(upd["BatchSize"], 5)
        self.assertEqual(self.lam.get_event_source_mapping(UUID=uuid)["State"], "Disabled")
        # Disabled: messages stay in the queue.
        self.sqs.send_message(QueueUrl=src, MessageBody="good later")
        time.sleep(3)
        self.assertFalse(any("good later" in g for g in self.lines("consumer", "GOT ")))
        self.assertEqual(self.sqs.receive_message(QueueUrl=src, WaitTimeSeconds=2)[
            "Messages"][0]["Body"], "good later")
        self.lam.delete_event_source_mapping(UUID=uuid)
        self.assertClientError(lambda: self.lam.get_event_source_mapping(UUID=uuid),
                               "ResourceNotFoundException", 404)

    def test_errors(self):
        self.lam.create_function(FunctionName="esm-errors", Runtime="python3.11", Role=self.role,
                                 Handler="app.handler",
                                 Code={"ZipFile": make_zip({"app.py": HANDLER})})
        self.assertClientError(lambda: self.lam.create_event_source_mapping(
            EventSourceArn="arn:aws:sqs:us-east-1:000000000000:missing",
            FunctionName="esm-errors"), "InvalidParameterValueException", 400)
        q = self.sqs.create_queue(QueueName="esm-q")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.assertClientError(lambda: self.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="nope"), "ResourceNotFoundException", 404)
        self.assertClientError(lambda: self.lam.create_event_source_mapping(
            EventSourceArn=arn, FunctionName="esm-errors", BatchSize=100),
            "InvalidParameterValueException", 400)


if __name__ == "__main__":
    unittest.main()
