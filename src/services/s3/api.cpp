#include "services/s3/api.h"

#include <fcntl.h>

#include <algorithm>
#include <memory>

#include "aws/protocol.h"
#include "aws/xml.h"
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
  } else if (code == "BucketAlreadyOwnedByYou" || code == "BucketNotEmpty") {
    status = 409;
    extra = {{"BucketName", bucket}};
  } else if (code == "InvalidBucketName" || code == "KeyTooLongError") {
    status = 400;
    extra = {{"BucketName", bucket}};
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
    std::string bucket, key;
    Address(req, &bucket, &key);
    Query q;
    if (auto parsed = base::ParseQuery(req.query)) q.items = std::move(*parsed);
    auto fail = [&](const Error& e) {
      http::Response r = aws::RenderError(aws::Protocol::kRestXml, e, call.request_id, kXmlns);
      if (req.method == "HEAD") r.body.clear();
      respond(std::move(r));
    };
    auto authorize = [&](const std::string& action, const std::string& resource) {
      return call.Authorize(action, resource, {});
    };
    std::string bucket_arn = "arn:aws:s3:::" + bucket;
    std::string object_arn = bucket_arn + "/" + key;
    const std::string& m = req.method;
    if (bucket.empty()) {
      if (m != "GET")
        return fail(S3Error(405, "MethodNotAllowed",
                            "The specified method is not allowed against this "
                            "resource."));
      call.operation = "ListBuckets";
      if (auto d = authorize("s3:ListAllMyBuckets", "*")) return fail(*d);
      return respond(ListBuckets(call));
    }
    if (key.empty()) {
      if (m == "PUT") {
        call.operation = "CreateBucket";
        if (auto d = authorize("s3:CreateBucket", bucket_arn)) return fail(*d);
        std::string region;
        size_t lc = req.body.find("<LocationConstraint>");
        if (lc != std::string::npos) {
          size_t end = req.body.find("</LocationConstraint>", lc);
          if (end != std::string::npos) region = req.body.substr(lc + 20, end - lc - 20);
        }
        base::Status st = s_.CreateBucket(bucket, region);
        if (!st.ok()) return fail(FromStatus(st, bucket, key));
        http::Response r;
        r.Set("Location", "/" + bucket);
        return respond(Done(call, std::move(r)));
      }
      if (m == "HEAD") {
        call.operation = "HeadBucket";
        if (auto d = authorize("s3:ListBucket", bucket_arn)) return fail(*d);
        auto b = s_.HeadBucket(bucket);
        if (!b.ok()) return fail(FromStatus(b.status(), bucket, key));
        http::Response r;
        r.Set("x-amz-bucket-region", b->region);
        return respond(Done(call, std::move(r)));
      }
      if (m == "DELETE") {
        call.operation = "DeleteBucket";
        if (auto d = authorize("s3:DeleteBucket", bucket_arn)) return fail(*d);
        base::Status st = s_.DeleteBucket(bucket);
        if (!st.ok()) return fail(FromStatus(st, bucket, key));
        http::Response r;
        r.status = 204;
        return respond(Done(call, std::move(r)));
      }
      if (m == "GET" && q.Has("location")) {
        call.operation = "GetBucketLocation";
        if (auto d = authorize("s3:GetBucketLocation", bucket_arn)) return fail(*d);
        auto b = s_.HeadBucket(bucket);
        if (!b.ok()) return fail(FromStatus(b.status(), bucket, key));
        aws::XmlWriter w;
        w.Declaration().Open("LocationConstraint", kXmlns);
        if (b->region != "us-east-1") w.Raw(aws::XmlEscape(b->region));
        return respond(XmlDone(call, w.Finish()));
      }
      if (m == "GET") {
        call.operation = q.Get("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
        if (auto d = authorize("s3:ListBucket", bucket_arn)) return fail(*d);
        return List(call, bucket, q, respond, fail);
      }
      return fail(S3Error(501, "NotImplemented",
                          "A header you provided implies functionality that is not implemented"));
    }
    if (m == "PUT") {
      if (req.Find("x-amz-copy-source"))
        return fail(S3Error(501, "NotImplemented", "CopyObject is not implemented yet."));
      if (q.Has("uploadId") || q.Has("partNumber"))
        return fail(S3Error(501, "NotImplemented", "Multipart uploads are not implemented yet."));
      call.operation = "PutObject";
      if (auto d = authorize("s3:PutObject", object_arn)) return fail(*d);
      const std::string* sha = req.Find("x-amz-content-sha256");
      if (sha && sha->rfind("STREAMING-", 0) == 0)
        return fail(S3Error(501, "NotImplemented", "aws-chunked uploads are not implemented yet."));
      if (const std::string* md5 = req.Find("Content-MD5")) {
        auto raw = base::Base64Decode(*md5);
        if (!raw || raw->size() != 16)
          return fail(S3Error(400, "InvalidDigest", "The Content-MD5 you specified was invalid."));
        if (base::HexEncode(*raw) != Md5Hex(req.body))
          return fail(S3Error(400, "BadDigest",
                              "The Content-MD5 you specified did not match what we received."));
      }
      ObjectInfo meta;
      for (const auto& h : req.headers) {
        std::string n = base::ToLower(h.name);
        if (n.rfind("x-amz-meta-", 0) == 0) meta.metadata[n.substr(11)] = h.value;
        if (n == "content-type") meta.content_type = h.value;
        if (n == "cache-control" || n == "content-disposition" || n == "content-encoding" ||
            n == "content-language" || n == "expires")
          meta.headers[h.name] = h.value;
      }
      if (meta.content_type.empty()) meta.content_type = "binary/octet-stream";
      auto out = s_.PutObject(bucket, key, req.body, meta);
      if (!out.ok()) return fail(FromStatus(out.status(), bucket, key));
      http::Response r;
      r.Set("ETag", out->etag);
      return respond(Done(call, std::move(r)));
    }
    if (m == "GET" || m == "HEAD") {
      call.operation = m == "GET" ? "GetObject" : "HeadObject";
      if (auto d = authorize("s3:GetObject", object_arn)) return fail(*d);
      auto o = s_.HeadObject(bucket, key);
      if (!o.ok()) return fail(FromStatus(o.status(), bucket, key));
      http::Response r = Get(call, req, q, o.value(), fail);
      if (r.status == -1) return;  // Get answered with an error already
      return respond(std::move(r));
    }
    if (m == "DELETE") {
      call.operation = "DeleteObject";
      if (auto d = authorize("s3:DeleteObject", object_arn)) return fail(*d);
      base::Status st = s_.DeleteObject(bucket, key);
      if (!st.ok()) return fail(FromStatus(st, bucket, key));
      http::Response r;
      r.status = 204;
      return respond(Done(call, std::move(r)));
    }
    return fail(S3Error(405, "MethodNotAllowed",
                        "The specified method is not allowed against this resource."));
  }

 private:
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
};

}  // namespace

std::unique_ptr<aws::Service> MakeS3Service(ObjectStore& store) {
  return std::make_unique<S3Service>(store);
}

}  // namespace s3
