#include "services/ecr/registry.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/crypto.h"
#include "base/fs.h"
#include "base/strings.h"

namespace ecr {

namespace {

using nlohmann::json;

constexpr size_t kMaxManifestBody = 4 * 1024 * 1024;

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// What a /v2/ path names.
struct Target {
  enum class Kind { kBase, kCatalog, kTags, kManifest, kBlob, kUpload, kReferrers, kBad };
  Kind kind = Kind::kBad;
  std::string name, ref;  // ref: tag/digest, digest, or upload id
};

Target ParseTarget(std::string_view raw_path) {
  Target t;
  auto decoded = base::UriDecode(raw_path);
  if (!decoded) return t;
  std::string_view p = *decoded;
  if (p == "/v2" || p == "/v2/") {
    t.kind = Target::Kind::kBase;
    return t;
  }
  if (!StartsWith(p, "/v2/")) return t;
  p.remove_prefix(4);
  if (p == "_catalog") {
    t.kind = Target::Kind::kCatalog;
    return t;
  }
  auto split = [&](std::string_view marker, Target::Kind kind) {
    size_t at = p.rfind(marker);
    if (at == std::string_view::npos || at == 0) return false;
    t.kind = kind;
    t.name = std::string(p.substr(0, at));
    t.ref = std::string(p.substr(at + marker.size()));
    return true;
  };
  if (p.size() > 10 && p.substr(p.size() - 10) == "/tags/list") {
    t.kind = Target::Kind::kTags;
    t.name = std::string(p.substr(0, p.size() - 10));
    return t;
  }
  if (split("/blobs/uploads/", Target::Kind::kUpload)) return t;
  if (p.size() > 14 && p.substr(p.size() - 14) == "/blobs/uploads") {
    t.kind = Target::Kind::kUpload;
    t.name = std::string(p.substr(0, p.size() - 14));
    return t;
  }
  if (split("/manifests/", Target::Kind::kManifest)) return t;
  if (split("/blobs/", Target::Kind::kBlob)) return t;
  if (split("/referrers/", Target::Kind::kReferrers)) return t;
  t.kind = Target::Kind::kBad;
  return t;
}

std::map<std::string, std::string> Query(const std::string& q) {
  std::map<std::string, std::string> out;
  if (auto parsed = base::ParseQuery(q))
    for (auto& [k, v] : *parsed) out.emplace(k, v);
  return out;
}

http::Response Base(int status) {
  http::Response r;
  r.status = status;
  r.Set("Docker-Distribution-API-Version", "registry/2.0");
  return r;
}

http::Response OciError(int status, std::string_view code, std::string_view message,
                        const json& detail = nullptr) {
  http::Response r = Base(status);
  json e = {{"code", code}, {"message", message}};
  if (!detail.is_null()) e["detail"] = detail;
  r.Set("Content-Type", "application/json");
  r.body = json{{"errors", json::array({e})}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

http::Response FromFailure(const Failure& f) {
  switch (f.code) {
    case Err::kRepositoryNotFound:
      return OciError(404, "NAME_UNKNOWN", "repository name not known to registry",
                      json{{"message", f.message}});
    case Err::kNameInvalid:
      return OciError(400, "NAME_INVALID", "invalid repository name");
    case Err::kImageNotFound:
      return OciError(404, "MANIFEST_UNKNOWN", "manifest unknown", json{{"message", f.message}});
    case Err::kTagImmutable:
    case Err::kTagInvalid:
      return OciError(400, "TAG_INVALID", "manifest tag did not match URI",
                      json{{"message", f.message}});
    case Err::kLayersNotFound:
    case Err::kReferencedImagesNotFound:
      return OciError(400, "MANIFEST_BLOB_UNKNOWN", "blob unknown to registry",
                      json{{"message", f.message}});
    case Err::kManifestInvalid:
      return OciError(400, "MANIFEST_INVALID", "manifest invalid", json{{"message", f.message}});
    case Err::kDigestInvalid:
      return OciError(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                      json{{"message", f.message}});
    case Err::kBlobUnknown:
      return OciError(404, "BLOB_UNKNOWN", "blob unknown to registry");
    case Err::kUploadUnknown:
      return OciError(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    case Err::kUploadInvalid:
      return OciError(400, "BLOB_UPLOAD_INVALID", "blob upload invalid",
                      json{{"message", f.message}});
    case Err::kRangeInvalid:
      return OciError(416, "BLOB_UPLOAD_INVALID", "invalid content range",
                      json{{"message", f.message}});
    case Err::kTooLarge:
      return OciError(413, "SIZE_INVALID", "provided length did not match content length",
                      json{{"message", f.message}});
    case Err::kTooManyUploads:
      return OciError(429, "TOOMANYREQUESTS", "too many requests", json{{"message", f.message}});
    default:
      return OciError(500, "UNKNOWN", "unknown error", json{{"message", f.message}});
  }
}

std::string DigestHeaderSafe(std::string_view s) { return std::string(s.substr(0, 200)); }

// Who is asking, as far as the registry is concerned.
struct Identity {
  enum class Kind { kSigned, kToken, kAnonymous, kBad } kind = Kind::kAnonymous;
  std::string fingerprint;  // ties upload sessions to the credentials that started them
};

// The token in "Basic base64(AWS:<token>)", if that is what the header holds.
std::optional<std::string> BasicToken(const std::string& authz) {
  if (!base::EqualsIgnoreCase(authz.substr(0, 6), "basic ")) return std::nullopt;
  auto decoded = base::Base64Decode(base::Trim(std::string_view(authz).substr(6)));
  if (!decoded) return std::nullopt;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos || decoded->substr(0, colon) != "AWS") return std::nullopt;
  return decoded->substr(colon + 1);
}

std::string Fingerprint(const http::Request& req) {
  const std::string* authz = req.Find("Authorization");
  if (authz == nullptr) return {};
  if (auto tok = BasicToken(*authz)) return "token:" + base::Sha256Hex(*tok);
  size_t p = authz->find("Credential=");
  if (p != std::string::npos) {
    size_t end = authz->find('/', p);
    if (end != std::string::npos) return "akid:" + authz->substr(p + 11, end - p - 11);
  }
  return {};
}

// Streams an upload body into the session's writer.
class UploadSink : public http::BodySink {
 public:
  explicit UploadSink(std::shared_ptr<Upload> up) : up_(std::move(up)) {}
  ~UploadSink() override {
    std::lock_guard lock(up_->mu);
    up_->busy = false;
  }
  base::Status Write(std::string_view data) override {
    std::lock_guard lock(up_->mu);
    if (!status_.ok()) return status_;
    if (!up_->writer) status_ = base::Unavailable("upload ended");
    if (status_.ok()) status_ = up_->writer->Write(data);
    up_->last_used = std::chrono::steady_clock::now();
    return status_;
  }
  const std::shared_ptr<Upload>& upload() const { return up_; }
  base::Status status() {
    std::lock_guard lock(up_->mu);
    return status_;
  }

 private:
  std::shared_ptr<Upload> up_;
  base::Status status_;
};

// "start-end" (Content-Range of a PATCH).
std::optional<std::pair<uint64_t, uint64_t>> ParseContentRange(std::string_view v) {
  v = base::Trim(v);
  if (StartsWith(v, "bytes ")) v.remove_prefix(6);
  size_t dash = v.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto a = base::ParseInt(v.substr(0, dash));
  std::string_view rest = v.substr(dash + 1);
  rest = rest.substr(0, rest.find('/'));
  auto b = base::ParseInt(rest);
  if (!a || !b || *a < 0 || *b < *a) return std::nullopt;
  return std::make_pair(static_cast<uint64_t>(*a), static_cast<uint64_t>(*b));
}

class Handler {
 public:
  Handler(Ecr& ecr, aws::Call& call, http::Request& req) : ecr_(ecr), call_(call), req_(req) {}

  http::Response Run() {
    Target t = ParseTarget(req_.path);
    if (t.kind == Target::Kind::kBad) return OciError(404, "NAME_UNKNOWN", "unknown path");
    if (t.kind != Target::Kind::kBase && t.kind != Target::Kind::kCatalog &&
        !IsValidRepositoryName(t.name))
      return OciError(400, "NAME_INVALID", "invalid repository name");
    if (auto bad = Identify()) return *bad;
    const std::string& m = req_.method;
    bool read = m == "GET" || m == "HEAD";
    switch (t.kind) {
      case Target::Kind::kBase:
        if (id_.kind == Identity::Kind::kAnonymous) return Unauthorized();
        return Json(200, json::object());
      case Target::Kind::kCatalog:
        if (!read) return Unsupported();
        return Catalog();
      case Target::Kind::kTags:
        if (!read) return Unsupported();
        return Tags(t.name);
      case Target::Kind::kManifest:
        if (read) return GetManifest(t.name, t.ref);
        if (m == "PUT") return PutManifest(t.name, t.ref);
        if (m == "DELETE") return DeleteManifest(t.name, t.ref);
        return Unsupported();
      case Target::Kind::kBlob:
        if (read) return GetBlob(t.name, t.ref);
        if (m == "DELETE") return DeleteBlob(t.name, t.ref);
        return Unsupported();
      case Target::Kind::kUpload:
        if (t.ref.empty()) {
          if (m == "POST") return StartUpload(t.name);
          return Unsupported();
        }
        if (m == "PATCH") return PatchUpload(t.name, t.ref);
        if (m == "PUT") return PutUpload(t.name, t.ref);
        if (m == "GET") return UploadStatus(t.name, t.ref);
        if (m == "DELETE") return CancelUpload(t.name, t.ref);
        return Unsupported();
      case Target::Kind::kReferrers:
        if (m != "GET") return Unsupported();
        return Referrers(t.name, t.ref);
      default:
        return OciError(404, "NAME_UNKNOWN", "unknown path");
    }
  }

 private:
  std::optional<http::Response> Identify() {
    id_.fingerprint = Fingerprint(req_);
    if (!call_.access_key_id.empty() || (!call_.principal.arn.empty() && id_.fingerprint.empty())) {
      id_.kind = Identity::Kind::kSigned;  // verified by the edge (or its dev mode)
      return std::nullopt;
    }
    const std::string* authz = req_.Find("Authorization");
    if (authz == nullptr) {
      id_.kind = Identity::Kind::kAnonymous;
      return std::nullopt;
    }
    auto tok = BasicToken(*authz);
    if (!tok) return Unauthorized("authentication required");
    auto p = ecr_.LookupToken(*tok);
    if (!p) return Unauthorized("Your authorization token has expired or is invalid");
    call_.principal = *p;
    if (!p->account_id.empty()) call_.account_id = p->account_id;
    id_.kind = Identity::Kind::kToken;
    return std::nullopt;
  }

  http::Response Unauthorized(std::string_view why = "authentication required") {
    http::Response r = OciError(401, "UNAUTHORIZED", why);
    r.Set("WWW-Authenticate",
          "Basic realm=\"" + ecr_.options().registry_host + "\",service=\"ecr.stratus\"");
    return r;
  }
  http::Response Unsupported() {
    return OciError(405, "UNSUPPORTED", "The operation is unsupported.");
  }
  http::Response Json(int status, const json& j) {
    http::Response r = Base(status);
    r.Set("Content-Type", "application/json");
    r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return r;
  }

  // Checks `action` on repository `name`; the failure response when not allowed.
  std::optional<http::Response> Allow(std::string_view action, const std::string& name) {
    call_.operation = std::string(action.substr(4));
    if (id_.kind == Identity::Kind::kAnonymous) {
      auto repo = ecr_.GetRepository(name);
      if (repo.ok() && PolicyAllowsAnonymous(repo.value().policy, action)) return std::nullopt;
      return Unauthorized();
    }
    if (auto denied = call_.Authorize(action, ecr_.RepositoryArn(name)))
      return OciError(403, "DENIED", "requested access to the resource is denied",
                      json{{"message", denied->message}});
    return std::nullopt;
  }

  http::Response Catalog() {
    call_.operation = "DescribeRepositories";
    if (id_.kind == Identity::Kind::kAnonymous) return Unauthorized();
    if (auto denied = call_.Authorize("ecr:DescribeRepositories", ecr_.RepositoryArn("*")))
      return OciError(403, "DENIED", "requested access to the resource is denied");
    auto repos = ecr_.ListRepositories();
    if (!repos.ok()) return FromFailure(repos.failure());
    std::vector<std::string> names;
    for (const auto& r : repos.value()) names.push_back(r.name);
    return Page("/v2/_catalog", "repositories", names, json::object());
  }

  // The n/last pagination shared by _catalog and tags/list (names sorted).
  http::Response Page(const std::string& path, const char* field, std::vector<std::string> items,
                      json body) {
    std::sort(items.begin(), items.end());
    auto q = Query(req_.query);
    if (auto it = q.find("last"); it != q.end())
      items.erase(items.begin(), std::upper_bound(items.begin(), items.end(), it->second));
    std::optional<int64_t> n;
    if (auto it = q.find("n"); it != q.end()) {
      n = base::ParseInt(it->second);
      if (!n || *n < 0)
        return OciError(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested");
    }
    bool more = n && static_cast<int64_t>(items.size()) > *n;
    if (n && static_cast<int64_t>(items.size()) > *n) items.resize(static_cast<size_t>(*n));
    body[field] = items;
    http::Response r = Json(200, body);
    if (more && !items.empty())
      r.Set("Link", "<" + path + "?last=" + base::UriEncode(items.back()) +
                        "&n=" + std::to_string(*n) + ">; rel=\"next\"");
    return r;
  }

  http::Response Tags(const std::string& name) {
    if (auto no = Allow("ecr:ListImages", name)) return *no;
    auto images = ecr_.ListImages(name);
    if (!images.ok()) return FromFailure(images.failure());
    std::vector<std::string> tags;
    for (const auto& i : images.value()) tags.insert(tags.end(), i.tags.begin(), i.tags.end());
    return Page("/v2/" + name + "/tags/list", "tags", tags, json{{"name", name}});
  }

  http::Response GetManifest(const std::string& name, const std::string& ref) {
    if (auto no = Allow("ecr:BatchGetImage", name)) return *no;
    if (!store::IsValidDigest(ref) && !IsValidTag(ref))
      return OciError(400, StartsWith(ref, "sha256:") ? "DIGEST_INVALID" : "TAG_INVALID",
                      "invalid reference");
    auto img = ecr_.GetImage(name, ref);
    if (!img.ok()) return FromFailure(img.failure());
    // As the distribution registry: an OCI manifest goes only to clients that accept OCI
    // (Docker types are served whatever Accept says).
    const std::string& type = img.value().media_type;
    if (StartsWith(type, "application/vnd.oci.")) {
      bool listed = false, any = false, wildcard = false;
      for (const auto& h : req_.headers) {
        if (!base::EqualsIgnoreCase(h.name, "Accept")) continue;
        for (std::string_view item : base::Split(h.value, ',')) {
          std::string_view v = base::Trim(item.substr(0, item.find(';')));
          if (v.empty()) continue;
          any = true;
          if (v == "*/*") wildcard = true;
          if (v == type) listed = true;
        }
      }
      if (any && !listed && !wildcard)
        return OciError(404, "MANIFEST_UNKNOWN", "manifest unknown",
                        json{{"message",
                              "OCI manifest found, but the Accept header does not "
                              "support OCI manifests"}});
    }
    auto bytes = ecr_.ReadManifest(name, img.value().digest);
    if (!bytes.ok()) return FromFailure(bytes.failure());
    http::Response r = Base(200);
    r.Set("Content-Type", img.value().media_type);
    r.Set("Docker-Content-Digest", img.value().digest);
    r.Set("ETag", "\"" + img.value().digest + "\"");
    r.body = std::move(bytes).value();
    return r;
  }

  http::Response PutManifest(const std::string& name, const std::string& ref) {
    if (auto no = Allow("ecr:PutImage", name)) return *no;
    if (req_.body_sink || req_.body.size() > kMaxManifestBody)
      return OciError(413, "SIZE_INVALID", "manifest larger than 4 MiB");
    bool by_digest = StartsWith(ref, "sha256:") || ref.find(':') != std::string::npos;
    if (by_digest && !store::IsValidDigest(ref))
      return OciError(400, "DIGEST_INVALID", "invalid digest");
    if (!by_digest && !IsValidTag(ref)) return OciError(400, "TAG_INVALID", "invalid tag");
    const std::string* ct = req_.Find("Content-Type");
    auto img = ecr_.PutManifest(name, by_digest ? "" : ref, req_.body, ct ? *ct : "",
                                by_digest ? ref : "");
    if (!img.ok()) return FromFailure(img.failure());
    http::Response r = Base(201);
    r.Set("Location", "/v2/" + name + "/manifests/" + img.value().digest);
    r.Set("Docker-Content-Digest", img.value().digest);
    if (!img.value().subject.empty()) r.Set("OCI-Subject", img.value().subject);
    return r;
  }

  http::Response DeleteManifest(const std::string& name, const std::string& ref) {
    if (auto no = Allow("ecr:BatchDeleteImage", name)) return *no;
    Done d = store::IsValidDigest(ref) ? ecr_.DeleteImage(name, ref)
             : IsValidTag(ref)         ? ecr_.DeleteTag(name, ref, false)
                                       : Done(Failure{Err::kDigestInvalid, "invalid reference"});
    if (!d.ok()) return FromFailure(d.failure());
    return Base(202);
  }

  http::Response GetBlob(const std::string& name, const std::string& digest) {
    bool head = req_.method == "HEAD";
    if (auto no =
            Allow(head ? "ecr:BatchCheckLayerAvailability" : "ecr:GetDownloadUrlForLayer", name))
      return *no;
    if (!store::IsValidDigest(digest)) return OciError(400, "DIGEST_INVALID", "invalid digest");
    auto size = ecr_.BlobSize(name, digest);
    if (!size.ok()) {
      // Manifests are blobs too (distribution serves them here).
      auto img = ecr_.GetImage(name, digest);
      if (!img.ok()) {
        if (img.failure().code == Err::kRepositoryNotFound) return FromFailure(img.failure());
        return FromFailure(size.failure());
      }
    }
    std::string path = ecr_.blobs().PathOf(digest);
    auto fd = std::make_shared<base::UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat sb {};
    if (!fd->valid() || ::fstat(fd->get(), &sb) != 0)
      return OciError(404, "BLOB_UNKNOWN", "blob unknown to registry");
    uint64_t total = static_cast<uint64_t>(sb.st_size);
    uint64_t begin = 0, end = total;  // [begin, end)
    int status = 200;
    if (const std::string* range = req_.Find("Range"); range && !head) {
      std::string_view v = base::Trim(*range);
      bool ok = StartsWith(v, "bytes=") && v.find(',') == std::string_view::npos;
      if (ok) {
        v.remove_prefix(6);
        size_t dash = v.find('-');
        ok = dash != std::string_view::npos;
        if (ok) {
          std::string_view first = v.substr(0, dash), last = v.substr(dash + 1);
          int64_t a = -1, b = -1;
          if (!first.empty()) a = base::ParseInt(first).value_or(-2);
          if (!last.empty()) b = base::ParseInt(last).value_or(-2);
          if (first.empty() && b > 0) {  // suffix: the last b bytes
            begin = total > static_cast<uint64_t>(b) ? total - static_cast<uint64_t>(b) : 0;
          } else if (a >= 0 && static_cast<uint64_t>(a) < total && (last.empty() || b >= a)) {
            begin = static_cast<uint64_t>(a);
            if (!last.empty()) end = std::min<uint64_t>(total, static_cast<uint64_t>(b) + 1);
          } else {
            ok = false;
          }
        }
      }
      if (!ok) {
        http::Response r = OciError(416, "BLOB_UNKNOWN", "requested range not satisfiable");
        r.Set("Content-Range", "bytes */" + std::to_string(total));
        return r;
      }
      status = 206;
    }
    http::Response r = Base(status);
    r.Set("Content-Type", "application/octet-stream");
    r.Set("Docker-Content-Digest", digest);
    r.Set("Accept-Ranges", "bytes");
    r.Set("ETag", "\"" + digest + "\"");
    if (status == 206)
      r.Set("Content-Range", "bytes " + std::to_string(begin) + "-" + std::to_string(end - 1) +
                                 "/" + std::to_string(total));
    if (head) {
      r.head_content_length = static_cast<int64_t>(total);
      return r;
    }
    r.body_file = std::move(fd);
    r.body_file_offset = begin;
    r.body_file_length = end - begin;
    return r;
  }

  http::Response DeleteBlob(const std::string& name, const std::string& digest) {
    if (auto no = Allow("ecr:BatchDeleteImage", name)) return *no;
    if (!store::IsValidDigest(digest)) return OciError(400, "DIGEST_INVALID", "invalid digest");
    auto d = ecr_.UnlinkBlob(name, digest);
    if (!d.ok()) return FromFailure(d.failure());
    return Base(202);
  }

  http::Response UploadAccepted(const Upload& up, uint64_t size) {
    http::Response r = Base(202);
    r.Set("Location", "/v2/" + up.repository + "/blobs/uploads/" + up.id);
    r.Set("Range", "0-" + std::to_string(size == 0 ? 0 : size - 1));
    r.Set("Docker-Upload-UUID", up.id);
    return r;
  }

  http::Response Created(const std::string& name, const std::string& digest) {
    http::Response r = Base(201);
    r.Set("Location", "/v2/" + name + "/blobs/" + digest);
    r.Set("Docker-Content-Digest", digest);
    return r;
  }

  // Appends the request body (buffered, or already streamed by the sink) to `up`.
  std::optional<http::Response> TakeBody(const std::shared_ptr<Upload>& up) {
    if (auto* sink = dynamic_cast<UploadSink*>(req_.body_sink.get())) {
      if (sink->upload() != up) return OciError(400, "BLOB_UPLOAD_INVALID", "upload mismatch");
      base::Status st = sink->status();
      if (!st.ok()) {
        ecr_.CancelUpload(up->id);
        return OciError(500, "UNKNOWN", "writing the upload failed",
                        json{{"message", st.ToString()}});
      }
      return std::nullopt;
    }
    if (req_.body.empty()) return std::nullopt;
    std::lock_guard lock(up->mu);
    if (!up->writer) return FromFailure({Err::kUploadUnknown, ""});
    // Another request is streaming into this session: interleaving would corrupt it.
    if (up->busy)
      return FromFailure({Err::kRangeInvalid, "another request is writing this upload"});
    base::Status st = up->writer->Write(req_.body);
    up->last_used = std::chrono::steady_clock::now();
    if (!st.ok())
      return OciError(500, "UNKNOWN", "writing the upload failed",
                      json{{"message", st.ToString()}});
    return std::nullopt;
  }

  http::Response StartUpload(const std::string& name) {
    if (auto no = Allow("ecr:InitiateLayerUpload", name)) return *no;
    auto q = Query(req_.query);
    if (auto mount = q.find("mount"); mount != q.end()) {
      auto from = q.find("from");
      if (store::IsValidDigest(mount->second) && from != q.end() &&
          IsValidRepositoryName(from->second) &&
          !call_.Authorize("ecr:GetDownloadUrlForLayer", ecr_.RepositoryArn(from->second)) &&
          ecr_.BlobSize(from->second, mount->second).ok()) {
        auto linked = ecr_.LinkBlob(name, mount->second);
        if (linked.ok()) return Created(name, mount->second);
        if (linked.failure().code == Err::kRepositoryNotFound) return FromFailure(linked.failure());
      }
      // Not mountable: fall back to a fresh upload session, as the spec says.
    }
    if (auto digest = q.find("digest"); digest != q.end()) {
      if (auto no = Allow("ecr:CompleteLayerUpload", name)) return *no;
      std::shared_ptr<Upload> up;
      if (auto* sink = dynamic_cast<UploadSink*>(req_.body_sink.get())) {
        up = sink->upload();
      } else {
        auto made = ecr_.NewDetachedUpload(name, id_.fingerprint);
        if (!made.ok()) return FromFailure(made.failure());
        up = made.value();
      }
      if (auto bad = TakeBody(up)) return *bad;
      auto done = ecr_.CompleteUpload(up, digest->second);
      if (!done.ok()) return FromFailure(done.failure());
      return Created(name, done.value());
    }
    auto up = ecr_.StartUpload(name, id_.fingerprint);
    if (!up.ok()) return FromFailure(up.failure());
    return UploadAccepted(*up.value(), 0);
  }

  Res<std::shared_ptr<Upload>> FindUpload(const std::string& name, const std::string& id) {
    auto up = ecr_.FindUpload(name, id);
    if (!up || up->owner != id_.fingerprint) {
      if (up && req_.body_sink) ecr_.CancelUpload(id);  // bytes from someone else: drop all
      return Failure{Err::kUploadUnknown, ""};
    }
    return up;
  }

  uint64_t SizeOf(const std::shared_ptr<Upload>& up) {
    std::lock_guard lock(up->mu);
    return up->writer ? up->writer->size() : 0;
  }

  http::Response PatchUpload(const std::string& name, const std::string& id) {
    if (auto no = Allow("ecr:UploadLayerPart", name)) return *no;
    auto up = FindUpload(name, id);
    if (!up.ok()) return FromFailure(up.failure());
    if (!req_.body_sink) {
      if (const std::string* cr = req_.Find("Content-Range")) {
        auto range = ParseContentRange(*cr);
        if (!range || range->first != SizeOf(up.value()) ||
            range->second - range->first + 1 != req_.body.size()) {
          http::Response r =
              FromFailure({Err::kRangeInvalid, "Content-Range " + DigestHeaderSafe(*cr) +
                                                   " does not follow the upload's " +
                                                   std::to_string(SizeOf(up.value())) + " bytes"});
          r.Set("Location", "/v2/" + name + "/blobs/uploads/" + id);
          r.Set("Range", "0-" + std::to_string(std::max<uint64_t>(SizeOf(up.value()), 1) - 1));
          return r;
        }
      }
    }
    if (auto bad = TakeBody(up.value())) return *bad;
    return UploadAccepted(*up.value(), SizeOf(up.value()));
  }

  http::Response PutUpload(const std::string& name, const std::string& id) {
    if (auto no = Allow("ecr:CompleteLayerUpload", name)) return *no;
    auto up = FindUpload(name, id);
    if (!up.ok()) return FromFailure(up.failure());
    auto q = Query(req_.query);
    auto digest = q.find("digest");
    if (digest == q.end() || !store::IsValidDigest(digest->second)) {
      ecr_.CancelUpload(id);
      return OciError(400, "DIGEST_INVALID", "a sha256 digest query parameter is required");
    }
    if (auto bad = TakeBody(up.value())) return *bad;
    auto done = ecr_.CompleteUpload(up.value(), digest->second);
    if (!done.ok()) return FromFailure(done.failure());
    return Created(name, done.value());
  }

  http::Response UploadStatus(const std::string& name, const std::string& id) {
    if (auto no = Allow("ecr:UploadLayerPart", name)) return *no;
    auto up = FindUpload(name, id);
    if (!up.ok()) return FromFailure(up.failure());
    http::Response r = UploadAccepted(*up.value(), SizeOf(up.value()));
    r.status = 204;
    return r;
  }

  http::Response CancelUpload(const std::string& name, const std::string& id) {
    if (auto no = Allow("ecr:UploadLayerPart", name)) return *no;
    auto up = FindUpload(name, id);
    if (!up.ok()) return FromFailure(up.failure());
    ecr_.CancelUpload(id);
    return Base(204);
  }

  http::Response Referrers(const std::string& name, const std::string& digest) {
    if (auto no = Allow("ecr:BatchGetImage", name)) return *no;
    if (!store::IsValidDigest(digest)) return OciError(400, "DIGEST_INVALID", "invalid digest");
    auto refs = ecr_.Referrers(name, digest);
    if (!refs.ok()) return FromFailure(refs.failure());
    auto q = Query(req_.query);
    auto filter = q.find("artifactType");
    json manifests = json::array();
    for (const auto& d : refs.value()) {
      json j = json::parse(d.artifact_type, nullptr, false);
      if (!j.is_object()) continue;
      if (filter != q.end() && j.value("artifactType", std::string()) != filter->second) continue;
      manifests.push_back(j);
    }
    http::Response r = Json(200, json{{"schemaVersion", 2},
                                      {"mediaType", "application/vnd.oci.image.index.v1+json"},
                                      {"manifests", manifests}});
    r.Set("Content-Type", "application/vnd.oci.image.index.v1+json");
    if (filter != q.end()) r.Set("OCI-Filters-Applied", "artifactType");
    return r;
  }

  Ecr& ecr_;
  aws::Call& call_;
  http::Request& req_;
  Identity id_;
};

}  // namespace

bool Registry::Owns(std::string_view path) { return path == "/v2" || StartsWith(path, "/v2/"); }

void Registry::Handle(aws::Call& call, http::Request&& request, http::Responder respond) {
  call.service = "ecr";
  http::Response r = Handler(ecr_, call, request).Run();
  respond(std::move(r));
}

std::shared_ptr<http::BodySink> Registry::OpenBodySink(const http::Request& head) {
  if (head.method != "PATCH" && head.method != "PUT" && head.method != "POST") return nullptr;
  Target t = ParseTarget(head.path);
  if (t.kind != Target::Kind::kUpload || !IsValidRepositoryName(t.name)) return nullptr;
  std::string fp = Fingerprint(head);
  if (fp.empty()) return nullptr;  // anonymous callers never push
  std::shared_ptr<Upload> up;
  if (head.method == "POST") {
    auto q = Query(head.query);
    if (!t.ref.empty() || !q.count("digest") || q.count("mount")) return nullptr;
    if (const std::string* authz = head.Find("Authorization"))
      if (auto tok = BasicToken(*authz); tok && !ecr_.LookupToken(*tok)) return nullptr;
    auto made = ecr_.NewDetachedUpload(t.name, fp);
    if (!made.ok()) return nullptr;
    up = made.value();
  } else {
    if (t.ref.empty()) return nullptr;
    up = ecr_.FindUpload(t.name, t.ref);
    if (!up || up->owner != fp) return nullptr;
  }
  std::lock_guard lock(up->mu);
  if (up->busy || !up->writer) return nullptr;
  if (const std::string* cr = head.Find("Content-Range"); cr && head.method == "PATCH") {
    auto range = ParseContentRange(*cr);
    if (!range || range->first != up->writer->size()) return nullptr;  // the handler says 416
  }
  up->busy = true;
  return std::make_shared<UploadSink>(up);
}

}  // namespace ecr
