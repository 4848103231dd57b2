"""SQS with real clients: boto3 and the aws CLI (Debian's speak the Query protocol) and raw
JSON-protocol requests (what newer SDKs send), against a real server: queues, attributes,
send/receive/delete, batches, visibility, long polling, FIFO, dead-letter redrive, errors,
and messages surviving kill -9."""
import hashlib
import http.client
import json
import struct
import threading
import time
import unittest

import botocore.auth
import botocore.awsrequest
import botocore.credentials

from harness import StratusTestCase


def attributes_md5(attrs):
    """MD5OfMessageAttributes as the SQS documentation defines it (an independent check)."""
    buf = b""
    for name in sorted(attrs):
        a = attrs[name]
        def put(b):
            return struct.pack(">I", len(b)) + b
        buf += put(name.encode()) + put(a["DataType"].encode())
        if "BinaryValue" in a:
            buf += b"\x02" + put(a["BinaryValue"])
        else:
            buf += b"\x01" + put(a["StringValue"].encode())
    return hashlib.md5(buf).hexdigest()


class SqsTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sqs = cls.server.client("sqs")

    def test_queue_lifecycle_and_attributes(self):
        url = self.sqs.create_queue(QueueName="life", Attributes={"VisibilityTimeout": "5"},
                                    tags={"team": "core"})["QueueUrl"]
        self.assertEqual(url, "%s/000000000000/life" % self.server.endpoint)
        self.assertEqual(self.sqs.get_queue_url(QueueName="life")["QueueUrl"], url)
        # Same attributes: the same queue; different: QueueAlreadyExists.
        self.assertEqual(self.sqs.create_queue(QueueName="life",
                                               Attributes={"VisibilityTimeout": "5"})["QueueUrl"], url)
        self.assertClientError(lambda: self.sqs.create_queue(
            QueueName="life", Attributes={"VisibilityTimeout": "6"}), "QueueAlreadyExists", 400)
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(attrs["VisibilityTimeout"], "5")
        self.assertEqual(attrs["QueueArn"], "arn:aws:sqs:us-east-1:000000000000:life")
        self.assertEqual(attrs["ApproximateNumberOfMessages"], "0")
        self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"DelaySeconds": "3"})
        self.assertEqual(self.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["DelaySeconds"])["Attributes"], {"DelaySeconds": "3"})
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"team": "core"})
        self.sqs.tag_queue(QueueUrl=url, Tags={"env": "test"})
        self.sqs.untag_queue(QueueUrl=url, TagKeys=["team"])
        self.assertEqual(self.sqs.list_queue_tags(QueueUrl=url)["Tags"], {"env": "test"})
        self.assertIn(url, self.sqs.list_queues(QueueNamePrefix="li")["QueueUrls"])
        self.sqs.delete_queue(QueueUrl=url)
        self.assertClientError(lambda: self.sqs.get_queue_url(QueueName="life"),
                               "AWS.SimpleQueueService.NonExistentQueue", 400)

    def test_messages(self):
        url = self.sqs.create_queue(QueueName="msgs")["QueueUrl"]
        attrs = {"kind": {"DataType": "String", "StringValue": "greeting"},
                 "n": {"DataType": "Number", "StringValue": "42"},
                 "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
        sent = self.sqs.send_message(QueueUrl=url, MessageBody="hello ✓", MessageAttributes=attrs)
        self.assertEqual(sent["MD5OfMessageBody"], hashlib.md5("hello ✓".encode()).hexdigest())
        self.assertEqual(sent["MD5OfMessageAttributes"], attributes_md5(attrs))
        got = self.sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                       AttributeNames=["All"])["Messages"]
        self.assertEqual(len(got), 1)
        m = got[0]
        self.assertEqual(m["Body"], "hello ✓")
        self.assertEqual(m["MessageId"], sent["MessageId"])
        self.assertEqual(m["MessageAttributes"]["raw"]["BinaryValue"], b"\x00\x01")
        self.assertEqual(m["MessageAttributes"]["n"]["StringValue"], "42")
        self.assertEqual(m["MD5OfMessageAttributes"], attributes_md5(attrs))
        self.assertEqual(m["Attributes"]["ApproximateReceiveCount"], "1")
        self.assertIn("SentTimestamp", m["Attributes"])
        # In flight: invisible until released.
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))
        self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"],
                                           VisibilityTimeout=0)
        again = self.sqs.receive_message(QueueUrl=url)["Messages"][0]
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=again["ReceiptHandle"])
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url))
        # Batches.
        r = self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "one"}, {"Id": "b", "MessageBody": "two"},
            {"Id": "c", "MessageBody": "three", "DelaySeconds": 1}])
        self.assertEqual(sorted(e["Id"] for e in r["Successful"]), ["a", "b", "c"])
        msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        self.assertEqual(sorted(x["Body"] for x in msgs), ["one", "two"])
        d = self.sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": "x%d" % i, "ReceiptHandle": x["ReceiptHandle"]} for i, x in enumerate(msgs)])
        self.assertEqual(len(d["Successful"]), 2)
        self.assertClientError(lambda: self.sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "same", "MessageBody": "1"}, {"Id": "same", "MessageBody": "2"}]),
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400)
        self.assertClientError(lambda: self.sqs.delete_message(QueueUrl=url, ReceiptHandle="bad"),
                               "ReceiptHandleIsInvalid", 400)
        self.assertClientError(lambda: self.sqs.send_message(QueueUrl=url, MessageBody="\x01"),
                               "InvalidMessageContents", 400)
        self.sqs.purge_queue(QueueUrl=url)

    def test_long_polling(self):
        url = self.sqs.create_queue(QueueName="lp")["QueueUrl"]
        sqs2 = self.server.client("sqs")
        threading.Timer(0.5, lambda: sqs2.send_message(QueueUrl=url, MessageBody="late")).start()
        t0 = time.time()
        got = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=10)
        self.assertEqual(got["Messages"][0]["Body"], "late")
        self.assertLess(time.time() - t0, 8)
        t0 = time.time()
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1))
        self.assertGreaterEqual(time.time() - t0, 0.9)

    def test_fifo_and_dead_letters(self):
        url = self.sqs.create_queue(QueueName="orders.fifo", Attributes={
            "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
        a = self.sqs.send_message(QueueUrl=url, MessageBody="1", MessageGroupId="g")
        b = self.sqs.send_message(QueueUrl=url, MessageBody="1", MessageGroupId="g")
        self.assertEqual(a["MessageId"], b["MessageId"])  # content-based deduplication
        self.assertIn("SequenceNumber", a)
        self.sqs.send_message(QueueUrl=url, MessageBody="2", MessageGroupId="g")
        got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        self.assertEqual([m["Body"] for m in got], ["1"])  # the group is blocked meanwhile
        self.assertClientError(lambda: self.sqs.send_message(QueueUrl=url, MessageBody="x"),
                               "MissingParameter", 400)

        dlq = self.sqs.create_queue(QueueName="dead")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        src = self.sqs.create_queue(QueueName="work", Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})[
            "QueueUrl"]
        self.sqs.send_message(QueueUrl=src, MessageBody="poison")
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=src)["Messages"]), 1)
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=src)["Messages"]), 1)
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=src))
        dead = self.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=2)["Messages"]
        self.assertEqual(dead[0]["Body"], "poison")

    def test_cli(self):
        _, out, _ = self.server.aws("sqs", "create-queue", "--queue-name", "cli")
        url = out["QueueUrl"]
        self.server.aws("sqs", "send-message", "--queue-url", url, "--message-body", "from cli")
        _, out, _ = self.server.aws("sqs", "receive-message", "--queue-url", url)
        self.assertEqual(out["Messages"][0]["Body"], "from cli")

    def test_json_protocol(self):
        """What newer SDKs send: JSON 1.0 with X-Amz-Target, errors with x-amzn-query-error."""
        creds = botocore.credentials.Credentials(self.server.access_key, self.server.secret_key)

        def call(op, body):
            data = json.dumps(body).encode()
            req = botocore.awsrequest.AWSRequest(
                method="POST", url=self.server.endpoint + "/", data=data,
                headers={"X-Amz-Target": "AmazonSQS." + op,
                         "Content-Type": "application/x-amz-json-1.0"})
            botocore.auth.SigV4Auth(creds, "sqs", "us-east-1").add_auth(req)
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
            conn.request("POST", "/", body=data, headers=dict(req.headers.items()))
            r = conn.getresponse()
            out = (r.status, dict(r.getheaders()), json.loads(r.read() or b"{}"))
            conn.close()
            return out

        status, _, out = call("CreateQueue", {"QueueName": "js"})
        self.assertEqual(status, 200)
        url = out["QueueUrl"]
        status, _, out = call("SendMessage", {"QueueUrl": url, "MessageBody": "json",
                                              "MessageAttributes": {"k": {"DataType": "String",
                                                                          "StringValue": "v"}}})
        self.assertEqual(status, 200)
        self.assertEqual(out["MD5OfMessageAttributes"],
                         attributes_md5({"k": {"DataType": "String", "StringValue": "v"}}))
        status, _, out = call("ReceiveMessage", {"QueueUrl": url, "MessageAttributeNames": ["All"]})
        self.assertEqual(out["Messages"][0]["Body"], "json")
        self.assertEqual(out["Messages"][0]["MessageAttributes"]["k"]["StringValue"], "v")
        status, headers, out = call("GetQueueUrl", {"QueueName": "nope"})
        self.assertEqual(status, 400)
        self.assertEqual(out["__type"], "com.amazonaws.sqs#QueueDoesNotExist")
        self.assertEqual(headers["x-amzn-query-error"],
                         "AWS.SimpleQueueService.NonExistentQueue;Sender")

    def test_messages_survive_kill_9(self):
        url = self.sqs.create_queue(QueueName="durable")["QueueUrl"]
        for i in range(30):
            self.sqs.send_message(QueueUrl=url, MessageBody="m%d" % i)
        self.server.restart(kill=True)
        sqs = self.server.client("sqs")
        type(self).sqs = sqs
        bodies = set()
        for _ in range(10):
            r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            for m in r.get("Messages", []):
                bodies.add(m["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if len(bodies) == 30:
                break
        self.assertEqual(bodies, {"m%d" % i for i in range(30)})


if __name__ == "__main__":
    unittest.main()
