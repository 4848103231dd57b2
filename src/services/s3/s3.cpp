#include "services/s3/s3.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/fs.h"
#include "base/ids.h"
#include "base/strings.h"
#include "base/time.h"

namespace s3 {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;

const std::string kBucketPrefix = "/s3/b/";
const std::string kObjectPrefix = "/s3/o/";
const std::string kUploadPrefix = "/s3/u/";
const std::string kPartPrefix = "/s3/p/";
const std::string kEventPrefix = "/s3/evq/";
const std::string kVersionPrefix = "/s3/v/";

// Noncurrent versions of one key: "<prefix><bucket>/<key>\x01<slot>" — \x01 sorts before
// any character a key may continue with, so a key's versions sit together in key order.
std::string VersionKeyPrefix(const std::string& b, const std::string& k) {
  return kVersionPrefix + b + "/" + k + "\x01";
}
std::string VersionOwner(const std::string& b, const std::string& k, const std::string& slot) {
  return "s3v/" + b + "/" + k + "/" + slot;
}
std::string Hex16(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}
// Version ids sort newest first: the inverted time, then randomness.
std::string NewVersionId() {
  uint64_t ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  return Hex16(~ns) + base::RandomString(16, base::kAlnum);
}
// Where a version is kept among the noncurrent ones.
std::string SlotOf(const ObjectInfo& o) {
  if (o.version_id != "null" && !o.version_id.empty()) return o.version_id;
  return Hex16(~(static_cast<uint64_t>(o.last_modified_ms) * 1000000ull)) + "null";
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string ObjKey(const std::string& b, const std::string& k) {
  return kObjectPrefix + b + "/" + k;
}
std::string RefOwner(const std::string& b, const std::string& k) { return "s3/" + b + "/" + k; }
std::string UploadKey(const std::string& b, const std::string& id) {
  return kUploadPrefix + b + "/" + id;
}
std::string PartKey(const std::string& id, int n) {
  char buf[8];
  snprintf(buf, sizeof buf, "%05d", n);
  return kPartPrefix + id + "/" + buf;
}
std::string PartOwner(const std::string& id, int n) {
  return "s3mp/" + id + "/" + std::to_string(n);
}

json ObjToJson(const ObjectInfo& o) {
  return json{{"digest", o.digest},
              {"size", o.size},
              {"etag", o.etag},
              {"ct", o.content_type},
              {"headers", o.headers},
              {"meta", o.metadata},
              {"sums", o.checksums},
              {"tags", o.tags},
              {"parts", o.parts_count},
              {"vid", o.version_id},
              {"dm", o.delete_marker},
              {"modified", o.last_modified_ms}};
}

Result<ObjectInfo> ObjFromJson(const std::string& key, const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("s3: object record is not JSON");
  ObjectInfo o;
  o.key = key;
  try {
    o.digest = j.at("digest").get<std::string>();
    o.size = j.at("size").get<uint64_t>();
    o.etag = j.at("etag").get<std::string>();
    o.content_type = j.at("ct").get<std::string>();
    o.headers = j.at("headers").get<std::map<std::string, std::string>>();
    o.metadata = j.at("meta").get<std::map<std::string, std::string>>();
    o.last_modified_ms = j.at("modified").get<int64_t>();
    o.checksums = j.value("sums", std::map<std::string, std::string>{});
    o.tags = j.value("tags", std::map<std::string, std::string>{});
    o.parts_count = j.value("parts", 0);
    o.version_id = j.value("vid", "");
    o.delete_marker = j.value("dm", false);
  } catch (const json::exception& e) {
    return base::Corruption(std::string("s3: bad object record: ") + e.what());
  }
  return o;
}

bool ValidBucketName(const std::string& n) {
  if (n.size() < 3 || n.size() > 63) return false;
  for (char c : n)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(n.front()) || !alnum(n.back())) return false;
  if (n.find("..") != std::string::npos) return false;
  int dots = 0;
  bool ip = true;
  for (char c : n) {
    if (c == '.')
      dots++;
    else if (c < '0' || c > '9')
      ip = false;
  }
  return !(ip && dots == 3);
}

json RuleToJson(const NotificationRule& r) {
  return json{{"kind", r.kind}, {"id", r.id},         {"arn", r.arn},
              {"events", r.events}, {"prefix", r.prefix}, {"suffix", r.suffix}};
}

NotificationRule RuleFromJson(const json& j) {
  NotificationRule r;
  r.kind = j.value("kind", "");
  r.id = j.value("id", "");
  r.arn = j.value("arn", "");
  r.events = j.value("events", std::vector<std::string>{});
  r.prefix = j.value("prefix", "");
  r.suffix = j.value("suffix", "");
  return r;
}

// "s3:ObjectCreated:*" matches "ObjectCreated:Put"; "s3:ObjectCreated:Put" only itself.
bool EventMatches(const NotificationRule& r, const std::string& event, const std::string& key) {
  if (key.compare(0, r.prefix.size(), r.prefix) != 0) return false;
  if (key.size() < r.suffix.size() ||
      key.compare(key.size() - r.suffix.size(), r.suffix.size(), r.suffix) != 0)
    return false;
  for (const auto& e : r.events) {
    std::string want = e.rfind("s3:", 0) == 0 ? e.substr(3) : e;
    if (want == event) return true;
    if (want.size() > 1 && want.back() == '*' &&
        event.compare(0, want.size() - 1, want, 0, want.size() - 1) == 0)
      return true;
  }
  return false;
}

// Keys in event records are URL-encoded as a form value (spaces as '+').
std::string EventKey(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' || c == '*') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

struct Bucket {
  BucketInfo info;
  std::vector<NotificationRule> rules;
  int64_t mod_revision = 0;
};

class ObjectStoreImpl : public ObjectStore {
 public:
  ObjectStoreImpl(store::Store* store, store::BlobStore* blobs, Options o)
      : store_(store), blobs_(blobs), o_(std::move(o)) {
    if (!o_.clock) o_.clock = &base::SystemClock();
    if (o_.sink) dispatcher_ = std::thread([this] { DispatchLoop(); });
  }
  ~ObjectStoreImpl() override { Shutdown(); }

  void Shutdown() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (dispatcher_.joinable()) dispatcher_.join();
  }

  Status CreateBucket(const std::string& name, const std::string& region) override {
    if (!ValidBucketName(name))
      return base::InvalidArgument("InvalidBucketName: The specified bucket is not valid.");
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyMissing(kBucketPrefix + name));
    txn.success.push_back(store::Op::Put(
        kBucketPrefix + name,
        Dump(json{{"region", region.empty() ? o_.region : region}, {"created", NowMs()}})));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    if (!r.succeeded)
      return base::AlreadyExists(
          "BucketAlreadyOwnedByYou: Your previous request to create the named bucket succeeded "
          "and you already own it.");
    return Status::Ok();
  }

  Result<BucketInfo> HeadBucket(const std::string& name) override {
    ASSIGN_OR_RETURN(Bucket b, LoadBucket(name));
    return b.info;
  }

  Status DeleteBucket(const std::string& name) override {
    ASSIGN_OR_RETURN(Bucket b, LoadBucket(name));
    store::RangeOptions ro;
    ro.limit = 1;
    ro.keys_only = true;
    ASSIGN_OR_RETURN(store::RangeResult objs,
                     store_->Range(store::KeyRange::Prefix(kObjectPrefix + name + "/"), ro));
    if (objs.kvs.empty()) {
      ASSIGN_OR_RETURN(objs,
                       store_->Range(store::KeyRange::Prefix(kVersionPrefix + name + "/"), ro));
    }
    if (!objs.kvs.empty())
      return base::FailedPrecondition(
          "BucketNotEmpty: The bucket you tried to delete is not empty");
    // Multipart uploads still in progress are aborted with the bucket.
    ASSIGN_OR_RETURN(store::RangeResult ups,
                     store_->Range(store::KeyRange::Prefix(kUploadPrefix + name + "/")));
    for (const auto& kv : ups.kvs) {
      std::string id = kv.key.substr(kv.key.rfind('/') + 1);
      RETURN_IF_ERROR(AbortUploadRecord(name, id));
    }
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kBucketPrefix + name, b.mod_revision));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kBucketPrefix + name)));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    (void)r;
    return Status::Ok();
  }

  Result<std::vector<BucketInfo>> ListBuckets() override {
    ASSIGN_OR_RETURN(store::RangeResult rr, store_->Range(store::KeyRange::Prefix(kBucketPrefix)));
    std::vector<BucketInfo> out;
    for (const auto& kv : rr.kvs) {
      auto b = HeadBucket(kv.key.substr(kBucketPrefix.size()));
      if (b.ok()) out.push_back(std::move(b).value());
    }
    return out;
  }

  Result<ObjectInfo> PutObject(const std::string& bucket, const std::string& key,
                               std::string_view data, ObjectInfo meta,
                               const Requester& who) override {
    RETURN_IF_ERROR(CheckKey(key));
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    ASSIGN_OR_RETURN(store::Digest digest, blobs_->Put(data));
    meta.key = key;
    meta.digest = digest;
    meta.size = data.size();
    meta.etag = "\"" + Md5Hex(data) + "\"";
    meta.parts_count = 0;
    return CommitObject(bucket, meta, "ObjectCreated:Put", who, {}, {});
  }

  Result<ObjectInfo> CopyObject(const std::string& src_bucket, const std::string& src_key,
                                const std::string& bucket, const std::string& key,
                                std::optional<ObjectInfo> meta, const Requester& who,
                                std::optional<std::map<std::string, std::string>> tags,
                                const std::string& src_version) override {
    RETURN_IF_ERROR(CheckKey(key));
    ASSIGN_OR_RETURN(ObjectInfo src, src_version.empty()
                                         ? HeadObject(src_bucket, src_key)
                                         : HeadVersion(src_bucket, src_key, src_version));
    if (src.delete_marker)
      return base::InvalidArgument("InvalidRequest: The source of a copy request may not "
                                   "specifically refer to a delete marker by version id.");
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    ObjectInfo out = src;
    if (meta) {
      out.content_type = meta->content_type;
      out.headers = meta->headers;
      out.metadata = meta->metadata;
    }
    if (tags) out.tags = *tags;
    out.key = key;
    out.delete_marker = false;
    // The source's bytes must still be referenced when the copy's reference is added.
    std::vector<store::Compare> guard = {blobs_->AddRefGuard(src.digest)};
    return CommitObject(bucket, out, "ObjectCreated:Copy", who, std::move(guard), {});
  }

  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
    if (!kv) {
      RETURN_IF_ERROR(LoadBucket(bucket).status());
      return base::NotFound("NoSuchKey: The specified key does not exist.");
    }
    ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv->value));
    if (o.delete_marker) return base::NotFound("NoSuchKey: The specified key does not exist.");
    return o;
  }

  Result<ObjectInfo> HeadVersion(const std::string& bucket, const std::string& key,
                                 const std::string& version_id) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
    if (kv) {
      ASSIGN_OR_RETURN(ObjectInfo cur, ObjFromJson(key, kv->value));
      if (cur.version_id == version_id || (version_id == "null" && cur.version_id.empty()))
        return cur;
    } else {
      RETURN_IF_ERROR(LoadBucket(bucket).status());
    }
    ASSIGN_OR_RETURN(auto found, FindVersion(bucket, key, version_id));
    if (!found) return NoSuchVersion();
    ObjectInfo o = found->second;
    o.is_latest = false;
    return o;
  }

  Status SetVersioning(const std::string& bucket, const std::string& status) override {
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + bucket));
      if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
      json j = json::parse(kv->value, nullptr, false);
      if (!j.is_object()) j = json::object();
      // Once enabled, a bucket can only be suspended, never unversioned again.
      if (status == "Suspended" && j.value("versioning", "").empty()) return Status::Ok();
      j["versioning"] = status;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      txn.success.push_back(store::Op::Put(kv->key, Dump(j)));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return Status::Ok();
    }
    return base::Aborted("s3: bucket " + bucket + " changed concurrently");
  }

  Result<ListVersionsResult> ListVersions(const std::string& bucket,
                                          const ListVersionsRequest& req) override {
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    std::string obase = kObjectPrefix + bucket + "/", vbase = kVersionPrefix + bucket + "/";
    ASSIGN_OR_RETURN(store::RangeResult cur,
                     store_->Range(store::KeyRange::Prefix(obase + req.prefix)));
    ASSIGN_OR_RETURN(store::RangeResult old,
                     store_->Range(store::KeyRange::Prefix(vbase + req.prefix)));
    // Merge: per key, the current version first, then the noncurrent ones newest first.
    std::vector<ObjectInfo> all;
    size_t i = 0, j = 0;
    while (i < cur.kvs.size() || j < old.kvs.size()) {
      std::string ck = i < cur.kvs.size() ? cur.kvs[i].key.substr(obase.size()) : "";
      std::string vk;
      if (j < old.kvs.size()) {
        std::string rest = old.kvs[j].key.substr(vbase.size());
        vk = rest.substr(0, rest.rfind('\x01'));
      }
      bool take_current = i < cur.kvs.size() && (j >= old.kvs.size() || ck <= vk);
      if (take_current) {
        auto o = ObjFromJson(ck, cur.kvs[i++].value);
        if (o.ok()) {
          if (o->version_id.empty()) o->version_id = "null";
          o->is_latest = true;
          all.push_back(std::move(o).value());
        }
      } else {
        auto o = ObjFromJson(vk, old.kvs[j++].value);
        if (o.ok()) {
          o->is_latest = false;
          all.push_back(std::move(o).value());
        }
      }
    }
    ListVersionsResult out;
    bool started = req.key_marker.empty();
    int count = 0;
    for (auto& o : all) {
      if (!started) {
        if (o.key < req.key_marker) continue;
        if (o.key == req.key_marker) {
          if (req.version_id_marker.empty()) continue;
          if (o.version_id == req.version_id_marker) started = true;
          continue;
        }
        started = true;
      }
      if (count >= req.max_keys) {
        out.truncated = true;
        break;
      }
      out.next_key_marker = o.key;
      out.next_version_id_marker = o.version_id;
      out.versions.push_back(std::move(o));
      count++;
    }
    return out;
  }

  Result<DeleteOutcome> DeleteObject(const std::string& bucket, const std::string& key,
                                     const Requester& who,
                                     const std::string& version_id) override {
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(Bucket b, LoadBucket(bucket));
      ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
      std::optional<ObjectInfo> current;
      if (kv) {
        ASSIGN_OR_RETURN(current, ObjFromJson(key, kv->value));
      }
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(ObjKey(bucket, key), kv ? kv->mod_revision : 0));
      txn.compares.push_back(store::Compare::ModRevisionIs(kBucketPrefix + bucket, b.mod_revision));
      DeleteOutcome out;
      bool events = false;
      if (!version_id.empty()) {
        // Remove one version for good.
        bool is_current = current && (current->version_id == version_id ||
                                      (version_id == "null" && current->version_id.empty()));
        if (is_current) {
          out = {current->delete_marker, version_id};
          if (!current->delete_marker)
            for (auto& op : blobs_->DropRefOps(current->digest, RefOwner(bucket, key)))
              txn.success.push_back(std::move(op));
          txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
          // The newest noncurrent version becomes current.
          store::RangeOptions ro;
          ro.limit = 1;
          ASSIGN_OR_RETURN(store::RangeResult next, store_->Range(
              store::KeyRange::Prefix(VersionKeyPrefix(bucket, key)), ro));
          if (!next.kvs.empty()) {
            ASSIGN_OR_RETURN(ObjectInfo n, ObjFromJson(key, next.kvs[0].value));
            std::string slot = next.kvs[0].key.substr(next.kvs[0].key.rfind('\x01') + 1);
            txn.compares.push_back(
                store::Compare::ModRevisionIs(next.kvs[0].key, next.kvs[0].mod_revision));
            txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(next.kvs[0].key)));
            if (!n.delete_marker) {
              for (auto& op : blobs_->DropRefOps(n.digest, VersionOwner(bucket, key, slot)))
                txn.success.push_back(std::move(op));
              for (auto& op : blobs_->AddRefOps(n.digest, RefOwner(bucket, key)))
                txn.success.push_back(std::move(op));
            }
            txn.success.push_back(store::Op::Put(ObjKey(bucket, key), Dump(ObjToJson(n))));
          }
        } else {
          ASSIGN_OR_RETURN(auto found, FindVersion(bucket, key, version_id));
          if (!found) {
            if (version_id != "null" && version_id.size() != 32)
              return base::InvalidArgument("InvalidArgument: Invalid version id specified");
            return DeleteOutcome{false, version_id};  // nothing there: S3 answers 204 too
          }
          const auto& [vkey, v] = *found;
          std::string slot = vkey.substr(vkey.rfind('\x01') + 1);
          out = {v.delete_marker, version_id};
          if (!v.delete_marker)
            for (auto& op : blobs_->DropRefOps(v.digest, VersionOwner(bucket, key, slot)))
              txn.success.push_back(std::move(op));
          txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(vkey)));
        }
        events = AddEvents(b, key, "ObjectRemoved:Delete", nullptr, who, &txn, version_id);
      } else if (b.info.versioning.empty()) {
        if (!current) return DeleteOutcome{};
        for (auto& op : blobs_->DropRefOps(current->digest, RefOwner(bucket, key)))
          txn.success.push_back(std::move(op));
        txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
        events = AddEvents(b, key, "ObjectRemoved:Delete", nullptr, who, &txn);
      } else {
        // A delete marker becomes the current version.
        ObjectInfo marker;
        marker.key = key;
        marker.delete_marker = true;
        marker.last_modified_ms = NowMs();
        marker.version_id = b.info.versioning == "Enabled" ? NewVersionId() : "null";
        RETURN_IF_ERROR(RetireCurrent(bucket, key, current, marker.version_id, &txn));
        txn.success.push_back(store::Op::Put(ObjKey(bucket, key), Dump(ObjToJson(marker))));
        out = {true, marker.version_id};
        events = AddEvents(b, key, "ObjectRemoved:DeleteMarkerCreated", nullptr, who, &txn,
                           marker.version_id);
      }
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) {
        if (events) cv_.notify_all();
        return out;
      }
    }
    return base::Aborted("s3: too many concurrent writes to " + key);
  }

  Result<ListResult> List(const std::string& bucket, const ListRequest& req) override {
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    std::string base = kObjectPrefix + bucket + "/";
    store::RangeOptions ro;
    std::string from = req.start_after;
    if (!req.prefix.empty() && from < req.prefix) from.clear();
    if (!from.empty()) ro.start_after = base + from;
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(base + req.prefix), ro));
    ListResult out;
    int count = 0;
    std::string last_prefix;
    for (const auto& kv : rr.kvs) {
      std::string key = kv.key.substr(base.size());
      if (kv.value.find("\"dm\":true") != std::string::npos) continue;  // a delete marker
      if (!req.delimiter.empty()) {
        size_t d = key.find(req.delimiter, req.prefix.size());
        if (d != std::string::npos) {
          std::string cp = key.substr(0, d + req.delimiter.size());
          if (cp == last_prefix) continue;
          if (!req.start_after.empty() && cp <= req.start_after) continue;
          if (count >= req.max_keys) {
            out.truncated = true;
            break;
          }
          out.common_prefixes.push_back(cp);
          last_prefix = cp;
          out.next_marker = cp;
          count++;
          continue;
        }
      }
      if (count >= req.max_keys) {
        out.truncated = true;
        break;
      }
      ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv.value));
      out.objects.push_back(std::move(o));
      out.next_marker = key;
      count++;
    }
    return out;
  }

  std::string PathOf(const ObjectInfo& info) const override { return blobs_->PathOf(info.digest); }
  Result<std::string> Read(const ObjectInfo& info) override { return blobs_->Get(info.digest); }
  Result<std::string> ReadRange(const ObjectInfo& info, uint64_t offset,
                                uint64_t length) override {
    return blobs_->ReadRange(info.digest, offset, length);
  }

  Status SetBucketPolicy(const std::string& bucket, const std::string& policy) override {
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + bucket));
      if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
      json j = json::parse(kv->value, nullptr, false);
      if (!j.is_object()) j = json::object();
      if (policy.empty())
        j.erase("policy");
      else
        j["policy"] = policy;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      txn.success.push_back(store::Op::Put(kv->key, Dump(j)));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return Status::Ok();
    }
    return base::Aborted("s3: bucket " + bucket + " changed concurrently");
  }

  Status SetTags(const std::string& bucket, const std::string& key,
                 std::map<std::string, std::string> tags) override {
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
      if (!kv) {
        RETURN_IF_ERROR(LoadBucket(bucket).status());
        return base::NotFound("NoSuchKey: The specified key does not exist.");
      }
      ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv->value));
      o.tags = tags;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      txn.success.push_back(store::Op::Put(kv->key, Dump(ObjToJson(o))));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return Status::Ok();
    }
    return base::Aborted("s3: too many concurrent writes to " + key);
  }

  // ---- Multipart uploads ----

  Result<UploadInfo> CreateUpload(const std::string& bucket, const std::string& key,
                                  ObjectInfo meta, const std::string& checksum_algorithm,
                                  const std::string& initiator) override {
    RETURN_IF_ERROR(CheckKey(key));
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    UploadInfo u;
    u.upload_id = base::RandomString(64, base::kAlnum);
    u.bucket = bucket;
    u.key = key;
    meta.key = key;
    u.meta = std::move(meta);
    u.checksum_algorithm = checksum_algorithm;
    u.initiator = initiator;
    u.initiated_ms = NowMs();
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyExists(kBucketPrefix + bucket));
    txn.success.push_back(store::Op::Put(
        UploadKey(bucket, u.upload_id),
        Dump(json{{"key", key},
                  {"meta", ObjToJson(u.meta)},
                  {"alg", checksum_algorithm},
                  {"initiator", initiator},
                  {"initiated", u.initiated_ms}})));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    if (!r.succeeded) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
    return u;
  }

  Result<PartInfo> UploadPart(const std::string& bucket, const std::string& key,
                              const std::string& upload_id, int part_number,
                              std::string_view data,
                              std::map<std::string, std::string> checksums) override {
    if (part_number < 1 || part_number > 10000)
      return base::InvalidArgument(
          "InvalidArgument: Part number must be an integer between 1 and 10000, inclusive");
    ASSIGN_OR_RETURN(UploadInfo u, LoadUpload(bucket, key, upload_id));
    ASSIGN_OR_RETURN(store::Digest digest, blobs_->Put(data));
    PartInfo p;
    p.number = part_number;
    p.digest = digest;
    p.size = data.size();
    p.etag = "\"" + Md5Hex(data) + "\"";
    p.checksums = std::move(checksums);
    p.last_modified_ms = NowMs();
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto old, store_->Get(PartKey(upload_id, part_number)));
      store::Txn txn;
      txn.compares.push_back(store::Compare::KeyExists(UploadKey(bucket, upload_id)));
      txn.compares.push_back(store::Compare::ModRevisionIs(PartKey(upload_id, part_number),
                                                           old ? old->mod_revision : 0));
      txn.compares.push_back(blobs_->AddRefGuard(digest));
      std::string owner = PartOwner(upload_id, part_number);
      if (old) {
        json oj = json::parse(old->value, nullptr, false);
        std::string od = oj.is_object() ? oj.value("digest", "") : "";
        if (!od.empty() && od != digest)
          for (auto& op : blobs_->DropRefOps(od, owner)) txn.success.push_back(std::move(op));
      }
      for (auto& op : blobs_->AddRefOps(digest, owner)) txn.success.push_back(std::move(op));
      txn.success.push_back(store::Op::Put(PartKey(upload_id, part_number),
                                           Dump(json{{"digest", p.digest},
                                                     {"size", p.size},
                                                     {"etag", p.etag},
                                                     {"sums", p.checksums},
                                                     {"modified", p.last_modified_ms}})));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return p;
      RETURN_IF_ERROR(LoadUpload(bucket, key, upload_id).status());
      ASSIGN_OR_RETURN(digest, blobs_->Put(data));
    }
    return base::Aborted("s3: too many concurrent writes to part " +
                         std::to_string(part_number));
  }

  Result<ObjectInfo> CompleteUpload(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id,
                                    const std::vector<std::pair<int, std::string>>& wanted,
                                    const Requester& who) override {
    ASSIGN_OR_RETURN(UploadInfo u, LoadUpload(bucket, key, upload_id));
    ASSIGN_OR_RETURN(auto upload_kv, store_->Get(UploadKey(bucket, upload_id)));
    if (!upload_kv) return NoSuchUpload();
    ASSIGN_OR_RETURN(std::vector<PartInfo> parts, LoadParts(upload_id, 0, 100000, nullptr));
    if (wanted.empty())
      return base::InvalidArgument(
          "MalformedXML: The XML you provided was not well-formed or did not validate against "
          "our published schema");
    std::map<int, const PartInfo*> by_number;
    for (const auto& p : parts) by_number[p.number] = &p;
    std::vector<const PartInfo*> chosen;
    int last = 0;
    for (const auto& [n, etag] : wanted) {
      if (n <= last)
        return base::InvalidArgument(
            "InvalidPartOrder: The list of parts was not in ascending order. Parts must be "
            "ordered by part number.");
      last = n;
      auto it = by_number.find(n);
      std::string e = etag;
      if (!e.empty() && e.front() != '"') e = "\"" + e + "\"";
      if (it == by_number.end() || it->second->etag != e)
        return base::InvalidArgument(
            "InvalidPart: One or more of the specified parts could not be found.  The part may "
            "not have been uploaded, or the specified entity tag may not match the part's "
            "entity tag.");
      chosen.push_back(it->second);
    }
    for (size_t i = 0; i + 1 < chosen.size(); ++i)
      if (chosen[i]->size < o_.min_part_size)
        return base::InvalidArgument(
            "EntityTooSmall: Your proposed upload is smaller than the minimum allowed size");
    // The object's bytes: the parts concatenated into one blob.
    ASSIGN_OR_RETURN(auto writer, blobs_->NewWriter());
    std::string md5s;
    uint64_t total = 0;
    for (const PartInfo* p : chosen) {
      base::UniqueFd fd(::open(blobs_->PathOf(p->digest).c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) return base::Internal("s3: part " + std::to_string(p->number) + " is gone");
      std::string buf(1 << 20, '\0');
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return base::ErrnoError("s3: reading part");
        if (n == 0) break;
        RETURN_IF_ERROR(writer->Write(std::string_view(buf.data(), static_cast<size_t>(n))));
        total += static_cast<uint64_t>(n);
      }
      auto raw = base::HexDecode(p->etag.substr(1, p->etag.size() - 2));
      if (raw) md5s += *raw;
    }
    ASSIGN_OR_RETURN(store::Digest digest, writer->Commit());
    ObjectInfo meta = u.meta;
    meta.key = key;
    meta.digest = digest;
    meta.size = total;
    meta.etag = "\"" + Md5Hex(md5s) + "-" + std::to_string(chosen.size()) + "\"";
    meta.parts_count = static_cast<int>(chosen.size());
    meta.checksums.clear();
    std::vector<store::Compare> compares = {
        store::Compare::ModRevisionIs(upload_kv->key, upload_kv->mod_revision)};
    std::vector<store::Op> ops;
    for (const auto& p : parts)
      for (auto& op : blobs_->DropRefOps(p.digest, PartOwner(upload_id, p.number)))
        ops.push_back(std::move(op));
    ops.push_back(store::Op::Delete(store::KeyRange::Prefix(kPartPrefix + upload_id + "/")));
    ops.push_back(store::Op::Delete(store::KeyRange::Exact(upload_kv->key)));
    auto out = CommitObject(bucket, meta, "ObjectCreated:CompleteMultipartUpload", who,
                            std::move(compares), std::move(ops));
    if (!out.ok() && out.status().code() == base::Code::kAborted) {
      // Lost the race: completed or aborted meanwhile.
      ASSIGN_OR_RETURN(auto again, store_->Get(UploadKey(bucket, upload_id)));
      if (!again) return NoSuchUpload();
    }
    return out;
  }

  Status AbortUpload(const std::string& bucket, const std::string& key,
                     const std::string& upload_id) override {
    RETURN_IF_ERROR(LoadUpload(bucket, key, upload_id).status());
    return AbortUploadRecord(bucket, upload_id);
  }

  Result<ListPartsResult> ListParts(const std::string& bucket, const std::string& key,
                                    const std::string& upload_id, int marker,
                                    int max_parts) override {
    ListPartsResult out;
    ASSIGN_OR_RETURN(out.upload, LoadUpload(bucket, key, upload_id));
    ASSIGN_OR_RETURN(out.parts, LoadParts(upload_id, marker, max_parts, &out.truncated));
    if (out.truncated && !out.parts.empty()) out.next_marker = out.parts.back().number;
    return out;
  }

  Result<ListUploadsResult> ListUploads(const std::string& bucket,
                                        const ListUploadsRequest& req) override {
    RETURN_IF_ERROR(LoadBucket(bucket).status());
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(kUploadPrefix + bucket + "/")));
    std::vector<UploadInfo> all;
    for (const auto& kv : rr.kvs) {
      auto u = UploadFromJson(bucket, kv.key.substr(kv.key.rfind('/') + 1), kv.value);
      if (!u.ok()) continue;
      if (u->key.compare(0, req.prefix.size(), req.prefix) != 0) continue;
      all.push_back(std::move(u).value());
    }
    std::sort(all.begin(), all.end(), [](const UploadInfo& a, const UploadInfo& b) {
      return std::tie(a.key, a.initiated_ms, a.upload_id) <
             std::tie(b.key, b.initiated_ms, b.upload_id);
    });
    ListUploadsResult out;
    for (auto& u : all) {
      if (!req.key_marker.empty()) {
        if (u.key < req.key_marker) continue;
        if (u.key == req.key_marker &&
            (req.upload_id_marker.empty() || u.upload_id <= req.upload_id_marker))
          continue;
      }
      if (static_cast<int>(out.uploads.size()) >= req.max_uploads) {
        out.truncated = true;
        break;
      }
      out.uploads.push_back(std::move(u));
    }
    return out;
  }

  // ---- Notifications ----

  Status PutNotifications(const std::string& bucket, std::vector<NotificationRule> rules,
                          const Requester& who) override {
    ASSIGN_OR_RETURN(Bucket b, LoadBucket(bucket));
    if (!rules.empty() && !o_.sink)
      return base::InvalidArgument("InvalidArgument: event notifications are not available");
    for (auto& r : rules) {
      if (r.id.empty()) r.id = base::RandomString(40, base::kAlnum);
      Status v = o_.sink->Validate(r.arn, bucket);
      if (!v.ok())
        return base::InvalidArgument(
            "InvalidArgument: Unable to validate the following destination configurations");
    }
    json arr = json::array();
    for (const auto& r : rules) arr.push_back(RuleToJson(r));
    ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + bucket));
    if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
    json j = json::parse(kv->value, nullptr, false);
    if (!j.is_object()) j = json::object();
    j["notify"] = arr;
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    txn.success.push_back(store::Op::Put(kv->key, Dump(j)));
    // As S3 does, queues get an s3:TestEvent when a configuration names them.
    std::set<std::string> tested;
    for (const auto& r : rules) {
      if (r.kind != "Queue" || !tested.insert(r.arn).second) continue;
      json test = {{"Service", "Amazon S3"},
                   {"Event", "s3:TestEvent"},
                   {"Time", Iso(NowMs())},
                   {"Bucket", bucket},
                   {"RequestId", who.request_id},
                   {"HostId", base::RandomString(56, base::kAlnum)}};
      txn.success.push_back(store::Op::Put(NextEventKey(), Dump(json{{"arn", r.arn},
                                                                       {"event", Dump(test)},
                                                                       {"at", NowMs()}})));
    }
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    if (!r.succeeded) return base::Aborted("s3: bucket changed concurrently; retry");
    cv_.notify_all();
    (void)b;
    return Status::Ok();
  }

  Result<std::vector<NotificationRule>> GetNotifications(const std::string& bucket) override {
    ASSIGN_OR_RETURN(Bucket b, LoadBucket(bucket));
    return b.rules;
  }

 private:
  static Status CheckKey(const std::string& key) {
    if (key.empty() || key.size() > 1024)
      return base::InvalidArgument("KeyTooLongError: Your key is too long");
    return Status::Ok();
  }
  static Status NoSuchUpload() {
    return base::NotFound(
        "NoSuchUpload: The specified upload does not exist. The upload ID may be invalid, or "
        "the upload may have been aborted or completed.");
  }

  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(o_.clock->Now().time_since_epoch())
        .count();
  }
  static std::string Iso(int64_t ms) {
    return base::FormatIso8601(base::SystemTime(std::chrono::milliseconds(ms)), true);
  }

  Result<Bucket> LoadBucket(const std::string& name) {
    ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + name));
    if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
    json j = json::parse(kv->value, nullptr, false);
    Bucket b;
    b.mod_revision = kv->mod_revision;
    b.info.name = name;
    b.info.region = j.is_object() ? j.value("region", o_.region) : o_.region;
    b.info.created_ms = j.is_object() ? j.value("created", int64_t{0}) : 0;
    b.info.policy = j.is_object() ? j.value("policy", "") : "";
    b.info.versioning = j.is_object() ? j.value("versioning", "") : "";
    if (j.is_object() && j.contains("notify") && j["notify"].is_array())
      for (const auto& r : j["notify"]) b.rules.push_back(RuleFromJson(r));
    return b;
  }

  Result<UploadInfo> UploadFromJson(const std::string& bucket, const std::string& id,
                                    const std::string& value) {
    json j = json::parse(value, nullptr, false);
    if (!j.is_object()) return base::Corruption("s3: upload record is not JSON");
    UploadInfo u;
    u.upload_id = id;
    u.bucket = bucket;
    u.key = j.value("key", "");
    auto meta = ObjFromJson(u.key, j.contains("meta") ? j["meta"].dump() : "{}");
    if (meta.ok()) u.meta = std::move(meta).value();
    u.checksum_algorithm = j.value("alg", "");
    u.initiator = j.value("initiator", "");
    u.initiated_ms = j.value("initiated", int64_t{0});
    return u;
  }

  Result<UploadInfo> LoadUpload(const std::string& bucket, const std::string& key,
                                const std::string& upload_id) {
    if (upload_id.empty() || upload_id.find('/') != std::string::npos) return NoSuchUpload();
    ASSIGN_OR_RETURN(auto kv, store_->Get(UploadKey(bucket, upload_id)));
    if (!kv) {
      RETURN_IF_ERROR(LoadBucket(bucket).status());
      return NoSuchUpload();
    }
    ASSIGN_OR_RETURN(UploadInfo u, UploadFromJson(bucket, upload_id, kv->value));
    if (u.key != key) return NoSuchUpload();
    return u;
  }

  Result<std::vector<PartInfo>> LoadParts(const std::string& upload_id, int marker, int max,
                                          bool* truncated) {
    store::RangeOptions ro;
    if (marker > 0) ro.start_after = PartKey(upload_id, marker);
    ro.limit = max + 1;
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(kPartPrefix + upload_id + "/"), ro));
    std::vector<PartInfo> out;
    for (const auto& kv : rr.kvs) {
      if (static_cast<int>(out.size()) >= max) {
        if (truncated) *truncated = true;
        break;
      }
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      PartInfo p;
      p.number = std::atoi(kv.key.substr(kv.key.rfind('/') + 1).c_str());
      p.digest = j.value("digest", "");
      p.size = j.value("size", uint64_t{0});
      p.etag = j.value("etag", "");
      p.checksums = j.value("sums", std::map<std::string, std::string>{});
      p.last_modified_ms = j.value("modified", int64_t{0});
      out.push_back(std::move(p));
    }
    return out;
  }

  Status AbortUploadRecord(const std::string& bucket, const std::string& upload_id) {
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(UploadKey(bucket, upload_id)));
      if (!kv) return NoSuchUpload();
      ASSIGN_OR_RETURN(std::vector<PartInfo> parts, LoadParts(upload_id, 0, 100000, nullptr));
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      for (const auto& p : parts) {
        txn.compares.push_back(store::Compare::KeyExists(PartKey(upload_id, p.number)));
        for (auto& op : blobs_->DropRefOps(p.digest, PartOwner(upload_id, p.number)))
          txn.success.push_back(std::move(op));
      }
      txn.success.push_back(
          store::Op::Delete(store::KeyRange::Prefix(kPartPrefix + upload_id + "/")));
      txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return Status::Ok();
    }
    return base::Aborted("s3: upload " + upload_id + " changed concurrently");
  }

  static Status NoSuchVersion() {
    return base::NotFound("NoSuchVersion: The specified version does not exist.");
  }

  // The noncurrent version `version_id` of `key`: its store key and record.
  Result<std::optional<std::pair<std::string, ObjectInfo>>> FindVersion(
      const std::string& bucket, const std::string& key, const std::string& version_id) {
    using Found = std::optional<std::pair<std::string, ObjectInfo>>;
    if (version_id.empty() || version_id.find('\x01') != std::string::npos) return Found{};
    if (version_id != "null") {
      ASSIGN_OR_RETURN(auto kv, store_->Get(VersionKeyPrefix(bucket, key) + version_id));
      if (!kv) return Found{};
      ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv->value));
      return Found{std::make_pair(kv->key, std::move(o))};
    }
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(VersionKeyPrefix(bucket, key))));
    for (const auto& kv : rr.kvs) {
      if (kv.key.size() < 4 || kv.key.compare(kv.key.size() - 4, 4, "null") != 0) continue;
      ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv.value));
      return Found{std::make_pair(kv.key, std::move(o))};
    }
    return Found{};
  }

  // Makes room for a new current version with id `new_vid` ("" in a never-versioned bucket,
  // "null" when suspended): the current one is kept as a noncurrent version when versioning
  // keeps it, else its reference is dropped; a key keeps a single "null" version.
  Status RetireCurrent(const std::string& bucket, const std::string& key,
                       const std::optional<ObjectInfo>& current, const std::string& new_vid,
                       store::Txn* txn) {
    if (current) {
      bool current_null = current->version_id.empty() || current->version_id == "null";
      bool keep = !new_vid.empty() && !(new_vid == "null" && current_null);
      if (!current->delete_marker)
        for (auto& op : blobs_->DropRefOps(current->digest, RefOwner(bucket, key)))
          txn->success.push_back(std::move(op));
      if (keep) {
        ObjectInfo v = *current;
        if (v.version_id.empty()) v.version_id = "null";
        std::string slot = SlotOf(v);
        if (!v.delete_marker)
          for (auto& op : blobs_->AddRefOps(v.digest, VersionOwner(bucket, key, slot)))
            txn->success.push_back(std::move(op));
        txn->success.push_back(
            store::Op::Put(VersionKeyPrefix(bucket, key) + slot, Dump(ObjToJson(v))));
      }
    }
    if (new_vid == "null") {
      ASSIGN_OR_RETURN(auto old_null, FindVersion(bucket, key, "null"));
      if (old_null) {
        const auto& [vkey, v] = *old_null;
        if (!v.delete_marker)
          for (auto& op :
               blobs_->DropRefOps(v.digest, VersionOwner(bucket, key, vkey.substr(vkey.rfind('\x01') + 1))))
            txn->success.push_back(std::move(op));
        txn->success.push_back(store::Op::Delete(store::KeyRange::Exact(vkey)));
      }
    }
    return Status::Ok();
  }

  // Writes `meta` (its digest already in the blob store) as bucket/meta.key, replacing any
  // object there, with the event records its bucket's rules ask for — one txn.
  Result<ObjectInfo> CommitObject(const std::string& bucket, ObjectInfo meta,
                                  const std::string& event, const Requester& who,
                                  std::vector<store::Compare> extra_compares,
                                  std::vector<store::Op> extra_ops) {
    const std::string& key = meta.key;
    meta.last_modified_ms = NowMs();
    meta.delete_marker = false;
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(Bucket b, LoadBucket(bucket));
      ASSIGN_OR_RETURN(auto old, store_->Get(ObjKey(bucket, key)));
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(ObjKey(bucket, key), old ? old->mod_revision : 0));
      txn.compares.push_back(blobs_->AddRefGuard(meta.digest));
      txn.compares.push_back(store::Compare::ModRevisionIs(kBucketPrefix + bucket, b.mod_revision));
      for (const auto& c : extra_compares) txn.compares.push_back(c);
      meta.version_id = b.info.versioning == "Enabled"     ? NewVersionId()
                        : b.info.versioning == "Suspended" ? "null"
                                                           : "";
      std::optional<ObjectInfo> prev;
      if (old) {
        ASSIGN_OR_RETURN(prev, ObjFromJson(key, old->value));
      }
      RETURN_IF_ERROR(RetireCurrent(bucket, key, prev, meta.version_id, &txn));
      for (auto& op : blobs_->AddRefOps(meta.digest, RefOwner(bucket, key)))
        txn.success.push_back(std::move(op));
      txn.success.push_back(store::Op::Put(ObjKey(bucket, key), Dump(ObjToJson(meta))));
      for (const auto& op : extra_ops) txn.success.push_back(op);
      bool events = AddEvents(b, key, event, &meta, who, &txn, meta.version_id);
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) {
        if (events) cv_.notify_all();
        return meta;
      }
      // A concurrent write to the key or the bucket: read again and retry. (The blob guard
      // cannot fail here: the blob store's GC spares blobs younger than its grace period.)
    }
    return base::Aborted("s3: too many concurrent writes to " + key);
  }

  std::string NextEventKey() {
    // Sequencers grow with time and never repeat within this process.
    uint64_t now = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
    uint64_t prev = last_seq_.load();
    uint64_t next;
    do {
      next = std::max(now, prev + 1);
    } while (!last_seq_.compare_exchange_weak(prev, next));
    char buf[24];
    snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(next));
    return kEventPrefix + buf;
  }

  // Adds one queued event per matching rule. `obj` null for removals.
  bool AddEvents(const Bucket& b, const std::string& key, const std::string& event,
                 const ObjectInfo* obj, const Requester& who, store::Txn* txn,
                 const std::string& version_id = "") {
    bool any = false;
    for (const auto& r : b.rules) {
      if (!EventMatches(r, event, key)) continue;
      std::string ek = NextEventKey();
      json object = {{"key", EventKey(key)}, {"sequencer", ek.substr(kEventPrefix.size())}};
      if (!version_id.empty() && version_id != "null") object["versionId"] = version_id;
      if (obj) {
        object["size"] = obj->size;
        object["eTag"] = obj->etag.size() >= 2 ? obj->etag.substr(1, obj->etag.size() - 2) : "";
      }
      std::string principal = who.principal_id.empty() ? o_.account_id : who.principal_id;
      json record = {
          {"eventVersion", "2.1"},
          {"eventSource", "aws:s3"},
          {"awsRegion", b.info.region},
          {"eventTime", Iso(NowMs())},
          {"eventName", event},
          {"userIdentity", {{"principalId", principal}}},
          {"requestParameters", {{"sourceIPAddress", who.source_ip}}},
          {"responseElements",
           {{"x-amz-request-id", who.request_id}, {"x-amz-id-2", base::RandomString(56, base::kAlnum)}}},
          {"s3",
           {{"s3SchemaVersion", "1.0"},
            {"configurationId", r.id},
            {"bucket",
             {{"name", b.info.name},
              {"ownerIdentity", {{"principalId", o_.account_id}}},
              {"arn", "arn:aws:s3:::" + b.info.name}}},
            {"object", object}}}};
      json doc = {{"Records", json::array({record})}};
      txn->success.push_back(
          store::Op::Put(ek, Dump(json{{"arn", r.arn}, {"event", Dump(doc)}, {"at", NowMs()}})));
      any = true;
    }
    return any;
  }

  // Hands queued events to their destinations in sequencer order; retries failures with
  // backoff (1 s doubling to 1 min) for up to six hours; drops events whose destination is
  // gone.
  void DispatchLoop() {
    std::unordered_map<std::string, std::pair<int, std::chrono::steady_clock::time_point>> retry;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        if (stopping_) return;
        cv_.wait_for(lock, std::chrono::seconds(1));
        if (stopping_) return;
      }
      for (;;) {
        store::RangeOptions ro;
        ro.limit = 256;
        auto rr = store_->Range(store::KeyRange::Prefix(kEventPrefix), ro);
        if (!rr.ok()) break;
        bool progressed = false;
        for (const auto& kv : rr->kvs) {
          {
            std::lock_guard lock(mu_);
            if (stopping_) return;
          }
          auto now = std::chrono::steady_clock::now();
          auto it = retry.find(kv.key);
          if (it != retry.end() && it->second.second > now) continue;
          json j = json::parse(kv.value, nullptr, false);
          Status st = Status::Ok();
          bool drop = !j.is_object();
          if (!drop) {
            st = o_.sink->Deliver(j.value("arn", ""), j.value("event", ""));
            int64_t age_ms = NowMs() - j.value("at", int64_t{0});
            if (st.code() == base::Code::kNotFound) {
              spdlog::warn("s3: dropping event for {}: {}", j.value("arn", ""), st.message());
              drop = true;
            } else if (!st.ok() && age_ms > 6 * 3600 * 1000) {
              spdlog::warn("s3: dropping event for {} after 6 hours: {}", j.value("arn", ""),
                           st.message());
              drop = true;
            }
          }
          if (st.ok() || drop) {
            store::Txn txn;
            txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv.key)));
            (void)store_->Commit(txn);
            retry.erase(kv.key);
            progressed = true;
          } else {
            int attempts = it == retry.end() ? 0 : it->second.first;
            auto delay = std::chrono::seconds(std::min(60, 1 << std::min(attempts, 6)));
            retry[kv.key] = {attempts + 1, now + delay};
          }
        }
        if (!progressed || rr->kvs.size() < 256) break;
      }
    }
  }

  store::Store* store_;
  store::BlobStore* blobs_;
  Options o_;
  std::atomic<uint64_t> last_seq_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread dispatcher_;
};

}  // namespace

std::string Md5Hex(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return base::HexEncode(std::string(reinterpret_cast<char*>(out), len));
}

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(store::Store* store, store::BlobStore* blobs,
                                                     const Options& options) {
  return std::unique_ptr<ObjectStore>(std::make_unique<ObjectStoreImpl>(store, blobs, options));
}

}  // namespace s3
