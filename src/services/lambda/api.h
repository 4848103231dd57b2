// The Lambda REST-JSON API (2015-03-31 paths and their later siblings): decodes and
// validates requests into lambda.h types, calls lambda::Lambda, answers in Lambda's JSON
// shapes and error codes. Each route names its IAM action ("lambda:CreateFunction") and
// the function ARN it acts on, so the table authorizes before the handler runs.
#pragma once

#include <memory>

#include "aws/service.h"
#include "services/lambda/async_queue.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"

namespace lambda {

// `lambda` (and `invoker`, `async`, when given) must outlive the service. Without an
// invoker, Invoke answers ServiceException; without `async`, Event invocations run in
// memory only (not durable).
std::unique_ptr<aws::Service> MakeLambdaService(Lambda& lambda, Invoker* invoker = nullptr,
                                                AsyncQueue* async = nullptr);

}  // namespace lambda
