// The invoker end to end below the API: real sandboxes running a `provided` bootstrap (a
// Python script speaking the Runtime API), the Runtime API served through http::Server.
#include "services/lambda/invoker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "base/strings.h"
#include "sandbox/cgroup.h"
#include "services/lambda/test_fixture.h"

namespace lambda {
namespace {

using namespace std::chrono_literals;

// A `provided` runtime: the bootstrap is ours, written in Python against the Runtime API.
constexpr char kBootstrap[] = R"PY(#!/usr/bin/python3
import http.client, json, os, sys, time
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
count = 0
def post(path, body, headers={}):
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse(); r.read(); return r.status
if os.environ.get("INIT_FAIL"):
    post("/2018-06-01/runtime/init/error", json.dumps({"errorMessage": "init broke", "errorType": "InitBroke"}))
    sys.exit(1)
if os.environ.get("INIT_EXIT"):
    sys.exit(2)
if os.environ.get("INIT_HANG"):
    time.sleep(3600)
while True:
    conn.request("GET", "/2018-06-01/runtime/invocation/next")
    r = conn.getresponse()
    body = r.read()
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    ev = json.loads(body or b"null") or {}
    count += 1
    a = ev.get("action", "echo")
    base = "/2018-06-01/runtime/invocation/" + rid
    if a == "echo":
        out = {"event": ev, "count": count, "pid": os.getpid(),
               "deadline": r.getheader("Lambda-Runtime-Deadline-Ms"),
               "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn"),
               "env": {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "_HANDLER", "LAMBDA_", "MY_"))},
               "uid": os.getuid()}
        print("hello from", rid, flush=True)
        post(base + "/response", json.dumps(out))
    elif a == "error":
        post(base + "/error", json.dumps({"errorMessage": "bad", "errorType": "Boom"}),
             {"Lambda-Runtime-Function-Error-Type": "Unhandled"})
    elif a == "sleep":
        time.sleep(ev["seconds"])
        post(base + "/response", "{}")
    elif a == "exit":
        sys.exit(3)
    elif a == "alloc":
        blob = bytearray(ev["mb"] << 20)
        for i in range(0, len(blob), 4096): blob[i] = 1
        post(base + "/response", "{}")
    elif a == "big":
        print("x" * 1000, flush=True)
        post(base + "/response", json.dumps("y" * ev["bytes"]))
    elif a == "spam":
        for i in range(ev["lines"]): print("line %d %s" % (i, "z" * 100))
        sys.stdout.flush()
        post(base + "/response", "{}")
    elif a == "wrongid":
        print(post("/2018-06-01/runtime/invocation/nope/response", "{}"), flush=True)
        post(base + "/response", "{}")
)PY";

class RecordingSink : public LogSink {
 public:
  void Write(const std::string& group, const std::string& stream,
             std::vector<LogLine> lines) override {
    std::lock_guard lock(mu_);
    for (auto& l : lines) text_ += group + " " + stream + " " + l.message + "\n";
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }

 private:
  std::mutex mu_;
  std::string text_;
};

class InvokerTest : public testing::LambdaTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the invoker runs sandboxes: needs root";
    if (!sandbox::DefaultCgroupManager().ok()) GTEST_SKIP() << "no usable cgroups";
    if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
    LambdaTest::SetUp();
    http::ServerOptions ho;
    ho.host = "";
    ho.threads = 2;
    auto hs = http::Server::Create(ho, [](http::Request&&, http::Responder r) {
      r(http::Response{404, {}, ""});
    });
    ASSERT_TRUE(hs.ok());
    host_ = std::move(hs).value();
    host_thread_ = std::thread([this] { host_->Run(); });
    InvokerOptions io;
    io.lambda = lambda_.get();
    io.blobs = blobs_.get();
    io.store = store_.get();
    io.runtime_host = host_.get();
    io.logs = &sink_;
    io.work_dir = dir_ + "/work";
    io.idle_timeout = 60s;
    io.max_log_bytes_per_invoke = 64 * 1024;
    Tune(io);
    auto inv = MakeInvoker(io);
    ASSERT_TRUE(inv.ok()) << inv.status().ToString();
    invoker_ = std::move(inv).value();
  }
  virtual void Tune(InvokerOptions&) {}
  void TearDown() override {
    if (invoker_) invoker_->Shutdown();
    invoker_.reset();
    if (host_) host_->Shutdown();
    if (host_thread_.joinable()) host_thread_.join();
    if (lambda_) LambdaTest::TearDown();
  }

  void Create(const std::string& name, std::map<std::string, std::string> env = {}, int timeout = 5,
              int memory = 128) {
    CreateFunctionRequest r;
    r.name = name;
    r.settings.runtime = "provided.al2023";
    r.settings.role = testing::kRole;
    r.settings.handler = "unused";
    r.settings.timeout = timeout;
    r.settings.memory_size = memory;
    r.settings.environment = std::move(env);
    r.zip = testing::MakeZip({{"bootstrap", kBootstrap, "", 1, 0755}});
    auto c = lambda_->CreateFunction(r);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
  }

  base::Result<InvokeResult> Invoke(const std::string& name, const std::string& payload,
                                    bool tail = false) {
    InvokeRequest r;
    r.function_name = name;
    r.payload = payload;
    r.tail_log = tail;
    std::promise<base::Result<InvokeResult>> p;
    auto f = p.get_future();
    invoker_->Invoke(std::move(r), [&p](base::Result<InvokeResult> res) { p.set_value(res); });
    if (f.wait_for(60s) != std::future_status::ready) return base::Unavailable("no answer in 60 s");
    return f.get();
  }

  RecordingSink sink_;
  std::unique_ptr<http::Server> host_;
  std::thread host_thread_;
  std::unique_ptr<Invoker> invoker_;
};

TEST_F(InvokerTest, RunsTheBootstrapAndReusesTheWarmEnvironment) {
  Create("echo", {{"MY_VAR", "42"}});
  auto r1 = Invoke("echo", R"({"action":"echo","x":1})");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->function_error, "");
  EXPECT_EQ(r1->executed_version, "$LATEST");
  EXPECT_NE(r1->payload.find(R"("count": 1)"), std::string::npos) << r1->payload;
  EXPECT_NE(r1->payload.find(R"("MY_VAR": "42")"), std::string::npos);
  EXPECT_NE(r1->payload.find(R"("AWS_LAMBDA_FUNCTION_NAME": "echo")"), std::string::npos);
  EXPECT_NE(r1->payload.find(R"("uid": 65534)"), std::string::npos);  // not root
  EXPECT_NE(r1->payload.find("function:echo"), std::string::npos);
  auto r2 = Invoke("echo", R"({"action":"echo"})", true);
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r2->payload.find(R"("count": 2)"), std::string::npos) << "not warm: " << r2->payload;
  auto tail = base::Base64Decode(r2->log_result);
  ASSERT_TRUE(tail);
  EXPECT_NE(tail->find("START RequestId: " + r2->request_id), std::string::npos) << *tail;
  EXPECT_NE(tail->find("hello from " + r2->request_id), std::string::npos) << *tail;
  EXPECT_NE(tail->find("END RequestId: " + r2->request_id), std::string::npos);
  EXPECT_NE(tail->find("REPORT RequestId: " + r2->request_id), std::string::npos);
  EXPECT_EQ(tail->find("Init Duration"), std::string::npos);  // warm
  std::string logs = sink_.text();
  EXPECT_NE(logs.find("/aws/lambda/echo "), std::string::npos);
  EXPECT_NE(logs.find("[$LATEST]"), std::string::npos);
  EXPECT_NE(logs.find("Init Duration"), std::string::npos);  // the cold one
  auto stats = invoker_->Stats();
  EXPECT_EQ(stats["echo"].invocations, 2u);
  EXPECT_EQ(stats["echo"].cold_starts, 1u);
}

TEST_F(InvokerTest, ConcurrentInvokesGetSeparateEnvironments) {
  Create("par");
  std::vector<std::future<base::Result<InvokeResult>>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(std::async(std::launch::async,
                            [this] { return Invoke("par", R"({"action":"sleep","seconds":1})"); }));
  for (auto& f : fs) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->function_error, "");
  }
  EXPECT_EQ(invoker_->Stats()["par"].cold_starts, 3u);
}

TEST_F(InvokerTest, FunctionErrorsTimeoutsCrashesAndOom) {
  Create("err", {}, 1, 128);
  auto e = Invoke("err", R"({"action":"error"})");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->function_error, "Unhandled");
  EXPECT_EQ(e->payload, R"({"errorMessage": "bad", "errorType": "Boom"})");

  auto t = Invoke("err", R"({"action":"sleep","seconds":30})");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->function_error, "Unhandled");
  EXPECT_NE(t->payload.find(R"("errorType":"Sandbox.Timedout")"), std::string::npos) << t->payload;
  EXPECT_NE(t->payload.find("Task timed out after 1.00 seconds"), std::string::npos);

  auto x = Invoke("err", R"({"action":"exit"})");
  ASSERT_TRUE(x.ok());
  EXPECT_NE(x->payload.find("Runtime.ExitError"), std::string::npos) << x->payload;
  EXPECT_NE(x->payload.find("exit status 3"), std::string::npos) << x->payload;

  auto m = Invoke("err", R"({"action":"alloc","mb":400})");
  ASSERT_TRUE(m.ok());
  EXPECT_NE(m->payload.find("Runtime.OutOfMemory"), std::string::npos) << m->payload;

  // And the function still works afterwards (fresh environments).
  auto ok = Invoke("err", R"({"action":"echo"})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->function_error, "");
}

TEST_F(InvokerTest, InitFailuresAreReportedToTheInvocation) {
  Create("initfail", {{"INIT_FAIL", "1"}});
  auto r = Invoke("initfail", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->function_error, "Unhandled");
  EXPECT_EQ(r->payload, R"({"errorMessage": "init broke", "errorType": "InitBroke"})");
  Create("initexit", {{"INIT_EXIT", "1"}});
  auto x = Invoke("initexit", "{}");
  ASSERT_TRUE(x.ok());
  EXPECT_NE(x->payload.find("exit status 2"), std::string::npos) << x->payload;
}

TEST_F(InvokerTest, LimitsPayloadsResponsesAndLogs) {
  Create("lim");
  auto big_in = Invoke("lim", std::string(6291457, 'a'));
  ASSERT_FALSE(big_in.ok());
  EXPECT_EQ(big_in.status().code(), base::Code::kInvalidArgument);
  auto big_out = Invoke("lim", R"({"action":"big","bytes":6400000})");
  ASSERT_TRUE(big_out.ok());
  EXPECT_NE(big_out->payload.find("Function.ResponseSizeTooLarge"), std::string::npos);
  auto spam = Invoke("lim", R"({"action":"spam","lines":5000})", true);
  ASSERT_TRUE(spam.ok());
  EXPECT_EQ(spam->function_error, "");
  auto tail = base::Base64Decode(spam->log_result);
  ASSERT_TRUE(tail);
  EXPECT_NE(tail->find("the rest is dropped"), std::string::npos);
  EXPECT_LE(tail->size(), 4096u);
  auto wrong = Invoke("lim", R"({"action":"wrongid"})", true);
  ASSERT_TRUE(wrong.ok());
  EXPECT_NE(base::Base64Decode(wrong->log_result)->find("\n400\n"), std::string::npos);
}

TEST_F(InvokerTest, ReservedConcurrencyThrottles) {
  Create("thr");
  ASSERT_TRUE(lambda_->PutFunctionConcurrency("thr", 1).ok());
  auto slow = std::async(std::launch::async,
                         [this] { return Invoke("thr", R"({"action":"sleep","seconds":2})"); });
  // Wait until the first invocation holds the one slot.
  for (int i = 0; i < 200 && invoker_->Stats()["thr"].environments == 0; ++i)
    std::this_thread::sleep_for(10ms);
  auto t = Invoke("thr", "{}");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), base::Code::kResourceExhausted);
  EXPECT_EQ(t.status().message(), "ReservedFunctionConcurrentInvocationLimitExceeded");
  ASSERT_TRUE(slow.get().ok());
  ASSERT_TRUE(lambda_->PutFunctionConcurrency("thr", 0).ok());
  auto z = Invoke("thr", "{}");
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(invoker_->Stats()["thr"].throttles, 2u);
}

TEST_F(InvokerTest, UpdatedCodeRetiresOldEnvironments) {
  Create("upd");
  auto a = Invoke("upd", R"({"action":"echo"})");
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(
      lambda_->UpdateFunctionConfiguration("upd", FunctionSettings{.description = "v2"}, "").ok());
  auto b = Invoke("upd", R"({"action":"echo"})");
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->payload.find(R"("count": 1)"), std::string::npos) << "old env reused";
  EXPECT_EQ(invoker_->Stats()["upd"].cold_starts, 2u);
}

class ShortTimersTest : public InvokerTest {
  void Tune(InvokerOptions& o) override {
    o.idle_timeout = 1s;
    o.init_timeout = 1s;
  }
};

TEST_F(ShortTimersTest, IdleEnvironmentsAreReapedToZero) {
  Create("idle");
  ASSERT_TRUE(Invoke("idle", R"({"action":"echo"})").ok());
  EXPECT_EQ(invoker_->Stats()["idle"].environments, 1);
  for (int i = 0; i < 100 && invoker_->Stats()["idle"].environments > 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(invoker_->Stats()["idle"].environments, 0);
  // And it comes back on demand.
  auto again = Invoke("idle", R"({"action":"echo"})");
  ASSERT_TRUE(again.ok());
  EXPECT_NE(again->payload.find(R"("count": 1)"), std::string::npos);
}

TEST_F(ShortTimersTest, ABootstrapThatNeverAsksForWorkTimesOut) {
  Create("hang", {{"INIT_HANG", "1"}});
  auto r = Invoke("hang", "{}");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->function_error, "Unhandled");
  EXPECT_NE(r->payload.find("Sandbox.Timedout"), std::string::npos) << r->payload;
  for (int i = 0; i < 100 && invoker_->Stats()["hang"].environments > 0; ++i)
    std::this_thread::sleep_for(50ms);
  EXPECT_EQ(invoker_->Stats()["hang"].environments, 0);
}

TEST_F(InvokerTest, UnknownFunctionIsNotFound) {
  auto r = Invoke("nope", "{}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kNotFound);
}

}  // namespace
}  // namespace lambda
