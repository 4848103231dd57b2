#include "services/logs/api.h"

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "aws/json.h"
#include "base/strings.h"

namespace logs {

namespace {

using aws::Call;
using aws::Outcome;
using nlohmann::json;

aws::Error ToError(const base::Status& s) {
  switch (s.code()) {
    case base::Code::kInvalidArgument:
      return aws::MakeError(400, "InvalidParameterException", s.message());
    case base::Code::kNotFound:
      return aws::MakeError(400, "ResourceNotFoundException", s.message());
    case base::Code::kAlreadyExists:
      return aws::MakeError(400, "ResourceAlreadyExistsException", s.message());
    case base::Code::kAborted:
      return aws::MakeError(400, "OperationAbortedException",
                            "Multiple concurrent requests to update the same resource were in "
                            "conflict.");
    default:
      return aws::MakeError(500, "ServiceUnavailableException",
                            "The service cannot complete the request.");
  }
}

aws::Error InvalidParameter(const std::string& message) {
  return aws::MakeError(400, "InvalidParameterException", message);
}

aws::Error Serialization(const std::string& field, const char* want) {
  return aws::MakeError(400, "SerializationException",
                        "Unexpected value for field '" + field + "': expected " + want);
}

aws::Error Missing(const std::string& field) {
  return InvalidParameter("1 validation error detected: Value null at '" + field +
                          "' failed to satisfy constraint: Member must not be null");
}

// ---- field readers: a wrong JSON type is a SerializationException ----

Outcome<std::optional<std::string>> OptString(const json& in, const char* key) {
  auto it = in.find(key);
  if (it == in.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Serialization(key, "a string");
  return std::optional<std::string>(it->get<std::string>());
}

Outcome<std::string> ReqString(const json& in, const char* key) {
  auto v = OptString(in, key);
  if (!v.ok()) return v.error();
  if (!v.value()) return Missing(key);
  return *v.value();
}

Outcome<std::optional<int64_t>> OptInt(const json& in, const char* key) {
  auto it = in.find(key);
  if (it == in.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) return Serialization(key, "an integer");
  return std::optional<int64_t>(it->get<int64_t>());
}

Outcome<bool> OptBool(const json& in, const char* key, bool def) {
  auto it = in.find(key);
  if (it == in.end() || it->is_null()) return def;
  if (!it->is_boolean()) return Serialization(key, "a boolean");
  return it->get<bool>();
}

Outcome<std::map<std::string, std::string>> OptStringMap(const json& in, const char* key) {
  std::map<std::string, std::string> out;
  auto it = in.find(key);
  if (it == in.end() || it->is_null()) return out;
  if (!it->is_object()) return Serialization(key, "a map");
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return Serialization(key, "a map of strings");
    out[k] = v.get<std::string>();
  }
  return out;
}

Outcome<std::vector<std::string>> OptStringList(const json& in, const char* key) {
  std::vector<std::string> out;
  auto it = in.find(key);
  if (it == in.end() || it->is_null()) return out;
  if (!it->is_array()) return Serialization(key, "a list");
  for (const json& v : *it) {
    if (!v.is_string()) return Serialization(key, "a list of strings");
    out.push_back(v.get<std::string>());
  }
  return out;
}

// `limit` within [1, max], default `def`.
Outcome<int> Limit(const json& in, int max, int def) {
  auto v = OptInt(in, "limit");
  if (!v.ok()) return v.error();
  if (!v.value()) return def;
  int64_t n = *v.value();
  if (n < 1 || n > max)
    return InvalidParameter(
        "1 validation error detected: Value '" + std::to_string(n) +
        "' at 'limit' failed to satisfy constraint: Member must have value " +
        (n < 1 ? "greater than or equal to 1" : "less than or equal to " + std::to_string(max)));
  return static_cast<int>(n);
}

// The group an event read or a stream listing names: logGroupName, or logGroupIdentifier
// (a name or a log group ARN), not both.
Outcome<std::string> GroupOf(const json& in) {
  auto name = OptString(in, "logGroupName");
  if (!name.ok()) return name.error();
  auto ident = OptString(in, "logGroupIdentifier");
  if (!ident.ok()) return ident.error();
  if (name.value() && ident.value())
    return aws::MakeError(400, "ValidationException",
                          "LogGroup name and LogGroup ARN are mutually exclusive parameters.");
  if (name.value()) return *name.value();
  if (!ident.value()) return Missing("logGroupName");
  std::string id = *ident.value();
  if (id.rfind("arn:", 0) != 0) return id;
  // arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
  std::vector<std::string_view> parts = base::Split(id, ':');
  if (parts.size() < 7 || parts[2] != "logs" || parts[5] != "log-group" ||
      (parts.size() == 8 && parts[7] != "*") || parts.size() > 8)
    return InvalidParameter("Invalid logGroupIdentifier: " + id);
  return std::string(parts[6]);
}

// The log group named by a TagResource-style `resourceArn`.
Outcome<std::string> GroupOfArn(const std::string& arn) {
  std::vector<std::string_view> parts = base::Split(arn, ':');
  if (parts.size() < 7 || parts[0] != "arn" || parts[2] != "logs" || parts[5] != "log-group" ||
      (parts.size() == 8 && parts[7] != "*") || parts.size() > 8)
    return InvalidParameter("Invalid resourceArn: " + arn);
  return std::string(parts[6]);
}

std::string SequenceToken() {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%020lld%036llu",
                static_cast<long long>(base::EpochMillis(base::SystemClock().Now())),
                static_cast<unsigned long long>(++counter));
  return buf;
}

json GroupJson(const Logs& logs, const LogGroup& g) {
  json j{{"logGroupName", g.name},
         {"creationTime", g.creation_time},
         {"metricFilterCount", 0},
         {"arn", logs.GroupArn(g.name, true)},
         {"storedBytes", g.stored_bytes},
         {"logGroupClass", "STANDARD"},
         {"logGroupArn", logs.GroupArn(g.name, false)},
         {"deletionProtectionEnabled", false}};
  if (g.retention_days) j["retentionInDays"] = *g.retention_days;
  return j;
}

json StreamJson(const Logs& logs, const std::string& group, const LogStream& s) {
  json j{{"logStreamName", s.name},
         {"creationTime", s.creation_time},
         {"arn", logs.GroupArn(group, false) + ":log-stream:" + s.name},
         {"storedBytes", s.stored_bytes}};
  if (s.first_event_timestamp) j["firstEventTimestamp"] = *s.first_event_timestamp;
  if (s.last_event_timestamp) j["lastEventTimestamp"] = *s.last_event_timestamp;
  if (s.last_ingestion_time) {
    j["lastIngestionTime"] = *s.last_ingestion_time;
    j["uploadSequenceToken"] = SequenceToken();
  }
  return j;
}

class Api {
 public:
  explicit Api(Logs& logs) : logs_(logs) {}

  std::unique_ptr<aws::Service> Build() {
    auto svc = std::make_unique<aws::JsonService>("logs", "Logs_20140328", "1.1");
    // Operations on one log group authorize against its ARN; listings against the account's.
    Logs* logs = &logs_;
    auto group_of_name = [logs](const json& in, const Call&) -> Outcome<std::string> {
      auto g = ReqString(in, "logGroupName");
      if (!g.ok()) return g.error();
      return logs->GroupArn(g.value(), true);
    };
    auto group_of_either = [logs](const json& in, const Call&) -> Outcome<std::string> {
      auto g = GroupOf(in);
      if (!g.ok()) return g.error();
      return logs->GroupArn(g.value(), true);
    };
    auto group_of_arn = [logs](const json& in, const Call&) -> Outcome<std::string> {
      auto arn = ReqString(in, "resourceArn");
      if (!arn.ok()) return arn.error();
      auto g = GroupOfArn(arn.value());
      if (!g.ok()) return g.error();
      return logs->GroupArn(g.value(), true);
    };
    auto all_groups = [logs](const json&, const Call&) -> Outcome<std::string> {
      return logs->GroupArn("*", false);
    };
    auto add = [&](const char* name, auto resource, auto handler) {
      svc->Add({name, std::string("logs:") + name, resource,
                // Api is a reference to `logs`; each handler keeps its own copy.
                [api = *this, handler](const json& in, Call& call) mutable -> Outcome<json> {
                  return (api.*handler)(in, call);
                }});
    };
    add("CreateLogGroup", group_of_name, &Api::CreateLogGroup);
    add("DeleteLogGroup", group_of_name, &Api::DeleteLogGroup);
    add("DescribeLogGroups", all_groups, &Api::DescribeLogGroups);
    add("ListLogGroups", all_groups, &Api::ListLogGroups);
    add("CreateLogStream", group_of_name, &Api::CreateLogStream);
    add("DeleteLogStream", group_of_name, &Api::DeleteLogStream);
    add("DescribeLogStreams", group_of_either, &Api::DescribeLogStreams);
    add("PutLogEvents", group_of_either, &Api::PutLogEvents);
    add("GetLogEvents", group_of_either, &Api::GetLogEvents);
    add("FilterLogEvents", group_of_either, &Api::FilterLogEvents);
    add("PutRetentionPolicy", group_of_name, &Api::PutRetentionPolicy);
    add("DeleteRetentionPolicy", group_of_name, &Api::DeleteRetentionPolicy);
    add("TagLogGroup", group_of_name, &Api::TagLogGroup);
    add("UntagLogGroup", group_of_name, &Api::UntagLogGroup);
    add("ListTagsLogGroup", group_of_name, &Api::ListTagsLogGroup);
    add("TagResource", group_of_arn, &Api::TagResource);
    add("UntagResource", group_of_arn, &Api::UntagResource);
    add("ListTagsForResource", group_of_arn, &Api::ListTagsForResource);
    return svc;
  }

 private:
  static Outcome<json> Done(const base::Status& st) {
    if (!st.ok()) return ToError(st);
    return json::object();
  }

  Outcome<json> CreateLogGroup(const json& in, Call&) {
    auto name = ReqString(in, "logGroupName");
    if (!name.ok()) return name.error();
    auto tags = OptStringMap(in, "tags");
    if (!tags.ok()) return tags.error();
    return Done(logs_.CreateLogGroup(name.value(), tags.value()));
  }

  Outcome<json> DeleteLogGroup(const json& in, Call&) {
    auto name = ReqString(in, "logGroupName");
    if (!name.ok()) return name.error();
    return Done(logs_.DeleteLogGroup(name.value()));
  }

  Outcome<json> DescribeLogGroups(const json& in, Call&) {
    DescribeGroupsRequest req;
    auto prefix = OptString(in, "logGroupNamePrefix");
    if (!prefix.ok()) return prefix.error();
    auto pattern = OptString(in, "logGroupNamePattern");
    if (!pattern.ok()) return pattern.error();
    auto token = OptString(in, "nextToken");
    if (!token.ok()) return token.error();
    auto limit = Limit(in, 50, 50);
    if (!limit.ok()) return limit.error();
    req.prefix = prefix.value().value_or("");
    req.pattern = pattern.value().value_or("");
    if (prefix.value() && pattern.value())
      return InvalidParameter(
          "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.");
    req.next_token = token.value().value_or("");
    req.limit = limit.value();
    auto page = logs_.DescribeLogGroups(req);
    if (!page.ok()) return ToError(page.status());
    json groups = json::array();
    for (const LogGroup& g : page->items) groups.push_back(GroupJson(logs_, g));
    json out{{"logGroups", std::move(groups)}};
    if (!page->next_token.empty()) out["nextToken"] = page->next_token;
    return out;
  }

  // The newer listing: names, ARNs and classes only; limit up to 1000.
  Outcome<json> ListLogGroups(const json& in, Call&) {
    DescribeGroupsRequest req;
    auto pattern = OptString(in, "logGroupNamePattern");
    if (!pattern.ok()) return pattern.error();
    auto token = OptString(in, "nextToken");
    if (!token.ok()) return token.error();
    auto limit = Limit(in, 1000, 50);
    if (!limit.ok()) return limit.error();
    req.pattern = pattern.value().value_or("");
    req.next_token = token.value().value_or("");
    req.limit = limit.value();
    auto page = logs_.DescribeLogGroups(req);
    if (!page.ok()) return ToError(page.status());
    json groups = json::array();
    for (const LogGroup& g : page->items)
      groups.push_back({{"logGroupName", g.name},
                        {"logGroupArn", logs_.GroupArn(g.name, false)},
                        {"logGroupClass", "STANDARD"}});
    json out{{"logGroups", std::move(groups)}};
    if (!page->next_token.empty()) out["nextToken"] = page->next_token;
    return out;
  }

  Outcome<json> CreateLogStream(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    auto stream = ReqString(in, "logStreamName");
    if (!stream.ok()) return stream.error();
    return Done(logs_.CreateLogStream(group.value(), stream.value()));
  }

  Outcome<json> DeleteLogStream(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    auto stream = ReqString(in, "logStreamName");
    if (!stream.ok()) return stream.error();
    return Done(logs_.DeleteLogStream(group.value(), stream.value()));
  }

  Outcome<json> DescribeLogStreams(const json& in, Call&) {
    DescribeStreamsRequest req;
    auto group = GroupOf(in);
    if (!group.ok()) return group.error();
    auto prefix = OptString(in, "logStreamNamePrefix");
    if (!prefix.ok()) return prefix.error();
    auto order = OptString(in, "orderBy");
    if (!order.ok()) return order.error();
    auto desc = OptBool(in, "descending", false);
    if (!desc.ok()) return desc.error();
    auto token = OptString(in, "nextToken");
    if (!token.ok()) return token.error();
    auto limit = Limit(in, 50, 50);
    if (!limit.ok()) return limit.error();
    std::string by = order.value().value_or("LogStreamName");
    if (by != "LogStreamName" && by != "LastEventTime")
      return InvalidParameter("1 validation error detected: Value '" + by +
                              "' at 'orderBy' failed to satisfy constraint: Member must satisfy "
                              "enum value set: [LogStreamName, LastEventTime]");
    req.group = group.value();
    req.prefix = prefix.value().value_or("");
    req.order_by_last_event_time = by == "LastEventTime";
    req.descending = desc.value();
    req.next_token = token.value().value_or("");
    req.limit = limit.value();
    auto page = logs_.DescribeLogStreams(req);
    if (!page.ok()) return ToError(page.status());
    json streams = json::array();
    for (const LogStream& s : page->items) streams.push_back(StreamJson(logs_, req.group, s));
    json out{{"logStreams", std::move(streams)}};
    if (!page->next_token.empty()) out["nextToken"] = page->next_token;
    return out;
  }

  Outcome<json> PutLogEvents(const json& in, Call&) {
    auto group = GroupOf(in);
    if (!group.ok()) return group.error();
    auto stream = ReqString(in, "logStreamName");
    if (!stream.ok()) return stream.error();
    auto seq = OptString(in, "sequenceToken");  // accepted and ignored, as AWS does now
    if (!seq.ok()) return seq.error();
    auto it = in.find("logEvents");
    if (it == in.end() || it->is_null()) return Missing("logEvents");
    if (!it->is_array()) return Serialization("logEvents", "a list");
    if (it->size() > kMaxBatchEvents)
      return InvalidParameter(
          "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: "
          "Member must have length less than or equal to 10000");
    std::vector<Event> events;
    events.reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      const json& e = (*it)[i];
      std::string field = "logEvents." + std::to_string(i + 1) + ".member";
      if (!e.is_object()) return Serialization(field, "a structure");
      auto ts = OptInt(e, "timestamp");
      if (!ts.ok()) return ts.error();
      if (!ts.value()) return Missing(field + ".timestamp");
      auto msg = OptString(e, "message");
      if (!msg.ok()) return msg.error();
      if (!msg.value()) return Missing(field + ".message");
      if (*ts.value() < 0)
        return InvalidParameter("1 validation error detected: Value '" +
                                std::to_string(*ts.value()) + "' at '" + field +
                                ".timestamp' failed to satisfy constraint: Member must have "
                                "value greater than or equal to 0");
      events.push_back({*ts.value(), std::move(*msg.value())});
    }
    auto rejected = logs_.PutLogEvents(group.value(), stream.value(), events);
    if (!rejected.ok()) return ToError(rejected.status());
    json out{{"nextSequenceToken", SequenceToken()}};
    json info = json::object();
    if (rejected->too_new_start_index)
      info["tooNewLogEventStartIndex"] = *rejected->too_new_start_index;
    if (rejected->too_old_end_index) info["tooOldLogEventEndIndex"] = *rejected->too_old_end_index;
    if (rejected->expired_end_index) info["expiredLogEventEndIndex"] = *rejected->expired_end_index;
    if (!info.empty()) out["rejectedLogEventsInfo"] = std::move(info);
    return out;
  }

  Outcome<json> GetLogEvents(const json& in, Call&) {
    GetEventsRequest req;
    auto group = GroupOf(in);
    if (!group.ok()) return group.error();
    auto stream = ReqString(in, "logStreamName");
    if (!stream.ok()) return stream.error();
    auto start = OptInt(in, "startTime");
    if (!start.ok()) return start.error();
    auto end = OptInt(in, "endTime");
    if (!end.ok()) return end.error();
    auto token = OptString(in, "nextToken");
    if (!token.ok()) return token.error();
    auto head = OptBool(in, "startFromHead", false);
    if (!head.ok()) return head.error();
    auto limit = Limit(in, kMaxGetEvents, kMaxGetEvents);
    if (!limit.ok()) return limit.error();
    req.group = group.value();
    req.stream = stream.value();
    req.start_time = start.value();
    req.end_time = end.value();
    req.next_token = token.value().value_or("");
    req.start_from_head = head.value();
    req.limit = limit.value();
    auto r = logs_.GetLogEvents(req);
    if (!r.ok()) return ToError(r.status());
    json events = json::array();
    for (const StoredEvent& e : r->events)
      events.push_back({{"timestamp", e.timestamp},
                        {"message", e.message},
                        {"ingestionTime", e.ingestion_time}});
    return json{{"events", std::move(events)},
                {"nextForwardToken", r->next_forward_token},
                {"nextBackwardToken", r->next_backward_token}};
  }

  Outcome<json> FilterLogEvents(const json& in, Call&) {
    FilterEventsRequest req;
    auto group = GroupOf(in);
    if (!group.ok()) return group.error();
    auto names = OptStringList(in, "logStreamNames");
    if (!names.ok()) return names.error();
    auto prefix = OptString(in, "logStreamNamePrefix");
    if (!prefix.ok()) return prefix.error();
    auto start = OptInt(in, "startTime");
    if (!start.ok()) return start.error();
    auto end = OptInt(in, "endTime");
    if (!end.ok()) return end.error();
    auto pattern = OptString(in, "filterPattern");
    if (!pattern.ok()) return pattern.error();
    auto token = OptString(in, "nextToken");
    if (!token.ok()) return token.error();
    auto limit = Limit(in, kMaxGetEvents, kMaxGetEvents);
    if (!limit.ok()) return limit.error();
    if (!names.value().empty() && prefix.value())
      return InvalidParameter("You cannot specify both logStreamNames and logStreamNamePrefix.");
    if (pattern.value() && pattern.value()->size() > 1024)
      return InvalidParameter("1 validation error detected: Value '" + *pattern.value() +
                              "' at 'filterPattern' failed to satisfy constraint: Member must "
                              "have length less than or equal to 1024");
    req.group = group.value();
    req.stream_names = names.value();
    req.stream_prefix = prefix.value().value_or("");
    req.start_time = start.value();
    req.end_time = end.value();
    req.filter_pattern = pattern.value().value_or("");
    req.next_token = token.value().value_or("");
    req.limit = limit.value();
    auto page = logs_.FilterLogEvents(req);
    if (!page.ok()) return ToError(page.status());
    json events = json::array();
    for (const StoredEvent& e : page->items)
      events.push_back({{"logStreamName", e.stream},
                        {"timestamp", e.timestamp},
                        {"message", e.message},
                        {"ingestionTime", e.ingestion_time},
                        {"eventId", e.event_id}});
    json out{{"events", std::move(events)}, {"searchedLogStreams", json::array()}};
    if (!page->next_token.empty()) out["nextToken"] = page->next_token;
    return out;
  }

  Outcome<json> PutRetentionPolicy(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    auto days = OptInt(in, "retentionInDays");
    if (!days.ok()) return days.error();
    if (!days.value()) return Missing("retentionInDays");
    int64_t d = *days.value();
    if (d < 0 || d > 100000) d = -1;  // reported as not in the enum
    return Done(logs_.PutRetentionPolicy(group.value(), static_cast<int>(d)));
  }

  Outcome<json> DeleteRetentionPolicy(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    return Done(logs_.DeleteRetentionPolicy(group.value()));
  }

  Outcome<json> Tag(const std::string& group, const json& in) {
    auto tags = OptStringMap(in, "tags");
    if (!tags.ok()) return tags.error();
    if (tags.value().empty()) return Missing("tags");
    return Done(logs_.TagLogGroup(group, tags.value()));
  }
  Outcome<json> Untag(const std::string& group, const json& in, const char* key) {
    auto keys = OptStringList(in, key);
    if (!keys.ok()) return keys.error();
    if (keys.value().empty()) return Missing(key);
    return Done(logs_.UntagLogGroup(group, keys.value()));
  }
  Outcome<json> Tags(const std::string& group) {
    auto g = logs_.GetLogGroup(group);
    if (!g.ok()) return ToError(g.status());
    return json{{"tags", g->tags}};
  }

  Outcome<json> TagLogGroup(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    return Tag(group.value(), in);
  }
  Outcome<json> UntagLogGroup(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    return Untag(group.value(), in, "tags");
  }
  Outcome<json> ListTagsLogGroup(const json& in, Call&) {
    auto group = ReqString(in, "logGroupName");
    if (!group.ok()) return group.error();
    return Tags(group.value());
  }
  Outcome<std::string> ArnGroup(const json& in) {
    auto arn = ReqString(in, "resourceArn");
    if (!arn.ok()) return arn.error();
    return GroupOfArn(arn.value());
  }
  Outcome<json> TagResource(const json& in, Call&) {
    auto group = ArnGroup(in);
    if (!group.ok()) return group.error();
    return Tag(group.value(), in);
  }
  Outcome<json> UntagResource(const json& in, Call&) {
    auto group = ArnGroup(in);
    if (!group.ok()) return group.error();
    return Untag(group.value(), in, "tagKeys");
  }
  Outcome<json> ListTagsForResource(const json& in, Call&) {
    auto group = ArnGroup(in);
    if (!group.ok()) return group.error();
    return Tags(group.value());
  }

  Logs& logs_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeLogsService(Logs& logs) { return Api(logs).Build(); }

}  // namespace logs
