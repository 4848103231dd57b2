#include "server/app.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "endpoints/ca.h"
#include "endpoints/endpoints.h"
#include "http/server.h"
#include "server/edge.h"
#include "server/image_source.h"
#include "server/metered_store.h"
#include "server/metrics.h"
#include "server/root_credentials.h"
#include "services/ecr/api.h"
#include "services/ecr/ecr.h"
#include "services/ecr/registry.h"
#include "services/iam/iam.h"
#include "services/lambda/api.h"
#include "services/lambda/async_queue.h"
#include "services/lambda/esm.h"
#include "services/lambda/function_url.h"
#include "services/lambda/invoker.h"
#include "services/lambda/lambda.h"
#include "services/logs/api.h"
#include "services/logs/logs.h"
#include "services/s3/api.h"
#include "services/s3/s3.h"
#include "services/sqs/api.h"
#include "services/sqs/sqs.h"
#include "services/sts/sts.h"
#include "store/blob_store.h"
#include "store/store.h"

namespace server {

namespace {

// Root credentials first, then IAM users and STS sessions.
class EdgeCredentials : public auth::CredentialProvider {
 public:
  EdgeCredentials(RootCredentials root, std::string account_id, auth::CredentialProvider* iam)
      : iam_(iam) {
    root_.access_key_id = root.access_key_id;
    root_.secret_access_key = root.secret_access_key;
    root_.principal.type = auth::PrincipalType::kRoot;
    root_.principal.account_id = account_id;
    root_.principal.arn = "arn:aws:iam::" + account_id + ":root";
    root_.principal.user_id = account_id;
  }
  base::Result<auth::Credential> Lookup(const std::string& access_key_id) override {
    if (access_key_id == root_.access_key_id) return root_;
    return iam_->Lookup(access_key_id);
  }

 private:
  auth::Credential root_;
  auth::CredentialProvider* iam_;
};

// Per-function series for /metrics (Prometheus text format).
std::string LambdaMetrics(const std::map<std::string, lambda::FunctionStats>& stats) {
  struct Series {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const lambda::FunctionStats&);
  };
  static const Series kSeries[] = {
      {"stratus_lambda_invocations_total", "counter", "Function invocations.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.invocations); }},
      {"stratus_lambda_errors_total", "counter", "Invocations that ended in a function error.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.errors); }},
      {"stratus_lambda_throttles_total", "counter", "Invocations refused with 429.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.throttles); }},
      {"stratus_lambda_cold_starts_total", "counter", "Execution environments started.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.cold_starts); }},
      {"stratus_lambda_prestarted_starts_total", "counter",
       "Environments taken from a pool of pre-started runtimes.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.prestarted_starts); }},
      {"stratus_lambda_duration_milliseconds_sum", "counter", "Sum of invocation durations.",
       [](const lambda::FunctionStats& s) { return s.duration_ms_sum; }},
      {"stratus_lambda_billed_milliseconds_total", "counter", "Billed duration (1 ms steps).",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.billed_ms); }},
      {"stratus_lambda_gb_seconds_total", "counter", "Billed duration times memory size.",
       [](const lambda::FunctionStats& s) { return s.gb_seconds; }},
      {"stratus_lambda_concurrent_executions", "gauge", "Invocations running now.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.concurrency); }},
      {"stratus_lambda_environments", "gauge", "Live execution environments.",
       [](const lambda::FunctionStats& s) { return static_cast<double>(s.environments); }},
  };
  std::string out;
  for (const Series& series : kSeries) {
    out += std::string("# HELP ") + series.name + " " + series.help + "\n";
    out += std::string("# TYPE ") + series.name + " " + series.type + "\n";
    for (const auto& [fn, s] : stats) {
      char num[64];
      snprintf(num, sizeof num, "%.17g", series.get(s));
      out += std::string(series.name) + "{function=\"" + fn + "\"} " + num + "\n";
    }
  }
  return out;
}

// Lambda destinations that are SQS queues (OnSuccess/OnFailure of asynchronous invokes).
// ... and the queues event source mappings poll.
class SqsDestinations : public lambda::DestinationSink, public lambda::QueueSource {
 public:
  explicit SqsDestinations(sqs::Queues* queues) : queues_(queues) {}

  base::Status Check(const std::string& arn, bool* fifo) override {
    std::string name = queues_->NameFromArn(arn);
    if (name.empty() || !queues_->Exists(name)) return base::NotFound("no queue " + arn);
    *fifo = name.size() > 5 && name.compare(name.size() - 5, 5, ".fifo") == 0;
    return base::Status::Ok();
  }
  base::Result<std::vector<lambda::QueueMessage>> Receive(const std::string& arn, int max,
                                                          int wait_seconds) override {
    std::string name = queues_->NameFromArn(arn);
    if (name.empty()) return base::NotFound("no queue " + arn);
    sqs::ReceiveRequest req;
    req.max_messages = max;
    req.wait_seconds = wait_seconds;
    req.attribute_names = {"All"};
    req.message_attribute_names = {"All"};
    std::promise<base::Result<std::vector<sqs::ReceivedMessage>>> p;
    auto f = p.get_future();
    queues_->Receive(name, req, [&p](base::Result<std::vector<sqs::ReceivedMessage>> r) {
      p.set_value(std::move(r));
    });
    auto got = f.get();
    if (!got.ok()) return got.status();
    std::vector<lambda::QueueMessage> out;
    for (auto& m : got.value()) {
      lambda::QueueMessage q;
      q.message_id = m.message_id;
      q.receipt_handle = m.receipt_handle;
      q.body = m.body;
      q.md5_body = m.md5_body;
      q.attributes = m.attributes;
      for (const auto& [k, a] : m.message_attributes)
        q.message_attributes[k] = {a.data_type, a.string_value, a.binary_value};
      out.push_back(std::move(q));
    }
    return out;
  }
  base::Status Delete(const std::string& arn, const std::string& receipt_handle) override {
    return queues_->Delete(queues_->NameFromArn(arn), receipt_handle);
  }
  base::Status Check(const std::string& arn) override {
    std::string name = queues_->NameFromArn(arn);
    if (name.empty() || !queues_->Exists(name))
      return base::InvalidArgument("The destination ARN " + arn + " is invalid.");
    return base::Status::Ok();
  }
  base::Status Send(const std::string& arn, const std::string& body,
                    const std::map<std::string, std::string>& attributes) override {
    std::string name = queues_->NameFromArn(arn);
    if (name.empty()) return base::NotFound("no queue " + arn);
    sqs::SendRequest req;
    req.body = body;
    for (const auto& [k, v] : attributes) {
      bool number = !v.empty() && v.find_first_not_of("0123456789") == std::string::npos;
      req.attributes[k] = sqs::MessageAttribute{number ? "Number" : "String", v, ""};
    }
    return queues_->Send(name, req).status();
  }

 private:
  sqs::Queues* queues_;
};

// S3 event notifications to functions (asynchronous invokes) and queues.
class S3Notifications : public s3::NotificationSink {
 public:
  S3Notifications(lambda::Lambda* lambda, lambda::AsyncQueue* async, SqsDestinations* queues,
                  std::string account_id)
      : lambda_(lambda), async_(async), queues_(queues), account_id_(std::move(account_id)) {}

  base::Status Validate(const std::string& arn, const std::string& bucket) override {
    if (arn.rfind("arn:aws:lambda:", 0) == 0)
      return lambda::CheckServiceInvoke(*lambda_, arn, "s3.amazonaws.com",
                                        "arn:aws:s3:::" + bucket, account_id_);
    if (arn.rfind("arn:aws:sqs:", 0) == 0) return queues_->Check(arn);
    return base::InvalidArgument("unsupported destination " + arn);
  }

  base::Status Deliver(const std::string& arn, const std::string& event_json) override {
    if (arn.rfind("arn:aws:sqs:", 0) == 0) return queues_->Send(arn, event_json, {});
    lambda::InvokeRequest req;
    std::string qualifier;
    if (!lambda::ParseFunctionArn(arn, &req.function_name, &qualifier))
      return base::NotFound("not a destination: " + arn);
    req.qualifier = qualifier;
    req.type = lambda::InvocationType::kEvent;
    req.payload = event_json;
    std::promise<base::Result<std::string>> p;
    auto f = p.get_future();
    async_->Enqueue(std::move(req), [&p](base::Result<std::string> r) { p.set_value(std::move(r)); });
    return f.get().status();
  }

 private:
  lambda::Lambda* lambda_;
  lambda::AsyncQueue* async_;
  SqsDestinations* queues_;
  std::string account_id_;
};

// The asynchronous invocation queue's counters for /metrics.
std::string AsyncMetrics(const lambda::AsyncStats& s) {
  std::string out;
  auto add = [&out](const char* name, const char* type, const char* help, double v) {
    char num[64];
    snprintf(num, sizeof num, "%.17g", v);
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + num + "\n";
  };
  add("stratus_lambda_async_accepted_total", "counter", "Event invocations queued (202).",
      static_cast<double>(s.accepted));
  add("stratus_lambda_async_succeeded_total", "counter", "Queued events that ran without error.",
      static_cast<double>(s.succeeded));
  add("stratus_lambda_async_failed_total", "counter",
      "Queued events given up (retries exhausted or too old).", static_cast<double>(s.failed));
  add("stratus_lambda_async_retries_total", "counter", "Retries of queued events.",
      static_cast<double>(s.retried));
  add("stratus_lambda_async_dropped_total", "counter",
      "Queued events dropped because their function no longer exists.",
      static_cast<double>(s.dropped));
  add("stratus_lambda_async_queued", "gauge", "Events in the queue, running ones included.",
      static_cast<double>(s.queued));
  return out;
}

// Function output into CloudWatch Logs, through the Logs writer (batched, never blocking).
class LambdaLogSink : public lambda::LogSink {
 public:
  explicit LambdaLogSink(logs::Writer* w) : writer_(w) {}
  void Write(const std::string& group, const std::string& stream,
             std::vector<lambda::LogLine> lines) override {
    std::vector<logs::Event> events;
    events.reserve(lines.size());
    for (auto& l : lines) events.push_back({l.timestamp_ms, std::move(l.message)});
    writer_->Append(group, stream, std::move(events));
  }

 private:
  logs::Writer* writer_;
};

class AppImpl : public App {
 public:
  base::Status Init(const Config& config) {
    config_ = config;
    RETURN_IF_ERROR(base::MakeDirs(config.data_dir, 0700));
    ASSIGN_OR_RETURN(RootCredentials root, LoadOrCreateRootCredentials(config.data_dir));

    store::SqliteOptions sopts;
    sopts.path = config.data_dir + "/store.db";
    ASSIGN_OR_RETURN(auto raw_store, store::OpenSqliteStore(sopts));
    store_ = std::make_unique<MeteredStore>(std::move(raw_store), &metrics_);

    iam::Options iopts;
    iopts.account_id = config.account_id;
    iopts.min_session_duration = std::chrono::seconds(config.sts_min_duration_seconds);
    ASSIGN_OR_RETURN(iam_, iam::OpenIam(store_.get(), iopts));
    iam_service_ = iam::MakeIamService(*iam_);
    sts_service_ = sts::MakeStsService(*iam_);

    // Logs before the services that write to it (Lambda, ECS), destroyed after them.
    logs::Options logopts;
    logopts.account_id = config.account_id;
    logopts.region = config.region;
    ASSIGN_OR_RETURN(logs_, logs::OpenLogs(store_.get(), logopts));
    logs_service_ = logs::MakeLogsService(*logs_);
    lambda_logs_ = std::make_unique<LambdaLogSink>(logs_.get());

    ASSIGN_OR_RETURN(blobs_, store::OpenBlobStore(config.data_dir + "/blobs", store_.get()));
    // Images from the local registry (its ecr is set below, once open), unpacked once per
    // layer under <data>/image: container-image functions start from them.
    image_source_ = std::make_unique<EcrImageSource>();
    ASSIGN_OR_RETURN(image_store_,
                     image::ImageStore::Open(config.data_dir + "/image", image_source_.get()));
    lambda::Options lopts;
    lopts.images = image_store_.get();
    lopts.account_id = config.account_id;
    lopts.region = config.region;
    lopts.account_concurrency = config.lambda_account_concurrency;
    ASSIGN_OR_RETURN(lambda_, lambda::OpenLambda(store_.get(), blobs_.get(), lopts));

    ecr::Options ecr_opts;
    ecr_opts.account_id = config.account_id;
    ecr_opts.region = config.region;
    ecr_opts.lifecycle_interval = std::chrono::seconds(config.ecr_lifecycle_interval_seconds);

    // The listener exists before the services so that the invoker can serve each function
    // sandbox's Runtime API and AWS endpoint on its I/O threads.
    ASSIGN_OR_RETURN(HostPort hp, ParseListen(config.listen));
    http::ServerOptions hopts;
    hopts.host = hp.host;
    hopts.port = hp.port;
    hopts.threads = config.io_threads;
    hopts.max_header_bytes = config.max_header_bytes;
    hopts.max_body_bytes = config.max_body_bytes;
    // Registry blob uploads stream to disk instead of being buffered (and are not bound
    // by max_body_bytes); see ecr::Registry::OpenBodySink.
    hopts.stream_body = [this](const http::Request& head) -> std::shared_ptr<http::BodySink> {
      if (registry_ == nullptr || !ecr::Registry::Owns(head.path)) return nullptr;
      return registry_->OpenBodySink(head);
    };
    ASSIGN_OR_RETURN(
        http_, http::Server::Create(hopts, [this](http::Request&& r, http::Responder respond) {
          edge_->Handle(std::move(r), std::move(respond));
        }));

    // *.amazonaws.com inside function sandboxes: DNS and HTTPS with the Stratus CA.
    ASSIGN_OR_RETURN(endpoints::Authority authority,
                     endpoints::LoadOrCreateAuthority(config.data_dir + "/ca",
                                                      endpoints::AwsHostNames(config.region)));
    ASSIGN_OR_RETURN(aws_endpoints_, endpoints::StartEndpoints(authority, http_->port()));
    std::string trust_store =
        base::ReadFile("/etc/ssl/certs/ca-certificates.crt").value_or(std::string());
    if (!trust_store.empty() && trust_store.back() != '\n') trust_store += '\n';

    lambda::InvokerOptions inv;
    inv.aws_endpoints = aws_endpoints_.get();
    inv.ca_bundle_pem = trust_store + authority.ca_cert_pem;
    inv.lambda = lambda_.get();
    inv.blobs = blobs_.get();
    inv.images = image_store_.get();
    inv.store = store_.get();
    inv.runtime_host = http_.get();
    inv.logs = lambda_logs_.get();
    inv.work_dir = config.data_dir + "/lambda";
    inv.region = config.region;
    inv.account_concurrency = config.lambda_account_concurrency;
    inv.idle_timeout = std::chrono::seconds(config.lambda_idle_timeout_seconds);
    inv.prestart_pool_size = static_cast<int>(config.lambda_prestart_pool_size);
    inv.endpoint_url = "http://127.0.0.1:4566";
    inv.endpoint_handler = [this](http::Request&& r, http::Responder respond) {
      edge_->Handle(std::move(r), std::move(respond));
    };
    inv.role_credentials =
        [this](const std::string& role_arn,
               const std::string& session) -> base::Result<lambda::RoleCredentials> {
      ASSIGN_OR_RETURN(iam::Session s,
                       sts::AssumeRoleForService(*iam_, role_arn, "lambda.amazonaws.com", session,
                                                 std::chrono::hours(12)));
      return lambda::RoleCredentials{s.access_key_id, s.secret, s.token};
    };
    ASSIGN_OR_RETURN(invoker_, lambda::MakeInvoker(inv));
    sqs::Options qopts;
    qopts.account_id = config.account_id;
    qopts.region = config.region;
    qopts.endpoint = EndpointUrl({hp.host, http_->port()});
    ASSIGN_OR_RETURN(queues_, sqs::OpenQueues(store_.get(), qopts));
    sqs_service_ = sqs::MakeSqsService(*queues_);
    sqs_destinations_ = std::make_unique<SqsDestinations>(queues_.get());
    lambda::AsyncQueueOptions aq;
    aq.sink = sqs_destinations_.get();
    aq.lambda = lambda_.get();
    aq.invoker = invoker_.get();
    aq.store = store_.get();
    aq.retry_delay = std::chrono::milliseconds(config.lambda_async_retry_delay_ms);
    aq.throttle_delay = std::chrono::milliseconds(config.lambda_async_throttle_delay_ms);
    aq.max_in_flight = static_cast<int>(config.lambda_account_concurrency);
    ASSIGN_OR_RETURN(async_, lambda::StartAsyncQueue(aq));
    s3_notifications_ = std::make_unique<S3Notifications>(lambda_.get(), async_.get(),
                                                          sqs_destinations_.get(),
                                                          config.account_id);
    s3::Options s3opts;
    s3opts.region = config.region;
    s3opts.account_id = config.account_id;
    s3opts.sink = s3_notifications_.get();
    ASSIGN_OR_RETURN(objects_, s3::OpenObjectStore(store_.get(), blobs_.get(), s3opts));
    s3_service_ = s3::MakeS3Service(*objects_);
    lambda::EsmOptions eo;
    eo.lambda = lambda_.get();
    eo.invoker = invoker_.get();
    eo.store = store_.get();
    eo.queues = sqs_destinations_.get();
    eo.region = config.region;
    ASSIGN_OR_RETURN(esm_, lambda::StartEventSourceMappings(eo));
    // Deployment packages from S3, read with the caller's permissions (as Lambda does).
    auto fetch_code = [this](const aws::Call& caller, const std::string& bucket,
                             const std::string& key,
                             const std::string& version) -> base::Result<std::string> {
      if (caller.Authorize(version.empty() ? "s3:GetObject" : "s3:GetObjectVersion",
                           "arn:aws:s3:::" + bucket + "/" + key, {}))
        return base::PermissionDenied("AccessDenied: Access Denied");
      ASSIGN_OR_RETURN(s3::ObjectInfo o, version.empty()
                                             ? objects_->HeadObject(bucket, key)
                                             : objects_->HeadVersion(bucket, key, version));
      if (o.delete_marker) return base::NotFound("NoSuchKey: The specified key does not exist.");
      if (o.size > 250ull << 20)
        return base::InvalidArgument("EntityTooLarge: Unzipped size must be smaller than "
                                     "262144000 bytes");
      return objects_->Read(o);
    };
    lambda_service_ = lambda::MakeLambdaService(*lambda_, invoker_.get(), async_.get(),
                                                "localhost:" + std::to_string(http_->port()),
                                                esm_.get(), fetch_code);
    function_urls_ = std::make_unique<lambda::FunctionUrls>(*lambda_, *invoker_);

    credentials_ =
        std::make_unique<EdgeCredentials>(root, config.account_id, &iam::Credentials(*iam_));
    EdgeOptions eopts;
    eopts.account_id = config.account_id;
    eopts.region = config.region;
    eopts.dev_any_credentials = config.dev_any_credentials;
    edge_ = std::make_unique<Edge>(eopts, credentials_.get(), &iam::Authorizer(*iam_), &metrics_);
    edge_->Register(iam_service_.get());
    edge_->Register(sts_service_.get());
    edge_->Register(lambda_service_.get());
    edge_->Register(logs_service_.get());
    edge_->Register(sqs_service_.get());
    edge_->Register(s3_service_.get());

    // repositoryUri host: the listen address (127.0.0.1:4566 by default), what skopeo and
    // podman push to.
    ecr_opts.registry_host = EndpointUrl({hp.host, http_->port()}).substr(7);
    ASSIGN_OR_RETURN(ecr_, ecr::OpenEcr(store_.get(), blobs_.get(), ecr_opts));
    ecr_service_ = ecr::MakeEcrService(*ecr_);
    registry_ = std::make_unique<ecr::Registry>(*ecr_);
    edge_->Register(ecr_service_.get());
    edge_->SetRegistry(registry_.get());
    edge_->SetFunctionUrls(function_urls_.get());
    ecr_->StartController();
    image_source_->SetEcr(ecr_.get());
    edge_->SetGauges([this] {
      auto s = http_->stats();
      return std::map<std::string, double>{
          {"stratus_http_connections_open", static_cast<double>(s.connections_open)},
          {"stratus_http_connections_total", static_cast<double>(s.connections_total)},
          {"stratus_http_bad_requests_total", static_cast<double>(s.bad_requests_total)},
          {"stratus_store_revision", static_cast<double>(store_->CurrentRevision())},
      };
    });
    edge_->SetExtraMetrics(
        [this] { return LambdaMetrics(invoker_->Stats()) + AsyncMetrics(async_->Stats()); });
    compactor_ = std::thread([this] { CompactLoop(); });
    if (hp.host != "127.0.0.1" && hp.host != "::1" && hp.host != "localhost")
      spdlog::warn("listening on {} — reachable from other machines", hp.host);
    return base::Status::Ok();
  }

  uint16_t port() const override { return http_->port(); }
  void Run() override { http_->Run(); }
  void Shutdown() override {
    // Function environments first: their runtimes' waiting requests are answered and
    // their sockets closed, so the listener's drain does not wait for them. The async
    // queue stops dispatching before that (its events stay queued for the next start).
    if (objects_) objects_->Shutdown();  // its dispatcher hands events to the async queue
    if (async_) async_->Shutdown();
    if (queues_) queues_->Shutdown();  // answers long polls, so the drain does not wait
    if (esm_) esm_->Shutdown();
    if (invoker_) invoker_->Shutdown();
    if (aws_endpoints_) aws_endpoints_->Shutdown();
    http_->Shutdown();
  }

  ~AppImpl() override {
    {
      std::lock_guard lock(compact_mu_);
      stopping_ = true;
    }
    compact_cv_.notify_all();
    if (compactor_.joinable()) compactor_.join();
    // Order: no more requests, then services, then the store (flushes and closes).
    if (objects_) objects_->Shutdown();
    if (async_) async_->Shutdown();
    if (queues_) queues_->Shutdown();
    if (esm_) esm_->Shutdown();
    if (invoker_) invoker_->Shutdown();
    if (ecr_) ecr_->StopController();
    http_.reset();
    edge_.reset();
    registry_.reset();
    ecr_service_.reset();
    if (image_source_) image_source_->SetEcr(nullptr);
    ecr_.reset();
    lambda_service_.reset();
    function_urls_.reset();
    async_.reset();
    esm_.reset();
    sqs_destinations_.reset();
    sqs_service_.reset();
    s3_service_.reset();
    objects_.reset();
    s3_notifications_.reset();
    if (queues_) queues_->Shutdown();
    queues_.reset();
    invoker_.reset();
    lambda_.reset();
    image_store_.reset();  // after its users (lambda)
    image_source_.reset();
    blobs_.reset();
    logs_service_.reset();
    logs_.reset();  // flushes queued log events
    sts_service_.reset();
    iam_service_.reset();
    iam_.reset();
    store_.reset();
  }

 private:
  // Every 5 minutes: collects unreferenced blobs, and keeps the store's history bounded:
  // watches can resume from the last
  // kHistoryRevisions revisions (the store never compacts what a live watch still needs).
  void CompactLoop() {
    constexpr store::Revision kHistoryRevisions = 10000;
    std::unique_lock lock(compact_mu_);
    while (!compact_cv_.wait_for(lock, std::chrono::minutes(5), [this] { return stopping_; })) {
      // Blobs nothing names any more (deleted functions and images), once an hour old.
      auto freed = blobs_->Gc(std::chrono::hours(1));
      if (!freed.ok()) spdlog::warn("blob gc: {}", freed.status().ToString());
      CollectImageLayers();
      store::Revision rev = store_->CurrentRevision();
      if (rev <= kHistoryRevisions) continue;
      base::Status st = store_->Compact(rev - kHistoryRevisions);
      if (!st.ok()) spdlog::warn("store compaction: {}", st.ToString());
    }
  }

  // Unpacked layers no image in the registry names, unused by any sandbox for an hour.
  void CollectImageLayers() {
    if (!image_store_) return;
    auto referenced = ReferencedBlobs(*ecr_);
    if (!referenced.ok()) {
      spdlog::warn("image layer gc: {}", referenced.status().ToString());
      return;
    }
    auto n = image_store_->Gc(*referenced, std::chrono::hours(1));
    if (!n.ok()) {
      spdlog::warn("image layer gc: {}", n.status().ToString());
    } else if (*n > 0) {
      spdlog::info("image layer gc: removed {} unpacked layers", *n);
    }
  }

  Config config_;
  std::mutex compact_mu_;
  std::condition_variable compact_cv_;
  bool stopping_ = false;
  std::thread compactor_;
  Metrics metrics_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<iam::Iam> iam_;
  std::unique_ptr<aws::Service> iam_service_, sts_service_;
  std::unique_ptr<logs::Logs> logs_;
  std::unique_ptr<aws::Service> logs_service_;
  std::unique_ptr<store::BlobStore> blobs_;
  std::unique_ptr<lambda::Lambda> lambda_;
  std::unique_ptr<lambda::LogSink> lambda_logs_;
  std::unique_ptr<lambda::Invoker> invoker_;
  std::unique_ptr<lambda::AsyncQueue> async_;
  std::unique_ptr<lambda::FunctionUrls> function_urls_;
  std::unique_ptr<lambda::EventSourceMappings> esm_;
  std::unique_ptr<sqs::Queues> queues_;
  std::unique_ptr<s3::ObjectStore> objects_;
  std::unique_ptr<aws::Service> s3_service_;
  std::unique_ptr<aws::Service> sqs_service_;
  std::unique_ptr<SqsDestinations> sqs_destinations_;
  std::unique_ptr<S3Notifications> s3_notifications_;
  std::unique_ptr<endpoints::Endpoints> aws_endpoints_;
  std::unique_ptr<aws::Service> lambda_service_;
  std::unique_ptr<ecr::Ecr> ecr_;
  std::unique_ptr<aws::Service> ecr_service_;
  std::unique_ptr<ecr::Registry> registry_;
  std::unique_ptr<EcrImageSource> image_source_;
  std::unique_ptr<image::ImageStore> image_store_;
  std::unique_ptr<auth::CredentialProvider> credentials_;
  std::unique_ptr<Edge> edge_;
  std::unique_ptr<http::Server> http_;
};

}  // namespace

base::Result<std::unique_ptr<App>> App::Create(const Config& config) {
  auto app = std::make_unique<AppImpl>();
  RETURN_IF_ERROR(app->Init(config));
  return std::unique_ptr<App>(std::move(app));
}

int RunServer(const Config& config) {
  // Block the stop signals in every thread; one thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto app = App::Create(config);
  if (!app.ok()) {
    spdlog::error("cannot start: {}", app.status().ToString());
    return 1;
  }
  spdlog::info("stratus listening on {} (data in {})", config.listen, config.data_dir);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("signal {}: shutting down", sig);
      app.value()->Shutdown();
    }
  });
  app.value()->Run();
  // Run returned: either a signal or an internal Shutdown(); wake the waiter if needed.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  app.value().reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace server
