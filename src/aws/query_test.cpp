#include "aws/query.h"

#include <gtest/gtest.h>

namespace aws {
namespace {

http::Request FormPost(std::string body) {
  http::Request r;
  r.method = "POST";
  r.path = "/";
  r.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
  r.body = std::move(body);
  return r;
}

TEST(QueryParams, ParsesFormAndLists) {
  auto p = QueryParams::FromRequest(
      FormPost("Action=TagUser&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.2.Key=b"
               "&Names.member.1=x&Names.member.2=y%20z"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p.value().Get("Action"), "TagUser");
  auto names = p.value().List("Names");
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[1], "y z");
  auto tags = p.value().KeyValueList("Tags", "Key", "Value");
  ASSERT_EQ(tags.size(), 2u);
  EXPECT_EQ(tags[0].second, "1");
  EXPECT_EQ(tags[1].second, "");
  auto missing = p.value().Required("UserName");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "ValidationError");
  EXPECT_NE(missing.error().message.find("'userName'"), std::string::npos);
}

TEST(QueryParams, MalformedIsAnError) {
  auto p = QueryParams::FromRequest(FormPost("Action=%zz"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, "MalformedQueryString");
}

class DenyAll : public Authorizer {
 public:
  std::optional<Error> Authorize(const Call& call, std::string_view action,
                                 std::string_view resource,
                                 const std::map<std::string, std::vector<std::string>>&) override {
    last_action = std::string(action);
    last_resource = std::string(resource);
    if (allow) return std::nullopt;
    return MakeError(403, "AccessDenied", AccessDeniedMessage(call, action, resource, false));
  }
  bool allow = false;
  std::string last_action, last_resource;
};

TEST(QueryService, DispatchesAuthorizesAndWraps) {
  QueryService svc("iam", "https://iam.amazonaws.com/doc/2010-05-08/", "2010-05-08");
  int ran = 0;
  svc.Add({"GetUser", "iam:GetUser",
           [](const QueryParams& p, const Call&) -> Outcome<std::string> {
             return "arn:aws:iam::000000000000:user/" + p.Get("UserName");
           },
           [&](const QueryParams& p, Call&) -> Outcome<std::string> {
             ++ran;
             return "<User><UserName>" + p.Get("UserName") + "</UserName></User>";
           }});
  DenyAll authz;
  Call call;
  call.request_id = "rid";
  call.principal.arn = "arn:aws:iam::000000000000:user/alice";
  call.authorizer = &authz;
  http::Response out;
  svc.Handle(call, FormPost("Action=GetUser&UserName=bob"), [&](http::Response r) { out = r; });
  EXPECT_EQ(out.status, 403);
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(authz.last_action, "iam:GetUser");
  EXPECT_EQ(authz.last_resource, "arn:aws:iam::000000000000:user/bob");
  EXPECT_NE(out.body.find("is not authorized to perform: iam:GetUser"), std::string::npos);

  authz.allow = true;
  svc.Handle(call, FormPost("Action=GetUser&UserName=bob"), [&](http::Response r) { out = r; });
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(out.body,
            "<GetUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetUserResult>"
            "<User><UserName>bob</UserName></User></GetUserResult><ResponseMetadata><RequestId>rid"
            "</RequestId></ResponseMetadata></GetUserResponse>");

  svc.Handle(call, FormPost("Action=Nope"), [&](http::Response r) { out = r; });
  EXPECT_EQ(out.status, 400);
  EXPECT_NE(out.body.find("<Code>InvalidAction</Code>"), std::string::npos);
  svc.Handle(call, FormPost("UserName=x"), [&](http::Response r) { out = r; });
  EXPECT_NE(out.body.find("<Code>MissingAction</Code>"), std::string::npos);
}

}  // namespace
}  // namespace aws
