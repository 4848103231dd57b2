// The edge router (DESIGN §2): every request on the listener comes through Edge::Handle.
//
// In order: platform endpoints (/_stratus/health, /metrics); then the request is
// classified to a protocol and a service (OCI /v2/, function URL hosts, X-Amz-Target,
// Lambda's REST paths, Query `Action=`, the SigV4 scope's service, else S3); then SigV4
// is verified; then the service handles it with a Call describing the caller. Errors at
// every step are rendered in the protocol's own shape. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "auth/principal.h"
#include "aws/service.h"
#include "base/time.h"
#include "http/message.h"
#include "server/metrics.h"

namespace lambda {
class FunctionUrls;
}
namespace ecr {
class Registry;
}

namespace server {

struct Route {
  aws::Protocol protocol = aws::Protocol::kRestXml;
  std::string service;  // signing name; may be empty when nothing says
  std::string target;   // X-Amz-Target or Action, for errors on unknown operations
};

// Pure: works out protocol and service from the request alone.
Route Classify(const http::Request& request);

struct EdgeOptions {
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  bool dev_any_credentials = false;
  base::Clock* clock = nullptr;  // nullptr = system clock
};

class Edge {
 public:
  // `credentials` resolves every access key (root and IAM); `authorizer` may be null
  // (allow all). Both must outlive the Edge.
  Edge(EdgeOptions options, auth::CredentialProvider* credentials, aws::Authorizer* authorizer,
       Metrics* metrics);

  // Not thread-safe: register every service before serving.
  void Register(aws::Service* service);
  // The OCI registry that answers /v2/ (DESIGN §2: routed before anything else). It does
  // its own authentication for Basic tokens and anonymous pulls; the edge verifies SigV4
  // when the request carries it. Not thread-safe: set before serving.
  void SetRegistry(ecr::Registry* registry) { registry_ = registry; }
  // Function URLs (DESIGN §2: Host <id>.lambda-url.*, after /v2/). The edge verifies SigV4
  // when the request carries it; the URL's AuthType decides whether it must. Not
  // thread-safe: set before serving.
  void SetFunctionUrls(lambda::FunctionUrls* urls) { function_urls_ = urls; }
  // Gauges added to /metrics at render time (connections open, ...).
  // Further Prometheus text appended to /metrics (labelled series from services).
  void SetExtraMetrics(std::function<std::string()> extra) { extra_metrics_ = std::move(extra); }
  void SetGauges(std::function<std::map<std::string, double>()> gauges) {
    gauges_ = std::move(gauges);
  }

  void Handle(http::Request&& request, http::Responder respond);

 private:
  EdgeOptions options_;
  base::Clock* clock_;
  auth::CredentialProvider* credentials_;
  aws::Authorizer* authorizer_;
  Metrics* metrics_;
  std::map<std::string, aws::Service*, std::less<>> services_;
  std::function<std::map<std::string, double>()> gauges_;
  std::function<std::string()> extra_metrics_;
  ecr::Registry* registry_ = nullptr;
  lambda::FunctionUrls* function_urls_ = nullptr;

  void HandleRegistry(std::shared_ptr<aws::Call> call, http::Request&& request,
                      http::Responder finish);
  void HandleFunctionUrl(std::shared_ptr<aws::Call> call, http::Request&& request,
                         http::Responder finish);
};

}  // namespace server
