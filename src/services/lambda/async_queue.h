// lambda::AsyncQueue — asynchronous invocation (InvocationType=Event), durably.
//
// Enqueue() writes the event to the Store and acknowledges (202) only after the commit, so
// an accepted event survives kill -9. Concurrent enqueues share one commit (a writer thread
// batches them). A dispatcher runs queued events through the Invoker with Lambda's retry
// policy:
//   - a function error (X-Amz-Function-Error) is retried MaximumRetryAttempts times (default
//     2) after `retry_delay`, then 2 × `retry_delay` (AWS: 1 and 2 minutes);
//   - throttles and system errors are retried with exponential backoff (`throttle_delay`
//     doubling up to `max_throttle_delay`) until the event is MaximumEventAgeInSeconds old
//     (default 6 hours);
//   - a function that no longer exists drops its events (logged).
// When an event is done, its invocation record (AWS's destination format: version 1.0,
// requestContext with condition Success / RetriesExhausted / EventAgeExceeded,
// requestPayload, responseContext, responsePayload) goes to the qualifier's OnSuccess or
// OnFailure destination from PutFunctionEventInvokeConfig, and a failed event's original
// payload goes to the function's dead-letter target. A function destination is itself an
// asynchronous invocation, queued in the same Store transaction that retires the event
// (nothing lost, nothing doubled); other destinations go through a DestinationSink, called
// before the event is retired (at least once).
//
// An event that was running when the server died runs again after restart: delivery is at
// least once, as AWS's. Store layout: /lambda/async/q/<due-ordered id> → JSON record.
//
// Threading: all methods are thread-safe; `done` callbacks run on internal threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"
#include "store/store.h"

namespace lambda {

// Delivers invocation records to destinations other than functions (queues, later topics
// and buses). Send must make the message durable before returning Ok. Check answers
// whether an ARN is a destination this sink can deliver to (and that it exists).
class DestinationSink {
 public:
  virtual ~DestinationSink() = default;
  virtual base::Status Check(const std::string& arn) = 0;
  virtual base::Status Send(const std::string& arn, const std::string& body) = 0;
};

struct AsyncQueueOptions {
  Lambda* lambda = nullptr;    // event invoke configs, ARNs
  Invoker* invoker = nullptr;  // runs the events
  store::Store* store = nullptr;
  DestinationSink* sink = nullptr;  // may be null: only function destinations then
  std::chrono::milliseconds retry_delay{std::chrono::minutes(1)};
  std::chrono::milliseconds throttle_delay{std::chrono::seconds(1)};
  std::chrono::milliseconds max_throttle_delay{std::chrono::minutes(5)};
  int max_in_flight = 1000;  // invocations the dispatcher runs at once
  // ... and per function: a backlog of one function scales it up to this many concurrent
  // environments (AWS scales further; one machine rarely should).
  int max_in_flight_per_function = 64;
  size_t max_batch_bytes = 8 << 20;  // per commit of the writer
};

struct AsyncStats {
  uint64_t accepted = 0;   // events acknowledged with 202
  uint64_t succeeded = 0;  // events that ran without error
  uint64_t failed = 0;     // events given up (retries exhausted, too old)
  uint64_t retried = 0;    // attempts after the first
  uint64_t dropped = 0;    // events of functions that no longer exist
  int64_t queued = 0;      // events in the queue now (including running ones)
  int64_t in_flight = 0;   // running now
};

class AsyncQueue {
 public:
  virtual ~AsyncQueue() = default;
  // Queues `request` (type Event). `done` gets the request id once the event is durable,
  // or NotFound (function/qualifier), InvalidArgument ("<size> <limit>" as the Invoker's),
  // Unavailable (shutting down) or the store's error.
  virtual void Enqueue(InvokeRequest request,
                       std::function<void(base::Result<std::string>)> done) = 0;
  // Whether `arn` may be a destination of function `name` (InvalidArgument with AWS's
  // message if not).
  virtual base::Status CheckDestination(const std::string& name, const std::string& arn) = 0;
  virtual AsyncStats Stats() const = 0;
  // Stops dispatching; queued events stay in the store for the next start.
  virtual void Shutdown() = 0;
};

// Loads the queued events from the store and starts the writer and the dispatcher.
base::Result<std::unique_ptr<AsyncQueue>> StartAsyncQueue(const AsyncQueueOptions& options);

}  // namespace lambda
