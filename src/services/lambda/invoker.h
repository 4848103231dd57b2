// lambda::Invoker — the one way anything runs a function: the Invoke API, and later Step
// Functions, S3 notifications and queue pollers (DESIGN §1, §4a).
//
// An invocation goes to an *execution environment*: a sandbox running the function's
// runtime, which pulls events from the Runtime API (2018-06-01) served by this process on
// a socket opened inside the sandbox's network namespace (127.0.0.1:9001 there). One
// invocation at a time per environment. Idle environments wait, warm, in a LIFO stack per
// function version and configuration; an invoke with none idle starts another, up to the
// function's reserved concurrency or the account's unreserved pool, and beyond that fails
// with ResourceExhausted (TooManyRequestsException). Environments idle longer than
// `idle_timeout` are destroyed (scale to zero); a changed configuration or code retires
// the old environments as they go idle.
//
// Each environment's stdout/stderr, with START/END/REPORT lines, goes to a LogSink as log
// group /aws/lambda/<name>, stream YYYY/MM/DD/[<version>]<32 hex>.
//
// Threading: all methods are thread-safe. `done` callbacks run on internal threads (the
// HTTP I/O thread that received the runtime's answer, the timer thread, or a monitor
// thread) and must not block.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "endpoints/endpoints.h"
#include "http/server.h"
#include "services/lambda/lambda.h"
#include "store/blob_store.h"

namespace lambda {

// Where function logs go (implemented over CloudWatch Logs in server/). Thread-safe;
// must not block for long (it is called from the environments' log readers).
struct LogLine {
  int64_t timestamp_ms = 0;
  std::string message;
};
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(const std::string& group, const std::string& stream,
                     std::vector<LogLine> lines) = 0;
};

// Temporary credentials for a function's execution role (from STS in server/).
struct RoleCredentials {
  std::string access_key_id, secret_access_key, session_token;
};
using RoleCredentialsFn = std::function<base::Result<RoleCredentials>(
    const std::string& role_arn, const std::string& session_name)>;

enum class InvocationType { kRequestResponse, kEvent, kDryRun };

struct InvokeRequest {
  std::string function_name;  // a plain name (the API layer resolves ARNs)
  std::string qualifier;      // "", "$LATEST", a version number or an alias
  InvocationType type = InvocationType::kRequestResponse;
  std::string payload;         // the event, as bytes
  bool tail_log = false;       // X-Amz-Log-Type: Tail
  std::string client_context;  // X-Amz-Client-Context, base64 as received
  std::string request_id;      // "" = a new one (the API passes its x-amzn-RequestId)
};

struct InvokeResult {
  int status = 200;            // 200, 202 (Event), 204 (DryRun)
  std::string payload;         // the function's response or error object
  std::string function_error;  // "" or "Unhandled"
  std::string executed_version;
  std::string log_result;  // base64 of the invocation's last 4 KB of log, when tail_log
  std::string request_id;
};

// Per-function counters for /metrics and the meter. cold_starts counts environments
// started for the function, prestarted_starts those of them taken from a prestart pool.
struct FunctionStats {
  uint64_t invocations = 0;
  uint64_t errors = 0;     // function errors (Unhandled) of any kind
  uint64_t throttles = 0;  // 429s
  uint64_t cold_starts = 0;
  uint64_t prestarted_starts = 0;
  double duration_ms_sum = 0;  // invocation durations
  uint64_t billed_ms = 0;
  double gb_seconds = 0;     // billed duration × memory
  int64_t concurrency = 0;   // invocations running now
  int64_t environments = 0;  // live environments (busy, idle or starting)
};

struct InvokerOptions {
  Lambda* lambda = nullptr;           // configuration lookups; must outlive the invoker
  store::BlobStore* blobs = nullptr;  // code zips
  // Watched to keep the configuration cache fresh; null = no cache (each invoke reads it).
  store::Store* store = nullptr;
  http::Server* runtime_host = nullptr;  // serves the Runtime API sockets (Adopt)
  LogSink* logs = nullptr;               // may be null (logs dropped)
  RoleCredentialsFn role_credentials;    // may be empty (no credentials in the environment)
  std::string work_dir;                  // code cache and runtime files live here
  std::string region = "us-east-1";
  int64_t account_concurrency = 1000;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds init_timeout{std::chrono::seconds(10)};
  uint64_t max_payload_bytes = 6291456;         // request (RequestResponse)
  uint64_t max_response_bytes = 6291556;        // AWS's figure for responses
  uint64_t max_event_payload_bytes = 262144;    // Event invocations (256 KB)
  uint64_t max_log_bytes_per_invoke = 1 << 20;  // more is dropped with a note line
  // Pre-started runtimes ("zygotes") kept ready per (language runtime, memory size,
  // ephemeral storage) once that combination has been used: sandboxes whose interpreter is
  // already running and waits for a function to load. A cold start then pays for mounting
  // the code and importing the handler only. 0 turns this off.
  int prestart_pool_size = 2;
  // Host directories bound read-only into every environment (the lean root).
  std::vector<std::string> host_dirs = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"};
  // AWS endpoint a function's SDK should use (AWS_ENDPOINT_URL); "" = none. With
  // `endpoint_handler` set, each environment also gets 127.0.0.1:4566 inside its network
  // namespace served by that handler (the edge), so that URL can be http://127.0.0.1:4566.
  std::string endpoint_url;
  http::Handler endpoint_handler;
  // AWS's own host names inside environments (issue: events, point 7): each zip function's
  // sandbox gets 127.0.0.1:443 (TCP) and :53 (UDP) served by `aws_endpoints`, a resolv.conf
  // naming 127.0.0.1, and `ca_bundle_pem` (the host's trust store plus the Stratus CA) as its
  // trust store, AWS_CA_BUNDLE and NODE_EXTRA_CA_CERTS. Null = not served.
  endpoints::Endpoints* aws_endpoints = nullptr;
  std::string ca_bundle_pem;
  // Container-image functions' layers; null = such functions fail to start.
  image::ImageStore* images = nullptr;
};

class Invoker {
 public:
  virtual ~Invoker() = default;
  // Runs one invocation and calls `done` once with the result. Errors: NotFound (function,
  // version or alias), InvalidArgument (payload too large: message says which limit),
  // ResourceExhausted with message = AWS's throttle Reason, Unavailable (shutting down).
  // A DryRun, and any request refused before it runs, completes before Invoke returns.
  virtual void Invoke(InvokeRequest request,
                      std::function<void(base::Result<InvokeResult>)> done) = 0;
  virtual std::map<std::string, FunctionStats> Stats() const = 0;
  // Stops accepting invocations, fails queued ones, destroys every environment.
  virtual void Shutdown() = 0;
};

// The invoker runs environments as root-created sandboxes; it needs the sandbox features
// (root, cgroups). Fails when `options` misses a required member.
base::Result<std::unique_ptr<Invoker>> MakeInvoker(const InvokerOptions& options);

}  // namespace lambda
