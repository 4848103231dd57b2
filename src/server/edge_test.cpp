#include "server/edge.h"

#include <gtest/gtest.h>

namespace server {
namespace {

http::Request Req(std::string method, std::string target, std::vector<http::Header> headers = {},
                  std::string body = {}) {
  http::Request r;
  r.method = std::move(method);
  r.target = target;
  size_t q = target.find('?');
  r.path = target.substr(0, q);
  if (q != std::string::npos) r.query = target.substr(q + 1);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

std::string Auth(const std::string& service) {
  return "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20260101/us-east-1/" + service +
         "/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
}

struct Case {
  http::Request req;
  aws::Protocol protocol;
  std::string service;
};

TEST(Classify, FollowsDesignOrder) {
  const http::Header form{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"};
  std::vector<Case> cases = {
      {Req("POST", "/", {form, {"Authorization", Auth("sts")}},
           "Action=GetCallerIdentity&Version=2011-06-15"),
       aws::Protocol::kQuery, "sts"},
      {Req("POST", "/", {form}, "Action=AssumeRole"), aws::Protocol::kQuery, "sts"},
      {Req("POST", "/", {form}, "Action=CreateUser"), aws::Protocol::kQuery, "iam"},
      {Req("GET", "/?Action=ListUsers&Version=2010-05-08"), aws::Protocol::kQuery, "iam"},
      {Req("POST", "/", {{"X-Amz-Target", "AWSStepFunctions.StartExecution"}}),
       aws::Protocol::kJson, "states"},
      {Req("POST", "/",
           {{"X-Amz-Target", "Logs_20140328.PutLogEvents"}, {"Authorization", Auth("logs")}}),
       aws::Protocol::kJson, "logs"},
      {Req("GET", "/2015-03-31/functions/"), aws::Protocol::kRestJson, "lambda"},
      {Req("POST", "/2015-03-31/functions/f/invocations", {{"Authorization", Auth("lambda")}}),
       aws::Protocol::kRestJson, "lambda"},
      {Req("PUT", "/bucket/key", {{"Authorization", Auth("s3")}}), aws::Protocol::kRestXml, "s3"},
      {Req("GET", "/"), aws::Protocol::kRestXml, "s3"},
      // A form body that is not form-encoded is not a Query call.
      {Req("POST", "/x", {{"Content-Type", "application/json"}}, "Action=CreateUser"),
       aws::Protocol::kRestXml, "s3"},
  };
  for (const auto& c : cases) {
    Route r = Classify(c.req);
    EXPECT_EQ(r.protocol, c.protocol) << c.req.method << " " << c.req.target;
    EXPECT_EQ(r.service, c.service) << c.req.method << " " << c.req.target;
  }
}

TEST(Classify, NeverCrashesOnOddInput) {
  std::vector<http::Request> odd = {
      Req("GET", ""),
      Req("POST", "/?Action=%zz"),
      Req("POST", "/", {{"Authorization", "Credential="}}),
      Req("POST", "/", {{"Authorization", "AWS4-HMAC-SHA256 Credential=a/b"}}),
      Req("GET", "/2015-03-3/"),
  };
  for (const auto& r : odd) (void)Classify(r);
}

}  // namespace
}  // namespace server
