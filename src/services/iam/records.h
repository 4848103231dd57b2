// Internal to services/iam and services/sts: how IAM records are stored (JSON values
// under "/iam/…" and "/sts/sessions/…"), id and name formats, input validation and the
// AWS-managed policies built in. Not part of IAM's public interface.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "services/iam/iam.h"

namespace iam::internal {

// Store keys. Names are case-insensitive in IAM, so keys use the lower-cased name.
inline constexpr std::string_view kIamPrefix = "/iam/";
inline constexpr std::string_view kUsersPrefix = "/iam/users/";
inline constexpr std::string_view kRolesPrefix = "/iam/roles/";
inline constexpr std::string_view kPoliciesPrefix = "/iam/policies/";
inline constexpr std::string_view kKeysPrefix = "/iam/keys/";  // AKID → user key
inline constexpr std::string_view kSessionsPrefix = "/sts/sessions/";

std::string UserKey(std::string_view name);
std::string RoleKey(std::string_view name);
std::string PolicyKey(std::string_view name);
std::string AccessKeyIndexKey(std::string_view key_id);
std::string SessionKey(std::string_view key_id);

std::string Encode(const User& u);
std::string Encode(const Role& r);
std::string Encode(const ManagedPolicy& p);
std::string Encode(const Session& s);
base::Status Decode(std::string_view json, User* u);
base::Status Decode(std::string_view json, Role* r);
base::Status Decode(std::string_view json, ManagedPolicy* p);
base::Status Decode(std::string_view json, Session* s);

// "AIDA" + 17 upper-case alphanumerics, as AWS shapes unique ids.
std::string NewUniqueId(std::string_view prefix);
// "AKIA"/"ASIA" + 16 upper-case alphanumerics.
std::string NewAccessKeyId(std::string_view prefix);
std::string NewSecretKey();     // 40 characters of [A-Za-z0-9+/]
std::string NewSessionToken();  // long, base64

// Validation, with AWS's ValidationError wording; `field` is the camel-case member name
// ("userName").
base::Status ValidateName(std::string_view value, std::string_view field, size_t max_len);
base::Status ValidatePath(std::string_view value, std::string_view field = "path");
base::Status ValidateTags(const std::vector<Tag>& tags);

// Policy documents. Failures are MalformedPolicy statuses (see IsMalformedPolicy).
enum class DocumentKind { kIdentity, kTrust, kSession };
base::Status ValidatePolicyDocument(std::string_view document, DocumentKind kind);

// A parsed ARN: arn:partition:service:region:account:resource.
struct Arn {
  std::string partition, service, region, account, resource;
};
// nullopt unless it has six parts and non-empty partition, service and resource.
std::optional<Arn> ParseArn(std::string_view arn);

// Built-in AWS managed policies (AdministratorAccess, ReadOnlyAccess, …).
const std::vector<ManagedPolicy>& AwsManagedPolicies();
const ManagedPolicy* FindAwsManagedPolicy(std::string_view arn);

}  // namespace iam::internal
