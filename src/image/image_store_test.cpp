#include "image/image_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <thread>

#include "base/crypto.h"
#include "image/test_tar.h"

namespace image {
namespace {

using testing::Compression;
using testing::MakeTar;
using testing::TempDir;

std::string Digest(const std::string& b) { return "sha256:" + base::Sha256Hex(b); }

class FakeSource : public Source {
 public:
  explicit FakeSource(const TempDir& dir) : dir_(dir) {}
  std::string AddBlob(const std::string& bytes) {
    std::string d = Digest(bytes);
    blobs_[d] = dir_.Write(d.substr(7), bytes);
    return d;
  }
  std::string AddManifest(const std::string& tag, const std::string& bytes) {
    std::string d = Digest(bytes);
    manifests_[d] = bytes;
    if (!tag.empty()) manifests_[tag] = bytes;
    return d;
  }
  base::Result<ManifestBlob> GetManifest(const std::string& repo, const std::string& ref) override {
    auto it = manifests_.find(ref);
    if (repo != "app" || it == manifests_.end()) return base::NotFound("no manifest " + ref);
    return ManifestBlob{"", Digest(it->second), it->second};
  }
  base::Result<std::string> ReadBlob(const std::string& repo, const std::string& d) override {
    ASSIGN_OR_RETURN(std::string p, BlobPath(repo, d));
    return base::ReadFile(p);
  }
  base::Result<std::string> BlobPath(const std::string&, const std::string& d) override {
    ++blob_reads;
    auto it = blobs_.find(d);
    if (it == blobs_.end()) return base::NotFound("no blob " + d);
    return it->second;
  }
  int blob_reads = 0;
  std::map<std::string, std::string> blobs_;

 private:
  const TempDir& dir_;
  std::map<std::string, std::string> manifests_;
};

std::string Manifest(const std::string& cfg, const std::string& cfg_digest,
                     const std::vector<std::pair<std::string, uint64_t>>& layers) {
  std::vector<Descriptor> ls;
  for (const auto& [d, s] : layers) ls.push_back({"", d, s});
  return SerializeOciManifest({"", cfg_digest, cfg.size()}, ls);
}

struct Fixture {
  TempDir blobs, root;
  FakeSource source{blobs};
  std::string l1, l2, manifest_digest;
  Fixture() {
    std::string t1 =
        MakeTar({{"etc/os-release", 'f', "one"}, {"bin/sh", 'f', "sh"}}, Compression::kGzip);
    std::string t2 = MakeTar({{"etc/os-release", 'f', "two"}}, Compression::kZstd);
    l1 = source.AddBlob(t1);
    l2 = source.AddBlob(t2);
    ImageConfig c;
    c.cmd = {"/bin/sh"};
    c.env = {"PATH=/bin"};
    c.diff_ids = {Digest("x"), Digest("y")};
    std::string cfg = SerializeImageConfig(c);
    std::string cd = source.AddBlob(cfg);
    manifest_digest =
        source.AddManifest("v1", Manifest(cfg, cd, {{l1, t1.size()}, {l2, t2.size()}}));
  }
};

TEST(ImageStore, PreparesLowerDirsOncePerLayer) {
  Fixture f;
  auto store = ImageStore::Open(f.root.path(), &f.source);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto p = (*store)->Prepare("app", "v1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->image.manifest_digest, f.manifest_digest);
  EXPECT_EQ(p->image.config.cmd, std::vector<std::string>{"/bin/sh"});
  ASSERT_EQ(p->lower_dirs.size(), 2u);
  EXPECT_EQ(p->lower_dirs[0], f.root.path() + "/layers/" + f.l1.substr(7));
  EXPECT_EQ(*base::ReadFile(p->lower_dirs[1] + "/etc/os-release"), "two");
  int reads = f.source.blob_reads;
  auto again = (*store)->Prepare("app", f.manifest_digest);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(f.source.blob_reads, reads + 1);  // only the config; layers were cached
}

TEST(ImageStore, ConcurrentPreparesUnpackOnce) {
  Fixture f;
  auto store = ImageStore::Open(f.root.path(), &f.source);
  ASSERT_TRUE(store.ok());
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i)
    ts.emplace_back([&] { ok += (*store)->Prepare("app", "v1").ok() ? 1 : 0; });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 4);
}

TEST(ImageStore, ResolvesAnIndex) {
  Fixture f;
  std::string idx = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
    "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                    f.manifest_digest +
                    R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  f.source.AddManifest("multi", idx);
  auto store = ImageStore::Open(f.root.path(), &f.source);
  auto r = (*store)->Resolve("app", "multi");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->manifest_digest, f.manifest_digest);
  EXPECT_EQ(r->layers.size(), 2u);
}

TEST(ImageStore, LayerDigestMismatchLeavesNothing) {
  Fixture f;
  // Swap the bytes behind l2 for something else.
  ASSERT_TRUE(base::WriteFileAtomic(f.source.blobs_[f.l2],
                                    MakeTar({{"evil", 'f', "x"}}, Compression::kGzip))
                  .ok());
  auto store = ImageStore::Open(f.root.path(), &f.source);
  auto p = (*store)->Prepare("app", "v1");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), base::Code::kCorruption);
  struct stat st {};
  EXPECT_NE(stat((f.root.path() + "/layers/" + f.l2.substr(7)).c_str(), &st), 0);
  // Nothing half-unpacked in tmp/ either.
  EXPECT_EQ(rmdir((f.root.path() + "/tmp").c_str()), 0);
}

TEST(ImageStore, UnknownReferenceIsNotFound) {
  Fixture f;
  auto store = ImageStore::Open(f.root.path(), &f.source);
  auto r = (*store)->Resolve("app", "nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kNotFound);
}

TEST(ImageStore, GcKeepsReferencedAndLeasedLayers) {
  Fixture f;
  auto store = ImageStore::Open(f.root.path(), &f.source);
  {
    auto p = (*store)->Prepare("app", "v1");
    ASSERT_TRUE(p.ok());
    // Leased: nothing goes, even unreferenced and with no grace.
    auto n = (*store)->Gc({}, std::chrono::seconds(-1));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 0);
  }
  // Within the grace period: kept.
  EXPECT_EQ(*(*store)->Gc({}, std::chrono::hours(1)), 0);
  // l1 referenced, l2 not: l2 goes.
  EXPECT_EQ(*(*store)->Gc({f.l1}, std::chrono::seconds(-1)), 1);
  struct stat st {};
  EXPECT_EQ(stat((*store)->LayerDir(f.l1).c_str(), &st), 0);
  EXPECT_NE(stat((*store)->LayerDir(f.l2).c_str(), &st), 0);
  // And it comes back on demand.
  auto p = (*store)->Prepare("app", "v1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(*base::ReadFile(p->lower_dirs[1] + "/etc/os-release"), "two");
}

TEST(Reference, Parses) {
  auto r = ParseReference("127.0.0.1:4566/team/app:v2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->repository, "team/app");
  EXPECT_EQ(r->reference, "v2");
  r = ParseReference("app");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reference, "latest");
  std::string d = "sha256:" + std::string(64, 'a');
  r = ParseReference("app@" + d);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->reference, d);
  EXPECT_FALSE(ParseReference("App:x").ok());
  EXPECT_FALSE(ParseReference("app@sha256:short").ok());
  EXPECT_FALSE(ParseReference(":tag").ok());
}

}  // namespace
}  // namespace image
