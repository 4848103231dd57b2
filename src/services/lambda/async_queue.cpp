#include "services/lambda/async_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <thread>
#include <vector>

#include "base/ids.h"
#include "base/time.h"

namespace lambda {

namespace {

using base::Result;
using base::Status;
using nlohmann::json;
using Clock = std::chrono::system_clock;

const std::string kQueuePrefix = "/lambda/async/q/";
constexpr int kDefaultRetries = 2;
constexpr int kDefaultMaxAgeSeconds = 21600;
constexpr size_t kMaxBatchOps = 256;
constexpr size_t kMaxRecordedResponse = 256 * 1024;  // response kept for a failure record
constexpr size_t kMaxCachedPayloadBytes = 64 << 20;  // payloads of queued events in memory

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// One queued event. The payload lives in the store record only; the in-memory queue keeps
// what ordering and retry decisions need.
struct Event {
  std::string id;  // request id, also the key suffix
  std::string function, qualifier;
  int64_t received_ms = 0;
  int64_t due_ms = 0;
  int attempts = 0;   // invocations that ran (function errors count, throttles do not)
  int throttles = 0;  // consecutive throttles / system errors, for the backoff
  // The last invocation's outcome, for a failure record.
  bool has_response = false;
  std::string function_error, executed_version, response;
  // The payload, kept in memory for a fresh event while the cache has room (saves a store
  // read on dispatch); otherwise read from the record.
  std::optional<std::string> payload;
};

std::string KeyOf(const std::string& id) { return kQueuePrefix + id; }

json EventToJson(const Event& e, const std::string& payload) {
  json j{{"id", e.id},      {"fn", e.function}, {"q", e.qualifier},  {"t", e.received_ms},
         {"due", e.due_ms}, {"n", e.attempts},  {"th", e.throttles}, {"p", payload}};
  if (e.has_response) {
    j["r"] = json{{"fe", e.function_error}, {"v", e.executed_version}, {"b", e.response}};
  }
  return j;
}

Result<std::pair<Event, std::string>> EventFromJson(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: async event record is not JSON");
  Event e;
  std::string payload;
  try {
    e.id = j.at("id").get<std::string>();
    e.function = j.at("fn").get<std::string>();
    e.qualifier = j.at("q").get<std::string>();
    e.received_ms = j.at("t").get<int64_t>();
    e.due_ms = j.at("due").get<int64_t>();
    e.attempts = j.at("n").get<int>();
    e.throttles = j.value("th", 0);
    payload = j.at("p").get<std::string>();
    if (j.contains("r")) {
      e.has_response = true;
      e.function_error = j["r"].at("fe").get<std::string>();
      e.executed_version = j["r"].at("v").get<std::string>();
      e.response = j["r"].at("b").get<std::string>();
    }
  } catch (const json::exception& ex) {
    return base::Corruption(std::string("lambda: bad async event record: ") + ex.what());
  }
  return std::make_pair(std::move(e), std::move(payload));
}

// A JSON value for a payload that may not be JSON (AWS puts the raw text in then).
json PayloadJson(const std::string& s) {
  if (s.empty()) return json(nullptr);
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded()) return json(s);
  return j;
}

std::string IsoNow() {
  auto now = Clock::now();
  std::time_t t = Clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

// The outcome of one attempt, computed on the invoker's thread.
struct Completion {
  Event event;
  Result<InvokeResult> result;
};

class AsyncQueueImpl : public AsyncQueue {
 public:
  explicit AsyncQueueImpl(const AsyncQueueOptions& o) : o_(o) {}

  Status Start() {
    if (!o_.lambda || !o_.invoker || !o_.store)
      return base::InvalidArgument("AsyncQueue needs lambda, invoker and store");
    ASSIGN_OR_RETURN(store::RangeResult rr, o_.store->Range(store::KeyRange::Prefix(kQueuePrefix)));
    for (const auto& kv : rr.kvs) {
      auto e = EventFromJson(kv.value);
      if (!e.ok()) {
        spdlog::error("lambda async: skipping {}: {}", kv.key, e.status().ToString());
        continue;
      }
      Schedule(std::move(e->first));
    }
    if (!rr.kvs.empty()) spdlog::info("lambda async: {} queued events resumed", rr.kvs.size());
    writer_ = std::thread([this] { WriterLoop(); });
    dispatcher_ = std::thread([this] { DispatchLoop(); });
    return Status::Ok();
  }

  ~AsyncQueueImpl() override { Shutdown(); }

  void Enqueue(InvokeRequest req, std::function<void(Result<std::string>)> done) override {
    uint64_t limit = 262144;
    if (req.payload.size() > limit)
      return done(
          base::InvalidArgument(std::to_string(req.payload.size()) + " " + std::to_string(limit)));
    // The function must exist now (AWS answers 404 at once); the invoker's configuration
    // cache makes this a memory lookup.
    InvokeRequest probe;
    probe.function_name = req.function_name;
    probe.qualifier = req.qualifier;
    probe.type = InvocationType::kDryRun;
    Status exists = Status::Ok();
    o_.invoker->Invoke(std::move(probe), [&exists](Result<InvokeResult> r) {
      if (!r.ok()) exists = r.status();
    });
    if (!exists.ok()) return done(exists);
    Event e;
    e.id = req.request_id.empty() ? base::NewUuid() : req.request_id;
    e.function = req.function_name;
    e.qualifier = req.qualifier;
    e.received_ms = NowMs();
    e.due_ms = e.received_ms;
    std::string value = Dump(EventToJson(e, req.payload));
    e.payload = std::move(req.payload);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return done(base::Unavailable("the server is shutting down"));
      pending_.push_back(Pending{std::move(e), std::move(value), std::move(done)});
    }
    writer_cv_.notify_one();
  }

  Status CheckDestination(const std::string& name, const std::string& arn) override {
    std::string fn, qualifier;
    if (arn.rfind("arn:aws:lambda:", 0) == 0) {
      if (!ParseFunctionArn(arn, &fn, &qualifier))
        return base::InvalidArgument("The destination ARN " + arn + " is invalid.");
      if (fn == name)
        return base::InvalidArgument("You can't specify the function as a destination for itself.");
      auto details = o_.lambda->GetFunction(fn, qualifier);
      if (!details.ok())
        return base::InvalidArgument("The destination ARN " + arn + " is invalid.");
      return Status::Ok();
    }
    if (o_.sink) return o_.sink->Check(arn);
    return base::InvalidArgument("The destination ARN " + arn + " is invalid.");
  }

  AsyncStats Stats() const override {
    std::lock_guard lock(mu_);
    AsyncStats s = stats_;
    s.queued = static_cast<int64_t>(due_.size()) + parked_count_ + in_flight_;
    s.in_flight = in_flight_;
    return s;
  }

  void Shutdown() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !writer_.joinable() && !dispatcher_.joinable()) return;
      stopping_ = true;
    }
    writer_cv_.notify_all();
    dispatch_cv_.notify_all();
    if (writer_.joinable()) writer_.join();
    if (dispatcher_.joinable()) dispatcher_.join();
    // Events still in flight: their outcomes are ignored (alive_ is false); their records
    // stay in the store and run again after the next start.
    std::lock_guard lock(*alive_mu_);
    *alive_ = false;
  }

 private:
  struct Pending {
    Event event;
    std::string value;
    std::function<void(Result<std::string>)> done;
  };
  struct Due {
    int64_t due_ms;
    uint64_t seq;
    std::shared_ptr<Event> event;
    bool operator>(const Due& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq;
    }
  };

  void Schedule(Event e) {
    // Caller holds mu_ or runs before the threads start.
    if (e.payload) {
      if (cached_bytes_ + e.payload->size() > kMaxCachedPayloadBytes) {
        e.payload.reset();
      } else {
        cached_bytes_ += e.payload->size();
      }
    }
    due_.push(Due{e.due_ms, seq_++, std::make_shared<Event>(std::move(e))});
  }

  // Commits enqueued events in batches: one Store commit (one fsync) per batch.
  void WriterLoop() {
    std::unique_lock lock(mu_);
    while (true) {
      writer_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) break;
      std::vector<Pending> batch;
      size_t bytes = 0;
      while (!pending_.empty() && batch.size() < kMaxBatchOps &&
             (batch.empty() || bytes + pending_.front().value.size() <= o_.max_batch_bytes)) {
        bytes += pending_.front().value.size();
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      lock.unlock();
      store::Txn txn;
      for (const auto& p : batch) txn.success.push_back(store::Op::Put(KeyOf(p.event.id), p.value));
      Result<store::TxnResult> r = o_.store->Commit(txn);
      lock.lock();
      if (r.ok()) {
        stats_.accepted += batch.size();
        for (auto& p : batch) Schedule(p.event);
      }
      lock.unlock();
      if (r.ok()) dispatch_cv_.notify_one();
      for (auto& p : batch) {
        if (r.ok()) {
          p.done(p.event.id);
        } else {
          p.done(r.status());
        }
      }
      lock.lock();
    }
    // Fail what is left (only enqueues that raced with Shutdown).
    for (auto& p : pending_) p.done(base::Unavailable("the server is shutting down"));
    pending_.clear();
  }

  void DispatchLoop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      // 1. Outcomes of finished attempts: decide, then commit their store changes together.
      if (!completions_.empty()) {
        std::vector<Completion> done;
        done.swap(completions_);
        lock.unlock();
        Settle(std::move(done));
        lock.lock();
        continue;
      }
      // 2. Start what is due, as far as the in-flight limit allows.
      int64_t now = NowMs();
      if (!due_.empty() && due_.top().due_ms <= now && in_flight_ < o_.max_in_flight) {
        std::shared_ptr<Event> e = due_.top().event;
        due_.pop();
        int& running = fn_in_flight_[e->function];
        if (running >= o_.max_in_flight_per_function) {
          // Parked until one of the function's running events finishes.
          parked_[e->function].push_back(std::move(e));
          parked_count_++;
          continue;
        }
        running++;
        in_flight_++;
        if (e->payload) cached_bytes_ -= e->payload->size();
        lock.unlock();
        Run(std::move(e));
        lock.lock();
        continue;
      }
      if (!due_.empty() && in_flight_ < o_.max_in_flight) {
        dispatch_cv_.wait_for(lock, std::chrono::milliseconds(due_.top().due_ms - now));
      } else {
        dispatch_cv_.wait(lock);
      }
    }
  }

  // Reads the event's payload and hands it to the invoker.
  void Run(std::shared_ptr<Event> e) {
    if (e->payload) {
      std::string payload = std::move(*e->payload);
      e->payload.reset();
      return Invoke(std::move(e), std::move(payload));
    }
    auto kv = o_.store->Get(KeyOf(e->id));
    std::string payload;
    if (kv.ok() && kv.value()) {
      auto parsed = EventFromJson(kv.value()->value);
      if (parsed.ok()) payload = std::move(parsed->second);
    } else if (kv.ok()) {
      // Gone from the store (should not happen): nothing to run.
      std::lock_guard lock(mu_);
      Release(e->function);
      return;
    }
    if (!kv.ok()) {
      // The store is failing: try again later.
      std::lock_guard lock(mu_);
      Release(e->function);
      e->due_ms = NowMs() + 1000;
      Schedule(std::move(*e));
      return;
    }
    Invoke(std::move(e), std::move(payload));
  }

  // Caller holds mu_: one running event of `fn` finished; a parked one may go.
  void Release(const std::string& fn) {
    in_flight_--;
    auto it = fn_in_flight_.find(fn);
    if (it != fn_in_flight_.end() && --it->second <= 0) fn_in_flight_.erase(it);
    auto p = parked_.find(fn);
    if (p != parked_.end()) {
      std::shared_ptr<Event> e = std::move(p->second.front());
      p->second.pop_front();
      if (p->second.empty()) parked_.erase(p);
      parked_count_--;
      due_.push(Due{e->due_ms, seq_++, std::move(e)});
    }
  }

  void Invoke(std::shared_ptr<Event> e, std::string payload) {
    InvokeRequest req;
    req.function_name = e->function;
    req.qualifier = e->qualifier;
    req.type = InvocationType::kRequestResponse;
    req.payload = std::move(payload);
    req.request_id = e->id;
    auto alive = alive_;
    auto alive_mu = alive_mu_;
    Event copy = *e;
    o_.invoker->Invoke(std::move(req), [this, alive, alive_mu,
                                        copy = std::move(copy)](Result<InvokeResult> r) mutable {
      std::lock_guard guard(*alive_mu);
      if (!*alive) return;
      {
        std::lock_guard lock(mu_);
        completions_.push_back(Completion{std::move(copy), std::move(r)});
      }
      dispatch_cv_.notify_one();
    });
  }

  struct Settled {
    std::vector<store::Op> ops;
    std::vector<std::pair<std::string, std::string>> sends;  // sink destination, body
    struct DeadLetter {
      std::string arn, body;
      std::map<std::string, std::string> attributes;
    };
    std::vector<DeadLetter> dlq_sends;
    std::vector<Event> reschedule;
  };

  void Settle(std::vector<Completion> done) {
    Settled s;
    int64_t now = NowMs();
    uint64_t succeeded = 0, failed = 0, retried = 0, dropped = 0;
    for (auto& c : done) {
      Event& e = c.event;
      std::optional<EventInvokeConfig> cfg = ConfigFor(e.function, e.qualifier);
      int max_retries =
          cfg && cfg->maximum_retry_attempts ? *cfg->maximum_retry_attempts : kDefaultRetries;
      int64_t max_age_ms =
          1000ll * (cfg && cfg->maximum_event_age_seconds ? *cfg->maximum_event_age_seconds
                                                          : kDefaultMaxAgeSeconds);
      auto payload_of = [&]() -> std::string {
        auto kv = o_.store->Get(KeyOf(e.id));
        if (!kv.ok() || !kv.value()) return "";
        auto parsed = EventFromJson(kv.value()->value);
        return parsed.ok() ? parsed->second : "";
      };
      if (!c.result.ok()) {
        const Status& st = c.result.status();
        if (st.code() == base::Code::kNotFound) {
          spdlog::warn("lambda async: dropping event {} of {}: {}", e.id, e.function, st.message());
          s.ops.push_back(store::Op::Delete(store::KeyRange::Exact(KeyOf(e.id))));
          dropped++;
          continue;
        }
        // Throttled or a system error: back off and try again while the event is young.
        e.throttles++;
        int64_t delay = o_.throttle_delay.count();
        for (int i = 1; i < e.throttles && delay < o_.max_throttle_delay.count(); ++i) delay *= 2;
        delay = std::min<int64_t>(delay, o_.max_throttle_delay.count());
        if (now + delay - e.received_ms > max_age_ms) {
          Finish(e, payload_of, "EventAgeExceeded", cfg, &s);
          failed++;
          continue;
        }
        e.due_ms = now + delay;
        s.reschedule.push_back(e);
        continue;
      }
      InvokeResult& res = c.result.value();
      e.attempts++;
      e.throttles = 0;
      e.has_response = true;
      e.function_error = res.function_error;
      e.executed_version = res.executed_version;
      e.response = res.payload.size() <= kMaxRecordedResponse ? res.payload : "";
      if (res.function_error.empty()) {
        Finish(e, payload_of, "Success", cfg, &s);
        succeeded++;
        continue;
      }
      if (e.attempts > max_retries) {
        Finish(e, payload_of, "RetriesExhausted", cfg, &s);
        failed++;
        continue;
      }
      int64_t delay = o_.retry_delay.count() * (e.attempts >= 2 ? 2 : 1);
      if (now + delay - e.received_ms > max_age_ms) {
        Finish(e, payload_of, "EventAgeExceeded", cfg, &s);
        failed++;
        continue;
      }
      e.due_ms = now + delay;
      retried++;
      // The attempt count must survive a restart: rewrite the record.
      std::string payload = payload_of();
      s.ops.push_back(store::Op::Put(KeyOf(e.id), Dump(EventToJson(e, payload))));
      s.reschedule.push_back(e);
    }
    // Sink destinations first (at least once), then one commit for everything else.
    for (const auto& [arn, body] : s.sends) {
      Status st = o_.sink->Send(arn, body);
      if (!st.ok())
        spdlog::error("lambda async: delivering a record to {} failed: {}", arn, st.ToString());
    }
    for (const auto& d : s.dlq_sends) {
      Status st = o_.sink->Send(d.arn, d.body, d.attributes);
      if (!st.ok())
        spdlog::error("lambda async: dead-letter queue {} refused an event: {}", d.arn,
                      st.ToString());
    }
    while (!s.ops.empty()) {
      size_t n = std::min(s.ops.size(), kMaxBatchOps);
      store::Txn txn;
      txn.success.assign(std::make_move_iterator(s.ops.begin()),
                         std::make_move_iterator(s.ops.begin() + static_cast<long>(n)));
      s.ops.erase(s.ops.begin(), s.ops.begin() + static_cast<long>(n));
      auto r = o_.store->Commit(txn);
      if (!r.ok()) {
        // The records stay as they were; the events run again after a restart.
        spdlog::error("lambda async: store commit failed: {}", r.status().ToString());
      }
    }
    std::lock_guard lock(mu_);
    for (const auto& c : done) Release(c.event.function);
    stats_.succeeded += succeeded;
    stats_.failed += failed;
    stats_.retried += retried;
    stats_.dropped += dropped;
    for (auto& e : s.reschedule) Schedule(std::move(e));
  }

  // Event invoke configs, cached for a second (or until this process changes one).
  std::optional<EventInvokeConfig> ConfigFor(const std::string& fn, const std::string& q) {
    int64_t now = NowMs();
    uint64_t gen = o_.lambda->generation();
    if (gen != config_gen_ || now - config_time_ > 1000) {
      configs_.clear();
      config_gen_ = gen;
      config_time_ = now;
    }
    std::string key = fn + "\n" + q;
    auto it = configs_.find(key);
    if (it != configs_.end()) return it->second;
    std::optional<EventInvokeConfig> cfg;
    auto got = o_.lambda->GetEventInvokeConfig(fn, q);
    if (got.ok()) cfg = std::move(got.value());
    configs_[key] = cfg;
    return cfg;
  }

  // Retires an event: its record goes to the destination for `condition`, the event leaves
  // the queue.
  void Finish(const Event& e, const std::function<std::string()>& payload_of,
              const std::string& condition, const std::optional<EventInvokeConfig>& cfg,
              Settled* s) {
    s->ops.push_back(store::Op::Delete(store::KeyRange::Exact(KeyOf(e.id))));
    std::string dest;
    if (cfg) dest = condition == "Success" ? cfg->on_success : cfg->on_failure;
    if (condition != "Success") {
      spdlog::info("lambda async: event {} of {} failed ({}, {} attempts)", e.id, e.function,
                   condition, e.attempts);
      // The function's dead-letter queue gets the original event, as AWS sends it.
      auto fn = o_.lambda->GetFunction(e.function, e.qualifier);
      if (fn.ok() && !fn->config.dead_letter_arn.empty() && o_.sink) {
        std::string message = condition == "EventAgeExceeded" ? "Event age exceeded the maximum"
                                                              : "Function returned an error";
        if (e.has_response) {
          json err = json::parse(e.response, nullptr, false);
          if (err.is_object() && err.contains("errorMessage") && err["errorMessage"].is_string())
            message = err["errorMessage"].get<std::string>();
        }
        s->dlq_sends.push_back(
            {fn->config.dead_letter_arn,
             payload_of(),
             {{"RequestID", e.id}, {"ErrorCode", "200"}, {"ErrorMessage", message}}});
      }
    }
    if (dest.empty()) return;
    std::string qualifier = e.qualifier.empty() ? std::string(kLatest) : e.qualifier;
    json record{{"version", "1.0"},
                {"timestamp", IsoNow()},
                {"requestContext",
                 {{"requestId", e.id},
                  {"functionArn", o_.lambda->FunctionArn(e.function, qualifier)},
                  {"condition", condition},
                  {"approximateInvokeCount", e.attempts}}},
                {"requestPayload", PayloadJson(payload_of())}};
    if (e.has_response) {
      json rc{{"statusCode", 200}, {"executedVersion", e.executed_version}};
      if (!e.function_error.empty()) rc["functionError"] = e.function_error;
      record["responseContext"] = rc;
      record["responsePayload"] = PayloadJson(e.response);
    }
    std::string body = Dump(record);
    std::string fn, fq;
    if (ParseFunctionArn(dest, &fn, &fq)) {
      Event next;
      next.id = base::NewUuid();
      next.function = fn;
      next.qualifier = fq;
      next.received_ms = NowMs();
      next.due_ms = next.received_ms;
      s->ops.push_back(store::Op::Put(KeyOf(next.id), Dump(EventToJson(next, body))));
      s->reschedule.push_back(std::move(next));
      return;
    }
    if (o_.sink) {
      s->sends.emplace_back(dest, std::move(body));
    } else {
      spdlog::error("lambda async: no way to deliver to {}", dest);
    }
  }

  AsyncQueueOptions o_;
  mutable std::mutex mu_;
  std::condition_variable writer_cv_, dispatch_cv_;
  bool stopping_ = false;
  std::deque<Pending> pending_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
  uint64_t seq_ = 0;
  int64_t in_flight_ = 0;
  std::map<std::string, int> fn_in_flight_;
  std::map<std::string, std::deque<std::shared_ptr<Event>>> parked_;
  int64_t parked_count_ = 0;
  size_t cached_bytes_ = 0;
  std::vector<Completion> completions_;
  AsyncStats stats_;
  std::thread writer_, dispatcher_;
  // Dispatcher thread only.
  std::map<std::string, std::optional<EventInvokeConfig>> configs_;
  uint64_t config_gen_ = 0;
  int64_t config_time_ = 0;
  // Invoker callbacks check this before touching the queue (they may come after Shutdown).
  std::shared_ptr<std::mutex> alive_mu_ = std::make_shared<std::mutex>();
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

Result<std::unique_ptr<AsyncQueue>> StartAsyncQueue(const AsyncQueueOptions& options) {
  auto q = std::make_unique<AsyncQueueImpl>(options);
  RETURN_IF_ERROR(q->Start());
  return std::unique_ptr<AsyncQueue>(std::move(q));
}

bool ParseFunctionArn(const std::string& arn, std::string* name, std::string* qualifier) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t colon = arn.find(':', start);
    parts.push_back(arn.substr(start, colon == std::string::npos ? colon : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 7 || parts.size() > 8 || parts[0] != "arn" || parts[2] != "lambda" ||
      parts[5] != "function" || parts[6].empty())
    return false;
  *name = parts[6];
  *qualifier = parts.size() == 8 ? parts[7] : "";
  return true;
}

}  // namespace lambda
