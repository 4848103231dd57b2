// The hot path: credential lookup with its cache, and policy decisions (table-driven).
#include <gtest/gtest.h>

#include <thread>

#include "services/iam/test_util.h"

namespace iam {
namespace {

using testing::IamTest;

class AccessTest : public IamTest {
 protected:
  auth::Principal UserPrincipal(const std::string& name) {
    auto u = iam_->GetUser(name);
    EXPECT_TRUE(u.ok());
    auth::Principal p;
    p.type = auth::PrincipalType::kUser;
    p.account_id = testing::kAccount;
    p.arn = u.ok() ? u->arn : "";
    p.user_id = u.ok() ? u->id : "";
    p.name = name;
    return p;
  }
};

TEST_F(AccessTest, UserKeysWorkAtOnceAndStopAtOnce) {
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  auto& creds = Credentials(*iam_);
  EXPECT_EQ(creds.Lookup("AKIAUNKNOWN000000000").status().code(), base::Code::kNotFound);
  EXPECT_EQ(creds.Lookup("bogus").status().code(), base::Code::kNotFound);

  auto key = iam_->CreateAccessKey("alice");
  ASSERT_TRUE(key.ok());
  auto c = creds.Lookup(key->id);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->secret_access_key, key->secret);
  EXPECT_TRUE(c->active);
  EXPECT_TRUE(c->session_token.empty());
  EXPECT_FALSE(c->expiration.has_value());
  EXPECT_EQ(c->principal.type, auth::PrincipalType::kUser);
  EXPECT_EQ(c->principal.arn, "arn:aws:iam::123456789012:user/alice");
  EXPECT_EQ(c->principal.name, "alice");
  EXPECT_EQ(c->principal.user_id.rfind("AIDA", 0), 0u);
  EXPECT_EQ(c->principal.account_id, testing::kAccount);

  ASSERT_TRUE(iam_->UpdateAccessKey("alice", key->id, false).ok());
  c = creds.Lookup(key->id);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->active);
  ASSERT_TRUE(iam_->DeleteAccessKey("alice", key->id).ok());
  EXPECT_EQ(creds.Lookup(key->id).status().code(), base::Code::kNotFound);
}

// Another server (a second Iam over the same store) changes keys; the watch keeps this
// one's cache honest.
TEST_F(AccessTest, WatchInvalidatesCacheForChangesFromElsewhere) {
  Options io;
  io.account_id = testing::kAccount;
  io.clock = &clock_;
  auto other = OpenIam(store_.get(), io);
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE((*other)->CreateUser("bob", "/", {}).ok());
  auto key = (*other)->CreateAccessKey("bob");
  ASSERT_TRUE(key.ok());
  auto c = Credentials(*iam_).Lookup(key->id);  // miss → store
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->active);
  ASSERT_TRUE((*other)->UpdateAccessKey("bob", key->id, false).ok());
  bool inactive = false;
  for (int i = 0; i < 200 && !inactive; ++i) {
    auto again = Credentials(*iam_).Lookup(key->id);
    inactive = again.ok() && !again->active;
    if (!inactive) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(inactive);
}

struct AuthzCase {
  std::string name;
  std::string action;
  std::string resource;
  auth::Decision want;
};

TEST_F(AccessTest, UserDecisionsFromAttachedAndInlinePolicies) {
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  auto managed = iam_->CreatePolicy(
      "s3-read", "/",
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:Get*","s3:List*"],"Resource":"*"}]})",
      "", {});
  ASSERT_TRUE(managed.ok());
  ASSERT_TRUE(iam_->AttachPolicy(Iam::Entity::kUser, "alice", managed->arn).ok());
  base::Status put = iam_->PutInlinePolicy(
      Iam::Entity::kUser, "alice", "deny-secret",
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::secret/*"},{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*","Condition":{"StringEquals":{"aws:username":"alice"}}}]})");
  ASSERT_TRUE(put.ok()) << put.ToString();
  ASSERT_TRUE(iam_->AttachPolicy(Iam::Entity::kUser, "alice",
                                 "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
                  .ok());

  const std::vector<AuthzCase> cases = {
      {"managed allow", "s3:GetObject", "arn:aws:s3:::data/x", auth::Decision::kAllow},
      {"managed allow, action case-insensitive", "S3:getobject", "arn:aws:s3:::data/x",
       auth::Decision::kAllow},
      {"not granted", "s3:PutObject", "arn:aws:s3:::data/x", auth::Decision::kImplicitDeny},
      {"inline deny beats managed allow", "s3:GetObject", "arn:aws:s3:::secret/x",
       auth::Decision::kExplicitDeny},
      {"condition on aws:username", "sqs:SendMessage", "arn:aws:sqs:us-east-1:1:q",
       auth::Decision::kAllow},
      {"aws managed policy", "logs:PutLogEvents", "*", auth::Decision::kAllow},
      {"other service", "iam:CreateUser", "*", auth::Decision::kImplicitDeny},
      {"GetCallerIdentity always", "sts:GetCallerIdentity", "*", auth::Decision::kAllow},
  };
  aws::Call call = MakeCall(UserPrincipal("alice"));
  auto& authz = iam_->authorizer();
  for (const auto& c : cases)
    EXPECT_EQ(authz.Decide(call, c.action, c.resource, {}), c.want) << c.name;

  // The errors a client sees, per protocol.
  auto denied = authz.Authorize(call, "s3:GetObject", "arn:aws:s3:::secret/x", {});
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->status, 403);
  EXPECT_EQ(denied->code, "AccessDenied");
  EXPECT_NE(denied->message.find("with an explicit deny"), std::string::npos);
  call.protocol = aws::Protocol::kJson;
  denied = authz.Authorize(call, "s3:PutObject", "*", {});
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->code, "AccessDeniedException");

  // Changes apply at once: detach the managed policy.
  ASSERT_TRUE(iam_->DetachPolicy(Iam::Entity::kUser, "alice", managed->arn).ok());
  EXPECT_EQ(authz.Decide(call, "s3:GetObject", "arn:aws:s3:::data/x", {}),
            auth::Decision::kImplicitDeny);

  // Root may do anything; a user that no longer exists nothing.
  EXPECT_EQ(authz.Decide(MakeCall(Root()), "iam:DeleteUser", "*", {}), auth::Decision::kAllow);
  auth::Principal ghost = UserPrincipal("alice");
  ghost.name = "ghost";
  EXPECT_EQ(authz.Decide(MakeCall(ghost), "logs:PutLogEvents", "*", {}),
            auth::Decision::kImplicitDeny);
}

TEST_F(AccessTest, ConditionContextCarriesGlobalKeys) {
  aws::Call call = MakeCall(Root());
  call.secure = true;
  auto ctx = IamAuthorizer::ConditionContext(call, {{"S3:Prefix", {"a/"}}});
  EXPECT_EQ(ctx["aws:principaltype"], std::vector<std::string>{"Account"});
  EXPECT_EQ(ctx["aws:sourceip"], std::vector<std::string>{"127.0.0.1"});
  EXPECT_EQ(ctx["aws:securetransport"], std::vector<std::string>{"true"});
  EXPECT_EQ(ctx["aws:currenttime"], std::vector<std::string>{"2026-11-23T20:00:00Z"});
  EXPECT_EQ(ctx["aws:requestedregion"], std::vector<std::string>{"us-east-1"});
  EXPECT_EQ(ctx["s3:prefix"], std::vector<std::string>{"a/"});
}

}  // namespace
}  // namespace iam
