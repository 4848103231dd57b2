// store::BlobStore — large immutable bytes (function zips, image layers, object data),
// content-addressed by SHA-256 (DESIGN §3).
//
// Layout under `root`: blobs/sha256/<2 hex>/<64 hex>, tmp/ for uploads in progress.
// A blob is written to a temp file, fsynced, renamed into place and the directory
// fsynced: once Put returns, the blob survives a crash. Reads verify the digest.
//
// Lifetime: blobs are reference-counted through records in the Store, so a service can
// add a reference in the same Txn that writes the record naming the blob
// (AddRefOps()). Gc() deletes only blobs with no references that are older than a grace
// period (so an upload that is not referenced yet is not collected under its writer).
//
// Threading: all methods are safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace store {

// "sha256:<64 lower-case hex>", as OCI writes digests.
using Digest = std::string;

bool IsValidDigest(std::string_view digest);

// Streams bytes into the blob store; the digest is computed as the bytes arrive.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;  // abandons the upload (temp file removed) unless committed
  virtual base::Status Write(std::string_view data) = 0;
  virtual uint64_t size() const = 0;
  // fsync + rename. With a non-empty `expected` digest, fails with InvalidArgument (and
  // keeps nothing) when the content does not match.
  virtual base::Result<Digest> Commit(const Digest& expected = {}) = 0;
};

struct BlobInfo {
  Digest digest;
  uint64_t size = 0;
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  virtual base::Result<Digest> Put(std::string_view data) = 0;
  // The writer must not outlive the BlobStore.
  virtual base::Result<std::unique_ptr<BlobWriter>> NewWriter() = 0;
  // Whole blob, verified. NotFound if absent, Corruption if the bytes do not match.
  virtual base::Result<std::string> Get(const Digest& digest) = 0;
  // A byte range [offset, offset+length) (not verified: use for range reads of large blobs).
  virtual base::Result<std::string> ReadRange(const Digest& digest, uint64_t offset,
                                              uint64_t length) = 0;
  virtual base::Result<BlobInfo> Stat(const Digest& digest) = 0;
  // The on-disk path of a blob, for zero-copy serving (sendfile) and unpacking.
  virtual std::string PathOf(const Digest& digest) const = 0;

  // Store ops that add / drop the reference `owner` (any string naming the referrer,
  // e.g. "lambda/fn/my-func/1") holds on `digest`; include them in the caller's Txn.
  // With AddRefOps, also put AddRefGuard(digest) in that Txn's compares (see below).
  virtual std::vector<Op> AddRefOps(const Digest& digest, const std::string& owner) = 0;
  virtual std::vector<Op> DropRefOps(const Digest& digest, const std::string& owner) = 0;
  // A compare that holds unless Gc() is deleting `digest` right now. A Txn that commits
  // AddRefOps with this guard pins the blob: no Gc() can delete it from then on. Without
  // the guard, a reference committed while a collection runs may name a deleted blob. When
  // the guard fails, retry after re-Putting the blob. After a guarded commit the blob is
  // present until the reference is dropped, or was already gone (Stat() tells; it cannot be
  // gone if it was Put less than the Gc grace period ago).
  virtual Compare AddRefGuard(const Digest& digest) = 0;
  // Conveniences that commit those ops alone. AddRef is guarded and checks that the blob
  // exists: Aborted while a Gc() deletes it, NotFound (and no reference) when absent.
  virtual base::Status AddRef(const Digest& digest, const std::string& owner) = 0;
  virtual base::Status DropRef(const Digest& digest, const std::string& owner) = 0;

  // Deletes unreferenced blobs whose file is older than `grace` (Put of an existing blob
  // refreshes its file time), and abandoned uploads in tmp/ older than `grace`. Returns how
  // many blobs it deleted. Calls serialize. At most one BlobStore per Store and per root:
  // a Gc() treats every other collection marker it finds as left over by a crash.
  virtual base::Result<int64_t> Gc(std::chrono::seconds grace) = 0;
};

// `store` must outlive the BlobStore.
base::Result<std::unique_ptr<BlobStore>> OpenBlobStore(const std::string& root, Store* store);

}  // namespace store
