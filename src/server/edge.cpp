#include "server/edge.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>

#include "auth/sigv4.h"
#include "aws/protocol.h"
#include "base/ids.h"
#include "base/strings.h"
#include "services/ecr/registry.h"
#include "services/lambda/function_url.h"

namespace server {

namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The service name in a SigV4 credential scope (AKID/date/region/SERVICE/aws4_request),
// from the Authorization header or the presigned X-Amz-Credential parameter.
std::string ScopeService(const http::Request& req) {
  std::string credential;
  if (const std::string* authz = req.Find("Authorization")) {
    size_t p = authz->find("Credential=");
    if (p != std::string::npos) {
      size_t end = authz->find_first_of(", ", p);
      credential =
          authz->substr(p + 11, end == std::string::npos ? std::string::npos : end - p - 11);
    }
  } else if (req.query.find("X-Amz-Credential=") != std::string::npos) {
    if (auto q = base::ParseQuery(req.query))
      for (auto& [k, v] : *q)
        if (k == "X-Amz-Credential") credential = v;
  }
  auto parts = base::Split(credential, '/');
  if (parts.size() == 5) return std::string(parts[3]);
  return {};
}

// "AWSStepFunctions.StartExecution" → signing name, for requests whose scope says nothing.
std::string ServiceForTarget(std::string_view target) {
  static const std::pair<std::string_view, std::string_view> kPrefixes[] = {
      {"AWSStepFunctions.", "states"},
      {"AmazonSQS.", "sqs"},
      {"Logs_20140328.", "logs"},
      {"AmazonEC2ContainerServiceV20141113.", "ecs"},
      {"AmazonEC2ContainerRegistry_V20150921.", "ecr"},
      {"AWSEvents.", "events"},
      {"AWSSecurityTokenServiceV20110615.", "sts"},
  };
  for (auto [prefix, svc] : kPrefixes)
    if (StartsWith(target, prefix)) return std::string(svc);
  return {};
}

bool IsStsAction(std::string_view action) {
  static const std::string_view kActions[] = {
      "GetCallerIdentity",         "AssumeRole",
      "GetSessionToken",           "GetAccessKeyInfo",
      "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML",
      "GetFederationToken",        "DecodeAuthorizationMessage"};
  for (auto a : kActions)
    if (a == action) return true;
  return false;
}

bool IsDatedRestPath(std::string_view path) {
  // "/2015-03-31/functions/..." — Lambda's (and other REST services') versioned paths.
  if (path.size() < 12 || path[0] != '/' || path[11] != '/') return false;
  for (size_t i = 1; i <= 10; ++i) {
    char c = path[i];
    bool ok = (i == 5 || i == 8) ? c == '-' : (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Route Classify(const http::Request& req) {
  Route r;
  std::string scope = ScopeService(req);
  if (const std::string* target = req.Find("X-Amz-Target")) {
    r.protocol = aws::Protocol::kJson;
    r.target = *target;
    r.service = scope.empty() ? ServiceForTarget(*target) : scope;
    return r;
  }
  if (IsDatedRestPath(req.path)) {
    r.protocol = aws::Protocol::kRestJson;
    r.service = scope.empty() ? "lambda" : scope;
    return r;
  }
  std::string action;
  auto find_action = [&](std::string_view text) {
    if (text.find("Action=") == std::string_view::npos) return;
    if (auto q = base::ParseQuery(text))
      for (auto& [k, v] : *q)
        if (k == "Action") action = v;
  };
  find_action(req.query);
  const std::string* ct = req.Find("Content-Type");
  if (action.empty() && req.method == "POST" && ct != nullptr &&
      base::ToLower(*ct).find("application/x-www-form-urlencoded") == 0)
    find_action(req.body);
  if (!action.empty()) {
    r.protocol = aws::Protocol::kQuery;
    r.target = action;
    r.service = !scope.empty() ? scope : (IsStsAction(action) ? "sts" : "iam");
    return r;
  }
  if (!scope.empty() && scope != "s3") {
    // Signed for a service whose request shape we did not recognise.
    r.protocol =
        (scope == "iam" || scope == "sts") ? aws::Protocol::kQuery : aws::Protocol::kRestJson;
    r.service = scope;
    return r;
  }
  r.protocol = aws::Protocol::kRestXml;
  r.service = "s3";
  return r;
}

Edge::Edge(EdgeOptions options, auth::CredentialProvider* credentials, aws::Authorizer* authorizer,
           Metrics* metrics)
    : options_(std::move(options)),
      clock_(options_.clock ? options_.clock : &base::SystemClock()),
      credentials_(credentials),
      authorizer_(authorizer),
      metrics_(metrics) {}

void Edge::Register(aws::Service* service) {
  services_[std::string(service->signing_name())] = service;
}

void Edge::Handle(http::Request&& req, http::Responder respond) {
  if (req.path == "/_stratus/health") {
    http::Response r;
    r.Set("Content-Type", "application/json");
    r.body = "{\"status\":\"ok\"}";
    return respond(std::move(r));
  }
  if (req.path == "/metrics" && req.method == "GET") {
    http::Response r;
    r.Set("Content-Type", "text/plain; version=0.0.4");
    r.body = metrics_->Render(gauges_ ? gauges_() : std::map<std::string, double>{});
    if (extra_metrics_) r.body += extra_metrics_();
    return respond(std::move(r));
  }

  auto started = std::chrono::steady_clock::now();
  auto call = std::make_shared<aws::Call>();
  call->request_id = base::NewUuid();
  call->now = clock_->Now();
  call->remote_ip = req.remote_ip;
  call->secure = req.secure;
  call->authorizer = authorizer_;
  call->account_id = options_.account_id;
  call->region = options_.region;

  if (registry_ != nullptr && ecr::Registry::Owns(req.path)) {
    call->service = "ecr";
    call->protocol = aws::Protocol::kRestJson;
    call->operation = "Registry";
    metrics_->RequestStarted();
    http::Responder finish = [this, call, started, respond = std::move(respond)](http::Response r) {
      metrics_->RequestFinished("ecr-registry", call->operation, r.status,
                                std::chrono::steady_clock::now() - started);
      respond(std::move(r));
    };
    return HandleRegistry(call, std::move(req), std::move(finish));
  }

  if (function_urls_ != nullptr && lambda::FunctionUrls::UrlId(req)) {
    call->service = "lambda";
    call->protocol = aws::Protocol::kRestJson;
    call->operation = "InvokeFunctionUrl";
    metrics_->RequestStarted();
    http::Responder finish = [this, call, started, respond = std::move(respond)](http::Response r) {
      metrics_->RequestFinished("lambda-url", call->operation, r.status,
                                std::chrono::steady_clock::now() - started);
      respond(std::move(r));
    };
    return HandleFunctionUrl(call, std::move(req), std::move(finish));
  }

  Route route = Classify(req);
  call->service = route.service;
  call->protocol = route.protocol;
  call->operation = route.target;
  metrics_->RequestStarted();

  // Every response goes through here: request-id headers are the service's job; we record.
  http::Responder finish = [this, call, started, respond = std::move(respond)](http::Response r) {
    metrics_->RequestFinished(call->service.empty() ? "unknown" : call->service,
                              call->operation.empty() ? "unknown" : call->operation, r.status,
                              std::chrono::steady_clock::now() - started);
    if (r.status >= 500)
      spdlog::warn("{} {} {} -> {}", call->request_id, call->service, call->operation, r.status);
    else
      spdlog::debug("{} {} {} -> {}", call->request_id, call->service, call->operation, r.status);
    respond(std::move(r));
  };

  auto it = services_.find(route.service);
  std::string_view xmlns = it != services_.end() ? it->second->xml_namespace() : std::string_view();
  auto fail = [&](const aws::Error& e) {
    finish(aws::RenderError(route.protocol, e, call->request_id, xmlns));
  };

  // Unsigned S3 requests go on as anonymous: only a bucket policy can allow them.
  if (route.service == "s3" && !options_.dev_any_credentials && !req.Find("Authorization") &&
      req.query.find("X-Amz-Credential=") == std::string::npos &&
      req.query.find("Signature=") == std::string::npos) {
    call->anonymous = true;
    call->principal = auth::Principal{};
    call->principal.account_id = options_.account_id;
    if (it == services_.end())
      return fail(aws::UnknownOperationError(route.protocol, "s3 " + req.method + " " + req.path));
    return it->second->Handle(*call, std::move(req), std::move(finish));
  }

  // Authenticate.
  std::vector<auth::Header> headers;
  headers.reserve(req.headers.size());
  for (const auto& h : req.headers) headers.push_back({h.name, h.value});
  auth::HttpRequestView view{req.method, req.path, req.query, &headers, req.body};
  auth::VerifyOptions vopts;
  vopts.s3_path_encoding = route.service == "s3";
  auto verified = auth::Verify(view, *credentials_, *clock_, vopts);
  if (auto* failure = std::get_if<auth::AuthFailure>(&verified)) {
    if (!options_.dev_any_credentials) {
      spdlog::info("{} auth failed for {} from {}: {}", call->request_id, route.service,
                   req.remote_ip, failure->message);
      return fail(aws::AuthFailureError(route.protocol, *failure));
    }
    call->principal.type = auth::PrincipalType::kRoot;
    call->principal.account_id = options_.account_id;
    call->principal.arn = "arn:aws:iam::" + options_.account_id + ":root";
    call->principal.user_id = options_.account_id;
  } else {
    auto& ok = std::get<auth::VerifiedRequest>(verified);
    call->principal = ok.credential.principal;
    call->access_key_id = ok.credential.access_key_id;
    if (!ok.sig.region.empty()) call->region = ok.sig.region;
    if (!call->principal.account_id.empty()) call->account_id = call->principal.account_id;
    const std::string* payload = req.Find("x-amz-content-sha256");
    if (payload && payload->rfind("STREAMING-", 0) == 0 && !ok.sig.presigned) {
      aws::Call::ChunkSigning cs;
      cs.key = auth::SigningKey(ok.credential.secret_access_key, ok.sig.date, ok.sig.region,
                                ok.sig.service);
      cs.seed_signature = ok.sig.signature;
      cs.amz_date = ok.sig.amz_date;
      cs.scope = ok.sig.date + "/" + ok.sig.region + "/" + ok.sig.service + "/aws4_request";
      call->chunk_signing = std::move(cs);
    }
  }

  if (it == services_.end()) {
    return fail(aws::UnknownOperationError(
        route.protocol,
        route.target.empty() ? route.service + " " + req.method + " " + req.path : route.target));
  }
  it->second->Handle(*call, std::move(req), std::move(finish));
}

// /v2/: SigV4 is verified here when present (then Call::access_key_id is set); Basic
// tokens and anonymous callers are the registry's business.
void Edge::HandleRegistry(std::shared_ptr<aws::Call> call, http::Request&& req,
                          http::Responder finish) {
  const std::string* authz = req.Find("Authorization");
  bool sigv4 = (authz != nullptr && authz->rfind("AWS4-HMAC-SHA256", 0) == 0) ||
               req.query.find("X-Amz-Credential=") != std::string::npos;
  if (sigv4) {
    std::vector<auth::Header> headers;
    headers.reserve(req.headers.size());
    for (const auto& h : req.headers) headers.push_back({h.name, h.value});
    auth::HttpRequestView view{req.method, req.path, req.query, &headers, req.body};
    // A streamed upload body never reached memory: its signed x-amz-content-sha256 stands
    // in for it (the blob's own digest is checked at commit). Without that header the
    // signature covers an empty body and fails.
    auth::VerifyOptions vopts;
    vopts.verify_payload_hash = req.body_sink == nullptr;
    auto verified = auth::Verify(view, *credentials_, *clock_, vopts);
    if (auto* failure = std::get_if<auth::AuthFailure>(&verified)) {
      spdlog::info("{} registry auth failed from {}: {}", call->request_id, req.remote_ip,
                   failure->message);
      http::Response r;
      r.status = 401;
      r.Set("Content-Type", "application/json");
      r.Set("Docker-Distribution-API-Version", "registry/2.0");
      r.body = R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})";
      return finish(std::move(r));
    }
    auto& ok = std::get<auth::VerifiedRequest>(verified);
    call->principal = ok.credential.principal;
    call->access_key_id = ok.credential.access_key_id;
    if (!call->principal.account_id.empty()) call->account_id = call->principal.account_id;
  } else if (options_.dev_any_credentials && authz == nullptr) {
    call->principal.type = auth::PrincipalType::kRoot;
    call->principal.account_id = options_.account_id;
    call->principal.arn = "arn:aws:iam::" + options_.account_id + ":root";
    call->principal.user_id = options_.account_id;
  }
  registry_->Handle(*call, std::move(req), std::move(finish));
}

// Function URLs: SigV4 is verified here when the request carries it; whether the URL needs
// it (AuthType AWS_IAM) or allows anonymous callers (NONE) is the handler's business.
void Edge::HandleFunctionUrl(std::shared_ptr<aws::Call> call, http::Request&& req,
                             http::Responder finish) {
  const std::string* authz = req.Find("Authorization");
  bool sigv4 = (authz != nullptr && authz->rfind("AWS4-HMAC-SHA256", 0) == 0) ||
               req.query.find("X-Amz-Credential=") != std::string::npos;
  bool verified_ok = false;
  if (sigv4) {
    std::vector<auth::Header> headers;
    headers.reserve(req.headers.size());
    for (const auto& h : req.headers) headers.push_back({h.name, h.value});
    auth::HttpRequestView view{req.method, req.path, req.query, &headers, req.body};
    auto verified = auth::Verify(view, *credentials_, *clock_, auth::VerifyOptions{});
    if (auto* failure = std::get_if<auth::AuthFailure>(&verified)) {
      spdlog::info("{} function URL auth failed from {}: {}", call->request_id, req.remote_ip,
                   failure->message);
    } else {
      auto& ok = std::get<auth::VerifiedRequest>(verified);
      call->principal = ok.credential.principal;
      call->access_key_id = ok.credential.access_key_id;
      if (!call->principal.account_id.empty()) call->account_id = call->principal.account_id;
      verified_ok = true;
    }
  }
  function_urls_->Handle(*call, verified_ok, std::move(req), std::move(finish));
}

}  // namespace server
