#include "services/ecr/ecr.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/crypto.h"
#include "base/ids.h"
#include "base/strings.h"

namespace ecr {

namespace {

using nlohmann::json;

constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;
// Upload sessions each hold an open temp file; bound them.
constexpr size_t kMaxUploads = 1024;
const std::string kRepoPrefix = "ecr/repo/";
const std::string kManifestPrefix = "ecr/manifest/";
const std::string kTagPrefix = "ecr/tag/";
const std::string kBlobPrefix = "ecr/blob/";
const std::string kReferrerPrefix = "ecr/referrer/";
const std::string kTokenPrefix = "ecr/token/";

std::string RepoKey(const std::string& n) { return kRepoPrefix + n; }
std::string ManifestKey(const std::string& n, const std::string& d) {
  return kManifestPrefix + n + ":" + d;
}
std::string TagKey(const std::string& n, const std::string& t) { return kTagPrefix + n + ":" + t; }
std::string BlobKey(const std::string& n, const std::string& d) {
  return kBlobPrefix + n + ":" + d;
}
std::string ReferrerKey(const std::string& n, const std::string& s, const std::string& d) {
  return kReferrerPrefix + n + ":" + s + ":" + d;
}
std::string BlobOwner(const std::string& n) { return "ecr/b/" + n; }
std::string ImageOwner(const std::string& n, const std::string& d) {
  return "ecr/m/" + n + "@" + d;
}

Failure Fail(Err c, std::string m) { return Failure{c, std::move(m)}; }
Failure Internal(const base::Status& s) { return Fail(Err::kInternal, s.ToString()); }

std::optional<json> ParseJson(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int64_t Millis(base::SystemTime t) { return base::EpochMillis(t); }
base::SystemTime FromMillis(int64_t ms) {
  return base::SystemTime(
      std::chrono::duration_cast<base::SystemTime::duration>(std::chrono::milliseconds(ms)));
}

json RepoToJson(const Repository& r) {
  json j = {{"name", r.name},           {"createdAt", Millis(r.created_at)},
            {"immutable", r.immutable}, {"scanOnPush", r.scan_on_push},
            {"policy", r.policy},       {"lifecycle", r.lifecycle}};
  if (r.lifecycle_evaluated_at) j["lifecycleEvaluatedAt"] = Millis(*r.lifecycle_evaluated_at);
  return j;
}

json ImageToJson(const Image& i) {
  return {{"mediaType", i.media_type},       {"artifactType", i.artifact_type},
          {"manifestSize", i.manifest_size}, {"size", i.size},
          {"pushedAt", Millis(i.pushed_at)}, {"blobs", i.blobs},
          {"children", i.children},          {"subject", i.subject}};
}

bool ParseImage(const std::string& text, Image& i) {
  auto j = ParseJson(text);
  if (!j || !j->is_object()) return false;
  i.media_type = Str(*j, "mediaType");
  i.artifact_type = Str(*j, "artifactType");
  i.manifest_size = j->value("manifestSize", uint64_t{0});
  i.size = j->value("size", uint64_t{0});
  i.pushed_at = FromMillis(j->value("pushedAt", int64_t{0}));
  i.subject = Str(*j, "subject");
  for (const auto& b : j->value("blobs", json::array())) i.blobs.push_back(b.get<std::string>());
  for (const auto& b : j->value("children", json::array()))
    i.children.push_back(b.get<std::string>());
  return true;
}

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
bool IsValidComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size(); ++i) {
    char ch = c[i];
    if (IsAlnum(ch)) continue;
    if (ch == '-') continue;  // runs of '-' are allowed
    if (ch == '.' && IsAlnum(c[i + 1]) && IsAlnum(c[i - 1])) continue;
    if (ch == '_') {
      if (IsAlnum(c[i + 1]) && IsAlnum(c[i - 1])) continue;
      if (c[i + 1] == '_' && i + 2 < c.size() && IsAlnum(c[i + 2]) && IsAlnum(c[i - 1])) {
        ++i;
        continue;
      }
    }
    return false;
  }
  for (size_t i = 0; i + 1 < c.size(); ++i)
    if (c[i] == '-' && (c[i + 1] == '.' || c[i + 1] == '_')) return false;
  return true;
}

Res<Descriptor> ParseDescriptor(const json& j, const char* what) {
  if (!j.is_object()) return Fail(Err::kManifestInvalid, std::string(what) + " is not an object");
  Descriptor d;
  d.media_type = Str(j, "mediaType");
  d.digest = Str(j, "digest");
  d.artifact_type = Str(j, "artifactType");
  if (!store::IsValidDigest(d.digest))
    return Fail(Err::kManifestInvalid, std::string(what) + " has an invalid digest");
  auto s = j.find("size");
  if (s == j.end() || !s->is_number_unsigned())
    return Fail(Err::kManifestInvalid, std::string(what) + " has an invalid size");
  d.size = s->get<uint64_t>();
  return d;
}

}  // namespace

bool IsValidRepositoryName(std::string_view name) {
  if (name.size() < 2 || name.size() > 256) return false;
  for (std::string_view c : base::Split(name, '/'))
    if (!IsValidComponent(c)) return false;
  return true;
}

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(tag[0])) return false;
  for (char c : tag)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

Res<Manifest> ParseManifest(std::string_view bytes, std::string_view content_type) {
  static const std::set<std::string, std::less<>> kImage = {
      "application/vnd.oci.image.manifest.v1+json",
      "application/vnd.docker.distribution.manifest.v2+json"};
  static const std::set<std::string, std::less<>> kIndex = {
      "application/vnd.oci.image.index.v1+json",
      "application/vnd.docker.distribution.manifest.list.v2+json"};
  if (bytes.size() > kMaxManifestBytes) return Fail(Err::kTooLarge, "manifest larger than 4 MiB");
  auto j = ParseJson(bytes);
  if (!j || !j->is_object()) return Fail(Err::kManifestInvalid, "manifest is not a JSON object");
  std::string ct(base::Trim(content_type.substr(0, content_type.find(';'))));
  Manifest m;
  m.media_type = Str(*j, "mediaType");
  if (!ct.empty() && !m.media_type.empty() && ct != m.media_type)
    return Fail(Err::kManifestInvalid,
                "Content-Type " + ct + " does not match mediaType " + m.media_type);
  if (m.media_type.empty()) m.media_type = ct;
  if (m.media_type.empty()) {
    // OCI allows omitting mediaType; tell image from index by shape.
    if (j->contains("manifests"))
      m.media_type = "application/vnd.oci.image.index.v1+json";
    else if (j->contains("config"))
      m.media_type = "application/vnd.oci.image.manifest.v1+json";
  }
  auto sv = j->find("schemaVersion");
  if (sv == j->end() || !sv->is_number_integer() || sv->get<int64_t>() != 2)
    return Fail(Err::kManifestInvalid, "schemaVersion must be 2");
  m.artifact_type = Str(*j, "artifactType");
  if (kImage.count(m.media_type)) {
    auto c = j->find("config");
    if (c == j->end()) return Fail(Err::kManifestInvalid, "manifest has no config");
    auto cfg = ParseDescriptor(*c, "config");
    if (!cfg.ok()) return cfg.failure();
    if (m.artifact_type.empty()) m.artifact_type = cfg.value().media_type;
    m.blobs.push_back(cfg.value());
    auto layers = j->find("layers");
    if (layers == j->end() || !layers->is_array())
      return Fail(Err::kManifestInvalid, "manifest has no layers array");
    for (const auto& l : *layers) {
      auto d = ParseDescriptor(l, "layer");
      if (!d.ok()) return d.failure();
      m.blobs.push_back(d.value());
    }
  } else if (kIndex.count(m.media_type)) {
    auto ms = j->find("manifests");
    if (ms == j->end() || !ms->is_array())
      return Fail(Err::kManifestInvalid, "index has no manifests array");
    for (const auto& l : *ms) {
      auto d = ParseDescriptor(l, "manifest");
      if (!d.ok()) return d.failure();
      m.children.push_back(d.value());
    }
  } else {
    return Fail(Err::kManifestInvalid,
                "unsupported manifest media type '" + m.media_type.substr(0, 200) + "'");
  }
  if (auto s = j->find("subject"); s != j->end()) {
    auto d = ParseDescriptor(*s, "subject");
    if (!d.ok()) return d.failure();
    m.subject = d.value();
  }
  if (auto a = j->find("annotations"); a != j->end() && a->is_object()) m.annotations = a->dump();
  return m;
}

bool PolicyAllowsAnonymous(std::string_view policy_text, std::string_view action) {
  auto j = ParseJson(policy_text);
  if (!j || !j->is_object()) return false;
  auto st = j->find("Statement");
  if (st == j->end()) return false;
  json stmts = st->is_array() ? *st : json::array({*st});
  auto has = [](const json& v, auto pred) {
    if (v.is_string()) return pred(v.get<std::string>());
    if (v.is_array())
      for (const auto& e : v)
        if (e.is_string() && pred(e.get<std::string>())) return true;
    return false;
  };
  bool allowed = false;
  for (const auto& s : stmts) {
    if (!s.is_object()) continue;
    auto p = s.find("Principal");
    if (p == s.end()) continue;
    bool anyone = (p->is_string() && *p == "*") ||
                  (p->is_object() && p->contains("AWS") &&
                   has((*p)["AWS"], [](const std::string& x) { return x == "*"; }));
    if (!anyone) continue;
    auto a = s.find("Action");
    if (a == s.end()) continue;
    bool matches = has(
        *a, [&](const std::string& x) { return base::GlobMatch(x, action, /*ignore_case=*/true); });
    if (!matches) continue;
    if (Str(s, "Effect") == "Deny") return false;
    if (Str(s, "Effect") == "Allow") allowed = true;
  }
  return allowed;
}

Res<std::vector<LifecycleRule>> ParseLifecyclePolicy(std::string_view text) {
  auto bad = [](std::string m) {
    return Fail(Err::kInvalidParameter,
                "Invalid parameter at 'LifecyclePolicyText' failed to "
                "satisfy constraint: 'Lifecycle policy validation "
                "failure: " +
                    m + "'");
  };
  auto j = ParseJson(text);
  if (!j || !j->is_object()) return bad("not a JSON object");
  auto rules = j->find("rules");
  if (rules == j->end() || !rules->is_array() || rules->empty())
    return bad("object has missing required properties ([\"rules\"])");
  std::vector<LifecycleRule> out;
  std::set<int> seen;
  for (const auto& r : *rules) {
    if (!r.is_object()) return bad("rule is not an object");
    LifecycleRule rule;
    auto pr = r.find("rulePriority");
    if (pr == r.end() || !pr->is_number_integer() || pr->get<int64_t>() < 1)
      return bad("rulePriority must be a positive integer");
    rule.priority = static_cast<int>(pr->get<int64_t>());
    if (!seen.insert(rule.priority).second) return bad("rulePriority must be unique");
    auto sel = r.find("selection");
    if (sel == r.end() || !sel->is_object()) return bad("rule has no selection");
    std::string ts = Str(*sel, "tagStatus");
    if (ts == "tagged")
      rule.tag_status = LifecycleRule::TagStatus::kTagged;
    else if (ts == "untagged")
      rule.tag_status = LifecycleRule::TagStatus::kUntagged;
    else if (ts == "any")
      rule.tag_status = LifecycleRule::TagStatus::kAny;
    else
      return bad("tagStatus must be tagged, untagged or any");
    for (const char* k : {"tagPrefixList", "tagPatternList"}) {
      auto l = sel->find(k);
      if (l == sel->end()) continue;
      if (!l->is_array()) return bad(std::string(k) + " must be an array");
      for (const auto& e : *l) {
        if (!e.is_string()) return bad(std::string(k) + " must hold strings");
        (std::string(k) == "tagPrefixList" ? rule.tag_prefixes : rule.tag_patterns)
            .push_back(e.get<std::string>());
      }
    }
    if (rule.tag_status == LifecycleRule::TagStatus::kTagged && rule.tag_prefixes.empty() &&
        rule.tag_patterns.empty())
      return bad("tagPrefixList or tagPatternList is required when tagStatus is tagged");
    std::string ct = Str(*sel, "countType");
    if (ct == "imageCountMoreThan") {
      rule.count_type = LifecycleRule::CountType::kMoreThan;
    } else if (ct == "sinceImagePushed") {
      rule.count_type = LifecycleRule::CountType::kSincePushed;
      if (Str(*sel, "countUnit") != "days") return bad("countUnit must be days");
    } else {
      return bad("countType must be imageCountMoreThan or sinceImagePushed");
    }
    auto cn = sel->find("countNumber");
    if (cn == sel->end() || !cn->is_number_integer() || cn->get<int64_t>() < 1)
      return bad("countNumber must be a positive integer");
    rule.count = cn->get<int64_t>();
    auto act = r.find("action");
    if (act == r.end() || !act->is_object() || Str(*act, "type") != "expire")
      return bad("action type must be expire");
    out.push_back(std::move(rule));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.priority < b.priority; });
  for (size_t i = 0; i + 1 < out.size(); ++i)
    if (out[i].tag_status == LifecycleRule::TagStatus::kAny)
      return bad("the rule with tagStatus any must have the highest rulePriority");
  return out;
}

std::vector<std::string> ExpiredImages(const std::vector<LifecycleRule>& rules,
                                       const std::vector<Image>& images, base::SystemTime now) {
  std::vector<const Image*> sorted;
  for (const auto& i : images) sorted.push_back(&i);
  // Newest first: count rules keep the first `count` they match.
  std::sort(sorted.begin(), sorted.end(),
            [](const Image* a, const Image* b) { return a->pushed_at > b->pushed_at; });
  std::set<std::string> decided;  // matched by an earlier rule (kept or expired)
  std::vector<std::string> expired;
  for (const auto& rule : rules) {
    int64_t matched = 0;
    for (const Image* img : sorted) {
      if (decided.count(img->digest)) continue;
      bool tagged = !img->tags.empty();
      bool select = false;
      switch (rule.tag_status) {
        case LifecycleRule::TagStatus::kUntagged:
          select = !tagged;
          break;
        case LifecycleRule::TagStatus::kAny:
          select = true;
          break;
        case LifecycleRule::TagStatus::kTagged:
          for (const auto& t : img->tags) {
            for (const auto& p : rule.tag_prefixes)
              if (t.rfind(p, 0) == 0) select = true;
            for (const auto& p : rule.tag_patterns)
              if (base::GlobMatch(p, t)) select = true;
          }
          break;
      }
      if (!select) continue;
      bool expire = false;
      if (rule.count_type == LifecycleRule::CountType::kMoreThan) {
        expire = ++matched > rule.count;
      } else {
        expire = now - img->pushed_at > std::chrono::hours(24) * rule.count;
      }
      decided.insert(img->digest);
      if (expire) expired.push_back(img->digest);
    }
  }
  return expired;
}

namespace {

class EcrImpl : public Ecr {
 public:
  EcrImpl(store::Store* store, store::BlobStore* blobs, Options o)
      : store_(store),
        blobs_(blobs),
        opts_(std::move(o)),
        clock_(opts_.clock ? opts_.clock : &base::SystemClock()) {}
  ~EcrImpl() override { StopController(); }

  const Options& options() const override { return opts_; }
  store::BlobStore& blobs() override { return *blobs_; }
  std::string RepositoryArn(const std::string& name) const override {
    return "arn:aws:ecr:" + opts_.region + ":" + opts_.account_id + ":repository/" + name;
  }

  Repository FromRecord(const std::string& name, const std::string& value) const {
    Repository r;
    r.name = name;
    r.arn = RepositoryArn(name);
    r.uri = opts_.registry_host + "/" + name;
    if (auto j = ParseJson(value); j && j->is_object()) {
      r.created_at = FromMillis(j->value("createdAt", int64_t{0}));
      r.immutable = j->value("immutable", false);
      r.scan_on_push = j->value("scanOnPush", false);
      r.policy = Str(*j, "policy");
      r.lifecycle = Str(*j, "lifecycle");
      if (j->contains("lifecycleEvaluatedAt"))
        r.lifecycle_evaluated_at = FromMillis((*j)["lifecycleEvaluatedAt"].get<int64_t>());
    }
    return r;
  }

  Failure RepoNotFound(const std::string& name) const {
    return Fail(Err::kRepositoryNotFound, "The repository with name '" + name +
                                              "' does not exist in the registry with id '" +
                                              opts_.account_id + "'");
  }

  Res<store::KeyValue> RepoKv(const std::string& name) {
    if (!IsValidRepositoryName(name)) return RepoNotFound(name);
    auto kv = store_->Get(RepoKey(name));
    if (!kv.ok()) return Internal(kv.status());
    if (!kv->has_value()) return RepoNotFound(name);
    return **kv;
  }

  Res<Repository> CreateRepository(const std::string& name, bool immutable,
                                   bool scan_on_push) override {
    if (!IsValidRepositoryName(name))
      return Fail(Err::kNameInvalid,
                  "Invalid parameter at 'repositoryName' failed to satisfy "
                  "constraint: 'must satisfy regular expression "
                  "'(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''");
    Repository r;
    r.name = name;
    r.arn = RepositoryArn(name);
    r.uri = opts_.registry_host + "/" + name;
    r.created_at = std::chrono::time_point_cast<std::chrono::milliseconds>(clock_->Now());
    r.immutable = immutable;
    r.scan_on_push = scan_on_push;
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyMissing(RepoKey(name)));
    txn.success.push_back(store::Op::Put(RepoKey(name), RepoToJson(r).dump()));
    auto res = store_->Commit(txn);
    if (!res.ok()) return Internal(res.status());
    if (!res->succeeded)
      return Fail(Err::kRepositoryExists, "The repository with name '" + name +
                                              "' already exists in the registry with id '" +
                                              opts_.account_id + "'");
    return r;
  }

  Res<Repository> GetRepository(const std::string& name) override {
    auto kv = RepoKv(name);
    if (!kv.ok()) return kv.failure();
    return FromRecord(name, kv.value().value);
  }

  Res<std::vector<Repository>> ListRepositories() override {
    auto r = store_->Range(store::KeyRange::Prefix(kRepoPrefix));
    if (!r.ok()) return Internal(r.status());
    std::vector<Repository> out;
    for (const auto& kv : r->kvs)
      out.push_back(FromRecord(kv.key.substr(kRepoPrefix.size()), kv.value));
    return out;
  }

  // Read-modify-write of a repository record, retried on conflict.
  Res<Repository> UpdateRepo(const std::string& name,
                             const std::function<std::optional<Failure>(Repository&)>& fn) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      auto kv = RepoKv(name);
      if (!kv.ok()) return kv.failure();
      Repository r = FromRecord(name, kv.value().value);
      if (auto f = fn(r)) return *f;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(RepoKey(name), kv.value().mod_revision));
      txn.success.push_back(store::Op::Put(RepoKey(name), RepoToJson(r).dump()));
      auto res = store_->Commit(txn);
      if (!res.ok()) return Internal(res.status());
      if (res->succeeded) return r;
    }
    return Fail(Err::kInternal, "repository " + name + " kept changing; retry");
  }

  Res<Repository> SetImmutable(const std::string& name, bool immutable) override {
    return UpdateRepo(name, [&](Repository& r) -> std::optional<Failure> {
      r.immutable = immutable;
      return std::nullopt;
    });
  }

  Res<Repository> SetRepositoryPolicy(const std::string& name, const std::string& text) override {
    return UpdateRepo(name, [&](Repository& r) -> std::optional<Failure> {
      if (text.empty() && r.policy.empty())
        return Fail(Err::kRepositoryPolicyNotFound,
                    "Repository policy does not exist for the repository with name '" + name +
                        "' in the registry with id '" + opts_.account_id + "'");
      if (!text.empty()) {
        auto j = ParseJson(text);
        if (!j || !j->is_object() || !j->contains("Statement"))
          return Fail(Err::kInvalidParameter,
                      "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid "
                      "repository policy provided'");
      }
      r.policy = text;
      return std::nullopt;
    });
  }

  Res<Repository> SetLifecyclePolicy(const std::string& name, const std::string& text) override {
    return UpdateRepo(name, [&](Repository& r) -> std::optional<Failure> {
      if (text.empty() && r.lifecycle.empty())
        return Fail(Err::kLifecyclePolicyNotFound,
                    "Lifecycle policy does not exist for the repository with name '" + name +
                        "' in the registry with id '" + opts_.account_id + "'");
      if (!text.empty()) {
        auto rules = ParseLifecyclePolicy(text);
        if (!rules.ok()) return rules.failure();
      }
      r.lifecycle = text;
      return std::nullopt;
    });
  }

  Res<std::vector<Image>> ListImages(const std::string& repository) override {
    auto repo = RepoKv(repository);
    if (!repo.ok()) return repo.failure();
    auto ms = store_->Range(store::KeyRange::Prefix(kManifestPrefix + repository + ":"));
    if (!ms.ok()) return Internal(ms.status());
    auto ts = store_->Range(store::KeyRange::Prefix(kTagPrefix + repository + ":"));
    if (!ts.ok()) return Internal(ts.status());
    std::map<std::string, std::vector<std::string>> tags;
    size_t tag_off = kTagPrefix.size() + repository.size() + 1;
    for (const auto& kv : ts->kvs) tags[kv.value].push_back(kv.key.substr(tag_off));
    std::vector<Image> out;
    size_t off = kManifestPrefix.size() + repository.size() + 1;
    for (const auto& kv : ms->kvs) {
      Image i;
      if (!ParseImage(kv.value, i)) continue;
      i.repository = repository;
      i.digest = kv.key.substr(off);
      i.tags = tags[i.digest];
      out.push_back(std::move(i));
    }
    return out;
  }

  Failure ImageNotFound(const std::string& repository, const std::string& reference) {
    std::string id =
        store::IsValidDigest(reference) ? "imageDigest=" + reference : "imageTag=" + reference;
    return Fail(Err::kImageNotFound, "The image with imageId {" + id +
                                         "} does not exist within the repository with name '" +
                                         repository + "' in the registry with id '" +
                                         opts_.account_id + "'");
  }

  Res<Image> GetImage(const std::string& repository, const std::string& reference) override {
    auto repo = RepoKv(repository);
    if (!repo.ok()) return repo.failure();
    std::string digest = reference;
    if (!store::IsValidDigest(reference)) {
      if (!IsValidTag(reference)) return ImageNotFound(repository, reference);
      auto t = store_->Get(TagKey(repository, reference));
      if (!t.ok()) return Internal(t.status());
      if (!t->has_value()) return ImageNotFound(repository, reference);
      digest = (*t)->value;
    }
    auto m = store_->Get(ManifestKey(repository, digest));
    if (!m.ok()) return Internal(m.status());
    Image i;
    if (!m->has_value() || !ParseImage((*m)->value, i)) return ImageNotFound(repository, reference);
    i.repository = repository;
    i.digest = digest;
    auto ts = store_->Range(store::KeyRange::Prefix(kTagPrefix + repository + ":"));
    if (ts.ok())
      for (const auto& kv : ts->kvs)
        if (kv.value == digest)
          i.tags.push_back(kv.key.substr(kTagPrefix.size() + repository.size() + 1));
    return i;
  }

  Res<std::string> ReadManifest(const std::string& repository, const std::string& digest) override {
    auto bytes = blobs_->Get(digest);
    if (!bytes.ok()) {
      if (bytes.status().code() == base::Code::kNotFound) return ImageNotFound(repository, digest);
      return Internal(bytes.status());
    }
    return std::move(bytes).value();
  }

  Res<Image> PutManifest(const std::string& repository, const std::string& tag,
                         std::string_view bytes, std::string_view content_type,
                         const std::string& expected_digest) override {
    if (!tag.empty() && !IsValidTag(tag))
      return Fail(Err::kTagInvalid, "invalid tag '" + tag.substr(0, 200) + "'");
    auto parsed = ParseManifest(bytes, content_type);
    if (!parsed.ok()) return parsed.failure();
    const Manifest& m = parsed.value();
    std::string digest = "sha256:" + base::Sha256Hex(bytes);
    if (!expected_digest.empty() && expected_digest != digest)
      return Fail(Err::kDigestInvalid, "manifest digest " + digest + " does not match " +
                                           expected_digest.substr(0, 200));
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto repo = RepoKv(repository);
      if (!repo.ok()) return repo.failure();
      Repository r = FromRecord(repository, repo.value().value);
      // Every blob and child must be in this repository already.
      Image img;
      img.repository = repository;
      img.digest = digest;
      img.media_type = m.media_type;
      img.artifact_type = m.artifact_type;
      img.manifest_size = bytes.size();
      img.pushed_at = std::chrono::time_point_cast<std::chrono::milliseconds>(clock_->Now());
      std::vector<std::string> missing;
      for (const auto& b : m.blobs) {
        auto kv = store_->Get(BlobKey(repository, b.digest));
        if (!kv.ok()) return Internal(kv.status());
        if (!kv->has_value()) missing.push_back(b.digest);
        if (std::find(img.blobs.begin(), img.blobs.end(), b.digest) == img.blobs.end())
          img.blobs.push_back(b.digest);
        img.size += b.size;
      }
      if (!missing.empty())
        return Fail(Err::kLayersNotFound, "Layers with digests ['" + missing.front() +
                                              "'] required for pushing image into repository "
                                              "with name '" +
                                              repository + "' in the registry with id '" +
                                              opts_.account_id + "' do not exist");
      for (const auto& c : m.children) {
        auto kv = store_->Get(ManifestKey(repository, c.digest));
        if (!kv.ok()) return Internal(kv.status());
        if (!kv->has_value())
          return Fail(
              Err::kReferencedImagesNotFound,
              "manifest references image " + c.digest + " that is not in repository " + repository);
        img.children.push_back(c.digest);
        img.size += c.size;
      }
      if (m.subject) img.subject = m.subject->digest;
      auto put = blobs_->Put(bytes);
      if (!put.ok()) return Internal(put.status());

      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(RepoKey(repository), repo.value().mod_revision));
      std::string owner = ImageOwner(repository, digest);
      auto existing = store_->Get(ManifestKey(repository, digest));
      if (!existing.ok()) return Internal(existing.status());
      Image old;
      bool exists = existing->has_value() && ParseImage((*existing)->value, old);
      if (exists) {
        img.pushed_at = old.pushed_at;  // re-push of the same manifest keeps its record
        txn.compares.push_back(store::Compare::ModRevisionIs(ManifestKey(repository, digest),
                                                             (*existing)->mod_revision));
      } else {
        txn.compares.push_back(store::Compare::KeyMissing(ManifestKey(repository, digest)));
        txn.compares.push_back(blobs_->AddRefGuard(digest));
        for (auto& op : blobs_->AddRefOps(digest, owner)) txn.success.push_back(std::move(op));
        for (const auto& b : img.blobs) {
          txn.compares.push_back(store::Compare::KeyExists(BlobKey(repository, b)));
          txn.compares.push_back(blobs_->AddRefGuard(b));
          for (auto& op : blobs_->AddRefOps(b, owner)) txn.success.push_back(std::move(op));
        }
        for (const auto& c : img.children)
          txn.compares.push_back(store::Compare::KeyExists(ManifestKey(repository, c)));
        txn.success.push_back(
            store::Op::Put(ManifestKey(repository, digest), ImageToJson(img).dump()));
        if (m.subject) {
          json d = {{"mediaType", m.media_type}, {"digest", digest}, {"size", bytes.size()}};
          if (!m.artifact_type.empty()) d["artifactType"] = m.artifact_type;
          if (!m.annotations.empty()) d["annotations"] = json::parse(m.annotations, nullptr, false);
          txn.success.push_back(
              store::Op::Put(ReferrerKey(repository, m.subject->digest, digest), d.dump()));
        }
      }
      if (!tag.empty()) {
        auto t = store_->Get(TagKey(repository, tag));
        if (!t.ok()) return Internal(t.status());
        if (t->has_value()) {
          if ((*t)->value != digest && r.immutable)
            return Fail(Err::kTagImmutable,
                        "The image tag '" + tag + "' already exists in the '" + repository +
                            "' repository and cannot be overwritten because the repository is "
                            "immutable.");
          txn.compares.push_back(store::Compare::ValueIs(TagKey(repository, tag), (*t)->value));
        } else {
          txn.compares.push_back(store::Compare::KeyMissing(TagKey(repository, tag)));
        }
        txn.success.push_back(store::Op::Put(TagKey(repository, tag), digest));
      }
      if (txn.success.empty()) {  // same manifest, no tag: nothing to change
        auto got = GetImage(repository, digest);
        return got;
      }
      auto res = store_->Commit(txn);
      if (!res.ok()) return Internal(res.status());
      if (res->succeeded) {
        auto got = GetImage(repository, digest);
        return got;
      }
    }
    return Fail(Err::kInternal, "manifest put kept conflicting; retry");
  }

  Done DeleteImage(const std::string& repository, const std::string& digest) override {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto img = GetImage(repository, digest);
      if (!img.ok()) return img.failure();
      auto kv = store_->Get(ManifestKey(repository, digest));
      if (!kv.ok() || !kv->has_value()) return ImageNotFound(repository, digest);
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(ManifestKey(repository, digest), (*kv)->mod_revision));
      txn.success.push_back(
          store::Op::Delete(store::KeyRange::Exact(ManifestKey(repository, digest))));
      std::string owner = ImageOwner(repository, digest);
      for (auto& op : blobs_->DropRefOps(digest, owner)) txn.success.push_back(std::move(op));
      for (const auto& b : img.value().blobs)
        for (auto& op : blobs_->DropRefOps(b, owner)) txn.success.push_back(std::move(op));
      for (const auto& t : img.value().tags) {
        txn.compares.push_back(store::Compare::ValueIs(TagKey(repository, t), digest));
        txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(TagKey(repository, t))));
      }
      if (!img.value().subject.empty())
        txn.success.push_back(store::Op::Delete(
            store::KeyRange::Exact(ReferrerKey(repository, img.value().subject, digest))));
      auto res = store_->Commit(txn);
      if (!res.ok()) return Internal(res.status());
      if (res->succeeded) return Ok();
    }
    return Fail(Err::kInternal, "image delete kept conflicting; retry");
  }

  Done DeleteTag(const std::string& repository, const std::string& tag,
                 bool delete_if_untagged) override {
    auto img = GetImage(repository, tag);
    if (!img.ok()) return img.failure();
    if (delete_if_untagged && img.value().tags.size() <= 1)
      return DeleteImage(repository, img.value().digest);
    store::Txn txn;
    txn.compares.push_back(store::Compare::ValueIs(TagKey(repository, tag), img.value().digest));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(TagKey(repository, tag))));
    auto res = store_->Commit(txn);
    if (!res.ok()) return Internal(res.status());
    if (!res->succeeded) return ImageNotFound(repository, tag);
    return Ok();
  }

  Res<std::vector<Descriptor>> Referrers(const std::string& repository,
                                         const std::string& subject) override {
    auto repo = RepoKv(repository);
    if (!repo.ok()) return repo.failure();
    auto r =
        store_->Range(store::KeyRange::Prefix(kReferrerPrefix + repository + ":" + subject + ":"));
    if (!r.ok()) return Internal(r.status());
    std::vector<Descriptor> out;
    for (const auto& kv : r->kvs) {
      auto j = ParseJson(kv.value);
      if (!j || !j->is_object()) continue;
      Descriptor d;
      d.media_type = Str(*j, "mediaType");
      d.digest = Str(*j, "digest");
      d.artifact_type = kv.value;  // the whole descriptor JSON, for the index
      d.size = j->value("size", uint64_t{0});
      out.push_back(std::move(d));
    }
    return out;
  }

  Res<uint64_t> BlobSize(const std::string& repository, const std::string& digest) override {
    auto kv = store_->Get(BlobKey(repository, digest));
    if (!kv.ok()) return Internal(kv.status());
    if (!kv->has_value()) return Fail(Err::kBlobUnknown, "blob unknown to registry");
    auto n = base::ParseInt((*kv)->value);
    return n ? static_cast<uint64_t>(*n) : uint64_t{0};
  }

  Done LinkBlob(const std::string& repository, const std::string& digest) override {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto repo = RepoKv(repository);
      if (!repo.ok()) return repo.failure();
      auto info = blobs_->Stat(digest);
      if (!info.ok()) return Fail(Err::kBlobUnknown, "blob unknown to registry");
      store::Txn txn;
      txn.compares.push_back(store::Compare::KeyExists(RepoKey(repository)));
      txn.compares.push_back(blobs_->AddRefGuard(digest));
      for (auto& op : blobs_->AddRefOps(digest, BlobOwner(repository)))
        txn.success.push_back(std::move(op));
      txn.success.push_back(
          store::Op::Put(BlobKey(repository, digest), std::to_string(info->size)));
      auto res = store_->Commit(txn);
      if (!res.ok()) return Internal(res.status());
      if (!res->succeeded) continue;     // repository gone (next RepoKv says so) or GC racing
      if (!blobs_->Stat(digest).ok()) {  // collected just before our guard: undo
        (void)UnlinkBlob(repository, digest);
        return Fail(Err::kBlobUnknown, "blob unknown to registry");
      }
      return Ok();
    }
    return Fail(Err::kInternal, "blob link kept conflicting; retry");
  }

  Done UnlinkBlob(const std::string& repository, const std::string& digest) override {
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyExists(BlobKey(repository, digest)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(BlobKey(repository, digest))));
    for (auto& op : blobs_->DropRefOps(digest, BlobOwner(repository)))
      txn.success.push_back(std::move(op));
    auto res = store_->Commit(txn);
    if (!res.ok()) return Internal(res.status());
    if (!res->succeeded) return Fail(Err::kBlobUnknown, "blob unknown to registry");
    return Ok();
  }

  Res<std::shared_ptr<Upload>> NewDetachedUpload(const std::string& repository,
                                                 const std::string& owner) override {
    auto repo = RepoKv(repository);
    if (!repo.ok()) return repo.failure();
    auto w = blobs_->NewWriter();
    if (!w.ok()) return Internal(w.status());
    auto up = std::make_shared<Upload>();
    up->id = base::NewUuid();
    up->repository = repository;
    up->owner = owner;
    up->writer = std::move(w).value();
    up->last_used = std::chrono::steady_clock::now();
    return up;
  }

  Res<std::shared_ptr<Upload>> StartUpload(const std::string& repository,
                                           const std::string& owner) override {
    {
      std::lock_guard lock(uploads_mu_);
      if (uploads_.size() >= kMaxUploads)
        return Fail(Err::kTooManyUploads, "too many blob uploads in progress; retry later");
    }
    auto up = NewDetachedUpload(repository, owner);
    if (!up.ok()) return up;
    std::lock_guard lock(uploads_mu_);
    uploads_[up.value()->id] = up.value();
    return up;
  }

  std::shared_ptr<Upload> FindUpload(const std::string& repository,
                                     const std::string& id) override {
    std::lock_guard lock(uploads_mu_);
    auto it = uploads_.find(id);
    if (it == uploads_.end() || it->second->repository != repository) return nullptr;
    return it->second;
  }

  void CancelUpload(const std::string& id) override {
    std::lock_guard lock(uploads_mu_);
    uploads_.erase(id);
  }

  Res<std::string> CompleteUpload(const std::shared_ptr<Upload>& up,
                                  const std::string& digest) override {
    CancelUpload(up->id);  // the session ends whatever happens
    std::unique_lock lock(up->mu);
    if (!up->writer) return Fail(Err::kUploadUnknown, "blob upload unknown to registry");
    auto writer = std::move(up->writer);
    lock.unlock();
    if (!store::IsValidDigest(digest))
      return Fail(Err::kDigestInvalid, "provided digest is not a sha256 digest");
    auto d = writer->Commit(digest);
    if (!d.ok()) {
      if (d.status().code() == base::Code::kInvalidArgument)
        return Fail(Err::kDigestInvalid, "provided digest did not match uploaded content");
      return Internal(d.status());
    }
    auto linked = LinkBlob(up->repository, digest);
    if (!linked.ok()) return linked.failure();
    return digest;
  }

  Res<Token> IssueToken(const auth::Principal& p) override {
    Token t;
    t.token = base::Base64Encode(base::RandomBytes(48));
    for (char& c : t.token) {
      if (c == '+') c = '-';
      if (c == '/') c = '_';
    }
    t.expires_at = clock_->Now() + opts_.token_ttl;
    json j = {{"type", static_cast<int>(p.type)},
              {"account", p.account_id},
              {"arn", p.arn},
              {"userId", p.user_id},
              {"name", p.name},
              {"session", p.session_name},
              {"roleArn", p.role_arn},
              {"expiresAt", Millis(t.expires_at)}};
    auto lease = store_->GrantLease(opts_.token_ttl);
    if (!lease.ok()) return Internal(lease.status());
    auto put = store_->Put(kTokenPrefix + base::Sha256Hex(t.token), j.dump(), *lease);
    if (!put.ok()) return Internal(put.status());
    return t;
  }

  std::optional<auth::Principal> LookupToken(const std::string& token) override {
    std::string key = kTokenPrefix + base::Sha256Hex(token);
    auto now = clock_->Now();
    {
      std::lock_guard lock(tokens_mu_);
      auto it = tokens_.find(key);
      if (it != tokens_.end()) {
        if (it->second.second > now) return it->second.first;
        tokens_.erase(it);
        return std::nullopt;
      }
    }
    auto kv = store_->Get(key);
    if (!kv.ok() || !kv->has_value()) return std::nullopt;
    auto j = ParseJson((*kv)->value);
    if (!j || !j->is_object()) return std::nullopt;
    auth::Principal p;
    p.type = static_cast<auth::PrincipalType>(j->value("type", 0));
    p.account_id = Str(*j, "account");
    p.arn = Str(*j, "arn");
    p.user_id = Str(*j, "userId");
    p.name = Str(*j, "name");
    p.session_name = Str(*j, "session");
    p.role_arn = Str(*j, "roleArn");
    auto expires = FromMillis(j->value("expiresAt", int64_t{0}));
    if (expires <= now) return std::nullopt;
    std::lock_guard lock(tokens_mu_);
    if (tokens_.size() > 10000) tokens_.clear();
    tokens_[key] = {p, expires};
    return p;
  }

  Res<Repository> DeleteRepository(const std::string& name, bool force) override {
    auto repo = GetRepository(name);
    if (!repo.ok()) return repo.failure();
    auto images = ListImages(name);
    if (!images.ok()) return images.failure();
    if (!images.value().empty() && !force)
      return Fail(Err::kRepositoryNotEmpty,
                  "The repository with name '" + name + "' in registry with id '" +
                      opts_.account_id + "' cannot be deleted because it still contains images");
    // Indexes first, so no image is deleted while an index still names it.
    auto& imgs = images.value();
    std::stable_partition(imgs.begin(), imgs.end(),
                          [](const Image& i) { return !i.children.empty(); });
    for (const auto& i : imgs) {
      auto d = DeleteImage(name, i.digest);
      if (!d.ok() && d.failure().code != Err::kImageNotFound) return d.failure();
    }
    auto blobs =
        store_->Range(store::KeyRange::Prefix(kBlobPrefix + name + ":"), {.keys_only = true});
    if (!blobs.ok()) return Internal(blobs.status());
    for (const auto& kv : blobs->kvs)
      (void)UnlinkBlob(name, kv.key.substr(kBlobPrefix.size() + name.size() + 1));
    store::Txn txn;
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(RepoKey(name))));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(kTagPrefix + name + ":")));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(kReferrerPrefix + name + ":")));
    auto res = store_->Commit(txn);
    if (!res.ok()) return Internal(res.status());
    return repo;
  }

  Res<int> ApplyLifecyclePolicy(const std::string& repository) override {
    auto repo = GetRepository(repository);
    if (!repo.ok()) return repo.failure();
    if (repo.value().lifecycle.empty()) return 0;
    auto rules = ParseLifecyclePolicy(repo.value().lifecycle);
    if (!rules.ok()) return rules.failure();
    auto images = ListImages(repository);
    if (!images.ok()) return images.failure();
    int n = 0;
    for (const auto& d : ExpiredImages(rules.value(), images.value(), clock_->Now())) {
      auto del = DeleteImage(repository, d);
      if (del.ok()) {
        ++n;
        spdlog::info("ecr lifecycle: expired {}@{}", repository, d);
      }
    }
    auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(clock_->Now());
    (void)UpdateRepo(repository, [&](Repository& r) -> std::optional<Failure> {
      r.lifecycle_evaluated_at = now;
      return std::nullopt;
    });
    return n;
  }

  void RunControllerOnce() override {
    auto repos = ListRepositories();
    if (repos.ok())
      for (const auto& r : repos.value())
        if (!r.lifecycle.empty()) {
          auto n = ApplyLifecyclePolicy(r.name);
          if (!n.ok()) spdlog::warn("ecr lifecycle {}: {}", r.name, n.failure().message);
        }
    auto cutoff = std::chrono::steady_clock::now() - opts_.upload_idle_timeout;
    std::lock_guard lock(uploads_mu_);
    for (auto it = uploads_.begin(); it != uploads_.end();) {
      std::unique_lock ul(it->second->mu, std::try_to_lock);
      if (ul.owns_lock() && !it->second->busy && it->second->last_used < cutoff)
        it = uploads_.erase(it);
      else
        ++it;
    }
  }

  void StartController() override {
    std::lock_guard lock(ctl_mu_);
    if (controller_.joinable()) return;
    stopping_ = false;
    controller_ = std::thread([this] {
      std::unique_lock lk(ctl_mu_);
      while (!ctl_cv_.wait_for(lk, opts_.lifecycle_interval, [this] { return stopping_; })) {
        lk.unlock();
        RunControllerOnce();
        lk.lock();
      }
    });
  }

  void StopController() override {
    {
      std::lock_guard lock(ctl_mu_);
      stopping_ = true;
    }
    ctl_cv_.notify_all();
    if (controller_.joinable()) controller_.join();
  }

 private:
  store::Store* store_;
  store::BlobStore* blobs_;
  Options opts_;
  base::Clock* clock_;
  std::mutex uploads_mu_;
  std::unordered_map<std::string, std::shared_ptr<Upload>> uploads_;
  std::mutex tokens_mu_;
  std::unordered_map<std::string, std::pair<auth::Principal, base::SystemTime>> tokens_;
  std::mutex ctl_mu_;
  std::condition_variable ctl_cv_;
  bool stopping_ = false;
  std::thread controller_;
};

}  // namespace

base::Result<std::unique_ptr<Ecr>> OpenEcr(store::Store* store, store::BlobStore* blobs,
                                           const Options& options) {
  return std::unique_ptr<Ecr>(std::make_unique<EcrImpl>(store, blobs, options));
}

}  // namespace ecr
