// s3::ObjectStore — S3 buckets and objects: object bytes in the BlobStore (content-addressed,
// shared between keys with the same bytes), metadata in the Store, written in one txn with
// the blob reference, so an object is visible exactly when it is durable.
//
// Store layout: /s3/b/<bucket> → bucket record (region, notification rules);
// /s3/o/<bucket>/<key> → object record; /s3/u/<bucket>/<upload id> → a multipart upload,
// /s3/p/<upload id>/<part, 5 digits> → its parts; /s3/evq/<sequencer> → an event
// notification not yet handed to its destination (written in the txn that changed the
// object, so an acknowledged change's notification survives a crash); in buckets that have
// had versioning enabled, /s3/v/<bucket>/<key>\x01<slot> → each noncurrent version (slots
// sort newest first; the current version, or a delete marker, stays at /s3/o/).
// Blob references: owner "s3/<bucket>/<key>" (current objects), "s3v/<bucket>/<key>/<slot>"
// (noncurrent versions), "s3mp/<upload id>/<part>" (parts).
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

// Delivers event notifications (implemented in server/ over Lambda and SQS). Thread-safe.
class NotificationSink {
 public:
  virtual ~NotificationSink() = default;
  // Whether events of `bucket` can go to `arn` (a function that lets s3.amazonaws.com
  // invoke it, an existing queue). An error names the reason.
  virtual base::Status Validate(const std::string& arn, const std::string& bucket) = 0;
  // Hands one event document to `arn`; Ok once the destination holds it durably. NotFound
  // when the destination is gone (the event is dropped), other errors are retried.
  virtual base::Status Deliver(const std::string& arn, const std::string& event_json) = 0;
};

// S3's minimum size of every part but the last.
inline constexpr uint64_t kMinPartSize = 5ull << 20;

struct Options {
  std::string region = "us-east-1";
  uint64_t min_part_size = kMinPartSize;  // a test knob
  std::string account_id = "000000000000";
  base::Clock* clock = nullptr;
  NotificationSink* sink = nullptr;  // null: notification configurations are refused
};

// Who changed an object, for event records.
struct Requester {
  std::string principal_id;  // "AWS:AIDA…" or the account id for root
  std::string source_ip;
  std::string request_id;
};

struct ObjectInfo {
  std::string key;
  std::string digest;  // the bytes in the BlobStore
  uint64_t size = 0;
  std::string etag;  // hex MD5, quoted as S3 sends it: "\"...\""
  std::string content_type;
  std::map<std::string, std::string> headers;   // Cache-Control, Content-Disposition, ...
  std::map<std::string, std::string> metadata;  // x-amz-meta-* (lower-case names, no prefix)
  std::map<std::string, std::string> checksums;  // "CRC32" → base64, as received and verified
  std::map<std::string, std::string> tags;       // object tags (x-amz-tagging, ?tagging)
  int parts_count = 0;                           // > 0 for objects made by multipart uploads
  int64_t last_modified_ms = 0;
  std::string version_id;      // "" in buckets never versioned; "null" for unversioned writes
  bool delete_marker = false;  // a versioned DELETE's marker: no bytes
  bool is_latest = true;       // ListVersions: the key's current version
};

struct UploadInfo {
  std::string upload_id;
  std::string bucket, key;
  ObjectInfo meta;  // content type, headers, metadata given at CreateMultipartUpload
  std::string checksum_algorithm;
  std::string initiator;  // principal ARN
  int64_t initiated_ms = 0;
};

struct PartInfo {
  int number = 0;
  std::string digest;
  uint64_t size = 0;
  std::string etag;  // quoted hex MD5
  std::map<std::string, std::string> checksums;
  int64_t last_modified_ms = 0;
};

struct ListPartsResult {
  UploadInfo upload;
  std::vector<PartInfo> parts;
  bool truncated = false;
  int next_marker = 0;
};

struct ListUploadsRequest {
  std::string prefix, key_marker, upload_id_marker;
  int max_uploads = 1000;
};
struct ListUploadsResult {
  std::vector<UploadInfo> uploads;
  bool truncated = false;
};

// One destination of a bucket's notification configuration.
struct NotificationRule {
  std::string kind;  // "Lambda" or "Queue"
  std::string id;
  std::string arn;
  std::vector<std::string> events;  // "s3:ObjectCreated:*", "s3:ObjectRemoved:Delete", …
  std::string prefix, suffix;       // key filter rules
};


struct BucketInfo {
  std::string name;
  std::string region;
  int64_t created_ms = 0;
  std::string policy;      // the bucket policy document, "" when none
  std::string versioning;  // "", "Enabled" or "Suspended"
};

struct DeleteOutcome {
  bool delete_marker = false;  // a marker was created, or the version removed was one
  std::string version_id;      // of the marker created, or of the version removed
};

struct ListVersionsRequest {
  std::string prefix, key_marker, version_id_marker;
  int max_keys = 1000;
};
struct ListVersionsResult {
  std::vector<ObjectInfo> versions;  // object versions and delete markers, key order, newest first
  bool truncated = false;
  std::string next_key_marker, next_version_id_marker;
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
                                             std::string_view data, ObjectInfo meta,
                                             const Requester& who = {}) = 0;
  // Copies by reference (the bytes are shared). `meta`: replace the metadata (REPLACE),
  // else the source's is kept (COPY).
  virtual base::Result<ObjectInfo> CopyObject(const std::string& src_bucket,
                                              const std::string& src_key,
                                              const std::string& bucket, const std::string& key,
                                              std::optional<ObjectInfo> meta,
                                              const Requester& who = {},
                                              std::optional<std::map<std::string, std::string>>
                                                  tags = std::nullopt,
                                              const std::string& src_version = "") = 0;
  // The current version; NotFound ("NoSuchKey") when there is none or it is a delete
  // marker.
  virtual base::Result<ObjectInfo> HeadObject(const std::string& bucket,
                                              const std::string& key) = 0;
  // A given version ("null" included), delete markers too; NoSuchVersion when none.
  virtual base::Result<ObjectInfo> HeadVersion(const std::string& bucket, const std::string& key,
                                               const std::string& version_id) = 0;
  // Without a version: deletes the object (unversioned bucket, Ok when it does not exist,
  // as S3) or puts a delete marker (versioning Enabled/Suspended). With one: removes that
  // version for good (the next newest becomes current).
  virtual base::Result<DeleteOutcome> DeleteObject(const std::string& bucket,
                                                   const std::string& key,
                                                   const Requester& who = {},
                                                   const std::string& version_id = "") = 0;
  virtual base::Status SetVersioning(const std::string& bucket, const std::string& status) = 0;
  virtual base::Result<ListVersionsResult> ListVersions(const std::string& bucket,
                                                        const ListVersionsRequest& req) = 0;
  virtual base::Result<ListResult> List(const std::string& bucket, const ListRequest& req) = 0;
  // The file holding an object's bytes (for sendfile).
  virtual std::string PathOf(const ObjectInfo& info) const = 0;
  virtual base::Result<std::string> Read(const ObjectInfo& info) = 0;
  virtual base::Result<std::string> ReadRange(const ObjectInfo& info, uint64_t offset,
                                              uint64_t length) = 0;

  // Sets (or with "" deletes) the bucket policy; the caller has validated it.
  virtual base::Status SetBucketPolicy(const std::string& bucket, const std::string& policy) = 0;

  // Replaces an object's tag set.
  virtual base::Status SetTags(const std::string& bucket, const std::string& key,
                               std::map<std::string, std::string> tags) = 0;

  // Multipart uploads. Errors: NoSuchUpload, InvalidPart, InvalidPartOrder, EntityTooSmall,
  // InvalidArgument (part numbers outside 1–10,000).
  virtual base::Result<UploadInfo> CreateUpload(const std::string& bucket,
                                                const std::string& key, ObjectInfo meta,
                                                const std::string& checksum_algorithm,
                                                const std::string& initiator) = 0;
  virtual base::Result<PartInfo> UploadPart(const std::string& bucket, const std::string& key,
                                            const std::string& upload_id, int part_number,
                                            std::string_view data,
                                            std::map<std::string, std::string> checksums) = 0;
  // `parts`: (number, ETag) in the request's order. The object's bytes are the parts'
  // concatenated; its ETag is the MD5 of their MD5s, "-<count>".
  virtual base::Result<ObjectInfo> CompleteUpload(const std::string& bucket,
                                                  const std::string& key,
                                                  const std::string& upload_id,
                                                  const std::vector<std::pair<int, std::string>>& parts,
                                                  const Requester& who = {}) = 0;
  virtual base::Status AbortUpload(const std::string& bucket, const std::string& key,
                                   const std::string& upload_id) = 0;
  virtual base::Result<ListPartsResult> ListParts(const std::string& bucket,
                                                  const std::string& key,
                                                  const std::string& upload_id, int marker,
                                                  int max_parts) = 0;
  virtual base::Result<ListUploadsResult> ListUploads(const std::string& bucket,
                                                      const ListUploadsRequest& req) = 0;

  // Notification configuration: every destination is validated with the sink first.
  virtual base::Status PutNotifications(const std::string& bucket,
                                        std::vector<NotificationRule> rules,
                                        const Requester& who = {}) = 0;
  virtual base::Result<std::vector<NotificationRule>> GetNotifications(
      const std::string& bucket) = 0;

  // Stops the notification dispatcher (events not yet delivered stay queued).
  virtual void Shutdown() = 0;
};

base::Result<std::unique_ptr<ObjectStore>> OpenObjectStore(store::Store* store,
                                                           store::BlobStore* blobs,
                                                           const Options& options);

std::string Md5Hex(std::string_view data);

}  // namespace s3
