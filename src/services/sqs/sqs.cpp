#include "services/sqs/sqs.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "base/crypto.h"
#include "base/ids.h"
#include "base/strings.h"

namespace sqs {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;

const std::string kQueuePrefix = "/sqs/q/";
const std::string kMsgPrefix = "/sqs/m/";
constexpr int64_t kDedupWindowMs = 5 * 60 * 1000;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string MsgKey(const std::string& queue, uint64_t seq) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(seq));
  return kMsgPrefix + queue + "/" + buf;
}

struct AttrSpec {
  const char* name;
  const char* fallback;
  int64_t min, max;  // numeric range; min > max = not numeric
};
const AttrSpec kAttrs[] = {
    {"DelaySeconds", "0", 0, 900},
    {"MaximumMessageSize", "262144", 1024, 262144},
    {"MessageRetentionPeriod", "345600", 60, 1209600},
    {"ReceiveMessageWaitTimeSeconds", "0", 0, 20},
    {"VisibilityTimeout", "30", 0, 43200},
    {"RedrivePolicy", "", 1, 0},
    {"RedriveAllowPolicy", "", 1, 0},
    {"Policy", "", 1, 0},
    {"FifoQueue", "", 1, 0},
    {"ContentBasedDeduplication", "", 1, 0},
    {"DeduplicationScope", "", 1, 0},
    {"FifoThroughputLimit", "", 1, 0},
    {"KmsMasterKeyId", "", 1, 0},
    {"KmsDataKeyReusePeriodSeconds", "", 60, 86400},
    {"SqsManagedSseEnabled", "", 1, 0},
};
const char* kReadOnly[] = {"ApproximateNumberOfMessages",
                           "ApproximateNumberOfMessagesNotVisible",
                           "ApproximateNumberOfMessagesDelayed",
                           "CreatedTimestamp",
                           "LastModifiedTimestamp",
                           "QueueArn"};

const AttrSpec* FindAttr(const std::string& name) {
  for (const auto& a : kAttrs)
    if (name == a.name) return &a;
  return nullptr;
}

bool ValidXmlChars(const std::string& s) {
  // SQS allows #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int len;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c >> 5) == 6) {
      cp = c & 0x1f;
      len = 2;
    } else if ((c >> 4) == 14) {
      cp = c & 0x0f;
      len = 3;
    } else if ((c >> 3) == 30) {
      cp = c & 0x07;
      len = 4;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    bool ok = cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
              (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
    if (!ok) return false;
    i += len;
  }
  return true;
}

struct Msg {
  uint64_t seq = 0;
  std::string id, body, md5, md5_attrs;
  MessageAttributes attrs;
  int64_t sent_ms = 0, first_receive_ms = 0;
  int receive_count = 0;
  std::string group, dedup, sequence_number;
  int64_t visible_at_ms = 0;
  std::string token;  // the current receipt's token while received
};

json MsgToJson(const Msg& m) {
  json attrs = json::object();
  for (const auto& [k, a] : m.attrs)
    attrs[k] = {
        {"t", a.data_type}, {"s", a.string_value}, {"b", base::Base64Encode(a.binary_value)}};
  return json{{"id", m.id},
              {"body", m.body},
              {"attrs", attrs},
              {"sent", m.sent_ms},
              {"first", m.first_receive_ms},
              {"count", m.receive_count},
              {"group", m.group},
              {"dedup", m.dedup},
              {"sn", m.sequence_number},
              {"visible", m.visible_at_ms}};
}

Result<Msg> MsgFromJson(const std::string& s, uint64_t seq) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("sqs: message record is not JSON");
  Msg m;
  m.seq = seq;
  try {
    m.id = j.at("id").get<std::string>();
    m.body = j.at("body").get<std::string>();
    for (auto& [k, a] : j.at("attrs").items()) {
      MessageAttribute ma;
      ma.data_type = a.at("t").get<std::string>();
      ma.string_value = a.at("s").get<std::string>();
      ma.binary_value = base::Base64Decode(a.at("b").get<std::string>()).value_or("");
      m.attrs[k] = ma;
    }
    m.sent_ms = j.at("sent").get<int64_t>();
    m.first_receive_ms = j.at("first").get<int64_t>();
    m.receive_count = j.at("count").get<int>();
    m.group = j.at("group").get<std::string>();
    m.dedup = j.at("dedup").get<std::string>();
    m.sequence_number = j.at("sn").get<std::string>();
    m.visible_at_ms = j.value("visible", int64_t{0});
  } catch (const json::exception& e) {
    return base::Corruption(std::string("sqs: bad message record: ") + e.what());
  }
  m.md5 = Md5Hex(m.body);
  m.md5_attrs = AttributesMd5(m.attrs);
  return m;
}

struct Waiter {
  ReceiveRequest req;
  int64_t deadline_ms;
  std::function<void(Result<std::vector<ReceivedMessage>>)> done;
};

struct Queue {
  std::string name;
  std::map<std::string, std::string> attrs, tags;
  bool fifo = false;
  int64_t created_s = 0, modified_s = 0;
  std::map<uint64_t, Msg> msgs;
  std::map<std::string, std::pair<std::string, int64_t>> dedup;  // id -> (message id, expiry)
  std::vector<Waiter> waiters;
};

json QueueToJson(const Queue& q) {
  return json{{"name", q.name},
              {"attrs", q.attrs},
              {"tags", q.tags},
              {"created", q.created_s},
              {"modified", q.modified_s}};
}

}  // namespace

std::string Md5Hex(const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
  return base::HexEncode(std::string(reinterpret_cast<char*>(out), len));
}

std::string AttributesMd5(const MessageAttributes& attributes) {
  if (attributes.empty()) return "";
  std::string buf;
  auto put = [&buf](const std::string& s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    char len[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                   static_cast<char>(n >> 8), static_cast<char>(n)};
    buf.append(len, 4);
    buf += s;
  };
  for (const auto& [name, a] : attributes) {  // std::map: sorted by name, as SQS requires
    put(name);
    put(a.data_type);
    bool binary = a.data_type.rfind("Binary", 0) == 0;
    buf.push_back(binary ? 2 : 1);
    put(binary ? a.binary_value : a.string_value);
  }
  return Md5Hex(buf);
}

namespace {

class QueuesImpl : public Queues {
 public:
  QueuesImpl(store::Store* store, Options o) : store_(store), o_(std::move(o)) {
    if (!o_.clock) o_.clock = &base::SystemClock();
  }

  Status Load() {
    ASSIGN_OR_RETURN(store::RangeResult qs, store_->Range(store::KeyRange::Prefix(kQueuePrefix)));
    for (const auto& kv : qs.kvs) {
      json j = json::parse(kv.value, nullptr, false);
      if (!j.is_object()) continue;
      auto q = std::make_unique<Queue>();
      q->name = j.value("name", "");
      q->attrs = j.value("attrs", std::map<std::string, std::string>{});
      q->tags = j.value("tags", std::map<std::string, std::string>{});
      q->created_s = j.value("created", int64_t{0});
      q->modified_s = j.value("modified", int64_t{0});
      q->fifo = q->attrs.count("FifoQueue") && q->attrs["FifoQueue"] == "true";
      queues_[q->name] = std::move(q);
    }
    ASSIGN_OR_RETURN(store::RangeResult ms, store_->Range(store::KeyRange::Prefix(kMsgPrefix)));
    uint64_t max_seq = 0;
    for (const auto& kv : ms.kvs) {
      std::string rest = kv.key.substr(kMsgPrefix.size());
      size_t slash = rest.rfind('/');
      if (slash == std::string::npos) continue;
      std::string qname = rest.substr(0, slash);
      uint64_t seq = std::strtoull(rest.c_str() + slash + 1, nullptr, 10);
      max_seq = std::max(max_seq, seq);
      auto it = queues_.find(qname);
      if (it == queues_.end()) continue;
      auto m = MsgFromJson(kv.value, seq);
      if (!m.ok()) {
        spdlog::error("sqs: skipping {}: {}", kv.key, m.status().ToString());
        continue;
      }
      // In flight when the server stopped: the old receipt handles are void (their tokens
      // lived in memory), the message shows again when its visibility timeout ends.
      it->second->msgs[seq] = std::move(m).value();
    }
    next_seq_ = max_seq + 1;
    timer_ = std::thread([this] { TimerLoop(); });
    return Status::Ok();
  }

  ~QueuesImpl() override { Shutdown(); }

  void Shutdown() override {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& [n, q] : queues_) {
        for (auto& w : q->waiters) waiters.push_back(std::move(w));
        q->waiters.clear();
      }
    }
    cv_.notify_all();
    if (timer_.joinable()) timer_.join();
    for (auto& w : waiters) w.done(std::vector<ReceivedMessage>{});
  }

  std::string QueueUrl(const std::string& name) const override {
    return o_.endpoint + "/" + o_.account_id + "/" + name;
  }
  std::string QueueArn(const std::string& name) const override {
    return "arn:aws:sqs:" + o_.region + ":" + o_.account_id + ":" + name;
  }
  std::string NameFromUrl(const std::string& url) const override {
    // http(s)://host[:port]/ACCOUNT/NAME, whatever the host (clients build URLs from their
    // endpoint, e.g. sqs.us-east-1.amazonaws.com).
    size_t scheme = url.find("://");
    size_t path = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    if (path == std::string::npos) return "";
    std::string rest = url.substr(path + 1);  // Split's views point into it
    auto parts = base::Split(rest, '/');
    if (parts.size() != 2 || parts[0] != o_.account_id) return "";
    return std::string(parts[1]);
  }
  std::string NameFromArn(const std::string& arn) const override {
    auto parts = base::Split(arn, ':');
    if (parts.size() != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[3] != o_.region ||
        parts[4] != o_.account_id)
      return "";
    return std::string(parts[5]);
  }

  Result<std::string> CreateQueue(const std::string& name,
                                  const std::map<std::string, std::string>& in_attrs,
                                  const std::map<std::string, std::string>& tags) override {
    bool valid = !name.empty() && name.size() <= 80;
    std::string base = name;
    bool fifo_name = name.size() > 5 && name.compare(name.size() - 5, 5, ".fifo") == 0;
    if (fifo_name) base = name.substr(0, name.size() - 5);
    for (char c : base)
      valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_');
    if (!valid)
      return base::InvalidArgument(
          "InvalidParameterValue:Can only include alphanumeric characters, hyphens, or "
          "underscores. 1 to 80 in length");
    std::map<std::string, std::string> attrs;
    for (const auto& [k, v] : in_attrs) {
      RETURN_IF_ERROR(CheckAttr(k, v));
      attrs[k] = v;
    }
    bool fifo = attrs.count("FifoQueue") && attrs["FifoQueue"] == "true";
    if (attrs.count("FifoQueue") && attrs["FifoQueue"] != "true") attrs.erase("FifoQueue");
    if (fifo && !fifo_name)
      return base::InvalidArgument(
          "InvalidParameterValue:The name of a FIFO queue can only include alphanumeric "
          "characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in "
          "length.");
    if (fifo_name && !fifo)
      return base::InvalidArgument(
          "InvalidParameterValue:The name of a FIFO queue can only include alphanumeric "
          "characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in "
          "length.");
    if (!fifo && attrs.count("ContentBasedDeduplication"))
      return base::InvalidArgument(
          "InvalidAttributeName:Unknown Attribute ContentBasedDeduplication.");
    std::lock_guard lock(create_mu_);
    {
      std::lock_guard l2(mu_);
      auto it = queues_.find(name);
      if (it != queues_.end()) {
        for (const auto& [k, v] : attrs) {
          auto cur = it->second->attrs.find(k);
          std::string have = cur != it->second->attrs.end() ? cur->second : Default(k);
          if (have != v)
            return base::AlreadyExists(
                "A queue already exists with the same name and a "
                "different value for attribute " +
                k);
        }
        return QueueUrl(name);
      }
    }
    auto q = std::make_unique<Queue>();
    q->name = name;
    q->attrs = attrs;
    q->tags = tags;
    q->fifo = fifo;
    q->created_s = q->modified_s = NowMs() / 1000;
    RETURN_IF_ERROR(store_->Put(kQueuePrefix + name, Dump(QueueToJson(*q))).status());
    std::lock_guard l2(mu_);
    queues_[name] = std::move(q);
    return QueueUrl(name);
  }

  Status DeleteQueue(const std::string& name) override {
    std::vector<Waiter> waiters;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      waiters = std::move(it->second->waiters);
      queues_.erase(it);
    }
    for (auto& w : waiters) w.done(std::vector<ReceivedMessage>{});
    store::Txn txn;
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kQueuePrefix + name)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(kMsgPrefix + name + "/")));
    return store_->Commit(txn).status();
  }

  Result<std::vector<std::string>> ListQueues(const std::string& prefix) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [n, q] : queues_)
      if (n.rfind(prefix, 0) == 0) out.push_back(QueueUrl(n));
    return out;
  }

  bool Exists(const std::string& name) override {
    std::lock_guard lock(mu_);
    return queues_.count(name) > 0;
  }

  Result<std::map<std::string, std::string>> GetAttributes(
      const std::string& name, const std::vector<std::string>& names) override {
    std::lock_guard lock(mu_);
    auto it = queues_.find(name);
    if (it == queues_.end()) return NoQueue();
    Queue& q = *it->second;
    bool all = std::find(names.begin(), names.end(), "All") != names.end();
    std::map<std::string, std::string> out;
    int64_t now = NowMs();
    int64_t visible = 0, in_flight = 0, delayed = 0;
    for (const auto& [s, m] : q.msgs) {
      if (m.visible_at_ms <= now) {
        visible++;
      } else if (m.receive_count > 0) {
        in_flight++;
      } else {
        delayed++;
      }
    }
    auto add = [&](const std::string& k, const std::string& v) {
      if (all || std::find(names.begin(), names.end(), k) != names.end()) out[k] = v;
    };
    for (const auto& n : names) {
      if (n == "All") continue;
      bool known = FindAttr(n) != nullptr;
      for (const char* r : kReadOnly) known = known || n == r;
      if (!known) return base::InvalidArgument("InvalidAttributeName:Unknown Attribute " + n + ".");
    }
    for (const auto& a : kAttrs) {
      auto v = q.attrs.find(a.name);
      if (v != q.attrs.end()) {
        add(a.name, v->second);
      } else if (*a.fallback) {
        add(a.name, a.fallback);
      }
    }
    add("ApproximateNumberOfMessages", std::to_string(visible));
    add("ApproximateNumberOfMessagesNotVisible", std::to_string(in_flight));
    add("ApproximateNumberOfMessagesDelayed", std::to_string(delayed));
    add("CreatedTimestamp", std::to_string(q.created_s));
    add("LastModifiedTimestamp", std::to_string(q.modified_s));
    add("QueueArn", QueueArn(name));
    if (q.fifo) add("FifoQueue", "true");
    return out;
  }

  Status SetAttributes(const std::string& name,
                       const std::map<std::string, std::string>& attrs) override {
    for (const auto& [k, v] : attrs) {
      if (k == "FifoQueue")
        return base::InvalidArgument("InvalidAttributeName:Unknown Attribute FifoQueue.");
      RETURN_IF_ERROR(CheckAttr(k, v));
    }
    std::string record;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      for (const auto& [k, v] : attrs) {
        if (v.empty() && (k == "RedrivePolicy" || k == "Policy" || k == "RedriveAllowPolicy")) {
          it->second->attrs.erase(k);
        } else {
          it->second->attrs[k] = v;
        }
      }
      it->second->modified_s = NowMs() / 1000;
      record = Dump(QueueToJson(*it->second));
    }
    return store_->Put(kQueuePrefix + name, record).status();
  }

  Result<std::map<std::string, std::string>> ListTags(const std::string& name) override {
    std::lock_guard lock(mu_);
    auto it = queues_.find(name);
    if (it == queues_.end()) return NoQueue();
    return it->second->tags;
  }
  Status Tag(const std::string& name, const std::map<std::string, std::string>& tags) override {
    return ChangeTags(name, [&](std::map<std::string, std::string>& t) {
      for (const auto& [k, v] : tags) t[k] = v;
    });
  }
  Status Untag(const std::string& name, const std::vector<std::string>& keys) override {
    return ChangeTags(name, [&](std::map<std::string, std::string>& t) {
      for (const auto& k : keys) t.erase(k);
    });
  }

  Result<SentMessage> Send(const std::string& name, const SendRequest& req) override {
    if (req.body.empty())
      return base::InvalidArgument(
          "MissingParameter:The request must contain the parameter "
          "MessageBody.");
    if (!ValidXmlChars(req.body))
      return base::InvalidArgument(
          "InvalidMessageContents:Invalid characters found. Valid unicode characters are #x9 | "
          "#xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF");
    if (req.attributes.size() > 10)
      return base::InvalidArgument("InvalidParameterValue:Number of message attributes [" +
                                   std::to_string(req.attributes.size()) +
                                   "] exceeds the allowed maximum [10].");
    size_t size = req.body.size();
    for (const auto& [k, a] : req.attributes) {
      if (a.data_type.empty())
        return base::InvalidArgument("InvalidParameterValue:The message attribute '" + k +
                                     "' must contain non-empty message attribute type.");
      bool binary = a.data_type.rfind("Binary", 0) == 0;
      if (!binary && a.data_type.rfind("String", 0) != 0 && a.data_type.rfind("Number", 0) != 0)
        return base::InvalidArgument(
            "InvalidParameterValue:The type of message (user) attribute '" + k +
            "' is invalid. You must use only the following supported "
            "type prefixes: Binary, Number, String.");
      if ((binary ? a.binary_value : a.string_value).empty())
        return base::InvalidArgument("InvalidParameterValue:The message attribute '" + k +
                                     "' must contain non-empty message attribute value for "
                                     "message attribute type '" +
                                     a.data_type + "'.");
      size += k.size() + a.data_type.size() + a.string_value.size() + a.binary_value.size();
    }
    Msg m;
    int delay;
    int64_t now = NowMs();
    bool deduplicated = false;
    SentMessage sent;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      Queue& q = *it->second;
      int64_t max_size = std::stoll(AttrOf(q, "MaximumMessageSize"));
      if (static_cast<int64_t>(size) > max_size)
        return base::InvalidArgument(
            "InvalidParameterValue:One or more parameters are invalid. "
            "Reason: Message must be shorter than " +
            std::to_string(max_size) + " bytes.");
      delay = req.delay_seconds >= 0 ? req.delay_seconds : std::stoi(AttrOf(q, "DelaySeconds"));
      if (req.delay_seconds > 900)
        return base::InvalidArgument("InvalidParameterValue:Value " +
                                     std::to_string(req.delay_seconds) +
                                     " for parameter DelaySeconds is invalid. Reason: must be "
                                     "<= 0 and >= 900.");
      if (q.fifo) {
        if (req.group_id.empty())
          return base::InvalidArgument(
              "MissingParameter:The request must contain the parameter MessageGroupId.");
        if (req.delay_seconds > 0)
          return base::InvalidArgument(
              "InvalidParameterValue:Value " + std::to_string(req.delay_seconds) +
              " for parameter DelaySeconds is invalid. Reason: The request include parameter "
              "that is not valid for this queue type.");
        delay = 0;
        m.dedup = req.dedup_id;
        if (m.dedup.empty()) {
          if (AttrOf(q, "ContentBasedDeduplication") != "true")
            return base::InvalidArgument(
                "InvalidParameterValue:The queue should either have ContentBasedDeduplication "
                "enabled or MessageDeduplicationId provided explicitly");
          m.dedup = base::HexEncode(base::Sha256(req.body));
        }
        for (auto d = q.dedup.begin(); d != q.dedup.end();)
          d = d->second.second < now ? q.dedup.erase(d) : std::next(d);
        auto d = q.dedup.find(m.dedup);
        if (d != q.dedup.end()) {
          deduplicated = true;
          sent.message_id = d->second.first;
        }
        m.group = req.group_id;
      } else if (!req.group_id.empty() || !req.dedup_id.empty()) {
        // SQS accepts MessageGroupId on standard queues now (fair queues); dedup ids are
        // FIFO-only.
        if (!req.dedup_id.empty())
          return base::InvalidArgument(
              "InvalidParameterValue:The request include parameter that is not valid for this "
              "queue type");
        m.group = req.group_id;
      }
      m.seq = next_seq_++;
    }
    if (deduplicated) {
      sent.md5_body = Md5Hex(req.body);
      sent.md5_attributes = AttributesMd5(req.attributes);
      return sent;
    }
    m.id = base::NewUuid();
    m.body = req.body;
    m.attrs = req.attributes;
    m.md5 = Md5Hex(m.body);
    m.md5_attrs = AttributesMd5(m.attrs);
    m.sent_ms = now;
    m.visible_at_ms = now + int64_t{delay} * 1000;
    if (!m.dedup.empty() || !m.group.empty()) {
      char buf[24];
      std::snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(m.seq));
      m.sequence_number = buf;
    }
    RETURN_IF_ERROR(store_->Put(MsgKey(name, m.seq), Dump(MsgToJson(m))).status());
    sent.message_id = m.id;
    sent.md5_body = m.md5;
    sent.md5_attributes = m.md5_attrs;
    sent.sequence_number = m.dedup.empty() ? "" : m.sequence_number;
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) {
        // Deleted while we wrote: the message goes with it.
        (void)store_->Delete(store::KeyRange::Exact(MsgKey(name, m.seq)));
        return NoQueue();
      }
      if (!m.dedup.empty()) it->second->dedup[m.dedup] = {m.id, now + kDedupWindowMs};
      it->second->msgs[m.seq] = std::move(m);
      ServeWaitersLocked(*it->second, NowMs(), &ready);
    }
    for (auto& r : ready) r();
    if (delay > 0) cv_.notify_all();
    return sent;
  }

  void Receive(const std::string& name, const ReceiveRequest& req,
               std::function<void(Result<std::vector<ReceivedMessage>>)> done) override {
    std::vector<std::function<void()>> ready;
    std::vector<ReceivedMessage> got;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) {
        done(NoQueue());
        return;
      }
      Queue& q = *it->second;
      int wait = req.wait_seconds >= 0 ? req.wait_seconds
                                       : std::stoi(AttrOf(q, "ReceiveMessageWaitTimeSeconds"));
      got = TakeLocked(q, req, NowMs(), &ready);
      if (got.empty() && wait > 0 && !stopping_) {
        q.waiters.push_back(Waiter{req, NowMs() + int64_t{wait} * 1000, std::move(done)});
        cv_.notify_all();
        done = nullptr;
      }
    }
    for (auto& r : ready) r();
    if (done) done(std::move(got));
  }

  Status Delete(const std::string& name, const std::string& handle) override {
    uint64_t seq;
    std::string token;
    RETURN_IF_ERROR(ParseHandle(name, handle, &seq, &token));
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      auto m = it->second->msgs.find(seq);
      if (m == it->second->msgs.end() || m->second.token != token) return Status::Ok();
      it->second->msgs.erase(m);
    }
    return store_->Delete(store::KeyRange::Exact(MsgKey(name, seq))).status();
  }

  Status ChangeVisibility(const std::string& name, const std::string& handle,
                          int seconds) override {
    if (seconds < 0 || seconds > 43200)
      return base::InvalidArgument("InvalidParameterValue:Value " + std::to_string(seconds) +
                                   " for parameter VisibilityTimeout is invalid. Reason: Must "
                                   "be between 0 and 43200, if provided.");
    uint64_t seq;
    std::string token;
    RETURN_IF_ERROR(ParseHandle(name, handle, &seq, &token));
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      auto m = it->second->msgs.find(seq);
      int64_t now = NowMs();
      if (m == it->second->msgs.end() || m->second.token != token || m->second.visible_at_ms <= now)
        return base::FailedPrecondition(
            "Message does not exist or is not available for "
            "visibility timeout change.");
      m->second.visible_at_ms = now + int64_t{seconds} * 1000;
      if (seconds == 0) ServeWaitersLocked(*it->second, now, &ready);
    }
    for (auto& r : ready) r();
    cv_.notify_all();
    return Status::Ok();
  }

  Status Purge(const std::string& name) override {
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      it->second->msgs.clear();
    }
    return store_->Delete(store::KeyRange::Prefix(kMsgPrefix + name + "/")).status();
  }

 private:
  int64_t NowMs() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(o_.clock->Now().time_since_epoch())
        .count();
  }

  static Status NoQueue() { return base::NotFound("The specified queue does not exist."); }

  static std::string Default(const std::string& k) {
    const AttrSpec* a = FindAttr(k);
    return a ? a->fallback : "";
  }
  static std::string AttrOf(const Queue& q, const std::string& k) {
    auto it = q.attrs.find(k);
    return it != q.attrs.end() ? it->second : Default(k);
  }

  Status CheckAttr(const std::string& k, const std::string& v) const {
    const AttrSpec* a = FindAttr(k);
    if (!a) return base::InvalidArgument("InvalidAttributeName:Unknown Attribute " + k + ".");
    if (a->min <= a->max) {
      bool digits =
          !v.empty() && v.size() < 12 && v.find_first_not_of("0123456789") == std::string::npos;
      int64_t n = digits ? std::stoll(v) : -1;
      if (!digits || n < a->min || n > a->max)
        return base::InvalidArgument("InvalidAttributeValue:Invalid value for the parameter " + k +
                                     ".");
    }
    if (k == "RedrivePolicy" && !v.empty()) {
      json j = json::parse(v, nullptr, false);
      if (!j.is_object() || !j.contains("deadLetterTargetArn") || !j.contains("maxReceiveCount"))
        return base::InvalidArgument(
            "InvalidParameterValue:Value " + v +
            " for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid "
            "JSON map.");
      std::string arn =
          j["deadLetterTargetArn"].is_string() ? j["deadLetterTargetArn"].get<std::string>() : "";
      std::string dlq = NameFromArn(arn);
      if (dlq.empty())
        return base::InvalidArgument("InvalidParameterValue:Value " + v +
                                     " for parameter RedrivePolicy is invalid. Reason: Invalid "
                                     "value for deadLetterTargetArn.");
      const json& mrc = j["maxReceiveCount"];
      int64_t count = mrc.is_number_integer() ? mrc.get<int64_t>()
                      : mrc.is_string()       ? std::atoll(mrc.get<std::string>().c_str())
                                              : 0;
      if (count < 1 || count > 1000)
        return base::InvalidArgument("InvalidParameterValue:Value " + v +
                                     " for parameter RedrivePolicy is invalid. Reason: Invalid "
                                     "value for maxReceiveCount: " +
                                     mrc.dump() +
                                     ", valid values are from 1 to 1000 both inclusive.");
    }
    if ((k == "FifoQueue" || k == "ContentBasedDeduplication" || k == "SqsManagedSseEnabled") &&
        v != "true" && v != "false")
      return base::InvalidArgument("InvalidAttributeValue:Invalid value for the parameter " + k +
                                   ".");
    return Status::Ok();
  }

  template <typename Fn>
  Status ChangeTags(const std::string& name, Fn change) {
    std::string record;
    {
      std::lock_guard lock(mu_);
      auto it = queues_.find(name);
      if (it == queues_.end()) return NoQueue();
      change(it->second->tags);
      record = Dump(QueueToJson(*it->second));
    }
    return store_->Put(kQueuePrefix + name, record).status();
  }

  std::string Handle(const std::string& queue, uint64_t seq, const std::string& token) const {
    return base::Base64Encode(queue + "\n" + std::to_string(seq) + "\n" + token);
  }

  Status ParseHandle(const std::string& queue, const std::string& handle, uint64_t* seq,
                     std::string* token) const {
    auto invalid = base::InvalidArgument("ReceiptHandleIsInvalid:The input receipt handle \"" +
                                         handle + "\" is not a valid receipt handle.");
    auto raw = base::Base64Decode(handle);
    if (!raw) return invalid;
    auto parts = base::Split(*raw, '\n');
    if (parts.size() != 3 || parts[0] != queue || parts[1].empty() ||
        parts[1].find_first_not_of("0123456789") != std::string_view::npos)
      return invalid;
    *seq = std::strtoull(std::string(parts[1]).c_str(), nullptr, 10);
    *token = std::string(parts[2]);
    return Status::Ok();
  }

  static bool WantAttribute(const std::vector<std::string>& names, const std::string& n) {
    for (const auto& w : names) {
      if (w == "All" || w == ".*" || w == n) return true;
      if (w.size() > 2 && w.compare(w.size() - 2, 2, ".*") == 0 &&
          n.rfind(w.substr(0, w.size() - 1), 0) == 0)
        return true;
    }
    return false;
  }

  // Picks visible messages for `req` (caller holds mu_). Moves messages past their
  // maxReceiveCount to the dead-letter queue and drops expired ones (store writes are
  // queued in `ready` to run after the lock is released).
  std::vector<ReceivedMessage> TakeLocked(Queue& q, const ReceiveRequest& req, int64_t now,
                                          std::vector<std::function<void()>>* ready) {
    std::vector<ReceivedMessage> out;
    int vis = req.visibility_timeout >= 0 ? req.visibility_timeout
                                          : std::stoi(AttrOf(q, "VisibilityTimeout"));
    int64_t retention_ms = std::stoll(AttrOf(q, "MessageRetentionPeriod")) * 1000;
    int max_receives = 0;
    std::string dlq;
    if (auto rp = q.attrs.find("RedrivePolicy"); rp != q.attrs.end()) {
      json j = json::parse(rp->second, nullptr, false);
      if (j.is_object()) {
        const json& mrc = j["maxReceiveCount"];
        max_receives = mrc.is_number_integer() ? mrc.get<int>()
                       : mrc.is_string()       ? std::atoi(mrc.get<std::string>().c_str())
                                               : 0;
        dlq = NameFromArn(j.value("deadLetterTargetArn", ""));
      }
    }
    std::set<std::string> busy_groups;
    if (q.fifo)
      for (const auto& [s, m] : q.msgs)
        if (m.visible_at_ms > now && m.receive_count > 0) busy_groups.insert(m.group);
    std::vector<std::string> drop_keys;
    std::vector<std::pair<std::string, std::string>> writes;
    std::vector<uint64_t> to_dlq;
    std::set<std::string> taken_groups;
    for (auto it = q.msgs.begin();
         it != q.msgs.end() && static_cast<int>(out.size()) < req.max_messages;) {
      Msg& m = it->second;
      if (now - m.sent_ms > retention_ms) {
        drop_keys.push_back(MsgKey(q.name, m.seq));
        it = q.msgs.erase(it);
        continue;
      }
      if (m.visible_at_ms > now || (q.fifo && busy_groups.count(m.group))) {
        if (q.fifo && m.visible_at_ms > now) busy_groups.insert(m.group);
        ++it;
        continue;
      }
      if (max_receives > 0 && m.receive_count >= max_receives && !dlq.empty() &&
          queues_.count(dlq)) {
        to_dlq.push_back(m.seq);
        ++it;
        continue;
      }
      m.receive_count++;
      if (m.first_receive_ms == 0) m.first_receive_ms = now;
      m.token = base::NewUuid();
      m.visible_at_ms = now + int64_t{vis} * 1000;
      if (q.fifo) {
        busy_groups.insert(m.group);
        taken_groups.insert(m.group);
      }
      ReceivedMessage r;
      r.message_id = m.id;
      r.receipt_handle = Handle(q.name, m.seq, m.token);
      r.body = m.body;
      r.md5_body = m.md5;
      for (const auto& [k, a] : m.attrs)
        if (WantAttribute(req.message_attribute_names, k)) r.message_attributes[k] = a;
      r.md5_attributes = r.message_attributes.empty() ? "" : AttributesMd5(r.message_attributes);
      auto sys = [&](const std::string& k, const std::string& v) {
        if (WantAttribute(req.attribute_names, k)) r.attributes[k] = v;
      };
      sys("SenderId", o_.account_id);
      sys("SentTimestamp", std::to_string(m.sent_ms));
      sys("ApproximateReceiveCount", std::to_string(m.receive_count));
      sys("ApproximateFirstReceiveTimestamp", std::to_string(m.first_receive_ms));
      if (!m.group.empty()) sys("MessageGroupId", m.group);
      if (!m.dedup.empty()) {
        sys("MessageDeduplicationId", m.dedup);
        sys("SequenceNumber", m.sequence_number);
      }
      out.push_back(std::move(r));
      writes.emplace_back(MsgKey(q.name, m.seq), Dump(MsgToJson(m)));
      ++it;
    }
    // Dead-letter moves: out of this queue now, into the DLQ once the move is durable.
    std::vector<Msg> moving;
    for (uint64_t seq : to_dlq) {
      auto it = q.msgs.find(seq);
      moving.push_back(std::move(it->second));
      q.msgs.erase(it);
    }
    if (!drop_keys.empty() || !writes.empty() || !moving.empty()) {
      std::string src = q.name;
      ready->push_back([this, src, dlq, drop_keys = std::move(drop_keys),
                        writes = std::move(writes), moving = std::move(moving)]() mutable {
        store::Txn txn;
        for (const auto& k : drop_keys)
          txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(k)));
        for (auto& [k, v] : writes) txn.success.push_back(store::Op::Put(k, v));
        std::vector<Msg> moved;
        for (auto& m : moving) {
          txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(MsgKey(src, m.seq))));
          {
            std::lock_guard lock(mu_);
            m.seq = next_seq_++;
          }
          m.visible_at_ms = 0;
          m.token.clear();
          txn.success.push_back(store::Op::Put(MsgKey(dlq, m.seq), Dump(MsgToJson(m))));
          moved.push_back(std::move(m));
        }
        auto r = store_->Commit(txn);
        if (!r.ok()) spdlog::error("sqs: receive bookkeeping failed: {}", r.status().ToString());
        if (moved.empty()) return;
        std::vector<std::function<void()>> more;
        {
          std::lock_guard lock(mu_);
          auto it = queues_.find(dlq);
          if (it == queues_.end()) return;
          for (auto& m : moved) it->second->msgs[m.seq] = std::move(m);
          ServeWaitersLocked(*it->second, NowMs(), &more);
        }
        for (auto& f : more) f();
      });
    }
    return out;
  }

  // Answers long polls that can be answered now (caller holds mu_; the answers run later
  // from `ready`).
  void ServeWaitersLocked(Queue& q, int64_t now, std::vector<std::function<void()>>* ready) {
    for (auto it = q.waiters.begin(); it != q.waiters.end();) {
      auto got = TakeLocked(q, it->req, now, ready);
      if (got.empty() && it->deadline_ms > now) {
        ++it;
        continue;
      }
      auto done = std::move(it->done);
      ready->push_back(
          [done = std::move(done), got = std::move(got)]() mutable { done(std::move(got)); });
      it = q.waiters.erase(it);
    }
  }

  // Ends long polls at their deadline and answers them when delayed or invisible messages
  // become visible.
  void TimerLoop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      int64_t now = NowMs();
      int64_t next = now + 1000;
      std::vector<std::function<void()>> ready;
      for (auto& [n, q] : queues_) {
        if (q->waiters.empty()) continue;
        ServeWaitersLocked(*q, now, &ready);
        for (const auto& w : q->waiters) next = std::min(next, w.deadline_ms);
        for (const auto& [s, m] : q->msgs)
          if (m.visible_at_ms > now) next = std::min(next, m.visible_at_ms);
      }
      if (!ready.empty()) {
        lock.unlock();
        for (auto& r : ready) r();
        lock.lock();
        continue;
      }
      cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, next - now)));
    }
  }

  store::Store* store_;
  Options o_;
  std::mutex create_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, std::unique_ptr<Queue>> queues_;
  uint64_t next_seq_ = 1;
  std::thread timer_;
};

}  // namespace

Result<std::unique_ptr<Queues>> OpenQueues(store::Store* store, const Options& options) {
  auto q = std::make_unique<QueuesImpl>(store, options);
  RETURN_IF_ERROR(q->Load());
  return std::unique_ptr<Queues>(std::move(q));
}

}  // namespace sqs
