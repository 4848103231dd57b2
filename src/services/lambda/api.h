// The Lambda REST-JSON API (2015-03-31 paths and their later siblings): decodes and
// validates requests into lambda.h types, calls lambda::Lambda, answers in Lambda's JSON
// shapes and error codes. Each route names its IAM action ("lambda:CreateFunction") and
// the function ARN it acts on, so the table authorizes before the handler runs.
#pragma once

#include <functional>
#include <memory>

#include "aws/service.h"
#include "services/lambda/async_queue.h"
#include "services/lambda/esm.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"

namespace lambda {

// `lambda` (and `invoker`, `async`, when given) must outlive the service. Without an
// invoker, Invoke answers ServiceException; without `async`, Event invocations run in
// memory only (not durable).
// `url_host` completes function URLs: http://<id>.lambda-url.<region>.<url_host>/.
// Reads a deployment package from S3 on behalf of the caller (Code.S3Bucket/S3Key/
// S3ObjectVersion, layer Content too). Errors carry S3's code as "Code: message"
// (NoSuchBucket, NoSuchKey, AccessDenied, EntityTooLarge …). Implemented in server/.
using S3CodeFetcher = std::function<base::Result<std::string>(
    const aws::Call& caller, const std::string& bucket, const std::string& key,
    const std::string& version)>;

std::unique_ptr<aws::Service> MakeLambdaService(Lambda& lambda, Invoker* invoker = nullptr,
                                                AsyncQueue* async = nullptr,
                                                const std::string& url_host = "localhost:4566",
                                                EventSourceMappings* esm = nullptr,
                                                S3CodeFetcher fetch_code = nullptr);

}  // namespace lambda
