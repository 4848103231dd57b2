#include "services/logs/logs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <tuple>

#include "base/strings.h"

namespace logs {

namespace {

using nlohmann::json;

constexpr int kMaxAttempts = 8;  // compare failures from concurrent writers before Aborted

constexpr size_t kMaxFlushTxnBytes = 4 * 1024 * 1024;  // writer: events per Store Txn

constexpr char kNoGroup[] = "The specified log group does not exist.";
constexpr char kNoStream[] = "The specified log stream does not exist.";
constexpr char kBadToken[] = "The specified nextToken is invalid.";

const std::string kGroupsPrefix = "/logs/groups/";
const std::string kStreamsPrefix = "/logs/streams/";
const std::string kEventsPrefix = "/logs/events/";

std::string GroupKey(const std::string& g) { return kGroupsPrefix + g; }
std::string StreamsPrefix(const std::string& g) { return kStreamsPrefix + g + ":"; }
std::string StreamKey(const std::string& g, const std::string& s) { return StreamsPrefix(g) + s; }
std::string GroupEventsPrefix(const std::string& g) { return kEventsPrefix + g + ":"; }
std::string EventsPrefix(const std::string& g, const std::string& s) {
  return GroupEventsPrefix(g) + s + ":";
}
std::string Digits(int64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(v));
  return buf;
}
std::string BatchKey(const std::string& g, const std::string& s, int64_t seq) {
  return EventsPrefix(g, s) + Digits(seq, 20);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

base::Result<json> Parse(const std::string& value, const std::string& key) {
  json j = json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return base::Corruption("logs: record " + key + " is not a JSON object");
  return j;
}

int64_t GetInt(const json& j, const char* k, int64_t def = 0) {
  auto it = j.find(k);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : def;
}
std::optional<int64_t> GetOptInt(const json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

// ---- records ----

json GroupToJson(const LogGroup& g) {
  json j{{"name", g.name}, {"created", g.creation_time}, {"tags", g.tags}};
  if (g.retention_days) j["retention"] = *g.retention_days;
  return j;
}

base::Result<LogGroup> GroupFromKv(const store::KeyValue& kv) {
  ASSIGN_OR_RETURN(json j, Parse(kv.value, kv.key));
  LogGroup g;
  g.name = kv.key.substr(kGroupsPrefix.size());
  g.creation_time = GetInt(j, "created");
  if (auto r = GetOptInt(j, "retention")) g.retention_days = static_cast<int>(*r);
  if (auto it = j.find("tags"); it != j.end() && it->is_object())
    for (auto& [k, v] : it->items())
      if (v.is_string()) g.tags[k] = v.get<std::string>();
  return g;
}

json StreamToJson(const LogStream& s) {
  json j{{"created", s.creation_time}, {"bytes", s.stored_bytes}, {"seq", s.next_seq}};
  if (s.first_event_timestamp) j["first"] = *s.first_event_timestamp;
  if (s.last_event_timestamp) j["last"] = *s.last_event_timestamp;
  if (s.last_ingestion_time) j["ingest"] = *s.last_ingestion_time;
  return j;
}

base::Result<LogStream> StreamFromKv(const store::KeyValue& kv, size_t prefix_len) {
  ASSIGN_OR_RETURN(json j, Parse(kv.value, kv.key));
  LogStream s;
  s.name = kv.key.substr(prefix_len);
  s.creation_time = GetInt(j, "created");
  s.stored_bytes = GetInt(j, "bytes");
  s.next_seq = GetInt(j, "seq", 1);
  s.first_event_timestamp = GetOptInt(j, "first");
  s.last_event_timestamp = GetOptInt(j, "last");
  s.last_ingestion_time = GetOptInt(j, "ingest");
  return s;
}

// One event inside a batch record.
struct Row {
  int64_t timestamp = 0;
  int64_t ingestion_time = 0;
  std::string message;
};

size_t RowBytes(const Row& r) { return r.message.size() + kEventOverheadBytes; }

struct Batch {
  int64_t lo = 0, hi = 0, bytes = 0;
  std::vector<Row> rows;
};

// A batch value is a one-line header "<lo> <hi> <bytes>\n" (oldest and newest timestamp,
// stored bytes), so reads and the retention sweep can skip a batch without parsing it, then
// a JSON array of [timestamp, ingestion_time, message].
std::string BatchToValue(const std::vector<Row>& rows, size_t begin, size_t end, int64_t* lo,
                         int64_t* hi, int64_t* bytes) {
  json e = json::array();
  *lo = rows[begin].timestamp;
  *hi = rows[begin].timestamp;
  *bytes = 0;
  for (size_t i = begin; i < end; ++i) {
    const Row& r = rows[i];
    *lo = std::min(*lo, r.timestamp);
    *hi = std::max(*hi, r.timestamp);
    *bytes += static_cast<int64_t>(RowBytes(r));
    e.push_back(json::array({r.timestamp, r.ingestion_time, r.message}));
  }
  return std::to_string(*lo) + " " + std::to_string(*hi) + " " + std::to_string(*bytes) + "\n" +
         Dump(e);
}

// Reads the header; returns the offset of the rows, or nullopt when malformed.
std::optional<size_t> BatchHeader(const std::string& value, Batch* b) {
  size_t nl = value.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  std::vector<std::string_view> parts = base::Split(std::string_view(value).substr(0, nl), ' ');
  if (parts.size() != 3) return std::nullopt;
  auto lo = base::ParseInt(parts[0]), hi = base::ParseInt(parts[1]),
       bytes = base::ParseInt(parts[2]);
  if (!lo || !hi || !bytes) return std::nullopt;
  b->lo = *lo;
  b->hi = *hi;
  b->bytes = *bytes;
  return nl + 1;
}

base::Result<Batch> BatchHeaderFromKv(const store::KeyValue& kv) {
  Batch b;
  if (!BatchHeader(kv.value, &b)) return base::Corruption("logs: batch " + kv.key);
  return b;
}

base::Result<Batch> BatchFromKv(const store::KeyValue& kv) {
  Batch b;
  auto offset = BatchHeader(kv.value, &b);
  if (!offset) return base::Corruption("logs: batch " + kv.key);
  json j = json::parse(std::string_view(kv.value).substr(*offset), nullptr,
                       /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) return base::Corruption("logs: batch " + kv.key);
  b.rows.reserve(j.size());
  for (json& e : j) {
    if (!e.is_array() || e.size() != 3 || !e[0].is_number_integer() || !e[1].is_number_integer() ||
        !e[2].is_string())
      return base::Corruption("logs: batch " + kv.key);
    b.rows.push_back({e[0].get<int64_t>(), e[1].get<int64_t>(), e[2].get_ref<std::string&>()});
  }
  return b;
}

int64_t SeqOfKey(const std::string& key) {
  size_t p = key.rfind(':');
  auto v = base::ParseInt(std::string_view(key).substr(p + 1));
  return v ? *v : 0;
}

// ---- validation ----

bool ValidGroupName(const std::string& n) {
  if (n.empty() || n.size() > kMaxNameLength) return false;
  for (char c : n) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '/' || c == '#';
    if (!ok) return false;
  }
  return true;
}
bool ValidStreamName(const std::string& n) {
  return !n.empty() && n.size() <= kMaxNameLength && n.find_first_of(":*") == std::string::npos;
}

base::Status CheckGroupName(const std::string& n, const char* field = "logGroupName") {
  if (n.size() > kMaxNameLength)
    return base::InvalidArgument(
        "Invalid LogGroup or LogStream, both must have length less than or equal to 512.");
  if (!ValidGroupName(n))
    return base::InvalidArgument(std::string("1 validation error detected: Value '") + n +
                                 "' at '" + field +
                                 "' failed to satisfy constraint: Member must satisfy regular "
                                 "expression pattern: [\\.\\-_/#A-Za-z0-9]+");
  return base::Status::Ok();
}
base::Status CheckStreamName(const std::string& n) {
  if (n.size() > kMaxNameLength)
    return base::InvalidArgument(
        "Invalid LogGroup or LogStream, both must have length less than or equal to 512.");
  if (!ValidStreamName(n))
    return base::InvalidArgument("1 validation error detected: Value '" + n +
                                 "' at 'logStreamName' failed to satisfy constraint: Member must "
                                 "satisfy regular expression pattern: [^:*]*");
  return base::Status::Ok();
}

// ---- tokens ----

// GetLogEvents' position of an event: (timestamp, batch sequence, index in batch), as
// AWS's token shape: "f/" or "b/" and 56 digits.
using Position = std::tuple<int64_t, int64_t, int64_t>;

std::string PositionToken(char dir, const Position& p) {
  return std::string(1, dir) + "/" + Digits(std::get<0>(p), 20) + Digits(std::get<1>(p), 20) +
         Digits(std::get<2>(p), 16);
}

std::optional<std::pair<char, Position>> ParsePositionToken(const std::string& t) {
  if (t.size() != 58 || (t[0] != 'f' && t[0] != 'b') || t[1] != '/') return std::nullopt;
  for (size_t i = 2; i < t.size(); ++i)
    if (t[i] < '0' || t[i] > '9') return std::nullopt;
  auto a = base::ParseInt(std::string_view(t).substr(2, 20));
  auto b = base::ParseInt(std::string_view(t).substr(22, 20));
  auto c = base::ParseInt(std::string_view(t).substr(42, 16));
  if (!a || !b || !c) return std::nullopt;
  return std::make_pair(t[0], Position{*a, *b, *c});
}

// FilterLogEvents' position: (timestamp, stream, seq, index); the token is its base64.
using FilterPosition = std::tuple<int64_t, std::string, int64_t, int64_t>;

std::string FilterToken(const FilterPosition& p) {
  return base::Base64Encode(std::to_string(std::get<0>(p)) + "/" + std::to_string(std::get<2>(p)) +
                            "/" + std::to_string(std::get<3>(p)) + "/" + std::get<1>(p));
}

std::optional<FilterPosition> ParseFilterToken(const std::string& t) {
  auto raw = base::Base64Decode(t);
  if (!raw) return std::nullopt;
  std::vector<std::string_view> parts = base::Split(*raw, '/');
  if (parts.size() < 4) return std::nullopt;
  auto ts = base::ParseInt(parts[0]);
  auto seq = base::ParseInt(parts[1]);
  auto idx = base::ParseInt(parts[2]);
  if (!ts || !seq || !idx) return std::nullopt;
  size_t skip = parts[0].size() + parts[1].size() + parts[2].size() + 3;
  return FilterPosition{*ts, raw->substr(skip), *seq, *idx};
}

// Event ids: 56 digits, unique within a group: timestamp, a hash of the stream, the batch
// and the index.
std::string EventId(int64_t ts, const std::string& stream, int64_t seq, int64_t idx) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : stream) h = (h ^ c) * 1099511628211ULL;
  char buf[80];
  std::snprintf(buf, sizeof buf, "%020lld%020llu%010lld%06lld", static_cast<long long>(ts),
                static_cast<unsigned long long>(h), static_cast<long long>(seq % 10000000000LL),
                static_cast<long long>(idx % 1000000));
  return std::string(buf, 56);
}

// A batch of rows headed for one stream, before it is committed.
struct Pending {
  std::string group, stream;
  std::vector<Row> rows;
};

class LogsImpl : public Logs {
 public:
  LogsImpl(store::Store* store, const Options& options)
      : store_(store),
        options_(options),
        clock_(options.clock ? options.clock : &base::SystemClock()) {}

  void Start() {
    flusher_ = std::thread([this] { FlushLoop(); });
    if (options_.retention_sweep_interval.count() > 0)
      sweeper_ = std::thread([this] { SweepLoop(); });
  }

  ~LogsImpl() override {
    {
      std::lock_guard lock(queue_mu_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    if (flusher_.joinable()) flusher_.join();
    if (sweeper_.joinable()) sweeper_.join();
    base::Status st = Flush();
    if (!st.ok()) spdlog::error("logs: final flush: {}", st.ToString());
  }

  const Options& options() const override { return options_; }

  std::string GroupArn(const std::string& group, bool with_star) const override {
    return "arn:aws:logs:" + options_.region + ":" + options_.account_id + ":log-group:" + group +
           (with_star ? ":*" : "");
  }

  int64_t NowMs() const { return base::EpochMillis(clock_->Now()); }

  // ---- groups ----

  base::Status CreateLogGroup(const std::string& name,
                              const std::map<std::string, std::string>& tags) override {
    RETURN_IF_ERROR(CheckGroupName(name));
    LogGroup g;
    g.name = name;
    g.creation_time = NowMs();
    g.tags = tags;
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyMissing(GroupKey(name)));
    txn.success.push_back(store::Op::Put(GroupKey(name), Dump(GroupToJson(g))));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    if (!r.succeeded) return base::AlreadyExists("The specified log group already exists");
    return base::Status::Ok();
  }

  base::Status DeleteLogGroup(const std::string& name) override {
    RETURN_IF_ERROR(CheckGroupName(name));
    std::lock_guard lock(write_mu_);
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyExists(GroupKey(name)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(GroupKey(name))));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(StreamsPrefix(name))));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(GroupEventsPrefix(name))));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    EvictPrefixLocked(StreamsPrefix(name));
    if (!r.succeeded) return base::NotFound(kNoGroup);
    return base::Status::Ok();
  }

  base::Result<LogGroup> GetLogGroup(const std::string& name) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(GroupKey(name)));
    if (!kv) return base::NotFound(kNoGroup);
    ASSIGN_OR_RETURN(LogGroup g, GroupFromKv(*kv));
    ASSIGN_OR_RETURN(g.stored_bytes, GroupBytes(name));
    return g;
  }

  base::Result<int64_t> GroupBytes(const std::string& name) {
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(StreamsPrefix(name))));
    int64_t total = 0;
    for (const auto& kv : rr.kvs) {
      auto s = StreamFromKv(kv, StreamsPrefix(name).size());
      if (s.ok()) total += s->stored_bytes;
    }
    return total;
  }

  base::Result<Page<LogGroup>> DescribeLogGroups(const DescribeGroupsRequest& req) override {
    if (!req.prefix.empty() && !req.pattern.empty())
      return base::InvalidArgument(
          "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.");
    store::RangeOptions ro;
    if (!req.next_token.empty()) {
      auto after = base::Base64Decode(req.next_token);
      if (!after || after->empty()) return base::InvalidArgument(kBadToken);
      ro.start_after = GroupKey(*after);
    }
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(GroupKey(req.prefix)), ro));
    Page<LogGroup> page;
    for (const auto& kv : rr.kvs) {
      ASSIGN_OR_RETURN(LogGroup g, GroupFromKv(kv));
      if (!req.pattern.empty() && g.name.find(req.pattern) == std::string::npos) continue;
      if (static_cast<int>(page.items.size()) == req.limit) {
        page.next_token = base::Base64Encode(page.items.back().name);
        break;
      }
      ASSIGN_OR_RETURN(g.stored_bytes, GroupBytes(g.name));
      page.items.push_back(std::move(g));
    }
    return page;
  }

  base::Status UpdateGroup(const std::string& name, const std::function<void(LogGroup&)>& f) {
    RETURN_IF_ERROR(CheckGroupName(name));
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(GroupKey(name)));
      if (!kv) return base::NotFound(kNoGroup);
      ASSIGN_OR_RETURN(LogGroup g, GroupFromKv(*kv));
      f(g);
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      txn.success.push_back(store::Op::Put(kv->key, Dump(GroupToJson(g))));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("logs: log group " + name + " kept changing");
  }

  base::Status PutRetentionPolicy(const std::string& group, int days) override {
    const auto& valid = RetentionDays();
    if (std::find(valid.begin(), valid.end(), days) == valid.end()) {
      std::string set;
      for (int d : valid) set += (set.empty() ? "" : ", ") + std::to_string(d);
      return base::InvalidArgument("1 validation error detected: Value '" + std::to_string(days) +
                                   "' at 'retentionInDays' failed to satisfy constraint: Member "
                                   "must satisfy enum value set: [" +
                                   set + "]");
    }
    return UpdateGroup(group, [days](LogGroup& g) { g.retention_days = days; });
  }
  base::Status DeleteRetentionPolicy(const std::string& group) override {
    return UpdateGroup(group, [](LogGroup& g) { g.retention_days.reset(); });
  }
  base::Status TagLogGroup(const std::string& group,
                           const std::map<std::string, std::string>& tags) override {
    return UpdateGroup(group, [&](LogGroup& g) {
      for (const auto& [k, v] : tags) g.tags[k] = v;
    });
  }
  base::Status UntagLogGroup(const std::string& group,
                             const std::vector<std::string>& keys) override {
    return UpdateGroup(group, [&](LogGroup& g) {
      for (const auto& k : keys) g.tags.erase(k);
    });
  }

  // ---- streams ----

  base::Status CreateLogStream(const std::string& group, const std::string& stream) override {
    RETURN_IF_ERROR(CheckGroupName(group));
    RETURN_IF_ERROR(CheckStreamName(stream));
    LogStream s;
    s.creation_time = NowMs();
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyExists(GroupKey(group)));
    txn.compares.push_back(store::Compare::KeyMissing(StreamKey(group, stream)));
    txn.success.push_back(store::Op::Put(StreamKey(group, stream), Dump(StreamToJson(s))));
    txn.failure.push_back(store::Op::Get(store::KeyRange::Exact(GroupKey(group))));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    if (r.succeeded) return base::Status::Ok();
    if (r.results.empty() || r.results[0].kvs.empty()) return base::NotFound(kNoGroup);
    return base::AlreadyExists("The specified log stream already exists");
  }

  base::Status DeleteLogStream(const std::string& group, const std::string& stream) override {
    RETURN_IF_ERROR(CheckGroupName(group));
    RETURN_IF_ERROR(CheckStreamName(stream));
    std::lock_guard lock(write_mu_);
    store::Txn txn;
    txn.compares.push_back(store::Compare::KeyExists(StreamKey(group, stream)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(StreamKey(group, stream))));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(EventsPrefix(group, stream))));
    txn.failure.push_back(store::Op::Get(store::KeyRange::Exact(GroupKey(group))));
    ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
    cache_.erase(StreamKey(group, stream));
    if (r.succeeded) return base::Status::Ok();
    if (r.results.empty() || r.results[0].kvs.empty()) return base::NotFound(kNoGroup);
    return base::NotFound(kNoStream);
  }

  base::Result<std::vector<LogStream>> AllStreams(const std::string& group) {
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(StreamsPrefix(group))));
    std::vector<LogStream> out;
    out.reserve(rr.kvs.size());
    for (const auto& kv : rr.kvs) {
      ASSIGN_OR_RETURN(LogStream s, StreamFromKv(kv, StreamsPrefix(group).size()));
      out.push_back(std::move(s));
    }
    return out;
  }

  base::Status RequireGroup(const std::string& group) {
    RETURN_IF_ERROR(CheckGroupName(group));
    ASSIGN_OR_RETURN(auto kv, store_->Get(GroupKey(group)));
    if (!kv) return base::NotFound(kNoGroup);
    return base::Status::Ok();
  }

  base::Result<Page<LogStream>> DescribeLogStreams(const DescribeStreamsRequest& req) override {
    if (req.order_by_last_event_time && !req.prefix.empty())
      return base::InvalidArgument("Cannot order by LastEventTime with a logStreamNamePrefix.");
    RETURN_IF_ERROR(RequireGroup(req.group));
    ASSIGN_OR_RETURN(std::vector<LogStream> all, AllStreams(req.group));
    // Sort keys that compare as strings in the requested order.
    std::vector<std::pair<std::string, LogStream*>> keyed;
    for (LogStream& s : all) {
      if (!req.prefix.empty() && s.name.compare(0, req.prefix.size(), req.prefix) != 0) continue;
      std::string key = req.order_by_last_event_time
                            ? Digits(s.last_event_timestamp.value_or(0), 20) + ":" + s.name
                            : s.name;
      keyed.emplace_back(std::move(key), &s);
    }
    std::sort(keyed.begin(), keyed.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    if (req.descending) std::reverse(keyed.begin(), keyed.end());
    std::optional<std::string> after;
    if (!req.next_token.empty()) {
      after = base::Base64Decode(req.next_token);
      if (!after) return base::InvalidArgument(kBadToken);
    }
    Page<LogStream> page;
    std::string last_key;
    for (auto& [key, s] : keyed) {
      if (after && (req.descending ? key >= *after : key <= *after)) continue;
      if (static_cast<int>(page.items.size()) == req.limit) {
        page.next_token = base::Base64Encode(last_key);
        break;
      }
      last_key = key;
      page.items.push_back(std::move(*s));
    }
    return page;
  }

  // ---- writing events ----

  base::Result<RejectedInfo> PutLogEvents(const std::string& group, const std::string& stream,
                                          const std::vector<Event>& events) override {
    RETURN_IF_ERROR(CheckGroupName(group));
    RETURN_IF_ERROR(CheckStreamName(stream));
    if (events.empty())
      return base::InvalidArgument(
          "1 validation error detected: Value '[]' at 'logEvents' failed to satisfy "
          "constraint: Member must have length greater than or equal to 1");
    if (events.size() > kMaxBatchEvents)
      return base::InvalidArgument(
          "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
          "Member must have length less than or equal to 10000");
    size_t total = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      size_t size = events[i].message.size() + kEventOverheadBytes;
      if (events[i].message.empty())
        return base::InvalidArgument(
            "1 validation error detected: Value '' at 'logEvents." + std::to_string(i + 1) +
            ".member.message' failed to satisfy constraint: Member must have length greater "
            "than or equal to 1");
      if (size > kMaxEventBytes)
        return base::InvalidArgument("Log event too large: " + std::to_string(size) +
                                     " bytes exceeds limit of " + std::to_string(kMaxEventBytes));
      total += size;
      if (i > 0 && events[i].timestamp < events[i - 1].timestamp)
        return base::InvalidArgument(
            "Log events in a single PutLogEvents request must be in chronological order.");
    }
    if (total > kMaxBatchBytes)
      return base::InvalidArgument("Upload too large: " + std::to_string(total) +
                                   " bytes exceeds limit of " + std::to_string(kMaxBatchBytes));
    if (events.back().timestamp - events.front().timestamp > kMaxBatchSpanMs)
      return base::InvalidArgument(
          "The batch of log events in a single PutLogEvents request cannot span more than 24 "
          "hours.");

    ASSIGN_OR_RETURN(auto gkv, store_->Get(GroupKey(group)));
    if (!gkv) return base::NotFound(kNoGroup);
    ASSIGN_OR_RETURN(LogGroup g, GroupFromKv(*gkv));
    int64_t now = NowMs();
    int64_t too_old_before = now - kMaxAgeMs;
    int64_t expired_before =
        g.retention_days ? now - int64_t{*g.retention_days} * 86400000 : INT64_MIN;
    RejectedInfo rejected;
    Pending p{group, stream, {}};
    for (size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      int idx = static_cast<int>(i);
      if (e.timestamp > now + kMaxFutureMs) {
        if (!rejected.too_new_start_index) rejected.too_new_start_index = idx;
        continue;
      }
      if (e.timestamp < too_old_before) {
        rejected.too_old_end_index = idx;
        continue;
      }
      if (e.timestamp < expired_before) {
        rejected.expired_end_index = idx;
        continue;
      }
      p.rows.push_back({e.timestamp, now, e.message});
    }
    if (p.rows.empty()) return rejected;
    std::vector<Pending> batches;
    batches.push_back(std::move(p));
    std::lock_guard lock(write_mu_);
    RETURN_IF_ERROR(CommitLocked(batches, /*create=*/false));
    return rejected;
  }

  void Append(const std::string& group, const std::string& stream,
              std::vector<Event> events) override {
    if (events.empty()) return;
    if (!ValidGroupName(group) || !ValidStreamName(stream)) {
      dropped_ += static_cast<int64_t>(events.size());
      spdlog::warn("logs: dropped {} events for invalid log group/stream name {}/{}", events.size(),
                   group, stream);
      return;
    }
    int64_t now = NowMs();
    bool wake = false;
    {
      std::lock_guard lock(queue_mu_);
      auto& rows = queue_[{group, stream}];
      auto queue = [&](int64_t ts, std::string message) {
        size_t size = message.size() + kEventOverheadBytes;
        if (queued_bytes_ + size > options_.max_queued_bytes) {
          ++dropped_;
          return;
        }
        queued_bytes_ += size;
        rows.push_back({std::max<int64_t>(ts, 0), now, std::move(message)});
      };
      for (Event& e : events) {
        if (e.message.size() + kEventOverheadBytes <= kMaxEventBytes) {
          queue(e.timestamp, std::move(e.message));
          continue;
        }
        // Too long for one event: consecutive events, cut at UTF-8 character boundaries.
        std::string_view rest = e.message;
        while (!rest.empty()) {
          size_t cut = std::min(rest.size(), kMaxEventBytes - kEventOverheadBytes);
          for (size_t back = 0; cut < rest.size() && back < 3 &&
                                (static_cast<unsigned char>(rest[cut]) & 0xC0) == 0x80;
               ++back)
            --cut;
          queue(e.timestamp, std::string(rest.substr(0, cut)));
          rest.remove_prefix(cut);
        }
      }
      wake = queued_bytes_ >= options_.flush_bytes;
    }
    if (wake) queue_cv_.notify_all();
  }

  base::Status Flush() override {
    std::lock_guard flush_lock(flush_mu_);
    std::map<std::pair<std::string, std::string>, std::vector<Row>> queued;
    {
      std::lock_guard lock(queue_mu_);
      queued.swap(queue_);
      queued_bytes_ = 0;
    }
    if (queued.empty()) return base::Status::Ok();
    // Commit in Txns of at most ~kMaxFlushTxnBytes, so that a burst does not hold the store
    // (and every other writer) for one huge commit.
    std::vector<std::vector<Pending>> txns(1);
    std::vector<size_t> txn_counts(1, 0);
    size_t txn_bytes = 0;
    for (auto& [key, rows] : queued) {
      if (rows.empty()) continue;
      std::stable_sort(rows.begin(), rows.end(),
                       [](const Row& a, const Row& b) { return a.timestamp < b.timestamp; });
      size_t i = 0;
      while (i < rows.size()) {
        if (txn_bytes >= kMaxFlushTxnBytes) {
          txns.emplace_back();
          txn_counts.push_back(0);
          txn_bytes = 0;
        }
        Pending p{key.first, key.second, {}};
        while (i < rows.size() && txn_bytes < kMaxFlushTxnBytes) {
          txn_bytes += RowBytes(rows[i]);
          p.rows.push_back(std::move(rows[i++]));
        }
        txn_counts.back() += p.rows.size();
        txns.back().push_back(std::move(p));
      }
    }
    base::Status first_error;
    for (size_t t = 0; t < txns.size(); ++t) {
      if (txns[t].empty()) continue;
      base::Status st;
      {
        std::lock_guard lock(write_mu_);
        st = CommitLocked(txns[t], /*create=*/true);
      }
      if (!st.ok()) {
        dropped_ += static_cast<int64_t>(txn_counts[t]);
        if (first_error.ok())
          first_error =
              st.WithContext("logs: flush of " + std::to_string(txn_counts[t]) + " events");
      }
    }
    return first_error;
  }

  int64_t dropped_events() const override { return dropped_.load(); }

  // ---- reading events ----

  struct Located {
    Position pos;
    StoredEvent event;
  };

  struct Found {
    FilterPosition pos;
    StoredEvent event;
  };

  // One stored batch, located by its header; `kv` lives in the caller's `holder`.
  struct BatchRef {
    const store::KeyValue* kv;
    const std::string* stream;
    int64_t seq, lo, hi;
  };

  // The batches of `streams` overlapping [start, end), from their headers alone.
  base::Status ListBatches(const std::string& group, const std::vector<const std::string*>& streams,
                           std::optional<int64_t> start, std::optional<int64_t> end,
                           std::deque<store::RangeResult>* holder, std::vector<BatchRef>* out) {
    for (const std::string* s : streams) {
      ASSIGN_OR_RETURN(store::RangeResult rr,
                       store_->Range(store::KeyRange::Prefix(EventsPrefix(group, *s))));
      holder->push_back(std::move(rr));
      for (const auto& kv : holder->back().kvs) {
        ASSIGN_OR_RETURN(Batch h, BatchHeaderFromKv(kv));
        if ((start && h.hi < *start) || (end && h.lo >= *end)) continue;
        out->push_back({&kv, s, SeqOfKey(kv.key), h.lo, h.hi});
      }
    }
    return base::Status::Ok();
  }

  // Fills `items` with the `limit` first (forward) or last events, in position order, that
  // `parse` accepts. Batches are visited by oldest (newest) timestamp and the walk stops once
  // no further batch can hold an earlier (later) event, so a page parses the batches it
  // needs, not the whole stream. `items` ends sorted by position.
  template <typename Item>
  static base::Status Select(
      std::vector<BatchRef>& refs, bool forward, size_t limit,
      const std::function<base::Status(const BatchRef&, std::vector<Item>*)>& parse,
      std::vector<Item>* items) {
    std::sort(refs.begin(), refs.end(), [forward](const BatchRef& a, const BatchRef& b) {
      return forward ? a.lo < b.lo : a.hi > b.hi;
    });
    auto before = [forward](const Item& a, const Item& b) {
      return forward ? a.pos < b.pos : b.pos < a.pos;
    };
    for (const BatchRef& ref : refs) {
      if (items->size() >= limit) {
        int64_t kth = std::get<0>((*items)[limit - 1].pos);
        if (forward ? kth < ref.lo : kth > ref.hi) break;
      }
      RETURN_IF_ERROR(parse(ref, items));
      if (items->size() >= limit) {  // keep the best `limit`; [limit - 1] is the worst kept
        std::nth_element(items->begin(), items->begin() + static_cast<ptrdiff_t>(limit - 1),
                         items->end(), before);
        items->erase(items->begin() + static_cast<ptrdiff_t>(limit), items->end());
      }
    }
    std::sort(items->begin(), items->end(),
              [](const Item& a, const Item& b) { return a.pos < b.pos; });
    return base::Status::Ok();
  }

  base::Result<GetEventsResult> GetLogEvents(const GetEventsRequest& req) override {
    RETURN_IF_ERROR(CheckGroupName(req.group));
    RETURN_IF_ERROR(CheckStreamName(req.stream));
    std::optional<std::pair<char, Position>> token;
    if (!req.next_token.empty()) {
      token = ParsePositionToken(req.next_token);
      if (!token) return base::InvalidArgument(kBadToken);
    }
    ASSIGN_OR_RETURN(auto skv, store_->Get(StreamKey(req.group, req.stream)));
    if (!skv) {
      RETURN_IF_ERROR(RequireGroup(req.group));
      return base::NotFound(kNoStream);
    }
    // A token bounds the time range too: only events on its side of it can be returned.
    std::optional<int64_t> start = req.start_time, end = req.end_time;
    if (token && token->first == 'f' && (!start || *start < std::get<0>(token->second)))
      start = std::get<0>(token->second);
    if (token && token->first == 'b' && (!end || *end > std::get<0>(token->second) + 1))
      end = std::get<0>(token->second) + 1;
    bool forward = token ? token->first == 'f' : req.start_from_head;

    std::deque<store::RangeResult> holder;
    std::vector<BatchRef> refs;
    RETURN_IF_ERROR(ListBatches(req.group, {&req.stream}, start, end, &holder, &refs));
    std::function<base::Status(const BatchRef&, std::vector<Located>*)> parse =
        [&](const BatchRef& ref, std::vector<Located>* out) -> base::Status {
      ASSIGN_OR_RETURN(Batch b, BatchFromKv(*ref.kv));
      for (size_t i = 0; i < b.rows.size(); ++i) {
        Row& r = b.rows[i];
        if ((start && r.timestamp < *start) || (end && r.timestamp >= *end)) continue;
        Position pos{r.timestamp, ref.seq, static_cast<int64_t>(i)};
        if (token && token->first == 'f' && !(token->second < pos)) continue;
        if (token && token->first == 'b' && !(pos < token->second)) continue;
        Located l;
        l.pos = pos;
        l.event.timestamp = r.timestamp;
        l.event.ingestion_time = r.ingestion_time;
        l.event.message = std::move(r.message);
        out->push_back(std::move(l));
      }
      return base::Status::Ok();
    };
    std::vector<Located> page;
    RETURN_IF_ERROR(Select(refs, forward, static_cast<size_t>(req.limit), parse, &page));

    // At most ~1 MB: the events nearest the cursor.
    size_t first = 0, last = page.size(), bytes = 0;
    if (forward) {
      last = 0;
      while (last < page.size()) {
        bytes += page[last].event.message.size() + kEventOverheadBytes;
        if (bytes > kMaxGetBytes && last > 0) break;
        ++last;
      }
    } else {
      first = page.size();
      while (first > 0) {
        bytes += page[first - 1].event.message.size() + kEventOverheadBytes;
        if (bytes > kMaxGetBytes && first < page.size()) break;
        --first;
      }
    }
    GetEventsResult out;
    if (first < last) {
      out.next_forward_token = PositionToken('f', page[last - 1].pos);
      out.next_backward_token = PositionToken('b', page[first].pos);
    } else {
      Position at = token ? token->second : Position{0, 0, 0};
      out.next_forward_token = PositionToken('f', at);
      out.next_backward_token = PositionToken('b', at);
    }
    for (size_t i = first; i < last; ++i) out.events.push_back(std::move(page[i].event));
    return out;
  }

  base::Result<Page<StoredEvent>> FilterLogEvents(const FilterEventsRequest& req) override {
    if (!req.stream_names.empty() && !req.stream_prefix.empty())
      return base::InvalidArgument(
          "You cannot specify both logStreamNames and logStreamNamePrefix.");
    ASSIGN_OR_RETURN(FilterPattern pattern, FilterPattern::Parse(req.filter_pattern));
    std::optional<FilterPosition> after;
    if (!req.next_token.empty()) {
      after = ParseFilterToken(req.next_token);
      if (!after) return base::InvalidArgument(kBadToken);
    }
    RETURN_IF_ERROR(RequireGroup(req.group));
    ASSIGN_OR_RETURN(std::vector<LogStream> streams, AllStreams(req.group));
    std::set<std::string> wanted(req.stream_names.begin(), req.stream_names.end());
    std::optional<int64_t> start = req.start_time, end = req.end_time;
    if (after && (!start || *start < std::get<0>(*after))) start = std::get<0>(*after);
    std::vector<const std::string*> names;
    for (const LogStream& s : streams) {
      if (!wanted.empty() && !wanted.count(s.name)) continue;
      if (!req.stream_prefix.empty() &&
          s.name.compare(0, req.stream_prefix.size(), req.stream_prefix) != 0)
        continue;
      if (!s.last_event_timestamp || !s.first_event_timestamp) continue;
      if (start && *s.last_event_timestamp < *start) continue;
      if (end && *s.first_event_timestamp >= *end) continue;
      names.push_back(&s.name);
    }
    std::deque<store::RangeResult> holder;
    std::vector<BatchRef> refs;
    RETURN_IF_ERROR(ListBatches(req.group, names, start, end, &holder, &refs));
    std::function<base::Status(const BatchRef&, std::vector<Found>*)> parse =
        [&](const BatchRef& ref, std::vector<Found>* out) -> base::Status {
      ASSIGN_OR_RETURN(Batch b, BatchFromKv(*ref.kv));
      for (size_t i = 0; i < b.rows.size(); ++i) {
        Row& r = b.rows[i];
        if ((start && r.timestamp < *start) || (end && r.timestamp >= *end)) continue;
        if (!pattern.Matches(r.message)) continue;
        FilterPosition pos{r.timestamp, *ref.stream, ref.seq, static_cast<int64_t>(i)};
        if (after && !(*after < pos)) continue;
        Found f;
        f.event.timestamp = r.timestamp;
        f.event.ingestion_time = r.ingestion_time;
        f.event.message = std::move(r.message);
        f.event.stream = *ref.stream;
        f.event.event_id = EventId(r.timestamp, *ref.stream, ref.seq, static_cast<int64_t>(i));
        f.pos = std::move(pos);
        out->push_back(std::move(f));
      }
      return base::Status::Ok();
    };
    // One more than a page: whether there is a next page.
    std::vector<Found> found;
    RETURN_IF_ERROR(Select(refs, true, static_cast<size_t>(req.limit) + 1, parse, &found));
    Page<StoredEvent> page;
    size_t bytes = 0;
    for (size_t i = 0; i < found.size(); ++i) {
      bytes += found[i].event.message.size() + kEventOverheadBytes;
      if (static_cast<int>(i) == req.limit || (bytes > kMaxGetBytes && i > 0)) {
        page.next_token = FilterToken(found[i - 1].pos);
        break;
      }
      page.items.push_back(std::move(found[i].event));
    }
    return page;
  }

  // ---- retention ----

  base::Result<int64_t> SweepRetention() override {
    ASSIGN_OR_RETURN(store::RangeResult groups,
                     store_->Range(store::KeyRange::Prefix(kGroupsPrefix)));
    int64_t deleted = 0;
    int64_t now = NowMs();
    for (const auto& gkv : groups.kvs) {
      auto g = GroupFromKv(gkv);
      if (!g.ok() || !g->retention_days) continue;
      int64_t cutoff = now - int64_t{*g->retention_days} * 86400000;
      std::lock_guard lock(write_mu_);
      ASSIGN_OR_RETURN(store::RangeResult streams,
                       store_->Range(store::KeyRange::Prefix(StreamsPrefix(g->name))));
      for (const auto& skv : streams.kvs) {
        ASSIGN_OR_RETURN(LogStream s, StreamFromKv(skv, StreamsPrefix(g->name).size()));
        if (!s.first_event_timestamp || *s.first_event_timestamp >= cutoff) continue;
        ASSIGN_OR_RETURN(store::RangeResult batches,
                         store_->Range(store::KeyRange::Prefix(EventsPrefix(g->name, s.name))));
        store::Txn txn;
        txn.compares.push_back(store::Compare::ModRevisionIs(skv.key, skv.mod_revision));
        std::optional<int64_t> first, last;
        int64_t gone = 0;
        for (const auto& bkv : batches.kvs) {
          ASSIGN_OR_RETURN(Batch b, BatchHeaderFromKv(bkv));
          if (b.hi < cutoff) {
            txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(bkv.key)));
            s.stored_bytes -= b.bytes;
            ++gone;
            continue;
          }
          first = first ? std::min(*first, b.lo) : b.lo;
          last = last ? std::max(*last, b.hi) : b.hi;
        }
        if (gone == 0) continue;
        s.first_event_timestamp = first;
        s.last_event_timestamp = last;
        if (s.stored_bytes < 0) s.stored_bytes = 0;
        txn.success.push_back(store::Op::Put(skv.key, Dump(StreamToJson(s))));
        ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
        cache_.erase(skv.key);
        if (r.succeeded) deleted += gone;  // else a writer won; the next sweep retries
      }
    }
    return deleted;
  }

 private:
  struct Cached {
    LogStream meta;
    store::Revision mod_revision = 0;
  };

  void EvictPrefixLocked(const std::string& prefix) {
    auto it = cache_.lower_bound(prefix);
    while (it != cache_.end() && it->first.compare(0, prefix.size(), prefix) == 0)
      it = cache_.erase(it);
  }

  // Commits `batches` (rows in time order are not required) as one Txn: each stream's
  // rows become one or more batch records within AWS's batch limits, and each stream's
  // record is rewritten, guarded by its mod revision. With `create`, missing groups and
  // streams are created. Holds write_mu_.
  base::Status CommitLocked(std::vector<Pending>& batches, bool create) {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      int64_t now = NowMs();
      store::Txn txn;
      std::map<std::string, Cached> touched;  // stream key → working copy
      std::set<std::string> groups_checked;
      for (const Pending& p : batches) {
        std::string skey = StreamKey(p.group, p.stream);
        auto t = touched.find(skey);
        if (t == touched.end()) {
          Cached c;
          if (auto it = cache_.find(skey); it != cache_.end()) {
            c = it->second;
          } else {
            ASSIGN_OR_RETURN(auto kv, store_->Get(skey));
            if (kv) {
              ASSIGN_OR_RETURN(c.meta, StreamFromKv(*kv, StreamsPrefix(p.group).size()));
              c.mod_revision = kv->mod_revision;
            } else {
              ASSIGN_OR_RETURN(auto gkv, store_->Get(GroupKey(p.group)));
              if (!create) return base::NotFound(gkv ? kNoStream : kNoGroup);
              if (groups_checked.insert(p.group).second) {
                txn.compares.push_back(
                    store::Compare::ModRevisionIs(GroupKey(p.group), gkv ? gkv->mod_revision : 0));
                if (!gkv) {
                  LogGroup g;
                  g.name = p.group;
                  g.creation_time = now;
                  txn.success.push_back(store::Op::Put(GroupKey(p.group), Dump(GroupToJson(g))));
                }
              }
              c.meta.name = p.stream;
              c.meta.creation_time = now;
              c.mod_revision = 0;
            }
          }
          txn.compares.push_back(store::Compare::ModRevisionIs(skey, c.mod_revision));
          t = touched.emplace(skey, std::move(c)).first;
        }
        LogStream& m = t->second.meta;
        size_t begin = 0;
        while (begin < p.rows.size()) {
          size_t end = begin, bytes = 0;
          while (end < p.rows.size() && end - begin < kMaxBatchEvents &&
                 (end == begin || bytes + RowBytes(p.rows[end]) <= kMaxBatchBytes)) {
            bytes += RowBytes(p.rows[end]);
            ++end;
          }
          int64_t lo, hi, size;
          std::string value = BatchToValue(p.rows, begin, end, &lo, &hi, &size);
          txn.success.push_back(store::Op::Put(BatchKey(p.group, p.stream, m.next_seq++), value));
          m.first_event_timestamp =
              m.first_event_timestamp ? std::min(*m.first_event_timestamp, lo) : lo;
          m.last_event_timestamp =
              m.last_event_timestamp ? std::max(*m.last_event_timestamp, hi) : hi;
          for (size_t i = begin; i < end; ++i)
            m.last_ingestion_time =
                std::max(m.last_ingestion_time.value_or(0), p.rows[i].ingestion_time);
          m.stored_bytes += size;
          begin = end;
        }
      }
      for (auto& [skey, c] : touched)
        txn.success.push_back(store::Op::Put(skey, Dump(StreamToJson(c.meta))));
      ASSIGN_OR_RETURN(store::TxnResult r, store_->Commit(txn));
      if (r.succeeded) {
        for (auto& [skey, c] : touched) {
          c.mod_revision = r.revision;
          cache_[skey] = std::move(c);
        }
        return base::Status::Ok();
      }
      for (auto& [skey, c] : touched) cache_.erase(skey);
    }
    return base::Aborted("logs: log streams kept changing during a write");
  }

  void FlushLoop() {
    std::unique_lock lock(queue_mu_);
    while (!stopping_) {
      queue_cv_.wait_for(lock, options_.flush_interval,
                         [this] { return stopping_ || queued_bytes_ >= options_.flush_bytes; });
      if (stopping_) break;
      if (queue_.empty()) continue;
      lock.unlock();
      base::Status st = Flush();
      if (!st.ok()) spdlog::error("{}", st.ToString());
      lock.lock();
    }
  }

  void SweepLoop() {
    std::unique_lock lock(queue_mu_);
    while (!queue_cv_.wait_for(lock, options_.retention_sweep_interval,
                               [this] { return stopping_; })) {
      lock.unlock();
      auto n = SweepRetention();
      if (!n.ok())
        spdlog::warn("logs: retention sweep: {}", n.status().ToString());
      else if (*n > 0)
        spdlog::info("logs: retention sweep deleted {} batches", *n);
      lock.lock();
    }
  }

  store::Store* store_;
  Options options_;
  base::Clock* clock_;

  std::mutex write_mu_;                  // serializes event writes and deletes
  std::map<std::string, Cached> cache_;  // stream records this process wrote last

  std::mutex flush_mu_;  // one Flush at a time: take the queue, then commit it
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::map<std::pair<std::string, std::string>, std::vector<Row>> queue_;
  size_t queued_bytes_ = 0;
  bool stopping_ = false;
  std::atomic<int64_t> dropped_{0};
  std::thread flusher_, sweeper_;
};

}  // namespace

const std::vector<int>& RetentionDays() {
  static const std::vector<int> kDays = {1,    3,    5,    7,    14,   30,  60,  90,
                                         120,  150,  180,  365,  400,  545, 731, 1096,
                                         1827, 2192, 2557, 2922, 3288, 3653};
  return kDays;
}

base::Result<std::unique_ptr<Logs>> OpenLogs(store::Store* store, const Options& options) {
  if (store == nullptr) return base::InvalidArgument("logs: no store");
  auto logs = std::make_unique<LogsImpl>(store, options);
  logs->Start();
  return std::unique_ptr<Logs>(std::move(logs));
}

}  // namespace logs
