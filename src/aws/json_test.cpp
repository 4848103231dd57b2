#include "aws/json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace aws {
namespace {

class Recorder : public Authorizer {
 public:
  std::optional<Error> Authorize(const Call& call, std::string_view action,
                                 std::string_view resource,
                                 const std::map<std::string, std::vector<std::string>>&) override {
    seen.emplace_back(std::string(action) + " " + std::string(resource));
    if (deny)
      return MakeError(403, "AccessDeniedException",
                       AccessDeniedMessage(call, action, resource, false));
    return std::nullopt;
  }
  bool deny = false;
  std::vector<std::string> seen;
};

http::Request Post(std::string target, std::string body) {
  http::Request r;
  r.method = "POST";
  r.path = "/";
  r.headers.push_back({"X-Amz-Target", std::move(target)});
  r.body = std::move(body);
  return r;
}

TEST(JsonService, DispatchAuthorizeAndErrors) {
  JsonService svc("states", "AWSStepFunctions", "1.0");
  svc.Add({"DescribeExecution", "states:DescribeExecution",
           [](const nlohmann::json& in, const Call&) -> Outcome<std::string> {
             if (!in.contains("executionArn"))
               return MakeError(400, "ValidationException", "executionArn is required");
             return in["executionArn"].get<std::string>();
           },
           [](const nlohmann::json& in, Call&) -> Outcome<nlohmann::json> {
             return nlohmann::json{{"status", "RUNNING"}, {"executionArn", in["executionArn"]}};
           }});
  Recorder authz;
  Call call;
  call.request_id = "rid";
  call.authorizer = &authz;
  http::Response out;
  auto run = [&](http::Request r) {
    svc.Handle(call, std::move(r), [&](http::Response x) { out = x; });
  };

  run(Post("AWSStepFunctions.DescribeExecution", R"({"executionArn":"arn:x"})"));
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(nlohmann::json::parse(out.body)["status"], "RUNNING");
  EXPECT_EQ(*out.Find("Content-Type"), "application/x-amz-json-1.0");
  EXPECT_EQ(authz.seen.back(), "states:DescribeExecution arn:x");

  run(Post("AWSStepFunctions.DescribeExecution", "{not json"));
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "SerializationException");

  run(Post("AWSStepFunctions.DescribeExecution", "[1,2]"));
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "SerializationException");

  run(Post("AWSStepFunctions.DescribeExecution", "{}"));
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "ValidationException");

  run(Post("AWSStepFunctions.Nope", "{}"));
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "UnknownOperationException");
  run(Post("OtherService.DescribeExecution", "{}"));
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "UnknownOperationException");

  authz.deny = true;
  run(Post("AWSStepFunctions.DescribeExecution", R"({"executionArn":"arn:x"})"));
  EXPECT_EQ(out.status, 403);
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "AccessDeniedException");
}

TEST(RestJson, MatchPath) {
  std::map<std::string, std::string> c;
  EXPECT_TRUE(MatchRestPath(
      "/2015-03-31/functions/{FunctionName}/invocations",
      "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/invocations", &c));
  EXPECT_EQ(c["FunctionName"], "arn:aws:lambda:us-east-1:1:function:f");
  EXPECT_FALSE(MatchRestPath("/a/{B}", "/a", &c));
  EXPECT_FALSE(MatchRestPath("/a/{B}", "/a/b/c", &c));
  EXPECT_FALSE(MatchRestPath("/a/{B}", "/a/%zz", &c));
  EXPECT_TRUE(MatchRestPath("/b/{Key+}", "/b/x/y%20z", &c));
  EXPECT_EQ(c["Key"], "x/y z");
  EXPECT_TRUE(MatchRestPath("/2015-03-31/functions/", "/2015-03-31/functions", &c));
}

TEST(RestJson, RoutesSyncAndAsync) {
  RestJsonService svc("lambda");
  svc.Add({"GET",
           "/2015-03-31/functions/{FunctionName}",
           "GetFunction",
           "lambda:GetFunction",
           [](const RestRequest& r, const Call&) -> Outcome<std::string> {
             return "arn:fn:" + r.path.at("FunctionName");
           },
           [](const RestRequest& r, Call&) -> Outcome<RestResponse> {
             if (r.path.at("FunctionName") == "missing")
               return MakeError(404, "ResourceNotFoundException", "Function not found");
             return RestResponse::FromJson(
                 {{"name", r.path.at("FunctionName")},
                  {"q", r.Query("Qualifier") ? *r.Query("Qualifier") : ""}});
           },
           {}});
  svc.Add({"POST",
           "/2015-03-31/functions/{FunctionName}/invocations",
           "Invoke",
           "lambda:InvokeFunction",
           {},
           {},
           [](RestRequest r, Call&, std::function<void(Outcome<RestResponse>)> done) {
             RestResponse out;
             out.body = r.http->body;  // echo the payload bytes untouched
             out.content_type = "application/json";
             done(std::move(out));
           }});
  Recorder authz;
  Call call;
  call.request_id = "rid";
  call.authorizer = &authz;
  http::Response out;
  auto run = [&](std::string method, std::string target, std::string body = {}) {
    http::Request r;
    r.method = std::move(method);
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = std::move(body);
    svc.Handle(call, std::move(r), [&](http::Response x) { out = x; });
  };
  run("GET", "/2015-03-31/functions/f1?Qualifier=2");
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(nlohmann::json::parse(out.body)["q"], "2");
  EXPECT_EQ(authz.seen.back(), "lambda:GetFunction arn:fn:f1");
  run("GET", "/2015-03-31/functions/missing");
  EXPECT_EQ(out.status, 404);
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "ResourceNotFoundException");
  run("POST", "/2015-03-31/functions/f1/invocations", "{\"raw\": [1,2]}");
  EXPECT_EQ(out.body, "{\"raw\": [1,2]}");
  run("DELETE", "/2015-03-31/functions/f1/invocations");
  EXPECT_EQ(out.status, 405);
  run("GET", "/2015-03-31/nothing");
  EXPECT_EQ(out.status, 404);
  EXPECT_EQ(*out.Find("x-amzn-ErrorType"), "UnknownOperationException");
}

}  // namespace
}  // namespace aws
