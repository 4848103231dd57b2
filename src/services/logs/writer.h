// logs::Writer — the small interface through which the platform itself logs: Lambda (and
// later ECS) send each sandbox's output here, to log group /aws/lambda/<function> and stream
// YYYY/MM/DD/[$LATEST]<32 hex>. Include this header, not logs.h; server/ passes the
// logs::Logs instance (which implements Writer) and keeps it alive longer than its users.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace logs {

// One log event as a writer or PutLogEvents gives it.
struct Event {
  int64_t timestamp = 0;  // ms since the epoch
  std::string message;
};

// The in-process writer interface (Lambda, ECS): cheap, non-blocking, fire and forget.
//
// Append queues `events` for `group`/`stream` and returns at once (one mutex; the strings
// are moved). Each event's ingestion time is the time of the Append call. A background
// thread commits what is queued every logs::Options::flush_interval (150 ms), or sooner
// once flush_bytes (512 KB) are queued, in Store Txns of at most 4 MB, creating the group
// and the stream when missing. Events need not be in time order (reads sort them).
// PutLogEvents' age limits do not apply (the platform is trusted); a message over 256 KB
// becomes several events, a negative timestamp becomes 0, and events for invalid names are dropped
// (and logged). When the store cannot keep up and max_queued_bytes (64 MB) are queued,
// new events are dropped and counted: a logging sandbox never waits on the store.
// Queued events are lost on a crash (at most ~one flush interval); nothing else is.
//
// Flush commits everything appended before the call and returns once it is durable, or
// the Store's error (those events are then dropped). Blocks for the commits.
//
// Thread-safe: any number of threads may Append and Flush concurrently.
class Writer {
 public:
  virtual ~Writer() = default;
  virtual void Append(const std::string& group, const std::string& stream,
                      std::vector<Event> events) = 0;
  virtual base::Status Flush() = 0;
};

}  // namespace logs
