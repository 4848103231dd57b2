// sqs::Queues — Amazon SQS queues: standard and FIFO, durable messages, visibility
// timeouts, delays, long polling, retention, dead-letter redrive.
//
// Every acknowledged send is in the Store before the answer (one key per message); deletes
// and receive counts are written through too, so after kill -9 every message that was not
// deleted is there again with its receive count (for maxReceiveCount) and the time it
// becomes visible. What lives only in memory: receipt handles' tokens (a handle from before
// a restart no longer deletes; the message comes back when its visibility timeout ends —
// delivery is at least once, as SQS's), FIFO deduplication ids (a 5-minute window) and
// long-polling waiters.
//
// Store layout: /sqs/q/<name> → queue record (attributes, tags, created);
//               /sqs/m/<name>/<%020 seq> → message record.
//
// Threading: all methods are thread-safe. Receive's callback runs on the calling thread
// or on the timer thread (long polls), never under the lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"
#include "store/store.h"

namespace sqs {

struct Options {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  std::string endpoint = "http://127.0.0.1:4566";  // QueueUrl = endpoint/account/name
  base::Clock* clock = nullptr;                    // nullptr = base::SystemClock()
};

struct MessageAttribute {
  std::string data_type;     // "String", "Number", "Binary", "String.custom", ...
  std::string string_value;  // String and Number types
  std::string binary_value;  // raw bytes (Binary types)
  bool operator==(const MessageAttribute&) const = default;
};
using MessageAttributes = std::map<std::string, MessageAttribute>;

struct SendRequest {
  std::string body;
  int delay_seconds = -1;  // -1 = the queue's DelaySeconds
  MessageAttributes attributes;
  std::string group_id, dedup_id;  // FIFO
};

struct SentMessage {
  std::string message_id, md5_body, md5_attributes, sequence_number;
};

struct ReceiveRequest {
  int max_messages = 1;                      // 1..10
  int visibility_timeout = -1;               // -1 = the queue's
  int wait_seconds = -1;                     // -1 = the queue's ReceiveMessageWaitTimeSeconds
  std::vector<std::string> attribute_names;  // system attributes ("All", "SentTimestamp"…)
  std::vector<std::string> message_attribute_names;  // "All", names or "prefix.*"
};

struct ReceivedMessage {
  std::string message_id, receipt_handle, body, md5_body, md5_attributes;
  std::map<std::string, std::string> attributes;  // system attributes asked for
  MessageAttributes message_attributes;           // message attributes asked for
};

// MD5 of the attributes, as SQS computes MD5OfMessageAttributes (hex; "" when none).
std::string AttributesMd5(const MessageAttributes& attributes);
std::string Md5Hex(const std::string& data);

class Queues {
 public:
  virtual ~Queues() = default;

  virtual std::string QueueUrl(const std::string& name) const = 0;
  virtual std::string QueueArn(const std::string& name) const = 0;
  // The queue name in a QueueUrl or ARN of this account and region; "" if not one.
  virtual std::string NameFromUrl(const std::string& url) const = 0;
  virtual std::string NameFromArn(const std::string& arn) const = 0;

  // Errors: InvalidArgument (message = SQS's wording; the API maps codes by prefix
  // "InvalidAttributeName:" / "InvalidAttributeValue:" / "InvalidParameterValue:"),
  // AlreadyExists (QueueAlreadyExists), NotFound (NonExistentQueue).
  virtual base::Result<std::string> CreateQueue(const std::string& name,
                                                const std::map<std::string, std::string>& attrs,
                                                const std::map<std::string, std::string>& tags) = 0;
  virtual base::Status DeleteQueue(const std::string& name) = 0;
  virtual base::Result<std::vector<std::string>> ListQueues(const std::string& prefix) = 0;
  virtual bool Exists(const std::string& name) = 0;
  // All attributes when `names` holds "All".
  virtual base::Result<std::map<std::string, std::string>> GetAttributes(
      const std::string& name, const std::vector<std::string>& names) = 0;
  virtual base::Status SetAttributes(const std::string& name,
                                     const std::map<std::string, std::string>& attrs) = 0;
  virtual base::Result<std::map<std::string, std::string>> ListTags(const std::string& name) = 0;
  virtual base::Status Tag(const std::string& name,
                           const std::map<std::string, std::string>& tags) = 0;
  virtual base::Status Untag(const std::string& name, const std::vector<std::string>& keys) = 0;

  virtual base::Result<SentMessage> Send(const std::string& name, const SendRequest& req) = 0;
  // Answers with up to max_messages messages, at once or (long poll) when one arrives or
  // the wait ends.
  virtual void Receive(const std::string& name, const ReceiveRequest& req,
                       std::function<void(base::Result<std::vector<ReceivedMessage>>)> done) = 0;
  // InvalidArgument "ReceiptHandleIsInvalid: ..." for a malformed handle; deleting a
  // message that is already gone succeeds (as SQS).
  virtual base::Status Delete(const std::string& name, const std::string& receipt_handle) = 0;
  // FailedPrecondition (MessageNotInflight) when the message is not in flight.
  virtual base::Status ChangeVisibility(const std::string& name, const std::string& receipt_handle,
                                        int seconds) = 0;
  virtual base::Status Purge(const std::string& name) = 0;

  virtual void Shutdown() = 0;
};

base::Result<std::unique_ptr<Queues>> OpenQueues(store::Store* store, const Options& options);

}  // namespace sqs
