#include "services/s3/api.h"

#include <fcntl.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <set>

#include "auth/policy.h"
#include "aws/protocol.h"
#include "aws/xml.h"
#include "services/s3/checksum.h"
#include "services/s3/chunked.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/time.h"

namespace s3 {

namespace {

using aws::Call;
using aws::Error;

constexpr char kXmlns[] = "http://s3.amazonaws.com/doc/2006-03-01/";

Error S3Error(int status, const std::string& code, const std::string& message,
              std::vector<std::pair<std::string, std::string>> extra = {}) {
  Error e = aws::MakeError(status, code, message);
  e.extra = std::move(extra);
  return e;
}

// "Code: message" statuses from the object store → S3 errors.
Error FromStatus(const base::Status& s, const std::string& bucket, const std::string& key) {
  std::string code = "InternalError", message = s.message();
  size_t colon = message.find(": ");
  if (colon != std::string::npos && colon < 40) {
    code = message.substr(0, colon);
    message = message.substr(colon + 2);
  }
  int status = 500;
  std::vector<std::pair<std::string, std::string>> extra;
  if (code == "NoSuchBucket") {
    status = 404;
    extra = {{"BucketName", bucket}};
  } else if (code == "NoSuchKey") {
    status = 404;
    extra = {{"Key", key}};
  } else if (code == "NoSuchVersion") {
    status = 404;
    extra = {{"Key", key}};
  } else if (code == "BucketAlreadyOwnedByYou" || code == "BucketNotEmpty") {
    status = 409;
    extra = {{"BucketName", bucket}};
  } else if (code == "InvalidBucketName" || code == "KeyTooLongError") {
    status = 400;
    extra = {{"BucketName", bucket}};
  } else if (code == "NoSuchUpload") {
    status = 404;
  } else if (code == "InvalidPart" || code == "InvalidPartOrder" || code == "EntityTooSmall" ||
             code == "InvalidArgument" || code == "MalformedXML" || code == "IncompleteBody" ||
             code == "InvalidRequest" || code == "UserKeyMustBeSpecified" ||
             code == "BadDigest" || code == "InvalidTag") {
    status = 400;
  } else if (code == "SignatureDoesNotMatch" || code == "AccessDenied") {
    status = 403;
  } else if (code == "NotImplemented") {
    status = 501;
  } else {
    message = "We encountered an internal error. Please try again.";
  }
  return S3Error(status, code, message, std::move(extra));
}

std::string Iso(int64_t ms) {
  return base::FormatIso8601(base::SystemTime(std::chrono::milliseconds(ms)), true);
}

// Path-style /bucket/key, or virtual-host style bucket.s3.<host> / bucket.s3.localhost.
void Address(const http::Request& req, std::string* bucket, std::string* key) {
  std::string path = base::UriDecode(req.path).value_or(req.path);
  const std::string* host = req.Find("Host");
  std::string h = host ? *host : "";
  h = h.substr(0, h.find(':'));
  size_t s3 = h.find(".s3.");
  if (s3 != std::string::npos && s3 > 0) {
    *bucket = h.substr(0, s3);
    *key = path.size() > 1 ? path.substr(1) : "";
    return;
  }
  std::string rest = path.size() > 1 ? path.substr(1) : "";
  size_t slash = rest.find('/');
  *bucket = rest.substr(0, slash);
  *key = slash == std::string::npos ? "" : rest.substr(slash + 1);
}

struct Query {
  std::vector<std::pair<std::string, std::string>> items;
  bool Has(const std::string& k) const {
    for (const auto& [a, b] : items)
      if (a == k) return true;
    return false;
  }
  std::string Get(const std::string& k, const std::string& d = "") const {
    for (const auto& [a, b] : items)
      if (a == k) return b;
    return d;
  }
};

// Parses "bytes=a-b", "bytes=a-", "bytes=-n" against `size`. nullopt = no usable range
// (serve all); false in *ok = unsatisfiable.
std::optional<std::pair<uint64_t, uint64_t>> ParseRange(const std::string& h, uint64_t size,
                                                        bool* ok) {
  *ok = true;
  if (h.rfind("bytes=", 0) != 0 || h.find(',') != std::string::npos) return std::nullopt;
  std::string spec = h.substr(6);
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  uint64_t first, last;
  if (a.empty()) {
    if (!digits(b)) return std::nullopt;
    uint64_t n = std::stoull(b);
    if (n == 0 || size == 0) {
      *ok = false;
      return std::nullopt;
    }
    first = n >= size ? 0 : size - n;
    last = size - 1;
  } else {
    if (!digits(a) || (!b.empty() && !digits(b))) return std::nullopt;
    first = std::stoull(a);
    last = b.empty() ? size - 1 : std::min<uint64_t>(std::stoull(b), size - 1);
    if (first >= size) {
      *ok = false;
      return std::nullopt;
    }
    if (last < first) return std::nullopt;
  }
  return std::make_pair(first, last);
}

class S3Service : public aws::Service {
 public:
  explicit S3Service(ObjectStore& s) : s_(s) {}
  std::string_view signing_name() const override { return "s3"; }
  aws::Protocol protocol() const override { return aws::Protocol::kRestXml; }
  std::string_view xml_namespace() const override { return kXmlns; }

  void Handle(Call& call, http::Request&& req, http::Responder respond) override {
    Ctx c{call, req, respond};
    Address(req, &c.bucket, &c.key);
    if (auto parsed = base::ParseQuery(req.query)) c.q.items = std::move(*parsed);
    c.bucket_arn = "arn:aws:s3:::" + c.bucket;
    c.object_arn = c.bucket_arn + "/" + c.key;
    c.who.principal_id = call.principal.type == auth::PrincipalType::kRoot
                             ? call.account_id
                             : "AWS:" + call.principal.user_id;
    c.who.source_ip = call.remote_ip;
    c.who.request_id = call.request_id;
    if (call.anonymous) c.who.principal_id = "Anonymous";
    if (!c.bucket.empty()) {
      auto b = s_.HeadBucket(c.bucket);
      if (b.ok()) {
        c.policy = PolicyOf(c.bucket, b->policy);
      } else if (call.anonymous) {
        return c.FailStatus(b.status());  // NoSuchBucket, as S3 answers anyone
      }
    }
    const std::string& m = req.method;
    if (c.bucket.empty()) {
      if (m != "GET")
        return c.Fail(S3Error(405, "MethodNotAllowed",
                              "The specified method is not allowed against this resource."));
      call.operation = "ListBuckets";
      if (c.Deny("s3:ListAllMyBuckets", "*")) return;
      return respond(ListBuckets(call));
    }
    if (c.key.empty()) return HandleBucket(c);
    return HandleObject(c);
  }

 private:
  struct Ctx {
    Call& call;
    http::Request& req;
    http::Responder& respond;
    std::string bucket, key, bucket_arn, object_arn;
    Query q;
    Requester who;
    std::shared_ptr<const auth::Policy> policy;  // the bucket's, if any

    void Fail(const Error& e) const {
      http::Response r = aws::RenderError(aws::Protocol::kRestXml, e, call.request_id, kXmlns);
      if (req.method == "HEAD") r.body.clear();
      respond(std::move(r));
    }
    void FailStatus(const base::Status& s) const { Fail(FromStatus(s, bucket, key)); }
    // Sends AccessDenied and returns true when the caller may not.
    bool Deny(const std::string& action, const std::string& resource) const {
      if (auto d = call.AuthorizeWith(policy.get(), action, resource, {})) {
        Fail(*d);
        return true;
      }
      return false;
    }
  };

  static Error NotImplemented(const std::string& what) {
    return S3Error(501, "NotImplemented",
                   "A header you provided implies functionality that is not implemented",
                   {{"Header", what}});
  }

  // Bucket subresources we do not serve yet: answered NotImplemented rather than taken for
  // a listing.
  static bool UnsupportedBucketSubresource(const Query& q, std::string* which) {
    static const char* kSubs[] = {"acl",       "cors",      "lifecycle",
                                  "tagging",   "website",   "replication", "logging",
                                  "encryption", "ownershipControls", "publicAccessBlock",
                                  "object-lock", "accelerate", "requestPayment", "analytics",
                                  "inventory", "metrics",   "intelligent-tiering",
                                  "policyStatus"};
    for (const char* s : kSubs)
      if (q.Has(s)) {
        *which = s;
        return true;
      }
    return false;
  }

  void HandleBucket(Ctx& c) {
    const std::string& m = c.req.method;
    Call& call = c.call;
    if (m == "PUT" && c.q.Has("notification")) {
      call.operation = "PutBucketNotificationConfiguration";
      if (c.Deny("s3:PutBucketNotification", c.bucket_arn)) return;
      return PutNotification(c);
    }
    if (m == "GET" && c.q.Has("notification")) {
      call.operation = "GetBucketNotificationConfiguration";
      if (c.Deny("s3:GetBucketNotification", c.bucket_arn)) return;
      return GetNotification(c);
    }
    if (m == "GET" && c.q.Has("versioning")) {
      call.operation = "GetBucketVersioning";
      if (c.Deny("s3:GetBucketVersioning", c.bucket_arn)) return;
      auto b = s_.HeadBucket(c.bucket);
      if (!b.ok()) return c.FailStatus(b.status());
      aws::XmlWriter w;
      w.Declaration().Open("VersioningConfiguration", kXmlns);
      if (!b->versioning.empty()) w.Element("Status", b->versioning);
      return c.respond(XmlDone(call, w.Finish()));
    }
    if (m == "PUT" && c.q.Has("versioning")) {
      call.operation = "PutBucketVersioning";
      if (c.Deny("s3:PutBucketVersioning", c.bucket_arn)) return;
      std::string data;
      std::map<std::string, std::string> sums;
      if (!DecodeBody(c, &data, &sums)) return;
      auto doc = aws::ParseXml(data);
      if (!doc.ok() || doc->name != "VersioningConfiguration") return c.Fail(MalformedXml());
      std::string status = doc->ChildText("Status");
      if (status != "Enabled" && status != "Suspended") return c.Fail(MalformedXml());
      base::Status st = s_.SetVersioning(c.bucket, status);
      if (!st.ok()) return c.FailStatus(st);
      return c.respond(Done(call, http::Response{}));
    }
    if (m == "GET" && c.q.Has("versions")) {
      call.operation = "ListObjectVersions";
      if (c.Deny("s3:ListBucketVersions", c.bucket_arn)) return;
      return ListVersions(c);
    }
    if (c.q.Has("policy")) return BucketPolicy(c);
    if (m == "GET" && c.q.Has("uploads")) {
      call.operation = "ListMultipartUploads";
      if (c.Deny("s3:ListBucketMultipartUploads", c.bucket_arn)) return;
      return ListUploads(c);
    }
    if (m == "POST" && c.q.Has("delete")) {
      call.operation = "DeleteObjects";
      return DeleteObjects(c);
    }
    std::string sub;
    if (UnsupportedBucketSubresource(c.q, &sub)) return c.Fail(NotImplemented("?" + sub));
    if (m == "PUT") {
      call.operation = "CreateBucket";
      if (c.Deny("s3:CreateBucket", c.bucket_arn)) return;
      std::string region;
      if (!base::Trim(c.req.body).empty()) {
        auto doc = aws::ParseXml(c.req.body, 64 << 10);
        if (!doc.ok()) return c.Fail(MalformedXml());
        region = doc->ChildText("LocationConstraint");
      }
      base::Status st = s_.CreateBucket(c.bucket, region);
      if (!st.ok()) return c.FailStatus(st);
      http::Response r;
      r.Set("Location", "/" + c.bucket);
      return c.respond(Done(call, std::move(r)));
    }
    if (m == "HEAD") {
      call.operation = "HeadBucket";
      if (c.Deny("s3:ListBucket", c.bucket_arn)) return;
      auto b = s_.HeadBucket(c.bucket);
      if (!b.ok()) return c.FailStatus(b.status());
      http::Response r;
      r.Set("x-amz-bucket-region", b->region);
      return c.respond(Done(call, std::move(r)));
    }
    if (m == "DELETE") {
      call.operation = "DeleteBucket";
      if (c.Deny("s3:DeleteBucket", c.bucket_arn)) return;
      base::Status st = s_.DeleteBucket(c.bucket);
      if (!st.ok()) return c.FailStatus(st);
      http::Response r;
      r.status = 204;
      return c.respond(Done(call, std::move(r)));
    }
    if (m == "GET" && c.q.Has("location")) {
      call.operation = "GetBucketLocation";
      if (c.Deny("s3:GetBucketLocation", c.bucket_arn)) return;
      auto b = s_.HeadBucket(c.bucket);
      if (!b.ok()) return c.FailStatus(b.status());
      aws::XmlWriter w;
      w.Declaration().Open("LocationConstraint", kXmlns);
      if (b->region != "us-east-1") w.Raw(aws::XmlEscape(b->region));
      return c.respond(XmlDone(call, w.Finish()));
    }
    if (m == "GET") {
      call.operation = c.q.Get("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
      if (c.Deny("s3:ListBucket", c.bucket_arn)) return;
      auto fail = [&c](const Error& e) { c.Fail(e); };
      return List(call, c.bucket, c.q, c.respond, fail);
    }
    return c.Fail(S3Error(405, "MethodNotAllowed",
                          "The specified method is not allowed against this resource."));
  }

  void HandleObject(Ctx& c) {
    const std::string& m = c.req.method;
    Call& call = c.call;
    bool upload = c.q.Has("uploadId");
    if (m == "PUT" && upload) {
      bool copy = c.req.Find("x-amz-copy-source") != nullptr;
      call.operation = copy ? "UploadPartCopy" : "UploadPart";
      if (c.Deny("s3:PutObject", c.object_arn)) return;
      return UploadPart(c, copy);
    }
    if (m == "POST" && c.q.Has("uploads")) {
      call.operation = "CreateMultipartUpload";
      if (c.Deny("s3:PutObject", c.object_arn)) return;
      ObjectInfo meta;
      if (!MetaFromHeaders(c, &meta) || !TagsFromHeader(c, &meta.tags)) return;
      std::string alg;
      if (const std::string* a = c.req.Find("x-amz-checksum-algorithm")) {
        alg = base::ToUpper(*a);
        if (!NewChecksum(alg))
          return c.Fail(S3Error(400, "InvalidRequest",
                                "Checksum algorithm provided is unsupported. Please try again "
                                "with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, "
                                "SHA256]"));
      }
      auto u = s_.CreateUpload(c.bucket, c.key, meta, alg, call.principal.arn);
      if (!u.ok()) return c.FailStatus(u.status());
      aws::XmlWriter w;
      w.Declaration().Open("InitiateMultipartUploadResult", kXmlns);
      w.Element("Bucket", c.bucket).Element("Key", c.key).Element("UploadId", u->upload_id);
      http::Response r = XmlDone(call, w.Finish());
      if (!alg.empty()) r.Set("x-amz-checksum-algorithm", alg);
      return c.respond(std::move(r));
    }
    if (m == "POST" && upload) {
      call.operation = "CompleteMultipartUpload";
      if (c.Deny("s3:PutObject", c.object_arn)) return;
      return CompleteUpload(c);
    }
    if (m == "DELETE" && upload) {
      call.operation = "AbortMultipartUpload";
      if (c.Deny("s3:AbortMultipartUpload", c.object_arn)) return;
      base::Status st = s_.AbortUpload(c.bucket, c.key, c.q.Get("uploadId"));
      if (!st.ok()) return c.FailStatus(st);
      http::Response r;
      r.status = 204;
      return c.respond(Done(call, std::move(r)));
    }
    if (m == "GET" && upload) {
      call.operation = "ListParts";
      if (c.Deny("s3:ListMultipartUploadParts", c.object_arn)) return;
      return ListParts(c);
    }
    if (c.q.Has("tagging")) return ObjectTagging(c);
    for (const char* sub : {"acl", "retention", "legal-hold", "torrent", "attributes",
                            "restore", "select"})
      if (c.q.Has(sub)) return c.Fail(NotImplemented(std::string("?") + sub));
    if (m == "PUT" && c.req.Find("x-amz-copy-source")) {
      call.operation = "CopyObject";
      return CopyObject(c);
    }
    if (m == "PUT") {
      call.operation = "PutObject";
      if (c.Deny("s3:PutObject", c.object_arn)) return;
      std::string data;
      std::map<std::string, std::string> sums;
      if (!DecodeBody(c, &data, &sums)) return;
      ObjectInfo meta;
      if (!MetaFromHeaders(c, &meta) || !TagsFromHeader(c, &meta.tags)) return;
      meta.checksums = sums;
      auto out = s_.PutObject(c.bucket, c.key, data, meta, c.who);
      if (!out.ok()) return c.FailStatus(out.status());
      http::Response r;
      r.Set("ETag", out->etag);
      SetVersionHeader(r, out->version_id);
      for (const auto& [alg, v] : sums) r.Set("x-amz-checksum-" + base::ToLower(alg), v);
      return c.respond(Done(call, std::move(r)));
    }
    if (m == "GET" || m == "HEAD") {
      call.operation = m == "GET" ? "GetObject" : "HeadObject";
      std::string vid = c.q.Get("versionId");
      if (c.Deny(vid.empty() ? "s3:GetObject" : "s3:GetObjectVersion", c.object_arn)) return;
      auto o = vid.empty() ? s_.HeadObject(c.bucket, c.key) : s_.HeadVersion(c.bucket, c.key, vid);
      if (!o.ok()) {
        Error e = FromStatus(o.status(), c.bucket, c.key);
        if (e.code == "NoSuchVersion") e.extra = {{"Key", c.key}, {"VersionId", vid}};
        return c.Fail(e);
      }
      if (o->delete_marker) {
        Error e = S3Error(405, "MethodNotAllowed",
                          "The specified method is not allowed against this resource.",
                          {{"Method", m}, {"ResourceType", "DeleteMarker"}});
        http::Response r = aws::RenderError(aws::Protocol::kRestXml, e, call.request_id, kXmlns);
        r.Set("x-amz-delete-marker", "true");
        r.Set("x-amz-version-id", o->version_id);
        if (m == "HEAD") r.body.clear();
        return c.respond(std::move(r));
      }
      auto fail = [&c](const Error& e) { c.Fail(e); };
      http::Response r = Get(call, c.req, c.q, o.value(), fail);
      if (r.status == -1) return;  // Get answered with an error already
      SetVersionHeader(r, o->version_id);
      return c.respond(std::move(r));
    }
    if (m == "DELETE") {
      call.operation = "DeleteObject";
      std::string vid = c.q.Get("versionId");
      if (c.Deny(vid.empty() ? "s3:DeleteObject" : "s3:DeleteObjectVersion", c.object_arn))
        return;
      auto out = s_.DeleteObject(c.bucket, c.key, c.who, vid);
      if (!out.ok()) return c.FailStatus(out.status());
      http::Response r;
      r.status = 204;
      if (out->delete_marker) r.Set("x-amz-delete-marker", "true");
      SetVersionHeader(r, out->version_id);
      return c.respond(Done(call, std::move(r)));
    }
    return c.Fail(S3Error(405, "MethodNotAllowed",
                          "The specified method is not allowed against this resource."));
  }

  // Tags from an x-amz-tagging header ("k=v&k2=v2"); false (answered) when invalid.
  bool TagsFromHeader(const Ctx& c, std::map<std::string, std::string>* tags) {
    const std::string* h = c.req.Find("x-amz-tagging");
    if (!h) return true;
    auto parsed = base::ParseQuery(*h);
    if (!parsed) {
      c.Fail(S3Error(400, "InvalidArgument", "The header 'x-amz-tagging' shall be encoded as "
                                             "UTF-8 then URLEncoded URL query parameters without "
                                             "tag name duplicates."));
      return false;
    }
    for (auto& [k, v] : *parsed) (*tags)[k] = v;
    return ValidTags(c, *tags);
  }
  bool ValidTags(const Ctx& c, const std::map<std::string, std::string>& tags) {
    if (tags.size() > 10) {
      c.Fail(S3Error(400, "BadRequest", "Object tags cannot be greater than 10"));
      return false;
    }
    for (const auto& [k, v] : tags)
      if (k.empty() || k.size() > 128 || v.size() > 256) {
        c.Fail(S3Error(400, "InvalidTag", "The TagKey you have provided is invalid"));
        return false;
      }
    return true;
  }

  void ObjectTagging(Ctx& c) {
    const std::string& m = c.req.method;
    if (m == "GET") {
      c.call.operation = "GetObjectTagging";
      if (c.Deny("s3:GetObjectTagging", c.object_arn)) return;
      auto o = s_.HeadObject(c.bucket, c.key);
      if (!o.ok()) return c.FailStatus(o.status());
      aws::XmlWriter w;
      w.Declaration().Open("Tagging", kXmlns).Open("TagSet");
      for (const auto& [k, v] : o->tags) w.Open("Tag").Element("Key", k).Element("Value", v).Close();
      return c.respond(XmlDone(c.call, w.Finish()));
    }
    std::map<std::string, std::string> tags;
    if (m == "PUT") {
      c.call.operation = "PutObjectTagging";
      if (c.Deny("s3:PutObjectTagging", c.object_arn)) return;
      std::string data;
      std::map<std::string, std::string> sums;
      if (!DecodeBody(c, &data, &sums)) return;
      auto doc = aws::ParseXml(data);
      const aws::XmlNode* set = doc.ok() ? doc->Child("TagSet") : nullptr;
      if (!doc.ok() || doc->name != "Tagging" || !set) return c.Fail(MalformedXml());
      for (const aws::XmlNode* t : set->Children("Tag")) {
        std::string k = t->ChildText("Key");
        if (tags.count(k))
          return c.Fail(S3Error(400, "InvalidTag", "Cannot provide multiple Tags with the same key",
                                {{"TagKey", k}}));
        tags[k] = t->ChildText("Value");
      }
      if (!ValidTags(c, tags)) return;
    } else if (m == "DELETE") {
      c.call.operation = "DeleteObjectTagging";
      if (c.Deny("s3:DeleteObjectTagging", c.object_arn)) return;
    } else {
      return c.Fail(S3Error(405, "MethodNotAllowed",
                            "The specified method is not allowed against this resource."));
    }
    base::Status st = s_.SetTags(c.bucket, c.key, std::move(tags));
    if (!st.ok()) return c.FailStatus(st);
    http::Response r;
    if (m == "DELETE") r.status = 204;
    return c.respond(Done(c.call, std::move(r)));
  }

  // Parsed bucket policies, by bucket, reused while the text is unchanged.
  std::shared_ptr<const auth::Policy> PolicyOf(const std::string& bucket,
                                               const std::string& text) {
    if (text.empty()) return nullptr;
    std::lock_guard lock(policy_mu_);
    auto it = policies_.find(bucket);
    if (it != policies_.end() && it->second.first == text) return it->second.second;
    auto parsed = auth::ParsePolicy(text, auth::PolicyKind::kResource);
    if (!parsed.ok()) return nullptr;
    auto p = std::make_shared<const auth::Policy>(std::move(parsed).value());
    if (policies_.size() > 4096) policies_.clear();
    policies_[bucket] = {text, p};
    return p;
  }

  // s3:GetObject on a copy source, under its own bucket's policy.
  bool DenySource(const Ctx& c, const std::string& bucket, const std::string& key) {
    std::shared_ptr<const auth::Policy> policy;
    if (auto b = s_.HeadBucket(bucket); b.ok()) policy = PolicyOf(bucket, b->policy);
    if (auto d = c.call.AuthorizeWith(policy.get(), "s3:GetObject",
                                      "arn:aws:s3:::" + bucket + "/" + key, {})) {
      c.Fail(*d);
      return true;
    }
    return false;
  }

  void BucketPolicy(Ctx& c) {
    const std::string& m = c.req.method;
    if (m == "GET") {
      c.call.operation = "GetBucketPolicy";
      if (c.Deny("s3:GetBucketPolicy", c.bucket_arn)) return;
      auto b = s_.HeadBucket(c.bucket);
      if (!b.ok()) return c.FailStatus(b.status());
      if (b->policy.empty())
        return c.Fail(S3Error(404, "NoSuchBucketPolicy", "The bucket policy does not exist",
                              {{"BucketName", c.bucket}}));
      http::Response r;
      r.Set("Content-Type", "application/json");
      r.body = b->policy;
      return c.respond(Done(c.call, std::move(r)));
    }
    if (m == "DELETE") {
      c.call.operation = "DeleteBucketPolicy";
      if (c.Deny("s3:DeleteBucketPolicy", c.bucket_arn)) return;
      base::Status st = s_.SetBucketPolicy(c.bucket, "");
      if (!st.ok()) return c.FailStatus(st);
      http::Response r;
      r.status = 204;
      return c.respond(Done(c.call, std::move(r)));
    }
    if (m != "PUT")
      return c.Fail(S3Error(405, "MethodNotAllowed",
                            "The specified method is not allowed against this resource."));
    c.call.operation = "PutBucketPolicy";
    if (c.Deny("s3:PutBucketPolicy", c.bucket_arn)) return;
    std::string text;
    std::map<std::string, std::string> sums;
    if (!DecodeBody(c, &text, &sums)) return;
    auto malformed = [&c](const std::string& why) {
      c.Fail(S3Error(400, "MalformedPolicy", why));
    };
    if (text.size() > 20 * 1024) return malformed("Policies must be less than 20 KB");
    std::string_view trimmed = base::Trim(text);
    if (trimmed.empty() || trimmed.front() != '{')
      return malformed("Policies must be valid JSON and the first byte must be '{'");
    auto parsed = auth::ParsePolicy(text, auth::PolicyKind::kResource);
    if (!parsed.ok()) return malformed(parsed.status().message());
    for (const auto& st : parsed->statements) {
      for (const auto& a : st.actions) {
        std::string la = base::ToLower(a);
        if (la != "*" && la.rfind("s3:", 0) != 0) return malformed("Policy has invalid action");
      }
      for (const auto& r : st.resources) {
        const std::string& t = r.text;
        if (t != c.bucket_arn && t.rfind(c.bucket_arn + "/", 0) != 0)
          return malformed("Policy has invalid resource");
      }
    }
    base::Status st = s_.SetBucketPolicy(c.bucket, text);
    if (!st.ok()) return c.FailStatus(st);
    http::Response r;
    r.status = 204;
    return c.respond(Done(c.call, std::move(r)));
  }

  static void SetVersionHeader(http::Response& r, const std::string& vid) {
    if (!vid.empty()) r.Set("x-amz-version-id", vid);
  }

  void ListVersions(Ctx& c) {
    ListVersionsRequest lr;
    lr.prefix = c.q.Get("prefix");
    lr.key_marker = c.q.Get("key-marker");
    lr.version_id_marker = c.q.Get("version-id-marker");
    std::string mx = c.q.Get("max-keys", "1000");
    if (mx.empty() || mx.size() > 6 || mx.find_first_not_of("0123456789") != std::string::npos)
      return c.Fail(S3Error(400, "InvalidArgument",
                            "Provided max-keys not an integer or within integer range"));
    lr.max_keys = std::clamp(std::stoi(mx), 0, 1000);
    auto out = s_.ListVersions(c.bucket, lr);
    if (!out.ok()) return c.FailStatus(out.status());
    aws::XmlWriter w;
    w.Declaration().Open("ListVersionsResult", kXmlns);
    w.Element("Name", c.bucket)
        .Element("Prefix", lr.prefix)
        .Element("KeyMarker", lr.key_marker)
        .Element("VersionIdMarker", lr.version_id_marker);
    if (out->truncated)
      w.Element("NextKeyMarker", out->next_key_marker)
          .Element("NextVersionIdMarker", out->next_version_id_marker);
    w.Element("MaxKeys", std::to_string(lr.max_keys))
        .Element("IsTruncated", out->truncated ? "true" : "false");
    for (const auto& v : out->versions) {
      w.Open(v.delete_marker ? "DeleteMarker" : "Version")
          .Element("Key", v.key)
          .Element("VersionId", v.version_id.empty() ? "null" : v.version_id)
          .Element("IsLatest", v.is_latest ? "true" : "false")
          .Element("LastModified", Iso(v.last_modified_ms));
      if (!v.delete_marker)
        w.Element("ETag", v.etag).Element("Size", std::to_string(v.size)).Element(
            "StorageClass", "STANDARD");
      w.Open("Owner").Element("ID", c.call.account_id).Element("DisplayName", "stratus").Close();
      w.Close();
    }
    return c.respond(XmlDone(c.call, w.Finish()));
  }

  static Error MalformedXml() {
    return S3Error(400, "MalformedXML",
                   "The XML you provided was not well-formed or did not validate against our "
                   "published schema");
  }

  // Content-Type, Cache-Control & co. and x-amz-meta-* from the request.
  bool MetaFromHeaders(const Ctx& c, ObjectInfo* meta) {
    size_t meta_bytes = 0;
    for (const auto& h : c.req.headers) {
      std::string n = base::ToLower(h.name);
      if (n.rfind("x-amz-meta-", 0) == 0) {
        meta->metadata[n.substr(11)] = h.value;
        meta_bytes += n.size() - 11 + h.value.size();
      }
      if (n == "content-type") meta->content_type = h.value;
      if (n == "cache-control" || n == "content-disposition" || n == "content-language" ||
          n == "expires")
        meta->headers[h.name] = h.value;
      if (n == "content-encoding") {
        // aws-chunked is the transfer framing, not the object's encoding.
        std::string rest;
        for (auto part : base::Split(h.value, ',')) {
          std::string p(base::Trim(part));
          if (p.empty() || p == "aws-chunked") continue;
          rest += (rest.empty() ? "" : ",") + p;
        }
        if (!rest.empty()) meta->headers[h.name] = rest;
      }
    }
    if (meta_bytes > 2048) {
      c.Fail(S3Error(400, "MetadataTooLarge",
                     "Your metadata headers exceed the maximum allowed metadata size",
                     {{"Size", std::to_string(meta_bytes)}, {"MaxSizeAllowed", "2048"}}));
      return false;
    }
    if (meta->content_type.empty()) meta->content_type = "binary/octet-stream";
    return true;
  }

  // The request's payload: aws-chunked framing removed (signatures checked), Content-MD5
  // and x-amz-checksum-* (headers or trailers) verified. Answers the error itself and
  // returns false on failure.
  bool DecodeBody(const Ctx& c, std::string* data, std::map<std::string, std::string>* sums) {
    const std::string* sha = c.req.Find("x-amz-content-sha256");
    std::vector<std::pair<std::string, std::string>> trailers;
    if (sha && sha->rfind("STREAMING-", 0) == 0) {
      const aws::Call::ChunkSigning* signing =
          c.call.chunk_signing ? &*c.call.chunk_signing : nullptr;
      if (!signing && sha->find("HMAC") != std::string::npos && !c.call.access_key_id.empty()) {
        c.Fail(S3Error(403, "SignatureDoesNotMatch",
                       "The request signature we calculated does not match the signature you "
                       "provided. Check your key and signing method."));
        return false;
      }
      auto decoded = DecodeAwsChunked(c.req.body, *sha, signing);
      if (!decoded.ok()) {
        c.FailStatus(decoded.status());
        return false;
      }
      if (const std::string* dl = c.req.Find("x-amz-decoded-content-length")) {
        if (*dl != std::to_string(decoded->data.size())) {
          c.Fail(S3Error(400, "IncompleteBody",
                         "You did not provide the number of bytes specified by the "
                         "Content-Length HTTP header"));
          return false;
        }
      }
      *data = std::move(decoded->data);
      trailers = std::move(decoded->trailers);
    } else {
      *data = std::move(c.req.body);
    }
    if (const std::string* md5 = c.req.Find("Content-MD5")) {
      auto raw = base::Base64Decode(*md5);
      if (!raw || raw->size() != 16) {
        c.Fail(S3Error(400, "InvalidDigest", "The Content-MD5 you specified was invalid."));
        return false;
      }
      if (base::HexEncode(*raw) != Md5Hex(*data)) {
        c.Fail(S3Error(400, "BadDigest",
                       "The Content-MD5 you specified did not match what we received."));
        return false;
      }
    }
    std::vector<std::pair<std::string, std::string>> claimed;
    for (const auto& h : c.req.headers) {
      std::string alg = ChecksumAlgorithmOfHeader(h.name);
      if (!alg.empty()) claimed.emplace_back(alg, h.value);
    }
    for (const auto& [n, v] : trailers) {
      std::string alg = ChecksumAlgorithmOfHeader(n);
      if (!alg.empty()) claimed.emplace_back(alg, v);
    }
    if (claimed.size() > 1) {
      c.Fail(S3Error(400, "InvalidRequest", "Expecting a single x-amz-checksum- header"));
      return false;
    }
    for (const auto& [alg, v] : claimed) {
      std::string actual = ChecksumBase64(alg, *data);
      if (actual != v) {
        auto raw = base::Base64Decode(v);
        size_t want_len = base::Base64Decode(actual).value_or("").size();
        if (!raw || raw->size() != want_len) {
          c.Fail(S3Error(400, "InvalidRequest",
                         "Value for x-amz-checksum-" + base::ToLower(alg) +
                             " header is invalid."));
        } else {
          c.Fail(S3Error(400, "BadDigest",
                         "The " + alg + " you specified did not match the calculated checksum."));
        }
        return false;
      }
      (*sums)[alg] = v;
    }
    return true;
  }

  // x-amz-copy-source: "bucket/key" or "/bucket/key", URL-encoded, maybe "?versionId=".
  static bool ParseCopySource(const std::string& raw, std::string* bucket, std::string* key,
                              std::string* version = nullptr) {
    std::string s = raw;
    size_t qm = s.find('?');
    if (qm != std::string::npos) {
      if (version && s.compare(qm + 1, 10, "versionId=") == 0) *version = s.substr(qm + 11);
      s = s.substr(0, qm);
    }
    s = base::UriDecode(s).value_or(s);
    if (!s.empty() && s[0] == '/') s = s.substr(1);
    size_t slash = s.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == s.size()) return false;
    *bucket = s.substr(0, slash);
    *key = s.substr(slash + 1);
    return true;
  }

  // x-amz-copy-source-if-* against the source object.
  static std::optional<Error> CopyPreconditions(const http::Request& req, const ObjectInfo& src) {
    auto failed = [] {
      return S3Error(412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold",
                     {{"Condition", "x-amz-copy-source-If-Match"}});
    };
    if (const std::string* im = req.Find("x-amz-copy-source-if-match"))
      if (*im != src.etag && "\"" + *im + "\"" != src.etag) return failed();
    if (const std::string* inm = req.Find("x-amz-copy-source-if-none-match"))
      if (*inm == src.etag || "\"" + *inm + "\"" == src.etag) return failed();
    return std::nullopt;
  }

  void CopyObject(Ctx& c) {
    std::string sb, sk, sv;
    if (!ParseCopySource(*c.req.Find("x-amz-copy-source"), &sb, &sk, &sv))
      return c.Fail(S3Error(400, "InvalidArgument", "Invalid copy source object key",
                            {{"ArgumentName", "x-amz-copy-source"}}));
    if (DenySource(c, sb, sk)) return;
    if (c.Deny("s3:PutObject", c.object_arn)) return;
    auto src = sv.empty() ? s_.HeadObject(sb, sk) : s_.HeadVersion(sb, sk, sv);
    if (!src.ok()) {
      Error e = FromStatus(src.status(), sb, sk);
      return c.Fail(e);
    }
    if (auto e = CopyPreconditions(c.req, *src)) return c.Fail(*e);
    std::string directive = "COPY";
    if (const std::string* d = c.req.Find("x-amz-metadata-directive")) directive = *d;
    if (directive != "COPY" && directive != "REPLACE")
      return c.Fail(S3Error(400, "InvalidArgument", "Unknown metadata directive.",
                            {{"ArgumentName", "x-amz-metadata-directive"},
                             {"ArgumentValue", directive}}));
    std::optional<ObjectInfo> meta;
    if (directive == "REPLACE") {
      meta.emplace();
      if (!MetaFromHeaders(c, &*meta)) return;
    } else if (sb == c.bucket && sk == c.key) {
      return c.Fail(S3Error(400, "InvalidRequest",
                            "This copy request is illegal because it is trying to copy an object "
                            "to itself without changing the object's metadata, storage class, "
                            "website redirect location or encryption attributes."));
    }
    std::optional<std::map<std::string, std::string>> tags;
    if (const std::string* td = c.req.Find("x-amz-tagging-directive")) {
      if (*td != "COPY" && *td != "REPLACE")
        return c.Fail(S3Error(400, "InvalidArgument", "Unknown tagging directive.",
                              {{"ArgumentName", "x-amz-tagging-directive"},
                               {"ArgumentValue", *td}}));
      if (*td == "REPLACE") {
        tags.emplace();
        if (!TagsFromHeader(c, &*tags)) return;
      }
    }
    if (src->delete_marker)
      return c.Fail(S3Error(400, "InvalidRequest",
                            "The source of a copy request may not specifically refer to a delete "
                            "marker by version id."));
    auto out = s_.CopyObject(sb, sk, c.bucket, c.key, meta, c.who, tags, sv);
    if (!out.ok()) return c.FailStatus(out.status());
    aws::XmlWriter w;
    w.Declaration().Open("CopyObjectResult", kXmlns);
    w.Element("LastModified", Iso(out->last_modified_ms)).Element("ETag", out->etag);
    for (const auto& [alg, v] : out->checksums) w.Element("Checksum" + alg, v);
    http::Response r = XmlDone(c.call, w.Finish());
    SetVersionHeader(r, out->version_id);
    if (!src->version_id.empty() && src->version_id != "null")
      r.Set("x-amz-copy-source-version-id", src->version_id);
    return c.respond(std::move(r));
  }

  void UploadPart(Ctx& c, bool copy) {
    std::string pn = c.q.Get("partNumber");
    if (pn.empty() || pn.size() > 5 || pn.find_first_not_of("0123456789") != std::string::npos)
      return c.Fail(S3Error(400, "InvalidArgument",
                            "Part number must be an integer between 1 and 10000, inclusive",
                            {{"ArgumentName", "partNumber"}, {"ArgumentValue", pn}}));
    int number = std::stoi(pn);
    std::string data;
    std::map<std::string, std::string> sums;
    ObjectInfo src;
    if (copy) {
      std::string sb, sk;
      if (!ParseCopySource(*c.req.Find("x-amz-copy-source"), &sb, &sk))
        return c.Fail(S3Error(400, "InvalidArgument", "Invalid copy source object key",
                              {{"ArgumentName", "x-amz-copy-source"}}));
      if (DenySource(c, sb, sk)) return;
      auto so = s_.HeadObject(sb, sk);
      if (!so.ok()) return c.Fail(FromStatus(so.status(), sb, sk));
      src = *so;
      if (auto e = CopyPreconditions(c.req, src)) return c.Fail(*e);
      uint64_t first = 0, length = src.size;
      if (const std::string* range = c.req.Find("x-amz-copy-source-range")) {
        bool ok = true;
        auto rg = ParseRange(*range, src.size, &ok);
        if (!ok || !rg)
          return c.Fail(S3Error(400, "InvalidArgument",
                                "The x-amz-copy-source-range value must be of the form "
                                "bytes=first-last where first and last are the zero-based "
                                "offsets of the first and last bytes to copy",
                                {{"ArgumentName", "x-amz-copy-source-range"},
                                 {"ArgumentValue", *range}}));
        first = rg->first;
        length = rg->second - rg->first + 1;
      }
      auto bytes = s_.ReadRange(src, first, length);
      if (!bytes.ok()) return c.FailStatus(bytes.status());
      data = std::move(bytes).value();
    } else if (!DecodeBody(c, &data, &sums)) {
      return;
    }
    auto p = s_.UploadPart(c.bucket, c.key, c.q.Get("uploadId"), number, data, sums);
    if (!p.ok()) return c.FailStatus(p.status());
    if (copy) {
      aws::XmlWriter w;
      w.Declaration().Open("CopyPartResult", kXmlns);
      w.Element("LastModified", Iso(p->last_modified_ms)).Element("ETag", p->etag);
      return c.respond(XmlDone(c.call, w.Finish()));
    }
    http::Response r;
    r.Set("ETag", p->etag);
    for (const auto& [alg, v] : sums) r.Set("x-amz-checksum-" + base::ToLower(alg), v);
    return c.respond(Done(c.call, std::move(r)));
  }

  void CompleteUpload(Ctx& c) {
    auto doc = aws::ParseXml(c.req.body);
    if (!doc.ok() || doc->name != "CompleteMultipartUpload") return c.Fail(MalformedXml());
    std::vector<std::pair<int, std::string>> parts;
    for (const aws::XmlNode* p : doc->Children("Part")) {
      std::string n = p->ChildText("PartNumber");
      if (n.empty() || n.size() > 5 || n.find_first_not_of("0123456789") != std::string::npos)
        return c.Fail(MalformedXml());
      parts.emplace_back(std::stoi(n), p->ChildText("ETag"));
    }
    if (parts.empty() || parts.size() > 10000) return c.Fail(MalformedXml());
    auto out = s_.CompleteUpload(c.bucket, c.key, c.q.Get("uploadId"), parts, c.who);
    if (!out.ok()) return c.FailStatus(out.status());
    aws::XmlWriter w;
    w.Declaration().Open("CompleteMultipartUploadResult", kXmlns);
    w.Element("Location", "/" + c.bucket + "/" + c.key)
        .Element("Bucket", c.bucket)
        .Element("Key", c.key)
        .Element("ETag", out->etag);
    http::Response r = XmlDone(c.call, w.Finish());
    SetVersionHeader(r, out->version_id);
    return c.respond(std::move(r));
  }

  void ListParts(Ctx& c) {
    int marker = 0, max = 1000;
    std::string ms = c.q.Get("part-number-marker"), mx = c.q.Get("max-parts", "1000");
    auto number = [](const std::string& s, int* out) {
      if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos)
        return false;
      *out = std::stoi(s);
      return true;
    };
    if ((!ms.empty() && !number(ms, &marker)) || !number(mx, &max))
      return c.Fail(S3Error(400, "InvalidArgument", "Provided max-parts not an integer or within "
                                                    "integer range"));
    max = std::clamp(max, 0, 1000);
    auto out = s_.ListParts(c.bucket, c.key, c.q.Get("uploadId"), marker, max);
    if (!out.ok()) return c.FailStatus(out.status());
    aws::XmlWriter w;
    w.Declaration().Open("ListPartsResult", kXmlns);
    w.Element("Bucket", c.bucket).Element("Key", c.key).Element("UploadId", c.q.Get("uploadId"));
    w.Open("Initiator").Element("ID", out->upload.initiator).Element("DisplayName", "stratus").Close();
    w.Open("Owner").Element("ID", c.call.account_id).Element("DisplayName", "stratus").Close();
    w.Element("StorageClass", "STANDARD")
        .Element("PartNumberMarker", std::to_string(marker))
        .Element("NextPartNumberMarker", std::to_string(out->next_marker))
        .Element("MaxParts", std::to_string(max))
        .Element("IsTruncated", out->truncated ? "true" : "false");
    if (!out->upload.checksum_algorithm.empty())
      w.Element("ChecksumAlgorithm", out->upload.checksum_algorithm);
    for (const auto& p : out->parts) {
      w.Open("Part")
          .Element("PartNumber", std::to_string(p.number))
          .Element("LastModified", Iso(p.last_modified_ms))
          .Element("ETag", p.etag)
          .Element("Size", std::to_string(p.size));
      for (const auto& [alg, v] : p.checksums) w.Element("Checksum" + alg, v);
      w.Close();
    }
    return c.respond(XmlDone(c.call, w.Finish()));
  }

  void ListUploads(Ctx& c) {
    ListUploadsRequest lr;
    lr.prefix = c.q.Get("prefix");
    lr.key_marker = c.q.Get("key-marker");
    lr.upload_id_marker = c.q.Get("upload-id-marker");
    std::string mx = c.q.Get("max-uploads", "1000");
    if (mx.empty() || mx.size() > 6 || mx.find_first_not_of("0123456789") != std::string::npos)
      return c.Fail(S3Error(400, "InvalidArgument", "Provided max-uploads not an integer or "
                                                    "within integer range"));
    lr.max_uploads = std::clamp(std::stoi(mx), 0, 1000);
    auto out = s_.ListUploads(c.bucket, lr);
    if (!out.ok()) return c.FailStatus(out.status());
    aws::XmlWriter w;
    w.Declaration().Open("ListMultipartUploadsResult", kXmlns);
    w.Element("Bucket", c.bucket)
        .Element("KeyMarker", lr.key_marker)
        .Element("UploadIdMarker", lr.upload_id_marker);
    if (out->truncated && !out->uploads.empty())
      w.Element("NextKeyMarker", out->uploads.back().key)
          .Element("NextUploadIdMarker", out->uploads.back().upload_id);
    w.Element("Prefix", lr.prefix)
        .Element("MaxUploads", std::to_string(lr.max_uploads))
        .Element("IsTruncated", out->truncated ? "true" : "false");
    for (const auto& u : out->uploads) {
      w.Open("Upload").Element("Key", u.key).Element("UploadId", u.upload_id);
      w.Open("Initiator").Element("ID", u.initiator).Element("DisplayName", "stratus").Close();
      w.Open("Owner").Element("ID", c.call.account_id).Element("DisplayName", "stratus").Close();
      w.Element("StorageClass", "STANDARD").Element("Initiated", Iso(u.initiated_ms));
      if (!u.checksum_algorithm.empty()) w.Element("ChecksumAlgorithm", u.checksum_algorithm);
      w.Close();
    }
    return c.respond(XmlDone(c.call, w.Finish()));
  }

  void DeleteObjects(Ctx& c) {
    std::string data;
    std::map<std::string, std::string> sums;
    if (!DecodeBody(c, &data, &sums)) return;
    bool has_md5 = c.req.Find("Content-MD5") != nullptr;
    if (!has_md5 && sums.empty())
      return c.Fail(S3Error(400, "InvalidRequest",
                            "Missing required header for this request: Content-MD5"));
    auto doc = aws::ParseXml(data);
    if (!doc.ok() || doc->name != "Delete") return c.Fail(MalformedXml());
    auto objects = doc->Children("Object");
    if (objects.empty() || objects.size() > 1000) return c.Fail(MalformedXml());
    bool quiet = doc->ChildText("Quiet") == "true";
    aws::XmlWriter w;
    w.Declaration().Open("DeleteResult", kXmlns);
    for (const aws::XmlNode* o : objects) {
      std::string key = o->ChildText("Key");
      std::string arn = c.bucket_arn + "/" + key;
      if (auto d = c.call.AuthorizeWith(c.policy.get(), "s3:DeleteObject", arn, {})) {
        w.Open("Error").Element("Key", key).Element("Code", "AccessDenied").Element(
            "Message", "Access Denied");
        w.Close();
        continue;
      }
      std::string vid = o->ChildText("VersionId");
      base::Result<DeleteOutcome> out =
          key.empty() ? base::Result<DeleteOutcome>(base::InvalidArgument(
                            "UserKeyMustBeSpecified: The request was missing a required header"))
                      : s_.DeleteObject(c.bucket, key, c.who, vid);
      if (!out.ok()) {
        Error e = FromStatus(out.status(), c.bucket, key);
        if (e.code == "NoSuchBucket") return c.Fail(e);
        w.Open("Error").Element("Key", key);
        if (!vid.empty()) w.Element("VersionId", vid);
        w.Element("Code", e.code).Element("Message", e.message);
        w.Close();
        continue;
      }
      if (!quiet) {
        w.Open("Deleted").Element("Key", key);
        if (!vid.empty()) w.Element("VersionId", vid);
        if (out->delete_marker) {
          w.Element("DeleteMarker", "true");
          if (vid.empty()) w.Element("DeleteMarkerVersionId", out->version_id);
        }
        w.Close();
      }
    }
    return c.respond(XmlDone(c.call, w.Finish()));
  }

  void PutNotification(Ctx& c) {
    std::string data;
    std::map<std::string, std::string> sums;
    if (!DecodeBody(c, &data, &sums)) return;
    auto doc = aws::ParseXml(data);
    if (!doc.ok() || doc->name != "NotificationConfiguration") return c.Fail(MalformedXml());
    std::vector<NotificationRule> rules;
    for (const auto& child : doc->children) {
      NotificationRule r;
      if (child.name == "CloudFunctionConfiguration" ||
          child.name == "LambdaFunctionConfiguration") {
        r.kind = "Lambda";
        r.arn = child.ChildText("CloudFunction");
      } else if (child.name == "QueueConfiguration") {
        r.kind = "Queue";
        r.arn = child.ChildText("Queue");
      } else if (child.name == "TopicConfiguration" ||
                 child.name == "EventBridgeConfiguration") {
        return c.Fail(NotImplemented(child.name));
      } else {
        return c.Fail(MalformedXml());
      }
      r.id = child.ChildText("Id");
      for (const aws::XmlNode* e : child.Children("Event")) {
        static const std::set<std::string> kEvents = {
            "s3:ObjectCreated:*",     "s3:ObjectCreated:Put",
            "s3:ObjectCreated:Post",  "s3:ObjectCreated:Copy",
            "s3:ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectRemoved:*",     "s3:ObjectRemoved:Delete",
            "s3:ObjectRemoved:DeleteMarkerCreated"};
        if (!kEvents.count(e->text))
          return c.Fail(S3Error(400, "InvalidArgument",
                                "The event is not supported for notifications",
                                {{"ArgumentName", "Event"}, {"ArgumentValue", e->text}}));
        r.events.push_back(e->text);
      }
      if (r.events.empty() || r.arn.empty()) return c.Fail(MalformedXml());
      if (const aws::XmlNode* f = child.Child("Filter")) {
        const aws::XmlNode* k = f->Child("S3Key");
        for (const aws::XmlNode* fr : k ? k->Children("FilterRule") : std::vector<const aws::XmlNode*>{}) {
          std::string name = base::ToLower(fr->ChildText("Name"));
          std::string value = fr->ChildText("Value");
          std::string* slot = name == "prefix" ? &r.prefix : name == "suffix" ? &r.suffix : nullptr;
          if (!slot || !slot->empty())
            return c.Fail(S3Error(400, "InvalidArgument",
                                  name == "prefix" || name == "suffix"
                                      ? "Cannot specify more than one " + name +
                                            " rule in a filter."
                                      : "filter rule name must be either prefix or suffix",
                                  {{"ArgumentName", "FilterRule.Name"},
                                   {"ArgumentValue", fr->ChildText("Name")}}));
          *slot = value;
        }
      }
      rules.push_back(std::move(r));
    }
    base::Status st = s_.PutNotifications(c.bucket, rules, c.who);
    if (!st.ok()) {
      Error e = FromStatus(st, c.bucket, c.key);
      if (e.code == "InvalidArgument") e.status = 400;
      return c.Fail(e);
    }
    http::Response r;
    return c.respond(Done(c.call, std::move(r)));
  }

  void GetNotification(Ctx& c) {
    auto rules = s_.GetNotifications(c.bucket);
    if (!rules.ok()) return c.FailStatus(rules.status());
    aws::XmlWriter w;
    w.Declaration().Open("NotificationConfiguration", kXmlns);
    for (const auto& r : *rules) {
      bool lambda = r.kind == "Lambda";
      w.Open(lambda ? "CloudFunctionConfiguration" : "QueueConfiguration");
      w.Element("Id", r.id);
      if (!r.prefix.empty() || !r.suffix.empty()) {
        w.Open("Filter").Open("S3Key");
        if (!r.prefix.empty())
          w.Open("FilterRule").Element("Name", "Prefix").Element("Value", r.prefix).Close();
        if (!r.suffix.empty())
          w.Open("FilterRule").Element("Name", "Suffix").Element("Value", r.suffix).Close();
        w.Close().Close();
      }
      w.Element(lambda ? "CloudFunction" : "Queue", r.arn);
      for (const auto& e : r.events) w.Element("Event", e);
      w.Close();
    }
    return c.respond(XmlDone(c.call, w.Finish()));
  }

  static http::Response Done(const Call& call, http::Response r) {
    aws::AddRequestIdHeaders(r, aws::Protocol::kRestXml, call.request_id);
    return r;
  }
  static http::Response XmlDone(const Call& call, std::string xml) {
    http::Response r;
    r.Set("Content-Type", "application/xml");
    r.body = std::move(xml);
    return Done(call, std::move(r));
  }

  http::Response ListBuckets(const Call& call) {
    auto list = s_.ListBuckets();
    aws::XmlWriter w;
    w.Declaration().Open("ListAllMyBucketsResult", kXmlns);
    w.Open("Owner").Element("ID", call.account_id).Element("DisplayName", "stratus").Close();
    w.Open("Buckets");
    if (list.ok())
      for (const auto& b : list.value())
        w.Open("Bucket").Element("Name", b.name).Element("CreationDate", Iso(b.created_ms)).Close();
    w.Close();
    return XmlDone(call, w.Finish());
  }

  template <typename Fail>
  void List(const Call& call, const std::string& bucket, const Query& q,
            const http::Responder& respond, Fail fail) {
    bool v2 = q.Get("list-type") == "2";
    ListRequest lr;
    lr.prefix = q.Get("prefix");
    lr.delimiter = q.Get("delimiter");
    std::string max = q.Get("max-keys", "1000");
    if (max.empty() || max.size() > 9 || max.find_first_not_of("0123456789") != std::string::npos)
      return fail(S3Error(400, "InvalidArgument",
                          "Provided max-keys not an integer or within "
                          "integer range"));
    lr.max_keys = std::min(1000, std::stoi(max));
    bool url = q.Get("encoding-type") == "url";
    std::string token = q.Get("continuation-token");
    if (v2) {
      if (!token.empty()) {
        auto raw = base::Base64Decode(token);
        if (!raw)
          return fail(S3Error(400, "InvalidArgument",
                              "The continuation token provided is "
                              "incorrect"));
        lr.start_after = *raw;
      } else {
        lr.start_after = q.Get("start-after");
      }
    } else {
      lr.start_after = q.Get("marker");
    }
    auto out = s_.List(bucket, lr);
    if (!out.ok()) return fail(FromStatus(out.status(), bucket, ""));
    auto enc = [url](const std::string& s) { return url ? base::UriEncode(s, false) : s; };
    aws::XmlWriter w;
    w.Declaration().Open("ListBucketResult", kXmlns);
    w.Element("Name", bucket).Element("Prefix", enc(lr.prefix));
    if (v2) {
      if (!token.empty()) w.Element("ContinuationToken", token);
      if (q.Has("start-after")) w.Element("StartAfter", enc(q.Get("start-after")));
      w.Element("KeyCount", std::to_string(out->objects.size() + out->common_prefixes.size()));
    } else {
      w.Element("Marker", enc(lr.start_after));
      if (out->truncated && !lr.delimiter.empty()) w.Element("NextMarker", enc(out->next_marker));
    }
    w.Element("MaxKeys", std::to_string(lr.max_keys));
    if (!lr.delimiter.empty()) w.Element("Delimiter", enc(lr.delimiter));
    if (url) w.Element("EncodingType", "url");
    w.Element("IsTruncated", out->truncated ? "true" : "false");
    if (v2 && out->truncated)
      w.Element("NextContinuationToken", base::Base64Encode(out->next_marker));
    for (const auto& o : out->objects) {
      w.Open("Contents")
          .Element("Key", enc(o.key))
          .Element("LastModified", Iso(o.last_modified_ms))
          .Element("ETag", o.etag)
          .Element("Size", std::to_string(o.size))
          .Element("StorageClass", "STANDARD");
      if (!v2) w.Open("Owner").Element("ID", call.account_id).Close();
      w.Close();
    }
    for (const auto& p : out->common_prefixes)
      w.Open("CommonPrefixes").Element("Prefix", enc(p)).Close();
    respond(XmlDone(call, w.Finish()));
  }

  template <typename Fail>
  http::Response Get(const Call& call, const http::Request& req, const Query& q,
                     const ObjectInfo& o, Fail fail) {
    http::Response r;
    r.Set("ETag", o.etag);
    r.Set("Last-Modified",
          base::FormatHttpDate(base::SystemTime(std::chrono::milliseconds(o.last_modified_ms))));
    r.Set("Content-Type", o.content_type);
    r.Set("Accept-Ranges", "bytes");
    for (const auto& [k, v] : o.headers) r.Set(k, v);
    for (const auto& [k, v] : o.metadata) r.Set("x-amz-meta-" + k, v);
    if (!o.tags.empty()) r.Set("x-amz-tagging-count", std::to_string(o.tags.size()));
    const std::string* mode = req.Find("x-amz-checksum-mode");
    if (mode && base::ToUpper(*mode) == "ENABLED" && !req.Find("Range"))
      for (const auto& [alg, v] : o.checksums) r.Set("x-amz-checksum-" + base::ToLower(alg), v);
    for (const char* o_ : {"content-type", "content-disposition", "cache-control",
                           "content-encoding", "content-language", "expires"}) {
      std::string v = q.Get(std::string("response-") + o_);
      if (!v.empty()) r.Set(o_, v);
    }
    if (const std::string* inm = req.Find("If-None-Match")) {
      if (*inm == o.etag || *inm == "*") {
        http::Response nm;
        nm.status = 304;
        nm.Set("ETag", o.etag);
        return Done(call, std::move(nm));
      }
    }
    if (const std::string* im = req.Find("If-Match")) {
      if (*im != o.etag && *im != "*") {
        fail(S3Error(412, "PreconditionFailed",
                     "At least one of the pre-conditions you specified did not hold",
                     {{"Condition", "If-Match"}}));
        return http::Response{.status = -1};
      }
    }
    uint64_t first = 0, length = o.size;
    if (const std::string* range = req.Find("Range")) {
      bool ok = true;
      auto rg = ParseRange(*range, o.size, &ok);
      if (!ok) {
        fail(S3Error(416, "InvalidRange", "The requested range is not satisfiable",
                     {{"RangeRequested", *range}, {"ActualObjectSize", std::to_string(o.size)}}));
        return http::Response{.status = -1};
      }
      if (rg) {
        first = rg->first;
        length = rg->second - rg->first + 1;
        r.status = 206;
        r.Set("Content-Range", "bytes " + std::to_string(rg->first) + "-" +
                                   std::to_string(rg->second) + "/" + std::to_string(o.size));
      }
    }
    if (req.method == "HEAD") {
      r.head_content_length = static_cast<int64_t>(length);
      return Done(call, std::move(r));
    }
    int fd = ::open(s_.PathOf(o).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      fail(S3Error(500, "InternalError", "We encountered an internal error. Please try again."));
      return http::Response{.status = -1};
    }
    r.body_file = std::make_shared<base::UniqueFd>(fd);
    r.body_file_offset = first;
    r.body_file_length = length;
    return Done(call, std::move(r));
  }

  ObjectStore& s_;
  std::mutex policy_mu_;
  std::map<std::string, std::pair<std::string, std::shared_ptr<const auth::Policy>>> policies_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeS3Service(ObjectStore& store) {
  return std::make_unique<S3Service>(store);
}

}  // namespace s3
