// The AWS JSON protocols: JSON 1.0/1.1 (`X-Amz-Target: Prefix.Operation`, a JSON object
// body — ECS, ECR, Step Functions, Logs, SQS, EventBridge) and REST-JSON (routes by method
// and path, JSON bodies — Lambda). Like QueryService, each operation declares its IAM
// action and resource, and the table authorizes before the handler runs.
//
// nlohmann::json appears here only as a forward declaration; services include
// <nlohmann/json.hpp> in their own api.cpp.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "aws/error.h"
#include "aws/service.h"

namespace aws {

// ---- JSON 1.0 / 1.1 ----

struct JsonOperation {
  std::string name;    // "StartExecution"
  std::string action;  // "states:StartExecution"
  // Resource ARN from the decoded input; empty function = "*".
  std::function<Outcome<std::string>(const nlohmann::json& input, const Call&)> resource;
  // Returns the output object (serialized as the response body).
  std::function<Outcome<nlohmann::json>(const nlohmann::json& input, Call&)> handler;
};

class JsonService : public Service {
 public:
  // `target_prefix` e.g. "AWSStepFunctions"; `json_version` "1.0" or "1.1".
  JsonService(std::string signing_name, std::string target_prefix, std::string json_version);
  ~JsonService() override;

  void Add(JsonOperation op);

  std::string_view signing_name() const override { return signing_name_; }
  Protocol protocol() const override { return Protocol::kJson; }
  void Handle(Call& call, http::Request&& request, http::Responder respond) override;

 private:
  std::string signing_name_, target_prefix_, content_type_;
  std::map<std::string, JsonOperation, std::less<>> ops_;
};

// ---- REST-JSON ----

struct RestRequest {
  const http::Request* http = nullptr;
  std::map<std::string, std::string> path;  // {Name} captures, percent-decoded
  std::multimap<std::string, std::string> query;
  // The body parsed as JSON; Error 400 SerializationException when it is not JSON
  // (an empty body parses as an empty object).
  Outcome<nlohmann::json> Json() const;
  const std::string* Query(std::string_view name) const;
};

struct RestResponse {
  int status = 200;
  std::vector<http::Header> headers;
  std::string body;  // serialized JSON, or raw bytes (e.g. an invoke payload)
  std::string content_type = "application/json";
  // A response whose body is `j` serialized.
  static RestResponse FromJson(const nlohmann::json& j, int status = 200);
};

struct RestRoute {
  std::string method;   // "GET"
  std::string pattern;  // "/2015-03-31/functions/{FunctionName}/invocations"; {Key+} is greedy
  std::string name;     // operation name for metrics ("Invoke")
  std::string action;   // "lambda:InvokeFunction"
  std::function<Outcome<std::string>(const RestRequest&, const Call&)> resource;
  // Synchronous handlers return the response; asynchronous ones use `async_handler`.
  std::function<Outcome<RestResponse>(const RestRequest&, Call&)> handler;
  // Optional: answers later (the invoke path). Called instead of `handler` when set.
  std::function<void(RestRequest, Call&, std::function<void(Outcome<RestResponse>)>)> async_handler;
};

class RestJsonService : public Service {
 public:
  explicit RestJsonService(std::string signing_name);
  void Add(RestRoute route);

  std::string_view signing_name() const override { return signing_name_; }
  Protocol protocol() const override { return Protocol::kRestJson; }
  void Handle(Call& call, http::Request&& request, http::Responder respond) override;

 private:
  struct Compiled {
    RestRoute route;
    std::vector<std::string> segments;  // literal, "{Name}" or "{Name+}"
  };
  std::string signing_name_;
  std::vector<Compiled> routes_;
};

// Matches `path` (raw, percent-encoded) against `pattern`; fills decoded captures.
bool MatchRestPath(std::string_view pattern, std::string_view path,
                   std::map<std::string, std::string>* captures);

}  // namespace aws
