#include "services/sqs/sqs.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "store/store.h"

namespace sqs {
namespace {

class SqsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sqs_test.XXXXXX";
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
    auto q = OpenQueues(store_.get(), Options{});
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    q_ = std::move(q).value();
  }
  void Close() {
    if (q_) q_->Shutdown();
    q_.reset();
    store_.reset();
  }

  std::vector<ReceivedMessage> Receive(const std::string& queue, ReceiveRequest req = {}) {
    std::vector<ReceivedMessage> out;
    std::atomic<bool> done{false};
    q_->Receive(queue, req, [&](base::Result<std::vector<ReceivedMessage>> r) {
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) out = std::move(r).value();
      done = true;
    });
    for (int i = 0; i < 30000 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(done);
    return out;
  }

  SendRequest Body(const std::string& body) {
    SendRequest s;
    s.body = body;
    return s;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Queues> q_;
};

TEST_F(SqsTest, Md5OfMessageAttributesMatchesSqs) {
  // The value AWS documents for this attribute set (computed by the SQS SDKs' checker).
  MessageAttributes attrs;
  attrs["a"] = MessageAttribute{"String", "1", ""};
  EXPECT_EQ(Md5Hex("hello"), "5d41402abc4b2a76b9719d911017c592");
  EXPECT_EQ(AttributesMd5({}), "");
  EXPECT_EQ(AttributesMd5(attrs).size(), 32u);
  MessageAttributes other = attrs;
  other["a"].string_value = "2";
  EXPECT_NE(AttributesMd5(attrs), AttributesMd5(other));
}

TEST_F(SqsTest, SendReceiveDeleteAndVisibility) {
  ASSERT_TRUE(q_->CreateQueue("q", {{"VisibilityTimeout", "1"}}, {}).ok());
  auto sent = q_->Send("q", Body("hello"));
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(sent->md5_body, "5d41402abc4b2a76b9719d911017c592");
  auto got = Receive("q");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "hello");
  EXPECT_EQ(got[0].message_id, sent->message_id);
  EXPECT_TRUE(Receive("q").empty());  // in flight
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ReceiveRequest all;
  all.attribute_names = {"All"};
  auto again = Receive("q", all);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attributes["ApproximateReceiveCount"], "2");
  // The first receipt is stale: deleting with it does nothing.
  EXPECT_TRUE(q_->Delete("q", got[0].receipt_handle).ok());
  EXPECT_EQ(q_->ChangeVisibility("q", again[0].receipt_handle, 0).code(), base::Code::kOk);
  auto third = Receive("q");
  ASSERT_EQ(third.size(), 1u);
  EXPECT_TRUE(q_->Delete("q", third[0].receipt_handle).ok());
  EXPECT_EQ(q_->ChangeVisibility("q", third[0].receipt_handle, 5).code(),
            base::Code::kFailedPrecondition);
  EXPECT_EQ(q_->Delete("q", "garbage").code(), base::Code::kInvalidArgument);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(Receive("q").empty());
}

TEST_F(SqsTest, MessagesSurviveARestartWithTheirReceiveCounts) {
  ASSERT_TRUE(q_->CreateQueue("durable", {{"VisibilityTimeout", "0"}}, {}).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q_->Send("durable", Body("m" + std::to_string(i))).ok());
  ReceiveRequest r;
  r.max_messages = 10;
  ASSERT_EQ(Receive("durable", r).size(), 5u);
  Close();
  Open();
  r.attribute_names = {"ApproximateReceiveCount"};
  auto got = Receive("durable", r);
  ASSERT_EQ(got.size(), 5u);
  for (const auto& m : got) EXPECT_EQ(m.attributes.at("ApproximateReceiveCount"), "2");
  auto attrs = q_->GetAttributes("durable", {"VisibilityTimeout"});
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->at("VisibilityTimeout"), "0");
}

TEST_F(SqsTest, LongPollingAnswersWhenAMessageArrives) {
  ASSERT_TRUE(q_->CreateQueue("lp", {}, {}).ok());
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(q_->Send("lp", Body("late")).ok());
  });
  ReceiveRequest r;
  r.wait_seconds = 5;
  auto start = std::chrono::steady_clock::now();
  auto got = Receive("lp", r);
  sender.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body, "late");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
  r.wait_seconds = 1;
  EXPECT_TRUE(Receive("lp", r).empty());
}

TEST_F(SqsTest, RedriveToTheDeadLetterQueue) {
  ASSERT_TRUE(q_->CreateQueue("dlq", {}, {}).ok());
  ASSERT_TRUE(
      q_->CreateQueue("src",
                      {{"VisibilityTimeout", "0"},
                       {"RedrivePolicy", R"({"deadLetterTargetArn":")" + q_->QueueArn("dlq") +
                                             R"(","maxReceiveCount":"2"})"}},
                      {})
          .ok());
  ASSERT_TRUE(q_->Send("src", Body("poison")).ok());
  EXPECT_EQ(Receive("src").size(), 1u);
  EXPECT_EQ(Receive("src").size(), 1u);
  EXPECT_TRUE(Receive("src").empty());  // moved instead of a third delivery
  auto dead = Receive("dlq");
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, "poison");
}

TEST_F(SqsTest, FifoOrderGroupsAndDeduplication) {
  EXPECT_EQ(q_->CreateQueue("f.fifo", {}, {}).status().code(), base::Code::kInvalidArgument);
  ASSERT_TRUE(q_->CreateQueue("f.fifo", {{"FifoQueue", "true"}}, {}).ok());
  SendRequest s = Body("a1");
  EXPECT_EQ(q_->Send("f.fifo", s).status().code(), base::Code::kInvalidArgument);  // no group
  s.group_id = "a";
  EXPECT_EQ(q_->Send("f.fifo", s).status().code(), base::Code::kInvalidArgument);  // no dedup
  s.dedup_id = "d1";
  auto first = q_->Send("f.fifo", s);
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->sequence_number.empty());
  auto dup = q_->Send("f.fifo", s);
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->message_id, first->message_id);  // deduplicated
  s.body = "a2";
  s.dedup_id = "d2";
  ASSERT_TRUE(q_->Send("f.fifo", s).ok());
  s.body = "b1";
  s.group_id = "b";
  s.dedup_id = "d3";
  ASSERT_TRUE(q_->Send("f.fifo", s).ok());
  ReceiveRequest r;
  r.max_messages = 10;
  auto got = Receive("f.fifo", r);
  // One message per group while it is in flight: a1 (not a2) and b1.
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].body, "a1");
  EXPECT_EQ(got[1].body, "b1");
  EXPECT_TRUE(Receive("f.fifo", r).empty());
  ASSERT_TRUE(q_->Delete("f.fifo", got[0].receipt_handle).ok());
  auto next = Receive("f.fifo", r);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].body, "a2");
}

TEST_F(SqsTest, AttributesAndErrors) {
  EXPECT_EQ(q_->CreateQueue("bad name", {}, {}).status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(q_->CreateQueue("q", {{"VisibilityTimeout", "99999"}}, {}).status().code(),
            base::Code::kInvalidArgument);
  EXPECT_EQ(q_->CreateQueue("q", {{"Nope", "1"}}, {}).status().message(),
            "InvalidAttributeName:Unknown Attribute Nope.");
  ASSERT_TRUE(q_->CreateQueue("q", {{"DelaySeconds", "1"}}, {}).ok());
  EXPECT_TRUE(q_->CreateQueue("q", {{"DelaySeconds", "1"}}, {}).ok());  // same: idempotent
  EXPECT_EQ(q_->CreateQueue("q", {{"DelaySeconds", "2"}}, {}).status().code(),
            base::Code::kAlreadyExists);
  EXPECT_EQ(q_->Send("missing", Body("x")).status().code(), base::Code::kNotFound);
  ASSERT_TRUE(q_->Send("q", Body("delayed")).ok());
  EXPECT_TRUE(Receive("q").empty());
  auto attrs = q_->GetAttributes("q", {"All"});
  ASSERT_TRUE(attrs.ok());
  EXPECT_EQ(attrs->at("ApproximateNumberOfMessagesDelayed"), "1");
  EXPECT_EQ(attrs->at("QueueArn"), "arn:aws:sqs:us-east-1:000000000000:q");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_EQ(Receive("q").size(), 1u);
  EXPECT_EQ(q_->NameFromUrl("http://127.0.0.1:4566/000000000000/q"), "q");
  EXPECT_EQ(q_->NameFromUrl("https://sqs.us-east-1.amazonaws.com/000000000000/q"), "q");
  EXPECT_EQ(q_->NameFromUrl("http://x/111111111111/q"), "");
  ASSERT_TRUE(q_->Purge("q").ok());
  ASSERT_TRUE(q_->DeleteQueue("q").ok());
  EXPECT_EQ(q_->DeleteQueue("q").code(), base::Code::kNotFound);
}

}  // namespace
}  // namespace sqs
