#include "aws/json.h"

#include <nlohmann/json.hpp>

#include "aws/protocol.h"
#include "base/strings.h"

namespace aws {

namespace {

Error Serialization(std::string_view what) {
  return MakeError(400, "SerializationException", std::string(what));
}

Outcome<nlohmann::json> ParseObject(std::string_view body) {
  if (base::Trim(body).empty()) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Serialization(
        "Start of structure or map found where not expected, or the body is not valid JSON.");
  if (!j.is_object()) return Serialization("The request body must be a JSON object.");
  return j;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  for (std::string_view s : base::Split(p, '/'))
    if (!s.empty()) out.emplace_back(s);
  return out;
}

}  // namespace

JsonService::JsonService(std::string signing_name, std::string target_prefix,
                         std::string json_version)
    : signing_name_(std::move(signing_name)),
      target_prefix_(std::move(target_prefix)),
      content_type_("application/x-amz-json-" + json_version) {}

JsonService::~JsonService() = default;

void JsonService::Add(JsonOperation op) {
  std::string name = op.name;
  ops_.emplace(std::move(name), std::move(op));
}

void JsonService::Handle(Call& call, http::Request&& request, http::Responder respond) {
  auto fail = [&](const Error& e) { respond(RenderError(Protocol::kJson, e, call.request_id)); };
  const std::string* target = request.Find("X-Amz-Target");
  std::string_view t = target ? std::string_view(*target) : std::string_view();
  size_t dot = t.rfind('.');
  if (target == nullptr || dot == std::string_view::npos || t.substr(0, dot) != target_prefix_)
    return fail(UnknownOperationError(Protocol::kJson, t));
  std::string_view name = t.substr(dot + 1);
  call.operation = std::string(name);
  auto it = ops_.find(name);
  if (it == ops_.end()) return fail(UnknownOperationError(Protocol::kJson, name));
  auto input = ParseObject(request.body);
  if (!input.ok()) return fail(input.error());
  const JsonOperation& op = it->second;
  std::string resource = "*";
  if (op.resource) {
    auto r = op.resource(input.value(), call);
    if (!r.ok()) return fail(r.error());
    resource = std::move(r).value();
  }
  if (auto denied = call.Authorize(op.action, resource)) return fail(*denied);
  auto out = op.handler(input.value(), call);
  if (!out.ok()) return fail(out.error());
  http::Response r;
  r.body = Dump(out.value());
  r.Set("Content-Type", content_type_);
  AddRequestIdHeaders(r, Protocol::kJson, call.request_id);
  respond(std::move(r));
}

Outcome<nlohmann::json> RestRequest::Json() const {
  return ParseObject(http ? std::string_view(http->body) : std::string_view());
}

const std::string* RestRequest::Query(std::string_view name) const {
  auto it = query.find(std::string(name));
  return it == query.end() ? nullptr : &it->second;
}

RestResponse RestResponse::FromJson(const nlohmann::json& j, int status) {
  RestResponse r;
  r.status = status;
  r.body = Dump(j);
  return r;
}

bool MatchRestPath(std::string_view pattern, std::string_view path,
                   std::map<std::string, std::string>* captures) {
  std::vector<std::string> pat = SplitPath(pattern);
  std::vector<std::string> segs = SplitPath(path);
  std::map<std::string, std::string> out;
  size_t i = 0;
  for (; i < pat.size(); ++i) {
    const std::string& p = pat[i];
    bool is_var = p.size() > 2 && p.front() == '{' && p.back() == '}';
    if (is_var && p[p.size() - 2] == '+') {  // greedy: the rest of the path
      if (i >= segs.size()) return false;
      std::string rest;
      for (size_t k = i; k < segs.size(); ++k) rest += (k > i ? "/" : "") + segs[k];
      auto decoded = base::UriDecode(rest);
      if (!decoded) return false;
      out[p.substr(1, p.size() - 3)] = *decoded;
      if (captures) *captures = std::move(out);
      return true;
    }
    if (i >= segs.size()) return false;
    if (is_var) {
      auto decoded = base::UriDecode(segs[i]);
      if (!decoded || decoded->empty()) return false;
      out[p.substr(1, p.size() - 2)] = *decoded;
    } else if (p != segs[i]) {
      return false;
    }
  }
  if (i != segs.size()) return false;
  if (captures) *captures = std::move(out);
  return true;
}

RestJsonService::RestJsonService(std::string signing_name)
    : signing_name_(std::move(signing_name)) {}

void RestJsonService::Add(RestRoute route) {
  Compiled c;
  c.segments = SplitPath(route.pattern);
  c.route = std::move(route);
  routes_.push_back(std::move(c));
}

void RestJsonService::Handle(Call& call, http::Request&& request, http::Responder respond) {
  auto fail = [&](const Error& e) {
    respond(RenderError(Protocol::kRestJson, e, call.request_id));
  };
  auto req = std::make_shared<http::Request>(std::move(request));
  RestRequest rr;
  rr.http = req.get();
  const RestRoute* route = nullptr;
  bool path_matched = false;
  for (const Compiled& c : routes_) {
    std::map<std::string, std::string> captures;
    if (!MatchRestPath(c.route.pattern, req->path, &captures)) continue;
    path_matched = true;
    if (c.route.method != req->method) continue;
    route = &c.route;
    rr.path = std::move(captures);
    break;
  }
  if (route == nullptr) {
    if (path_matched)
      return fail(MakeError(405, "MethodNotAllowedException",
                            "The method " + req->method + " is not allowed for " + req->path));
    return fail(UnknownOperationError(Protocol::kRestJson, req->method + " " + req->path));
  }
  call.operation = route->name;
  auto q = base::ParseQuery(req->query);
  if (!q) return fail(MakeError(400, "InvalidRequestContentException", "Malformed query string."));
  for (auto& [k, v] : *q) rr.query.emplace(std::move(k), std::move(v));
  std::string resource = "*";
  if (route->resource) {
    auto r = route->resource(rr, call);
    if (!r.ok()) return fail(r.error());
    resource = std::move(r).value();
  }
  if (auto denied = call.Authorize(route->action, resource)) return fail(*denied);

  auto deliver = [req, request_id = call.request_id,
                  respond = std::move(respond)](Outcome<RestResponse> out) {
    if (!out.ok()) return respond(RenderError(Protocol::kRestJson, out.error(), request_id));
    RestResponse& rr = out.value();
    http::Response r;
    r.status = rr.status;
    r.headers = std::move(rr.headers);
    r.body = std::move(rr.body);
    if (!rr.content_type.empty()) r.Set("Content-Type", rr.content_type);
    AddRequestIdHeaders(r, Protocol::kRestJson, request_id);
    respond(std::move(r));
  };
  if (route->async_handler) return route->async_handler(std::move(rr), call, std::move(deliver));
  deliver(route->handler(rr, call));
}

}  // namespace aws
