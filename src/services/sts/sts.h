// STS (Query protocol, xmlns https://sts.amazonaws.com/doc/2011-06-15/): GetCallerIdentity,
// AssumeRole, GetSessionToken, GetAccessKeyInfo. Sessions are kept by iam::Iam (they are
// credentials its CredentialProvider answers for); this module decides who may get one.
// Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "aws/service.h"
#include "base/status.h"
#include "services/iam/iam.h"

namespace sts {

// The STS Query API over `iam` (which must outlive it).
std::unique_ptr<aws::Service> MakeStsService(iam::Iam& iam);

// For platform services that run code as a role (Lambda functions, ECS tasks): temporary
// credentials for `role_arn` on behalf of `service_principal` ("lambda.amazonaws.com"),
// when the role's trust policy allows that service principal sts:AssumeRole.
// NotFound if the role does not exist, PermissionDenied if its trust policy says no.
base::Result<iam::Session> AssumeRoleForService(iam::Iam& iam, std::string_view role_arn,
                                                std::string_view service_principal,
                                                std::string_view session_name,
                                                std::chrono::seconds duration);

}  // namespace sts
