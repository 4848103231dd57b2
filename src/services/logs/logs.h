// logs::Logs — CloudWatch Logs: log groups, log streams and their events, kept in the Store.
//
// Two ways in:
//  - the API operations (api.cpp decodes JSON 1.1 into the plain types below): every call
//    is synchronous, and an acknowledged PutLogEvents is durable (one Store Txn, fsynced);
//  - the in-process Writer (Append/Flush), used by Lambda and ECS for sandbox output:
//    Append only queues; a background thread commits everything queued every
//    `flush_interval` (or sooner when `flush_bytes` are queued) as one Store Txn.
//
// Store layout (values are JSON records private to this module; names cannot contain ':'
// — group names are [.-_/#A-Za-z0-9]+, stream names exclude ':' and '*' — so ':' separates
// them unambiguously and every group's and stream's keys form one prefix):
//   /logs/groups/<group>                         group record (creation, retention, tags)
//   /logs/streams/<group>:<stream>               stream record (timestamps, bytes, next seq)
//   /logs/events/<group>:<stream>:<%020d seq>    one batch: up to 10,000 events / ~1 MB
// A batch is what one PutLogEvents call (or one writer flush, per stream) stored. Its Txn
// also rewrites the stream record, guarded by a compare on the record's mod revision, so
// the per-stream metadata stays exact without one key per event. Retention deletes whole
// batches whose newest event is older than the group's retention (a background sweep).
//
// Errors (mapped to AWS codes in api.cpp): InvalidArgument = InvalidParameterException,
// NotFound = ResourceNotFoundException (message says group or stream), AlreadyExists =
// ResourceAlreadyExistsException, Aborted = concurrent writers kept winning.
//
// Threading: every method is safe to call from any thread. Writes (PutLogEvents, writer
// flushes, deletes, the retention sweep) are serialized inside; reads are not.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/time.h"
#include "services/logs/writer.h"
#include "store/store.h"

namespace logs {

struct Options {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  base::Clock* clock = nullptr;  // nullptr = base::SystemClock()
  // Writer: how often queued events are committed, and how many queued bytes trigger an
  // early flush. Past `max_queued_bytes` Append drops events (and counts them).
  std::chrono::milliseconds flush_interval{150};
  size_t flush_bytes = 512 * 1024;
  size_t max_queued_bytes = 64 * 1024 * 1024;
  // How often expired batches are deleted (groups with a retention policy). 0 = never
  // (tests call SweepRetention themselves).
  std::chrono::milliseconds retention_sweep_interval{std::chrono::minutes(10)};
};

// AWS's limits, shared by the API and the tests.
inline constexpr size_t kMaxBatchBytes = 1048576;  // sum of (message bytes + 26)
inline constexpr size_t kEventOverheadBytes = 26;
inline constexpr size_t kMaxBatchEvents = 10000;
inline constexpr size_t kMaxEventBytes = 262144;  // message bytes + 26
inline constexpr int64_t kMaxFutureMs = 2 * 3600 * 1000;
inline constexpr int64_t kMaxAgeMs = 14LL * 24 * 3600 * 1000;
inline constexpr int64_t kMaxBatchSpanMs = 24LL * 3600 * 1000;
inline constexpr size_t kMaxNameLength = 512;
inline constexpr int kMaxGetEvents = 10000;
inline constexpr size_t kMaxGetBytes = 1048576;

// One stored event, as the read APIs return it.
struct StoredEvent {
  int64_t timestamp = 0;
  int64_t ingestion_time = 0;
  std::string message;
  std::string stream;    // log stream name (FilterLogEvents)
  std::string event_id;  // stable and unique within the group (FilterLogEvents)
};

struct LogGroup {
  std::string name;
  int64_t creation_time = 0;
  std::optional<int> retention_days;
  int64_t stored_bytes = 0;
  std::map<std::string, std::string> tags;
};

struct LogStream {
  std::string name;
  int64_t creation_time = 0;
  std::optional<int64_t> first_event_timestamp, last_event_timestamp, last_ingestion_time;
  int64_t stored_bytes = 0;
  int64_t next_seq = 1;  // the next batch's sequence number
};

template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_token;  // empty = last page
};

struct DescribeGroupsRequest {
  std::string prefix;
  std::string pattern;  // case-sensitive substring; exclusive with prefix
  std::string next_token;
  int limit = 50;
};

struct DescribeStreamsRequest {
  std::string group;
  std::string prefix;
  bool order_by_last_event_time = false;  // else by name
  bool descending = false;
  std::string next_token;
  int limit = 50;
};

struct RejectedInfo {
  std::optional<int> too_new_start_index;  // first index rejected as > 2 h in the future
  std::optional<int> too_old_end_index;    // last index rejected as older than 14 days
  std::optional<int> expired_end_index;    // last index older than the group's retention
};

struct GetEventsRequest {
  std::string group, stream;
  std::optional<int64_t> start_time, end_time;  // [start, end) in ms
  std::string next_token;                       // "f/<56 digits>" or "b/<56 digits>"
  int limit = kMaxGetEvents;
  bool start_from_head = false;
};

struct GetEventsResult {
  std::vector<StoredEvent> events;
  std::string next_forward_token, next_backward_token;
};

struct FilterEventsRequest {
  std::string group;
  std::vector<std::string> stream_names;  // exclusive with stream_prefix
  std::string stream_prefix;
  std::optional<int64_t> start_time, end_time;
  std::string filter_pattern;
  std::string next_token;
  int limit = kMaxGetEvents;
};

// The valid PutRetentionPolicy values, in AWS's order.
const std::vector<int>& RetentionDays();

class Logs : public Writer {
 public:
  ~Logs() override = default;

  virtual const Options& options() const = 0;
  // arn:aws:logs:REGION:ACCOUNT:log-group:NAME (with_star: plus ":*", as DescribeLogGroups'
  // `arn` and IAM resources use it).
  virtual std::string GroupArn(const std::string& group, bool with_star) const = 0;

  virtual base::Status CreateLogGroup(const std::string& name,
                                      const std::map<std::string, std::string>& tags) = 0;
  // Deletes the group, its streams and events.
  virtual base::Status DeleteLogGroup(const std::string& name) = 0;
  virtual base::Result<Page<LogGroup>> DescribeLogGroups(const DescribeGroupsRequest& req) = 0;
  virtual base::Result<LogGroup> GetLogGroup(const std::string& name) = 0;

  virtual base::Status CreateLogStream(const std::string& group, const std::string& stream) = 0;
  virtual base::Status DeleteLogStream(const std::string& group, const std::string& stream) = 0;
  virtual base::Result<Page<LogStream>> DescribeLogStreams(const DescribeStreamsRequest& req) = 0;

  // Validates as AWS does (the api layer checks counts and sizes first; this checks them
  // again), stores the accepted events as one batch and reports the rejected ones. The
  // group and the stream must exist.
  virtual base::Result<RejectedInfo> PutLogEvents(const std::string& group,
                                                  const std::string& stream,
                                                  const std::vector<Event>& events) = 0;
  virtual base::Result<GetEventsResult> GetLogEvents(const GetEventsRequest& req) = 0;
  virtual base::Result<Page<StoredEvent>> FilterLogEvents(const FilterEventsRequest& req) = 0;

  virtual base::Status PutRetentionPolicy(const std::string& group, int days) = 0;
  virtual base::Status DeleteRetentionPolicy(const std::string& group) = 0;
  // Deletes every batch whose newest event is past its group's retention. Returns the
  // number of batches deleted.
  virtual base::Result<int64_t> SweepRetention() = 0;

  virtual base::Status TagLogGroup(const std::string& group,
                                   const std::map<std::string, std::string>& tags) = 0;
  virtual base::Status UntagLogGroup(const std::string& group,
                                     const std::vector<std::string>& keys) = 0;

  // Events Append dropped because the queue was full or the names were invalid.
  virtual int64_t dropped_events() const = 0;
};

// Opens the service over `store`, which must outlive it, and starts the writer's flush
// thread and the retention sweep. Destruction flushes what is queued, then stops them.
base::Result<std::unique_ptr<Logs>> OpenLogs(store::Store* store, const Options& options);

// Filter patterns (FilterLogEvents): space-separated terms that must all occur, "quoted
// phrases", `?term`s of which at least one must occur, and `-term`s that must not. Matching
// is case-sensitive substring matching. JSON (`{ … }`) and space-delimited (`[ … ]`)
// patterns are InvalidArgument (not supported yet).
class FilterPattern {
 public:
  static base::Result<FilterPattern> Parse(const std::string& pattern);
  bool Matches(std::string_view message) const;

 private:
  std::vector<std::string> all_, any_, none_;
};

}  // namespace logs
