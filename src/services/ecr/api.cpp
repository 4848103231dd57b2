#include "services/ecr/api.h"

#include <nlohmann/json.hpp>

#include "aws/json.h"
#include "base/crypto.h"
#include "base/strings.h"

namespace ecr {

namespace {

using aws::Call;
using aws::Outcome;
using nlohmann::json;

aws::Error ToError(const Failure& f) {
  switch (f.code) {
    case Err::kRepositoryNotFound:
      return aws::MakeError(400, "RepositoryNotFoundException", f.message);
    case Err::kRepositoryExists:
      return aws::MakeError(400, "RepositoryAlreadyExistsException", f.message);
    case Err::kRepositoryNotEmpty:
      return aws::MakeError(400, "RepositoryNotEmptyException", f.message);
    case Err::kImageNotFound:
      return aws::MakeError(400, "ImageNotFoundException", f.message);
    case Err::kImageExists:
      return aws::MakeError(400, "ImageAlreadyExistsException", f.message);
    case Err::kTagImmutable:
      return aws::MakeError(400, "ImageTagAlreadyExistsException", f.message);
    case Err::kLayersNotFound:
      return aws::MakeError(400, "LayersNotFoundException", f.message);
    case Err::kReferencedImagesNotFound:
      return aws::MakeError(400, "ReferencedImagesNotFoundException", f.message);
    case Err::kDigestInvalid:
      return aws::MakeError(400, "ImageDigestDoesNotMatchException", f.message);
    case Err::kLifecyclePolicyNotFound:
      return aws::MakeError(400, "LifecyclePolicyNotFoundException", f.message);
    case Err::kRepositoryPolicyNotFound:
      return aws::MakeError(400, "RepositoryPolicyNotFoundException", f.message);
    case Err::kManifestInvalid:
    case Err::kNameInvalid:
    case Err::kTagInvalid:
    case Err::kInvalidParameter:
    case Err::kTooLarge:
      return aws::MakeError(400, "InvalidParameterException", f.message);
    case Err::kTooManyUploads:
      return aws::MakeError(400, "LimitExceededException", f.message);
    default:
      return aws::MakeError(500, "ServerException", f.message);
  }
}

aws::Error InvalidParameter(const std::string& m) {
  return aws::MakeError(400, "InvalidParameterException", m);
}

std::string Str(const json& in, const char* k) {
  auto it = in.find(k);
  return it != in.end() && it->is_string() ? it->get<std::string>() : std::string();
}

double Epoch(base::SystemTime t) { return static_cast<double>(base::EpochMillis(t)) / 1000.0; }

class EcrApi {
 public:
  explicit EcrApi(Ecr& ecr) : ecr_(ecr) {}

  json RepoJson(const Repository& r) const {
    return {{"repositoryArn", r.arn},
            {"registryId", ecr_.options().account_id},
            {"repositoryName", r.name},
            {"repositoryUri", r.uri},
            {"createdAt", Epoch(r.created_at)},
            {"imageTagMutability", r.immutable ? "IMMUTABLE" : "MUTABLE"},
            {"imageScanningConfiguration", {{"scanOnPush", r.scan_on_push}}},
            {"encryptionConfiguration", {{"encryptionType", "AES256"}}}};
  }

  json ImageDetail(const Image& i) const {
    json j = {{"registryId", ecr_.options().account_id},
              {"repositoryName", i.repository},
              {"imageDigest", i.digest},
              {"imageSizeInBytes", i.size},
              {"imagePushedAt", Epoch(i.pushed_at)},
              {"imageManifestMediaType", i.media_type}};
    if (!i.tags.empty()) j["imageTags"] = i.tags;
    if (!i.artifact_type.empty()) j["artifactMediaType"] = i.artifact_type;
    return j;
  }

  Outcome<std::string> RepoName(const json& in) const {
    std::string n = Str(in, "repositoryName");
    if (n.empty())
      return aws::MakeError(400, "InvalidParameterException",
                            "1 validation error detected: Value null at 'repositoryName' failed "
                            "to satisfy constraint: Member must not be null");
    return n;
  }

  std::function<Outcome<std::string>(const json&, const Call&)> RepoResource() const {
    return [this](const json& in, const Call&) -> Outcome<std::string> {
      return ecr_.RepositoryArn(Str(in, "repositoryName"));
    };
  }

  Outcome<json> CreateRepository(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    std::string mut = Str(in, "imageTagMutability");
    if (!mut.empty() && mut != "MUTABLE" && mut != "IMMUTABLE")
      return InvalidParameter(
          "Invalid parameter at 'imageTagMutability' failed to satisfy "
          "constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]'");
    bool scan = false;
    if (auto s = in.find("imageScanningConfiguration"); s != in.end() && s->is_object())
      scan = s->value("scanOnPush", false);
    auto r = ecr_.CreateRepository(name.value(), mut == "IMMUTABLE", scan);
    if (!r.ok()) return ToError(r.failure());
    return json{{"repository", RepoJson(r.value())}};
  }

  Outcome<json> DescribeRepositories(const json& in) {
    json out = json::array();
    auto names = in.find("repositoryNames");
    if (names != in.end() && names->is_array()) {
      for (const auto& n : *names) {
        if (!n.is_string()) return InvalidParameter("repositoryNames must hold strings");
        auto r = ecr_.GetRepository(n.get<std::string>());
        if (!r.ok()) return ToError(r.failure());
        out.push_back(RepoJson(r.value()));
      }
      return json{{"repositories", out}};
    }
    auto all = ecr_.ListRepositories();
    if (!all.ok()) return ToError(all.failure());
    std::vector<json> items;
    for (const auto& r : all.value()) items.push_back(RepoJson(r));
    return Paginate(in, items, "repositories");
  }

  // nextToken = index into the (stable, key-ordered) list.
  Outcome<json> Paginate(const json& in, const std::vector<json>& items, const char* field) {
    size_t start = 0;
    if (std::string tok = Str(in, "nextToken"); !tok.empty()) {
      auto n = base::ParseInt(tok);
      if (!n || *n < 0) return InvalidParameter("Invalid parameter at 'nextToken'");
      start = static_cast<size_t>(*n);
    }
    size_t max = 1000;
    if (auto m = in.find("maxResults"); m != in.end()) {
      if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > 1000)
        return InvalidParameter(
            "Invalid parameter at 'maxResults' failed to satisfy constraint: "
            "'Member must have value between 1 and 1000'");
      max = static_cast<size_t>(m->get<int64_t>());
    }
    json out = json::array();
    for (size_t i = start; i < items.size() && out.size() < max; ++i) out.push_back(items[i]);
    json j = {{field, out}};
    if (start + out.size() < items.size()) j["nextToken"] = std::to_string(start + out.size());
    return j;
  }

  Outcome<json> DeleteRepository(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto r = ecr_.DeleteRepository(name.value(), in.value("force", false));
    if (!r.ok()) return ToError(r.failure());
    return json{{"repository", RepoJson(r.value())}};
  }

  Outcome<std::string> TagStatus(const json& in) {
    if (auto f = in.find("filter"); f != in.end() && f->is_object()) {
      std::string ts = Str(*f, "tagStatus");
      if (!ts.empty() && ts != "TAGGED" && ts != "UNTAGGED" && ts != "ANY")
        return InvalidParameter("Invalid parameter at 'filter.tagStatus'");
      return ts;
    }
    return std::string();
  }

  Outcome<json> ListImages(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto ts = TagStatus(in);
    if (!ts.ok()) return ts.error();
    auto imgs = ecr_.ListImages(name.value());
    if (!imgs.ok()) return ToError(imgs.failure());
    std::vector<json> ids;
    for (const auto& i : imgs.value()) {
      if (i.tags.empty()) {
        if (ts.value() != "TAGGED") ids.push_back({{"imageDigest", i.digest}});
      } else if (ts.value() != "UNTAGGED") {
        for (const auto& t : i.tags) ids.push_back({{"imageDigest", i.digest}, {"imageTag", t}});
      }
    }
    return Paginate(in, ids, "imageIds");
  }

  // Resolves one imageId ({imageDigest, imageTag}); a failure entry when it does not.
  std::variant<Image, json> Resolve(const std::string& repo, const json& id) {
    auto fail = [&](const char* code, const char* reason) {
      return json{{"imageId", id}, {"failureCode", code}, {"failureReason", reason}};
    };
    if (!id.is_object()) return fail("MissingDigestAndTag", "Invalid request parameters");
    std::string digest = Str(id, "imageDigest"), tag = Str(id, "imageTag");
    if (digest.empty() && tag.empty())
      return fail("MissingDigestAndTag",
                  "Invalid request parameters: both tag and digest cannot be null");
    if (!digest.empty() && !store::IsValidDigest(digest))
      return fail("InvalidImageDigest",
                  "Invalid request parameters: image digest should satisfy the regex "
                  "'[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'");
    auto img = ecr_.GetImage(repo, tag.empty() ? digest : tag);
    if (!img.ok()) return fail("ImageNotFound", "Requested image not found");
    if (!digest.empty() && img.value().digest != digest)
      return fail("ImageTagDoesNotMatchDigest", "Requested image not found");
    return img.value();
  }

  Outcome<json> DescribeImages(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto ts = TagStatus(in);
    if (!ts.ok()) return ts.error();
    if (auto ids = in.find("imageIds"); ids != in.end() && ids->is_array()) {
      json out = json::array();
      for (const auto& id : *ids) {
        auto r = Resolve(name.value(), id);
        if (auto* f = std::get_if<json>(&r)) {
          (void)f;
          std::string ref =
              Str(id, "imageTag").empty() ? Str(id, "imageDigest") : Str(id, "imageTag");
          auto repo = ecr_.GetRepository(name.value());
          if (!repo.ok()) return ToError(repo.failure());
          return ToError(ecr_.GetImage(name.value(), ref.empty() ? "-" : ref).ok()
                             ? Failure{Err::kImageNotFound, "Requested image not found"}
                             : ecr_.GetImage(name.value(), ref.empty() ? "-" : ref).failure());
        }
        out.push_back(ImageDetail(std::get<Image>(r)));
      }
      return json{{"imageDetails", out}};
    }
    auto imgs = ecr_.ListImages(name.value());
    if (!imgs.ok()) return ToError(imgs.failure());
    std::vector<json> items;
    for (const auto& i : imgs.value()) {
      if (ts.value() == "TAGGED" && i.tags.empty()) continue;
      if (ts.value() == "UNTAGGED" && !i.tags.empty()) continue;
      items.push_back(ImageDetail(i));
    }
    return Paginate(in, items, "imageDetails");
  }

  Outcome<json> BatchGetImage(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto repo = ecr_.GetRepository(name.value());
    if (!repo.ok()) return ToError(repo.failure());
    auto ids = in.find("imageIds");
    if (ids == in.end() || !ids->is_array() || ids->empty())
      return InvalidParameter(
          "Invalid parameter at 'imageIds' failed to satisfy constraint: "
          "'Member must have length greater than or equal to 1'");
    json images = json::array(), failures = json::array();
    for (const auto& id : *ids) {
      auto r = Resolve(name.value(), id);
      if (auto* f = std::get_if<json>(&r)) {
        failures.push_back(*f);
        continue;
      }
      const Image& img = std::get<Image>(r);
      auto bytes = ecr_.ReadManifest(name.value(), img.digest);
      if (!bytes.ok()) return ToError(bytes.failure());
      json imageId = {{"imageDigest", img.digest}};
      if (std::string t = Str(id, "imageTag"); !t.empty()) imageId["imageTag"] = t;
      images.push_back({{"registryId", ecr_.options().account_id},
                        {"repositoryName", name.value()},
                        {"imageId", imageId},
                        {"imageManifest", bytes.value()},
                        {"imageManifestMediaType", img.media_type}});
    }
    return json{{"images", images}, {"failures", failures}};
  }

  Outcome<json> BatchDeleteImage(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto repo = ecr_.GetRepository(name.value());
    if (!repo.ok()) return ToError(repo.failure());
    auto ids = in.find("imageIds");
    if (ids == in.end() || !ids->is_array() || ids->empty())
      return InvalidParameter(
          "Invalid parameter at 'imageIds' failed to satisfy constraint: "
          "'Member must have length greater than or equal to 1'");
    json deleted = json::array(), failures = json::array();
    for (const auto& id : *ids) {
      auto r = Resolve(name.value(), id);
      if (auto* f = std::get_if<json>(&r)) {
        failures.push_back(*f);
        continue;
      }
      const Image& img = std::get<Image>(r);
      std::string tag = Str(id, "imageTag");
      Done d = tag.empty() ? ecr_.DeleteImage(name.value(), img.digest)
                           : ecr_.DeleteTag(name.value(), tag, /*delete_if_untagged=*/true);
      if (!d.ok()) {
        failures.push_back({{"imageId", id},
                            {"failureCode", "ImageNotFound"},
                            {"failureReason", "Requested image not found"}});
        continue;
      }
      json out = {{"imageDigest", img.digest}};
      if (!tag.empty()) out["imageTag"] = tag;
      deleted.push_back(out);
    }
    return json{{"imageIds", deleted}, {"failures", failures}};
  }

  Outcome<json> PutImage(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    std::string manifest = Str(in, "imageManifest");
    if (manifest.empty())
      return InvalidParameter(
          "Invalid parameter at 'imageManifest' failed to satisfy "
          "constraint: 'Member must not be null'");
    std::string tag = Str(in, "imageTag");
    if (!tag.empty() && !IsValidTag(tag))
      return InvalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint");
    std::string digest = Str(in, "imageDigest");
    // Same tag, same manifest: ECR says ImageAlreadyExistsException.
    if (!tag.empty()) {
      auto cur = ecr_.GetImage(name.value(), tag);
      if (cur.ok() && cur.value().digest == "sha256:" + base::Sha256Hex(manifest))
        return aws::MakeError(400, "ImageAlreadyExistsException",
                              "Image with digest '" + cur.value().digest + "' and tag '" + tag +
                                  "' already exists in the repository with name '" + name.value() +
                                  "' in registry with id '" + ecr_.options().account_id + "'");
    }
    auto img =
        ecr_.PutManifest(name.value(), tag, manifest, Str(in, "imageManifestMediaType"), digest);
    if (!img.ok()) return ToError(img.failure());
    json imageId = {{"imageDigest", img.value().digest}};
    if (!tag.empty()) imageId["imageTag"] = tag;
    return json{{"image",
                 {{"registryId", ecr_.options().account_id},
                  {"repositoryName", name.value()},
                  {"imageId", imageId},
                  {"imageManifest", manifest},
                  {"imageManifestMediaType", img.value().media_type}}}};
  }

  Outcome<json> GetAuthorizationToken(const Call& call) {
    auto t = ecr_.IssueToken(call.principal);
    if (!t.ok()) return ToError(t.failure());
    return json{{"authorizationData",
                 json::array({{{"authorizationToken", base::Base64Encode("AWS:" + t.value().token)},
                               {"expiresAt", Epoch(t.value().expires_at)},
                               {"proxyEndpoint", "http://" + ecr_.options().registry_host}}})}};
  }

  Outcome<json> PutImageTagMutability(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    std::string mut = Str(in, "imageTagMutability");
    if (mut != "MUTABLE" && mut != "IMMUTABLE")
      return InvalidParameter(
          "Invalid parameter at 'imageTagMutability' failed to satisfy "
          "constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]'");
    auto r = ecr_.SetImmutable(name.value(), mut == "IMMUTABLE");
    if (!r.ok()) return ToError(r.failure());
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"imageTagMutability", mut}};
  }

  Outcome<json> PutLifecyclePolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    std::string text = Str(in, "lifecyclePolicyText");
    if (text.empty()) return InvalidParameter("Invalid parameter at 'lifecyclePolicyText'");
    auto r = ecr_.SetLifecyclePolicy(name.value(), text);
    if (!r.ok()) return ToError(r.failure());
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"lifecyclePolicyText", text}};
  }

  Outcome<json> GetLifecyclePolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto r = ecr_.GetRepository(name.value());
    if (!r.ok()) return ToError(r.failure());
    if (r.value().lifecycle.empty())
      return ToError({Err::kLifecyclePolicyNotFound,
                      "Lifecycle policy does not exist for the repository with name '" +
                          name.value() + "' in the registry with id '" + ecr_.options().account_id +
                          "'"});
    json j = {{"registryId", ecr_.options().account_id},
              {"repositoryName", name.value()},
              {"lifecyclePolicyText", r.value().lifecycle}};
    if (r.value().lifecycle_evaluated_at)
      j["lastEvaluatedAt"] = Epoch(*r.value().lifecycle_evaluated_at);
    return j;
  }

  Outcome<json> DeleteLifecyclePolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto before = ecr_.GetRepository(name.value());
    if (!before.ok()) return ToError(before.failure());
    auto r = ecr_.SetLifecyclePolicy(name.value(), "");
    if (!r.ok()) return ToError(r.failure());
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"lifecyclePolicyText", before.value().lifecycle}};
  }

  Outcome<json> SetRepositoryPolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    std::string text = Str(in, "policyText");
    if (text.empty()) return InvalidParameter("Invalid parameter at 'policyText'");
    auto r = ecr_.SetRepositoryPolicy(name.value(), text);
    if (!r.ok()) return ToError(r.failure());
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"policyText", text}};
  }

  Outcome<json> GetRepositoryPolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto r = ecr_.GetRepository(name.value());
    if (!r.ok()) return ToError(r.failure());
    if (r.value().policy.empty())
      return ToError({Err::kRepositoryPolicyNotFound,
                      "Repository policy does not exist for the repository with name '" +
                          name.value() + "' in the registry with id '" + ecr_.options().account_id +
                          "'"});
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"policyText", r.value().policy}};
  }

  Outcome<json> DeleteRepositoryPolicy(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto before = ecr_.GetRepository(name.value());
    if (!before.ok()) return ToError(before.failure());
    auto r = ecr_.SetRepositoryPolicy(name.value(), "");
    if (!r.ok()) return ToError(r.failure());
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"policyText", before.value().policy}};
  }

  // ---- the layer-upload API (what `aws ecr` itself offers for pushing) ----
  static std::string Owner(const Call& call) { return "akid:" + call.access_key_id; }

  Outcome<json> InitiateLayerUpload(const json& in, const Call& call) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto up = ecr_.StartUpload(name.value(), Owner(call));
    if (!up.ok()) return ToError(up.failure());
    return json{{"uploadId", up.value()->id}, {"partSize", 20 * 1024 * 1024}};
  }

  Outcome<std::shared_ptr<Upload>> FindUpload(const json& in, const Call& call) {
    auto up = ecr_.FindUpload(Str(in, "repositoryName"), Str(in, "uploadId"));
    if (!up || up->owner != Owner(call))
      return aws::MakeError(400, "UploadNotFoundException",
                            "The upload with id '" + Str(in, "uploadId") +
                                "' does not exist in the registry with id '" +
                                ecr_.options().account_id + "'");
    return up;
  }

  Outcome<json> UploadLayerPart(const json& in, const Call& call) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto repo = ecr_.GetRepository(name.value());
    if (!repo.ok()) return ToError(repo.failure());
    auto up = FindUpload(in, call);
    if (!up.ok()) return up.error();
    auto first = in.find("partFirstByte"), last = in.find("partLastByte");
    auto blob = base::Base64Decode(Str(in, "layerPartBlob"));
    if (first == in.end() || last == in.end() || !first->is_number_unsigned() ||
        !last->is_number_unsigned() || !blob)
      return InvalidParameter("partFirstByte, partLastByte and layerPartBlob are required");
    std::lock_guard lock(up.value()->mu);
    auto& w = up.value()->writer;
    if (!w || up.value()->busy || first->get<uint64_t>() != w->size() ||
        last->get<uint64_t>() + 1 != w->size() + blob->size())
      return aws::MakeError(400, "InvalidLayerPartException",
                            "The layer part does not follow the bytes received so far (" +
                                std::to_string(w ? w->size() : 0) + ")");
    base::Status st = w->Write(*blob);
    if (!st.ok()) return aws::MakeError(500, "ServerException", st.ToString());
    up.value()->last_used = std::chrono::steady_clock::now();
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"uploadId", up.value()->id},
                {"lastByteReceived", w->size() == 0 ? 0 : w->size() - 1}};
  }

  Outcome<json> CompleteLayerUpload(const json& in, const Call& call) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto up = FindUpload(in, call);
    if (!up.ok()) return up.error();
    auto digests = in.find("layerDigests");
    if (digests == in.end() || !digests->is_array() || digests->size() != 1 ||
        !(*digests)[0].is_string())
      return InvalidParameter("layerDigests must hold exactly one digest");
    std::string digest = (*digests)[0].get<std::string>();
    auto done = ecr_.CompleteUpload(up.value(), digest);
    if (!done.ok()) {
      if (done.failure().code == Err::kDigestInvalid)
        return aws::MakeError(400, "InvalidLayerException",
                              "The layer digest calculation performed by Amazon ECR upon receipt "
                              "of the image layer does not match the digest specified");
      return ToError(done.failure());
    }
    return json{{"registryId", ecr_.options().account_id},
                {"repositoryName", name.value()},
                {"uploadId", up.value()->id},
                {"layerDigest", done.value()}};
  }

  Outcome<json> GetDownloadUrlForLayer(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto repo = ecr_.GetRepository(name.value());
    if (!repo.ok()) return ToError(repo.failure());
    std::string digest = Str(in, "layerDigest");
    if (!store::IsValidDigest(digest) || !ecr_.BlobSize(name.value(), digest).ok())
      return aws::MakeError(400, "LayersNotFoundException",
                            "The image layer '" + digest.substr(0, 200) +
                                "' does not exist within the repository with name '" +
                                name.value() + "' in the registry with id '" +
                                ecr_.options().account_id + "'");
    return json{{"downloadUrl", "http://" + ecr_.options().registry_host + "/v2/" + name.value() +
                                    "/blobs/" + digest},
                {"layerDigest", digest}};
  }

  Outcome<json> BatchCheckLayerAvailability(const json& in) {
    auto name = RepoName(in);
    if (!name.ok()) return name.error();
    auto repo = ecr_.GetRepository(name.value());
    if (!repo.ok()) return ToError(repo.failure());
    auto digests = in.find("layerDigests");
    if (digests == in.end() || !digests->is_array() || digests->empty())
      return InvalidParameter("Invalid parameter at 'layerDigests'");
    json layers = json::array(), failures = json::array();
    for (const auto& d : *digests) {
      std::string digest = d.is_string() ? d.get<std::string>() : "";
      if (!store::IsValidDigest(digest)) {
        failures.push_back({{"layerDigest", digest},
                            {"failureCode", "InvalidLayerDigest"},
                            {"failureReason", "Invalid layer digest"}});
        continue;
      }
      auto size = ecr_.BlobSize(name.value(), digest);
      if (!size.ok()) {
        failures.push_back({{"layerDigest", digest},
                            {"failureCode", "MissingLayerDigest"},
                            {"failureReason", "Could not find image layer"}});
        continue;
      }
      layers.push_back({{"layerDigest", digest},
                        {"layerAvailability", "AVAILABLE"},
                        {"layerSize", size.value()},
                        {"mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"}});
    }
    return json{{"layers", layers}, {"failures", failures}};
  }

 private:
  Ecr& ecr_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeEcrService(Ecr& ecr) {
  auto svc =
      std::make_unique<aws::JsonService>("ecr", "AmazonEC2ContainerRegistry_V20150921", "1.1");
  auto api = std::make_shared<EcrApi>(ecr);
  auto add = [&](const char* name, auto fn, bool repo_resource = true) {
    aws::JsonOperation op;
    op.name = name;
    op.action = std::string("ecr:") + name;
    if (repo_resource) op.resource = api->RepoResource();
    op.handler = [api, fn](const json& in, Call& call) -> Outcome<json> {
      return fn(*api, in, call);
    };
    svc->Add(std::move(op));
  };
#define ECR_OP(Name) add(#Name, [](EcrApi& a, const json& in, Call&) { return a.Name(in); })
  ECR_OP(CreateRepository);
  ECR_OP(DeleteRepository);
  ECR_OP(ListImages);
  ECR_OP(DescribeImages);
  ECR_OP(BatchGetImage);
  ECR_OP(BatchDeleteImage);
  ECR_OP(PutImage);
  ECR_OP(PutImageTagMutability);
  ECR_OP(PutLifecyclePolicy);
  ECR_OP(GetLifecyclePolicy);
  ECR_OP(DeleteLifecyclePolicy);
  ECR_OP(SetRepositoryPolicy);
  ECR_OP(GetRepositoryPolicy);
  ECR_OP(DeleteRepositoryPolicy);
  ECR_OP(BatchCheckLayerAvailability);
  ECR_OP(GetDownloadUrlForLayer);
#undef ECR_OP
  add("InitiateLayerUpload",
      [](EcrApi& a, const json& in, Call& call) { return a.InitiateLayerUpload(in, call); });
  add("UploadLayerPart",
      [](EcrApi& a, const json& in, Call& call) { return a.UploadLayerPart(in, call); });
  add("CompleteLayerUpload",
      [](EcrApi& a, const json& in, Call& call) { return a.CompleteLayerUpload(in, call); });
  add(
      "DescribeRepositories",
      [](EcrApi& a, const json& in, Call&) { return a.DescribeRepositories(in); }, false);
  add(
      "GetAuthorizationToken",
      [](EcrApi& a, const json&, Call& call) { return a.GetAuthorizationToken(call); }, false);
  return svc;
}

}  // namespace ecr
