// The SQS API in both of its wire protocols: the Query protocol (form-encoded Action=…,
// XML answers — what Debian's boto3 1.26 and aws CLI 2.9 speak) and the JSON 1.0 protocol
// (X-Amz-Target: AmazonSQS.*, what newer SDKs speak, with the x-amzn-query-error header
// that maps errors back to the Query codes). Both decode into one JSON shape and share the
// handlers; every operation names its IAM action and the queue's ARN, authorized before it
// runs. ReceiveMessage long-polls without holding an I/O thread.
#pragma once

#include <memory>

#include "aws/service.h"
#include "services/sqs/sqs.h"

namespace sqs {

// `queues` must outlive the service.
std::unique_ptr<aws::Service> MakeSqsService(Queues& queues);

}  // namespace sqs
