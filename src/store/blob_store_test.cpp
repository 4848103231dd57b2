#include "store/blob_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "base/crypto.h"
#include "base/fs.h"

namespace store {
namespace {

using namespace std::chrono_literals;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/stratus-blobs-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = OpenSqliteStore({.path = dir_ + "/store.db"});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    auto b = OpenBlobStore(dir_ + "/blobs", store_.get());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    blobs_ = std::move(b).value();
  }
  void TearDown() override {
    blobs_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  // Pretends the blob's file was last written `age` ago.
  void Age(const std::string& path, std::chrono::seconds age) {
    timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = ::time(nullptr) - age.count();
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, 0), 0) << path;
  }
  bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }
  size_t FilesIn(const std::string& dir) {
    size_t n = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir))
      if (e.is_regular_file()) ++n;
    return n;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<BlobStore> blobs_;
};

TEST_F(BlobStoreTest, PutGetStatAndLayout) {
  auto d = blobs_->Put("hello");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  std::string hex = base::Sha256Hex("hello");
  EXPECT_EQ(*d, "sha256:" + hex);
  EXPECT_TRUE(IsValidDigest(*d));
  EXPECT_EQ(blobs_->PathOf(*d), dir_ + "/blobs/blobs/sha256/" + hex.substr(0, 2) + "/" + hex);
  EXPECT_TRUE(Exists(blobs_->PathOf(*d)));

  auto got = blobs_->Get(*d);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
  auto info = blobs_->Stat(*d);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5u);
  EXPECT_EQ(info->digest, *d);

  // Idempotent; the empty blob is a blob too.
  EXPECT_EQ(*blobs_->Put("hello"), *d);
  auto empty = blobs_->Put("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(*blobs_->Get(*empty), "");

  auto range = blobs_->ReadRange(*d, 1, 3);
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(*range, "ell");
  EXPECT_EQ(*blobs_->ReadRange(*d, 3, 100), "lo");
  EXPECT_EQ(*blobs_->ReadRange(*d, 5, 10), "");
  EXPECT_EQ(blobs_->ReadRange(*d, 6, 1).status().code(), base::Code::kInvalidArgument);

  std::string missing = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(blobs_->Get(missing).status().code(), base::Code::kNotFound);
  EXPECT_EQ(blobs_->Stat(missing).status().code(), base::Code::kNotFound);
  EXPECT_EQ(blobs_->ReadRange(missing, 0, 1).status().code(), base::Code::kNotFound);
  EXPECT_NE(blobs_->Get(missing).status().message().find(missing), std::string::npos);
}

TEST_F(BlobStoreTest, ValidatesDigests) {
  std::string hex(64, 'a');
  EXPECT_TRUE(IsValidDigest("sha256:" + hex));
  EXPECT_FALSE(IsValidDigest(hex));
  EXPECT_FALSE(IsValidDigest("sha256:" + std::string(64, 'A')));
  EXPECT_FALSE(IsValidDigest("sha256:" + hex.substr(1)));
  EXPECT_FALSE(IsValidDigest("sha512:" + hex));
  EXPECT_FALSE(IsValidDigest("sha256:../../../../etc/passwd" + hex.substr(27)));
  EXPECT_EQ(blobs_->Get("sha256:../x").status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(blobs_->PathOf("nope"), "");
  EXPECT_EQ(blobs_->AddRef("nope", "o").code(), base::Code::kInvalidArgument);
}

TEST_F(BlobStoreTest, WriterStreamsAndChecksTheExpectedDigest) {
  std::string big;
  for (int i = 0; i < 100000; ++i) big += std::to_string(i);
  auto w = blobs_->NewWriter();
  ASSERT_TRUE(w.ok());
  for (size_t off = 0; off < big.size(); off += 4096)
    ASSERT_TRUE((*w)->Write(std::string_view(big).substr(off, 4096)).ok());
  EXPECT_EQ((*w)->size(), big.size());
  std::string want = "sha256:" + base::Sha256Hex(big);
  auto d = (*w)->Commit(want);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*d, want);
  EXPECT_EQ(*blobs_->Get(*d), big);
  EXPECT_EQ((*w)->Commit().status().code(), base::Code::kFailedPrecondition);
  EXPECT_EQ(FilesIn(dir_ + "/blobs/tmp"), 0u);

  // A mismatch keeps nothing: no blob under either digest, no temp file.
  auto w2 = blobs_->NewWriter();
  ASSERT_TRUE(w2.ok());
  ASSERT_TRUE((*w2)->Write("not what you expected").ok());
  std::string claimed = "sha256:" + base::Sha256Hex("something else");
  auto bad = (*w2)->Commit(claimed);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), base::Code::kInvalidArgument);
  EXPECT_EQ(blobs_->Stat(claimed).status().code(), base::Code::kNotFound);
  EXPECT_EQ(blobs_->Stat("sha256:" + base::Sha256Hex("not what you expected")).status().code(),
            base::Code::kNotFound);
  EXPECT_EQ(FilesIn(dir_ + "/blobs/tmp"), 0u);

  // An abandoned writer leaves nothing either.
  {
    auto w3 = blobs_->NewWriter();
    ASSERT_TRUE(w3.ok());
    ASSERT_TRUE((*w3)->Write("abandoned").ok());
    EXPECT_EQ(FilesIn(dir_ + "/blobs/tmp"), 1u);
  }
  EXPECT_EQ(FilesIn(dir_ + "/blobs/tmp"), 0u);
}

TEST_F(BlobStoreTest, GetDetectsCorruption) {
  auto d = blobs_->Put("precious bytes");
  ASSERT_TRUE(d.ok());
  std::string path = blobs_->PathOf(*d);
  {
    base::UniqueFd fd(::open(path.c_str(), O_WRONLY));
    ASSERT_TRUE(fd.valid());
    ASSERT_EQ(::pwrite(fd.get(), "P", 1, 0), 1);  // flip the first byte
  }
  auto got = blobs_->Get(*d);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), base::Code::kCorruption);
  EXPECT_NE(got.status().message().find(*d), std::string::npos);
  // Range reads are not verified (by contract) and still work.
  EXPECT_EQ(*blobs_->ReadRange(*d, 0, 1), "P");
}

TEST_F(BlobStoreTest, GcDeletesOnlyUnreferencedBlobsPastTheGrace) {
  auto kept = blobs_->Put("referenced");
  auto txn_kept = blobs_->Put("referenced in a caller txn");
  auto dropped = blobs_->Put("was referenced");
  auto orphan = blobs_->Put("never referenced");
  auto young = blobs_->Put("young orphan");
  ASSERT_TRUE(kept.ok() && txn_kept.ok() && dropped.ok() && orphan.ok() && young.ok());

  ASSERT_TRUE(blobs_->AddRef(*kept, "fn/a/1").ok());
  ASSERT_TRUE(blobs_->AddRef(*kept, "fn/b/1").ok());
  ASSERT_TRUE(blobs_->AddRef(*dropped, "fn/c/1").ok());
  ASSERT_TRUE(blobs_->DropRef(*dropped, "fn/c/1").ok());
  ASSERT_TRUE(blobs_->DropRef(*kept, "fn/a/1").ok());  // one reference left
  // A service referencing a blob in the same txn as its own record.
  Txn txn;
  txn.compares.push_back(blobs_->AddRefGuard(*txn_kept));
  txn.success = blobs_->AddRefOps(*txn_kept, "svc/record");
  txn.success.push_back(Op::Put("/svc/record", *txn_kept));
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok() && r->succeeded);

  for (auto* d : {&kept, &txn_kept, &dropped, &orphan}) Age(blobs_->PathOf(**d), 2h);
  auto n = blobs_->Gc(1h);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(blobs_->Get(*kept).ok());
  EXPECT_TRUE(blobs_->Get(*txn_kept).ok());
  EXPECT_TRUE(blobs_->Get(*young).ok());  // inside the grace period
  EXPECT_EQ(blobs_->Stat(*dropped).status().code(), base::Code::kNotFound);
  EXPECT_EQ(blobs_->Stat(*orphan).status().code(), base::Code::kNotFound);
  // The protocol leaves no markers behind.
  EXPECT_EQ(store_->Range(KeyRange::Prefix("/_blobs/gc/"))->count, 0);

  // Dropping the last reference makes it collectable.
  ASSERT_TRUE(blobs_->DropRef(*kept, "fn/b/1").ok());
  n = blobs_->Gc(1h);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(blobs_->Stat(*kept).status().code(), base::Code::kNotFound);

  // Re-putting an old unreferenced blob restarts its grace period.
  auto again = blobs_->Put("young orphan");
  Age(blobs_->PathOf(*again), 2h);
  ASSERT_TRUE(blobs_->Put("young orphan").ok());
  EXPECT_EQ(*blobs_->Gc(1h), 0);
  EXPECT_TRUE(blobs_->Stat(*again).ok());
}

TEST_F(BlobStoreTest, AddRefRefusesMissingBlobsAndRunningCollections) {
  std::string missing = "sha256:" + std::string(64, 'b');
  EXPECT_EQ(blobs_->AddRef(missing, "x").code(), base::Code::kNotFound);
  EXPECT_EQ(store_->Range(KeyRange::Prefix("/_blobs/refs/"))->count, 0);  // no dangling ref

  auto d = blobs_->Put("contested");
  ASSERT_TRUE(d.ok());
  // A collection of this blob in progress (as left by a crashed Gc()).
  ASSERT_TRUE(store_->Put("/_blobs/gc/" + *d, "collecting").ok());
  EXPECT_EQ(blobs_->AddRef(*d, "x").code(), base::Code::kAborted);
  Txn txn;
  txn.compares.push_back(blobs_->AddRefGuard(*d));
  txn.success = blobs_->AddRefOps(*d, "y");
  auto r = store_->Commit(txn);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded);

  // The next Gc() clears the stale marker; a young blob survives it.
  ASSERT_TRUE(blobs_->Gc(1h).ok());
  EXPECT_EQ(store_->Range(KeyRange::Prefix("/_blobs/gc/"))->count, 0);
  EXPECT_TRUE(blobs_->AddRef(*d, "x").ok());
}

TEST_F(BlobStoreTest, GcRecoversABlobMovedAsideByACrashedCollection) {
  auto d = blobs_->Put("half collected");
  ASSERT_TRUE(d.ok());
  std::string hex = d->substr(7);
  std::string trash = dir_ + "/blobs/tmp/gc-" + hex + "-crashed0";
  ASSERT_EQ(::rename(blobs_->PathOf(*d).c_str(), trash.c_str()), 0);
  ASSERT_TRUE(store_->Put("/_blobs/gc/" + *d, "collecting").ok());

  // Reopening (or the next Gc) puts it back.
  blobs_.reset();
  auto b = OpenBlobStore(dir_ + "/blobs", store_.get());
  ASSERT_TRUE(b.ok());
  blobs_ = std::move(b).value();
  EXPECT_EQ(*blobs_->Get(*d), "half collected");
  EXPECT_FALSE(Exists(trash));
  EXPECT_EQ(store_->Range(KeyRange::Prefix("/_blobs/gc/"))->count, 0);
}

TEST_F(BlobStoreTest, GcCleansStaleUploads) {
  std::string tmp = dir_ + "/blobs/tmp";
  // Left by a process that crashed mid-upload: one old, one recent.
  ASSERT_TRUE(base::WriteFileAtomic(tmp + "/upload-crashedold", "x").ok());
  ASSERT_TRUE(base::WriteFileAtomic(tmp + "/upload-crashednew", "y").ok());
  Age(tmp + "/upload-crashedold", 2h);
  // A live writer of this store, idle for long, is never reaped.
  auto live = blobs_->NewWriter();
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE((*live)->Write("z").ok());
  for (auto& e : std::filesystem::directory_iterator(tmp)) {
    if (e.path().filename().string().starts_with("upload-") &&
        e.path().filename() != "upload-crashednew")
      Age(e.path(), 2h);
  }
  ASSERT_EQ(FilesIn(tmp), 3u);
  ASSERT_TRUE(blobs_->Gc(1h).ok());
  EXPECT_FALSE(Exists(tmp + "/upload-crashedold"));
  EXPECT_TRUE(Exists(tmp + "/upload-crashednew"));
  EXPECT_EQ(FilesIn(tmp), 2u);
  auto d = (*live)->Commit();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(*blobs_->Get(*d), "z");
}

TEST_F(BlobStoreTest, GcNeverDeletesABlobReferencedConcurrently) {
  // Writers re-put and reference blobs while a collector runs with no grace at all; every
  // reference that AddRef acknowledged must name a readable blob, always.
  constexpr int kBlobs = 16;
  std::atomic<bool> stop{false};
  std::atomic<int> refs{0};
  std::atomic<int> failures{0};
  std::atomic<int> retries{0};
  std::atomic<int64_t> collected{0};
  std::thread collector([&] {
    while (!stop) {
      auto n = blobs_->Gc(0s);
      if (n.ok()) collected += *n;
      if (!n.ok()) {
        ADD_FAILURE() << n.status().ToString();
        ++failures;
      }
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kBlobs; ++i) {
        std::string data = "blob " + std::to_string(i) + " of writer " + std::to_string(t);
        std::string owner = "w" + std::to_string(t);
        for (int attempt = 0;; ++attempt) {
          auto d = blobs_->Put(data);
          if (!d.ok()) {
            ADD_FAILURE() << d.status().ToString();
            ++failures;
            break;
          }
          base::Status st = blobs_->AddRef(*d, owner);
          if (st.ok()) {
            ++refs;
            break;
          }
          ++retries;
          std::this_thread::sleep_for(100us);
          if (st.code() != base::Code::kAborted && st.code() != base::Code::kNotFound) {
            ADD_FAILURE() << st.ToString();
            ++failures;
            break;
          }
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  // Let the collector run a while longer over the now-referenced blobs.
  std::this_thread::sleep_for(200ms);
  stop = true;
  collector.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(refs, 2 * kBlobs);
  RecordProperty("collected", static_cast<int>(collected.load()));
  RecordProperty("addref_retries", retries.load());
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < kBlobs; ++i) {
      std::string data = "blob " + std::to_string(i) + " of writer " + std::to_string(t);
      auto got = blobs_->Get("sha256:" + base::Sha256Hex(data));
      EXPECT_TRUE(got.ok()) << "referenced blob " << i << "/" << t << " was collected";
    }
  }
}

}  // namespace
}  // namespace store
