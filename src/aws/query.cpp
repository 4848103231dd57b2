#include "aws/query.h"

#include "aws/protocol.h"
#include "aws/xml.h"
#include "base/strings.h"

namespace aws {

namespace {
std::string LowerFirst(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'A' && out[0] <= 'Z') out[0] = static_cast<char>(out[0] + 32);
  return out;
}
}  // namespace

Outcome<QueryParams> QueryParams::FromRequest(const http::Request& request) {
  std::map<std::string, std::string> values;
  auto add = [&](std::string_view text) -> bool {
    auto parsed = base::ParseQuery(text);
    if (!parsed) return false;
    for (auto& [k, v] : *parsed) values[std::move(k)] = std::move(v);
    return true;
  };
  if (!add(request.query))
    return MakeError(400, "MalformedQueryString", "The query string is malformed.");
  const std::string* ct = request.Find("Content-Type");
  if (request.method == "POST" && !request.body.empty() &&
      (ct == nullptr || base::ToLower(*ct).find("application/x-www-form-urlencoded") == 0)) {
    if (!add(request.body))
      return MakeError(400, "MalformedQueryString", "The request body is malformed.");
  }
  return QueryParams(std::move(values));
}

const std::string* QueryParams::Find(std::string_view name) const {
  auto it = values_.find(std::string(name));
  return it == values_.end() ? nullptr : &it->second;
}

std::string QueryParams::Get(std::string_view name, std::string_view fallback) const {
  const std::string* v = Find(name);
  return v ? *v : std::string(fallback);
}

std::vector<std::string> QueryParams::List(std::string_view name) const {
  std::vector<std::string> out;
  for (int i = 1;; ++i) {
    const std::string* v = Find(std::string(name) + ".member." + std::to_string(i));
    if (v == nullptr) break;
    out.push_back(*v);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> QueryParams::KeyValueList(
    std::string_view name, std::string_view key_field, std::string_view value_field) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 1;; ++i) {
    std::string base = std::string(name) + ".member." + std::to_string(i) + ".";
    const std::string* k = Find(base + std::string(key_field));
    if (k == nullptr) break;
    out.emplace_back(*k, Get(base + std::string(value_field)));
  }
  return out;
}

Outcome<std::string> QueryParams::Required(std::string_view name) const {
  const std::string* v = Find(name);
  if (v == nullptr)
    return MakeError(400, "ValidationError",
                     "1 validation error detected: Value null at '" + LowerFirst(name) +
                         "' failed to satisfy constraint: Member must not be null");
  return *v;
}

QueryService::QueryService(std::string signing_name, std::string xmlns, std::string version)
    : signing_name_(std::move(signing_name)),
      xmlns_(std::move(xmlns)),
      version_(std::move(version)) {}

void QueryService::Add(QueryOperation op) {
  std::string name = op.name;
  ops_.emplace(std::move(name), std::move(op));
}

http::Response QueryService::Respond(const Call& call, std::string_view op,
                                     std::string_view result_xml) const {
  XmlWriter w;
  std::string response_tag = std::string(op) + "Response";
  w.Open(response_tag, xmlns_);
  if (!result_xml.empty()) {
    w.Open(std::string(op) + "Result").Raw(result_xml).Close();
  }
  w.Open("ResponseMetadata").Element("RequestId", call.request_id).Close();
  http::Response r;
  r.status = 200;
  r.body = w.Finish();
  r.Set("Content-Type", "text/xml");
  AddRequestIdHeaders(r, Protocol::kQuery, call.request_id);
  return r;
}

void QueryService::Handle(Call& call, http::Request&& request, http::Responder respond) {
  auto fail = [&](const Error& e) {
    respond(RenderError(Protocol::kQuery, e, call.request_id, xmlns_));
  };
  auto params = QueryParams::FromRequest(request);
  if (!params.ok()) return fail(params.error());
  const std::string* action = params.value().Find("Action");
  if (action == nullptr || action->empty())
    return fail(MakeError(400, "MissingAction", "Missing Action"));
  call.operation = *action;
  auto it = ops_.find(*action);
  if (it == ops_.end())
    return fail(MakeError(400, "InvalidAction",
                          "Could not find operation " + *action + " for version " + version_));
  const QueryOperation& op = it->second;
  std::string resource = "*";
  if (op.resource) {
    auto r = op.resource(params.value(), call);
    if (!r.ok()) return fail(r.error());
    resource = std::move(r).value();
  }
  if (auto denied = call.Authorize(op.action, resource)) return fail(*denied);
  auto result = op.handler(params.value(), call);
  if (!result.ok()) return fail(result.error());
  respond(Respond(call, op.name, result.value()));
}

}  // namespace aws
