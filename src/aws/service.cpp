#include "aws/service.h"

namespace aws {

std::optional<Error> Call::Authorize(
    std::string_view action, std::string_view resource,
    const std::map<std::string, std::vector<std::string>>& extra_context) const {
  if (authorizer == nullptr) return std::nullopt;
  return authorizer->Authorize(*this, action, resource, extra_context);
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
