#include "aws/service.h"

namespace aws {

std::optional<Error> Call::Authorize(
    std::string_view action, std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) const {
  if (anonymous) {
    return MakeError(403, protocol == Protocol::kRestXml ? "AccessDenied" : "AccessDeniedException",
                     "Access Denied");
  }
  if (authorizer == nullptr) return std::nullopt;
  return authorizer->Authorize(*this, action, resource, extra_context);
}

std::optional<Error> Call::AuthorizeWith(
    const auth::Policy* resource_policy, std::string_view action, std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) const {
  if (resource_policy == nullptr) return Authorize(action, resource, extra_context);
  if (authorizer != nullptr)
    return authorizer->AuthorizeWith(*this, *resource_policy, action, resource, extra_context);
  // No authorizer (tests, dev mode): signed callers may do anything; anonymous ones what the
  // resource policy allows.
  if (!anonymous) return std::nullopt;
  auth::AuthzRequest r;
  r.action = std::string(action);
  r.resource = std::string(resource);
  for (const auto& [k, v] : extra_context) r.context[k] = v;
  if (auth::EvaluateResourcePolicy(*resource_policy, r) == auth::Decision::kAllow)
    return std::nullopt;
  return MakeError(403, "AccessDenied", "Access Denied");
}

std::string AccessDeniedMessage(const Call& call, std::string_view action,
                                std::string_view resource, bool explicit_deny) {
  std::string m = "User: " + call.principal.arn +
                  " is not authorized to perform: " + std::string(action) +
                  " on resource: " + std::string(resource);
  if (explicit_deny)
    m += " with an explicit deny in an identity-based policy";
  else
    m += " because no identity-based policy allows the " + std::string(action) + " action";
  return m;
}

}  // namespace aws
