// lambda::EventSourceMappings — CreateEventSourceMapping and its pollers: an SQS queue's
// messages delivered to a function in batches.
//
// Each enabled mapping has pollers (threads) that long-poll the queue through a
// QueueSource (implemented over SQS in server/), invoke the function synchronously with
// AWS's SQS event ({"Records": [...]}) and delete what was processed: the whole batch on
// success; with FunctionResponseTypes ["ReportBatchItemFailures"], all but the
// batchItemFailures the function returns; nothing on a function error (the messages come
// back after their visibility timeout and, past the queue's maxReceiveCount, go to its
// dead-letter queue). A poller that gets a full batch starts another one, up to
// ScalingConfig.MaximumConcurrency (default 5); extra pollers stop after empty polls.
//
// Mappings live in the Store (/lambda/esm/<uuid>); a watch starts and stops pollers, so
// they follow creates, updates and deletes, and resume after a restart.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"
#include "store/store.h"

namespace lambda {

struct QueueMessage {
  std::string message_id, receipt_handle, body, md5_body;
  std::map<std::string, std::string> attributes;  // ApproximateReceiveCount, SentTimestamp…
  struct Attribute {
    std::string data_type, string_value, binary_value;
  };
  std::map<std::string, Attribute> message_attributes;
};

// The queue side (SQS in server/).
class QueueSource {
 public:
  virtual ~QueueSource() = default;
  // Ok if `arn` names a queue that exists; sets *fifo.
  virtual base::Status Check(const std::string& arn, bool* fifo) = 0;
  virtual base::Result<std::vector<QueueMessage>> Receive(const std::string& arn, int max,
                                                          int wait_seconds) = 0;
  virtual base::Status Delete(const std::string& arn, const std::string& receipt_handle) = 0;
};

struct EventSourceMapping {
  std::string uuid;
  std::string event_source_arn;
  std::string function_name, qualifier;  // the function ARN's parts
  bool enabled = true;
  int batch_size = 10;
  int batching_window = 0;  // MaximumBatchingWindowInSeconds
  bool report_batch_item_failures = false;
  int max_concurrency = 5;
  double last_modified = 0;  // epoch seconds
  std::string state = "Enabled";
};

struct EsmOptions {
  Lambda* lambda = nullptr;
  Invoker* invoker = nullptr;
  store::Store* store = nullptr;
  QueueSource* queues = nullptr;
  std::string region = "us-east-1";
};

class EventSourceMappings {
 public:
  virtual ~EventSourceMappings() = default;
  // InvalidArgument (AWS's wording), NotFound (function).
  virtual base::Result<EventSourceMapping> Create(EventSourceMapping m) = 0;
  virtual base::Result<EventSourceMapping> Get(const std::string& uuid) = 0;
  virtual base::Result<std::vector<EventSourceMapping>> List(const std::string& source_arn,
                                                             const std::string& function) = 0;
  // Fields set in `update` replace the mapping's.
  struct Update {
    std::optional<std::string> function_name, qualifier;
    std::optional<bool> enabled;
    std::optional<int> batch_size, batching_window, max_concurrency;
    std::optional<bool> report_batch_item_failures;
  };
  virtual base::Result<EventSourceMapping> Change(const std::string& uuid, const Update& u) = 0;
  virtual base::Result<EventSourceMapping> Delete(const std::string& uuid) = 0;
  virtual void Shutdown() = 0;
};

base::Result<std::unique_ptr<EventSourceMappings>> StartEventSourceMappings(
    const EsmOptions& options);

}  // namespace lambda
