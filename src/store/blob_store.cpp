// The file-system BlobStore. Layout, durability and the GC protocol: see README.md.
#include "store/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <set>
#include <utility>

#include "base/crypto.h"
#include "base/fs.h"
#include "base/ids.h"

namespace store {

namespace {

using base::Result;
using base::Status;

constexpr std::string_view kAlgo = "sha256:";
constexpr size_t kHexLen = 64;
const std::string kRefPrefix = "/_blobs/refs/";
const std::string kGcPrefix = "/_blobs/gc/";
constexpr std::string_view kUploadPrefix = "upload-";
constexpr std::string_view kTrashPrefix = "gc-";

bool IsLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string_view HexOf(std::string_view digest) { return digest.substr(kAlgo.size()); }

std::string RefsPrefix(const Digest& digest) { return kRefPrefix + digest + "/"; }
std::string GcMarker(const Digest& digest) { return kGcPrefix + digest; }

Status BadDigest(std::string_view op, std::string_view digest) {
  return base::InvalidArgument(std::string(op) + " \"" + std::string(digest.substr(0, 100)) +
                               "\": not a sha256 digest");
}

std::chrono::system_clock::time_point MTime(const struct stat& sb) {
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(sb.st_mtim.tv_sec) + std::chrono::nanoseconds(sb.st_mtim.tv_nsec)));
}

// Names in a directory (without "." and ".."). A missing directory has none.
Result<std::vector<std::string>> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    return base::ErrnoError("open directory " + dir);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return base::IoError("read directory " + dir, err);
  return names;
}

Result<std::string> PRead(int fd, uint64_t offset, uint64_t length, const std::string& what) {
  std::string out(length, '\0');
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::ErrnoError("read " + what);
    }
    if (n == 0) break;  // the file shrank: it is being replaced or was truncated
    done += static_cast<uint64_t>(n);
  }
  out.resize(done);
  return out;
}

class FsBlobStore;

class FsBlobWriter final : public BlobWriter {
 public:
  FsBlobWriter(FsBlobStore* owner, std::string tmp_path, base::UniqueFd fd)
      : owner_(owner), tmp_path_(std::move(tmp_path)), fd_(std::move(fd)) {}
  ~FsBlobWriter() override;

  Status Write(std::string_view data) override {
    if (done_) return base::FailedPrecondition("write blob upload: already committed or failed");
    Status st = base::WriteAll(fd_.get(), data, tmp_path_);
    if (!st.ok()) return st;
    hasher_.Update(data);
    size_ += data.size();
    return Status::Ok();
  }
  uint64_t size() const override { return size_; }
  Result<Digest> Commit(const Digest& expected) override;

 private:
  FsBlobStore* owner_;
  std::string tmp_path_;
  base::UniqueFd fd_;
  base::Sha256Hasher hasher_;
  uint64_t size_ = 0;
  bool done_ = false;
};

class FsBlobStore final : public BlobStore {
 public:
  FsBlobStore(std::string root, Store* store)
      : root_(std::move(root)),
        blob_dir_(root_ + "/blobs/sha256"),
        tmp_dir_(root_ + "/tmp"),
        store_(store) {}

  Status Init() {
    RETURN_IF_ERROR(base::MakeDirs(blob_dir_));
    RETURN_IF_ERROR(base::MakeDirs(tmp_dir_));
    std::lock_guard<std::mutex> lock(gc_mu_);
    return RecoverLocked();
  }

  Result<Digest> Put(std::string_view data) override {
    Digest digest = std::string(kAlgo) + base::Sha256Hex(data);
    ASSIGN_OR_RETURN(bool present, TouchExisting(PathOf(digest)));
    if (present) return digest;
    ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> w, NewWriter());
    RETURN_IF_ERROR(w->Write(data));
    return w->Commit(digest);
  }

  Result<std::unique_ptr<BlobWriter>> NewWriter() override {
    std::string name = std::string(kUploadPrefix) + base::RandomString(16, base::kLowerAlnum);
    std::string path = tmp_dir_ + "/" + name;
    {
      std::lock_guard<std::mutex> lock(uploads_mu_);
      uploads_.insert(name);
    }
    base::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) {
      Status st = base::ErrnoError("create blob upload " + path);
      EndUpload(path);
      return st;
    }
    return std::unique_ptr<BlobWriter>(new FsBlobWriter(this, std::move(path), std::move(fd)));
  }

  Result<std::string> Get(const Digest& digest) override {
    if (!IsValidDigest(digest)) return BadDigest("get blob", digest);
    std::string path = PathOf(digest);
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return base::ErrnoError("get blob " + digest);
    struct stat sb;
    if (::fstat(fd.get(), &sb) != 0) return base::ErrnoError("get blob " + digest);
    ASSIGN_OR_RETURN(std::string data, PRead(fd.get(), 0, static_cast<uint64_t>(sb.st_size), path));
    std::string actual = base::Sha256Hex(data);
    if (actual != HexOf(digest)) {
      return base::Corruption("get blob " + digest + ": content hashes to sha256:" + actual);
    }
    return data;
  }

  Result<std::string> ReadRange(const Digest& digest, uint64_t offset, uint64_t length) override {
    if (!IsValidDigest(digest)) return BadDigest("read blob", digest);
    std::string what = "read blob " + digest;
    base::UniqueFd fd(::open(PathOf(digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return base::ErrnoError(what);
    struct stat sb;
    if (::fstat(fd.get(), &sb) != 0) return base::ErrnoError(what);
    auto size = static_cast<uint64_t>(sb.st_size);
    if (offset > size) {
      return base::InvalidArgument(what + ": offset " + std::to_string(offset) +
                                   " is beyond its size " + std::to_string(size));
    }
    return PRead(fd.get(), offset, std::min(length, size - offset), what);
  }

  Result<BlobInfo> Stat(const Digest& digest) override {
    if (!IsValidDigest(digest)) return BadDigest("stat blob", digest);
    struct stat sb;
    if (::stat(PathOf(digest).c_str(), &sb) != 0) return base::ErrnoError("stat blob " + digest);
    return BlobInfo{digest, static_cast<uint64_t>(sb.st_size)};
  }

  std::string PathOf(const Digest& digest) const override {
    if (!IsValidDigest(digest)) return {};
    std::string_view hex = HexOf(digest);
    return ShardDir(hex) + "/" + std::string(hex);
  }

  std::vector<Op> AddRefOps(const Digest& digest, const std::string& owner) override {
    return {Op::Put(RefsPrefix(digest) + owner, "")};
  }
  std::vector<Op> DropRefOps(const Digest& digest, const std::string& owner) override {
    return {Op::Delete(KeyRange::Exact(RefsPrefix(digest) + owner))};
  }
  Compare AddRefGuard(const Digest& digest) override {
    return Compare::KeyMissing(GcMarker(digest));
  }

  Status AddRef(const Digest& digest, const std::string& owner) override {
    std::string what = "add ref to blob " + digest + " for \"" + owner + "\"";
    if (!IsValidDigest(digest)) return BadDigest("add ref to blob", digest);
    if (owner.empty()) return base::InvalidArgument(what + ": empty owner");
    Txn txn;
    txn.compares.push_back(AddRefGuard(digest));
    txn.success = AddRefOps(digest, owner);
    Result<TxnResult> r = store_->Commit(txn);
    if (!r.ok()) return r.status().WithContext(what);
    if (!r->succeeded) return base::Aborted(what + ": blob is being garbage-collected; retry");
    // From here on no Gc() can delete the blob; it exists now or never will.
    Result<BlobInfo> info = Stat(digest);
    if (!info.ok()) {
      DropRef(digest, owner).IgnoreError();
      return info.status().WithContext(what);
    }
    return Status::Ok();
  }

  Status DropRef(const Digest& digest, const std::string& owner) override {
    if (!IsValidDigest(digest)) return BadDigest("drop ref to blob", digest);
    Txn txn;
    txn.success = DropRefOps(digest, owner);
    Result<TxnResult> r = store_->Commit(txn);
    if (!r.ok())
      return r.status().WithContext("drop ref to blob " + digest + " for \"" + owner + "\"");
    return Status::Ok();
  }

  Result<int64_t> Gc(std::chrono::seconds grace) override;

  // For FsBlobWriter: its upload is over (committed or abandoned); Gc() may reap the name.
  void EndUpload(const std::string& tmp_path) {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    uploads_.erase(tmp_path.substr(tmp_path.rfind('/') + 1));
  }

  // For FsBlobWriter::Commit: moves a finished, fsynced temp file into place.
  Status Publish(const std::string& tmp_path, const Digest& digest) {
    std::string_view hex = HexOf(digest);
    std::string shard = ShardDir(hex);
    RETURN_IF_ERROR(EnsureShard(shard));
    std::string path = shard + "/" + std::string(hex);
    if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
      return base::ErrnoError("commit blob " + digest + ": rename " + tmp_path);
    }
    return base::FsyncDir(shard).WithContext("commit blob " + digest);
  }

 private:
  std::string ShardDir(std::string_view hex) const {
    return blob_dir_ + "/" + std::string(hex.substr(0, 2));
  }

  Status EnsureShard(const std::string& shard) {
    if (::mkdir(shard.c_str(), 0755) == 0) return base::FsyncDir(blob_dir_);
    if (errno == EEXIST) return Status::Ok();
    return base::ErrnoError("mkdir " + shard);
  }

  // Refreshes the file time of an existing blob, so a Gc() grace period counts from now.
  // false when absent. True only if, after the refresh, the path still names a file: a
  // Gc() that moved the file away before the refresh can then not be fooled (it re-reads
  // the time after moving; one that moved it after sees the new time and puts it back).
  static Result<bool> TouchExisting(const std::string& path) {
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return false;
      return base::ErrnoError("open " + path);
    }
    if (::futimens(fd.get(), nullptr) != 0) return base::ErrnoError("touch " + path);
    struct stat sb;
    if (::stat(path.c_str(), &sb) != 0) {
      if (errno == ENOENT) return false;
      return base::ErrnoError("stat " + path);
    }
    return true;
  }

  Status RecoverLocked();
  Result<bool> CollectLocked(const Digest& digest, std::chrono::system_clock::time_point cutoff);
  Status RemoveMarker(const Digest& digest) {
    return store_->Delete(KeyRange::Exact(GcMarker(digest))).status();
  }

  const std::string root_;
  const std::string blob_dir_;
  const std::string tmp_dir_;
  Store* const store_;
  std::mutex gc_mu_;  // one Gc() at a time
  std::mutex uploads_mu_;
  std::set<std::string> uploads_;  // tmp/ names of this store's live writers
};

FsBlobWriter::~FsBlobWriter() {
  if (!done_) ::unlink(tmp_path_.c_str());
  owner_->EndUpload(tmp_path_);
}

Result<Digest> FsBlobWriter::Commit(const Digest& expected) {
  if (done_) return base::FailedPrecondition("commit blob upload: already committed or failed");
  done_ = true;  // from here on, a failure abandons the upload
  Status st;
  if (!expected.empty() && !IsValidDigest(expected)) st = BadDigest("commit blob", expected);
  if (st.ok() && ::fsync(fd_.get()) != 0) st = base::ErrnoError("fsync " + tmp_path_);
  fd_.Reset();
  Digest digest = std::string(kAlgo) + hasher_.FinishHex();
  if (st.ok() && !expected.empty() && expected != digest) {
    st = base::InvalidArgument("commit blob: content is " + digest + ", expected " + expected);
  }
  if (st.ok()) st = owner_->Publish(tmp_path_, digest);
  if (!st.ok()) {
    ::unlink(tmp_path_.c_str());
    return st;
  }
  return digest;
}

Status FsBlobStore::RecoverLocked() {
  // A Gc() that died between moving a blob to tmp/ and deleting it: put the blob back (its
  // references were absent, but the time check may not have run). Then drop its markers.
  ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(tmp_dir_));
  for (const std::string& name : names) {
    if (!name.starts_with(kTrashPrefix)) continue;
    std::string trash = tmp_dir_ + "/" + name;
    std::string_view hex = std::string_view(name).substr(kTrashPrefix.size(), kHexLen);
    if (hex.size() == kHexLen && IsLowerHex(hex)) {
      std::string shard = ShardDir(hex);
      RETURN_IF_ERROR(EnsureShard(shard));
      std::string path = shard + "/" + std::string(hex);
      if (::link(trash.c_str(), path.c_str()) != 0 && errno != EEXIST) {
        return base::ErrnoError("restore blob " + trash);
      }
      RETURN_IF_ERROR(base::FsyncDir(shard));
    }
    if (::unlink(trash.c_str()) != 0 && errno != ENOENT) return base::ErrnoError("unlink " + trash);
  }
  ASSIGN_OR_RETURN(RangeResult markers,
                   store_->Range(KeyRange::Prefix(kGcPrefix), {.count_only = true}));
  if (markers.count > 0) RETURN_IF_ERROR(store_->Delete(KeyRange::Prefix(kGcPrefix)).status());
  return Status::Ok();
}

// The protocol for one blob (see README.md): mark, check refs in the marking txn, move the
// file aside, re-check its time, delete, unmark.
Result<bool> FsBlobStore::CollectLocked(const Digest& digest,
                                        std::chrono::system_clock::time_point cutoff) {
  std::string what = "gc blob " + digest;
  ASSIGN_OR_RETURN(RangeResult refs,
                   store_->Range(KeyRange::Prefix(RefsPrefix(digest)), {.count_only = true}));
  if (refs.count > 0) return false;

  // The marker makes every guarded AddRef fail from now on; reading the refs in the same
  // txn catches any AddRef that committed before it.
  Txn mark;
  mark.compares.push_back(Compare::KeyMissing(GcMarker(digest)));
  mark.success.push_back(Op::Put(GcMarker(digest), "collecting"));
  mark.success.push_back(Op::Get(KeyRange::Prefix(RefsPrefix(digest))));
  Result<TxnResult> marked = store_->Commit(mark);
  if (!marked.ok()) return marked.status().WithContext(what);
  if (!marked->succeeded) return false;
  if (!marked->results[1].kvs.empty()) {
    RETURN_IF_ERROR(RemoveMarker(digest).WithContext(what));
    return false;
  }

  std::string_view hex = HexOf(digest);
  std::string shard = ShardDir(hex);
  std::string path = PathOf(digest);
  std::string trash = tmp_dir_ + "/" + std::string(kTrashPrefix) + std::string(hex) + "-" +
                      base::RandomString(8, base::kLowerAlnum);
  if (::rename(path.c_str(), trash.c_str()) != 0) {
    Status st = errno == ENOENT ? Status::Ok() : base::ErrnoError(what + ": rename");
    Status unmark = RemoveMarker(digest);
    RETURN_IF_ERROR(st);
    RETURN_IF_ERROR(unmark.WithContext(what));
    return false;
  }
  // A Put that refreshed the file before the move shows here; one after the move found
  // no file and wrote a new one, which the unlink below does not touch.
  struct stat sb;
  bool fresh = ::stat(trash.c_str(), &sb) != 0 || MTime(sb) >= cutoff;
  Status st;
  if (fresh) {
    if (::link(trash.c_str(), path.c_str()) != 0 && errno != EEXIST) {
      // Leave the trash file and the marker: RecoverLocked() puts it back next time.
      return base::ErrnoError(what + ": restore");
    }
    st = base::FsyncDir(shard);
  }
  if (st.ok() && ::unlink(trash.c_str()) != 0) st = base::ErrnoError(what + ": unlink");
  if (st.ok()) st = base::FsyncDir(shard);
  if (st.ok()) st = base::FsyncDir(tmp_dir_);
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(RemoveMarker(digest).WithContext(what));
  return !fresh;
}

Result<int64_t> FsBlobStore::Gc(std::chrono::seconds grace) {
  std::lock_guard<std::mutex> lock(gc_mu_);
  RETURN_IF_ERROR(RecoverLocked().WithContext("gc blobs: recover"));
  auto cutoff = std::chrono::system_clock::now() - grace;
  int64_t deleted = 0;

  ASSIGN_OR_RETURN(std::vector<std::string> shards, ListDir(blob_dir_));
  for (const std::string& shard : shards) {
    if (shard.size() != 2 || !IsLowerHex(shard)) continue;
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(blob_dir_ + "/" + shard));
    for (const std::string& name : names) {
      if (name.size() != kHexLen || !IsLowerHex(name) || !name.starts_with(shard)) continue;
      struct stat sb;
      if (::stat((blob_dir_ + "/" + shard + "/" + name).c_str(), &sb) != 0) continue;
      if (!S_ISREG(sb.st_mode) || MTime(sb) >= cutoff) continue;
      ASSIGN_OR_RETURN(bool gone, CollectLocked(std::string(kAlgo) + name, cutoff));
      if (gone) ++deleted;
    }
  }

  // Uploads abandoned by a crash (this store's live writers are never touched).
  ASSIGN_OR_RETURN(std::vector<std::string> tmps, ListDir(tmp_dir_));
  std::set<std::string> live;
  {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    live = uploads_;
  }
  for (const std::string& name : tmps) {
    if (!name.starts_with(kUploadPrefix) || live.count(name) > 0) continue;
    std::string path = tmp_dir_ + "/" + name;
    struct stat sb;
    if (::stat(path.c_str(), &sb) == 0 && MTime(sb) < cutoff) ::unlink(path.c_str());
  }
  return deleted;
}

}  // namespace

bool IsValidDigest(std::string_view digest) {
  return digest.size() == kAlgo.size() + kHexLen && digest.starts_with(kAlgo) &&
         IsLowerHex(HexOf(digest));
}

Result<std::unique_ptr<BlobStore>> OpenBlobStore(const std::string& root, Store* store) {
  if (root.empty() || store == nullptr) {
    return base::InvalidArgument("open blob store: empty root or no store");
  }
  auto bs = std::make_unique<FsBlobStore>(root, store);
  RETURN_IF_ERROR(bs->Init().WithContext("open blob store " + root));
  return std::unique_ptr<BlobStore>(std::move(bs));
}

}  // namespace store
