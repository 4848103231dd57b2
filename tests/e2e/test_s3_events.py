"""S3 event notifications with boto3: queue destinations get S3's s3:TestEvent and then AWS's
event records for puts, copies, multipart completions and deletes (prefix/suffix filters
applied); destinations are validated (a function must allow s3.amazonaws.com); events
queued before a kill -9 are delivered after the restart."""
import json
import time
import unittest

from harness import StratusTestCase


class S3EventsTest(StratusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s3 = cls.server.client("s3")
        cls.sqs = cls.server.client("sqs")
        cls.lam = cls.server.client("lambda")

    def queue(self, name):
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        return url, arn

    def receive(self, url, n, timeout=20):
        got = []
        deadline = time.time() + timeout
        while len(got) < n and time.time() < deadline:
            for m in self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return got

    def test_queue_notifications(self):
        url, arn = self.queue("s3-events")
        self.s3.create_bucket(Bucket="evq")
        self.s3.put_bucket_notification_configuration(Bucket="evq", NotificationConfiguration={
            "QueueConfigurations": [{
                "Id": "uploads", "QueueArn": arn,
                "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "in/"}]}}}]})
        conf = self.s3.get_bucket_notification_configuration(Bucket="evq")
        self.assertEqual(conf["QueueConfigurations"][0]["QueueArn"], arn)
        self.assertEqual(conf["QueueConfigurations"][0]["Id"], "uploads")
        self.assertEqual(conf["QueueConfigurations"][0]["Filter"]["Key"]["FilterRules"],
                         [{"Name": "Prefix", "Value": "in/"}])
        test = self.receive(url, 1)
        self.assertEqual(test[0]["Event"], "s3:TestEvent")
        self.assertEqual(test[0]["Bucket"], "evq")

        self.s3.put_object(Bucket="evq", Key="in/a file.txt", Body=b"12345")
        self.s3.put_object(Bucket="evq", Key="out/ignored.txt", Body=b"x")
        self.s3.copy_object(Bucket="evq", Key="in/copy.txt", CopySource="evq/in/a file.txt")
        up = self.s3.create_multipart_upload(Bucket="evq", Key="in/mp")["UploadId"]
        e = self.s3.upload_part(Bucket="evq", Key="in/mp", UploadId=up, PartNumber=1,
                                Body=b"p")["ETag"]
        self.s3.complete_multipart_upload(Bucket="evq", Key="in/mp", UploadId=up,
                                          MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
        self.s3.delete_object(Bucket="evq", Key="in/copy.txt")
        records = [r for m in self.receive(url, 4) for r in m["Records"]]
        by_name = {r["eventName"]: r for r in records}
        self.assertEqual(sorted(by_name), ["ObjectCreated:CompleteMultipartUpload",
                                           "ObjectCreated:Copy", "ObjectCreated:Put",
                                           "ObjectRemoved:Delete"])
        put = by_name["ObjectCreated:Put"]
        self.assertEqual(put["eventSource"], "aws:s3")
        self.assertEqual(put["eventVersion"], "2.1")
        self.assertEqual(put["awsRegion"], "us-east-1")
        self.assertEqual(put["s3"]["configurationId"], "uploads")
        self.assertEqual(put["s3"]["bucket"]["arn"], "arn:aws:s3:::evq")
        self.assertEqual(put["s3"]["object"]["key"], "in/a+file.txt")
        self.assertEqual(put["s3"]["object"]["size"], 5)
        self.assertEqual(put["s3"]["object"]["eTag"], "827ccb0eea8a706c4c34a16891f84e7b")
        self.assertTrue(put["s3"]["object"]["sequencer"])
        self.assertNotIn("size", by_name["ObjectRemoved:Delete"]["s3"]["object"])
        self.assertEqual(self.receive(url, 1, timeout=2), [])  # out/ was filtered

        # Clearing the configuration stops events.
        self.s3.put_bucket_notification_configuration(Bucket="evq", NotificationConfiguration={})
        self.assertEqual(
            {k: v for k, v in self.s3.get_bucket_notification_configuration(Bucket="evq").items()
             if k != "ResponseMetadata"}, {})
        self.s3.put_object(Bucket="evq", Key="in/after", Body=b"x")
        self.assertEqual(self.receive(url, 1, timeout=2), [])

    def test_destinations_are_validated(self):
        self.s3.create_bucket(Bucket="evv")
        bad = [
            {"QueueConfigurations": [{"QueueArn": "arn:aws:sqs:us-east-1:000000000000:nope",
                                      "Events": ["s3:ObjectCreated:*"]}]},
            {"LambdaFunctionConfigurations": [{
                "LambdaFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:nope",
                "Events": ["s3:ObjectCreated:*"]}]},
        ]
        for conf in bad:
            self.assertClientError(lambda: self.s3.put_bucket_notification_configuration(
                Bucket="evv", NotificationConfiguration=conf), "InvalidArgument", 400)
        _, arn = self.queue("s3-events-v")
        self.assertClientError(lambda: self.s3.put_bucket_notification_configuration(
            Bucket="evv", NotificationConfiguration={"QueueConfigurations": [{
                "QueueArn": arn, "Events": ["s3:ObjectCreated:Bogus"]}]}), "InvalidArgument", 400)
        self.assertClientError(lambda: self.s3.put_bucket_notification_configuration(
            Bucket="nobucket", NotificationConfiguration={}), "NoSuchBucket", 404)

    def test_queued_events_survive_kill_9(self):
        url, arn = self.queue("s3-events-k")
        self.s3.create_bucket(Bucket="evk")
        self.s3.put_bucket_notification_configuration(Bucket="evk", NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        for i in range(20):
            self.s3.put_object(Bucket="evk", Key="k%d" % i, Body=b"x")
        self.server.restart(kill=True)
        self.__class__.s3 = self.server.client("s3")
        self.__class__.sqs = self.server.client("sqs")
        keys = set()
        deadline = time.time() + 30
        while len(keys) < 20 and time.time() < deadline:
            for m in self.receive(url, 1, timeout=2):
                for r in m.get("Records", []):
                    keys.add(r["s3"]["object"]["key"])
        self.assertEqual(keys, {"k%d" % i for i in range(20)})


if __name__ == "__main__":
    unittest.main()
