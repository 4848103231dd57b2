// The ECR API (JSON 1.1, X-Amz-Target AmazonEC2ContainerRegistry_V20150921.<Op>, signing
// name "ecr"): repositories, images, auth tokens, tag mutability, lifecycle and repository
// policies, over ecr::Ecr. Each operation is authorized as "ecr:<Op>" on the repository
// ARN (GetAuthorizationToken and DescribeRepositories on "*") before it runs.
#pragma once

#include <memory>

#include "aws/service.h"
#include "services/ecr/ecr.h"

namespace ecr {

// `ecr` must outlive the service.
std::unique_ptr<aws::Service> MakeEcrService(Ecr& ecr);

}  // namespace ecr
