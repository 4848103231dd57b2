#include "services/ecr/ecr.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "services/ecr/api.h"
#include "services/ecr/registry.h"

namespace ecr {
namespace {

using nlohmann::json;

std::string Digest(std::string_view data) { return "sha256:" + base::Sha256Hex(data); }

class EcrTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ecr_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    so.clock = &clock_;
    store_ = std::move(store::OpenSqliteStore(so)).value();
    blobs_ = std::move(store::OpenBlobStore(dir_ + "/blobs", store_.get())).value();
    Options o;
    o.clock = &clock_;
    ecr_ = std::move(OpenEcr(store_.get(), blobs_.get(), o)).value();
  }
  void TearDown() override {
    ecr_.reset();
    blobs_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Uploads `data` into `repo` through an upload session; returns its digest.
  std::string Push(const std::string& repo, const std::string& data) {
    auto up = ecr_->StartUpload(repo, "me");
    EXPECT_TRUE(up.ok());
    EXPECT_TRUE(up.value()->writer->Write(data).ok());
    auto d = ecr_->CompleteUpload(up.value(), Digest(data));
    EXPECT_TRUE(d.ok()) << d.failure().message;
    return Digest(data);
  }

  std::string ImageManifest(const std::string& repo, const std::string& layer) {
    std::string cfg = "{\"layer\":\"" + layer + "\"}";
    Push(repo, cfg);
    Push(repo, layer);
    return json{{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"config",
                 {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                  {"digest", Digest(cfg)},
                  {"size", cfg.size()}}},
                {"layers", json::array({{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                                         {"digest", Digest(layer)},
                                         {"size", layer.size()}}})}}
        .dump();
  }

  std::string dir_;
  base::ManualClock clock_{base::SystemTime(std::chrono::seconds(1700000000))};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<Ecr> ecr_;
};

TEST(EcrNames, RepositoryNamesAndTags) {
  EXPECT_TRUE(IsValidRepositoryName("app"));
  EXPECT_TRUE(IsValidRepositoryName("team/app-1.x_y"));
  EXPECT_TRUE(IsValidRepositoryName("a__b"));
  EXPECT_FALSE(IsValidRepositoryName("a"));
  EXPECT_FALSE(IsValidRepositoryName("App"));
  EXPECT_FALSE(IsValidRepositoryName("a//b"));
  EXPECT_FALSE(IsValidRepositoryName("-ab"));
  EXPECT_FALSE(IsValidRepositoryName("ab:c"));
  EXPECT_FALSE(IsValidRepositoryName("a..b"));
  EXPECT_TRUE(IsValidTag("v1.2-rc_3"));
  EXPECT_FALSE(IsValidTag(".v1"));
  EXPECT_FALSE(IsValidTag(std::string(129, 'a')));
}

TEST(EcrManifest, RejectsHostileManifests) {
  for (
      std::string bad :
      {"", "[]", "{", "{\"schemaVersion\":2}", "{\"schemaVersion\":1,\"config\":{}}",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:zz","size":1},"layers":[]})",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":-1},"layers":[]})",
       R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":{}})",
       R"({"schemaVersion":2,"mediaType":"text/plain"})"}) {
    EXPECT_FALSE(ParseManifest(bad, "").ok()) << bad;
  }
  std::string ok =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";
  EXPECT_TRUE(ParseManifest(ok, "").ok());
  // Content-Type disagreeing with mediaType.
  EXPECT_FALSE(ParseManifest(ok, "application/vnd.oci.image.manifest.v1+json").ok());
}

TEST_F(EcrTest, PushPullTagAndImmutability) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  EXPECT_EQ(ecr_->CreateRepository("app", false, false).failure().code, Err::kRepositoryExists);
  std::string m = ImageManifest("app", "layer-1");
  auto img = ecr_->PutManifest("app", "v1", m, "", "");
  ASSERT_TRUE(img.ok()) << img.failure().message;
  EXPECT_EQ(img.value().digest, Digest(m));
  auto got = ecr_->GetImage("app", "v1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got.value().tags, std::vector<std::string>{"v1"});
  EXPECT_EQ(ecr_->ReadManifest("app", got.value().digest).value(), m);

  // Immutable: the same tag may not move.
  ASSERT_TRUE(ecr_->SetImmutable("app", true).ok());
  std::string m2 = ImageManifest("app", "layer-2");
  EXPECT_EQ(ecr_->PutManifest("app", "v1", m2, "", "").failure().code, Err::kTagImmutable);
  EXPECT_TRUE(ecr_->PutManifest("app", "v2", m2, "", "").ok());
}

TEST_F(EcrTest, ManifestNamingMissingBlobStoresNothing) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  ASSERT_TRUE(ecr_->CreateRepository("other", false, false).ok());
  std::string m = ImageManifest("other", "only-in-other");
  auto r = ecr_->PutManifest("app", "v1", m, "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure().code, Err::kLayersNotFound);
  EXPECT_TRUE(ecr_->ListImages("app").value().empty());
  // A wrong digest in the reference.
  EXPECT_EQ(ecr_->PutManifest("other", "", m, "", Digest("x")).failure().code, Err::kDigestInvalid);
}

TEST_F(EcrTest, DigestMismatchKeepsNothing) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  auto up = ecr_->StartUpload("app", "me");
  ASSERT_TRUE(up.value()->writer->Write("hello").ok());
  auto d = ecr_->CompleteUpload(up.value(), Digest("other"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.failure().code, Err::kDigestInvalid);
  EXPECT_FALSE(ecr_->BlobSize("app", Digest("hello")).ok());
  EXPECT_FALSE(blobs_->Stat(Digest("hello")).ok());
  EXPECT_EQ(ecr_->FindUpload("app", up.value()->id), nullptr);
}

TEST_F(EcrTest, DeleteRepositoryNeedsForceAndDropsReferences) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  std::string m = ImageManifest("app", "layer");
  ASSERT_TRUE(ecr_->PutManifest("app", "v1", m, "", "").ok());
  EXPECT_EQ(ecr_->DeleteRepository("app", false).failure().code, Err::kRepositoryNotEmpty);
  ASSERT_TRUE(ecr_->DeleteRepository("app", true).ok());
  EXPECT_EQ(ecr_->GetRepository("app").failure().code, Err::kRepositoryNotFound);
  clock_.Advance(std::chrono::hours(2));
  auto n = blobs_->Gc(std::chrono::seconds(0));
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(blobs_->Stat(Digest("layer")).ok());
}

TEST_F(EcrTest, GcKeepsBlobsOfLiveImages) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  std::string m = ImageManifest("app", "layer");
  ASSERT_TRUE(ecr_->PutManifest("app", "v1", m, "", "").ok());
  ASSERT_TRUE(ecr_->UnlinkBlob("app", Digest("layer")).ok());  // the image still names it
  ASSERT_TRUE(blobs_->Gc(std::chrono::seconds(0)).ok());
  EXPECT_TRUE(blobs_->Stat(Digest("layer")).ok());
  EXPECT_TRUE(blobs_->Stat(Digest(m)).ok());
}

TEST_F(EcrTest, LifecycleExpiresByCountAndAge) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  for (int i = 0; i < 4; ++i) {
    std::string m = ImageManifest("app", "layer" + std::to_string(i));
    ASSERT_TRUE(ecr_->PutManifest("app", "rel-" + std::to_string(i), m, "", "").ok());
    clock_.Advance(std::chrono::hours(24));
  }
  std::string untagged = ImageManifest("app", "untagged");
  ASSERT_TRUE(ecr_->PutManifest("app", "", untagged, "", "").ok());
  std::string policy = R"({"rules":[
    {"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},
    {"rulePriority":2,"selection":{"tagStatus":"tagged","tagPrefixList":["rel-"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]})";
  ASSERT_TRUE(ecr_->SetLifecyclePolicy("app", policy).ok());
  EXPECT_EQ(ecr_->ApplyLifecyclePolicy("app").value(), 2);  // rel-0, rel-1; untagged too young
  clock_.Advance(std::chrono::hours(49));
  EXPECT_EQ(ecr_->ApplyLifecyclePolicy("app").value(), 1);  // now the untagged one
  auto imgs = ecr_->ListImages("app").value();
  std::vector<std::string> tags;
  for (const auto& i : imgs) tags.insert(tags.end(), i.tags.begin(), i.tags.end());
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"rel-2", "rel-3"}));
  EXPECT_FALSE(ParseLifecyclePolicy(R"({"rules":[{"rulePriority":1}]})").ok());
  EXPECT_EQ(ecr_->SetLifecyclePolicy("app", "{}").failure().code, Err::kInvalidParameter);
}

TEST_F(EcrTest, TokensExpire) {
  auth::Principal p;
  p.arn = "arn:aws:iam::000000000000:root";
  auto t = ecr_->IssueToken(p);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(ecr_->LookupToken(t.value().token).has_value());
  EXPECT_FALSE(ecr_->LookupToken("nope").has_value());
  clock_.Advance(std::chrono::hours(13));
  EXPECT_FALSE(ecr_->LookupToken(t.value().token).has_value());
}

// The JSON API and the /v2/ front end, driven in process.
class FrontTest : public EcrTest {
 protected:
  void SetUp() override {
    EcrTest::SetUp();
    api_ = MakeEcrService(*ecr_);
    registry_ = std::make_unique<Registry>(*ecr_);
  }
  http::Response Api(const std::string& op, const json& body) {
    http::Request r;
    r.method = "POST";
    r.path = "/";
    r.headers.push_back({"X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921." + op});
    r.body = body.dump();
    aws::Call call;
    call.request_id = "rid";
    call.access_key_id = "AKIDTEST";
    http::Response out;
    api_->Handle(call, std::move(r), [&](http::Response x) { out = std::move(x); });
    return out;
  }
  static std::string Code(const http::Response& r) {
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("__type", std::string()) : "";
  }
  http::Response V2(const std::string& method, const std::string& target, std::string body = {},
                    bool signed_in = true) {
    http::Request r;
    r.method = method;
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    r.body = std::move(body);
    aws::Call call;
    if (signed_in) {
      call.access_key_id = "AKIDTEST";
      call.principal.arn = "arn:aws:iam::000000000000:root";
    }
    http::Response out;
    registry_->Handle(call, std::move(r), [&](http::Response x) { out = std::move(x); });
    return out;
  }
  static std::string OciCode(const http::Response& r) {
    auto j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j["errors"][0].value("code", std::string()) : "";
  }
  std::unique_ptr<aws::Service> api_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(FrontTest, ApiErrorCodes) {
  struct Case {
    std::string op;
    json body;
    std::string code;
  };
  ASSERT_EQ(Api("CreateRepository", {{"repositoryName", "app"}}).status, 200);
  std::vector<Case> cases = {
      {"CreateRepository", {{"repositoryName", "app"}}, "RepositoryAlreadyExistsException"},
      {"CreateRepository", {{"repositoryName", "UPPER"}}, "InvalidParameterException"},
      {"CreateRepository", json::object(), "InvalidParameterException"},
      {"DescribeRepositories", {{"repositoryNames", {"nope"}}}, "RepositoryNotFoundException"},
      {"DeleteRepository", {{"repositoryName", "nope"}}, "RepositoryNotFoundException"},
      {"DescribeImages",
       {{"repositoryName", "app"}, {"imageIds", {{{"imageTag", "x"}}}}},
       "ImageNotFoundException"},
      {"GetLifecyclePolicy", {{"repositoryName", "app"}}, "LifecyclePolicyNotFoundException"},
      {"DeleteLifecyclePolicy", {{"repositoryName", "app"}}, "LifecyclePolicyNotFoundException"},
      {"GetRepositoryPolicy", {{"repositoryName", "app"}}, "RepositoryPolicyNotFoundException"},
      {"PutLifecyclePolicy",
       {{"repositoryName", "app"}, {"lifecyclePolicyText", "nope"}},
       "InvalidParameterException"},
      {"PutImage",
       {{"repositoryName", "app"}, {"imageManifest", "{"}},
       "InvalidParameterException"},
      {"PutImageTagMutability",
       {{"repositoryName", "app"}, {"imageTagMutability", "X"}},
       "InvalidParameterException"},
      {"UploadLayerPart",
       {{"repositoryName", "app"}, {"uploadId", "nope"}},
       "UploadNotFoundException"},
      {"ListImages", {{"repositoryName", "app"}, {"maxResults", 0}}, "InvalidParameterException"},
  };
  for (const auto& c : cases) {
    http::Response r = Api(c.op, c.body);
    EXPECT_EQ(r.status, 400) << c.op << " " << r.body;
    EXPECT_EQ(Code(r), c.code) << c.op << " " << r.body;
  }
}

TEST_F(FrontTest, RegistryPushPullAndErrors) {
  ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  EXPECT_EQ(V2("GET", "/v2/").status, 200);
  http::Response anon = V2("GET", "/v2/", {}, false);
  EXPECT_EQ(anon.status, 401);
  ASSERT_NE(anon.Find("WWW-Authenticate"), nullptr);
  std::string data = "blob bytes";
  std::string d = Digest(data);
  EXPECT_EQ(V2("POST", "/v2/app/blobs/uploads/?digest=" + d, data).status, 201);
  http::Response get = V2("GET", "/v2/app/blobs/" + d);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body_file_length, data.size());
  EXPECT_EQ(*get.Find("Docker-Content-Digest"), d);
  EXPECT_EQ(OciCode(V2("POST", "/v2/nope/blobs/uploads/")), "NAME_UNKNOWN");
  EXPECT_EQ(OciCode(V2("GET", "/v2/app/blobs/" + Digest("none"))), "BLOB_UNKNOWN");
  EXPECT_EQ(OciCode(V2("GET", "/v2/app/manifests/none")), "MANIFEST_UNKNOWN");
  EXPECT_EQ(OciCode(V2("PUT", "/v2/app/manifests/v1", "{}")), "MANIFEST_INVALID");
  EXPECT_EQ(OciCode(V2("GET", "/v2/app/blobs/uploads/nope")), "BLOB_UPLOAD_UNKNOWN");
  EXPECT_EQ(V2("OPTIONS", "/v2/app/tags/list").status, 405);
  EXPECT_EQ(OciCode(V2("GET", "/v2/app/blobs/" + d, {}, false)), "UNAUTHORIZED");
  http::Response range = [&] {
    http::Request r;
    r.method = "GET";
    r.path = "/v2/app/blobs/" + d;
    r.headers.push_back({"Range", "bytes=2-4"});
    aws::Call call;
    call.access_key_id = "AKIDTEST";
    http::Response out;
    registry_->Handle(call, std::move(r), [&](http::Response x) { out = std::move(x); });
    return out;
  }();
  EXPECT_EQ(range.status, 206);
  EXPECT_EQ(range.body_file_offset, 2u);
  EXPECT_EQ(range.body_file_length, 3u);
  EXPECT_EQ(*range.Find("Content-Range"), "bytes 2-4/" + std::to_string(data.size()));
}

TEST(EcrPolicy, AnonymousPull) {
  std::string pub = R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
      "Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]})";
  EXPECT_TRUE(PolicyAllowsAnonymous(pub, "ecr:BatchGetImage"));
  EXPECT_FALSE(PolicyAllowsAnonymous(pub, "ecr:PutImage"));
  EXPECT_FALSE(PolicyAllowsAnonymous("", "ecr:BatchGetImage"));
  EXPECT_FALSE(PolicyAllowsAnonymous(
      R"({"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"ecr:*"}]})",
      "ecr:BatchGetImage"));
}

}  // namespace
}  // namespace ecr
