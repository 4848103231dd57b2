// s3::ObjectStore — S3 buckets and objects: object bytes in the BlobStore (content-addressed,
// shared between keys with the same bytes), metadata in the Store, written in one txn with
// the blob reference, so an object is visible exactly when it is durable.
//
// Store layout: /s3/b/<bucket> → bucket record; /s3/o/<bucket>/<key> → object record.
// Blob references: owner "s3/<bucket>/<key>".
//
// First slice of the S3 API (issue: events, point 1): buckets, single-request objects,
// ranges, metadata, listings. Multipart uploads, aws-chunked bodies, versioning, policies and
// notifications are not here yet.
//
// Threading: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace s3 {

struct Options {
  std::string region = "us-east-1";
  base::Clock* clock = nullptr;
};

struct ObjectInfo {
  std::string key;
  std::string digest;  // the bytes in the BlobStore
  uint64_t size = 0;
  std::string etag;  // hex MD5, quoted as S3 sends it: "\"...\""
  std::string content_type;
  std::map<std::string, std::string> headers;   // Cache-Control, Content-Disposition, ...
  std::map<std::string, std::string> metadata;  // x-amz-meta-* (lower-case names, no prefix)
  int64_t last_modified_ms = 0;
};

struct BucketInfo {
  std::string name;
  std::string region;
  int64_t created_ms = 0;
};

struct ListRequest {
  std::string prefix, delimiter, start_after;  // start_after: exclusive (marker, token)
  int max_keys = 1000;
};
struct ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_marker;  // the last key or prefix returned, when truncated
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  // Errors carry S3's code as "Code: message" (InvalidBucketName, BucketAlreadyOwnedByYou,
  // NoSuchBucket, BucketNotEmpty, NoSuchKey).
  virtual base::Status CreateBucket(const std::string& name, const std::string& region) = 0;
  virtual base::Result<BucketInfo> HeadBucket(const std::string& name) = 0;
  virtual base::Status DeleteBucket(const std::string& name) = 0;
  virtual base::Result<std::vector<BucketInfo>> ListBuckets() = 0;

  virtual base::Result<ObjectInfo> PutObject(const std::string& bucket, const std::string& key,
                                             std::string_view data, ObjectInfo meta) = 0;
  virtual base::Result<ObjectInfo> HeadObject(const std::string& bucket,
                                              const std::string& key) = 0;
  // Ok when the key does not exist (as S3).
  virtual base::Status DeleteObject(const std::string& bucket, const std::string& key) = 0;
  virtual base::Result<ListResult> List(const std::string& bucket, const ListRequest& req) = 0;
  // The file holding an object's bytes (for sendfile).
  virtual std::string PathOf(const ObjectInfo& info) const = 0;
  virtual base::Result<std::string> Read(const ObjectInfo& info) = 0;
};

base::Result<std::unique_ptr<ObjectStore>> OpenObjectStore(store::Store* store,
                                                           store::BlobStore* blobs,
                                                           const Options& options);

std::string Md5Hex(std::string_view data);

}  // namespace s3
