// Who is calling: the identity a verified SigV4 request resolves to, and the credential store
// interface that resolves an access key id to it.
//
// Plain data; copy freely. CredentialProvider is implemented by the IAM/STS services and
// injected by server/ (auth/ sits below services/ and must not include them).
#pragma once

#include <optional>
#include <string>

#include "base/status.h"
#include "base/time.h"

namespace auth {

enum class PrincipalType { kRoot, kUser, kAssumedRole };

struct Principal {
  PrincipalType type = PrincipalType::kRoot;
  std::string account_id;  // "000000000000"
  // arn:aws:iam::ACCT:root | arn:aws:iam::ACCT:user/path/name |
  // arn:aws:sts::ACCT:assumed-role/RoleName/SessionName
  std::string arn;
  // ACCT for root, AIDA... for a user, "AROA...:SessionName" for an assumed role.
  std::string user_id;
  std::string name;          // user name or role name (empty for root)
  std::string session_name;  // assumed role only
  std::string role_arn;      // assumed role only: arn:aws:iam::ACCT:role/path/RoleName
};

// A known credential, as the credential provider returns it.
struct Credential {
  std::string access_key_id, secret_access_key;
  std::string session_token;                   // non-empty for temporary (STS) credentials
  std::optional<base::SystemTime> expiration;  // temporary credentials only
  bool active = true;                          // false: the key exists but is deactivated
  Principal principal;
};

// Resolves access key ids. Implementations must be thread-safe: Verify() calls Lookup from
// any request thread.
class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // NotFound when the access key id is unknown. Any other error means the lookup itself
  // failed (store unavailable, ...) and is reported as AuthError::kCredentialLookupFailed.
  virtual base::Result<Credential> Lookup(const std::string& access_key_id) = 0;
};

}  // namespace auth
