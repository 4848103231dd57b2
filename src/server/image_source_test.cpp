#include "server/image_source.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "base/crypto.h"
#include "image/image_store.h"
#include "image/test_tar.h"
#include "store/store.h"

namespace server {
namespace {

std::string Digest(std::string_view d) { return "sha256:" + base::Sha256Hex(d); }

class ImageSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/image_source_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    store::SqliteOptions so;
    so.path = dir_ + "/store.db";
    store_ = std::move(store::OpenSqliteStore(so)).value();
    blobs_ = std::move(store::OpenBlobStore(dir_ + "/blobs", store_.get())).value();
    ecr_ = std::move(ecr::OpenEcr(store_.get(), blobs_.get(), ecr::Options{})).value();
    source_ = std::make_unique<EcrImageSource>(ecr_.get());
    images_ = std::move(image::ImageStore::Open(dir_ + "/image", source_.get())).value();
    ASSERT_TRUE(ecr_->CreateRepository("app", false, false).ok());
  }
  void TearDown() override {
    images_.reset();
    source_.reset();
    ecr_.reset();
    blobs_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string Push(const std::string& data) {
    auto up = ecr_->StartUpload("app", "me");
    EXPECT_TRUE(up.ok());
    EXPECT_TRUE(up.value()->writer->Write(data).ok());
    EXPECT_TRUE(ecr_->CompleteUpload(up.value(), Digest(data)).ok());
    return Digest(data);
  }

  // Pushes a one-layer image tagged `tag`; returns the layer digest.
  std::string PushImage(const std::string& tag, const std::string& content) {
    std::string layer =
        image::testing::MakeTar({{"etc/motd", 'f', content}}, image::testing::Compression::kGzip);
    image::ImageConfig c;
    c.entrypoint = {"/bin/app"};
    c.diff_ids = {Digest("unchecked")};
    std::string cfg = image::SerializeImageConfig(c);
    std::string ld = Push(layer), cd = Push(cfg);
    std::string m = image::SerializeOciManifest(
        {"", cd, cfg.size()}, {{std::string(image::kOciLayerGzip), ld, layer.size()}});
    auto put = ecr_->PutManifest("app", tag, m, image::kOciManifest, "");
    EXPECT_TRUE(put.ok()) << put.failure().message;
    return ld;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<ecr::Ecr> ecr_;
  std::unique_ptr<EcrImageSource> source_;
  std::unique_ptr<image::ImageStore> images_;
};

TEST_F(ImageSourceTest, PreparesAnImageFromTheRegistry) {
  std::string layer = PushImage("v1", "hello");
  auto p = images_->Prepare("app", "v1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->image.config.entrypoint, std::vector<std::string>{"/bin/app"});
  ASSERT_EQ(p->lower_dirs.size(), 1u);
  EXPECT_EQ(*base::ReadFile(p->lower_dirs[0] + "/etc/motd"), "hello");
  // Unknown tags and repositories are NotFound.
  EXPECT_EQ(images_->Prepare("app", "nope").status().code(), base::Code::kNotFound);
  EXPECT_EQ(images_->Prepare("other", "v1").status().code(), base::Code::kNotFound);
}

TEST_F(ImageSourceTest, GcDropsLayersOfDeletedImagesOnly) {
  std::string kept = PushImage("v1", "one");
  std::string gone = PushImage("v2", "two");
  ASSERT_TRUE(images_->Prepare("app", "v1").ok());
  auto v2 = images_->Prepare("app", "v2");
  ASSERT_TRUE(v2.ok());
  std::string v2_digest = v2->image.manifest_digest;
  v2 = base::Status(base::Code::kAborted, "released");  // drop the lease
  ASSERT_TRUE(ecr_->DeleteImage("app", v2_digest).ok());
  auto refs = ReferencedBlobs(*ecr_);
  ASSERT_TRUE(refs.ok());
  EXPECT_EQ(refs->count(kept), 1u);
  EXPECT_EQ(refs->count(gone), 0u);
  auto n = images_->Gc(*refs, std::chrono::seconds(-1));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_TRUE(std::filesystem::exists(images_->LayerDir(kept)));
  EXPECT_FALSE(std::filesystem::exists(images_->LayerDir(gone)));
}

}  // namespace
}  // namespace server
