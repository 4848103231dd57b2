#include "services/s3/s3.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "services/s3/checksum.h"
#include "services/s3/chunked.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace s3 {
namespace {

TEST(Checksum, KnownValues) {
  // The check values of each algorithm for "123456789", big-endian, base64.
  EXPECT_EQ(ChecksumBase64("CRC32", "123456789"), "y/Q5Jg==");            // cbf43926
  EXPECT_EQ(ChecksumBase64("crc32c", "123456789"), "4waSgw==");           // e3069283
  EXPECT_EQ(ChecksumBase64("CRC64NVME", "123456789"), "rosUhgp5mIg=");    // ae8b14860a799888
  EXPECT_EQ(ChecksumBase64("SHA256", ""), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_EQ(ChecksumBase64("SHA1", "abc"), "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
  EXPECT_EQ(ChecksumBase64("MD5", "x"), "");
  auto c = NewChecksum("CRC32C");
  c->Update("1234");
  c->Update("56789");
  EXPECT_EQ(c->Base64(), "4waSgw==");
  EXPECT_EQ(ChecksumAlgorithmOfHeader("X-Amz-Checksum-Crc32"), "CRC32");
  EXPECT_EQ(ChecksumAlgorithmOfHeader("x-amz-checksum-algorithm"), "");
}

TEST(AwsChunked, SignedChunksVerifyAndTamperingIsRefused) {
  aws::Call::ChunkSigning s{std::string(32, 'k'), std::string(64, 'a'), "20260101T000000Z",
                            "20260101/us-east-1/s3/aws4_request"};
  std::string data(70000, 'x');
  data[12345] = 'y';
  std::string body = EncodeAwsChunked(data, 65536, &s, {});
  auto out = DecodeAwsChunked(body, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &s);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->data, data);
  std::string tampered = body;
  tampered[tampered.find('y')] = 'z';
  auto bad = DecodeAwsChunked(tampered, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("SignatureDoesNotMatch"), std::string::npos);
  // A chunk dropped from the middle breaks the chain.
  aws::Call::ChunkSigning other = s;
  other.seed_signature = std::string(64, 'b');
  EXPECT_FALSE(DecodeAwsChunked(body, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &other).ok());
  // Truncated bodies.
  EXPECT_FALSE(DecodeAwsChunked(body.substr(0, body.size() / 2),
                                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", &s)
                   .ok());
  // Signed trailers.
  std::string with_trailer =
      EncodeAwsChunked(data, 8192, &s, {{"x-amz-checksum-crc32", ChecksumBase64("CRC32", data)}});
  auto t = DecodeAwsChunked(with_trailer, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", &s);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->trailers.size(), 1u);
  EXPECT_EQ(t->trailers[0].second, ChecksumBase64("CRC32", data));
}

TEST(AwsChunked, UnsignedTrailerAndMalformedInput) {
  std::string body = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";
  auto out = DecodeAwsChunked(body, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->data, "hello world");
  ASSERT_EQ(out->trailers.size(), 1u);
  EXPECT_EQ(out->trailers[0].first, "x-amz-checksum-crc32");
  for (const char* bad : {"", "zz\r\nhello\r\n0\r\n\r\n", "ffffffffff\r\nab\r\n0\r\n\r\n",
                          "5\r\nhelloXX0\r\n\r\n", "5\r\nhello\r\n0\r\nnocolon\r\n\r\n",
                          "5\r\nhello\r\n0\r\n\r\ntrailing"}) {
    EXPECT_FALSE(DecodeAwsChunked(bad, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", nullptr).ok())
        << bad;
  }
  EXPECT_FALSE(DecodeAwsChunked(body, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", nullptr).ok());
}

class RecordingSink : public NotificationSink {
 public:
  base::Status Validate(const std::string& arn, const std::string&) override {
    return arn.find("missing") == std::string::npos ? base::Status::Ok()
                                                     : base::NotFound("no such target");
  }
  base::Status Deliver(const std::string& arn, const std::string& event) override {
    std::lock_guard lock(mu);
    if (fail_next > 0) {
      --fail_next;
      return base::Unavailable("busy");
    }
    delivered.emplace_back(arn, event);
    return base::Status::Ok();
  }
  std::vector<std::pair<std::string, std::string>> Take() {
    std::lock_guard lock(mu);
    return delivered;
  }
  std::mutex mu;
  int fail_next = 0;
  std::vector<std::pair<std::string, std::string>> delivered;
};

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/s3_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Open();
  }
  void TearDown() override {
    Close();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Open() {
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    auto st = store::OpenSqliteStore(so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(st).value();
    auto b = store::OpenBlobStore(dir_ + "/blobs", store_.get());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    blobs_ = std::move(b).value();
    Options o;
    o.sink = &sink_;
    o.min_part_size = 4;
    auto s = OpenObjectStore(store_.get(), blobs_.get(), o);
    ASSERT_TRUE(s.ok());
    s3_ = std::move(s).value();
  }
  void Close() {
    if (s3_) s3_->Shutdown();
    s3_.reset();
    blobs_.reset();
    store_.reset();
  }
  std::vector<std::pair<std::string, std::string>> WaitForEvents(size_t n) {
    for (int i = 0; i < 200; ++i) {
      auto got = sink_.Take();
      if (got.size() >= n) return got;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return sink_.Take();
  }

  std::string dir_;
  RecordingSink sink_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<ObjectStore> s3_;
};

TEST_F(ObjectStoreTest, MultipartUploadConcatenatesPartsWithS3sETag) {
  ASSERT_TRUE(s3_->CreateBucket("mpu", "").ok());
  auto u = s3_->CreateUpload("mpu", "big", ObjectInfo{.content_type = "text/plain"}, "", "me");
  ASSERT_TRUE(u.ok());
  auto p2 = s3_->UploadPart("mpu", "big", u->upload_id, 2, "world", {});
  auto p1 = s3_->UploadPart("mpu", "big", u->upload_id, 1, "hello ", {});
  ASSERT_TRUE(p1.ok() && p2.ok());
  // Re-uploading a part replaces it.
  p1 = s3_->UploadPart("mpu", "big", u->upload_id, 1, "HELLO ", {});
  ASSERT_TRUE(p1.ok());
  auto parts = s3_->ListParts("mpu", "big", u->upload_id, 0, 1);
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->parts.size(), 1u);
  EXPECT_TRUE(parts->truncated);
  EXPECT_EQ(parts->next_marker, 1);
  // Wrong order, wrong ETag, unknown upload.
  EXPECT_FALSE(s3_->CompleteUpload("mpu", "big", u->upload_id, {{2, p2->etag}, {1, p1->etag}}).ok());
  EXPECT_FALSE(s3_->CompleteUpload("mpu", "big", u->upload_id, {{1, "\"nope\""}}).ok());
  EXPECT_FALSE(s3_->CompleteUpload("mpu", "big", "bogus", {{1, p1->etag}}).ok());
  EXPECT_FALSE(s3_->CompleteUpload("mpu", "other", u->upload_id, {{1, p1->etag}}).ok());
  auto done = s3_->CompleteUpload("mpu", "big", u->upload_id, {{1, p1->etag}, {2, p2->etag}});
  ASSERT_TRUE(done.ok()) << done.status().ToString();
  EXPECT_EQ(done->size, 11u);
  EXPECT_EQ(done->parts_count, 2);
  auto md5 = [](const std::string& s) { return Md5Hex(s); };
  std::string raw;
  for (const auto& h : {md5("HELLO "), md5("world")}) {
    for (size_t i = 0; i < h.size(); i += 2)
      raw += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
  }
  EXPECT_EQ(done->etag, "\"" + md5(raw) + "-2\"");
  auto head = s3_->HeadObject("mpu", "big");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(s3_->Read(*head).value(), "HELLO world");
  EXPECT_EQ(head->content_type, "text/plain");
  // The upload is gone; the parts' blobs are unreferenced.
  EXPECT_FALSE(s3_->ListParts("mpu", "big", u->upload_id, 0, 10).ok());
  auto ups = s3_->ListUploads("mpu", {});
  ASSERT_TRUE(ups.ok());
  EXPECT_TRUE(ups->uploads.empty());
}

TEST_F(ObjectStoreTest, SmallPartsAndAbortAndBucketDeletion) {
  ASSERT_TRUE(s3_->CreateBucket("mp2", "").ok());
  auto u = s3_->CreateUpload("mp2", "k", ObjectInfo{}, "", "me");
  ASSERT_TRUE(u.ok());
  auto p1 = s3_->UploadPart("mp2", "k", u->upload_id, 1, "ab", {});  // < min_part_size (4)
  auto p2 = s3_->UploadPart("mp2", "k", u->upload_id, 2, "cdef", {});
  auto small = s3_->CompleteUpload("mp2", "k", u->upload_id, {{1, p1->etag}, {2, p2->etag}});
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("EntityTooSmall"), std::string::npos);
  EXPECT_FALSE(s3_->UploadPart("mp2", "k", u->upload_id, 0, "x", {}).ok());
  EXPECT_FALSE(s3_->UploadPart("mp2", "k", u->upload_id, 10001, "x", {}).ok());
  ASSERT_TRUE(s3_->AbortUpload("mp2", "k", u->upload_id).ok());
  EXPECT_FALSE(s3_->AbortUpload("mp2", "k", u->upload_id).ok());
  auto u2 = s3_->CreateUpload("mp2", "k2", ObjectInfo{}, "", "me");
  ASSERT_TRUE(s3_->UploadPart("mp2", "k2", u2->upload_id, 1, "abcd", {}).ok());
  ASSERT_TRUE(s3_->DeleteBucket("mp2").ok());  // aborts the upload in progress
  auto gc = blobs_->Gc(std::chrono::seconds(0));
  ASSERT_TRUE(gc.ok());
  EXPECT_GE(*gc, 3);  // every part's bytes were released
}

TEST_F(ObjectStoreTest, CopySharesBytesAndKeepsOrReplacesMetadata) {
  ASSERT_TRUE(s3_->CreateBucket("src", "").ok());
  ASSERT_TRUE(s3_->CreateBucket("dst", "").ok());
  ObjectInfo meta;
  meta.content_type = "image/png";
  meta.metadata["a"] = "1";
  auto put = s3_->PutObject("src", "k", "bytes", meta);
  ASSERT_TRUE(put.ok());
  auto keep = s3_->CopyObject("src", "k", "dst", "k1", std::nullopt);
  ASSERT_TRUE(keep.ok());
  EXPECT_EQ(keep->digest, put->digest);
  EXPECT_EQ(keep->metadata.at("a"), "1");
  ObjectInfo repl;
  repl.content_type = "text/plain";
  auto replaced = s3_->CopyObject("src", "k", "dst", "k2", repl);
  ASSERT_TRUE(replaced.ok());
  EXPECT_TRUE(replaced->metadata.empty());
  EXPECT_EQ(replaced->content_type, "text/plain");
  // Deleting the source leaves the copies readable.
  ASSERT_TRUE(s3_->DeleteObject("src", "k").ok());
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_EQ(s3_->Read(s3_->HeadObject("dst", "k2").value()).value(), "bytes");
  EXPECT_FALSE(s3_->CopyObject("src", "k", "dst", "k3", std::nullopt).ok());
}

TEST_F(ObjectStoreTest, NotificationsAreQueuedWithTheChangeAndDeliveredInOrder) {
  ASSERT_TRUE(s3_->CreateBucket("evs", "").ok());
  NotificationRule created{"Lambda", "", "arn:aws:lambda:us-east-1:000000000000:function:f",
                           {"s3:ObjectCreated:*"}, "images/", ".jpg"};
  NotificationRule removed{"Queue", "rm", "arn:aws:sqs:us-east-1:000000000000:q",
                           {"s3:ObjectRemoved:Delete"}, "", ""};
  NotificationRule bad{"Lambda", "", "arn:aws:lambda:us-east-1:000000000000:function:missing",
                       {"s3:ObjectCreated:*"}, "", ""};
  EXPECT_FALSE(s3_->PutNotifications("evs", {created, bad}).ok());
  ASSERT_TRUE(s3_->PutNotifications("evs", {created, removed}).ok());
  auto rules = s3_->GetNotifications("evs");
  ASSERT_TRUE(rules.ok());
  ASSERT_EQ(rules->size(), 2u);
  EXPECT_FALSE((*rules)[0].id.empty());
  auto test_event = WaitForEvents(1);  // the queue's s3:TestEvent
  ASSERT_EQ(test_event.size(), 1u);
  EXPECT_NE(test_event[0].second.find("s3:TestEvent"), std::string::npos);
  sink_.fail_next = 1;  // the first delivery fails and is retried
  ASSERT_TRUE(s3_->PutObject("evs", "images/a b.jpg", "jpeg", ObjectInfo{}).ok());
  ASSERT_TRUE(s3_->PutObject("evs", "images/a.png", "png", ObjectInfo{}).ok());  // suffix
  ASSERT_TRUE(s3_->PutObject("evs", "other/a.jpg", "jpeg", ObjectInfo{}).ok());  // prefix
  ASSERT_TRUE(s3_->DeleteObject("evs", "other/a.jpg").ok());
  auto got = WaitForEvents(3);
  ASSERT_EQ(got.size(), 3u);
  // The failed delivery was retried later: order is not kept (the sequencer tells it).
  std::string put_doc, del_doc;
  for (size_t i = 1; i < got.size(); ++i)
    (got[i].first == created.arn ? put_doc : del_doc) = got[i].second;
  auto put = nlohmann::json::parse(put_doc);
  const auto& rec = put["Records"][0];
  EXPECT_EQ(rec["eventName"], "ObjectCreated:Put");
  EXPECT_EQ(rec["eventSource"], "aws:s3");
  EXPECT_EQ(rec["s3"]["bucket"]["name"], "evs");
  EXPECT_EQ(rec["s3"]["object"]["key"], "images/a+b.jpg");
  EXPECT_EQ(rec["s3"]["object"]["size"], 4);
  EXPECT_EQ(rec["s3"]["object"]["eTag"], Md5Hex("jpeg"));
  auto del = nlohmann::json::parse(del_doc);
  EXPECT_EQ(del["Records"][0]["eventName"], "ObjectRemoved:Delete");
  EXPECT_EQ(del["Records"][0]["s3"]["object"]["key"], "other/a.jpg");
  EXPECT_FALSE(del["Records"][0]["s3"]["object"].contains("size"));
  EXPECT_LT(put["Records"][0]["s3"]["object"]["sequencer"].get<std::string>(),
            del["Records"][0]["s3"]["object"]["sequencer"].get<std::string>());
}

TEST_F(ObjectStoreTest, QueuedEventsSurviveARestart) {
  ASSERT_TRUE(s3_->CreateBucket("ev2", "").ok());
  NotificationRule rule{"Lambda", "", "arn:aws:lambda:us-east-1:000000000000:function:f",
                        {"s3:ObjectCreated:Put"}, "", ""};
  ASSERT_TRUE(s3_->PutNotifications("ev2", {rule}).ok());
  sink_.fail_next = 1000;  // nothing gets through before the "crash"
  ASSERT_TRUE(s3_->PutObject("ev2", "k", "v", ObjectInfo{}).ok());
  Close();
  sink_.fail_next = 0;
  Open();
  auto got = WaitForEvents(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].second.find("\"key\":\"k\""), std::string::npos);
}

}  // namespace
}  // namespace s3
