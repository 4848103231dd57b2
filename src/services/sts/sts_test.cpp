// STS over a real store: GetCallerIdentity shapes, AssumeRole (trust, identity policies,
// bounds, session policies, expiry), GetSessionToken.
#include "services/sts/sts.h"

#include <gtest/gtest.h>

#include <thread>

#include "services/iam/test_util.h"

namespace sts {
namespace {

using iam::testing::IamTest;

constexpr const char* kTrustAccount =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]})";
constexpr const char* kTrustLambda =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]})";

class StsTest : public IamTest {
 protected:
  void SetUp() override {
    IamTest::SetUp();
    sts_ = MakeStsService(*iam_);
  }
  void TearDown() override {
    sts_.reset();
    IamTest::TearDown();
  }
  http::Response Sts(const std::string& form, aws::Call call) {
    return Post(*sts_, form, std::move(call));
  }
  http::Response StsRoot(const std::string& form) { return Sts(form, MakeCall(Root())); }

  // Credentials of `akid` as the edge would put them on a Call.
  aws::Call CallAs(const std::string& akid) {
    auto c = iam::Credentials(*iam_).Lookup(akid);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return MakeCall(c.ok() ? c->principal : auth::Principal{}, akid);
  }

  std::string AssumeRoleForm(const std::string& role, const std::string& session,
                             const std::string& extra = "") {
    return "Action=AssumeRole&Version=2011-06-15&RoleArn=" +
           Enc("arn:aws:iam::123456789012:role/" + role) + "&RoleSessionName=" + session + extra;
  }

  std::unique_ptr<aws::Service> sts_;
};

TEST_F(StsTest, GetCallerIdentityShapes) {
  auto r = StsRoot("Action=GetCallerIdentity&Version=2011-06-15");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body,
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
            "<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:root</Arn>"
            "<UserId>123456789012</UserId><Account>123456789012</Account>"
            "</GetCallerIdentityResult><ResponseMetadata><RequestId>req-1</RequestId>"
            "</ResponseMetadata></GetCallerIdentityResponse>");

  // A user with no policies at all may still ask who they are.
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  auto key = iam_->CreateAccessKey("alice");
  ASSERT_TRUE(key.ok());
  r = Sts("Action=GetCallerIdentity", CallAs(key->id));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:iam::123456789012:user/alice");
  EXPECT_EQ(Tag(r.body, "UserId").rfind("AIDA", 0), 0u);
}

TEST_F(StsTest, AssumeRoleAsRootAndUseTheSession) {
  auto role = iam_->CreateRole("reader", "/", kTrustAccount, "", 7200, {});
  ASSERT_TRUE(role.ok());
  ASSERT_TRUE(
      iam_->PutInlinePolicy(
              iam::Iam::Entity::kRole, "reader", "read",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]})")
          .ok());
  auto r = StsRoot(AssumeRoleForm("reader", "sess-1", "&DurationSeconds=7200"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string akid = Tag(r.body, "AccessKeyId");
  EXPECT_EQ(akid.rfind("ASIA", 0), 0u);
  EXPECT_EQ(akid.size(), 20u);
  EXPECT_EQ(Tag(r.body, "SecretAccessKey").size(), 40u);
  EXPECT_GT(Tag(r.body, "SessionToken").size(), 100u);
  EXPECT_EQ(Tag(r.body, "Expiration"), "2026-11-23T22:00:00Z");
  EXPECT_EQ(Tag(r.body, "AssumedRoleId"), role->id + ":sess-1");
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:sts::123456789012:assumed-role/reader/sess-1");
  EXPECT_EQ(r.body.find("PackedPolicySize"), std::string::npos);

  auto c = iam::Credentials(*iam_).Lookup(akid);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_access_key, Tag(r.body, "SecretAccessKey"));
  EXPECT_EQ(c->session_token, Tag(r.body, "SessionToken"));
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(base::FormatIso8601(*c->expiration), "2026-11-23T22:00:00Z");
  EXPECT_EQ(c->principal.type, auth::PrincipalType::kAssumedRole);
  EXPECT_EQ(c->principal.arn, "arn:aws:sts::123456789012:assumed-role/reader/sess-1");
  EXPECT_EQ(c->principal.user_id, role->id + ":sess-1");
  EXPECT_EQ(c->principal.role_arn, role->arn);
  EXPECT_EQ(c->principal.session_name, "sess-1");

  aws::Call as_role = CallAs(akid);
  r = Sts("Action=GetCallerIdentity", as_role);
  EXPECT_EQ(Tag(r.body, "Arn"), "arn:aws:sts::123456789012:assumed-role/reader/sess-1");
  EXPECT_EQ(Tag(r.body, "UserId"), role->id + ":sess-1");
  auto& authz = iam_->authorizer();
  EXPECT_EQ(authz.Decide(as_role, "s3:GetObject", "arn:aws:s3:::b/k", {}), auth::Decision::kAllow);
  EXPECT_EQ(authz.Decide(as_role, "s3:DeleteObject", "arn:aws:s3:::b/k", {}),
            auth::Decision::kImplicitDeny);

  // Expiry: the credential is still found, with its expiration in the past, so the SigV4
  // layer answers ExpiredToken.
  clock_.Advance(std::chrono::hours(2) + std::chrono::seconds(1));
  c = iam::Credentials(*iam_).Lookup(akid);
  ASSERT_TRUE(c.ok());
  EXPECT_LT(*c->expiration, clock_.Now());

  // After the grace period the store's lease removes the session altogether.
  clock_.Advance(std::chrono::hours(1) + std::chrono::seconds(1));
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = iam::Credentials(*iam_).Lookup(akid).status().code() == base::Code::kNotFound;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(gone);
}

TEST_F(StsTest, SessionPolicyIntersectsRolePolicies) {
  ASSERT_TRUE(iam_->CreateRole("rw", "/", kTrustAccount, "", 0, {}).ok());
  ASSERT_TRUE(
      iam_->PutInlinePolicy(
              iam::Iam::Entity::kRole, "rw", "rw",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"}]})")
          .ok());
  std::string session_policy =
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","sqs:*"],"Resource":"*"}]})";
  auto r = StsRoot(AssumeRoleForm("rw", "narrow", "&Policy=" + Enc(session_policy)));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_FALSE(Tag(r.body, "PackedPolicySize").empty());
  aws::Call call = CallAs(Tag(r.body, "AccessKeyId"));
  auto& authz = iam_->authorizer();
  // Allowed by both: allowed.
  EXPECT_EQ(authz.Decide(call, "s3:GetObject", "*", {}), auth::Decision::kAllow);
  // Role allows, session policy does not: denied.
  EXPECT_EQ(authz.Decide(call, "s3:PutObject", "*", {}), auth::Decision::kImplicitDeny);
  // Session policy allows, role does not: denied.
  EXPECT_EQ(authz.Decide(call, "sqs:SendMessage", "*", {}), auth::Decision::kImplicitDeny);

  r = StsRoot(AssumeRoleForm("rw", "bad", "&Policy=%7Bnope"));
  EXPECT_AWS_ERROR(r, 400, "MalformedPolicyDocument", "This policy contains invalid Json");
}

TEST_F(StsTest, TrustAndIdentityPoliciesBothDecide) {
  ASSERT_TRUE(iam_->CreateRole("fn", "/", kTrustLambda, "", 0, {}).ok());
  ASSERT_TRUE(iam_->CreateRole("open", "/", kTrustAccount, "", 0, {}).ok());
  // Root is refused by a trust policy that only names a service.
  auto r = StsRoot(AssumeRoleForm("fn", "s1"));
  EXPECT_AWS_ERROR(r, 403, "AccessDenied",
                   "User: arn:aws:iam::123456789012:root is not authorized to perform: "
                   "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/fn");
  // An unknown role looks the same.
  r = StsRoot(AssumeRoleForm("ghost", "s1"));
  EXPECT_AWS_ERROR(r, 403, "AccessDenied",
                   "User: arn:aws:iam::123456789012:root is not authorized to perform: "
                   "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/ghost");

  // A user trusted through the account still needs an identity policy.
  ASSERT_TRUE(iam_->CreateUser("bob", "/", {}).ok());
  auto key = iam_->CreateAccessKey("bob");
  ASSERT_TRUE(key.ok());
  r = Sts(AssumeRoleForm("open", "s1"), CallAs(key->id));
  EXPECT_AWS_ERROR(r, 403, "AccessDenied",
                   "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: "
                   "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/open");
  ASSERT_TRUE(
      iam_->PutInlinePolicy(
              iam::Iam::Entity::kUser, "bob", "assume",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]})")
          .ok());
  r = Sts(AssumeRoleForm("open", "s1"), CallAs(key->id));
  EXPECT_EQ(r.status, 200) << r.body;
  // ... and the trust policy still has the last word.
  r = Sts(AssumeRoleForm("fn", "s1"), CallAs(key->id));
  EXPECT_EQ(r.status, 403);

  // Platform services assume roles that trust them.
  auto s = AssumeRoleForService(*iam_, "arn:aws:iam::123456789012:role/fn", "lambda.amazonaws.com",
                                "fn-session", std::chrono::seconds(900));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->role_name, "fn");
  s = AssumeRoleForService(*iam_, "arn:aws:iam::123456789012:role/fn", "ecs-tasks.amazonaws.com",
                           "x", std::chrono::seconds(900));
  EXPECT_EQ(s.status().code(), base::Code::kPermissionDenied);
}

TEST_F(StsTest, AssumeRoleValidation) {
  ASSERT_TRUE(iam_->CreateRole("r", "/", kTrustAccount, "", 0, {}).ok());
  struct Case {
    std::string form;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"Action=AssumeRole&RoleSessionName=s&RoleArn=nothing-valid-in-here",
       "nothing-valid-in-here is invalid"},
      {"Action=AssumeRole&RoleSessionName=s&RoleArn=" + Enc("arn::b:::something/test-role"),
       "arn::b:::something/test-role is invalid"},
      {"Action=AssumeRole&RoleSessionName=s&RoleArn=" + Enc("arn:a:::something/test-role"),
       "arn:a:::something/test-role is invalid"},
      {"Action=AssumeRole&RoleSessionName=s&RoleArn=" + Enc("arn:a:a::aaaaaaaaaa:"),
       "arn:a:a::aaaaaaaaaa: is invalid"},
      {AssumeRoleForm("r", "Session1%3A2"),
       "1 validation error detected: Value 'Session1:2' at 'roleSessionName' failed to satisfy "
       "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"},
      {AssumeRoleForm("r", "s"),
       "1 validation error detected: Value 's' at 'roleSessionName' failed to satisfy "
       "constraint: Member must have length greater than or equal to 2"},
      {AssumeRoleForm("r", "ok", "&DurationSeconds=899"),
       "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy "
       "constraint: Member must have value greater than or equal to 900"},
      {AssumeRoleForm("r", "ok", "&DurationSeconds=3601"),
       "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."},
      {"Action=AssumeRole&RoleArn=" + Enc("arn:aws:iam::123456789012:role/r"),
       "1 validation error detected: Value null at 'roleSessionName' failed to satisfy "
       "constraint: Member must not be null"},
  };
  for (const auto& c : cases) {
    auto r = StsRoot(c.form);
    EXPECT_AWS_ERROR(r, 400, "ValidationError", c.message);
  }
  EXPECT_EQ(StsRoot(AssumeRoleForm("r", "ok", "&DurationSeconds=900")).status, 200);
  EXPECT_EQ(StsRoot(AssumeRoleForm("r", "ok", "&DurationSeconds=3600")).status, 200);
}

TEST_F(StsTest, RoleChainingIsLimitedToAnHour) {
  ASSERT_TRUE(iam_->CreateRole("a", "/", kTrustAccount, "", 43200, {}).ok());
  ASSERT_TRUE(
      iam_->PutInlinePolicy(
              iam::Iam::Entity::kRole, "a", "assume",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]})")
          .ok());
  auto r = StsRoot(AssumeRoleForm("a", "first"));
  ASSERT_EQ(r.status, 200);
  aws::Call as_a = CallAs(Tag(r.body, "AccessKeyId"));
  r = Sts(AssumeRoleForm("a", "second", "&DurationSeconds=7200"), as_a);
  EXPECT_AWS_ERROR(r, 400, "ValidationError",
                   "The requested DurationSeconds exceeds the 1 hour session limit for roles "
                   "assumed by role chaining.");
  r = Sts(AssumeRoleForm("a", "second"), as_a);
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST_F(StsTest, GetSessionTokenAndAccessKeyInfo) {
  ASSERT_TRUE(iam_->CreateUser("carol", "/", {}).ok());
  ASSERT_TRUE(
      iam_->PutInlinePolicy(
              iam::Iam::Entity::kUser, "carol", "all",
              R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})")
          .ok());
  auto key = iam_->CreateAccessKey("carol");
  ASSERT_TRUE(key.ok());
  auto r = Sts("Action=GetSessionToken&DurationSeconds=900", CallAs(key->id));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string akid = Tag(r.body, "AccessKeyId");
  EXPECT_EQ(Tag(r.body, "Expiration"), "2026-11-23T20:15:00Z");
  auto c = iam::Credentials(*iam_).Lookup(akid);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->principal.type, auth::PrincipalType::kUser);
  EXPECT_EQ(c->principal.arn, "arn:aws:iam::123456789012:user/carol");
  r = Sts("Action=GetSessionToken", CallAs(akid));
  EXPECT_AWS_ERROR(r, 403, "AccessDenied", "Cannot call GetSessionToken with session credentials");

  r = StsRoot("Action=GetAccessKeyInfo&AccessKeyId=" + key->id);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Tag(r.body, "Account"), "123456789012");
}

}  // namespace
}  // namespace sts
