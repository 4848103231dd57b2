#include "services/s3/s3.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "base/strings.h"

namespace s3 {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;

const std::string kBucketPrefix = "/s3/b/";
const std::string kObjectPrefix = "/s3/o/";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
std::string ObjKey(const std::string& b, const std::string& k) {
  return kObjectPrefix + b + "/" + k;
}
std::string RefOwner(const std::string& b, const std::string& k) { return "s3/" + b + "/" + k; }

json ObjToJson(const ObjectInfo& o) {
  return json{{"digest", o.digest},
              {"size", o.size},
              {"etag", o.etag},
              {"ct", o.content_type},
              {"headers", o.headers},
              {"meta", o.metadata},
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

class ObjectStoreImpl : public ObjectStore {
 public:
  ObjectStoreImpl(store::Store* store, store::BlobStore* blobs, Options o)
      : store_(store), blobs_(blobs), o_(std::move(o)) {
    if (!o_.clock) o_.clock = &base::SystemClock();
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
    ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + name));
    if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
    json j = json::parse(kv->value, nullptr, false);
    BucketInfo b;
    b.name = name;
    b.region = j.is_object() ? j.value("region", o_.region) : o_.region;
    b.created_ms = j.is_object() ? j.value("created", int64_t{0}) : 0;
    return b;
  }

  Status DeleteBucket(const std::string& name) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(kBucketPrefix + name));
    if (!kv) return base::NotFound("NoSuchBucket: The specified bucket does not exist");
    store::RangeOptions ro;
    ro.limit = 1;
    ro.keys_only = true;
    ASSIGN_OR_RETURN(store::RangeResult objs,
                     store_->Range(store::KeyRange::Prefix(kObjectPrefix + name + "/"), ro));
    if (!objs.kvs.empty())
      return base::FailedPrecondition(
          "BucketNotEmpty: The bucket you tried to delete is not empty");
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    // Nothing may have been put in between (the object range must still be empty).
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
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
                               std::string_view data, ObjectInfo meta) override {
    RETURN_IF_ERROR(HeadBucket(bucket).status());
    if (key.empty() || key.size() > 1024)
      return base::InvalidArgument("KeyTooLongError: Your key is too long");
    ASSIGN_OR_RETURN(store::Digest digest, blobs_->Put(data));
    meta.key = key;
    meta.digest = digest;
    meta.size = data.size();
    meta.etag = "\"" + Md5Hex(data) + "\"";
    meta.last_modified_ms = NowMs();
    for (int attempt = 0; attempt < 8; ++attempt) {
      ASSIGN_OR_RETURN(auto old, store_->Get(ObjKey(bucket, key)));
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(ObjKey(bucket, key), old ? old->mod_revision : 0));
      txn.compares.push_back(blobs_->AddRefGuard(digest));
      txn.compares.push_back(store::Compare::KeyExists(kBucketPrefix + bucket));
      if (old) {
        auto prev = ObjFromJson(key, old->value);
        if (prev.ok() && prev->digest != digest)
          for (auto& op : blobs_->DropRefOps(prev->digest, RefOwner(bucket, key)))
            txn.success.push_back(std::move(op));
      }
      for (auto& op : blobs_->AddRefOps(digest, RefOwner(bucket, key)))
        txn.success.push_back(std::move(op));
      txn.success.push_back(store::Op::Put(ObjKey(bucket, key), Dump(ObjToJson(meta))));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return meta;
      RETURN_IF_ERROR(HeadBucket(bucket).status());
      ASSIGN_OR_RETURN(digest, blobs_->Put(data));  // the guard may have failed: put again
    }
    return base::Aborted("s3: too many concurrent writes to " + key);
  }

  Result<ObjectInfo> HeadObject(const std::string& bucket, const std::string& key) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
    if (!kv) {
      RETURN_IF_ERROR(HeadBucket(bucket).status());
      return base::NotFound("NoSuchKey: The specified key does not exist.");
    }
    return ObjFromJson(key, kv->value);
  }

  Status DeleteObject(const std::string& bucket, const std::string& key) override {
    RETURN_IF_ERROR(HeadBucket(bucket).status());
    ASSIGN_OR_RETURN(auto kv, store_->Get(ObjKey(bucket, key)));
    if (!kv) return Status::Ok();
    ASSIGN_OR_RETURN(ObjectInfo o, ObjFromJson(key, kv->value));
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    for (auto& op : blobs_->DropRefOps(o.digest, RefOwner(bucket, key)))
      txn.success.push_back(std::move(op));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
    return store_->Commit(txn).status();
  }

  Result<ListResult> List(const std::string& bucket, const ListRequest& req) override {
    RETURN_IF_ERROR(HeadBucket(bucket).status());
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

 private:
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(o_.clock->Now().time_since_epoch())
        .count();
  }

  store::Store* store_;
  store::BlobStore* blobs_;
  Options o_;
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
