#include "services/lambda/invoker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/crypto.h"
#include "base/fs.h"
#include "base/ids.h"
#include "base/strings.h"
#include "base/time.h"
#include "sandbox/sandbox.h"
#include "services/lambda/image_env.h"
#include "services/lambda/zip.h"

namespace lambda {

// Generated from runtimes/ (cmake/embed_files.cmake): {path under runtimes/, bytes}.
const std::vector<std::pair<std::string_view, std::string_view>>& EmbeddedRuntimeFiles();

namespace {

// Inside environments: the trust store with the Stratus CA (lean roots).
constexpr char kCaBundle[] = "/var/runtime/ca-bundle.pem";
constexpr char kHostTrustStore[] = "/etc/ssl/certs/ca-certificates.crt";


using Clock = std::chrono::steady_clock;
using base::Result;
using base::Status;

constexpr char kRuntimeApiPrefix[] = "/2018-06-01/runtime/";
constexpr size_t kTailBytes = 4096;

int64_t EpochMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string Fixed2(double v) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string HexId(size_t n) { return base::RandomString(n, "0123456789abcdef"); }

// X-Ray's trace id shape: Root=1-<8 hex epoch seconds>-<24 hex>;Parent=<16 hex>;Sampled=0.
// Trace ids need to be unique, not secret: a per-thread generator seeded once from the CSPRNG
// keeps the warm path free of getrandom/getpid calls.
std::string TraceId() {
  thread_local std::mt19937_64 rng = [] {
    std::string seed = base::RandomBytes(8);
    uint64_t v;
    std::memcpy(&v, seed.data(), sizeof v);
    return std::mt19937_64(v);
  }();
  char buf[96];
  snprintf(buf, sizeof buf, "Root=1-%08llx-%08llx%016llx;Parent=%016llx;Sampled=0",
           static_cast<unsigned long long>(EpochMs() / 1000) & 0xffffffffull,
           static_cast<unsigned long long>(rng() & 0xffffffffull),
           static_cast<unsigned long long>(rng()), static_cast<unsigned long long>(rng()));
  return buf;
}

std::string JsonEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string ErrorPayload(std::string_view type, std::string_view message) {
  return "{\"errorMessage\":\"" + JsonEscape(message) + "\",\"errorType\":\"" + JsonEscape(type) +
         "\"}";
}

http::Response JsonResponse(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.Set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

// The runtime's command line for a function runtime; empty when the runtime is `provided*`
// (the bootstrap is found in the code).
std::vector<std::string> RuntimeArgv(const std::string& runtime) {
  if (runtime.rfind("python", 0) == 0)
    return {"/usr/bin/python3", "/var/runtime/python/bootstrap.py"};
  if (runtime.rfind("nodejs", 0) == 0) return {"/usr/bin/node", "/var/runtime/node/bootstrap.js"};
  return {};
}

struct Invocation {
  std::string request_id;
  InvokeRequest req;
  std::function<void(Result<InvokeResult>)> done;
  Clock::time_point enqueued;
  Clock::time_point started;  // handed to the runtime
  int64_t deadline_epoch_ms = 0;
  bool finished = false;  // under the invoker's mutex
};

// How an invocation ended, before it becomes an InvokeResult.
struct Outcome {
  std::string payload;
  bool function_error = false;
  bool kill_environment = false;
  std::string report_status;  // "timeout", "error"... appended to REPORT as "Status: X"
  std::string log_note;       // a line logged before END (e.g. "Task timed out after ...")
};

struct FunctionState;

// kDying: killed after its invocation (timeout); counted nowhere, the monitor removes it.
enum class EnvState { kBooting, kIdle, kBusy, kAwaitingNext, kDying, kDead };

// One execution environment: a sandbox running a runtime that pulls events.
struct Env {
  std::string id;               // 32 hex, also in the log stream name
  FunctionState* fs = nullptr;  // null while a prestarted environment waits in its pool
  std::shared_ptr<const FunctionConfig> config;
  // Fixed when the sandbox is built (the pool key for prestarted ones).
  std::vector<std::string> argv;
  int memory_mb = 128, ephemeral_mb = 512;
  // Prestart: the runtime was started before a function was assigned; it waits on
  // GET /_stratus/v1/init, answered once the environment is claimed and the code mounted.
  bool prestart = false;
  std::string pool_key;
  bool claimed = false;
  bool handover_started = false;  // the code mount + variables (HandOver), by one thread
  bool handed_over = false;       // done (or failed and killed): the monitor may Wait()
  Clock::time_point claimed_at;
  http::Responder init_waiter;
  std::string init_json;  // ready to send when the runtime asks
  bool init_sent = false;
  EnvState state = EnvState::kBooting;
  bool init_done = false;
  bool killed = false;  // a kill was sent (timeout, retirement, shutdown)
  bool reaped = false;  // the monitor saw the runtime end; no more kill()s
  pid_t host_pid = -1;  // our init in the sandbox, for kill() from other threads
  std::string log_stream;
  Clock::time_point created, process_started, idle_since;
  double init_ms = 0;
  bool report_init = false;  // the next REPORT carries Init Duration
  std::string init_error;    // body of POST /runtime/init/error
  std::string boot_error;    // why the sandbox could not be built
  http::Responder next;      // a waiting GET next (state kIdle)
  std::shared_ptr<Invocation> current;
  std::unique_ptr<http::AdoptedListener> runtime_listener, endpoint_listener;
  std::unique_ptr<endpoints::Served> aws_served;  // DNS and HTTPS for *.amazonaws.com
  std::shared_ptr<image::LayerLease> image_lease;  // Image functions: layers in use
  // The sandbox, for Usage() from completing threads; cleared (under sandbox_mu) before
  // the monitor destroys it.
  std::mutex sandbox_mu;
  sandbox::Sandbox* sandbox = nullptr;

  // Log capture: both ends of one pipe for stdout and stderr; the reader thread and the
  // completion path both read under log_mu, so that everything the runtime wrote before
  // posting its answer is in the invocation's log (and tail) before END.
  std::mutex log_mu;
  base::UniqueFd log_r;
  base::UniqueFd log_stop;  // eventfd-like pipe to stop the reader
  std::string partial;
  std::string tail;  // this invocation's log text, last kTailBytes kept
  uint64_t inv_log_bytes = 0;
  bool inv_log_truncated = false;
  std::vector<LogLine> pending_lines;
};

struct FunctionState {
  std::string key, name, version, revision;
  std::shared_ptr<const FunctionConfig> config;
  std::optional<int64_t> reserved;
  std::vector<Env*> idle;  // LIFO: back is the most recently used
  std::deque<std::shared_ptr<Invocation>> queue;
  int booting = 0, busy = 0, awaiting = 0;
  std::set<Env*> envs;
  bool retired = false;
  int active() const { return booting + busy + awaiting; }
};

struct Deadline {
  std::weak_ptr<Env> env;
  std::string request_id;  // "" = the init deadline
};

// Prestarted environments of one (runtime, memory, ephemeral storage).
struct PrestartPool {
  std::deque<Env*> ready;  // sandbox built, runtime started; FIFO (oldest is surely up)
  int starting = 0;
  Clock::time_point last_used;
  Clock::time_point failed_at{};  // a failed start pauses refills for a while
};

class InvokerImpl : public Invoker {
 public:
  explicit InvokerImpl(InvokerOptions o) : o_(std::move(o)) {}

  Status Init() {
    code_dir_ = o_.work_dir + "/code";
    runtime_dir_ = o_.work_dir + "/runtimes";
    RETURN_IF_ERROR(base::MakeDirs(code_dir_, 0755));
    empty_dir_ = o_.work_dir + "/empty";  // /var/task of a prestarted sandbox until claimed
    RETURN_IF_ERROR(base::MakeDirs(empty_dir_, 0755));
    // The embedded runtime clients, written fresh so that an upgrade takes effect.
    std::error_code ec;
    std::filesystem::remove_all(runtime_dir_, ec);
    for (const auto& [rel, bytes] : EmbeddedRuntimeFiles()) {
      std::string path = runtime_dir_ + "/" + std::string(rel);
      RETURN_IF_ERROR(base::MakeDirs(base::DirName(path), 0755));
      RETURN_IF_ERROR(base::WriteFileAtomic(path, bytes));
      chmod(path.c_str(), 0755);
    }
    RETURN_IF_ERROR(base::MakeDirs(runtime_dir_, 0755));
    if (o_.aws_endpoints) {
      RETURN_IF_ERROR(base::WriteFileAtomic(runtime_dir_ + "/ca-bundle.pem", o_.ca_bundle_pem));
      RETURN_IF_ERROR(base::WriteFileAtomic(o_.work_dir + "/resolv.conf",
                                            "nameserver 127.0.0.1\noptions ndots:1\n"));
    }
    chmod(o_.work_dir.c_str(), 0755);
    if (o_.store) {
      ASSIGN_OR_RETURN(watch_, o_.store->WatchPrefix("/lambda/", 0, [this](const auto& events) {
        {
          std::lock_guard lock(cache_mu_);
          cache_.clear();
          cache_gen_++;
        }
        // A written $LATEST may be Pending or InProgress: the preparer makes it ready.
        static const std::string kFns = "/lambda/functions/", kLatestSuffix = "/latest";
        std::lock_guard lock(prep_mu_);
        for (const auto& ev : events) {
          const std::string& k = ev.kv.key;
          if (ev.type != store::Event::Type::kPut || k.rfind(kFns, 0) != 0 ||
              k.size() <= kFns.size() + kLatestSuffix.size() ||
              k.compare(k.size() - kLatestSuffix.size(), kLatestSuffix.size(), kLatestSuffix))
            continue;
          prep_queue_.insert(k.substr(kFns.size(), k.size() - kFns.size() - kLatestSuffix.size()));
        }
        prep_cv_.notify_one();
      }));
      // Functions left Pending by a previous run (the server died while preparing).
      std::string marker;
      for (int page = 0; page < 10000; ++page) {
        auto list = o_.lambda->ListFunctions(marker, 50);
        if (!list.ok()) break;
        std::lock_guard lock(prep_mu_);
        for (const auto& c : list->items)
          if (c.state == "Pending" || c.last_update_status == "InProgress")
            prep_queue_.insert(c.name);
        if (list->next_marker.empty()) break;
        marker = list->next_marker;
      }
      preparer_ = std::thread([this] { PrepareLoop(); });
    }
    timer_ = std::thread([this] { TimerLoop(); });
    return Status::Ok();
  }

  ~InvokerImpl() override { Shutdown(); }

  void Invoke(InvokeRequest req, std::function<void(Result<InvokeResult>)> done) override {
    uint64_t limit =
        req.type == InvocationType::kEvent ? o_.max_event_payload_bytes : o_.max_payload_bytes;
    if (req.payload.size() > limit) {
      return done(
          base::InvalidArgument(std::to_string(req.payload.size()) + " " + std::to_string(limit)));
    }
    auto details = Lookup(req.function_name, req.qualifier);
    if (!details.ok()) return done(details.status());
    if (!(*details)->alias_weights.empty() && req.type != InvocationType::kDryRun) {
      // Weighted alias (RoutingConfig): this invocation goes to the additional version with
      // its weight's probability.
      thread_local std::mt19937_64 rng{std::random_device{}()};
      double draw = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
      for (const auto& [version, weight] : (*details)->alias_weights) {
        if (draw < weight) {
          details = Lookup(req.function_name, version);
          if (!details.ok()) return done(details.status());
          break;
        }
        draw -= weight;
      }
    }
    if (req.type == InvocationType::kDryRun) {
      InvokeResult r;
      r.status = 204;
      r.executed_version = (*details)->config.version;
      return done(std::move(r));
    }
    auto inv = std::make_shared<Invocation>();
    inv->request_id = req.request_id.empty() ? base::NewUuid() : req.request_id;
    inv->enqueued = Clock::now();
    if (req.type == InvocationType::kEvent) {
      // Accepted now; the run's outcome goes to the log only (the durable queue with
      // retries and destinations belongs to the triggers work).
      InvokeResult accepted;
      accepted.status = 202;
      accepted.request_id = inv->request_id;
      done(std::move(accepted));
      inv->done = [](Result<InvokeResult>) {};
    } else {
      inv->done = std::move(done);
    }
    inv->req = std::move(req);
    Route(std::move(inv), **details);
  }

  // Function configuration from memory; a store watch on /lambda/ empties the cache on any
  // change, so a warm invoke reads no disk and parses no JSON.
  Result<std::shared_ptr<const FunctionDetails>> Lookup(const std::string& name,
                                                        const std::string& qualifier) {
    std::string key = name + "\n" + qualifier;
    uint64_t gen;
    {
      std::lock_guard lock(cache_mu_);
      uint64_t local = o_.lambda->generation();
      if (local != cache_local_gen_) {
        cache_.clear();
        cache_gen_++;
        cache_local_gen_ = local;
      }
      auto it = cache_.find(key);
      if (it != cache_.end()) return it->second;
      gen = cache_gen_;
    }
    ASSIGN_OR_RETURN(FunctionDetails d, o_.lambda->GetFunction(name, qualifier));
    auto shared = std::make_shared<const FunctionDetails>(std::move(d));
    std::lock_guard lock(cache_mu_);
    if (cache_gen_ == gen && watch_) cache_[key] = shared;
    return shared;
  }

  std::map<std::string, FunctionStats> Stats() const override {
    std::lock_guard lock(mu_);
    auto out = stats_;
    for (auto& [key, fs] : functions_) {
      auto& s = out[fs->name];
      s.concurrency += fs->busy;
      s.environments += static_cast<int64_t>(fs->envs.size());
    }
    return out;
  }

  void Shutdown() override {
    std::vector<std::shared_ptr<Invocation>> failed;
    {
      std::unique_lock lock(mu_);
      if (shutdown_) return;
      shutdown_ = true;
      for (auto& [key, fs] : functions_) {
        for (auto& inv : fs->queue) failed.push_back(inv);
        fs->queue.clear();
      }
      for (auto& [id, env] : envs_) KillLocked(*env);
    }
    for (auto& inv : failed) inv->done(base::Unavailable("the server is shutting down"));
    {
      std::unique_lock lock(mu_);
      cv_.notify_all();
      // Monitors finish once their sandbox is gone (they were all killed above).
      cv_.wait(lock, [this] { return envs_.empty() && monitors_ == 0; });
    }
    cv_.notify_all();
    timer_cv_.notify_all();
    if (timer_.joinable()) timer_.join();
    {
      std::lock_guard lock(prep_mu_);
      prep_stop_ = true;
    }
    prep_cv_.notify_all();
    if (preparer_.joinable()) preparer_.join();
  }

 private:
  // ---- Preparing new code (Pending -> Active) ------------------------------------------

  // Makes each Pending or InProgress $LATEST ready: its code unpacked into the code cache
  // (what a cold start would do), then Active / Successful in the store.
  void PrepareLoop() {
    std::unique_lock lock(prep_mu_);
    while (true) {
      prep_cv_.wait(lock, [this] { return prep_stop_ || !prep_queue_.empty(); });
      if (prep_stop_) return;
      std::string name = *prep_queue_.begin();
      prep_queue_.erase(prep_queue_.begin());
      lock.unlock();
      auto d = o_.lambda->GetFunction(name, "");
      if (d.ok() &&
          (d->config.state == "Pending" || d->config.last_update_status == "InProgress")) {
        Status outcome =
            IsImageFunction(d->config) ? PrepareImageCode(d->config) : CodeDir(d->config).status();
        if (!outcome.ok())
          outcome = base::InvalidArgument("The function's code could not be unpacked: " +
                                          outcome.message());
        Status st = o_.lambda->FinishUpdate(name, d->config.revision_id, outcome);
        if (!st.ok()) spdlog::warn("lambda: finishing the update of {}: {}", name, st.ToString());
        if (outcome.ok()) RetireOlder(name, d->config.revision_id);
      }
      lock.lock();
    }
  }

  // ---- Routing ------------------------------------------------------------------------

  void Route(std::shared_ptr<Invocation> inv, const FunctionDetails& details) {
    const FunctionConfig& c = details.config;
    std::string key = c.name + "\n" + c.version + "\n" + c.revision_id;
    std::shared_ptr<Env> boot;
    std::vector<std::shared_ptr<Env>> prestarts;
    std::shared_ptr<Env> claimed;
    std::shared_ptr<Env> dispatch_to;
    std::optional<std::string> throttle;
    int64_t unreserved_limit = 0;
    if (!details.reserved_concurrency) unreserved_limit = UnreservedLimit();
    {
      std::lock_guard lock(mu_);
      if (shutdown_) {
        // Fall through to the failure below, outside the lock.
        throttle = "";
      } else {
        FunctionState* fs = StateFor(key, details);
        if (fs->reserved && *fs->reserved == 0) {
          // Reserved concurrency 0 switches the function off, warm environments or not.
          throttle = "ReservedFunctionConcurrentInvocationLimitExceeded";
          stats_[c.name].throttles++;
        } else if (!fs->idle.empty()) {
          Env* env = fs->idle.back();
          fs->idle.pop_back();
          dispatch_to = envs_.at(env->id);
        } else if (static_cast<int>(fs->queue.size()) < fs->booting + fs->awaiting) {
          // An environment is about to ask for work: wait for it rather than start another.
          fs->queue.push_back(inv);
        } else {
          bool allowed;
          if (fs->reserved) {
            allowed = fs->active() < *fs->reserved;
            if (!allowed) throttle = "ReservedFunctionConcurrentInvocationLimitExceeded";
          } else {
            allowed = UnreservedActiveLocked() < unreserved_limit;
            if (!allowed) throttle = "ConcurrentInvocationLimitExceeded";
          }
          if (allowed) {
            fs->queue.push_back(inv);
            boot = ClaimOrNewEnvLocked(fs, &prestarts, &claimed);
          } else {
            stats_[c.name].throttles++;
          }
        }
      }
      if (dispatch_to) DispatchLocked(*dispatch_to, inv);
    }
    if (throttle) {
      if (throttle->empty()) return inv->done(base::Unavailable("the server is shutting down"));
      return inv->done(base::Status(base::Code::kResourceExhausted, *throttle));
    }
    for (auto& p : prestarts) StartMonitor(p);
    if (dispatch_to) return SendEvent(dispatch_to, inv);
    if (boot) StartMonitor(boot);
    if (claimed) {
      // Hand the code over right here when it is unpacked already (the common case): one
      // thread wake less on the cold path. Otherwise the monitor unpacks it, off this thread.
      struct stat sb;
      bool unpacked = stat(CodeDirPath(*claimed->config).c_str(), &sb) == 0;
      bool mine = false;
      {
        std::lock_guard lock(mu_);
        if (unpacked && !claimed->handover_started) mine = claimed->handover_started = true;
        cv_.notify_all();
      }
      if (mine) HandOver(claimed);
    }
  }

  // The pool key of a function's configuration; "" when its runtime has no prestart mode.
  std::string PoolKey(const FunctionConfig& c) const {
    if (o_.prestart_pool_size <= 0) return "";
    // Layers are merged at /opt when the sandbox is built; a prestarted sandbox has no
    // /opt to merge into, so functions with layers start fresh.
    if (!c.layers.empty()) return "";
    std::vector<std::string> argv = RuntimeArgv(c.runtime);
    if (argv.empty()) return "";
    return argv[0] + " " + argv[1] + "|" + std::to_string(c.memory_size) + "|" +
           std::to_string(c.ephemeral_storage);
  }

  // A new environment for `fs`: a prestarted one from its pool when there is one (the
  // monitor already runs; it is woken by `claimed`), else a fresh one the caller starts.
  // Either way the pool is topped up (new prestart environments in `prestarts`).
  std::shared_ptr<Env> ClaimOrNewEnvLocked(FunctionState* fs,
                                           std::vector<std::shared_ptr<Env>>* prestarts,
                                           std::shared_ptr<Env>* claimed_out) {
    std::string key = PoolKey(*fs->config);
    if (key.empty()) return NewEnvLocked(fs);
    PrestartPool& pool = pools_[key];
    pool.last_used = Clock::now();
    std::shared_ptr<Env> claimed;
    if (!pool.ready.empty()) {
      Env* e = pool.ready.front();
      pool.ready.pop_front();
      claimed = envs_.at(e->id);
    }
    // Building sandboxes competes with the claim for the kernel's mount and namespace locks
    // and for the CPU, so after a claim the pool is topped up only once that environment
    // has served its first invocation (see Complete).
    if (!claimed) {
      RefillLocked(key, pool, prestarts);
      return NewEnvLocked(fs);
    }
    AttachLocked(*claimed, fs);
    claimed->claimed = true;
    claimed->claimed_at = Clock::now();
    stats_[fs->name].prestarted_starts++;
    AddDeadlineLocked(Clock::now() + o_.init_timeout, Deadline{claimed, ""});
    *claimed_out = claimed;  // the caller hands the code over (or wakes the monitor to)
    return nullptr;          // its monitor is already running
  }

  void RefillLocked(const std::string& key, PrestartPool& pool,
                    std::vector<std::shared_ptr<Env>>* out) {
    if (shutdown_ || Clock::now() - pool.failed_at < std::chrono::seconds(10)) return;
    while (static_cast<int>(pool.ready.size()) + pool.starting < o_.prestart_pool_size) {
      auto env = std::make_shared<Env>();
      env->id = HexId(32);
      env->prestart = true;
      env->pool_key = key;
      size_t bar = key.find('|');
      std::string argv = key.substr(0, bar);
      env->argv = {argv.substr(0, argv.find(' ')), argv.substr(argv.find(' ') + 1)};
      size_t bar2 = key.find('|', bar + 1);
      env->memory_mb = std::stoi(key.substr(bar + 1, bar2 - bar - 1));
      env->ephemeral_mb = std::stoi(key.substr(bar2 + 1));
      env->created = Clock::now();
      envs_[env->id] = env;
      pool.starting++;
      out->push_back(std::move(env));
    }
  }

  // Gives `env` to function state `fs` as a booting environment.
  void AttachLocked(Env& env, FunctionState* fs) {
    env.fs = fs;
    env.config = fs->config;
    std::string day = base::FormatIso8601(std::chrono::system_clock::now()).substr(0, 10);
    std::replace(day.begin(), day.end(), '-', '/');
    env.log_stream = day + "/[" + fs->version + "]" + env.id;
    fs->booting++;
    fs->envs.insert(&env);
    stats_[fs->name].cold_starts++;
  }

  // After an environment is lost: queued invocations beyond what the remaining booting and
  // finishing environments will pick up get a new environment, or are throttled.
  bool RebalanceLocked(FunctionState* fs, std::vector<std::shared_ptr<Env>>* boots,
                       std::vector<std::pair<std::shared_ptr<Invocation>, std::string>>* failed) {
    bool changed = false;
    while (!shutdown_ && static_cast<int>(fs->queue.size()) > fs->booting + fs->awaiting) {
      changed = true;
      if (fs->reserved ? fs->active() < *fs->reserved
                       : UnreservedActiveLocked() < CachedUnreservedLimit()) {
        boots->push_back(NewEnvLocked(fs));
        continue;
      }
      failed->emplace_back(fs->queue.back(),
                           fs->reserved ? "ReservedFunctionConcurrentInvocationLimitExceeded"
                                        : "ConcurrentInvocationLimitExceeded");
      fs->queue.pop_back();
      stats_[fs->name].throttles++;
    }
    return changed;
  }

  int64_t CachedUnreservedLimit() {
    std::lock_guard lock(limit_mu_);
    return unreserved_limit_;
  }

  // Account concurrency minus what functions reserve, refreshed at most once a second.
  int64_t UnreservedLimit() {
    std::lock_guard lock(limit_mu_);
    auto now = Clock::now();
    if (now - limit_read_ > std::chrono::seconds(1)) {
      auto s = o_.lambda->GetAccountSettings();
      if (s.ok()) unreserved_limit_ = s->unreserved_concurrent_executions;
      limit_read_ = now;
    }
    return unreserved_limit_;
  }

  int64_t UnreservedActiveLocked() const {
    int64_t n = 0;
    for (auto& [key, fs] : functions_)
      if (!fs->reserved) n += fs->active();
    return n;
  }

  // Retires the idle environments of $LATEST configurations older than `revision` now, so
  // that tearing them down does not coincide with the next invocation's cold start.
  void RetireOlder(const std::string& name, const std::string& revision) {
    std::lock_guard lock(mu_);
    for (auto& [k, fs] : functions_) {
      if (fs->name == name && fs->version == kLatest && fs->revision != revision && !fs->retired) {
        fs->retired = true;
        for (Env* e : fs->idle) KillLocked(*e);
        fs->idle.clear();
      }
    }
  }

  FunctionState* StateFor(const std::string& key, const FunctionDetails& d) {
    auto it = functions_.find(key);
    if (it != functions_.end()) {
      it->second->reserved = d.reserved_concurrency;
      return it->second.get();
    }
    // A new configuration or code: retire the environments of older ones.
    for (auto& [k, fs] : functions_) {
      if (fs->name == d.config.name && fs->version == d.config.version && !fs->retired) {
        fs->retired = true;
        for (Env* e : fs->idle) KillLocked(*e);
        fs->idle.clear();
      }
    }
    auto fs = std::make_unique<FunctionState>();
    fs->key = key;
    fs->name = d.config.name;
    fs->version = d.config.version;
    fs->revision = d.config.revision_id;
    fs->config = std::make_shared<FunctionConfig>(d.config);
    fs->reserved = d.reserved_concurrency;
    FunctionState* raw = fs.get();
    functions_[key] = std::move(fs);
    return raw;
  }

  std::shared_ptr<Env> NewEnvLocked(FunctionState* fs) {
    auto env = std::make_shared<Env>();
    env->id = HexId(32);
    env->created = Clock::now();
    env->memory_mb = fs->config->memory_size;
    env->ephemeral_mb = fs->config->ephemeral_storage;
    AttachLocked(*env, fs);
    envs_[env->id] = env;
    AddDeadlineLocked(Clock::now() + o_.init_timeout, Deadline{env, ""});
    return env;
  }

  // The timer thread is woken only when the new deadline comes first (rarely, under load).
  void AddDeadlineLocked(Clock::time_point when, Deadline d) {
    bool first = deadlines_.empty() || when < deadlines_.begin()->first;
    deadlines_.emplace(when, std::move(d));
    if (first) timer_cv_.notify_one();
  }

  // Marks `env` busy with `inv`. The event is sent by SendEvent after the lock is released.
  void DispatchLocked(Env& env, const std::shared_ptr<Invocation>& inv) {
    FunctionState* fs = env.fs;
    env.state = EnvState::kBusy;
    fs->busy++;
    env.current = inv;
    inv->started = Clock::now();
    inv->deadline_epoch_ms = EpochMs() + env.config->timeout * 1000LL;
    AddDeadlineLocked(inv->started + std::chrono::seconds(env.config->timeout),
                      Deadline{envs_.at(env.id), inv->request_id});
    stats_[fs->name].invocations++;
  }

  // Answers the runtime's waiting GET next with the event.
  void SendEvent(const std::shared_ptr<Env>& env, const std::shared_ptr<Invocation>& inv) {
    http::Responder next;
    {
      std::lock_guard lock(mu_);
      next = std::move(env->next);
      env->next = nullptr;
    }
    {
      std::lock_guard lock(env->log_mu);
      env->tail.clear();
      env->inv_log_bytes = 0;
      env->inv_log_truncated = false;
      AppendLogLocked(*env,
                      "START RequestId: " + inv->request_id + " Version: " + env->config->version);
    }
    http::Response r;
    r.status = 200;
    r.Set("Content-Type", "application/json");
    r.Set("Lambda-Runtime-Aws-Request-Id", inv->request_id);
    r.Set("Lambda-Runtime-Deadline-Ms", std::to_string(inv->deadline_epoch_ms));
    std::string qualifier = inv->req.qualifier;
    r.Set("Lambda-Runtime-Invoked-Function-Arn",
          o_.lambda->FunctionArn(env->config->name, qualifier));
    r.Set("Lambda-Runtime-Trace-Id", TraceId());
    if (!inv->req.client_context.empty()) {
      auto decoded = base::Base64Decode(inv->req.client_context);
      if (decoded) r.Set("Lambda-Runtime-Client-Context", *decoded);
    }
    r.body = inv->req.payload;
    if (next) next(std::move(r));
  }

  // ---- Completion ---------------------------------------------------------------------

  void Complete(const std::shared_ptr<Env>& env, const std::shared_ptr<Invocation>& inv,
                Outcome out) {
    std::vector<std::shared_ptr<Env>> prestarts;
    FunctionStats* st;
    double duration_ms;
    double init_ms = 0;
    bool report_init = false;
    uint64_t peak = 0;
    {
      std::lock_guard lock(mu_);
      if (inv->finished) return;
      inv->finished = true;
      duration_ms = Ms(Clock::now() - inv->started);
      if (env->current == inv) {
        env->current = nullptr;
        if (env->state == EnvState::kBusy) {
          env->fs->busy--;
          if (out.kill_environment) {
            env->state = EnvState::kDying;
            KillLocked(*env);
          } else {
            env->state = EnvState::kAwaitingNext;
            env->fs->awaiting++;
          }
        }
      }
      report_init = env->report_init;
      env->report_init = false;
      // The pool is topped up once the environment it gave has served its first invocation:
      // building a sandbox and starting an interpreter would compete with that cold start.
      if (report_init && env->prestart)
        RefillLocked(env->pool_key, pools_[env->pool_key], &prestarts);
      init_ms = env->init_ms;
      st = &stats_[env->config->name];
      st->duration_ms_sum += duration_ms;
      uint64_t billed = static_cast<uint64_t>(std::ceil(duration_ms));
      if (billed == 0) billed = 1;
      st->billed_ms += billed;
      st->gb_seconds += static_cast<double>(billed) / 1000.0 * env->config->memory_size / 1024.0;
      if (out.function_error) st->errors++;
    }
    {
      std::lock_guard lock(env->sandbox_mu);  // not mu_: three cgroup file reads
      if (env->sandbox) peak = env->sandbox->PeakMemory();
    }
    uint64_t billed = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(duration_ms)));
    std::string tail;
    {
      std::lock_guard lock(env->log_mu);
      DrainLocked(*env);
      if (!out.log_note.empty()) AppendLogLocked(*env, out.log_note);
      AppendLogLocked(*env, "END RequestId: " + inv->request_id);
      std::string report = "REPORT RequestId: " + inv->request_id +
                           "\tDuration: " + Fixed2(duration_ms) +
                           " ms\tBilled Duration: " + std::to_string(billed) +
                           " ms\tMemory Size: " + std::to_string(env->config->memory_size) +
                           " MB\tMax Memory Used: " + std::to_string(peak >> 20) + " MB\t";
      if (report_init) report += "Init Duration: " + Fixed2(init_ms) + " ms\t";
      if (!out.report_status.empty()) report += "Status: " + out.report_status + "\t";
      AppendLogLocked(*env, report);
      FlushLogLocked(*env);
      if (inv->req.tail_log) tail = env->tail;
    }
    InvokeResult r;
    r.status = 200;
    r.request_id = inv->request_id;
    r.payload = std::move(out.payload);
    r.function_error = out.function_error ? "Unhandled" : "";
    r.executed_version = env->config->version;
    if (inv->req.tail_log) r.log_result = base::Base64Encode(tail);
    inv->done(std::move(r));
    for (auto& p : prestarts) StartMonitor(p);
  }

  // ---- The Runtime API ----------------------------------------------------------------

  void HandleRuntime(const std::weak_ptr<Env>& weak, http::Request&& req, http::Responder respond) {
    std::shared_ptr<Env> env = weak.lock();
    if (!env) return respond(JsonResponse(410, ErrorPayload("Gone", "environment is gone")));
    std::string_view path = req.path;
    if (path == "/_stratus/v1/init" && req.method == "GET")
      return PrestartInit(env, std::move(respond));
    if (path.rfind(kRuntimeApiPrefix, 0) != 0) {
      return respond(JsonResponse(404, ErrorPayload("NotFound", "unknown path")));
    }
    path.remove_prefix(sizeof(kRuntimeApiPrefix) - 1);
    if (path == "invocation/next") {
      if (req.method != "GET")
        return respond(JsonResponse(405, ErrorPayload("MethodNotAllowed", "")));
      return Next(env, std::move(respond));
    }
    if (path == "init/error") {
      if (req.method != "POST")
        return respond(JsonResponse(405, ErrorPayload("MethodNotAllowed", "")));
      return InitError(env, std::move(req.body), std::move(respond));
    }
    constexpr std::string_view kInv = "invocation/";
    if (path.rfind(kInv, 0) == 0 && req.method == "POST") {
      std::string_view rest = path.substr(kInv.size());
      size_t slash = rest.find('/');
      if (slash != std::string_view::npos) {
        std::string id(rest.substr(0, slash));
        std::string_view what = rest.substr(slash + 1);
        if (what == "response" || what == "error") {
          return Answer(env, id, what == "error", std::move(req.body), std::move(respond));
        }
      }
    }
    respond(JsonResponse(404, ErrorPayload("NotFound", "unknown path")));
  }

  // A prestarted runtime asks what to load; answered now if claimed, else at claim.
  void PrestartInit(const std::shared_ptr<Env>& env, http::Responder respond) {
    std::string json;
    {
      std::lock_guard lock(mu_);
      if (!env->prestart || env->init_sent || env->init_waiter) {
        return respond(JsonResponse(403, ErrorPayload("InvalidStateTransition",
                                                      "this environment is not waiting for init")));
      }
      if (env->init_json.empty()) {
        env->init_waiter = std::move(respond);
        return;
      }
      json = std::move(env->init_json);
      env->init_sent = true;
    }
    respond(JsonResponse(200, std::move(json)));
  }

  void Next(const std::shared_ptr<Env>& env, http::Responder respond) {
    std::shared_ptr<Invocation> inv;
    bool kill = false;
    {
      std::lock_guard lock(mu_);
      FunctionState* fs = env->fs;
      if (fs == nullptr) {
        return respond(JsonResponse(
            403, ErrorPayload("InvalidStateTransition", "invocation/next before init")));
      }
      if (env->state == EnvState::kDead || env->killed) {
        kill = true;
      } else if (env->state == EnvState::kBusy || env->next) {
        return respond(JsonResponse(
            400, ErrorPayload("InvalidStateTransition",
                              "invocation/next called while an invocation is in progress")));
      } else {
        if (!env->init_done) {
          env->init_done = true;
          // Init Duration: the user's share only — from the code being handed over.
          env->init_ms =
              Ms(Clock::now() - (env->prestart ? env->claimed_at : env->process_started));
          env->report_init = true;
          fs->booting--;
        } else if (env->state == EnvState::kAwaitingNext) {
          fs->awaiting--;
        }
        env->state = EnvState::kIdle;
        env->next = std::move(respond);
        if (fs->retired || shutdown_) {
          kill = true;
        } else if (!fs->queue.empty()) {
          inv = fs->queue.front();
          fs->queue.pop_front();
          DispatchLocked(*env, inv);
        } else {
          env->idle_since = Clock::now();
          fs->idle.push_back(env.get());
        }
      }
      if (kill) KillLocked(*env);
    }
    if (kill) {
      if (respond) respond(JsonResponse(410, ErrorPayload("Gone", "environment is retiring")));
      return;
    }
    if (inv) SendEvent(env, inv);
  }

  void Answer(const std::shared_ptr<Env>& env, const std::string& id, bool is_error,
              std::string body, http::Responder respond) {
    std::shared_ptr<Invocation> inv;
    {
      std::lock_guard lock(mu_);
      if (env->current && env->current->request_id == id && !env->current->finished)
        inv = env->current;
    }
    if (!inv) {
      return respond(
          JsonResponse(400, ErrorPayload("InvalidRequestID", "Invalid request ID: " + id)));
    }
    Outcome out;
    if (!is_error && body.size() > o_.max_response_bytes) {
      respond(JsonResponse(
          413, ErrorPayload("RequestEntityTooLarge", "Exceeded maximum allowed payload size (" +
                                                         std::to_string(o_.max_response_bytes) +
                                                         " bytes).")));
      out.payload = ErrorPayload("Function.ResponseSizeTooLarge",
                                 "Response payload size exceeded maximum allowed payload size (" +
                                     std::to_string(o_.max_response_bytes) + " bytes).");
      out.function_error = true;
      out.report_status = "error";
      return Complete(env, inv, std::move(out));
    }
    respond(JsonResponse(202, "{\"status\":\"OK\"}"));
    out.payload = std::move(body);
    out.function_error = is_error;
    Complete(env, inv, std::move(out));
  }

  void InitError(const std::shared_ptr<Env>& env, std::string body, http::Responder respond) {
    {
      std::lock_guard lock(mu_);
      if (env->init_done) {
        return respond(JsonResponse(
            403, ErrorPayload("InvalidStateTransition", "init/error after initialization")));
      }
      env->init_error = body.empty() ? ErrorPayload("Runtime.Unknown", "init failed") : body;
    }
    respond(JsonResponse(202, "{\"status\":\"OK\"}"));
    // The runtime normally exits now; if it does not, the monitor's kill makes it.
    std::lock_guard lock(mu_);
    KillLocked(*env);
  }

  // ---- Environments: boot, watch, tear down -------------------------------------------

  void KillLocked(Env& env) {
    env.killed = true;
    if (env.host_pid > 0 && !env.reaped) kill(env.host_pid, SIGKILL);
  }

  void StartMonitor(std::shared_ptr<Env> env) {
    {
      std::lock_guard lock(mu_);
      monitors_++;
    }
    std::thread([this, env = std::move(env)]() mutable {
      Monitor(env);
      std::lock_guard lock(mu_);
      monitors_--;
      cv_.notify_all();
    }).detach();
  }

  Status PrepareImageCode(const FunctionConfig& c) {
    if (o_.images == nullptr) return base::FailedPrecondition("no image store");
    return PrepareImage(*o_.images, c);
  }

  std::string CodeDirPath(const FunctionConfig& c) const {
    return code_dir_ + "/" + c.code_digest.substr(c.code_digest.find(':') + 1);
  }

  Result<std::string> CodeDir(const FunctionConfig& c) {
    for (const auto& l : c.layers) RETURN_IF_ERROR(DigestDir(l.digest).status());
    return DigestDir(c.code_digest);
  }

  // A zip (function code or layer) from the BlobStore, unpacked once per digest.
  Result<std::string> DigestDir(const std::string& digest) {
    std::string hex = digest.substr(digest.find(':') + 1);
    std::string dir = code_dir_ + "/" + hex;
    std::shared_ptr<std::mutex> m;
    {
      std::lock_guard lock(code_mu_);
      auto& slot = code_locks_[hex];
      if (!slot) slot = std::make_shared<std::mutex>();
      m = slot;
    }
    std::lock_guard lock(*m);
    struct stat sb;
    if (stat(dir.c_str(), &sb) == 0) return dir;
    ASSIGN_OR_RETURN(std::string zip, o_.blobs->Get(digest));
    std::string tmp = dir + ".tmp-" + HexId(8);
    RETURN_IF_ERROR(base::MakeDirs(tmp, 0755));
    chmod(tmp.c_str(), 0755);
    Status st = ExtractZip(zip, tmp, o_.lambda->options().max_unzipped_bytes);
    if (st.ok() && rename(tmp.c_str(), dir.c_str()) != 0) st = base::ErrnoError("rename " + tmp);
    if (!st.ok()) {
      std::error_code ec;
      std::filesystem::remove_all(tmp, ec);
      return st;
    }
    return dir;
  }

  // Role sessions are reused for an hour (they last 12): assuming a role writes to the
  // store, which a cold start should not wait for every time.
  Result<RoleCredentials> RoleCredentialsFor(const std::string& role, const std::string& fn) {
    std::lock_guard lock(creds_mu_);
    const std::string key = role + "\n" + fn;
    auto it = creds_.find(key);
    if (it != creds_.end() && Clock::now() - it->second.second < std::chrono::hours(1))
      return it->second.first;
    // A role that cannot be assumed is asked again after a minute, not on every start.
    auto failed = creds_failed_.find(key);
    if (failed != creds_failed_.end() &&
        Clock::now() - failed->second.second < std::chrono::minutes(1))
      return failed->second.first;
    auto c = o_.role_credentials(role, fn);
    if (!c.ok()) {
      creds_failed_[key] = {c.status(), Clock::now()};
      return c.status();
    }
    creds_failed_.erase(key);
    creds_[key] = {*c, Clock::now()};
    return *c;
  }

  std::vector<std::string> EnvironmentVars(const Env& env) {
    const FunctionConfig& c = *env.config;
    std::map<std::string, std::string> vars = c.environment;  // reserved keys win below
    auto set = [&vars](const std::string& k, std::string v) { vars[k] = std::move(v); };
    set("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001");
    set("_HANDLER", c.handler);
    set("LAMBDA_TASK_ROOT", "/var/task");
    set("LAMBDA_RUNTIME_DIR", "/var/runtime");
    set("AWS_LAMBDA_FUNCTION_NAME", c.name);
    set("AWS_LAMBDA_FUNCTION_VERSION", c.version);
    set("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", std::to_string(c.memory_size));
    set("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/" + c.name);
    set("AWS_LAMBDA_LOG_STREAM_NAME", env.log_stream);
    set("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand");
    set("AWS_REGION", o_.region);
    set("AWS_DEFAULT_REGION", o_.region);
    set("AWS_EXECUTION_ENV", "AWS_Lambda_" + c.runtime);
    set("TZ", ":UTC");
    if (!vars.count("LANG")) set("LANG", "en_US.UTF-8");
    if (!vars.count("PATH")) set("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin");
    if (!vars.count("LD_LIBRARY_PATH"))
      set("LD_LIBRARY_PATH", "/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib");
    if (c.runtime.rfind("nodejs", 0) == 0 && !vars.count("NODE_PATH"))
      set("NODE_PATH", "/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task");
    if (!o_.endpoint_url.empty()) set("AWS_ENDPOINT_URL", o_.endpoint_url);
    if (o_.aws_endpoints) {
      set("AWS_CA_BUNDLE", kCaBundle);
      set("NODE_EXTRA_CA_CERTS", kCaBundle);
    }
    if (o_.role_credentials && !c.role.empty()) {
      auto creds = RoleCredentialsFor(c.role, c.name);
      if (creds.ok()) {
        set("AWS_ACCESS_KEY_ID", creds->access_key_id);
        set("AWS_SECRET_ACCESS_KEY", creds->secret_access_key);
        set("AWS_SESSION_TOKEN", creds->session_token);
      } else {
        spdlog::warn("lambda {}: no credentials for role {}: {}", c.name, c.role,
                     creds.status().ToString());
      }
    }
    std::vector<std::string> out;
    out.reserve(vars.size());
    for (auto& [k, v] : vars) out.push_back(k + "=" + v);
    return out;
  }

  // Builds the sandbox and starts the runtime; on failure sets env->boot_error.
  // What a prestarted runtime gets at start; the function's own variables follow at claim.
  std::vector<std::string> PrestartVars(const Env& env) const {
    std::vector<std::string> v = {
        "AWS_LAMBDA_RUNTIME_API=127.0.0.1:9001",
        "STRATUS_PRESTART=1",
        "LAMBDA_TASK_ROOT=/var/task",
        "LAMBDA_RUNTIME_DIR=/var/runtime",
        "TZ=:UTC",
        "LANG=en_US.UTF-8",
        "PATH=/usr/local/bin:/usr/bin/:/bin:/opt/bin",
        "LD_LIBRARY_PATH=/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"};
    if (env.argv[0].find("node") != std::string::npos)
      v.push_back(
          "NODE_PATH=/opt/nodejs/node_modules:/var/runtime/node_modules:/var/runtime:/var/task");
    // Node reads its extra CAs at start only.
    if (o_.aws_endpoints) v.push_back(std::string("NODE_EXTRA_CA_CERTS=") + kCaBundle);
    return v;
  }

  // Builds the sandbox and starts the runtime (for a prestarted environment: the bare
  // runtime, no code). On a failure meant for the invocation, sets env->boot_error.
  Status Boot(const std::shared_ptr<Env>& env, std::unique_ptr<sandbox::Sandbox>* sb_out,
              std::optional<sandbox::Process>* proc_out) {
    std::string code;
    std::vector<std::string> argv;
    std::vector<std::string> opt_layers;
    std::optional<ImageBoot> image_boot;
    if (env->prestart) {
      code = empty_dir_;
      argv = env->argv;
    } else if (IsImageFunction(*env->config)) {
      auto ib = o_.images ? PrepareImageBoot(*o_.images, *env->config, EnvironmentVars(*env))
                          : Result<ImageBoot>(base::FailedPrecondition("no image store"));
      if (!ib.ok()) {
        env->boot_error = ErrorPayload("Runtime.InvalidEntrypoint",
                                       "could not start the image: " + ib.status().message());
        return ib.status();
      }
      image_boot = std::move(ib).value();
      argv = image_boot->argv;
    } else {
      const FunctionConfig& c = *env->config;
      ASSIGN_OR_RETURN(code, CodeDir(c));
      for (const auto& l : c.layers) {
        ASSIGN_OR_RETURN(std::string dir, DigestDir(l.digest));
        opt_layers.push_back(dir);
      }
      argv = RuntimeArgv(c.runtime);
      if (argv.empty()) {
        if (access((code + "/bootstrap").c_str(), X_OK) == 0) argv = {"/var/task/bootstrap"};
        // /opt/bootstrap: from the topmost layer that has one.
        for (auto it = opt_layers.rbegin(); argv.empty() && it != opt_layers.rend(); ++it)
          if (access((*it + "/bootstrap").c_str(), X_OK) == 0) argv = {"/opt/bootstrap"};
        if (argv.empty()) {
          env->boot_error = ErrorPayload(
              "Runtime.InvalidEntrypoint",
              "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]");
          return base::FailedPrecondition("no bootstrap");
        }
      }
    }
    if (!image_boot && argv.size() > 1 &&
        access((runtime_dir_ + argv[1].substr(std::string("/var/runtime").size())).c_str(), R_OK) !=
            0) {
      env->boot_error =
          ErrorPayload("Runtime.InvalidEntrypoint",
                       "The runtime client " + argv[1] + " is not part of this build of Stratus.");
      return base::FailedPrecondition("no runtime client " + argv[1]);
    }
    env->argv = argv;
    sandbox::SandboxSpec spec;
    if (image_boot) {
      // The image is the root: its layers under a throwaway upper, read-only as Lambda's.
      spec.root = sandbox::RootKind::kOverlay;
      spec.overlay.lower_dirs = image_boot->lower_dirs;
      if (spec.overlay.lower_dirs.empty()) spec.overlay.lower_dirs.push_back(empty_dir_);
      spec.overlay.tmpfs_bytes = 16ull << 20;
      env->image_lease = image_boot->lease;
    } else {
      spec.root = sandbox::RootKind::kLean;
      spec.lean.host_dirs = o_.host_dirs;
      spec.lean.code_dir = code;
      spec.lean.opt_layers = opt_layers;
      spec.binds.push_back({runtime_dir_, "/var/runtime", true});
      if (o_.aws_endpoints) {
        spec.binds.push_back({o_.work_dir + "/resolv.conf", "/etc/resolv.conf", true});
        if (access(kHostTrustStore, R_OK) == 0)
          spec.binds.push_back({runtime_dir_ + "/ca-bundle.pem", kHostTrustStore, true});
      }
    }
    spec.read_only_root = true;
    spec.tmp_bytes = static_cast<uint64_t>(env->ephemeral_mb) << 20;
    spec.hostname = "localhost";
    spec.limits.memory_bytes = static_cast<uint64_t>(env->memory_mb) << 20;
    spec.limits.pids_max = 1024;
    ASSIGN_OR_RETURN(auto sb, sandbox::Sandbox::Create(spec));
    ASSIGN_OR_RETURN(base::UniqueFd api_fd, sb->ListenTcp("127.0.0.1", 9001));
    std::weak_ptr<Env> weak = env;
    ASSIGN_OR_RETURN(auto listener,
                     o_.runtime_host->Adopt(std::move(api_fd),
                                            [this, weak](http::Request&& r, http::Responder rs) {
                                              HandleRuntime(weak, std::move(r), std::move(rs));
                                            }));
    std::unique_ptr<endpoints::Served> aws_served;
    if (o_.aws_endpoints && !image_boot) {
      ASSIGN_OR_RETURN(base::UniqueFd tls_fd, sb->ListenTcp("127.0.0.1", 443));
      ASSIGN_OR_RETURN(base::UniqueFd dns_fd, sb->BindUdp("127.0.0.1", 53));
      ASSIGN_OR_RETURN(aws_served, o_.aws_endpoints->Serve(std::move(tls_fd), std::move(dns_fd)));
    }
    std::unique_ptr<http::AdoptedListener> endpoint;
    if (o_.endpoint_handler) {
      // The function's own AWS SDK calls reach us here, without a route to the host.
      ASSIGN_OR_RETURN(base::UniqueFd ep_fd, sb->ListenTcp("127.0.0.1", 4566));
      ASSIGN_OR_RETURN(endpoint, o_.runtime_host->Adopt(std::move(ep_fd), o_.endpoint_handler));
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return base::ErrnoError("lambda: pipe for logs");
    base::UniqueFd log_r(p[0]), log_w(p[1]);
    // Only our end is non-blocking (the completion path drains it on an I/O thread); the
    // runtime's end blocks as a pipe should.
    if (fcntl(log_r.get(), F_SETFL, fcntl(log_r.get(), F_GETFL) | O_NONBLOCK) != 0)
      return base::ErrnoError("lambda: log pipe O_NONBLOCK");
    int s[2];
    if (pipe2(s, O_CLOEXEC) != 0) return base::ErrnoError("lambda: pipe");
    base::UniqueFd stop_r(s[0]), stop_w(s[1]);
    sandbox::ProcessSpec ps;
    ps.argv = argv;
    ps.env = env->prestart ? PrestartVars(*env)
             : image_boot  ? image_boot->env
                           : EnvironmentVars(*env);
    ps.cwd = env->prestart ? "/" : image_boot ? image_boot->cwd : "/var/task";
    ps.stdio = sandbox::StdioMode::kFds;
    ps.stdout_fd = ps.stderr_fd = log_w.get();
    {
      std::lock_guard lock(env->log_mu);
      env->log_r = std::move(log_r);
      env->log_stop = std::move(stop_r);
    }
    {
      std::lock_guard lock(mu_);
      reader_stop_[env.get()] = std::move(stop_w);
      env->process_started = Clock::now();
    }
    ASSIGN_OR_RETURN(sandbox::Process proc, sb->Start(ps));
    {
      std::lock_guard lock(mu_);
      env->runtime_listener = std::move(listener);
      env->endpoint_listener = std::move(endpoint);
      env->aws_served = std::move(aws_served);
      env->host_pid = sb->init_pid();
      if (env->killed) kill(env->host_pid, SIGKILL);  // killed while booting
    }
    {
      std::lock_guard lock(env->sandbox_mu);
      env->sandbox = sb.get();
    }
    *sb_out = std::move(sb);
    proc_out->emplace(std::move(proc));
    return Status::Ok();
  }

  // A prestarted environment waits in its pool until it is claimed (then gets the code at
  // /var/task and the function's variables) or killed. False when it will not serve.
  bool AwaitClaim(const std::shared_ptr<Env>& env, bool booted) {
    bool mine = false;
    {
      std::unique_lock lock(mu_);
      PrestartPool& pool = pools_[env->pool_key];
      pool.starting--;
      if (!booted) {
        pool.failed_at = Clock::now();
        return false;
      }
      if (!env->killed && !shutdown_) pool.ready.push_back(env.get());
      cv_.wait(lock, [&] { return env->claimed || env->killed || shutdown_; });
      if (!env->claimed) {
        std::erase(pools_[env->pool_key].ready, env.get());
        return false;
      }
      if (!env->handover_started) mine = env->handover_started = true;
    }
    if (mine) {
      HandOver(env);
      return true;
    }
    // The claiming thread is mounting the code; the control socket is its until then.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return env->handed_over; });
    return true;
  }

  // Gives a claimed prestarted environment its code (mounted at /var/task) and variables
  // (the answer to the runtime's /_stratus/v1/init). Exactly one thread runs it per
  // environment (handover_started); the monitor waits for handed_over before Wait().
  void HandOver(const std::shared_ptr<Env>& env) {
    Status st;
    auto code = CodeDir(*env->config);
    if (!code.ok()) {
      st = code.status();
    } else {
      std::lock_guard lock(env->sandbox_mu);
      st = env->sandbox ? env->sandbox->MountInto(*code, "/var/task", true)
                        : base::FailedPrecondition("sandbox is gone");
    }
    if (!st.ok()) {
      spdlog::warn("lambda {}: claiming prestarted environment {}: {}", env->config->name, env->id,
                   st.ToString());
      std::lock_guard lock(mu_);
      env->boot_error = ErrorPayload("Runtime.Unknown", "could not load the code: " + st.message());
      KillLocked(*env);  // the death path reports it to the invocation
      env->handed_over = true;
      cv_.notify_all();
      return;
    }
    std::string json = "{\"env\":{";
    bool first = true;
    for (const std::string& kv : EnvironmentVars(*env)) {
      size_t eq = kv.find('=');
      json += (first ? "\"" : ",\"") + JsonEscape(kv.substr(0, eq)) + "\":\"" +
              JsonEscape(kv.substr(eq + 1)) + "\"";
      first = false;
    }
    json += "}}";
    http::Responder waiter;
    {
      std::lock_guard lock(mu_);
      if (env->init_waiter) {
        waiter = std::move(env->init_waiter);
        env->init_waiter = nullptr;
        env->init_sent = true;
      } else {
        env->init_json = std::move(json);
      }
      env->handed_over = true;
      cv_.notify_all();
    }
    if (waiter) waiter(JsonResponse(200, std::move(json)));
  }

  void Monitor(const std::shared_ptr<Env>& env) {
    std::unique_ptr<sandbox::Sandbox> sb;
    std::optional<sandbox::Process> proc;
    Status booted = Boot(env, &sb, &proc);
    std::thread reader;
    if (booted.ok()) reader = std::thread([this, env] { ReadLogs(env); });
    bool serving = true;
    if (env->prestart) serving = AwaitClaim(env, booted.ok());
    sandbox::ExitStatus exit;
    if (booted.ok()) {
      if (!serving) {
        std::lock_guard lock(mu_);
        KillLocked(*env);
      }
      auto st = proc->Wait();
      if (st.ok()) exit = *st;
    } else {
      spdlog::warn("lambda {}: environment {} failed to start: {}",
                   env->config ? env->config->name : env->pool_key, env->id, booted.ToString());
    }
    // The runtime is gone (or never started): take the environment out of service.
    std::shared_ptr<Invocation> current, victim;
    http::Responder next, init_waiter;
    std::string init_error, boot_error;
    bool was_init;
    bool timed_out_init = false;
    std::vector<std::shared_ptr<Env>> boots;
    std::vector<std::pair<std::shared_ptr<Invocation>, std::string>> throttled;
    {
      std::lock_guard lock(mu_);
      env->reaped = true;
      if (env->prestart && !env->claimed) std::erase(pools_[env->pool_key].ready, env.get());
      FunctionState* fs = env->fs;
      was_init = env->init_done;
      if (fs) {
        switch (env->state) {
          case EnvState::kBooting:
            fs->booting--;
            break;
          case EnvState::kBusy:
            fs->busy--;
            break;
          case EnvState::kAwaitingNext:
            fs->awaiting--;
            break;
          case EnvState::kIdle:
            std::erase(fs->idle, env.get());
            break;
          case EnvState::kDying:
          case EnvState::kDead:
            break;
        }
      }
      if (env->state == EnvState::kBooting)
        timed_out_init = env->killed && env->init_error.empty() && env->boot_error.empty();
      env->state = EnvState::kDead;
      current = env->current;
      env->current = nullptr;
      next = std::move(env->next);
      env->next = nullptr;
      init_waiter = std::move(env->init_waiter);
      env->init_waiter = nullptr;
      init_error = env->init_error;
      boot_error = env->boot_error;
      // An environment that died before asking for work fails the invocation waiting for
      // it, unless others will pick that up.
      if (fs && !was_init && !fs->queue.empty() &&
          static_cast<int>(fs->queue.size()) > fs->booting + fs->awaiting) {
        victim = fs->queue.front();
        fs->queue.pop_front();
        DispatchLocked(*env, victim);  // for stats and the START line
        env->state = EnvState::kDead;
        fs->busy--;
        env->current = nullptr;
      }
      if (fs) RebalanceLocked(fs, &boots, &throttled);
    }
    for (auto& b : boots) StartMonitor(b);
    for (auto& [inv, reason] : throttled)
      inv->done(base::Status(base::Code::kResourceExhausted, reason));
    if (next) next(JsonResponse(410, ErrorPayload("Gone", "environment is gone")));
    if (init_waiter) init_waiter(JsonResponse(410, ErrorPayload("Gone", "environment is gone")));
    std::shared_ptr<Invocation> failing = current ? current : victim;
    if (failing && !shutdown_) {
      Outcome out;
      out.function_error = true;
      out.report_status = "error";
      std::string rid = "RequestId: " + failing->request_id + " Error: ";
      if (!boot_error.empty()) {
        out.payload = boot_error;
      } else if (!booted.ok()) {
        out.payload = ErrorPayload("Runtime.Unknown", rid + "could not start: " + booted.message());
      } else if (!init_error.empty()) {
        out.payload = init_error;
      } else if (timed_out_init) {
        out.payload = ErrorPayload("Sandbox.Timedout",
                                   rid + "Task timed out after " +
                                       Fixed2(static_cast<double>(o_.init_timeout.count()) / 1000) +
                                       " seconds");
        out.report_status = "timeout";
      } else if (exit.oom_killed) {
        out.payload =
            ErrorPayload("Runtime.OutOfMemory", rid + "Runtime exited with error: signal: killed");
      } else if (exit.exited) {
        out.payload =
            ErrorPayload("Runtime.ExitError", rid + "Runtime exited with error: exit status " +
                                                  std::to_string(exit.code));
      } else {
        out.payload = ErrorPayload(
            "Runtime.ExitError",
            rid + "Runtime exited with error: signal: " +
                std::string(exit.signal == SIGKILL ? "killed" : strsignal(exit.signal)));
      }
      if (exit.oom_killed) out.report_status = "error\tError Type: Runtime.OutOfMemory";
      Complete(env, failing, std::move(out));
    } else if (failing) {
      failing->done(base::Unavailable("the server is shutting down"));
    }
    // Tear down: listeners first (no new runtime requests), then the sandbox, then logs.
    std::unique_ptr<http::AdoptedListener> l1, l2;
    std::unique_ptr<endpoints::Served> l3;
    {
      std::lock_guard lock(mu_);
      l1 = std::move(env->runtime_listener);
      l2 = std::move(env->endpoint_listener);
      l3 = std::move(env->aws_served);
    }
    l1.reset();
    l2.reset();
    l3.reset();
    proc.reset();
    {
      std::lock_guard lock(env->sandbox_mu);
      env->sandbox = nullptr;
    }
    if (sb) sb->Destroy().IgnoreError();
    base::UniqueFd stop;
    {
      std::lock_guard lock(mu_);
      auto it = reader_stop_.find(env.get());
      if (it != reader_stop_.end()) {
        stop = std::move(it->second);
        reader_stop_.erase(it);
      }
    }
    stop.Reset();  // EOF on the stop pipe ends the reader after a last drain
    if (reader.joinable()) reader.join();
    {
      std::lock_guard lock(env->log_mu);
      FlushLogLocked(*env);
    }
    sb.reset();
    {
      std::lock_guard lock(mu_);
      if (FunctionState* fs = env->fs) {
        fs->envs.erase(env.get());
        if (fs->retired && fs->envs.empty() && fs->queue.empty()) functions_.erase(fs->key);
      }
      envs_.erase(env->id);
      cv_.notify_all();
    }
  }

  // ---- Logs ---------------------------------------------------------------------------

  void ReadLogs(const std::shared_ptr<Env>& env) {
    int fd, stop;
    {
      std::lock_guard lock(env->log_mu);
      fd = env->log_r.get();
      stop = env->log_stop.get();
    }
    for (;;) {
      struct pollfd p[2] = {{fd, POLLIN, 0}, {stop, POLLIN, 0}};
      int rc = poll(p, 2, 200);
      if (rc < 0 && errno == EINTR) continue;
      bool stopping = p[1].revents != 0;
      {
        std::lock_guard lock(env->log_mu);
        DrainLocked(*env);
        FlushLogLocked(*env);
        if (stopping) {
          if (!env->partial.empty()) {
            AppendLogLocked(*env, env->partial);
            env->partial.clear();
            FlushLogLocked(*env);
          }
          return;
        }
      }
    }
  }

  // Reads what the runtime wrote so far (non-blocking) into lines.
  void DrainLocked(Env& env) {
    if (!env.log_r.valid()) return;
    char buf[65536];
    for (;;) {
      ssize_t n = read(env.log_r.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      env.partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (;;) {
        size_t nl = env.partial.find('\n', start);
        if (nl == std::string::npos) break;
        AppendLogLocked(env, std::string_view(env.partial).substr(start, nl - start));
        start = nl + 1;
      }
      env.partial.erase(0, start);
      if (env.partial.size() > 256 * 1024) {  // CloudWatch's event size bound
        AppendLogLocked(env, env.partial);
        env.partial.clear();
      }
    }
  }

  void AppendLogLocked(Env& env, std::string_view line) {
    if (env.inv_log_truncated) return;
    env.inv_log_bytes += line.size() + 1;
    if (env.inv_log_bytes > o_.max_log_bytes_per_invoke && line.rfind("END RequestId", 0) != 0 &&
        line.rfind("REPORT RequestId", 0) != 0) {
      env.inv_log_truncated = true;
      std::string note = "[stratus] log output over " +
                         std::to_string(o_.max_log_bytes_per_invoke) +
                         " bytes for this invocation; the rest is dropped";
      env.pending_lines.push_back({EpochMs(), note});
      env.tail += note + "\n";
      return;
    }
    env.pending_lines.push_back({EpochMs(), std::string(line)});
    env.tail.append(line);
    env.tail.push_back('\n');
    if (env.tail.size() > 2 * kTailBytes) env.tail.erase(0, env.tail.size() - kTailBytes);
  }

  void FlushLogLocked(Env& env) {
    if (env.tail.size() > kTailBytes) env.tail.erase(0, env.tail.size() - kTailBytes);
    if (env.pending_lines.empty()) return;
    std::vector<LogLine> lines;
    lines.swap(env.pending_lines);
    if (o_.logs && env.config)
      o_.logs->Write("/aws/lambda/" + env.config->name, env.log_stream, std::move(lines));
  }

  // ---- Timers: invocation deadlines, init deadlines, idle reaping -----------------------

  void TimerLoop() {
    std::unique_lock lock(mu_);
    auto last_reap = Clock::now();
    while (!shutdown_ || !envs_.empty() || monitors_ > 0) {
      if (shutdown_ && envs_.empty() && monitors_ == 0) break;
      auto wake = Clock::now() + std::chrono::seconds(1);
      if (!deadlines_.empty()) wake = std::min(wake, deadlines_.begin()->first);
      timer_cv_.wait_until(lock, wake);
      auto now = Clock::now();
      std::vector<std::pair<std::shared_ptr<Env>, std::shared_ptr<Invocation>>> expired;
      while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        Deadline d = std::move(deadlines_.begin()->second);
        deadlines_.erase(deadlines_.begin());
        auto env = d.env.lock();
        if (!env || env->state == EnvState::kDead) continue;
        if (d.request_id.empty()) {
          if (!env->init_done) KillLocked(*env);  // init timeout: the monitor reports it
          continue;
        }
        if (env->current && env->current->request_id == d.request_id && !env->current->finished)
          expired.emplace_back(env, env->current);
      }
      if (now - last_reap >= std::chrono::seconds(1)) {
        last_reap = now;
        for (auto& [key, pool] : pools_) {
          if (now - pool.last_used < o_.idle_timeout) continue;
          for (Env* e : pool.ready) KillLocked(*e);
          pool.ready.clear();
        }
        for (auto& [key, fs] : functions_) {
          std::erase_if(fs->idle, [&](Env* e) {
            if (now - e->idle_since < o_.idle_timeout) return false;
            KillLocked(*e);
            return true;
          });
        }
      }
      if (expired.empty()) continue;
      lock.unlock();
      for (auto& [env, inv] : expired) {
        Outcome out;
        out.function_error = true;
        out.kill_environment = true;
        out.report_status = "timeout";
        std::string secs = Fixed2(env->config->timeout);
        out.payload = ErrorPayload(
            "Sandbox.Timedout",
            "RequestId: " + inv->request_id + " Error: Task timed out after " + secs + " seconds");
        out.log_note = base::FormatIso8601(std::chrono::system_clock::now()) + " " +
                       inv->request_id + " Task timed out after " + secs + " seconds";
        Complete(env, inv, std::move(out));
      }
      lock.lock();
    }
  }

  InvokerOptions o_;
  std::string code_dir_, runtime_dir_, empty_dir_;
  std::map<std::string, PrestartPool> pools_;  // under mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;        // monitors (claims), Shutdown
  std::condition_variable timer_cv_;  // the timer thread
  bool shutdown_ = false;
  int monitors_ = 0;
  std::map<std::string, std::unique_ptr<FunctionState>> functions_;
  std::map<std::string, std::shared_ptr<Env>> envs_;
  std::map<Env*, base::UniqueFd> reader_stop_;  // under mu_
  std::multimap<Clock::time_point, Deadline> deadlines_;
  std::map<std::string, FunctionStats> stats_;
  std::thread timer_;
  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  std::set<std::string> prep_queue_;
  bool prep_stop_ = false;
  std::thread preparer_;

  std::mutex limit_mu_;
  Clock::time_point limit_read_{};
  int64_t unreserved_limit_ = 0;

  std::mutex cache_mu_;
  std::map<std::string, std::shared_ptr<const FunctionDetails>> cache_;
  uint64_t cache_gen_ = 0;
  uint64_t cache_local_gen_ = 0;         // o_.lambda->generation() the cache was filled at
  std::unique_ptr<store::Watch> watch_;  // declared after the cache: destroyed first

  std::mutex creds_mu_;
  std::map<std::string, std::pair<RoleCredentials, Clock::time_point>> creds_;
  std::map<std::string, std::pair<Status, Clock::time_point>> creds_failed_;

  std::mutex code_mu_;
  std::map<std::string, std::shared_ptr<std::mutex>> code_locks_;
};

}  // namespace

base::Result<std::unique_ptr<Invoker>> MakeInvoker(const InvokerOptions& options) {
  if (!options.lambda || !options.blobs || !options.runtime_host || options.work_dir.empty())
    return base::InvalidArgument(
        "lambda invoker: lambda, blobs, runtime_host and work_dir are required");
  auto inv = std::make_unique<InvokerImpl>(options);
  RETURN_IF_ERROR(inv->Init());
  return std::unique_ptr<Invoker>(std::move(inv));
}

}  // namespace lambda
