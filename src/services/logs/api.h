// The CloudWatch Logs JSON 1.1 API (`X-Amz-Target: Logs_20140328.<Op>`): decodes and
// validates requests into logs.h types, calls logs::Logs, answers in Logs' JSON shapes and
// error codes. Each operation names its IAM action ("logs:PutLogEvents") and the log group
// ARN it acts on (arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*), so the table authorizes
// before the handler runs.
#pragma once

#include <memory>

#include "aws/service.h"
#include "services/logs/logs.h"

namespace logs {

// `logs` must outlive the service.
std::unique_ptr<aws::Service> MakeLogsService(Logs& logs);

}  // namespace logs
