// ecr::Ecr — the image registry's state: repositories, images (manifests) and their tags,
// the blobs each repository holds, upload sessions, authorization tokens and lifecycle
// policies. Both front ends sit on it: the OCI Distribution API on /v2/ (registry.h) and
// the ECR JSON API (api.h). Nothing here knows HTTP or JSON wire shapes.
//
// Store layout (values are JSON; ':' cannot occur in a repository name, so it separates):
//   ecr/repo/<name>                     repository record
//   ecr/manifest/<name>:<digest>        image record (media type, size, push time, blobs)
//   ecr/tag/<name>:<tag>                digest the tag points at
//   ecr/blob/<name>:<digest>            the repository holds this blob (value: size)
//   ecr/referrer/<name>:<subject>:<digest>  descriptor of a manifest whose subject is that
//   ecr/token/<sha256 hex of token>     an authorization token (principal, expiry; leased)
// Bytes live in the BlobStore: each blob link holds a reference owned by "ecr/b/<name>",
// each image a reference on its manifest and on every blob it names ("ecr/m/<name>@<d>"),
// added in the same Txn as the record with the GC guard, so GC never drops a live blob.
//
// Threading: every method is safe from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "auth/principal.h"
#include "base/time.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace ecr {

// The registry's own error codes; each front end maps them to its wire codes.
enum class Err {
  kRepositoryNotFound,
  kRepositoryExists,
  kRepositoryNotEmpty,
  kImageNotFound,
  kImageExists,     // same tag, same digest (PutImage)
  kTagImmutable,    // IMMUTABLE repository, tag points elsewhere
  kLayersNotFound,  // manifest names a blob the repository lacks
  kReferencedImagesNotFound,
  kManifestInvalid,
  kDigestInvalid,
  kBlobUnknown,
  kUploadUnknown,
  kUploadInvalid,
  kRangeInvalid,
  kNameInvalid,
  kTagInvalid,
  kInvalidParameter,
  kLifecyclePolicyNotFound,
  kRepositoryPolicyNotFound,
  kTooLarge,
  kTooManyUploads,
  kInternal,
};

struct Failure {
  Err code = Err::kInternal;
  std::string message;
};

template <typename T>
class [[nodiscard]] Res {
 public:
  Res(T v) : v_(std::move(v)) {}        // NOLINT
  Res(Failure f) : v_(std::move(f)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const Failure& failure() const { return std::get<1>(v_); }

 private:
  std::variant<T, Failure> v_;
};
using Done = Res<std::monostate>;
inline Done Ok() { return std::monostate{}; }

struct Options {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  // host:port clients reach the registry at; repositoryUri is "<registry_host>/<name>".
  std::string registry_host = "127.0.0.1:4566";
  base::Clock* clock = nullptr;  // nullptr = system clock
  std::chrono::seconds token_ttl{12 * 3600};
  // How often the lifecycle controller runs (ECR: within 24 hours).
  std::chrono::seconds lifecycle_interval{600};
  // Upload sessions idle this long are dropped.
  std::chrono::seconds upload_idle_timeout{3600};
};

struct Repository {
  std::string name, arn, uri;
  base::SystemTime created_at;
  bool immutable = false;
  bool scan_on_push = false;
  std::string policy;     // repository policy text, empty if none
  std::string lifecycle;  // lifecycle policy text, empty if none
  std::optional<base::SystemTime> lifecycle_evaluated_at;
};

struct Descriptor {
  std::string media_type, digest, artifact_type;
  uint64_t size = 0;
};

// A validated manifest (OCI image manifest or index, Docker schema 2 or manifest list).
struct Manifest {
  std::string media_type;
  std::string artifact_type;         // OCI artifactType, or the config media type
  std::vector<Descriptor> blobs;     // config and layers (image manifests)
  std::vector<Descriptor> children;  // manifests (indexes)
  std::optional<Descriptor> subject;
  std::string annotations;  // JSON object text, for referrers; may be empty
};
// Parses and checks `bytes`. `content_type` is the request's Content-Type (may be empty);
// it must agree with the manifest's mediaType field when both are present.
Res<Manifest> ParseManifest(std::string_view bytes, std::string_view content_type);

bool IsValidRepositoryName(std::string_view name);
bool IsValidTag(std::string_view tag);

struct Image {
  std::string repository, digest, media_type, artifact_type;
  uint64_t manifest_size = 0;
  uint64_t size = 0;  // sum of the blobs it names (ECR's imageSizeInBytes)
  base::SystemTime pushed_at;
  std::vector<std::string> tags;
  std::vector<std::string> blobs;     // digests referenced (for refs)
  std::vector<std::string> children;  // manifest digests referenced
  std::string subject;
};

struct Token {
  std::string token;  // the password half of "AWS:<token>"
  base::SystemTime expires_at;
};

// One blob upload in progress (OCI upload session). The writer is guarded by `mu`.
struct Upload {
  std::string id, repository, owner;  // owner: who may continue it (see registry.cpp)
  std::mutex mu;
  std::unique_ptr<store::BlobWriter> writer;
  bool busy = false;  // a request is streaming into it
  std::chrono::steady_clock::time_point last_used;
};

// Lifecycle rules, parsed. Exposed for tests.
struct LifecycleRule {
  int priority = 0;
  enum class TagStatus { kTagged, kUntagged, kAny } tag_status = TagStatus::kAny;
  std::vector<std::string> tag_prefixes;
  std::vector<std::string> tag_patterns;  // '*' wildcards
  enum class CountType { kMoreThan, kSincePushed } count_type = CountType::kMoreThan;
  int64_t count = 0;  // images, or days
};
Res<std::vector<LifecycleRule>> ParseLifecyclePolicy(std::string_view text);
// The images (digests) the rules expire at `now`: rules by ascending priority, each image
// matched by at most one rule; count rules keep the newest `count` matched images.
std::vector<std::string> ExpiredImages(const std::vector<LifecycleRule>& rules,
                                       const std::vector<Image>& images, base::SystemTime now);

class Ecr {
 public:
  virtual ~Ecr() = default;
  virtual const Options& options() const = 0;
  virtual std::string RepositoryArn(const std::string& name) const = 0;
  virtual store::BlobStore& blobs() = 0;

  // ---- repositories ----
  virtual Res<Repository> CreateRepository(const std::string& name, bool immutable,
                                           bool scan_on_push) = 0;
  virtual Res<Repository> GetRepository(const std::string& name) = 0;
  virtual Res<std::vector<Repository>> ListRepositories() = 0;
  // Refuses a repository with images unless `force` (then deletes them too).
  virtual Res<Repository> DeleteRepository(const std::string& name, bool force) = 0;
  virtual Res<Repository> SetImmutable(const std::string& name, bool immutable) = 0;
  // Empty text deletes; *PolicyNotFound when deleting what is not there.
  virtual Res<Repository> SetRepositoryPolicy(const std::string& name, const std::string& text) = 0;
  virtual Res<Repository> SetLifecyclePolicy(const std::string& name, const std::string& text) = 0;

  // ---- images ----
  virtual Res<std::vector<Image>> ListImages(const std::string& repository) = 0;
  // `reference` is a tag or a digest.
  virtual Res<Image> GetImage(const std::string& repository, const std::string& reference) = 0;
  virtual Res<std::string> ReadManifest(const std::string& repository,
                                        const std::string& digest) = 0;
  // Stores a manifest; tags it when `tag` is non-empty. With a non-empty
  // `expected_digest`, the bytes must hash to it. Refuses manifests naming blobs or child
  // manifests the repository lacks; nothing is stored then.
  virtual Res<Image> PutManifest(const std::string& repository, const std::string& tag,
                                 std::string_view bytes, std::string_view content_type,
                                 const std::string& expected_digest) = 0;
  virtual Done DeleteImage(const std::string& repository, const std::string& digest) = 0;
  // Untags; with `delete_if_untagged`, deletes the image when that was its last tag.
  virtual Done DeleteTag(const std::string& repository, const std::string& tag,
                         bool delete_if_untagged) = 0;
  virtual Res<std::vector<Descriptor>> Referrers(const std::string& repository,
                                                 const std::string& subject) = 0;

  // ---- blobs ----
  // Size of a blob the repository holds; kBlobUnknown otherwise.
  virtual Res<uint64_t> BlobSize(const std::string& repository, const std::string& digest) = 0;
  // Links a blob already in the BlobStore into the repository.
  virtual Done LinkBlob(const std::string& repository, const std::string& digest) = 0;
  virtual Done UnlinkBlob(const std::string& repository, const std::string& digest) = 0;

  // ---- uploads ----
  virtual Res<std::shared_ptr<Upload>> StartUpload(const std::string& repository,
                                                   const std::string& owner) = 0;
  // A detached upload (not findable by id): the body of a monolithic POST.
  virtual Res<std::shared_ptr<Upload>> NewDetachedUpload(const std::string& repository,
                                                         const std::string& owner) = 0;
  virtual std::shared_ptr<Upload> FindUpload(const std::string& repository,
                                             const std::string& id) = 0;
  // Commits the upload's bytes, checking `digest`, and links the blob; the session ends
  // either way (a digest mismatch keeps nothing).
  virtual Res<std::string> CompleteUpload(const std::shared_ptr<Upload>& upload,
                                          const std::string& digest) = 0;
  virtual void CancelUpload(const std::string& id) = 0;

  // ---- auth tokens ----
  virtual Res<Token> IssueToken(const auth::Principal& principal) = 0;
  // The principal a live token stands for; nullopt when unknown or expired.
  virtual std::optional<auth::Principal> LookupToken(const std::string& token) = 0;

  // ---- lifecycle ----
  // Applies the repository's lifecycle policy once; returns how many images it expired.
  virtual Res<int> ApplyLifecyclePolicy(const std::string& repository) = 0;
  // One controller pass: every repository's policy, and stale uploads dropped.
  virtual void RunControllerOnce() = 0;
  // Starts / stops the background controller thread (every lifecycle_interval).
  virtual void StartController() = 0;
  virtual void StopController() = 0;
};

// `store` and `blobs` must outlive the Ecr.
base::Result<std::unique_ptr<Ecr>> OpenEcr(store::Store* store, store::BlobStore* blobs,
                                           const Options& options);

// Whether a repository policy lets anyone (Principal "*") perform `action`.
bool PolicyAllowsAnonymous(std::string_view policy_text, std::string_view action);

}  // namespace ecr
