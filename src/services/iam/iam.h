// IAM: users, access keys, roles, managed and inline policies, kept in the store under
// "/iam/", plus STS sessions under "/sts/sessions/" (they are IAM credentials too).
//
// iam::Iam is the plain C++ logic: no HTTP, no XML. Its methods validate their inputs,
// act through store transactions with compares (two concurrent creates cannot both win,
// nothing is half-applied) and fail with a base::Status whose message is already the
// wording AWS uses ("The user with name bob cannot be found."). The Query API that maps
// those codes to AWS errors is MakeIamService (api.cpp); STS lives in services/sts/.
//
// Besides the API, Iam serves the hot path of every request: Credentials() looks up an
// access key (IAM user keys and STS sessions) and Authorizer() evaluates the caller's
// policies. Both answer from in-memory caches that a store watch on "/iam/" and
// "/sts/sessions/" keeps fresh; this instance's own writes also invalidate synchronously,
// so a new key works at once and a deleted or deactivated one stops at once.
//
// Threading: every method is safe to call concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.h"
#include "aws/service.h"
#include "base/status.h"
#include "base/time.h"
#include "store/store.h"

namespace iam {

struct Options {
  std::string account_id = "000000000000";
  base::Clock* clock = nullptr;  // nullptr = base::SystemClock()
  // Extra time an expired STS session stays in the store (so that its use gives
  // ExpiredToken rather than InvalidClientTokenId) before its lease deletes it.
  std::chrono::seconds session_grace{3600};
  // The shortest session STS grants (AWS: 900 s). Tests lower it to watch expiry happen.
  std::chrono::seconds min_session_duration{900};
};

struct Tag {
  std::string key;
  std::string value;
};

struct AccessKey {
  std::string id;      // AKIA…
  std::string secret;  // 40 characters
  bool active = true;
  base::SystemTime create_date;
};

struct InlinePolicy {
  std::string name;
  std::string document;  // as given (IAM returns documents verbatim, URL-encoded)
};

struct User {
  std::string name;
  std::string id;  // AIDA…
  std::string path = "/";
  std::string arn;
  base::SystemTime create_date;
  std::vector<Tag> tags;
  std::vector<AccessKey> keys;
  std::vector<std::string> attached;  // managed policy ARNs
  std::vector<InlinePolicy> inline_policies;
};

struct Role {
  std::string name;
  std::string id;  // AROA…
  std::string path = "/";
  std::string arn;
  std::string description;
  std::string trust_policy;  // AssumeRolePolicyDocument, as given
  int64_t max_session_duration = 3600;
  base::SystemTime create_date;
  std::vector<Tag> tags;
  std::vector<std::string> attached;
  std::vector<InlinePolicy> inline_policies;
};

struct PolicyVersion {
  std::string id;  // "v1"
  std::string document;
  base::SystemTime create_date;
};

struct ManagedPolicy {
  std::string name;
  std::string id;  // ANPA…
  std::string path = "/";
  std::string arn;
  std::string description;
  std::string default_version = "v1";
  base::SystemTime create_date;
  base::SystemTime update_date;
  int64_t attachment_count = 0;
  int64_t next_version = 2;
  bool aws_managed = false;  // arn:aws:iam::aws:policy/… (built in, read-only)
  std::vector<PolicyVersion> versions;
  std::vector<Tag> tags;
  const PolicyVersion* DefaultVersion() const;
};

// Temporary credentials from STS (AssumeRole, GetSessionToken).
struct Session {
  enum class Kind { kRole, kUser, kRoot };
  Kind kind = Kind::kRole;
  std::string access_key_id;  // ASIA…
  std::string secret;
  std::string token;
  base::SystemTime expiration;
  std::string account_id;
  // kRole: the role and the session name; kUser: the user's name in role_name's place.
  std::string role_name;
  std::string role_arn;
  std::string role_id;
  std::string session_name;
  std::string policy;               // session policy document, empty if none
  std::string source_identity_arn;  // who asked for it
};

// Tests and the Query API share these limits with AWS.
inline constexpr size_t kMaxAccessKeysPerUser = 2;
inline constexpr size_t kMaxPolicyVersions = 5;
inline constexpr size_t kMaxTags = 50;

// The page of a list: `marker` (opaque, "" = first page) and at most `max_items`.
struct PageRequest {
  std::string marker;
  int64_t max_items = 100;
};
template <typename T>
struct Page {
  std::vector<T> items;
  bool truncated = false;
  std::string next_marker;
};

// A policy document failed validation: an InvalidArgument status that the Query APIs
// answer as MalformedPolicyDocument (not ValidationError). PolicyErrorMessage strips the
// marker for the response.
base::Status MalformedPolicy(std::string_view message);
bool IsMalformedPolicy(const base::Status& status);
std::string PolicyErrorMessage(const base::Status& status);

class IamCredentials;
class IamAuthorizer;

class Iam {
 public:
  ~Iam();
  Iam(const Iam&) = delete;
  Iam& operator=(const Iam&) = delete;

  const std::string& account_id() const { return options_.account_id; }
  const Options& options() const { return options_; }
  base::Clock& clock() const { return *clock_; }
  store::Store& store() const { return *store_; }
  // When this account's IAM was first opened (the root user's CreateDate).
  base::SystemTime account_created() const { return account_created_; }

  // --- Users ---------------------------------------------------------------------------
  base::Result<User> CreateUser(std::string_view name, std::string_view path,
                                std::vector<Tag> tags);
  base::Result<User> GetUser(std::string_view name);
  base::Result<Page<User>> ListUsers(std::string_view path_prefix, const PageRequest& page);
  // DeleteConflict (FailedPrecondition) while the user has keys or policies.
  base::Status DeleteUser(std::string_view name);
  // Renames and/or moves the user (empty = unchanged).
  base::Status UpdateUser(std::string_view name, std::string_view new_name,
                          std::string_view new_path);
  base::Status TagUser(std::string_view name, const std::vector<Tag>& tags);
  base::Status UntagUser(std::string_view name, const std::vector<std::string>& keys);

  // --- Access keys ---------------------------------------------------------------------
  // ResourceExhausted (LimitExceeded) past kMaxAccessKeysPerUser.
  base::Result<AccessKey> CreateAccessKey(std::string_view user_name);
  base::Result<std::vector<AccessKey>> ListAccessKeys(std::string_view user_name);
  base::Status DeleteAccessKey(std::string_view user_name, std::string_view key_id);
  base::Status UpdateAccessKey(std::string_view user_name, std::string_view key_id, bool active);
  // The user owning a key; NotFound if none.
  base::Result<User> UserForAccessKey(std::string_view key_id);

  // --- Roles ---------------------------------------------------------------------------
  base::Result<Role> CreateRole(std::string_view name, std::string_view path,
                                std::string_view trust_policy, std::string_view description,
                                int64_t max_session_duration, std::vector<Tag> tags);
  base::Result<Role> GetRole(std::string_view name);
  base::Result<Page<Role>> ListRoles(std::string_view path_prefix, const PageRequest& page);
  base::Status DeleteRole(std::string_view name);
  base::Status UpdateAssumeRolePolicy(std::string_view name, std::string_view trust_policy);
  // Empty description / 0 duration = unchanged.
  base::Status UpdateRole(std::string_view name, std::optional<std::string> description,
                          int64_t max_session_duration);
  base::Status TagRole(std::string_view name, const std::vector<Tag>& tags);
  base::Status UntagRole(std::string_view name, const std::vector<std::string>& keys);

  // --- Managed policies ----------------------------------------------------------------
  base::Result<ManagedPolicy> CreatePolicy(std::string_view name, std::string_view path,
                                           std::string_view document, std::string_view description,
                                           std::vector<Tag> tags);
  // NotFound "Policy ARN was not found."; InvalidArgument for an unparsable ARN.
  base::Result<ManagedPolicy> GetPolicy(std::string_view arn);
  enum class Scope { kAll, kAws, kLocal };
  base::Result<Page<ManagedPolicy>> ListPolicies(Scope scope, bool only_attached,
                                                 std::string_view path_prefix,
                                                 const PageRequest& page);
  base::Status DeletePolicy(std::string_view arn);
  base::Result<PolicyVersion> CreatePolicyVersion(std::string_view arn, std::string_view document,
                                                  bool set_as_default);
  base::Result<PolicyVersion> GetPolicyVersion(std::string_view arn, std::string_view version_id);
  base::Status DeletePolicyVersion(std::string_view arn, std::string_view version_id);
  base::Status SetDefaultPolicyVersion(std::string_view arn, std::string_view version_id);

  // --- Attachments and inline policies (user or role) ----------------------------------
  enum class Entity { kUser, kRole };
  base::Status AttachPolicy(Entity entity, std::string_view name, std::string_view policy_arn);
  base::Status DetachPolicy(Entity entity, std::string_view name, std::string_view policy_arn);
  // Attached policies as (name, arn).
  base::Result<std::vector<std::pair<std::string, std::string>>> ListAttachedPolicies(
      Entity entity, std::string_view name, std::string_view path_prefix);
  base::Status PutInlinePolicy(Entity entity, std::string_view name, std::string_view policy_name,
                               std::string_view document);
  base::Result<InlinePolicy> GetInlinePolicy(Entity entity, std::string_view name,
                                             std::string_view policy_name);
  base::Result<std::vector<std::string>> ListInlinePolicies(Entity entity, std::string_view name);
  base::Status DeleteInlinePolicy(Entity entity, std::string_view name,
                                  std::string_view policy_name);

  // --- STS sessions --------------------------------------------------------------------
  // Stores a new session (credentials generated here) that expires after `duration`;
  // its store record outlives the expiry by Options::session_grace.
  base::Result<Session> CreateSession(Session session, std::chrono::seconds duration);
  base::Result<Session> GetSession(std::string_view access_key_id);

  // --- Helpers shared with STS and the authorizer --------------------------------------
  // "arn:aws:iam::ACCT:user/path/name".
  std::string UserArn(std::string_view path, std::string_view name) const;
  std::string RoleArn(std::string_view path, std::string_view name) const;
  // The documents of every policy that applies to the principal (attached managed
  // policies' default versions, then inline ones). NotFound if the user/role is gone.
  base::Result<std::vector<std::string>> IdentityPolicyDocuments(Entity entity,
                                                                 std::string_view name);

  IamCredentials& credentials() { return *credentials_; }
  IamAuthorizer& authorizer() { return *authorizer_; }

 private:
  friend base::Result<std::unique_ptr<Iam>> OpenIam(store::Store* store, const Options& options);
  Iam(store::Store* store, const Options& options);
  base::Status StartWatches();
  base::Status InitAccount();
  void InvalidateIam();  // after any change under /iam/ (ours or another server's)

  // Reads one record and its mod revision; nullopt when missing.
  template <typename T>
  base::Result<std::optional<std::pair<T, store::Revision>>> Read(const std::string& key);
  // Read-modify-write of one record with a compare on its mod revision, retried while
  // another writer wins. `mutate(record, txn, erase)` edits the record and may add
  // compares/ops on other keys; an error from it aborts. `missing` if there is no record.
  template <typename T, typename Fn>
  base::Status Mutate(const std::string& key, const base::Status& missing, Fn mutate);
  // Puts `value` at `key` only if the key does not exist; `exists` otherwise.
  base::Status CreateIfMissing(const std::string& key, const std::string& value,
                               const base::Status& exists);
  base::Result<ManagedPolicy> ResolvePolicyArn(std::string_view arn, bool for_attach,
                                               store::Revision* revision);
  // How many users and roles each built-in AWS policy is attached to.
  base::Result<std::map<std::string, int64_t>> AwsPolicyAttachments();
  template <typename T>
  base::Status Attach(std::string_view name, std::string_view policy_arn, bool attach);
  template <typename T>
  base::Status PutInline(std::string_view name, std::string_view policy_name,
                         std::string_view document);
  template <typename T>
  base::Status DeleteInline(std::string_view name, std::string_view policy_name, Entity entity);

  Options options_;
  base::Clock* clock_;
  store::Store* store_;
  base::SystemTime account_created_;
  std::unique_ptr<IamCredentials> credentials_;
  std::unique_ptr<IamAuthorizer> authorizer_;
  std::unique_ptr<store::Watch> iam_watch_;
  std::unique_ptr<store::Watch> sts_watch_;
};

// Creates IAM over `store` (which must outlive it) and starts its cache watches.
base::Result<std::unique_ptr<Iam>> OpenIam(store::Store* store, const Options& options);
// The IAM Query API ("iam", xmlns https://iam.amazonaws.com/doc/2010-05-08/).
std::unique_ptr<aws::Service> MakeIamService(Iam& iam);
// IAM users' access keys and STS sessions (not root: the server handles root).
auth::CredentialProvider& Credentials(Iam& iam);
aws::Authorizer& Authorizer(Iam& iam);

}  // namespace iam
