#include "services/lambda/async_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "services/lambda/test_fixture.h"

namespace lambda {
namespace {

using nlohmann::json;

// Runs nothing: answers each invocation with what `script` says for (function, attempt).
class FakeInvoker : public Invoker {
 public:
  using Script = std::function<base::Result<InvokeResult>(const InvokeRequest&, int attempt)>;
  FakeInvoker(Lambda* l, Script script) : l_(l), script_(std::move(script)) {}

  void Invoke(InvokeRequest req, std::function<void(base::Result<InvokeResult>)> done) override {
    auto fn = l_->GetFunction(req.function_name, req.qualifier);
    if (!fn.ok()) return done(fn.status());
    if (req.type == InvocationType::kDryRun) {
      InvokeResult r;
      r.status = 204;
      return done(r);
    }
    int attempt;
    {
      std::lock_guard lock(mu_);
      calls_.push_back(req);
      attempt = ++attempts_[req.function_name + "/" + req.request_id];
    }
    if (hold_) {
      std::lock_guard lock(mu_);
      held_.push_back(std::move(done));
      return;
    }
    done(script_(req, attempt));
  }
  std::map<std::string, FunctionStats> Stats() const override { return {}; }
  void Shutdown() override {}

  std::vector<InvokeRequest> Calls(const std::string& fn) {
    std::lock_guard lock(mu_);
    std::vector<InvokeRequest> out;
    for (const auto& c : calls_)
      if (c.function_name == fn) out.push_back(c);
    return out;
  }
  bool hold_ = false;  // never answer (an invocation running when the server dies)

 private:
  Lambda* l_;
  Script script_;
  std::mutex mu_;
  std::vector<InvokeRequest> calls_;
  std::map<std::string, int> attempts_;
  std::vector<std::function<void(base::Result<InvokeResult>)>> held_;
};

base::Result<InvokeResult> Ok(const std::string& payload) {
  InvokeResult r;
  r.payload = payload;
  r.executed_version = "$LATEST";
  return r;
}
base::Result<InvokeResult> Unhandled() {
  InvokeResult r;
  r.payload = R"({"errorMessage":"boom","errorType":"Exception"})";
  r.function_error = "Unhandled";
  r.executed_version = "$LATEST";
  return r;
}

class RecordingSink : public DestinationSink {
 public:
  base::Status Check(const std::string& arn) override {
    if (arn.rfind("arn:aws:sqs:", 0) == 0) return base::Status::Ok();
    return base::InvalidArgument("The destination ARN " + arn + " is invalid.");
  }
  base::Status Send(const std::string& arn, const std::string& body) override {
    std::lock_guard lock(mu_);
    sent.emplace_back(arn, body);
    return base::Status::Ok();
  }
  std::vector<std::pair<std::string, std::string>> Sent() {
    std::lock_guard lock(mu_);
    return sent;
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::string>> sent;
};

class AsyncQueueTest : public testing::LambdaTest {
 protected:
  void SetUp() override {
    LambdaTest::SetUp();
    for (const char* name : {"fn", "sink"})
      ASSERT_TRUE(lambda_->CreateFunction(Request(name)).ok());
  }
  void TearDown() override {
    if (queue_) queue_->Shutdown();
    queue_.reset();
    LambdaTest::TearDown();
  }

  void Start(FakeInvoker* invoker, DestinationSink* sink = nullptr,
             std::chrono::milliseconds retry_delay = std::chrono::milliseconds(10)) {
    AsyncQueueOptions o;
    o.lambda = lambda_.get();
    o.invoker = invoker;
    o.store = store_.get();
    o.sink = sink;
    o.retry_delay = retry_delay;
    o.throttle_delay = std::chrono::milliseconds(5);
    auto q = StartAsyncQueue(o);
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queue_ = std::move(q).value();
  }

  std::string Enqueue(const std::string& fn, const std::string& payload) {
    InvokeRequest r;
    r.function_name = fn;
    r.type = InvocationType::kEvent;
    r.payload = payload;
    base::Result<std::string> out = base::Internal("no answer");
    std::atomic<bool> done{false};
    queue_->Enqueue(std::move(r), [&](base::Result<std::string> res) {
      out = std::move(res);
      done = true;
    });
    for (int i = 0; i < 2000 && !done; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(done);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? out.value() : "";
  }

  int64_t QueuedInStore() {
    auto rr = store_->Range(store::KeyRange::Prefix("/lambda/async/q/"));
    return rr.ok() ? static_cast<int64_t>(rr->kvs.size()) : -1;
  }

  template <typename Pred>
  bool WaitFor(Pred pred) {
    for (int i = 0; i < 5000; ++i) {
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
  }

  std::unique_ptr<AsyncQueue> queue_;
};

TEST_F(AsyncQueueTest, RunsOnceAndLeavesTheQueue) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  Start(&inv);
  std::string id = Enqueue("fn", R"({"a":1})");
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().succeeded == 1; }));
  auto calls = inv.Calls("fn");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].payload, R"({"a":1})");
  EXPECT_EQ(calls[0].request_id, id);
  EXPECT_EQ(calls[0].type, InvocationType::kRequestResponse);
  EXPECT_TRUE(WaitFor([&] { return QueuedInStore() == 0; }));
}

TEST_F(AsyncQueueTest, RefusesUnknownFunctionsAndLargeEvents) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  Start(&inv);
  InvokeRequest r;
  r.function_name = "missing";
  base::Status st;
  queue_->Enqueue(r, [&](base::Result<std::string> res) { st = res.status(); });
  EXPECT_EQ(st.code(), base::Code::kNotFound);
  r.function_name = "fn";
  r.payload.assign(262145, 'x');
  queue_->Enqueue(r, [&](base::Result<std::string> res) { st = res.status(); });
  EXPECT_EQ(st.code(), base::Code::kInvalidArgument);
  EXPECT_EQ(st.message(), "262145 262144");
  EXPECT_EQ(QueuedInStore(), 0);
}

TEST_F(AsyncQueueTest, RetriesFunctionErrorsThenSendsTheFailureRecord) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest& r, int) {
    return r.function_name == "fn" ? Unhandled() : Ok("{}");
  });
  EventInvokeConfig cfg;
  cfg.on_failure = lambda_->FunctionArn("sink");
  ASSERT_TRUE(lambda_->PutEventInvokeConfig("fn", cfg, false).ok());
  Start(&inv);
  std::string id = Enqueue("fn", R"({"k":"v"})");
  ASSERT_TRUE(WaitFor([&] { return inv.Calls("sink").size() == 1; }));
  EXPECT_EQ(inv.Calls("fn").size(), 3u);  // the first attempt and 2 retries (the default)
  json record = json::parse(inv.Calls("sink")[0].payload);
  EXPECT_EQ(record["version"], "1.0");
  EXPECT_EQ(record["requestContext"]["requestId"], id);
  EXPECT_EQ(record["requestContext"]["condition"], "RetriesExhausted");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 3);
  EXPECT_EQ(record["requestContext"]["functionArn"], lambda_->FunctionArn("fn", "$LATEST"));
  EXPECT_EQ(record["requestPayload"], json::parse(R"({"k":"v"})"));
  EXPECT_EQ(record["responseContext"]["functionError"], "Unhandled");
  EXPECT_EQ(record["responsePayload"]["errorMessage"], "boom");
  EXPECT_TRUE(WaitFor([&] { return QueuedInStore() == 0 && queue_->Stats().succeeded == 1; }));
  EXPECT_EQ(queue_->Stats().failed, 1u);
  EXPECT_EQ(queue_->Stats().retried, 2u);
}

TEST_F(AsyncQueueTest, ZeroRetriesAndEventAge) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Unhandled(); });
  RecordingSink sink;
  EventInvokeConfig cfg;
  cfg.maximum_event_age_seconds = 60;
  cfg.on_failure = "arn:aws:sqs:us-east-1:000000000000:dlq";
  ASSERT_TRUE(lambda_->PutEventInvokeConfig("fn", cfg, false).ok());
  // The first retry would come after the event is a minute old: it fails at once.
  Start(&inv, &sink, std::chrono::seconds(61));
  Enqueue("fn", "{}");
  ASSERT_TRUE(WaitFor([&] { return sink.Sent().size() == 1; }));
  EXPECT_EQ(inv.Calls("fn").size(), 1u);
  json record = json::parse(sink.Sent()[0].second);
  EXPECT_EQ(sink.Sent()[0].first, "arn:aws:sqs:us-east-1:000000000000:dlq");
  EXPECT_EQ(record["requestContext"]["condition"], "EventAgeExceeded");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 1);
}

TEST_F(AsyncQueueTest, ThrottlesAreRetriedWithoutCountingAsAttempts) {
  FakeInvoker inv(
      lambda_.get(), [](const InvokeRequest&, int attempt) -> base::Result<InvokeResult> {
        if (attempt <= 3)
          return base::Status(base::Code::kResourceExhausted, "ConcurrentInvocationLimitExceeded");
        return Ok(R"({"done":true})");
      });
  RecordingSink sink;
  EventInvokeConfig cfg;
  cfg.on_success = "arn:aws:sqs:us-east-1:000000000000:ok";
  ASSERT_TRUE(lambda_->PutEventInvokeConfig("fn", cfg, false).ok());
  Start(&inv, &sink);
  Enqueue("fn", "{}");
  ASSERT_TRUE(WaitFor([&] { return sink.Sent().size() == 1; }));
  EXPECT_EQ(inv.Calls("fn").size(), 4u);
  json record = json::parse(sink.Sent()[0].second);
  EXPECT_EQ(record["requestContext"]["condition"], "Success");
  EXPECT_EQ(record["requestContext"]["approximateInvokeCount"], 1);
  EXPECT_EQ(record["responsePayload"], json::parse(R"({"done":true})"));
}

TEST_F(AsyncQueueTest, QueuedAndRunningEventsRunAgainAfterARestart) {
  FakeInvoker stuck(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  stuck.hold_ = true;
  Start(&stuck);
  std::set<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.insert(Enqueue("fn", "{\"i\":" + std::to_string(i) + "}"));
  ASSERT_TRUE(WaitFor([&] { return stuck.Calls("fn").size() == 5; }));
  queue_->Shutdown();
  queue_.reset();
  EXPECT_EQ(QueuedInStore(), 5);

  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  Start(&inv);
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().succeeded == 5; }));
  std::set<std::string> ran;
  for (const auto& c : inv.Calls("fn")) ran.insert(c.request_id);
  EXPECT_EQ(ran, ids);
  EXPECT_TRUE(WaitFor([&] { return QueuedInStore() == 0; }));
}

TEST_F(AsyncQueueTest, EventsOfDeletedFunctionsAreDropped) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  inv.hold_ = true;
  Start(&inv);
  Enqueue("fn", "{}");
  ASSERT_TRUE(WaitFor([&] { return inv.Calls("fn").size() == 1; }));
  queue_->Shutdown();
  queue_.reset();
  ASSERT_TRUE(lambda_->DeleteFunction("fn", "").ok());
  FakeInvoker inv2(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  Start(&inv2);
  ASSERT_TRUE(WaitFor([&] { return queue_->Stats().dropped == 1; }));
  EXPECT_TRUE(WaitFor([&] { return QueuedInStore() == 0; }));
}

TEST_F(AsyncQueueTest, CheckDestination) {
  FakeInvoker inv(lambda_.get(), [](const InvokeRequest&, int) { return Ok("{}"); });
  Start(&inv);
  EXPECT_TRUE(queue_->CheckDestination("fn", lambda_->FunctionArn("sink")).ok());
  EXPECT_EQ(queue_->CheckDestination("fn", lambda_->FunctionArn("fn")).message(),
            "You can't specify the function as a destination for itself.");
  EXPECT_EQ(queue_->CheckDestination("fn", lambda_->FunctionArn("nope")).code(),
            base::Code::kInvalidArgument);
  // Without a sink, queues are not deliverable destinations.
  EXPECT_EQ(queue_->CheckDestination("fn", "arn:aws:sqs:us-east-1:000000000000:q").code(),
            base::Code::kInvalidArgument);
}

}  // namespace
}  // namespace lambda
