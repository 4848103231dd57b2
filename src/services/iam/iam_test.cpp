// iam::Iam as plain logic: races, atomicity, ids and store layout.
#include "services/iam/iam.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "services/iam/records.h"
#include "services/iam/test_util.h"

namespace iam {
namespace {

using testing::IamTest;

constexpr const char* kDoc =
    R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]})";

class IamLogicTest : public IamTest {};

TEST_F(IamLogicTest, ConcurrentCreatesHaveOneWinner) {
  std::atomic<int> ok{0}, exists{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      auto r = iam_->CreateUser("same", "/", {});
      if (r.ok())
        ++ok;
      else if (r.status().code() == base::Code::kAlreadyExists)
        ++exists;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(exists.load(), 7);
}

TEST_F(IamLogicTest, ConcurrentKeyCreationRespectsTheLimit) {
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      if (iam_->CreateAccessKey("alice").ok()) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  auto keys = iam_->ListAccessKeys("alice");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 2u);
  // Exactly the listed keys are indexed.
  auto index = store_->Range(store::KeyRange::Prefix(std::string(internal::kKeysPrefix)));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->kvs.size(), 2u);
}

TEST_F(IamLogicTest, ConcurrentAttachmentsKeepCountsExact) {
  auto policy = iam_->CreatePolicy("p", "/", kDoc, "", {});
  ASSERT_TRUE(policy.ok());
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(iam_->CreateUser("u" + std::to_string(i), "/", {}).ok());
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&, i] {
      EXPECT_TRUE(
          iam_->AttachPolicy(Iam::Entity::kUser, "u" + std::to_string(i), policy->arn).ok());
    });
  for (auto& t : threads) t.join();
  auto got = iam_->GetPolicy(policy->arn);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->attachment_count, 6);
}

TEST_F(IamLogicTest, FailedWritesChangeNothing) {
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  store::Revision before = store_->CurrentRevision();
  EXPECT_FALSE(iam_->CreateUser("alice", "/", {}).ok());
  EXPECT_FALSE(
      iam_->AttachPolicy(Iam::Entity::kUser, "alice", "arn:aws:iam::123456789012:policy/missing")
          .ok());
  EXPECT_FALSE(iam_->PutInlinePolicy(Iam::Entity::kUser, "alice", "p", "{").ok());
  EXPECT_FALSE(iam_->DeleteUser("nobody").ok());
  EXPECT_EQ(store_->CurrentRevision(), before);
}

TEST_F(IamLogicTest, IdsAndArnsAreAwsShaped) {
  auto u = iam_->CreateUser("alice", "/a/b/", {});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->arn, "arn:aws:iam::123456789012:user/a/b/alice");
  EXPECT_EQ(u->id.size(), 21u);
  for (char c : u->id.substr(4)) EXPECT_TRUE((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'));
  auto r = iam_->CreateRole(
      "r", "/",
      R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]})",
      "", 0, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id.rfind("AROA", 0), 0u);
  EXPECT_EQ(r->max_session_duration, 3600);
}

TEST_F(IamLogicTest, SurvivesReopen) {
  ASSERT_TRUE(iam_->CreateUser("alice", "/", {}).ok());
  auto key = iam_->CreateAccessKey("alice");
  ASSERT_TRUE(key.ok());
  base::SystemTime created = iam_->account_created();
  iam_.reset();
  Options io;
  io.account_id = testing::kAccount;
  io.clock = &clock_;
  clock_.Advance(std::chrono::hours(1));
  auto reopened = OpenIam(store_.get(), io);
  ASSERT_TRUE(reopened.ok());
  iam_ = std::move(reopened).value();
  EXPECT_EQ(iam_->account_created(), created);
  auto c = Credentials(*iam_).Lookup(key->id);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->secret_access_key, key->secret);
}

TEST_F(IamLogicTest, CorruptRecordsAreErrorsNotCrashes) {
  ASSERT_TRUE(store_->Put(internal::UserKey("broken"), "{not json").ok());
  auto u = iam_->GetUser("broken");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), base::Code::kCorruption);
  ASSERT_TRUE(store_->Put(internal::UserKey("broken"), R"({"name":1})").ok());
  EXPECT_FALSE(iam_->GetUser("broken").ok());
  EXPECT_FALSE(iam_->ListUsers("", {}).ok());
}

TEST(IamRecords, ParseArn) {
  EXPECT_TRUE(internal::ParseArn("arn:aws:iam::123:role/x").has_value());
  EXPECT_EQ(internal::ParseArn("arn:aws:iam::123:role/a:b")->resource, "role/a:b");
  EXPECT_FALSE(internal::ParseArn("nothing-valid-in-here"));
  EXPECT_FALSE(internal::ParseArn("arn::b:::something/test-role"));
  EXPECT_FALSE(internal::ParseArn("arn:a::::something/test-role"));
  EXPECT_FALSE(internal::ParseArn("arn:a:::something/test-role"));
  EXPECT_FALSE(internal::ParseArn("arn:a:a::aaaaaaaaaa:"));
}

TEST(IamRecords, BuiltinPoliciesParse) {
  for (const auto& p : internal::AwsManagedPolicies()) {
    ASSERT_EQ(p.versions.size(), 1u);
    EXPECT_TRUE(
        internal::ValidatePolicyDocument(p.versions[0].document, internal::DocumentKind::kIdentity)
            .ok())
        << p.name;
    EXPECT_EQ(p.id.size(), 21u);
  }
  EXPECT_NE(internal::FindAwsManagedPolicy("arn:aws:iam::aws:policy/AdministratorAccess"), nullptr);
}

}  // namespace
}  // namespace iam
