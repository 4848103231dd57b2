#include "services/logs/api.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

namespace logs {
namespace {

using nlohmann::json;

class Recorder : public aws::Authorizer {
 public:
  std::optional<aws::Error> Authorize(
      const aws::Call&, std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>&) override {
    seen.push_back(std::string(action) + " " + std::string(resource));
    return std::nullopt;
  }
  std::vector<std::string> seen;
};

class LogsApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/logs_api_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    store_ = std::move(store::OpenSqliteStore(so)).value();
    Options o;
    o.retention_sweep_interval = std::chrono::milliseconds(0);
    logs_ = std::move(OpenLogs(store_.get(), o)).value();
    svc_ = MakeLogsService(*logs_);
    call_.authorizer = &authz_;
    call_.request_id = "rid";
  }
  void TearDown() override {
    svc_.reset();
    logs_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Returns (status, error type or "", body).
  std::tuple<int, std::string, json> Call(const std::string& op, const json& in) {
    http::Request r;
    r.method = "POST";
    r.path = "/";
    r.headers.push_back({"X-Amz-Target", "Logs_20140328." + op});
    r.body = in.dump();
    http::Response out;
    svc_->Handle(call_, std::move(r), [&](http::Response x) { out = std::move(x); });
    const std::string* type = out.Find("x-amzn-ErrorType");
    json body = json::parse(out.body, nullptr, false);
    return {out.status, type ? *type : "", body};
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Logs> logs_;
  std::unique_ptr<aws::Service> svc_;
  Recorder authz_;
  aws::Call call_;
};

TEST_F(LogsApiTest, ShapesErrorsAndAuthorization) {
  auto [st, type, body] = Call("CreateLogGroup", {{"logGroupName", "/aws/lambda/x"}});
  EXPECT_EQ(st, 200);
  EXPECT_EQ(authz_.seen.back(),
            "logs:CreateLogGroup arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x:*");
  std::tie(st, type, body) = Call("CreateLogGroup", {{"logGroupName", "/aws/lambda/x"}});
  EXPECT_EQ(st, 400);
  EXPECT_EQ(type, "ResourceAlreadyExistsException");
  EXPECT_EQ(body["message"], "The specified log group already exists");

  std::tie(st, type, body) = Call("CreateLogStream", {{"logGroupName", "/aws/lambda/x"}});
  EXPECT_EQ(type, "InvalidParameterException");
  std::tie(st, type, body) = Call("CreateLogStream", {{"logGroupName", 5}, {"logStreamName", "s"}});
  EXPECT_EQ(type, "SerializationException");
  std::tie(st, type, body) =
      Call("CreateLogStream", {{"logGroupName", "/aws/lambda/x"}, {"logStreamName", "s"}});
  EXPECT_EQ(st, 200);

  int64_t now = base::EpochMillis(base::SystemClock().Now());
  std::tie(st, type, body) =
      Call("PutLogEvents", {{"logGroupName", "/aws/lambda/x"},
                            {"logStreamName", "s"},
                            {"sequenceToken", "ignored"},
                            {"logEvents",
                             {{{"timestamp", now}, {"message", "hello"}},
                              {{"timestamp", now + 3 * 3600000}, {"message", "x"}}}}});
  EXPECT_EQ(st, 200) << body.dump();
  EXPECT_EQ(body["nextSequenceToken"].get<std::string>().size(), 56u);
  EXPECT_EQ(body["rejectedLogEventsInfo"]["tooNewLogEventStartIndex"], 1);

  std::tie(st, type, body) = Call("GetLogEvents", {{"logGroupIdentifier",
                                                    "arn:aws:logs:us-east-1:000000000000:log-group:"
                                                    "/aws/lambda/x"},
                                                   {"logStreamName", "s"},
                                                   {"startFromHead", true}});
  EXPECT_EQ(st, 200) << body.dump();
  ASSERT_EQ(body["events"].size(), 1u);
  EXPECT_EQ(body["events"][0]["message"], "hello");
  EXPECT_EQ(body["events"][0]["timestamp"], now);
  EXPECT_TRUE(body["events"][0].contains("ingestionTime"));

  std::tie(st, type, body) =
      Call("GetLogEvents",
           {{"logGroupName", "/aws/lambda/x"}, {"logStreamName", "s"}, {"limit", 10001}});
  EXPECT_EQ(type, "InvalidParameterException");
  EXPECT_EQ(body["message"],
            "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
            "Member must have value less than or equal to 10000");
  std::tie(st, type, body) =
      Call("GetLogEvents", {{"logGroupName", "/aws/lambda/x"}, {"logStreamName", "nope"}});
  EXPECT_EQ(type, "ResourceNotFoundException");
  EXPECT_EQ(body["message"], "The specified log stream does not exist.");

  std::tie(st, type, body) =
      Call("DescribeLogStreams", {{"logGroupName", "/aws/lambda/x"}, {"logGroupIdentifier", "x"}});
  EXPECT_EQ(type, "ValidationException");
  std::tie(st, type, body) = Call("DescribeLogStreams", {{"logGroupName", "/aws/lambda/x"}});
  ASSERT_EQ(body["logStreams"].size(), 1u);
  EXPECT_EQ(body["logStreams"][0]["arn"],
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x:log-stream:s");
  EXPECT_EQ(body["logStreams"][0]["lastEventTimestamp"], now);

  std::tie(st, type, body) = Call("DescribeLogGroups", json::object());
  ASSERT_EQ(body["logGroups"].size(), 1u);
  EXPECT_EQ(body["logGroups"][0]["arn"],
            "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x:*");
  EXPECT_EQ(body["logGroups"][0]["logGroupClass"], "STANDARD");
  std::tie(st, type, body) = Call("ListLogGroups", {{"logGroupNamePattern", "lambda"}});
  ASSERT_EQ(body["logGroups"].size(), 1u) << body.dump();
  EXPECT_EQ(body["logGroups"][0],
            json({{"logGroupName", "/aws/lambda/x"},
                  {"logGroupArn", "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x"},
                  {"logGroupClass", "STANDARD"}}));

  std::tie(st, type, body) =
      Call("FilterLogEvents", {{"logGroupName", "/aws/lambda/x"}, {"filterPattern", "hello"}});
  ASSERT_EQ(body["events"].size(), 1u);
  EXPECT_EQ(body["events"][0]["logStreamName"], "s");
  std::tie(st, type, body) = Call("FilterLogEvents", {{"logGroupName", "/aws/lambda/x"},
                                                      {"filterPattern", std::string(1025, 'X')}});
  EXPECT_EQ(type, "InvalidParameterException");
  EXPECT_EQ(body["message"], "1 validation error detected: Value '" + std::string(1025, 'X') +
                                 "' at 'filterPattern' failed to satisfy constraint: Member must "
                                 "have length less than or equal to 1024");

  std::tie(st, type, body) =
      Call("TagResource",
           {{"resourceArn", "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x"},
            {"tags", {{"k", "v"}}}});
  EXPECT_EQ(st, 200) << body.dump();
  std::tie(st, type, body) =
      Call("ListTagsForResource",
           {{"resourceArn", "arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/x"}});
  EXPECT_EQ(body["tags"]["k"], "v");

  std::tie(st, type, body) = Call("DeleteLogGroup", {{"logGroupName", "/aws/lambda/x"}});
  EXPECT_EQ(st, 200);
  std::tie(st, type, body) = Call("DeleteLogGroup", {{"logGroupName", "/aws/lambda/x"}});
  EXPECT_EQ(type, "ResourceNotFoundException");
  EXPECT_EQ(body["message"], "The specified log group does not exist.");
}

// Hostile input never crashes and never gets a 5xx: every operation, every field, with
// values of every wrong type.
TEST_F(LogsApiTest, HostileInputGetsClientErrors) {
  Call("CreateLogGroup", {{"logGroupName", "g"}});
  Call("CreateLogStream", {{"logGroupName", "g"}, {"logStreamName", "s"}});
  const char* ops[] = {"CreateLogGroup",     "DeleteLogGroup",     "DescribeLogGroups",
                       "ListLogGroups",      "CreateLogStream",    "DeleteLogStream",
                       "DescribeLogStreams", "PutLogEvents",       "GetLogEvents",
                       "FilterLogEvents",    "PutRetentionPolicy", "DeleteRetentionPolicy",
                       "TagLogGroup",        "UntagLogGroup",      "ListTagsLogGroup",
                       "TagResource",        "UntagResource",      "ListTagsForResource"};
  const char* fields[] = {"logGroupName",
                          "logGroupIdentifier",
                          "logStreamName",
                          "logEvents",
                          "limit",
                          "nextToken",
                          "startTime",
                          "endTime",
                          "startFromHead",
                          "filterPattern",
                          "logStreamNames",
                          "logStreamNamePrefix",
                          "orderBy",
                          "descending",
                          "tags",
                          "tagKeys",
                          "resourceArn",
                          "retentionInDays",
                          "logGroupNamePrefix",
                          "logGroupNamePattern"};
  std::vector<json> values = {nullptr,
                              true,
                              -1,
                              0,
                              9223372036854775807LL,
                              18446744073709551615ULL,
                              1.5,
                              "",
                              "f/" + std::string(56, '9'),
                              "b/-0000000000000000000" + std::string(36, '0'),
                              std::string(600, 'x'),
                              "arn:aws:logs:us-east-1:000000000000:log-group:",
                              "{ $.x = 1 }",
                              "\"unterminated",
                              json::array(),
                              json::array({1, "a", nullptr}),
                              json::array({json{{"timestamp", -5}, {"message", "m"}}}),
                              json::array({json{{"timestamp", 1}, {"message", ""}}}),
                              json::array({json{{"timestamp", "x"}}}),
                              json::object(),
                              json{{"k", 1}}};
  for (const char* op : ops) {
    for (const char* field : fields) {
      for (const json& v : values) {
        json in{{"logGroupName", "g"}, {"logStreamName", "s"}};
        in[field] = v;
        auto [st, type, body] = Call(op, in);
        EXPECT_LT(st, 500) << op << " " << field << "=" << v.dump() << " -> " << body.dump();
      }
    }
  }
}

}  // namespace
}  // namespace logs
