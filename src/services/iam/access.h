// The request hot path over IAM: who holds an access key (IamCredentials) and whether
// a caller may do something (IamAuthorizer). Both keep in-memory caches that Iam
// invalidates from its store watches and after its own writes. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/policy.h"
#include "auth/principal.h"
#include "aws/service.h"
#include "services/iam/iam.h"

namespace iam {

// Access keys of IAM users (AKIA…) and STS sessions (ASIA…). Root is not here: the
// server resolves its own root key first.
class IamCredentials : public auth::CredentialProvider {
 public:
  explicit IamCredentials(Iam& iam) : iam_(iam) {}

  // NotFound for an unknown key. An inactive user key comes back with active = false, an
  // expired session with its expiration in the past (the SigV4 layer rejects both).
  base::Result<auth::Credential> Lookup(const std::string& access_key_id) override;

  void InvalidateUsers();                       // anything under /iam/ changed
  void InvalidateKey(const std::string& akid);  // one session changed

 private:
  base::Result<auth::Credential> Load(const std::string& access_key_id);

  Iam& iam_;
  std::mutex mu_;
  uint64_t generation_ = 0;  // bumped by every invalidation; a fill from an older one is dropped
  // nullopt = known not to exist (so unknown keys do not hit the store on every request).
  std::unordered_map<std::string, std::optional<auth::Credential>> cache_;
};

// Evaluates the caller's IAM policies: root may do anything; a user's attached managed
// and inline policies apply; an assumed role's policies apply, intersected with the
// session policy passed to AssumeRole (if any). Explicit deny wins over allow.
class IamAuthorizer : public aws::Authorizer {
 public:
  explicit IamAuthorizer(Iam& iam) : iam_(iam) {}

  std::optional<aws::Error> Authorize(
      const aws::Call& call, std::string_view action, std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context) override;

  std::optional<aws::Error> AuthorizeWith(
      const aws::Call& call, const auth::Policy& resource_policy, std::string_view action,
      std::string_view resource,
      const std::map<std::string, std::vector<std::string>>& extra_context) override;

  // The decision alone (STS uses it for AssumeRole; tests use it).
  auth::Decision Decide(const aws::Call& call, std::string_view action, std::string_view resource,
                        const std::map<std::string, std::vector<std::string>>& extra_context);

  // The global condition keys for a call (lower-cased: "aws:username", …) plus `extra`.
  static std::map<std::string, std::vector<std::string>> ConditionContext(
      const aws::Call& call, const std::map<std::string, std::vector<std::string>>& extra);

  void InvalidateAll();
  void InvalidateSession(const std::string& akid);

 private:
  using PolicyList = std::vector<std::shared_ptr<const auth::Policy>>;
  // The identity policies of a user ("u:name") or role ("r:name"); nullptr if it is gone.
  std::shared_ptr<const PolicyList> IdentityPolicies(Iam::Entity entity, const std::string& name);
  // The session policy of an STS session; nullptr if it has none.
  std::shared_ptr<const auth::Policy> SessionPolicy(const std::string& akid, bool* found);

  Iam& iam_;
  std::mutex mu_;
  uint64_t generation_ = 0;
  std::unordered_map<std::string, std::shared_ptr<const PolicyList>> identity_;
  std::unordered_map<std::string, std::shared_ptr<const auth::Policy>> sessions_;
};

}  // namespace iam
