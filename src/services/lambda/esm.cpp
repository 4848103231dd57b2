#include "services/lambda/esm.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "base/ids.h"
#include "base/strings.h"

namespace lambda {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;

const std::string kPrefix = "/lambda/esm/";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

json ToJson(const EventSourceMapping& m) {
  return json{{"uuid", m.uuid},
              {"source", m.event_source_arn},
              {"fn", m.function_name},
              {"q", m.qualifier},
              {"enabled", m.enabled},
              {"batch", m.batch_size},
              {"window", m.batching_window},
              {"rbif", m.report_batch_item_failures},
              {"conc", m.max_concurrency},
              {"modified", m.last_modified}};
}

Result<EventSourceMapping> FromJson(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: esm record is not JSON");
  EventSourceMapping m;
  try {
    m.uuid = j.at("uuid").get<std::string>();
    m.event_source_arn = j.at("source").get<std::string>();
    m.function_name = j.at("fn").get<std::string>();
    m.qualifier = j.at("q").get<std::string>();
    m.enabled = j.at("enabled").get<bool>();
    m.batch_size = j.at("batch").get<int>();
    m.batching_window = j.at("window").get<int>();
    m.report_batch_item_failures = j.at("rbif").get<bool>();
    m.max_concurrency = j.at("conc").get<int>();
    m.last_modified = j.at("modified").get<double>();
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad esm record: ") + e.what());
  }
  m.state = m.enabled ? "Enabled" : "Disabled";
  return m;
}

// One mapping's pollers.
struct Runner {
  EventSourceMapping m;
  std::atomic<bool> stop{false};
  std::mutex mu;
  int pollers = 0;
  std::condition_variable cv;
};

class EsmImpl : public EventSourceMappings {
 public:
  explicit EsmImpl(EsmOptions o) : o_(std::move(o)) {}

  Status Start() {
    if (!o_.lambda || !o_.invoker || !o_.store || !o_.queues)
      return base::InvalidArgument("event source mappings need lambda, invoker, store, queues");
    ASSIGN_OR_RETURN(store::RangeResult rr, o_.store->Range(store::KeyRange::Prefix(kPrefix)));
    for (const auto& kv : rr.kvs) {
      auto m = FromJson(kv.value);
      if (m.ok()) Apply(m.value());
    }
    ASSIGN_OR_RETURN(watch_, o_.store->WatchPrefix(kPrefix, rr.revision + 1,
                                                   [this](const std::vector<store::Event>& evs) {
                                                     for (const auto& ev : evs) {
                                                       std::string uuid =
                                                           ev.kv.key.substr(kPrefix.size());
                                                       if (ev.type == store::Event::Type::kDelete) {
                                                         StopRunner(uuid);
                                                         continue;
                                                       }
                                                       auto m = FromJson(ev.kv.value);
                                                       if (m.ok()) Apply(m.value());
                                                     }
                                                   }));
    return Status::Ok();
  }

  ~EsmImpl() override { Shutdown(); }

  void Shutdown() override {
    watch_.reset();
    std::map<std::string, std::shared_ptr<Runner>> runners;
    std::vector<std::shared_ptr<Runner>> stopping;
    {
      std::lock_guard lock(mu_);
      runners.swap(runners_);
      stopping.swap(stopping_);
    }
    for (auto& [id, r] : runners) Stop(*r);
    for (auto& r : stopping) Stop(*r);
  }

  Result<EventSourceMapping> Create(EventSourceMapping m) override {
    RETURN_IF_ERROR(Validate(&m));
    m.uuid = base::NewUuid();
    m.last_modified = NowSeconds();
    m.state = "Creating";
    RETURN_IF_ERROR(o_.store->Put(kPrefix + m.uuid, Dump(ToJson(m))).status());
    return m;
  }

  Result<EventSourceMapping> Get(const std::string& uuid) override {
    ASSIGN_OR_RETURN(auto kv, o_.store->Get(kPrefix + uuid));
    if (!kv) return base::NotFound("The resource you requested does not exist.");
    return FromJson(kv->value);
  }

  Result<std::vector<EventSourceMapping>> List(const std::string& source,
                                               const std::string& function) override {
    ASSIGN_OR_RETURN(store::RangeResult rr, o_.store->Range(store::KeyRange::Prefix(kPrefix)));
    std::vector<EventSourceMapping> out;
    for (const auto& kv : rr.kvs) {
      auto m = FromJson(kv.value);
      if (!m.ok()) continue;
      if (!source.empty() && m->event_source_arn != source) continue;
      if (!function.empty() && m->function_name != function) continue;
      out.push_back(std::move(m).value());
    }
    return out;
  }

  Result<EventSourceMapping> Change(const std::string& uuid, const Update& u) override {
    ASSIGN_OR_RETURN(auto kv, o_.store->Get(kPrefix + uuid));
    if (!kv) return base::NotFound("The resource you requested does not exist.");
    ASSIGN_OR_RETURN(EventSourceMapping m, FromJson(kv->value));
    if (u.function_name) m.function_name = *u.function_name;
    if (u.qualifier) m.qualifier = *u.qualifier;
    if (u.enabled) m.enabled = *u.enabled;
    if (u.batch_size) m.batch_size = *u.batch_size;
    if (u.batching_window) m.batching_window = *u.batching_window;
    if (u.max_concurrency) m.max_concurrency = *u.max_concurrency;
    if (u.report_batch_item_failures) m.report_batch_item_failures = *u.report_batch_item_failures;
    RETURN_IF_ERROR(Validate(&m));
    m.last_modified = NowSeconds();
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    txn.success.push_back(store::Op::Put(kv->key, Dump(ToJson(m))));
    ASSIGN_OR_RETURN(store::TxnResult r, o_.store->Commit(txn));
    if (!r.succeeded)
      return base::AlreadyExists(
          "The operation cannot be performed at this time. The event "
          "source mapping is being updated.");
    m.state = "Updating";
    return m;
  }

  Result<EventSourceMapping> Delete(const std::string& uuid) override {
    ASSIGN_OR_RETURN(EventSourceMapping m, Get(uuid));
    RETURN_IF_ERROR(o_.store->Delete(store::KeyRange::Exact(kPrefix + uuid)).status());
    m.state = "Deleting";
    return m;
  }

 private:
  Status Validate(EventSourceMapping* m) {
    bool fifo = false;
    Status st = o_.queues->Check(m->event_source_arn, &fifo);
    if (!st.ok())
      return base::InvalidArgument(
          "Error occurred while ReceiveMessage. SQS Error Code: "
          "AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: "
          "The specified queue does not exist.");
    auto fn = o_.lambda->GetFunction(m->function_name, m->qualifier);
    if (!fn.ok()) return base::NotFound("function");
    int max_batch = fifo ? 10 : 10000;
    if (m->batch_size < 1 || m->batch_size > max_batch)
      return base::InvalidArgument("BatchSize must be between 1 and " + std::to_string(max_batch) +
                                   " for this event source.");
    if (m->batch_size > 10 && m->batching_window < 1)
      return base::InvalidArgument(
          "Maximum batch window in seconds must be greater than 0 if "
          "maximum batch size is greater than 10");
    if (m->batching_window < 0 || m->batching_window > 300)
      return base::InvalidArgument("MaximumBatchingWindowInSeconds must be between 0 and 300.");
    if (m->max_concurrency < 2 || m->max_concurrency > 1000)
      return base::InvalidArgument("ScalingConfig.MaximumConcurrency must be between 2 and 1000.");
    return Status::Ok();
  }

  void Apply(const EventSourceMapping& m) {
    StopRunner(m.uuid);
    if (!m.enabled) return;
    auto r = std::make_shared<Runner>();
    r->m = m;
    {
      std::lock_guard lock(mu_);
      runners_[m.uuid] = r;
    }
    Spawn(r);
  }

  // Runs on the store's watch thread: tells the pollers to stop without waiting for them
  // (one may be inside an invocation); Shutdown waits for all.
  void StopRunner(const std::string& uuid) {
    std::lock_guard lock(mu_);
    auto it = runners_.find(uuid);
    if (it == runners_.end()) return;
    it->second->stop = true;
    stopping_.push_back(it->second);
    runners_.erase(it);
  }

  static void Stop(Runner& r) {
    r.stop = true;
    std::unique_lock lock(r.mu);
    r.cv.wait(lock, [&] { return r.pollers == 0; });
  }

  void Spawn(const std::shared_ptr<Runner>& r) {
    {
      std::lock_guard lock(r->mu);
      if (r->stop || r->pollers >= r->m.max_concurrency) return;
      r->pollers++;
    }
    std::thread([this, r] {
      Poll(r);
      std::lock_guard lock(r->mu);
      r->pollers--;
      r->cv.notify_all();
    }).detach();
  }

  void Poll(const std::shared_ptr<Runner>& r) {
    const EventSourceMapping& m = r->m;
    int empty_polls = 0;
    bool first;
    {
      std::lock_guard lock(r->mu);
      first = r->pollers == 1;
    }
    while (!r->stop) {
      // Collect up to batch_size messages, waiting at most the batching window.
      std::vector<QueueMessage> batch;
      auto window_end = std::chrono::steady_clock::now() + std::chrono::seconds(m.batching_window);
      while (!r->stop && static_cast<int>(batch.size()) < m.batch_size) {
        int want = std::min(10, m.batch_size - static_cast<int>(batch.size()));
        auto got = o_.queues->Receive(m.event_source_arn, want, batch.empty() ? 1 : 0);
        if (!got.ok()) {
          std::this_thread::sleep_for(std::chrono::seconds(1));
          break;
        }
        for (auto& msg : got.value()) batch.push_back(std::move(msg));
        if (got->empty() && (batch.empty() || std::chrono::steady_clock::now() >= window_end))
          break;
        if (m.batching_window == 0 && !batch.empty() && static_cast<int>(got->size()) < want) break;
      }
      // Stopped (disabled, changed or deleted) while polling: what was received returns to
      // the queue when its visibility timeout ends.
      if (r->stop) return;
      if (batch.empty()) {
        if (!first && ++empty_polls >= 2) return;  // scale back down
        continue;
      }
      empty_polls = 0;
      if (static_cast<int>(batch.size()) >= m.batch_size) Spawn(r);  // backlog: scale up
      Deliver(m, batch);
    }
  }

  void Deliver(const EventSourceMapping& m, const std::vector<QueueMessage>& batch) {
    json records = json::array();
    for (const auto& msg : batch) {
      json attrs = json::object();
      for (const auto& [k, v] : msg.attributes) attrs[k] = v;
      json mattrs = json::object();
      for (const auto& [k, a] : msg.message_attributes) {
        json v{{"stringListValues", json::array()},
               {"binaryListValues", json::array()},
               {"dataType", a.data_type}};
        if (a.data_type.rfind("Binary", 0) == 0) {
          v["binaryValue"] = base::Base64Encode(a.binary_value);
        } else {
          v["stringValue"] = a.string_value;
        }
        mattrs[k] = v;
      }
      records.push_back({{"messageId", msg.message_id},
                         {"receiptHandle", msg.receipt_handle},
                         {"body", msg.body},
                         {"attributes", attrs},
                         {"messageAttributes", mattrs},
                         {"md5OfBody", msg.md5_body},
                         {"eventSource", "aws:sqs"},
                         {"eventSourceARN", m.event_source_arn},
                         {"awsRegion", o_.region}});
    }
    InvokeRequest req;
    req.function_name = m.function_name;
    req.qualifier = m.qualifier;
    req.payload = Dump(json{{"Records", records}});
    std::promise<Result<InvokeResult>> p;
    auto f = p.get_future();
    o_.invoker->Invoke(std::move(req), [&p](Result<InvokeResult> r) { p.set_value(std::move(r)); });
    Result<InvokeResult> r = f.get();
    if (!r.ok()) {
      // Throttled or unavailable: the messages return after their visibility timeout.
      spdlog::info("lambda esm {}: invoking {}: {}", m.uuid, m.function_name,
                   r.status().ToString());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      return;
    }
    if (!r->function_error.empty()) return;  // all of the batch comes back
    std::set<std::string> failed;
    if (m.report_batch_item_failures) {
      json out = json::parse(r->payload, nullptr, false);
      if (out.is_object() && out.contains("batchItemFailures")) {
        const json& items = out["batchItemFailures"];
        if (!items.is_array()) return;  // malformed: the whole batch failed
        for (const auto& item : items) {
          if (!item.is_object() || !item.contains("itemIdentifier") ||
              !item["itemIdentifier"].is_string())
            return;  // an unusable entry fails the whole batch, as AWS
          failed.insert(item["itemIdentifier"].get<std::string>());
        }
      }
    }
    for (const auto& msg : batch) {
      if (failed.count(msg.message_id)) continue;
      Status st = o_.queues->Delete(m.event_source_arn, msg.receipt_handle);
      if (!st.ok()) spdlog::warn("lambda esm {}: deleting a message: {}", m.uuid, st.ToString());
    }
  }

  EsmOptions o_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Runner>> runners_;
  std::vector<std::shared_ptr<Runner>> stopping_;
  std::unique_ptr<store::Watch> watch_;
};

}  // namespace

Result<std::unique_ptr<EventSourceMappings>> StartEventSourceMappings(const EsmOptions& options) {
  auto e = std::make_unique<EsmImpl>(options);
  RETURN_IF_ERROR(e->Start());
  return std::unique_ptr<EventSourceMappings>(std::move(e));
}

}  // namespace lambda
