#include "services/lambda/function_url.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>

#include "auth/policy.h"
#include "base/ids.h"
#include "base/strings.h"

namespace lambda {

namespace {

using nlohmann::json;

constexpr char kPathPrefix[] = "/_stratus/lambda-url/";
constexpr char kForbidden[] =
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html";

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

http::Response JsonMessage(int status, const std::string& message, const std::string& type = "") {
  http::Response r;
  r.status = status;
  r.Set("Content-Type", "application/json");
  if (!type.empty()) r.Set("x-amzn-ErrorType", type);
  r.body = Dump(json{{"Message", message}});
  return r;
}

bool IsTextType(const std::string& ct) {
  std::string t = base::ToLower(ct);
  return t.empty() || t.rfind("text/", 0) == 0 || t.rfind("application/json", 0) == 0 ||
         t.find("+json") != std::string::npos || t.rfind("application/xml", 0) == 0 ||
         t.find("+xml") != std::string::npos || t.rfind("application/javascript", 0) == 0;
}

std::string ClfTime(std::chrono::system_clock::time_point now) {
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  return buf;
}

// The request path the function sees and the Host it was addressed by.
struct Target {
  std::string path;
  std::string domain;
};

Target TargetOf(const http::Request& req, const std::string& url_id) {
  Target t;
  const std::string* host = req.Find("Host");
  if (req.path.rfind(kPathPrefix, 0) == 0) {
    t.path = req.path.substr(std::string(kPathPrefix).size() + url_id.size());
    if (t.path.empty()) t.path = "/";
    t.domain = host ? *host : "";
  } else {
    t.path = req.path.empty() ? "/" : req.path;
    t.domain = host ? *host : "";
  }
  // AWS's domainName carries no port.
  if (size_t colon = t.domain.rfind(':');
      colon != std::string::npos && t.domain.find(']', colon) == std::string::npos)
    t.domain.resize(colon);
  return t;
}

bool OriginAllowed(const UrlCors& cors, const std::string& origin) {
  for (const auto& o : cors.allow_origins)
    if (o == "*" || o == origin) return true;
  return false;
}

void AddCorsHeaders(const UrlCors& cors, const std::string& origin, http::Response* r) {
  if (origin.empty() || !OriginAllowed(cors, origin)) return;
  bool any = std::find(cors.allow_origins.begin(), cors.allow_origins.end(), "*") !=
             cors.allow_origins.end();
  r->Set("Access-Control-Allow-Origin", any && !cors.allow_credentials ? "*" : origin);
  if (cors.allow_credentials) r->Set("Access-Control-Allow-Credentials", "true");
  if (!cors.expose_headers.empty()) {
    std::string v;
    for (const auto& h : cors.expose_headers) v += (v.empty() ? "" : ",") + h;
    r->Set("Access-Control-Expose-Headers", v);
  }
  if (!any) r->Set("Vary", "Origin");
}

}  // namespace

std::optional<std::string> FunctionUrls::UrlId(const http::Request& req) {
  if (req.path.rfind(kPathPrefix, 0) == 0) {
    std::string rest = req.path.substr(std::string(kPathPrefix).size());
    std::string id = rest.substr(0, rest.find('/'));
    if (!id.empty()) return id;
    return std::nullopt;
  }
  const std::string* host = req.Find("Host");
  if (host == nullptr) return std::nullopt;
  size_t dot = host->find(".lambda-url.");
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  return host->substr(0, dot);
}

void FunctionUrls::Handle(const aws::Call& call, bool signed_request, http::Request&& req,
                          http::Responder respond) {
  std::optional<std::string> id = UrlId(req);
  auto cfg =
      id ? lambda_.ResolveFunctionUrl(*id) : base::Result<FunctionUrlConfig>(base::NotFound("url"));
  if (!cfg.ok()) return respond(JsonMessage(403, kForbidden, "AccessDeniedException"));
  const FunctionUrlConfig& c = cfg.value();
  std::string fn_arn = lambda_.FunctionArn(c.function_name, c.qualifier);
  const std::string* origin_h = req.Find("Origin");
  std::string origin = origin_h ? *origin_h : "";

  // CORS preflight, answered here.
  if (req.method == "OPTIONS" && c.cors && !origin.empty() &&
      req.Find("Access-Control-Request-Method") != nullptr) {
    http::Response r;
    r.status = 200;
    AddCorsHeaders(*c.cors, origin, &r);
    if (OriginAllowed(*c.cors, origin)) {
      std::string methods, headers;
      for (const auto& m : c.cors->allow_methods) methods += (methods.empty() ? "" : ",") + m;
      for (const auto& h : c.cors->allow_headers) headers += (headers.empty() ? "" : ",") + h;
      if (!methods.empty()) r.Set("Access-Control-Allow-Methods", methods);
      if (!headers.empty()) r.Set("Access-Control-Allow-Headers", headers);
      if (c.cors->max_age) r.Set("Access-Control-Max-Age", std::to_string(*c.cors->max_age));
    }
    return respond(std::move(r));
  }

  // Authorization.
  std::optional<auth::Policy> resource_policy;
  if (auto doc = lambda_.GetPolicy(c.function_name, c.qualifier); doc.ok()) {
    auto parsed = auth::ParsePolicy(doc->first, auth::PolicyKind::kResource);
    if (parsed.ok()) resource_policy = std::move(parsed).value();
  }
  auth::AuthzRequest az;
  az.action = "lambda:InvokeFunctionUrl";
  az.resource = fn_arn;
  az.context["lambda:functionurlauthtype"] = {c.auth_type};
  bool allowed = false;
  if (c.auth_type == "NONE") {
    az.principal = nullptr;
    allowed = resource_policy &&
              auth::EvaluateResourcePolicy(*resource_policy, az) == auth::Decision::kAllow;
  } else if (signed_request) {
    allowed = !call.Authorize(az.action, fn_arn, {{"lambda:functionurlauthtype", {"AWS_IAM"}}});
    if (!allowed && resource_policy) {
      az.principal = &call.principal;
      allowed = auth::EvaluateResourcePolicy(*resource_policy, az) == auth::Decision::kAllow;
    }
  }
  if (!allowed) return respond(JsonMessage(403, kForbidden, "AccessDeniedException"));

  // The payload 2.0 event.
  Target target = TargetOf(req, c.url_id);
  auto now = std::chrono::system_clock::now();
  std::string request_id = base::NewUuid();
  json headers = json::object();
  json cookies = json::array();
  std::string content_type, user_agent;
  for (const auto& h : req.headers) {
    std::string name = base::ToLower(h.name);
    if (name == "cookie") {
      for (auto part : base::Split(h.value, ';')) {
        std::string_view v = part;
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        if (!v.empty()) cookies.push_back(std::string(v));
      }
      continue;
    }
    if (name == "authorization" && c.auth_type == "AWS_IAM") continue;
    if (name == "content-type") content_type = h.value;
    if (name == "user-agent") user_agent = h.value;
    if (headers.contains(name)) {
      headers[name] = headers[name].get<std::string>() + "," + h.value;
    } else {
      headers[name] = h.value;
    }
  }
  headers["x-forwarded-for"] = req.remote_ip;
  headers["x-forwarded-proto"] = req.secure ? "https" : "http";
  json query = json::object();
  if (!req.query.empty()) {
    for (auto part : base::Split(req.query, '&')) {
      if (part.empty()) continue;
      size_t eq = part.find('=');
      auto k = base::UriDecode(part.substr(0, eq), true);
      auto v = base::UriDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
      if (!k || !v) continue;
      if (query.contains(*k)) {
        query[*k] = query[*k].get<std::string>() + "," + *v;
      } else {
        query[*k] = *v;
      }
    }
  }
  bool text = IsTextType(content_type);
  json ctx{{"accountId", c.auth_type == "NONE" ? std::string("anonymous") : call.account_id},
           {"apiId", c.url_id},
           {"domainName", target.domain},
           {"domainPrefix", c.url_id},
           {"http",
            {{"method", req.method},
             {"path", target.path},
             {"protocol", "HTTP/1.1"},
             {"sourceIp", req.remote_ip},
             {"userAgent", user_agent}}},
           {"requestId", request_id},
           {"routeKey", "$default"},
           {"stage", "$default"},
           {"time", ClfTime(now)},
           {"timeEpoch",
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()}};
  if (c.auth_type == "AWS_IAM") {
    ctx["authorizer"] = {{"iam",
                          {{"accessKey", call.access_key_id},
                           {"accountId", call.principal.account_id},
                           {"callerId", call.principal.user_id},
                           {"cognitoIdentity", nullptr},
                           {"principalOrgId", nullptr},
                           {"userArn", call.principal.arn},
                           {"userId", call.principal.user_id}}}};
  }
  json event{{"version", "2.0"},
             {"routeKey", "$default"},
             {"rawPath", target.path},
             {"rawQueryString", req.query},
             {"headers", headers},
             {"requestContext", ctx},
             {"isBase64Encoded", !text && !req.body.empty()}};
  if (!cookies.empty()) event["cookies"] = cookies;
  if (!query.empty()) event["queryStringParameters"] = query;
  if (!req.body.empty()) event["body"] = text ? req.body : base::Base64Encode(req.body);

  InvokeRequest ir;
  ir.function_name = c.function_name;
  ir.qualifier = c.qualifier;
  ir.payload = Dump(event);
  ir.request_id = request_id;
  std::optional<UrlCors> cors = c.cors;
  invoker_.Invoke(std::move(ir), [respond = std::move(respond), request_id, cors,
                                  origin](base::Result<InvokeResult> r) {
    http::Response out;
    auto finish = [&](http::Response resp) {
      resp.Set("x-amzn-RequestId", request_id);
      if (cors) AddCorsHeaders(*cors, origin, &resp);
      respond(std::move(resp));
    };
    if (!r.ok()) {
      const base::Status& s = r.status();
      if (s.code() == base::Code::kResourceExhausted)
        return finish(JsonMessage(429, "Rate Exceeded.", "TooManyRequestsException"));
      if (s.code() == base::Code::kNotFound)
        return finish(JsonMessage(403, kForbidden, "AccessDeniedException"));
      if (s.code() == base::Code::kInvalidArgument)
        return finish(JsonMessage(413,
                                  "Request must be smaller than 6291456 bytes for the "
                                  "InvokeFunction operation",
                                  "RequestTooLargeException"));
      return finish(JsonMessage(502, "Internal Server Error"));
    }
    const InvokeResult& res = r.value();
    if (!res.function_error.empty()) return finish(JsonMessage(502, "Internal Server Error"));
    json p = json::parse(res.payload, nullptr, false);
    out.status = 200;
    if (p.is_object() && p.contains("statusCode")) {
      if (p["statusCode"].is_number_integer()) out.status = p["statusCode"].get<int>();
      if (out.status < 100 || out.status > 599)
        return finish(JsonMessage(502, "Internal Server Error"));
      bool has_type = false;
      if (p.contains("headers") && p["headers"].is_object()) {
        for (auto& [k, v] : p["headers"].items()) {
          std::string value = v.is_string() ? v.get<std::string>() : v.dump();
          if (base::ToLower(k) == "content-type") has_type = true;
          out.headers.push_back({k, value});
        }
      }
      if (p.contains("cookies") && p["cookies"].is_array())
        for (const auto& ck : p["cookies"])
          if (ck.is_string()) out.headers.push_back({"Set-Cookie", ck.get<std::string>()});
      if (!has_type) out.Set("Content-Type", "application/json");
      if (p.contains("body")) {
        std::string body = p["body"].is_string() ? p["body"].get<std::string>() : p["body"].dump();
        if (p.value("isBase64Encoded", false)) {
          auto decoded = base::Base64Decode(body);
          if (!decoded) return finish(JsonMessage(502, "Internal Server Error"));
          body = std::move(*decoded);
        }
        out.body = std::move(body);
      }
      return finish(std::move(out));
    }
    out.Set("Content-Type", "application/json");
    if (p.is_string()) {
      out.body = p.get<std::string>();
    } else {
      out.body = res.payload;
    }
    finish(std::move(out));
  });
}

}  // namespace lambda
