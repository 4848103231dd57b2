#include "services/sqs/api.h"

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "aws/protocol.h"
#include "aws/query.h"
#include "aws/xml.h"
#include "base/strings.h"

namespace sqs {

namespace {

using aws::Call;
using aws::Outcome;
using nlohmann::json;

constexpr char kXmlns[] = "http://queue.amazonaws.com/doc/2012-11-05/";
using Done = std::function<void(Outcome<json>)>;

// ---- Errors ----

aws::Error SqsError(const std::string& code, const std::string& message, int status = 400) {
  return aws::MakeError(status, code, message);
}

aws::Error ToError(const base::Status& s) {
  switch (s.code()) {
    case base::Code::kNotFound:
      return SqsError("AWS.SimpleQueueService.NonExistentQueue",
                      "The specified queue does not exist.");
    case base::Code::kAlreadyExists:
      return SqsError("QueueAlreadyExists", s.message());
    case base::Code::kFailedPrecondition:
      return SqsError("AWS.SimpleQueueService.MessageNotInflight", s.message());
    case base::Code::kInvalidArgument: {
      size_t colon = s.message().find(':');
      if (colon != std::string::npos && colon < 40)
        return SqsError(s.message().substr(0, colon), s.message().substr(colon + 1));
      return SqsError("InvalidParameterValue", s.message());
    }
    default:
      return SqsError("InternalError", "We encountered an internal error. Please try again.", 500);
  }
}

aws::Error Missing(const std::string& param) {
  return SqsError("MissingParameter", "The request must contain the parameter " + param + ".");
}

// ---- Query parameters → the JSON protocol's input shape ----

bool IsIntField(const std::string& k) {
  return k == "DelaySeconds" || k == "MaxNumberOfMessages" || k == "VisibilityTimeout" ||
         k == "WaitTimeSeconds" || k == "MaxResults";
}

// `params`: name → value with a common prefix already removed.
json FromQuery(const std::map<std::string, std::string>& params) {
  json out = json::object();
  std::map<std::string, std::map<std::string, std::string>> groups;  // "Attribute.1" → rest
  for (const auto& [k, v] : params) {
    auto dot = k.find('.');
    if (dot == std::string::npos) {
      if (IsIntField(k) && !v.empty() && v.find_first_not_of("-0123456789") == std::string::npos) {
        out[k] = std::atoll(v.c_str());
      } else {
        out[k] = v;
      }
      continue;
    }
    std::string head = k.substr(0, dot);
    std::string rest = k.substr(dot + 1);
    auto dot2 = rest.find('.');
    std::string index = rest.substr(0, dot2);
    std::string tail = dot2 == std::string::npos ? "" : rest.substr(dot2 + 1);
    groups[head + "." + index][tail] = v;
  }
  // Lists keep their member order by index.
  std::map<std::string, std::map<int, std::map<std::string, std::string>>> by_head;
  for (auto& [hi, fields] : groups) {
    auto dot = hi.find('.');
    by_head[hi.substr(0, dot)][std::atoi(hi.c_str() + dot + 1)] = fields;
  }
  for (auto& [head, items] : by_head) {
    if (head == "Attribute") {
      json m = json::object();
      for (auto& [i, f] : items) m[f["Name"]] = f["Value"];
      out["Attributes"] = m;
    } else if (head == "Tag") {
      json m = json::object();
      for (auto& [i, f] : items) m[f["Key"]] = f["Value"];
      out["tags"] = m;
      out["Tags"] = m;
    } else if (head == "MessageAttribute" || head == "MessageSystemAttribute") {
      json m = json::object();
      for (auto& [i, f] : items) {
        json a = json::object();
        if (f.count("Value.DataType")) a["DataType"] = f["Value.DataType"];
        if (f.count("Value.StringValue")) a["StringValue"] = f["Value.StringValue"];
        if (f.count("Value.BinaryValue")) a["BinaryValue"] = f["Value.BinaryValue"];
        m[f["Name"]] = a;
      }
      out[head == "MessageAttribute" ? "MessageAttributes" : "MessageSystemAttributes"] = m;
    } else if (head == "AttributeName" || head == "MessageAttributeName" ||
               head == "MessageSystemAttributeName" || head == "TagKey") {
      json a = json::array();
      for (auto& [i, f] : items) a.push_back(f[""]);
      out[head == "TagKey" ? "TagKeys" : head + "s"] = a;
    } else if (head.size() > 12 && head.compare(head.size() - 12, 12, "RequestEntry") == 0) {
      json a = json::array();
      for (auto& [i, f] : items) a.push_back(FromQuery(f));
      out["Entries"] = a;
    }
  }
  return out;
}

// ---- Output JSON → the Query protocol's XML ----

std::string X(const std::string& name, const std::string& value) {
  return "<" + name + ">" + aws::XmlEscape(value) + "</" + name + ">";
}

std::string MessageAttributesXml(const json& attrs, const char* element) {
  std::string out;
  for (auto& [k, a] : attrs.items()) {
    out += "<" + std::string(element) + ">" + X("Name", k) + "<Value>";
    if (a.contains("StringValue")) out += X("StringValue", a["StringValue"].get<std::string>());
    if (a.contains("BinaryValue")) out += X("BinaryValue", a["BinaryValue"].get<std::string>());
    out += X("DataType", a.value("DataType", "")) + "</Value></" + element + ">";
  }
  return out;
}

std::string ToXml(const std::string& op, const json& o) {
  std::string out;
  for (const char* f :
       {"QueueUrl", "MessageId", "MD5OfMessageBody", "MD5OfMessageAttributes", "SequenceNumber"})
    if (o.contains(f) && o[f].is_string()) out += X(f, o[f].get<std::string>());
  if (o.contains("QueueUrls"))
    for (const auto& u : o["QueueUrls"]) out += X("QueueUrl", u.get<std::string>());
  if (o.contains("Attributes"))
    for (auto& [k, v] : o["Attributes"].items())
      out += "<Attribute>" + X("Name", k) + X("Value", v.get<std::string>()) + "</Attribute>";
  if (o.contains("Tags"))
    for (auto& [k, v] : o["Tags"].items())
      out += "<Tag>" + X("Key", k) + X("Value", v.get<std::string>()) + "</Tag>";
  if (o.contains("Messages")) {
    for (const auto& m : o["Messages"]) {
      out += "<Message>";
      for (const char* f : {"MessageId", "ReceiptHandle", "MD5OfBody", "Body"})
        out += X(f, m.value(f, ""));
      if (m.contains("Attributes"))
        for (auto& [k, v] : m["Attributes"].items())
          out += "<Attribute>" + X("Name", k) + X("Value", v.get<std::string>()) + "</Attribute>";
      if (m.contains("MD5OfMessageAttributes"))
        out += X("MD5OfMessageAttributes", m["MD5OfMessageAttributes"].get<std::string>());
      if (m.contains("MessageAttributes"))
        out += MessageAttributesXml(m["MessageAttributes"], "MessageAttribute");
      out += "</Message>";
    }
  }
  if (o.contains("Successful")) {
    for (const auto& e : o["Successful"]) {
      out += "<" + op + "ResultEntry>";
      for (auto& [k, v] : e.items()) out += X(k, v.get<std::string>());
      out += "</" + op + "ResultEntry>";
    }
  }
  if (o.contains("Failed")) {
    for (const auto& e : o["Failed"]) {
      out += "<BatchResultErrorEntry>" + X("Id", e.value("Id", "")) +
             X("SenderFault", e.value("SenderFault", true) ? "true" : "false") +
             X("Code", e.value("Code", "")) + X("Message", e.value("Message", "")) +
             "</BatchResultErrorEntry>";
    }
  }
  return out;
}

// ---- Reading the input ----

const std::string* Str(const json& in, const char* k) {
  auto it = in.find(k);
  if (it == in.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

Outcome<int> Int(const json& in, const char* k, int fallback) {
  auto it = in.find(k);
  if (it == in.end() || it->is_null()) return fallback;
  if (it->is_number_integer()) return static_cast<int>(it->get<int64_t>());
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    if (!s.empty() && s.size() < 10 && s.find_first_not_of("-0123456789") == std::string::npos)
      return std::atoi(s.c_str());
  }
  return SqsError("InvalidParameterValue", "Value " + it->dump() + " for parameter " + k +
                                               " is invalid. Reason: must "
                                               "be a number.");
}

std::map<std::string, std::string> StrMap(const json& in, const char* k) {
  std::map<std::string, std::string> out;
  auto it = in.find(k);
  if (it == in.end() || !it->is_object()) return out;
  for (auto& [key, v] : it->items())
    if (v.is_string()) out[key] = v.get<std::string>();
  return out;
}

std::vector<std::string> StrList(const json& in, const char* k) {
  std::vector<std::string> out;
  auto it = in.find(k);
  if (it == in.end() || !it->is_array()) return out;
  for (const auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

Outcome<MessageAttributes> ReadMessageAttributes(const json& in) {
  MessageAttributes out;
  auto it = in.find("MessageAttributes");
  if (it == in.end() || !it->is_object()) return out;
  for (auto& [k, a] : it->items()) {
    MessageAttribute ma;
    ma.data_type = a.value("DataType", "");
    ma.string_value = a.value("StringValue", "");
    if (a.contains("BinaryValue")) {
      auto raw = base::Base64Decode(a["BinaryValue"].get<std::string>());
      if (!raw)
        return SqsError("InvalidParameterValue",
                        "The message attribute '" + k + "' has an invalid binary value.");
      ma.binary_value = *raw;
    }
    out[k] = ma;
  }
  return out;
}

json AttributesJson(const MessageAttributes& attrs) {
  json m = json::object();
  for (const auto& [k, a] : attrs) {
    json v{{"DataType", a.data_type}};
    if (a.data_type.rfind("Binary", 0) == 0) {
      v["BinaryValue"] = base::Base64Encode(a.binary_value);
    } else {
      v["StringValue"] = a.string_value;
    }
    m[k] = v;
  }
  return m;
}

// ---- The service ----

struct Op {
  std::string action;  // "sqs:SendMessage"
  bool queue = true;   // acts on the queue named by QueueUrl (resource = its ARN)
  std::function<void(const json& in, const std::string& queue, Call&, Done)> run;
};

class SqsService : public aws::Service {
 public:
  explicit SqsService(Queues& q) : q_(q) { Build(); }

  std::string_view signing_name() const override { return "sqs"; }
  aws::Protocol protocol() const override { return aws::Protocol::kQuery; }
  std::string_view xml_namespace() const override { return kXmlns; }

  void Handle(Call& call, http::Request&& req, http::Responder respond) override {
    const std::string* target = req.Find("X-Amz-Target");
    bool json_protocol = target != nullptr;
    std::string op_name;
    json input;
    if (json_protocol) {
      op_name = target->substr(target->find('.') + 1);
      input = req.body.empty() ? json::object() : json::parse(req.body, nullptr, false);
      if (!input.is_object()) {
        return respond(JsonError(call, SqsError("SerializationException",
                                                "Start of structure or map found where not "
                                                "expected.")));
      }
    } else {
      auto params = aws::QueryParams::FromRequest(req);
      if (!params.ok()) return respond(QueryError(call, params.error()));
      std::map<std::string, std::string> values = params.value().values();
      op_name = values["Action"];
      values.erase("Action");
      values.erase("Version");
      input = FromQuery(values);
      // The Query protocol may address the queue by the request path (/ACCOUNT/NAME).
      if (!input.contains("QueueUrl") && req.path.size() > 1)
        input["QueueUrl"] = "http://host" + req.path;
    }
    call.operation = op_name;
    auto reply = [this, &call, json_protocol, op_name, respond](Outcome<json> out) {
      if (!out.ok())
        return respond(json_protocol ? JsonError(call, out.error())
                                     : QueryError(call, out.error()));
      http::Response r;
      if (json_protocol) {
        r.Set("Content-Type", "application/x-amz-json-1.0");
        r.body = out.value().dump(-1, ' ', false, json::error_handler_t::replace);
        aws::AddRequestIdHeaders(r, aws::Protocol::kJson, call.request_id);
      } else {
        r.Set("Content-Type", "text/xml");
        r.body = "<?xml version=\"1.0\"?><" + op_name + "Response xmlns=\"" + kXmlns + "\"><" +
                 op_name + "Result>" + ToXml(op_name, out.value()) + "</" + op_name +
                 "Result><ResponseMetadata><RequestId>" + call.request_id +
                 "</RequestId></ResponseMetadata></" + op_name + "Response>";
        aws::AddRequestIdHeaders(r, aws::Protocol::kQuery, call.request_id);
      }
      respond(std::move(r));
    };
    auto it = ops_.find(op_name);
    if (it == ops_.end())
      return reply(
          SqsError("InvalidAction", "The action " + op_name + " is not valid for this endpoint."));
    const Op& op = it->second;
    std::string queue;
    std::string resource = "*";
    if (op.queue) {
      const std::string* url = Str(input, "QueueUrl");
      if (url == nullptr) return reply(Missing("QueueUrl"));
      queue = q_.NameFromUrl(*url);
      if (queue.empty() || !q_.Exists(queue))
        return reply(SqsError("AWS.SimpleQueueService.NonExistentQueue",
                              "The specified queue does not exist."));
      resource = q_.QueueArn(queue);
    } else if (const std::string* name = Str(input, "QueueName")) {
      resource = q_.QueueArn(*name);
    }
    if (auto denied = call.Authorize(op.action, resource, {})) return reply(*denied);
    // `call` outlives the answer: the edge keeps it until the response is sent.
    op.run(input, queue, call, std::move(reply));
  }

 private:
  http::Response QueryError(const Call& call, const aws::Error& e) const {
    aws::Error err = e;
    if (err.code == "AWS.SimpleQueueService.NonExistentQueue")
      err.message = "The specified queue does not exist for this wsdl version.";
    return aws::RenderError(aws::Protocol::kQuery, err, call.request_id, kXmlns);
  }

  http::Response JsonError(const Call& call, const aws::Error& e) const {
    std::string type = e.code;
    static const std::map<std::string, std::string> kTypes = {
        {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"},
        {"QueueAlreadyExists", "QueueNameExists"},
        {"AWS.SimpleQueueService.MessageNotInflight", "MessageNotInflight"},
        {"InvalidParameterValue", "InvalidParameterValueException"},
        {"AWS.SimpleQueueService.BatchEntryIdsNotDistinct", "BatchEntryIdsNotDistinct"},
        {"AWS.SimpleQueueService.EmptyBatchRequest", "EmptyBatchRequest"},
        {"AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "TooManyEntriesInBatchRequest"},
        {"AWS.SimpleQueueService.InvalidBatchEntryId", "InvalidBatchEntryId"},
    };
    if (auto it = kTypes.find(e.code); it != kTypes.end()) type = it->second;
    http::Response r;
    r.status = e.status;
    r.Set("Content-Type", "application/x-amz-json-1.0");
    r.Set("x-amzn-query-error", e.code + ";" + (e.sender ? "Sender" : "Receiver"));
    r.body = json{{"__type", "com.amazonaws.sqs#" + type}, {"message", e.message}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
    aws::AddRequestIdHeaders(r, aws::Protocol::kJson, call.request_id);
    return r;
  }

  void Add(const std::string& name, bool queue,
           std::function<void(const json&, const std::string&, Call&, Done)> run) {
    ops_[name] = Op{"sqs:" + name, queue, std::move(run)};
  }

  static Outcome<ReceiveRequest> ReadReceive(const json& in) {
    ReceiveRequest r;
    auto max = Int(in, "MaxNumberOfMessages", 1);
    if (!max.ok()) return max.error();
    if (max.value() < 1 || max.value() > 10)
      return SqsError("InvalidParameterValue",
                      "Value " + std::to_string(max.value()) +
                          " for parameter MaxNumberOfMessages is invalid. Reason: Must be "
                          "between 1 and 10, if provided.");
    r.max_messages = max.value();
    auto vis = Int(in, "VisibilityTimeout", -1);
    if (!vis.ok()) return vis.error();
    if (vis.value() > 43200)
      return SqsError("InvalidParameterValue",
                      "Value " + std::to_string(vis.value()) +
                          " for parameter VisibilityTimeout is invalid. Reason: Must be between "
                          "0 and 43200, if provided.");
    r.visibility_timeout = vis.value();
    auto wait = Int(in, "WaitTimeSeconds", -1);
    if (!wait.ok()) return wait.error();
    if (wait.value() > 20)
      return SqsError("InvalidParameterValue",
                      "Value " + std::to_string(wait.value()) +
                          " for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and "
                          "<= 20, if provided.");
    r.wait_seconds = wait.value();
    r.attribute_names = StrList(in, "AttributeNames");
    for (const auto& n : StrList(in, "MessageSystemAttributeNames")) r.attribute_names.push_back(n);
    r.message_attribute_names = StrList(in, "MessageAttributeNames");
    return r;
  }

  static json ReceivedJson(const std::vector<ReceivedMessage>& msgs) {
    json list = json::array();
    for (const auto& m : msgs) {
      json j{{"MessageId", m.message_id},
             {"ReceiptHandle", m.receipt_handle},
             {"MD5OfBody", m.md5_body},
             {"Body", m.body}};
      if (!m.attributes.empty()) j["Attributes"] = m.attributes;
      if (!m.message_attributes.empty()) {
        j["MessageAttributes"] = AttributesJson(m.message_attributes);
        j["MD5OfMessageAttributes"] = m.md5_attributes;
      }
      list.push_back(std::move(j));
    }
    json out = json::object();
    if (!list.empty()) out["Messages"] = list;
    return out;
  }

  Outcome<SendRequest> ReadSend(const json& in) {
    SendRequest s;
    if (const std::string* b = Str(in, "MessageBody")) s.body = *b;
    auto delay = Int(in, "DelaySeconds", -1);
    if (!delay.ok()) return delay.error();
    s.delay_seconds = delay.value();
    auto attrs = ReadMessageAttributes(in);
    if (!attrs.ok()) return attrs.error();
    s.attributes = attrs.value();
    if (const std::string* g = Str(in, "MessageGroupId")) s.group_id = *g;
    if (const std::string* d = Str(in, "MessageDeduplicationId")) s.dedup_id = *d;
    return s;
  }

  static json SentJson(const SentMessage& m) {
    json j{{"MessageId", m.message_id}, {"MD5OfMessageBody", m.md5_body}};
    if (!m.md5_attributes.empty()) j["MD5OfMessageAttributes"] = m.md5_attributes;
    if (!m.sequence_number.empty()) j["SequenceNumber"] = m.sequence_number;
    return j;
  }

  // Batch requests: 1..10 entries with distinct, well-formed ids.
  static std::optional<aws::Error> CheckEntries(const json& in) {
    auto it = in.find("Entries");
    if (it == in.end() || !it->is_array() || it->empty())
      return SqsError("AWS.SimpleQueueService.EmptyBatchRequest",
                      "There should be at least one SendMessageBatchRequestEntry in the "
                      "request.");
    if (it->size() > 10)
      return SqsError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                      "Maximum number of entries per request are 10. You have sent " +
                          std::to_string(it->size()) + ".");
    std::set<std::string> ids;
    for (const auto& e : *it) {
      std::string id = e.is_object() ? e.value("Id", "") : "";
      bool ok = !id.empty() && id.size() <= 80;
      for (char c : id)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
      if (!ok)
        return SqsError("AWS.SimpleQueueService.InvalidBatchEntryId",
                        "A batch entry id can only contain alphanumeric characters, hyphens and "
                        "underscores. It can be at most 80 letters long.");
      if (!ids.insert(id).second)
        return SqsError("AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                        "Id " + id + " repeated.");
    }
    return std::nullopt;
  }

  static json Failure(const std::string& id, const aws::Error& e) {
    return json{{"Id", id}, {"SenderFault", e.sender}, {"Code", e.code}, {"Message", e.message}};
  }

  void Build() {
    Add("CreateQueue", false, [this](const json& in, const std::string&, Call&, Done done) {
      const std::string* name = Str(in, "QueueName");
      if (name == nullptr) return done(Missing("QueueName"));
      auto url = q_.CreateQueue(*name, StrMap(in, "Attributes"), StrMap(in, "tags"));
      if (!url.ok()) return done(ToError(url.status()));
      done(json{{"QueueUrl", url.value()}});
    });
    Add("GetQueueUrl", false, [this](const json& in, const std::string&, Call&, Done done) {
      const std::string* name = Str(in, "QueueName");
      if (name == nullptr) return done(Missing("QueueName"));
      if (!q_.Exists(*name)) return done(ToError(base::NotFound("")));
      done(json{{"QueueUrl", q_.QueueUrl(*name)}});
    });
    Add("ListQueues", false, [this](const json& in, const std::string&, Call&, Done done) {
      const std::string* prefix = Str(in, "QueueNamePrefix");
      auto urls = q_.ListQueues(prefix ? *prefix : "");
      if (!urls.ok()) return done(ToError(urls.status()));
      json out = json::object();
      if (!urls->empty()) out["QueueUrls"] = urls.value();
      done(out);
    });
    Add("DeleteQueue", true, [this](const json&, const std::string& q, Call&, Done done) {
      base::Status st = q_.DeleteQueue(q);
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("GetQueueAttributes", true, [this](const json& in, const std::string& q, Call&, Done done) {
      auto names = StrList(in, "AttributeNames");
      if (names.empty()) return done(json::object());
      auto attrs = q_.GetAttributes(q, names);
      if (!attrs.ok()) return done(ToError(attrs.status()));
      json out = json::object();
      if (!attrs->empty()) out["Attributes"] = attrs.value();
      done(out);
    });
    Add("SetQueueAttributes", true, [this](const json& in, const std::string& q, Call&, Done done) {
      base::Status st = q_.SetAttributes(q, StrMap(in, "Attributes"));
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("ListQueueTags", true, [this](const json&, const std::string& q, Call&, Done done) {
      auto tags = q_.ListTags(q);
      if (!tags.ok()) return done(ToError(tags.status()));
      json out = json::object();
      if (!tags->empty()) out["Tags"] = tags.value();
      done(out);
    });
    Add("TagQueue", true, [this](const json& in, const std::string& q, Call&, Done done) {
      base::Status st = q_.Tag(q, StrMap(in, "Tags"));
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("UntagQueue", true, [this](const json& in, const std::string& q, Call&, Done done) {
      base::Status st = q_.Untag(q, StrList(in, "TagKeys"));
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("PurgeQueue", true, [this](const json&, const std::string& q, Call&, Done done) {
      base::Status st = q_.Purge(q);
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("SendMessage", true, [this](const json& in, const std::string& q, Call&, Done done) {
      if (!Str(in, "MessageBody")) return done(Missing("MessageBody"));
      auto req = ReadSend(in);
      if (!req.ok()) return done(req.error());
      auto sent = q_.Send(q, req.value());
      if (!sent.ok()) return done(ToError(sent.status()));
      done(SentJson(sent.value()));
    });
    Add("SendMessageBatch", true, [this](const json& in, const std::string& q, Call&, Done done) {
      if (auto bad = CheckEntries(in)) return done(*bad);
      json ok = json::array(), failed = json::array();
      for (const auto& e : in["Entries"]) {
        std::string id = e.value("Id", "");
        auto req = ReadSend(e);
        if (!req.ok()) {
          failed.push_back(Failure(id, req.error()));
          continue;
        }
        if (!Str(e, "MessageBody")) {
          failed.push_back(Failure(id, Missing("MessageBody")));
          continue;
        }
        auto sent = q_.Send(q, req.value());
        if (!sent.ok()) {
          failed.push_back(Failure(id, ToError(sent.status())));
          continue;
        }
        json j = SentJson(sent.value());
        j["Id"] = id;
        ok.push_back(j);
      }
      done(json{{"Successful", ok}, {"Failed", failed}});
    });
    Add("ReceiveMessage", true, [this](const json& in, const std::string& q, Call&, Done done) {
      auto req = ReadReceive(in);
      if (!req.ok()) return done(req.error());
      q_.Receive(q, req.value(), [done](base::Result<std::vector<ReceivedMessage>> r) {
        if (!r.ok()) return done(ToError(r.status()));
        done(ReceivedJson(r.value()));
      });
    });
    Add("DeleteMessage", true, [this](const json& in, const std::string& q, Call&, Done done) {
      const std::string* h = Str(in, "ReceiptHandle");
      if (h == nullptr) return done(Missing("ReceiptHandle"));
      base::Status st = q_.Delete(q, *h);
      if (!st.ok()) return done(ToError(st));
      done(json::object());
    });
    Add("DeleteMessageBatch", true, [this](const json& in, const std::string& q, Call&, Done done) {
      if (auto bad = CheckEntries(in)) return done(*bad);
      json ok = json::array(), failed = json::array();
      for (const auto& e : in["Entries"]) {
        std::string id = e.value("Id", "");
        base::Status st = q_.Delete(q, e.value("ReceiptHandle", ""));
        if (!st.ok()) {
          failed.push_back(Failure(id, ToError(st)));
        } else {
          ok.push_back(json{{"Id", id}});
        }
      }
      done(json{{"Successful", ok}, {"Failed", failed}});
    });
    Add("ChangeMessageVisibility", true,
        [this](const json& in, const std::string& q, Call&, Done done) {
          const std::string* h = Str(in, "ReceiptHandle");
          if (h == nullptr) return done(Missing("ReceiptHandle"));
          auto vis = Int(in, "VisibilityTimeout", -1);
          if (!vis.ok()) return done(vis.error());
          if (vis.value() < 0) return done(Missing("VisibilityTimeout"));
          base::Status st = q_.ChangeVisibility(q, *h, vis.value());
          if (!st.ok()) return done(ToError(st));
          done(json::object());
        });
    Add("ChangeMessageVisibilityBatch", true,
        [this](const json& in, const std::string& q, Call&, Done done) {
          if (auto bad = CheckEntries(in)) return done(*bad);
          json ok = json::array(), failed = json::array();
          for (const auto& e : in["Entries"]) {
            std::string id = e.value("Id", "");
            auto vis = Int(e, "VisibilityTimeout", 0);
            base::Status st =
                vis.ok() ? q_.ChangeVisibility(q, e.value("ReceiptHandle", ""), vis.value())
                         : base::InvalidArgument("InvalidParameterValue:" + vis.error().message);
            if (!st.ok()) {
              failed.push_back(Failure(id, ToError(st)));
            } else {
              ok.push_back(json{{"Id", id}});
            }
          }
          done(json{{"Successful", ok}, {"Failed", failed}});
        });
  }

  Queues& q_;
  std::map<std::string, Op> ops_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeSqsService(Queues& queues) {
  return std::make_unique<SqsService>(queues);
}

}  // namespace sqs
