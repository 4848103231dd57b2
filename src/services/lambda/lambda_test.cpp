#include "services/lambda/lambda.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "base/crypto.h"
#include "base/strings.h"
#include "services/lambda/test_fixture.h"

namespace lambda {
namespace {

using testing::HandlerZip;
using testing::LambdaTest;
using testing::MakeZip;

TEST_F(LambdaTest, CreateGetDefaults) {
  auto c = lambda_->CreateFunction(Request("fn"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->version, "$LATEST");
  EXPECT_EQ(c->timeout, 3);
  EXPECT_EQ(c->memory_size, 128);
  EXPECT_EQ(c->ephemeral_storage, 512);
  std::string zip = HandlerZip();
  EXPECT_EQ(c->code_sha256, base::Base64Encode(base::Sha256(zip)));
  EXPECT_EQ(c->code_size, zip.size());
  EXPECT_EQ(c->last_modified, "2026-11-23T20:00:00.000+0000");
  EXPECT_EQ(c->revision_id.size(), 36u);
  auto blob = blobs_->Get(c->code_digest);
  ASSERT_TRUE(blob.ok());
  EXPECT_EQ(*blob, zip);

  auto d = lambda_->GetFunction("fn", "");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->config.revision_id, c->revision_id);
  EXPECT_EQ(lambda_->FunctionArn("fn"), "arn:aws:lambda:us-east-1:000000000000:function:fn");

  auto dup = lambda_->CreateFunction(Request("fn"));
  EXPECT_EQ(dup.status().code(), base::Code::kAlreadyExists);
  EXPECT_EQ(dup.status().message(), "Function already exist: fn");

  auto missing = lambda_->GetFunction("nope", "");
  EXPECT_EQ(missing.status().code(), base::Code::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope");
}

TEST_F(LambdaTest, BadCodeIsRejectedAndNothingIsStored) {
  struct Case {
    std::string zip;
    base::Code code;
    std::string message;
  };
  const std::string unzip =
      "Could not unzip uploaded file. Please check your file, then try to upload again.";
  std::vector<Case> cases = {
      {"garbage", base::Code::kInvalidArgument, unzip},
      {MakeZip({{"../escape.py", "x"}}), base::Code::kInvalidArgument, unzip},
      {MakeZip({{"/abs.py", "x"}}), base::Code::kInvalidArgument, unzip},
      {MakeZip({{"link", "", "/etc/shadow"}}), base::Code::kInvalidArgument, unzip},
      {MakeZip({{"bomb", std::string(1 << 20, '\0'), "", 2}}), base::Code::kInvalidArgument,
       "Unzipped size must be smaller than 1048576 bytes"},
  };
  for (const auto& c : cases) {
    auto r = lambda_->CreateFunction(Request("bad", c.zip));
    EXPECT_EQ(r.status().code(), c.code);
    EXPECT_EQ(r.status().message(), c.message);
  }
  EXPECT_EQ(lambda_->GetFunction("bad", "").status().code(), base::Code::kNotFound);

  options_.max_zip_bytes = 100;
  auto small = OpenLambda(store_.get(), blobs_.get(), options_);
  ASSERT_TRUE(small.ok());
  auto big = (*small)->CreateFunction(Request("big", MakeZip({{"a", std::string(500, 'q')}})));
  EXPECT_EQ(big.status().code(), base::Code::kResourceExhausted);
  EXPECT_EQ(big.status().message(), "Zipped size must be smaller than 100 bytes");
}

TEST_F(LambdaTest, EnvironmentLimit) {
  auto r = Request("env");
  r.settings.environment = std::map<std::string, std::string>{{"BIG", std::string(4100, 'x')}};
  auto c = lambda_->CreateFunction(r);
  EXPECT_EQ(c.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(c.status().message().find("exceeded the 4KB limit. String measured: {\"BIG\":"),
            std::string::npos);
}

TEST_F(LambdaTest, ConcurrentCreatesOneWins) {
  std::atomic<int> won{0}, conflict{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      auto r = lambda_->CreateFunction(Request("race", HandlerZip("# " + std::to_string(i))));
      if (r.ok())
        ++won;
      else if (r.status().code() == base::Code::kAlreadyExists)
        ++conflict;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(conflict.load(), 7);
}

TEST_F(LambdaTest, UpdatesChangeRevisionAndHonourPreconditions) {
  auto c = lambda_->CreateFunction(Request("fn"));
  ASSERT_TRUE(c.ok());
  FunctionSettings s;
  s.timeout = 30;
  s.environment = std::map<std::string, std::string>{{"A", "1"}};
  auto u = lambda_->UpdateFunctionConfiguration("fn", s, c->revision_id);
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->timeout, 30);
  EXPECT_EQ(u->memory_size, 128);
  EXPECT_NE(u->revision_id, c->revision_id);

  auto stale = lambda_->UpdateFunctionConfiguration("fn", s, c->revision_id);
  EXPECT_EQ(stale.status().code(), base::Code::kFailedPrecondition);

  std::string zip2 = HandlerZip("def handler(e, c):\n  return 2\n");
  auto code = lambda_->UpdateFunctionCode("fn", zip2, "", false);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(code->code_sha256, base::Base64Encode(base::Sha256(zip2)));
  EXPECT_EQ(code->timeout, 30);
  auto stale_code = lambda_->UpdateFunctionCode("fn", zip2, u->revision_id, false);
  EXPECT_EQ(stale_code.status().code(), base::Code::kFailedPrecondition);
  EXPECT_EQ(lambda_->UpdateFunctionCode("nope", zip2, "", false).status().code(),
            base::Code::kNotFound);
}

TEST_F(LambdaTest, VersionsAliasesAndQualifiers) {
  ASSERT_TRUE(lambda_->CreateFunction(Request("fn")).ok());
  auto v1 = lambda_->PublishVersion("fn", "first", "", "");
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  EXPECT_EQ(v1->version, "1");
  EXPECT_EQ(v1->description, "first");
  // Nothing changed: publishing again returns version 1.
  auto again = lambda_->PublishVersion("fn", "", "", "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, "1");
  EXPECT_EQ(lambda_->PublishVersion("fn", "", "wrong", "").status().code(),
            base::Code::kInvalidArgument);

  ASSERT_TRUE(lambda_->UpdateFunctionCode("fn", HandlerZip("# 2"), "", false).ok());
  auto v2 = lambda_->PublishVersion("fn", "", "", "");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->version, "2");

  auto list = lambda_->ListVersions("fn", "", 50);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 3u);
  EXPECT_EQ(list->items[0].version, "$LATEST");
  EXPECT_EQ(list->items[2].version, "2");
  auto p1 = lambda_->ListVersions("fn", "", 2);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->items.size(), 2u);
  auto p2 = lambda_->ListVersions("fn", p1->next_marker, 2);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->items.size(), 1u);
  EXPECT_EQ(p2->items[0].version, "2");
  EXPECT_TRUE(p2->next_marker.empty());

  Alias a;
  a.name = "live";
  a.function_version = "1";
  auto created = lambda_->CreateAlias("fn", a);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(lambda_->CreateAlias("fn", a).status().code(), base::Code::kAlreadyExists);
  a.name = "bad";
  a.function_version = "9";
  EXPECT_EQ(lambda_->CreateAlias("fn", a).status().code(), base::Code::kNotFound);

  auto via_alias = lambda_->GetFunction("fn", "live");
  ASSERT_TRUE(via_alias.ok());
  EXPECT_EQ(via_alias->config.version, "1");
  EXPECT_EQ(via_alias->config.code_sha256, v1->code_sha256);
  EXPECT_EQ(lambda_->GetFunction("fn", "7").status().message(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:fn:7");

  AliasUpdate up;
  up.function_version = "2";
  up.revision_id = "stale";
  EXPECT_EQ(lambda_->UpdateAlias("fn", "live", up).status().code(),
            base::Code::kFailedPrecondition);
  up.revision_id = created->revision_id;
  auto updated = lambda_->UpdateAlias("fn", "live", up);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->function_version, "2");

  // A version an alias points at cannot be deleted; others can.
  EXPECT_EQ(lambda_->DeleteFunction("fn", "2").code(), base::Code::kAlreadyExists);
  EXPECT_TRUE(lambda_->DeleteFunction("fn", "1").ok());
  EXPECT_EQ(lambda_->GetFunction("fn", "1").status().code(), base::Code::kNotFound);
  EXPECT_EQ(lambda_->DeleteFunction("fn", "$LATEST").code(), base::Code::kInvalidArgument);

  auto aliases = lambda_->ListAliases("fn", "", "", 50);
  ASSERT_TRUE(aliases.ok());
  ASSERT_EQ(aliases->items.size(), 1u);
  EXPECT_TRUE(lambda_->DeleteAlias("fn", "live").ok());
  EXPECT_EQ(lambda_->GetAlias("fn", "live").status().code(), base::Code::kNotFound);
}

TEST_F(LambdaTest, DeleteDropsEveryBlobReference) {
  auto c = lambda_->CreateFunction(Request("fn"));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(lambda_->PublishVersion("fn", "", "", "").ok());
  // Referenced blobs survive a collection with no grace period.
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_TRUE(blobs_->Stat(c->code_digest).ok());
  ASSERT_TRUE(lambda_->DeleteFunction("fn", "").ok());
  EXPECT_EQ(lambda_->GetFunction("fn", "").status().code(), base::Code::kNotFound);
  auto gc = blobs_->Gc(std::chrono::seconds(0));
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(*gc, 1);
  EXPECT_FALSE(blobs_->Stat(c->code_digest).ok());
  EXPECT_EQ(lambda_->DeleteFunction("fn", "").code(), base::Code::kNotFound);
  // The name is free again.
  EXPECT_TRUE(lambda_->CreateFunction(Request("fn")).ok());
  EXPECT_TRUE(lambda_->ListTags("fn")->empty());
}

TEST_F(LambdaTest, LayerCodeLivesAsLongAsAFunctionUsesIt) {
  LayerVersion in;
  in.name = "lib";
  auto l = lambda_->PublishLayerVersion(in, testing::HandlerZip("layer = 1"));
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->version, 1);
  auto req = Request("fn");
  req.settings.layers = std::vector<std::string>{lambda_->LayerArn("lib", 1)};
  auto c = lambda_->CreateFunction(req);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->layers.size(), 1u);
  EXPECT_EQ(c->layers[0].digest, l->digest);
  ASSERT_TRUE(lambda_->PublishVersion("fn", "", "", "").ok());
  // The layer version goes; the function's versions still hold its code.
  ASSERT_TRUE(lambda_->DeleteLayerVersion("lib", 1).ok());
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_TRUE(blobs_->Stat(l->digest).ok());
  // Dropping the layer from $LATEST leaves version 1 holding it.
  FunctionSettings none;
  none.layers = std::vector<std::string>{};
  ASSERT_TRUE(lambda_->UpdateFunctionConfiguration("fn", none, "").ok());
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_TRUE(blobs_->Stat(l->digest).ok());
  ASSERT_TRUE(lambda_->DeleteFunction("fn", "1").ok());
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_FALSE(blobs_->Stat(l->digest).ok());
  // Version numbers are never reused.
  auto l2 = lambda_->PublishLayerVersion(in, testing::HandlerZip("layer = 2"));
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->version, 2);
  req.settings.layers = std::vector<std::string>{lambda_->LayerArn("lib", 1)};
  req.name = "fn2";
  EXPECT_EQ(lambda_->CreateFunction(req).status().code(), base::Code::kInvalidArgument);
}

TEST_F(LambdaTest, ListFunctionsPages) {
  for (const char* n : {"a", "b", "c", "d", "e"})
    ASSERT_TRUE(lambda_->CreateFunction(Request(n)).ok());
  std::vector<std::string> seen;
  std::string marker;
  int pages = 0;
  do {
    auto p = lambda_->ListFunctions(marker, 2);
    ASSERT_TRUE(p.ok());
    for (const auto& c : p->items) seen.push_back(c.name);
    marker = p->next_marker;
    ++pages;
  } while (!marker.empty() && pages < 10);
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(pages, 3);
}

TEST_F(LambdaTest, ConcurrencyAndAccountSettings) {
  ASSERT_TRUE(lambda_->CreateFunction(Request("a")).ok());
  ASSERT_TRUE(lambda_->CreateFunction(Request("b")).ok());
  EXPECT_FALSE(lambda_->GetFunctionConcurrency("a")->has_value());
  EXPECT_TRUE(lambda_->PutFunctionConcurrency("a", 800).ok());
  EXPECT_EQ(**lambda_->GetFunctionConcurrency("a"), 800);
  auto over = lambda_->PutFunctionConcurrency("b", 101);
  EXPECT_EQ(over.code(), base::Code::kInvalidArgument);
  EXPECT_NE(over.message().find("below its minimum value of [100]"), std::string::npos);
  EXPECT_TRUE(lambda_->PutFunctionConcurrency("b", 100).ok());
  auto s = lambda_->GetAccountSettings();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->unreserved_concurrent_executions, 100);
  EXPECT_EQ(s->function_count, 2);
  EXPECT_EQ(s->total_code_size, 2 * HandlerZip().size());
  ASSERT_TRUE(lambda_->DeleteFunction("a", "").ok());
  EXPECT_EQ(lambda_->GetAccountSettings()->unreserved_concurrent_executions, 900);
  EXPECT_TRUE(lambda_->DeleteFunctionConcurrency("b").ok());
  EXPECT_EQ(lambda_->GetAccountSettings()->unreserved_concurrent_executions, 1000);
  EXPECT_EQ(lambda_->PutFunctionConcurrency("zz", 1).code(), base::Code::kNotFound);
}

TEST_F(LambdaTest, Tags) {
  auto r = Request("fn");
  r.tags = {{"team", "a"}};
  ASSERT_TRUE(lambda_->CreateFunction(r).ok());
  ASSERT_TRUE(lambda_->TagResource("fn", {{"env", "dev"}, {"team", "b"}}).ok());
  EXPECT_EQ(*lambda_->ListTags("fn"),
            (std::map<std::string, std::string>{{"env", "dev"}, {"team", "b"}}));
  ASSERT_TRUE(lambda_->UntagResource("fn", {"team", "absent"}).ok());
  EXPECT_EQ(*lambda_->ListTags("fn"), (std::map<std::string, std::string>{{"env", "dev"}}));
  EXPECT_EQ(lambda_->TagResource("nope", {{"a", "b"}}).code(), base::Code::kNotFound);
}

}  // namespace
}  // namespace lambda
