#include "services/lambda/api.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "aws/json.h"
#include "base/strings.h"
#include "services/lambda/async_queue.h"

namespace lambda {

namespace {

using aws::Call;
using aws::Outcome;
using aws::RestRequest;
using aws::RestResponse;
using nlohmann::json;

aws::Error ToError(const Lambda& lambda, const base::Status& s, const std::string& name = "") {
  switch (s.code()) {
    case base::Code::kInvalidArgument:
      return aws::MakeError(400, "InvalidParameterValueException", s.message());
    case base::Code::kNotFound:
      return aws::MakeError(404, "ResourceNotFoundException", s.message());
    case base::Code::kAlreadyExists:
      return aws::MakeError(409, "ResourceConflictException", s.message());
    case base::Code::kFailedPrecondition:
      return aws::MakeError(412, "PreconditionFailedException", s.message());
    case base::Code::kResourceExhausted:
      return aws::MakeError(413, "RequestEntityTooLargeException", s.message());
    case base::Code::kAborted:
      return aws::MakeError(409, "ResourceConflictException",
                            "The operation cannot be performed at this time. An update is in "
                            "progress for resource: " +
                                lambda.FunctionArn(name));
    default:
      return aws::MakeError(500, "ServiceException",
                            "An error occurred and the request cannot be processed.");
  }
}

// Collects constraint violations into AWS's "N validation error(s) detected: ..." message.
class Violations {
 public:
  void Add(const std::string& value_repr, const std::string& field, const std::string& rule) {
    items_.push_back("Value " + value_repr + " at '" + field +
                     "' failed to satisfy constraint: " + rule);
  }
  void Add(const std::string& value, const std::string& field, const std::string& rule,
           bool quote) {
    Add(quote ? "'" + value + "'" : value, field, rule);
  }
  bool empty() const { return items_.empty(); }
  aws::Error ToError() const {
    std::string m =
        std::to_string(items_.size()) +
        (items_.size() == 1 ? " validation error detected: " : " validation errors detected: ");
    for (size_t i = 0; i < items_.size(); ++i) m += (i ? "; " : "") + items_[i];
    return aws::MakeError(400, "ValidationException", m);
  }

 private:
  std::vector<std::string> items_;
};

aws::Error Validation(const std::string& value, const std::string& field, const std::string& rule) {
  Violations v;
  v.Add(value, field, rule, true);
  return v.ToError();
}

aws::Error InvalidParameter(const std::string& message) {
  return aws::MakeError(400, "InvalidParameterValueException", message);
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}
bool AllNameChars(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!IsNameChar(c)) return false;
  return true;
}
bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

constexpr char kFunctionNamePattern[] =
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?"
    "([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";
constexpr char kRolePattern[] = "arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+";
constexpr char kQualifierPattern[] = "(|[a-zA-Z0-9$_-]+)";
constexpr char kAliasPattern[] = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)";
constexpr char kVersionPattern[] = "(\\$LATEST|[0-9]+)";

struct FunctionRef {
  std::string name;
  std::string qualifier;  // from the ARN, or the Qualifier parameter
};

// Accepts a name, "name:qualifier", "ACCOUNT:function:name[:q]" or a full ARN.
Outcome<FunctionRef> ParseFunctionRef(const Lambda& lambda, const std::string& in,
                                      const std::string* qualifier_param) {
  if (in.size() > 140)
    return Validation(in, "functionName", "Member must have length less than or equal to 140");
  std::vector<std::string_view> parts = base::Split(in, ':');
  FunctionRef ref;
  std::string_view qual;
  bool ok = true;
  std::string region;
  switch (parts.size()) {
    case 1:
      ref.name = parts[0];
      break;
    case 2:
      ref.name = parts[0];
      qual = parts[1];
      break;
    case 3:
    case 4:
      ok = AllDigits(parts[0]) && parts[0].size() == 12 && parts[1] == "function";
      ref.name = parts[2];
      if (parts.size() == 4) qual = parts[3];
      break;
    case 7:
    case 8:
      ok = parts[0] == "arn" && parts[1].substr(0, 3) == "aws" && parts[2] == "lambda" &&
           AllDigits(parts[4]) && parts[4].size() == 12 && parts[5] == "function";
      region = parts[3];
      ref.name = parts[6];
      if (parts.size() == 8) qual = parts[7];
      break;
    default:
      ok = false;
  }
  bool qual_ok = qual.empty() || qual == "$LATEST" || AllNameChars(qual);
  if (!ok || !AllNameChars(ref.name) || (parts.size() % 2 == 0 && qual.empty()) || !qual_ok)
    return Validation(
        in, "functionName",
        std::string("Member must satisfy regular expression pattern: ") + kFunctionNamePattern);
  if (ref.name.size() > 64)
    return Validation(in, "functionName", "Member must have length less than or equal to 64");
  if (!region.empty() && region != lambda.options().region)
    return aws::MakeError(404, "ResourceNotFoundException",
                          "Functions from '" + region + "' are not reachable in this region ('" +
                              lambda.options().region + "')");
  ref.qualifier = std::string(qual);
  if (qualifier_param) {
    const std::string& q = *qualifier_param;
    bool valid = !q.empty() && q.size() <= 128;
    for (char c : q) valid = valid && (IsNameChar(c) || c == '$');
    if (!valid)
      return Validation(
          q, "qualifier",
          std::string("Member must satisfy regular expression pattern: ") + kQualifierPattern);
    if (!ref.qualifier.empty() && ref.qualifier != q)
      return InvalidParameter(
          "The derived qualifier from the function name does not match the specified "
          "qualifier.");
    ref.qualifier = q;
  }
  return ref;
}

Outcome<FunctionRef> RefOf(const Lambda& lambda, const RestRequest& req, bool qualifier_param) {
  auto it = req.path.find("FunctionName");
  std::string name = it == req.path.end() ? "" : it->second;
  return ParseFunctionRef(lambda, name, qualifier_param ? req.Query("Qualifier") : nullptr);
}

// As RefOf, for operations on the function itself (no qualifier allowed).
Outcome<FunctionRef> UnqualifiedRef(const Lambda& lambda, const RestRequest& req) {
  auto ref = RefOf(lambda, req, false);
  if (!ref.ok()) return ref;
  if (!ref.value().qualifier.empty())
    return InvalidParameter(
        "This operation is permitted on Lambda functions only. Aliases and versions do not "
        "support this operation. Please specify either a function name or an unqualified "
        "function ARN.");
  return ref;
}

// ---- JSON field readers: a wrong JSON type is an InvalidParameterValue ----

std::optional<aws::Error> TypeError(const std::string& field, const char* want) {
  return InvalidParameter("Could not parse request body into json: field '" + field + "' must be " +
                          want);
}

std::optional<aws::Error> ReadString(const json& j, const char* key,
                                     std::optional<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return TypeError(key, "a string");
  *out = it->get<std::string>();
  return std::nullopt;
}

std::optional<aws::Error> ReadInt(const json& j, const char* key, std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) return TypeError(key, "an integer");
  *out = it->get<int64_t>();
  return std::nullopt;
}

std::optional<aws::Error> ReadBool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return TypeError(key, "a boolean");
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<aws::Error> ReadStringMap(const json& j, const char* key,
                                        std::optional<std::map<std::string, std::string>>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return TypeError(key, "an object");
  std::map<std::string, std::string> m;
  for (auto& [k, v] : it->items()) {
    if (!v.is_string()) return TypeError(std::string(key) + "." + k, "a string");
    m[k] = v.get<std::string>();
  }
  *out = std::move(m);
  return std::nullopt;
}

#define LAMBDA_TRY_READ(expr)         \
  do {                                \
    if (auto _e = (expr)) return *_e; \
  } while (0)

void CheckRange(Violations* v, const std::optional<int64_t>& value, const char* field, int64_t lo,
                int64_t hi) {
  if (!value) return;
  if (*value < lo)
    v->Add(std::to_string(*value), field,
           "Member must have value greater than or equal to " + std::to_string(lo), true);
  else if (*value > hi)
    v->Add(std::to_string(*value), field,
           "Member must have value less than or equal to " + std::to_string(hi), true);
}

const std::set<std::string>& ReservedEnvKeys() {
  static const std::set<std::string> kKeys = {"_HANDLER",
                                              "_X_AMZN_TRACE_ID",
                                              "AWS_DEFAULT_REGION",
                                              "AWS_REGION",
                                              "AWS_EXECUTION_ENV",
                                              "AWS_LAMBDA_FUNCTION_NAME",
                                              "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                                              "AWS_LAMBDA_FUNCTION_VERSION",
                                              "AWS_LAMBDA_INITIALIZATION_TYPE",
                                              "AWS_LAMBDA_LOG_GROUP_NAME",
                                              "AWS_LAMBDA_LOG_STREAM_NAME",
                                              "AWS_ACCESS_KEY",
                                              "AWS_ACCESS_KEY_ID",
                                              "AWS_SECRET_ACCESS_KEY",
                                              "AWS_SESSION_TOKEN",
                                              "AWS_LAMBDA_RUNTIME_API",
                                              "LAMBDA_TASK_ROOT",
                                              "LAMBDA_RUNTIME_DIR"};
  return kKeys;
}

// Decodes the settings shared by CreateFunction and UpdateFunctionConfiguration.
std::optional<aws::Error> ReadSettings(const json& body, FunctionSettings* s) {
  LAMBDA_TRY_READ(ReadString(body, "Runtime", &s->runtime));
  LAMBDA_TRY_READ(ReadString(body, "Role", &s->role));
  LAMBDA_TRY_READ(ReadString(body, "Handler", &s->handler));
  LAMBDA_TRY_READ(ReadString(body, "Description", &s->description));
  std::optional<int64_t> timeout, memory, storage;
  LAMBDA_TRY_READ(ReadInt(body, "Timeout", &timeout));
  LAMBDA_TRY_READ(ReadInt(body, "MemorySize", &memory));
  if (auto it = body.find("EphemeralStorage"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("EphemeralStorage", "an object");
    LAMBDA_TRY_READ(ReadInt(*it, "Size", &storage));
    if (!storage) return Validation("null", "ephemeralStorage.size", "Member must not be null");
  }
  if (auto it = body.find("Environment"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("Environment", "an object");
    std::optional<std::map<std::string, std::string>> vars;
    LAMBDA_TRY_READ(ReadStringMap(*it, "Variables", &vars));
    s->environment = vars.value_or(std::map<std::string, std::string>{});
  }
  if (auto it = body.find("ImageConfig"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("ImageConfig", "an object");
    ImageOverrides o;
    auto list = [&](const char* key,
                    std::optional<std::vector<std::string>>* out) -> std::optional<aws::Error> {
      auto f = it->find(key);
      if (f == it->end() || f->is_null()) return std::nullopt;
      if (!f->is_array()) return TypeError(std::string("ImageConfig.") + key, "a list");
      std::vector<std::string> v;
      for (const auto& e : *f) {
        if (!e.is_string())
          return TypeError(std::string("ImageConfig.") + key, "a list of strings");
        v.push_back(e.get<std::string>());
      }
      *out = std::move(v);
      return std::nullopt;
    };
    LAMBDA_TRY_READ(list("EntryPoint", &o.entry_point));
    LAMBDA_TRY_READ(list("Command", &o.command));
    LAMBDA_TRY_READ(ReadString(*it, "WorkingDirectory", &o.working_directory));
    if (o.working_directory && !o.working_directory->empty() && (*o.working_directory)[0] != '/')
      return InvalidParameter("ImageConfig.WorkingDirectory must be an absolute path.");
    s->image_config = std::move(o);
  }
  if (auto it = body.find("DeadLetterConfig"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("DeadLetterConfig", "an object");
    std::optional<std::string> arn;
    LAMBDA_TRY_READ(ReadString(*it, "TargetArn", &arn));
    s->dead_letter_arn = arn.value_or("");
  }
  if (auto it = body.find("Layers"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return TypeError("Layers", "a list");
    std::vector<std::string> arns;
    for (const auto& a : *it) {
      if (!a.is_string()) return TypeError("Layers", "a list of strings");
      arns.push_back(a.get<std::string>());
    }
    s->layers = std::move(arns);
  }
  if (auto it = body.find("Architectures"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) return TypeError("Architectures", "a list");
    std::string repr = "[";
    bool all_x86 = true;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& a = (*it)[i];
      std::string v = a.is_string() ? a.get<std::string>() : a.dump();
      repr += (i ? ", " : "") + v;
      all_x86 = all_x86 && v == "x86_64";
    }
    repr += "]";
    if (it->size() > 1)
      return Validation(repr, "architectures", "Member must have length less than or equal to 1");
    if (!all_x86) {
      for (const auto& a : *it)
        if (!a.is_string() || (a != "x86_64" && a != "arm64"))
          return Validation(repr, "architectures",
                            "Member must satisfy constraint: [Member must satisfy enum value set: "
                            "[x86_64, arm64], Member must not be null]");
      return InvalidParameter("Stratus runs functions on x86_64 only; arm64 is not available.");
    }
  }
  Violations v;
  CheckRange(&v, timeout, "timeout", 1, 900);
  CheckRange(&v, memory, "memorySize", 128, 10240);
  CheckRange(&v, storage, "ephemeralStorage.size", 512, 10240);
  if (s->role) {
    const std::string& r = *s->role;
    bool ok = false;
    // arn:aws[...]:iam::<12 digits>:role/<path and name>
    auto parts = base::Split(r, ':');
    if (parts.size() == 6 && parts[0] == "arn" && parts[1].substr(0, 3) == "aws" &&
        parts[2] == "iam" && parts[3].empty() && parts[4].size() == 12 && AllDigits(parts[4]) &&
        parts[5].substr(0, 5) == "role/" && parts[5].size() > 5) {
      ok = true;
      for (char c : parts[5].substr(5))
        ok = ok && (IsNameChar(c) || std::string_view("+=,.@/").find(c) != std::string_view::npos);
    }
    if (!ok)
      v.Add(r, "role",
            std::string("Member must satisfy regular expression pattern: ") + kRolePattern, true);
  }
  if (s->handler) {
    const std::string& h = *s->handler;
    bool ok = !h.empty();
    for (char c : h) ok = ok && !std::isspace(static_cast<unsigned char>(c));
    if (h.size() > 128)
      v.Add(h, "handler", "Member must have length less than or equal to 128", true);
    else if (!ok)
      v.Add(h, "handler", "Member must satisfy regular expression pattern: [^\\s]+", true);
  }
  if (s->description && s->description->size() > 256)
    v.Add(*s->description, "description", "Member must have length less than or equal to 256",
          true);
  if (!v.empty()) return v.ToError();
  if (s->runtime) {
    const auto& rts = SupportedRuntimes();
    if (std::find(rts.begin(), rts.end(), *s->runtime) == rts.end()) {
      std::string list;
      for (const auto& r : rts) list += (list.empty() ? "" : ", ") + r;
      return InvalidParameter("Value " + *s->runtime +
                              " at 'runtime' failed to satisfy constraint: Member must satisfy "
                              "enum value set: [" +
                              list + "] or be a valid ARN");
    }
  }
  if (s->environment) {
    std::string reserved;
    for (const auto& [k, val] : *s->environment) {
      (void)val;
      if (ReservedEnvKeys().count(k)) reserved += (reserved.empty() ? "" : ", ") + k;
    }
    if (!reserved.empty())
      return InvalidParameter(
          "Lambda was unable to configure your environment variables because the environment "
          "variables you have provided contains reserved keys that are currently not supported "
          "for modification. Reserved keys used in this request: " +
          reserved);
  }
  if (timeout) s->timeout = static_cast<int>(*timeout);
  if (memory) s->memory_size = static_cast<int>(*memory);
  if (storage) s->ephemeral_storage = static_cast<int>(*storage);
  return std::nullopt;
}

// Decodes {"ZipFile": base64} (as boto3 and the CLI send it), or fetches
// {"S3Bucket", "S3Key", "S3ObjectVersion"} with `fetch` as the caller.
Outcome<std::string> ReadZip(const json& code_obj, const S3CodeFetcher& fetch,
                             const aws::Call& call) {
  if (!code_obj.is_object()) return TypeError("Code", "an object").value();
  if (code_obj.contains("ImageUri"))
    return InvalidParameter("Container image functions are not supported yet by this server.");
  if (code_obj.contains("S3Bucket") || code_obj.contains("S3Key")) {
    auto str = [&](const char* k) {
      auto it = code_obj.find(k);
      return it != code_obj.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    std::string bucket = str("S3Bucket"), key = str("S3Key"), version = str("S3ObjectVersion");
    if (bucket.empty() || key.empty())
      return InvalidParameter("Please provide a source for function code.");
    if (code_obj.contains("ZipFile"))
      return InvalidParameter(
          "Please do not provide other FunctionCode parameters when providing a ZipFile.");
    if (!fetch) return InvalidParameter("Code from S3 is not available on this server.");
    auto bytes = fetch(call, bucket, key, version);
    if (!bytes.ok()) {
      std::string m = bytes.status().message(), code = "InternalError";
      size_t colon = m.find(": ");
      if (colon != std::string::npos && colon < 40) {
        code = m.substr(0, colon);
        m = m.substr(colon + 2);
      }
      if (code == "AccessDenied")
        return InvalidParameter(
            "Your access has been denied by S3, please make sure your request credentials have "
            "permission to GetObject for " + bucket + "/" + key +
            ". S3 Error Code: AccessDenied. S3 Error Message: Access Denied");
      if (code == "EntityTooLarge")
        return aws::MakeError(400, "RequestEntityTooLargeException", m);
      return InvalidParameter("Error occurred while GetObject. S3 Error Code: " + code +
                              ". S3 Error Message: " + m);
    }
    return std::move(bytes).value();
  }
  auto it = code_obj.find("ZipFile");
  if (it == code_obj.end() || !it->is_string())
    return InvalidParameter("Please provide a source for function code.");
  auto bytes = base::Base64Decode(it->get<std::string>());
  if (!bytes)
    return InvalidParameter(
        "Could not unzip uploaded file. Please check your file, then try to upload again.");
  return std::move(*bytes);
}

std::optional<aws::Error> ReadTags(const json& body, std::map<std::string, std::string>* out) {
  std::optional<std::map<std::string, std::string>> tags;
  LAMBDA_TRY_READ(ReadStringMap(body, "Tags", &tags));
  if (!tags) return std::nullopt;
  if (tags->size() > 50) return InvalidParameter("Number of tags exceeds resource tag limit.");
  for (const auto& [k, v] : *tags) {
    if (k.empty() || k.size() > 128)
      return Validation(k, "tags", "Member must have length less than or equal to 128");
    if (v.size() > 256)
      return Validation(v, "tags", "Member must have length less than or equal to 256");
  }
  *out = std::move(*tags);
  return std::nullopt;
}

Outcome<int> ReadMaxItems(const RestRequest& req, int def = 50) {
  const std::string* m = req.Query("MaxItems");
  if (!m) return def;
  if (!AllDigits(*m) || m->size() > 9)
    return Validation(*m, "maxItems", "Member must have value greater than or equal to 1");
  int n = std::stoi(*m);
  if (n < 1) return Validation(*m, "maxItems", "Member must have value greater than or equal to 1");
  if (n > 10000)
    return Validation(*m, "maxItems", "Member must have value less than or equal to 10000");
  return n;
}

std::string QueryOr(const RestRequest& req, const char* name) {
  const std::string* v = req.Query(name);
  return v ? *v : "";
}

// ---- responses ----

json ConfigJson(const Lambda& lambda, const FunctionConfig& c) {
  json j = {
      {"FunctionName", c.name},
      {"FunctionArn", lambda.FunctionArn(c.name, c.version == kLatest ? "" : c.version)},
      {"Runtime", c.runtime},
      {"Role", c.role},
      {"Handler", c.handler},
      {"CodeSize", c.code_size},
      {"Description", c.description},
      {"Timeout", c.timeout},
      {"MemorySize", c.memory_size},
      {"LastModified", c.last_modified},
      {"CodeSha256", c.code_sha256},
      {"Version", c.version},
      {"TracingConfig", {{"Mode", "PassThrough"}}},
      {"RevisionId", c.revision_id},
      {"PackageType", c.package_type},
      {"Architectures", json::array({"x86_64"})},
      {"EphemeralStorage", {{"Size", c.ephemeral_storage}}},
      {"SnapStart", {{"ApplyOn", "None"}, {"OptimizationStatus", "Off"}}},
      {"LoggingConfig", {{"LogFormat", "Text"}, {"LogGroup", "/aws/lambda/" + c.name}}},
  };
  if (!c.environment.empty()) j["Environment"] = {{"Variables", c.environment}};
  if (c.package_type == "Image") {
    // AWS omits Runtime and Handler for images, and reports the ImageConfig overrides.
    j.erase("Runtime");
    j.erase("Handler");
    if (!c.image_config.empty()) {
      json ic = json::object();
      if (c.image_config.entry_point) ic["EntryPoint"] = *c.image_config.entry_point;
      if (c.image_config.command) ic["Command"] = *c.image_config.command;
      if (c.image_config.working_directory)
        ic["WorkingDirectory"] = *c.image_config.working_directory;
      j["ImageConfigResponse"] = {{"ImageConfig", ic}};
    }
  }
  if (!c.dead_letter_arn.empty()) j["DeadLetterConfig"] = {{"TargetArn", c.dead_letter_arn}};
  if (!c.layers.empty()) {
    json layers = json::array();
    for (const auto& l : c.layers) layers.push_back({{"Arn", l.arn}, {"CodeSize", l.size}});
    j["Layers"] = std::move(layers);
  }
  auto set = [&j](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  set("State", c.state);
  set("StateReason", c.state_reason);
  set("StateReasonCode", c.state_reason_code);
  set("LastUpdateStatus", c.last_update_status);
  set("LastUpdateStatusReason", c.last_update_status_reason);
  set("LastUpdateStatusReasonCode", c.last_update_status_reason_code);
  return j;
}

json AliasJson(const Lambda& lambda, const std::string& fn, const Alias& a) {
  json j = {{"AliasArn", lambda.FunctionArn(fn, a.name)},
            {"Name", a.name},
            {"FunctionVersion", a.function_version},
            {"Description", a.description},
            {"RevisionId", a.revision_id}};
  if (!a.additional_weights.empty())
    j["RoutingConfig"] = {{"AdditionalVersionWeights", a.additional_weights}};
  return j;
}

RestResponse NoContent() {
  RestResponse r;
  r.status = 204;
  return r;
}

// Reads {"RoutingConfig":{"AdditionalVersionWeights":{"1":0.5}}}.
std::optional<aws::Error> ReadRouting(const json& body,
                                      std::optional<std::map<std::string, double>>* out) {
  auto it = body.find("RoutingConfig");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) return TypeError("RoutingConfig", "an object");
  std::map<std::string, double> m;
  auto w = it->find("AdditionalVersionWeights");
  if (w != it->end() && !w->is_null()) {
    if (!w->is_object()) return TypeError("RoutingConfig.AdditionalVersionWeights", "an object");
    for (auto& [k, v] : w->items()) {
      if (!v.is_number()) return TypeError("AdditionalVersionWeights." + k, "a number");
      double d = v.get<double>();
      if (!AllDigits(k))
        return Validation("{" + k + "=" + v.dump() + "}", "routingConfig.additionalVersionWeights",
                          "Map keys must satisfy constraint: [Member must have length less than "
                          "or equal to 1024, Member must have length greater than or equal to 1, "
                          "Member must satisfy regular expression pattern: [0-9]+]");
      if (d < 0.0 || d > 1.0)
        return Validation("{" + k + "=" + v.dump() + "}", "routingConfig.additionalVersionWeights",
                          "Map value must satisfy constraint: [Member must have value less than "
                          "or equal to 1.0, Member must have value greater than or equal to 0.0, "
                          "Member must not be null]");
      m[k] = d;
    }
    if (m.size() > 1)
      return InvalidParameter(
          "Number of items in AdditionalVersionWeights cannot be greater than 1");
  }
  *out = std::move(m);
  return std::nullopt;
}

std::optional<aws::Error> CheckAliasName(const std::string& name) {
  if (name.empty() || name.size() > 128 || !AllNameChars(name) || AllDigits(name))
    return Validation(
        name, "name",
        std::string("Member must satisfy regular expression pattern: ") + kAliasPattern);
  return std::nullopt;
}

std::optional<aws::Error> CheckVersionValue(const std::string& v) {
  if (v != kLatest && !AllDigits(v))
    return Validation(
        v, "functionVersion",
        std::string("Member must satisfy regular expression pattern: ") + kVersionPattern);
  return std::nullopt;
}

#define LAMBDA_REF(var, expr)                  \
  auto var##_or = (expr);                      \
  if (!var##_or.ok()) return var##_or.error(); \
  const FunctionRef var = var##_or.value()

#define LAMBDA_BODY(var, req)                  \
  auto var##_or = (req).Json();                \
  if (!var##_or.ok()) return var##_or.error(); \
  const json& var = var##_or.value();          \
  if (!var.is_object()) return InvalidParameter("The request body must be a JSON object.")

class Routes {
 public:
  Routes(Lambda& lambda, Invoker* invoker, AsyncQueue* async, std::string url_host,
         EventSourceMappings* esm, S3CodeFetcher fetch_code)
      : l_(lambda),
        invoker_(invoker),
        async_(async),
        url_host_(std::move(url_host)),
        esm_(esm),
        fetch_code_(std::move(fetch_code)) {}

  // `self` is this object; every handler holds it so the routes live as long as the service.
  std::unique_ptr<aws::Service> Build(const std::shared_ptr<Routes>& self) {
    auto svc = std::make_unique<aws::RestJsonService>("lambda");
    const std::string fn = "/2015-03-31/functions/{FunctionName}";
    auto add = [&](const char* method, std::string pattern, const char* name,
                   std::function<Outcome<std::string>(const RestRequest&, const Call&)> resource,
                   Outcome<RestResponse> (Routes::*handler)(const RestRequest&, Call&)) {
      aws::RestRoute r;
      r.method = method;
      r.pattern = std::move(pattern);
      r.name = name;
      r.action = std::string("lambda:") + name;
      r.resource = std::move(resource);
      r.handler = [self, handler](const RestRequest& req, Call& call) {
        return ((*self).*handler)(req, call);
      };
      svc->Add(std::move(r));
    };
    auto star = [](const RestRequest&, const Call&) -> Outcome<std::string> {
      return std::string("*");
    };
    // The function ARN, qualified by the path ARN or ?Qualifier= where the operation takes one.
    auto qualified = [&l_ = l_](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto ref = RefOf(l_, req, true);
      if (!ref.ok()) return ref.error();
      return l_.FunctionArn(ref.value().name, ref.value().qualifier);
    };
    auto unqualified = [&l_ = l_](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto ref = RefOf(l_, req, false);
      if (!ref.ok()) return ref.error();
      return l_.FunctionArn(ref.value().name, ref.value().qualifier);
    };
    auto alias_arn = [&l_ = l_](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto ref = RefOf(l_, req, false);
      if (!ref.ok()) return ref.error();
      auto it = req.path.find("Name");
      return l_.FunctionArn(ref.value().name, it == req.path.end() ? "" : it->second);
    };
    auto create_arn = [&l_ = l_](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto body = req.Json();
      if (!body.ok()) return body.error();
      const json& j = body.value();
      if (j.is_object()) {
        auto it = j.find("FunctionName");
        if (it != j.end() && it->is_string()) {
          auto ref = ParseFunctionRef(l_, it->get<std::string>(), nullptr);
          if (ref.ok()) return l_.FunctionArn(ref.value().name);
        }
      }
      return std::string("*");
    };
    auto tag_arn = [](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto it = req.path.find("ARN");
      return it == req.path.end() ? std::string("*") : it->second;
    };

    add("POST", "/2015-03-31/functions", "CreateFunction", create_arn, &Routes::CreateFunction);
    add("POST", "/2015-03-31/functions/", "CreateFunction", create_arn, &Routes::CreateFunction);
    add("GET", "/2015-03-31/functions", "ListFunctions", star, &Routes::ListFunctions);
    add("GET", "/2015-03-31/functions/", "ListFunctions", star, &Routes::ListFunctions);
    add("GET", fn, "GetFunction", qualified, &Routes::GetFunction);
    add("DELETE", fn, "DeleteFunction", qualified, &Routes::DeleteFunction);
    add("GET", fn + "/configuration", "GetFunctionConfiguration", qualified,
        &Routes::GetFunctionConfiguration);
    add("PUT", fn + "/configuration", "UpdateFunctionConfiguration", unqualified,
        &Routes::UpdateFunctionConfiguration);
    add("PUT", fn + "/code", "UpdateFunctionCode", unqualified, &Routes::UpdateFunctionCode);
    add("POST", fn + "/versions", "PublishVersion", unqualified, &Routes::PublishVersion);
    add("GET", fn + "/versions", "ListVersionsByFunction", unqualified,
        &Routes::ListVersionsByFunction);
    add("POST", fn + "/aliases", "CreateAlias", unqualified, &Routes::CreateAlias);
    add("GET", fn + "/aliases", "ListAliases", unqualified, &Routes::ListAliases);
    add("GET", fn + "/aliases/{Name}", "GetAlias", alias_arn, &Routes::GetAlias);
    add("PUT", fn + "/aliases/{Name}", "UpdateAlias", alias_arn, &Routes::UpdateAlias);
    add("DELETE", fn + "/aliases/{Name}", "DeleteAlias", alias_arn, &Routes::DeleteAlias);
    add("PUT", "/2017-10-31/functions/{FunctionName}/concurrency", "PutFunctionConcurrency",
        unqualified, &Routes::PutFunctionConcurrency);
    add("GET", "/2019-09-30/functions/{FunctionName}/concurrency", "GetFunctionConcurrency",
        unqualified, &Routes::GetFunctionConcurrency);
    add("DELETE", "/2017-10-31/functions/{FunctionName}/concurrency", "DeleteFunctionConcurrency",
        unqualified, &Routes::DeleteFunctionConcurrency);
    add("GET", "/2016-08-19/account-settings", "GetAccountSettings", star,
        &Routes::GetAccountSettings);
    add("GET", "/2016-08-19/account-settings/", "GetAccountSettings", star,
        &Routes::GetAccountSettings);
    {
      aws::RestRoute r;
      r.method = "POST";
      r.pattern = fn + "/invocations";
      r.name = "Invoke";
      r.action = "lambda:InvokeFunction";
      r.resource = qualified;
      r.async_handler = [self](RestRequest req, Call& call,
                               std::function<void(Outcome<RestResponse>)> done) {
        self->Invoke(std::move(req), call, std::move(done));
      };
      svc->Add(std::move(r));
    }
    const std::string esm = "/2015-03-31/event-source-mappings";
    add("POST", esm, "CreateEventSourceMapping", star, &Routes::CreateEventSourceMapping);
    add("POST", esm + "/", "CreateEventSourceMapping", star, &Routes::CreateEventSourceMapping);
    add("GET", esm, "ListEventSourceMappings", star, &Routes::ListEventSourceMappings);
    add("GET", esm + "/", "ListEventSourceMappings", star, &Routes::ListEventSourceMappings);
    add("GET", esm + "/{UUID}", "GetEventSourceMapping", star, &Routes::GetEventSourceMapping);
    add("PUT", esm + "/{UUID}", "UpdateEventSourceMapping", star,
        &Routes::UpdateEventSourceMapping);
    add("DELETE", esm + "/{UUID}", "DeleteEventSourceMapping", star,
        &Routes::DeleteEventSourceMapping);
    const std::string url = "/2021-10-31/functions/{FunctionName}/url";
    add("POST", url, "CreateFunctionUrlConfig", qualified, &Routes::CreateFunctionUrlConfig);
    add("GET", url, "GetFunctionUrlConfig", qualified, &Routes::GetFunctionUrlConfig);
    add("PUT", url, "UpdateFunctionUrlConfig", qualified, &Routes::UpdateFunctionUrlConfig);
    add("DELETE", url, "DeleteFunctionUrlConfig", qualified, &Routes::DeleteFunctionUrlConfig);
    add("GET", url + "s", "ListFunctionUrlConfigs", unqualified, &Routes::ListFunctionUrlConfigs);
    add("POST", fn + "/policy", "AddPermission", qualified, &Routes::AddPermission);
    add("GET", fn + "/policy", "GetPolicy", qualified, &Routes::GetPolicy);
    add("DELETE", fn + "/policy/{StatementId}", "RemovePermission", qualified,
        &Routes::RemovePermission);
    const std::string layer = "/2018-10-31/layers/{LayerName}";
    auto layer_arn = [&l_ = l_](const RestRequest& req, const Call&) -> Outcome<std::string> {
      auto it = req.path.find("LayerName");
      if (it == req.path.end()) return std::string("*");
      auto v = req.path.find("VersionNumber");
      return l_.LayerArn(it->second, 0) + (v == req.path.end() ? "" : ":" + v->second);
    };
    add("POST", layer + "/versions", "PublishLayerVersion", layer_arn,
        &Routes::PublishLayerVersion);
    add("GET", layer + "/versions", "ListLayerVersions", layer_arn, &Routes::ListLayerVersions);
    add("GET", layer + "/versions/{VersionNumber}", "GetLayerVersion", layer_arn,
        &Routes::GetLayerVersion);
    add("DELETE", layer + "/versions/{VersionNumber}", "DeleteLayerVersion", layer_arn,
        &Routes::DeleteLayerVersion);
    add("GET", "/2018-10-31/layers", "ListLayers", star, &Routes::ListLayers);
    const std::string eic = "/2019-09-25/functions/{FunctionName}/event-invoke-config";
    add("PUT", eic, "PutFunctionEventInvokeConfig", qualified,
        &Routes::PutFunctionEventInvokeConfig);
    add("POST", eic, "UpdateFunctionEventInvokeConfig", qualified,
        &Routes::UpdateFunctionEventInvokeConfig);
    add("GET", eic, "GetFunctionEventInvokeConfig", qualified,
        &Routes::GetFunctionEventInvokeConfig);
    add("DELETE", eic, "DeleteFunctionEventInvokeConfig", qualified,
        &Routes::DeleteFunctionEventInvokeConfig);
    add("GET", eic + "/list", "ListFunctionEventInvokeConfigs", unqualified,
        &Routes::ListFunctionEventInvokeConfigs);
    add("POST", "/2017-03-31/tags/{ARN}", "TagResource", tag_arn, &Routes::TagResource);
    add("DELETE", "/2017-03-31/tags/{ARN}", "UntagResource", tag_arn, &Routes::UntagResource);
    add("GET", "/2017-03-31/tags/{ARN}", "ListTags", tag_arn, &Routes::ListTags);
    return svc;
  }

 private:
  aws::Error Err(const base::Status& s, const std::string& name = "") const {
    return ToError(l_, s, name);
  }

  Outcome<RestResponse> CreateFunction(const RestRequest& req, Call& call) {
    LAMBDA_BODY(body, req);
    CreateFunctionRequest cr;
    std::optional<std::string> name;
    LAMBDA_TRY_READ(ReadString(body, "FunctionName", &name));
    if (!name) return Validation("null", "functionName", "Member must not be null");
    if (name->size() > 64 && AllNameChars(*name))
      return InvalidParameter("1 validation error detected: Value '" + *name +
                              "' at 'functionName' failed to satisfy constraint: Member must "
                              "have length less than or equal to 64");
    LAMBDA_REF(ref, ParseFunctionRef(l_, *name, nullptr));
    if (!ref.qualifier.empty())
      return Validation(
          *name, "functionName",
          std::string("Member must satisfy regular expression pattern: ") + kFunctionNamePattern);
    cr.name = ref.name;
    LAMBDA_TRY_READ(ReadSettings(body, &cr.settings));
    LAMBDA_TRY_READ(CheckDeadLetter(ref.name, cr.settings));
    if (!cr.settings.role) return Validation("null", "role", "Member must not be null");
    std::optional<std::string> package_type;
    LAMBDA_TRY_READ(ReadString(body, "PackageType", &package_type));
    if (package_type && *package_type != "Zip" && *package_type != "Image")
      return Validation(*package_type, "packageType",
                        "Member must satisfy enum value set: [Image, Zip]");
    if (package_type && *package_type == "Image") return CreateImageFunction(body, std::move(cr));
    if (cr.settings.image_config)
      return InvalidParameter(
          "ImageConfig is only supported for functions with packageType Image.");
    if (!cr.settings.runtime || !cr.settings.handler)
      return InvalidParameter(
          "Runtime and Handler are mandatory parameters for functions created with deployment "
          "packages.");
    auto code = body.find("Code");
    if (code == body.end() || code->is_null())
      return Validation("null", "code", "Member must not be null");
    auto zip = ReadZip(*code, fetch_code_, call);
    if (!zip.ok()) return zip.error();
    cr.zip = std::move(zip).value();
    LAMBDA_TRY_READ(ReadBool(body, "Publish", &cr.publish));
    LAMBDA_TRY_READ(ReadTags(body, &cr.tags));
    auto out = l_.CreateFunction(cr);
    if (!out.ok()) return Err(out.status(), cr.name);
    return RestResponse::FromJson(ConfigJson(l_, out.value()), 201);
  }

  // CreateFunction with PackageType Image: Code.ImageUri names an image in our registry.
  Outcome<RestResponse> CreateImageFunction(const json& body, CreateFunctionRequest cr) {
    auto code = body.find("Code");
    if (code == body.end() || code->is_null())
      return Validation("null", "code", "Member must not be null");
    if (!code->is_object()) return TypeError("Code", "an object").value();
    std::optional<std::string> uri;
    LAMBDA_TRY_READ(ReadString(*code, "ImageUri", &uri));
    if (!uri || uri->empty())
      return InvalidParameter(
          "Please provide ImageUri when creating a function with packageType Image.");
    if (code->contains("ZipFile") || code->contains("S3Bucket"))
      return InvalidParameter(
          "Please don't provide ZipFile or S3Bucket/S3Key when creating a "
          "function with packageType Image.");
    if (cr.settings.layers && !cr.settings.layers->empty())
      return InvalidParameter("Layers are not supported for functions with packageType Image.");
    if (cr.settings.runtime || cr.settings.handler)
      return InvalidParameter(
          "Runtime and Handler are not supported for functions with packageType Image.");
    cr.image_uri = *uri;
    LAMBDA_TRY_READ(ReadBool(body, "Publish", &cr.publish));
    LAMBDA_TRY_READ(ReadTags(body, &cr.tags));
    auto out = l_.CreateFunction(cr);
    if (!out.ok()) return Err(out.status(), cr.name);
    return RestResponse::FromJson(ConfigJson(l_, out.value()), 201);
  }

  // GetFunction's Code: where the package lives.
  static json CodeLocation(const FunctionConfig& c) {
    if (c.package_type != "Image") return {{"RepositoryType", "S3"}};
    // ResolvedImageUri: the URI with its tag (or digest) replaced by the resolved digest.
    std::string base = c.image_uri.substr(0, c.image_uri.find('@'));
    size_t slash = base.rfind('/');
    size_t colon = base.rfind(':');
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
      base = base.substr(0, colon);
    return {{"RepositoryType", "ECR"},
            {"ImageUri", c.image_uri},
            {"ResolvedImageUri", base + "@" + c.code_digest}};
  }

  Outcome<RestResponse> GetFunction(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    auto d = l_.GetFunction(ref.name, ref.qualifier);
    if (!d.ok()) return Err(d.status(), ref.name);
    json j = {{"Configuration", ConfigJson(l_, d->config)}, {"Code", CodeLocation(d->config)}};
    if (!d->tags.empty()) j["Tags"] = d->tags;
    if (d->reserved_concurrency)
      j["Concurrency"] = {{"ReservedConcurrentExecutions", *d->reserved_concurrency}};
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> GetFunctionConfiguration(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    auto d = l_.GetFunction(ref.name, ref.qualifier);
    if (!d.ok()) return Err(d.status(), ref.name);
    return RestResponse::FromJson(ConfigJson(l_, d->config));
  }

  Outcome<RestResponse> ListFunctions(const RestRequest& req, Call&) {
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    auto page = l_.ListFunctions(QueryOr(req, "Marker"), max.value());
    if (!page.ok()) return Err(page.status());
    json fns = json::array();
    for (const auto& c : page->items) fns.push_back(ConfigJson(l_, c));
    json j = {{"Functions", std::move(fns)}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> UpdateFunctionCode(const RestRequest& req, Call& call) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    LAMBDA_BODY(body, req);
    std::optional<std::string> revision, image_uri;
    bool publish = false, dry_run = false;
    LAMBDA_TRY_READ(ReadString(body, "RevisionId", &revision));
    LAMBDA_TRY_READ(ReadBool(body, "Publish", &publish));
    LAMBDA_TRY_READ(ReadBool(body, "DryRun", &dry_run));
    LAMBDA_TRY_READ(ReadString(body, "ImageUri", &image_uri));
    if (dry_run) return InvalidParameter("DryRun is not supported by this server.");
    if (image_uri) {
      auto out = l_.UpdateFunctionImage(ref.name, *image_uri, revision.value_or(""), publish);
      if (!out.ok()) return Err(out.status(), ref.name);
      return RestResponse::FromJson(ConfigJson(l_, out.value()));
    }
    if (!body.contains("ZipFile") && !body.contains("S3Bucket"))
      return InvalidParameter("Please provide a source for function code.");
    auto zip = ReadZip(body, fetch_code_, call);
    if (!zip.ok()) return zip.error();
    auto out = l_.UpdateFunctionCode(ref.name, zip.value(), revision.value_or(""), publish);
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(ConfigJson(l_, out.value()));
  }

  Outcome<RestResponse> UpdateFunctionConfiguration(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    LAMBDA_BODY(body, req);
    FunctionSettings s;
    LAMBDA_TRY_READ(ReadSettings(body, &s));
    LAMBDA_TRY_READ(CheckDeadLetter(ref.name, s));
    std::optional<std::string> revision;
    LAMBDA_TRY_READ(ReadString(body, "RevisionId", &revision));
    auto out = l_.UpdateFunctionConfiguration(ref.name, s, revision.value_or(""));
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(ConfigJson(l_, out.value()));
  }

  Outcome<RestResponse> DeleteFunction(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    base::Status st = l_.DeleteFunction(ref.name, ref.qualifier);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> PublishVersion(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    LAMBDA_BODY(body, req);
    std::optional<std::string> description, sha, revision;
    LAMBDA_TRY_READ(ReadString(body, "Description", &description));
    LAMBDA_TRY_READ(ReadString(body, "CodeSha256", &sha));
    LAMBDA_TRY_READ(ReadString(body, "RevisionId", &revision));
    if (description && description->size() > 256)
      return Validation(*description, "description",
                        "Member must have length less than or equal to 256");
    auto out = l_.PublishVersion(ref.name, description.value_or(""), sha.value_or(""),
                                 revision.value_or(""));
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(ConfigJson(l_, out.value()), 201);
  }

  Outcome<RestResponse> ListVersionsByFunction(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    auto page = l_.ListVersions(ref.name, QueryOr(req, "Marker"), max.value());
    if (!page.ok()) return Err(page.status(), ref.name);
    json vs = json::array();
    for (const auto& c : page->items) vs.push_back(ConfigJson(l_, c));
    json j = {{"Versions", std::move(vs)}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> CreateAlias(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    LAMBDA_BODY(body, req);
    std::optional<std::string> name, version, description;
    LAMBDA_TRY_READ(ReadString(body, "Name", &name));
    LAMBDA_TRY_READ(ReadString(body, "FunctionVersion", &version));
    LAMBDA_TRY_READ(ReadString(body, "Description", &description));
    if (!name) return Validation("null", "name", "Member must not be null");
    if (!version) return Validation("null", "functionVersion", "Member must not be null");
    LAMBDA_TRY_READ(CheckAliasName(*name));
    LAMBDA_TRY_READ(CheckVersionValue(*version));
    std::optional<std::map<std::string, double>> weights;
    LAMBDA_TRY_READ(ReadRouting(body, &weights));
    if (weights && !weights->empty() && *version == kLatest)
      return InvalidParameter(
          "$LATEST is not supported for an alias pointing to more than 1 version");
    Alias a;
    a.name = *name;
    a.function_version = *version;
    a.description = description.value_or("");
    a.additional_weights = weights.value_or(std::map<std::string, double>{});
    auto out = l_.CreateAlias(ref.name, a);
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(AliasJson(l_, ref.name, out.value()), 201);
  }

  Outcome<RestResponse> GetAlias(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    std::string alias = req.path.at("Name");
    LAMBDA_TRY_READ(CheckAliasName(alias));
    auto out = l_.GetAlias(ref.name, alias);
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(AliasJson(l_, ref.name, out.value()));
  }

  Outcome<RestResponse> ListAliases(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    std::string version = QueryOr(req, "FunctionVersion");
    if (!version.empty()) LAMBDA_TRY_READ(CheckVersionValue(version));
    auto page = l_.ListAliases(ref.name, version, QueryOr(req, "Marker"), max.value());
    if (!page.ok()) return Err(page.status(), ref.name);
    json as = json::array();
    for (const auto& a : page->items) as.push_back(AliasJson(l_, ref.name, a));
    json j = {{"Aliases", std::move(as)}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> UpdateAlias(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    std::string alias = req.path.at("Name");
    LAMBDA_TRY_READ(CheckAliasName(alias));
    LAMBDA_BODY(body, req);
    AliasUpdate u;
    std::optional<std::string> revision;
    LAMBDA_TRY_READ(ReadString(body, "FunctionVersion", &u.function_version));
    LAMBDA_TRY_READ(ReadString(body, "Description", &u.description));
    LAMBDA_TRY_READ(ReadString(body, "RevisionId", &revision));
    LAMBDA_TRY_READ(ReadRouting(body, &u.additional_weights));
    if (u.function_version) LAMBDA_TRY_READ(CheckVersionValue(*u.function_version));
    u.revision_id = revision.value_or("");
    auto out = l_.UpdateAlias(ref.name, alias, u);
    if (!out.ok()) return Err(out.status(), ref.name);
    return RestResponse::FromJson(AliasJson(l_, ref.name, out.value()));
  }

  Outcome<RestResponse> DeleteAlias(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    std::string alias = req.path.at("Name");
    LAMBDA_TRY_READ(CheckAliasName(alias));
    base::Status st = l_.DeleteAlias(ref.name, alias);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> PutFunctionConcurrency(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    LAMBDA_BODY(body, req);
    std::optional<int64_t> n;
    LAMBDA_TRY_READ(ReadInt(body, "ReservedConcurrentExecutions", &n));
    if (!n) return Validation("null", "reservedConcurrentExecutions", "Member must not be null");
    if (*n < 0)
      return Validation(std::to_string(*n), "reservedConcurrentExecutions",
                        "Member must have value greater than or equal to 0");
    base::Status st = l_.PutFunctionConcurrency(ref.name, *n);
    if (!st.ok()) return Err(st, ref.name);
    return RestResponse::FromJson(json{{"ReservedConcurrentExecutions", *n}});
  }

  Outcome<RestResponse> GetFunctionConcurrency(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    auto out = l_.GetFunctionConcurrency(ref.name);
    if (!out.ok()) return Err(out.status(), ref.name);
    json j = json::object();
    if (out.value()) j["ReservedConcurrentExecutions"] = *out.value();
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> DeleteFunctionConcurrency(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    base::Status st = l_.DeleteFunctionConcurrency(ref.name);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> GetAccountSettings(const RestRequest&, Call&) {
    auto s = l_.GetAccountSettings();
    if (!s.ok()) return Err(s.status());
    const Options& o = l_.options();
    json j = {{"AccountLimit",
               {{"TotalCodeSize", 80530636800ull},
                {"CodeSizeUnzipped", o.max_unzipped_bytes},
                {"CodeSizeZipped", o.max_zip_bytes},
                {"ConcurrentExecutions", s->concurrent_executions},
                {"UnreservedConcurrentExecutions", s->unreserved_concurrent_executions}}},
              {"AccountUsage",
               {{"TotalCodeSize", s->total_code_size}, {"FunctionCount", s->function_count}}}};
    return RestResponse::FromJson(j);
  }

  // Tag operations take a function ARN; versions and aliases carry no tags.
  Outcome<FunctionRef> TagTarget(const RestRequest& req) {
    auto it = req.path.find("ARN");
    std::string arn = it == req.path.end() ? "" : it->second;
    if (arn.rfind("arn:", 0) != 0)
      return Validation(arn, "resource",
                        "Member must satisfy regular expression pattern: "
                        "arn:(aws[a-zA-Z-]*):lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}"
                        ":\\d{12}:(function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|"
                        "layer:([a-zA-Z0-9-_]+))");
    auto ref = ParseFunctionRef(l_, arn, nullptr);
    if (!ref.ok()) return ref;
    if (!ref.value().qualifier.empty())
      return InvalidParameter(
          "Tags on function aliases and versions are not supported. Please specify a function "
          "ARN.");
    return ref;
  }

  Outcome<RestResponse> TagResource(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, TagTarget(req));
    LAMBDA_BODY(body, req);
    std::map<std::string, std::string> tags;
    LAMBDA_TRY_READ(ReadTags(body, &tags));
    if (!body.contains("Tags")) return Validation("null", "tags", "Member must not be null");
    auto existing = l_.ListTags(ref.name);
    if (!existing.ok()) return Err(existing.status(), ref.name);
    std::map<std::string, std::string> merged = existing.value();
    for (const auto& [k, v] : tags) merged[k] = v;
    if (merged.size() > 50) return InvalidParameter("Number of tags exceeds resource tag limit.");
    base::Status st = l_.TagResource(ref.name, tags);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> UntagResource(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, TagTarget(req));
    std::vector<std::string> keys;
    auto [lo, hi] = req.query.equal_range("tagKeys");
    for (auto it = lo; it != hi; ++it) keys.push_back(it->second);
    if (keys.empty())
      return aws::MakeError(400, "ValidationException",
                            "1 validation error detected: Value null at 'tagKeys' failed to "
                            "satisfy constraint: Member must not be null");
    base::Status st = l_.UntagResource(ref.name, keys);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> ListTags(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, TagTarget(req));
    auto tags = l_.ListTags(ref.name);
    if (!tags.ok()) return Err(tags.status(), ref.name);
    return RestResponse::FromJson(json{{"Tags", tags.value()}});
  }

  // DeadLetterConfig.TargetArn: an SQS queue that exists (SNS topics once they exist).
  std::optional<aws::Error> CheckDeadLetter(const std::string& name,
                                            const FunctionSettings& s) const {
    if (!s.dead_letter_arn || s.dead_letter_arn->empty()) return std::nullopt;
    const std::string& arn = *s.dead_letter_arn;
    bool ok = arn.rfind("arn:aws:sqs:", 0) == 0 && async_ != nullptr &&
              async_->CheckDestination(name, arn).ok();
    if (!ok)
      return InvalidParameter("The provided target arn " + arn +
                              " is invalid: it must be an existing SQS queue.");
    return std::nullopt;
  }

  // --- Event source mappings ---

  json EsmJson(const EventSourceMapping& m) const {
    json j{{"UUID", m.uuid},
           {"BatchSize", m.batch_size},
           {"MaximumBatchingWindowInSeconds", m.batching_window},
           {"EventSourceArn", m.event_source_arn},
           {"FunctionArn", l_.FunctionArn(m.function_name, m.qualifier)},
           {"LastModified", m.last_modified},
           {"State", m.state},
           {"StateTransitionReason", "USER_INITIATED"}};
    if (m.report_batch_item_failures)
      j["FunctionResponseTypes"] = json::array({"ReportBatchItemFailures"});
    if (m.max_concurrency != 5) j["ScalingConfig"] = {{"MaximumConcurrency", m.max_concurrency}};
    return j;
  }

  aws::Error EsmErr(const base::Status& s) const {
    if (s.code() == base::Code::kNotFound) {
      if (s.message() == "function")
        return aws::MakeError(404, "ResourceNotFoundException", "Function does not exist");
      return aws::MakeError(404, "ResourceNotFoundException", s.message());
    }
    if (s.code() == base::Code::kAlreadyExists)
      return aws::MakeError(409, "ResourceInUseException", s.message());
    return Err(s);
  }

  // Reads the settable fields of Create/UpdateEventSourceMapping.
  std::optional<aws::Error> ReadEsm(const json& body, EventSourceMappings::Update* u) const {
    if (auto it = body.find("FunctionName"); it != body.end() && !it->is_null()) {
      if (!it->is_string()) return *TypeError("FunctionName", "a string");
      auto ref = ParseFunctionRef(l_, it->get<std::string>(), nullptr);
      if (!ref.ok()) return ref.error();
      u->function_name = ref.value().name;
      u->qualifier = ref.value().qualifier;
    }
    for (auto [field, out] :
         {std::pair<const char*, std::optional<int>*>{"BatchSize", &u->batch_size},
          {"MaximumBatchingWindowInSeconds", &u->batching_window}}) {
      auto it = body.find(field);
      if (it == body.end() || it->is_null()) continue;
      if (!it->is_number_integer()) return *TypeError(field, "an integer");
      *out = static_cast<int>(it->get<int64_t>());
    }
    if (auto it = body.find("Enabled"); it != body.end() && !it->is_null()) {
      if (!it->is_boolean()) return *TypeError("Enabled", "a boolean");
      u->enabled = it->get<bool>();
    }
    if (auto it = body.find("FunctionResponseTypes"); it != body.end() && !it->is_null()) {
      if (!it->is_array()) return *TypeError("FunctionResponseTypes", "a list");
      bool rbif = false;
      for (const auto& t : *it) {
        if (!t.is_string() || t != "ReportBatchItemFailures")
          return Validation(t.dump(), "functionResponseTypes",
                            "Member must satisfy constraint: [Member must satisfy enum value "
                            "set: [ReportBatchItemFailures]]");
        rbif = true;
      }
      u->report_batch_item_failures = rbif;
    }
    if (auto it = body.find("ScalingConfig"); it != body.end() && it->is_object()) {
      auto mc = it->find("MaximumConcurrency");
      if (mc != it->end() && mc->is_number_integer())
        u->max_concurrency = static_cast<int>(mc->get<int64_t>());
    }
    return std::nullopt;
  }

  Outcome<RestResponse> CreateEventSourceMapping(const RestRequest& req, Call& call) {
    if (esm_ == nullptr)
      return aws::MakeError(500, "ServiceException", "Event source mappings are not available.");
    LAMBDA_BODY(body, req);
    std::optional<std::string> source;
    LAMBDA_TRY_READ(ReadString(body, "EventSourceArn", &source));
    if (!source || source->rfind("arn:aws:sqs:", 0) != 0)
      return InvalidParameter("Unrecognized event source, must be an SQS queue ARN.");
    EventSourceMappings::Update u;
    LAMBDA_TRY_READ(ReadEsm(body, &u));
    if (!u.function_name) return Validation("null", "functionName", "Member must not be null");
    if (auto denied =
            call.Authorize("lambda:CreateEventSourceMapping",
                           l_.FunctionArn(*u.function_name, u.qualifier.value_or("")), {}))
      return *denied;
    EventSourceMapping m;
    m.event_source_arn = *source;
    m.function_name = *u.function_name;
    m.qualifier = u.qualifier.value_or("");
    if (u.enabled) m.enabled = *u.enabled;
    if (u.batch_size) m.batch_size = *u.batch_size;
    if (u.batching_window) m.batching_window = *u.batching_window;
    if (u.report_batch_item_failures) m.report_batch_item_failures = *u.report_batch_item_failures;
    if (u.max_concurrency) m.max_concurrency = *u.max_concurrency;
    auto out = esm_->Create(m);
    if (!out.ok()) return EsmErr(out.status());
    return RestResponse::FromJson(EsmJson(out.value()), 202);
  }

  Outcome<RestResponse> GetEventSourceMapping(const RestRequest& req, Call&) {
    if (esm_ == nullptr)
      return aws::MakeError(404, "ResourceNotFoundException",
                            "The resource you requested does not exist.");
    auto out = esm_->Get(req.path.at("UUID"));
    if (!out.ok()) return EsmErr(out.status());
    return RestResponse::FromJson(EsmJson(out.value()));
  }

  Outcome<RestResponse> ListEventSourceMappings(const RestRequest& req, Call&) {
    json list = json::array();
    if (esm_ != nullptr) {
      std::string fn;
      if (const std::string* f = req.Query("FunctionName")) {
        auto ref = ParseFunctionRef(l_, *f, nullptr);
        if (!ref.ok()) return ref.error();
        fn = ref.value().name;
      }
      auto out = esm_->List(QueryOr(req, "EventSourceArn"), fn);
      if (!out.ok()) return EsmErr(out.status());
      for (const auto& m : out.value()) list.push_back(EsmJson(m));
    }
    return RestResponse::FromJson(json{{"EventSourceMappings", list}});
  }

  Outcome<RestResponse> UpdateEventSourceMapping(const RestRequest& req, Call&) {
    if (esm_ == nullptr)
      return aws::MakeError(404, "ResourceNotFoundException",
                            "The resource you requested does not exist.");
    LAMBDA_BODY(body, req);
    EventSourceMappings::Update u;
    LAMBDA_TRY_READ(ReadEsm(body, &u));
    auto out = esm_->Change(req.path.at("UUID"), u);
    if (!out.ok()) return EsmErr(out.status());
    return RestResponse::FromJson(EsmJson(out.value()), 202);
  }

  Outcome<RestResponse> DeleteEventSourceMapping(const RestRequest& req, Call&) {
    if (esm_ == nullptr)
      return aws::MakeError(404, "ResourceNotFoundException",
                            "The resource you requested does not exist.");
    auto out = esm_->Delete(req.path.at("UUID"));
    if (!out.ok()) return EsmErr(out.status());
    return RestResponse::FromJson(EsmJson(out.value()), 202);
  }

  // --- Function URLs ---

  std::string UrlOf(const FunctionUrlConfig& c) const {
    return "http://" + c.url_id + ".lambda-url." + l_.options().region + "." + url_host_ + "/";
  }

  json UrlJson(const FunctionUrlConfig& c, bool full, bool with_mode) const {
    json j{{"FunctionUrl", UrlOf(c)},
           {"FunctionArn", l_.FunctionArn(c.function_name, c.qualifier)},
           {"AuthType", c.auth_type},
           {"CreationTime", c.creation_time}};
    if (full) j["LastModifiedTime"] = c.last_modified_time;
    if (full || with_mode) j["InvokeMode"] = c.invoke_mode;
    if (c.cors) {
      json k = json::object();
      k["AllowCredentials"] = c.cors->allow_credentials;
      if (!c.cors->allow_headers.empty()) k["AllowHeaders"] = c.cors->allow_headers;
      if (!c.cors->allow_methods.empty()) k["AllowMethods"] = c.cors->allow_methods;
      if (!c.cors->allow_origins.empty()) k["AllowOrigins"] = c.cors->allow_origins;
      if (!c.cors->expose_headers.empty()) k["ExposeHeaders"] = c.cors->expose_headers;
      if (c.cors->max_age) k["MaxAge"] = *c.cors->max_age;
      j["Cors"] = k;
    }
    return j;
  }

  // Function URLs take an alias or nothing as the qualifier.
  Outcome<FunctionRef> UrlRef(const RestRequest& req) const {
    auto ref = RefOf(l_, req, true);
    if (!ref.ok()) return ref;
    const std::string& q = ref.value().qualifier;
    if (!q.empty() && (q == kLatest || AllDigits(q) || !AllNameChars(q)))
      return Validation(q, "qualifier",
                        "Member must satisfy regular expression pattern: "
                        "((?!^\\d+$)^[0-9a-zA-Z-_]+$)");
    return ref;
  }

  std::optional<aws::Error> ReadUrlBody(const json& body, std::string* auth_type,
                                        std::optional<UrlCors>* cors, std::string* mode) const {
    std::optional<std::string> a, m;
    LAMBDA_TRY_READ(ReadString(body, "AuthType", &a));
    LAMBDA_TRY_READ(ReadString(body, "InvokeMode", &m));
    if (a) {
      if (*a != "NONE" && *a != "AWS_IAM")
        return Validation(*a, "authType", "Member must satisfy enum value set: [NONE, AWS_IAM]");
      *auth_type = *a;
    }
    if (m) {
      if (*m != "BUFFERED" && *m != "RESPONSE_STREAM")
        return Validation(*m, "invokeMode",
                          "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]");
      *mode = *m;
    }
    auto it = body.find("Cors");
    if (it != body.end() && !it->is_null()) {
      if (!it->is_object()) return TypeError("Cors", "an object");
      UrlCors c;
      if (auto ac = it->find("AllowCredentials"); ac != it->end() && !ac->is_null()) {
        if (!ac->is_boolean()) return TypeError("Cors.AllowCredentials", "a boolean");
        c.allow_credentials = ac->get<bool>();
      }
      for (auto [field, out] :
           {std::pair<const char*, std::vector<std::string>*>{"AllowHeaders", &c.allow_headers},
            {"AllowMethods", &c.allow_methods},
            {"AllowOrigins", &c.allow_origins},
            {"ExposeHeaders", &c.expose_headers}}) {
        auto f = it->find(field);
        if (f == it->end() || f->is_null()) continue;
        if (!f->is_array()) return TypeError(std::string("Cors.") + field, "a list");
        for (const auto& v : *f) {
          if (!v.is_string()) return TypeError(std::string("Cors.") + field, "a list of strings");
          out->push_back(v.get<std::string>());
        }
      }
      if (auto ma = it->find("MaxAge"); ma != it->end() && !ma->is_null()) {
        if (!ma->is_number_integer()) return TypeError("Cors.MaxAge", "an integer");
        int64_t v = ma->get<int64_t>();
        if (v < 0 || v > 86400)
          return Validation(std::to_string(v), "cors.maxAge",
                            "Member must have value less than or equal to 86400");
        c.max_age = static_cast<int>(v);
      }
      *cors = std::move(c);
    }
    return std::nullopt;
  }

  aws::Error NoSuchResource() const {
    return aws::MakeError(404, "ResourceNotFoundException",
                          "The resource you requested does not exist.");
  }
  aws::Error NoSuchFunction() const {
    return aws::MakeError(404, "ResourceNotFoundException", "Function does not exist");
  }

  Outcome<RestResponse> CreateFunctionUrlConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UrlRef(req));
    LAMBDA_BODY(body, req);
    FunctionUrlConfig c;
    c.function_name = ref.name;
    c.qualifier = ref.qualifier;
    std::string auth, mode;
    std::optional<UrlCors> cors;
    LAMBDA_TRY_READ(ReadUrlBody(body, &auth, &cors, &mode));
    if (auth.empty()) return Validation("null", "authType", "Member must not be null");
    c.auth_type = auth;
    c.cors = cors;
    if (!mode.empty()) c.invoke_mode = mode;
    auto out = l_.CreateFunctionUrlConfig(c);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound) return NoSuchFunction();
      if (out.status().code() == base::Code::kAlreadyExists)
        return aws::MakeError(409, "ResourceConflictException",
                              "Failed to create function url config for [functionArn = " +
                                  l_.FunctionArn(ref.name, ref.qualifier) +
                                  "]. Error message:  FunctionUrlConfig exists for this Lambda "
                                  "function");
      return Err(out.status(), ref.name);
    }
    return RestResponse::FromJson(UrlJson(out.value(), false, !mode.empty()), 201);
  }

  Outcome<RestResponse> GetFunctionUrlConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UrlRef(req));
    auto out = l_.GetFunctionUrlConfig(ref.name, ref.qualifier);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound) return NoSuchResource();
      return Err(out.status(), ref.name);
    }
    return RestResponse::FromJson(UrlJson(out.value(), true, true));
  }

  Outcome<RestResponse> UpdateFunctionUrlConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UrlRef(req));
    LAMBDA_BODY(body, req);
    std::string auth, mode;
    std::optional<UrlCors> cors;
    LAMBDA_TRY_READ(ReadUrlBody(body, &auth, &cors, &mode));
    auto out = l_.UpdateFunctionUrlConfig(ref.name, ref.qualifier, auth, cors, mode);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound)
        return out.status().message() == "function" ? NoSuchFunction() : NoSuchResource();
      return Err(out.status(), ref.name);
    }
    json j = UrlJson(out.value(), true, !mode.empty());
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> DeleteFunctionUrlConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UrlRef(req));
    base::Status st = l_.DeleteFunctionUrlConfig(ref.name, ref.qualifier);
    if (st.code() == base::Code::kNotFound) return NoSuchResource();
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> ListFunctionUrlConfigs(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, UnqualifiedRef(l_, req));
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    auto page = l_.ListFunctionUrlConfigs(ref.name, QueryOr(req, "Marker"), max.value());
    if (!page.ok()) {
      if (page.status().code() == base::Code::kNotFound) return NoSuchFunction();
      return Err(page.status(), ref.name);
    }
    json items = json::array();
    for (const auto& c : page->items) items.push_back(UrlJson(c, true, true));
    json j{{"FunctionUrlConfigs", items}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  // --- Resource-based policy ---

  Outcome<RestResponse> AddPermission(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    LAMBDA_BODY(body, req);
    PermissionRequest p;
    p.qualifier = ref.qualifier;
    std::optional<std::string> sid, action, principal, source_arn, source_account, org, url_auth,
        revision, token;
    LAMBDA_TRY_READ(ReadString(body, "StatementId", &sid));
    LAMBDA_TRY_READ(ReadString(body, "Action", &action));
    LAMBDA_TRY_READ(ReadString(body, "Principal", &principal));
    LAMBDA_TRY_READ(ReadString(body, "SourceArn", &source_arn));
    LAMBDA_TRY_READ(ReadString(body, "SourceAccount", &source_account));
    LAMBDA_TRY_READ(ReadString(body, "PrincipalOrgID", &org));
    LAMBDA_TRY_READ(ReadString(body, "FunctionUrlAuthType", &url_auth));
    LAMBDA_TRY_READ(ReadString(body, "RevisionId", &revision));
    LAMBDA_TRY_READ(ReadString(body, "EventSourceToken", &token));
    if (!sid) return Validation("null", "statementId", "Member must not be null");
    if (!action) return Validation("null", "action", "Member must not be null");
    if (!principal) return Validation("null", "principal", "Member must not be null");
    bool sid_ok = !sid->empty() && sid->size() <= 100;
    for (char c : *sid) sid_ok = sid_ok && (IsNameChar(c));
    if (!sid_ok)
      return Validation(*sid, "statementId",
                        "Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)");
    bool action_ok = *action == "*" || *action == "lambda:*";
    if (!action_ok && action->rfind("lambda:", 0) == 0 && action->size() > 7) {
      action_ok = true;
      for (char c : action->substr(7))
        action_ok = action_ok && std::isalpha(static_cast<unsigned char>(c));
    }
    if (!action_ok)
      return Validation(*action, "action",
                        "Member must satisfy regular expression pattern: "
                        "(lambda:[*]|lambda:[a-zA-Z]+|[*])");
    if (url_auth && *url_auth != "NONE" && *url_auth != "AWS_IAM")
      return Validation(*url_auth, "functionUrlAuthType",
                        "Member must satisfy enum value set: [NONE, AWS_IAM]");
    p.statement_id = *sid;
    p.action = *action;
    p.principal = *principal;
    p.source_arn = source_arn.value_or("");
    p.source_account = source_account.value_or("");
    p.principal_org_id = org.value_or("");
    p.function_url_auth_type = url_auth.value_or("");
    p.revision_id = revision.value_or("");
    auto out = l_.AddPermission(ref.name, p);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound)
        return aws::MakeError(404, "ResourceNotFoundException",
                              "Function not found: " + l_.FunctionArn(ref.name, ref.qualifier));
      return Err(out.status(), ref.name);
    }
    return RestResponse::FromJson(json{{"Statement", out.value()}}, 201);
  }

  Outcome<RestResponse> GetPolicy(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    auto fn = l_.GetFunction(ref.name, ref.qualifier);
    if (!fn.ok()) return Err(fn.status(), ref.name);
    auto out = l_.GetPolicy(ref.name, ref.qualifier);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound) return NoSuchResource();
      return Err(out.status(), ref.name);
    }
    return RestResponse::FromJson(json{{"Policy", out->first}, {"RevisionId", out->second}});
  }

  Outcome<RestResponse> RemovePermission(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    auto it = req.path.find("StatementId");
    std::string sid = it == req.path.end() ? "" : it->second;
    const std::string* revision = req.Query("RevisionId");
    base::Status st = l_.RemovePermission(ref.name, ref.qualifier, sid, revision ? *revision : "");
    if (st.code() == base::Code::kNotFound) {
      if (st.message() == "function")
        return aws::MakeError(404, "ResourceNotFoundException",
                              "Function not found: " + l_.FunctionArn(ref.name, ref.qualifier));
      return aws::MakeError(404, "ResourceNotFoundException", st.message());
    }
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  // --- Layers ---

  json LayerJson(const LayerVersion& l) const {
    json j{{"LayerArn", l_.LayerArn(l.name, 0)},
           {"LayerVersionArn", l_.LayerArn(l.name, l.version)},
           {"Description", l.description},
           {"CreatedDate", l.created_date},
           {"Version", l.version}};
    if (!l.compatible_runtimes.empty()) j["CompatibleRuntimes"] = l.compatible_runtimes;
    if (!l.compatible_architectures.empty())
      j["CompatibleArchitectures"] = l.compatible_architectures;
    if (!l.license_info.empty()) j["LicenseInfo"] = l.license_info;
    return j;
  }

  std::optional<aws::Error> LayerName(const RestRequest& req, std::string* out) const {
    auto it = req.path.find("LayerName");
    std::string n = it == req.path.end() ? "" : it->second;
    // A layer ARN is accepted where a name is: arn:aws:lambda:REGION:ACCOUNT:layer:NAME
    auto parts = base::Split(n, ':');
    if (parts.size() == 7 && parts[0] == "arn" && parts[5] == "layer") n = std::string(parts[6]);
    if (n.empty() || n.size() > 140 || !AllNameChars(n))
      return Validation(n, "layerName",
                        "Member must satisfy regular expression pattern: "
                        "(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|"
                        "[a-zA-Z0-9-_]+");
    *out = n;
    return std::nullopt;
  }

  std::optional<aws::Error> LayerVersionNumber(const RestRequest& req, int64_t* out) const {
    auto it = req.path.find("VersionNumber");
    std::string v = it == req.path.end() ? "" : it->second;
    if (v.empty() || v.size() > 15 || !AllDigits(v))
      return aws::MakeError(400, "ValidationException",
                            "1 validation error detected: Value '" + v +
                                "' at 'versionNumber' failed to satisfy constraint: Member must "
                                "be a number");
    *out = std::stoll(v);
    return std::nullopt;
  }

  Outcome<RestResponse> PublishLayerVersion(const RestRequest& req, Call& call) {
    std::string name;
    LAMBDA_TRY_READ(LayerName(req, &name));
    LAMBDA_BODY(body, req);
    LayerVersion l;
    l.name = name;
    std::optional<std::string> description, license;
    LAMBDA_TRY_READ(ReadString(body, "Description", &description));
    LAMBDA_TRY_READ(ReadString(body, "LicenseInfo", &license));
    l.description = description.value_or("");
    l.license_info = license.value_or("");
    for (const char* field : {"CompatibleRuntimes", "CompatibleArchitectures"}) {
      auto it = body.find(field);
      if (it == body.end() || it->is_null()) continue;
      if (!it->is_array()) return *TypeError(field, "a list");
      std::vector<std::string> values;
      for (const auto& v : *it) {
        if (!v.is_string()) return *TypeError(field, "a list of strings");
        values.push_back(v.get<std::string>());
      }
      if (std::string(field) == "CompatibleRuntimes") {
        if (values.size() > 15)
          return Validation(it->dump(), "compatibleRuntimes",
                            "Member must have length less than or equal to 15");
        const auto& known = SupportedRuntimes();
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        for (const auto& r : values)
          if (std::find(known.begin(), known.end(), r) == known.end())
            return Validation(r, "compatibleRuntimes",
                              "Member must satisfy constraint: [Member must satisfy enum value "
                              "set: [" +
                                  list + "]]");
        l.compatible_runtimes = std::move(values);
      } else {
        for (const auto& a : values)
          if (a != "x86_64" && a != "arm64")
            return Validation(a, "compatibleArchitectures",
                              "Member must satisfy constraint: [Member must satisfy enum value "
                              "set: [x86_64, arm64]]");
        l.compatible_architectures = std::move(values);
      }
    }
    auto content = body.find("Content");
    if (content == body.end() || content->is_null())
      return Validation("null", "content", "Member must not be null");
    auto zip = ReadZip(*content, fetch_code_, call);
    if (!zip.ok()) return zip.error();
    auto out = l_.PublishLayerVersion(l, zip.value());
    if (!out.ok()) return Err(out.status());
    json j = LayerJson(out.value());
    j["Content"] = {{"CodeSha256", out->code_sha256}, {"CodeSize", out->code_size}};
    return RestResponse::FromJson(j, 201);
  }

  Outcome<RestResponse> GetLayerVersion(const RestRequest& req, Call&) {
    std::string name;
    int64_t version = 0;
    LAMBDA_TRY_READ(LayerName(req, &name));
    LAMBDA_TRY_READ(LayerVersionNumber(req, &version));
    auto l = l_.GetLayerVersion(name, version);
    if (!l.ok()) {
      if (l.status().code() == base::Code::kNotFound)
        return aws::MakeError(404, "ResourceNotFoundException",
                              "The resource you requested does not exist.");
      return Err(l.status());
    }
    json j = LayerJson(l.value());
    j["Content"] = {{"CodeSha256", l->code_sha256}, {"CodeSize", l->code_size}};
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> ListLayerVersions(const RestRequest& req, Call&) {
    std::string name;
    LAMBDA_TRY_READ(LayerName(req, &name));
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    auto page = l_.ListLayerVersions(name, QueryOr(req, "Marker"), max.value());
    if (!page.ok()) return Err(page.status());
    json vs = json::array();
    for (const auto& l : page->items) vs.push_back(LayerJson(l));
    json j = {{"LayerVersions", std::move(vs)}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> ListLayers(const RestRequest& req, Call&) {
    auto max = ReadMaxItems(req);
    if (!max.ok()) return max.error();
    auto page = l_.ListLayers(QueryOr(req, "Marker"), max.value());
    if (!page.ok()) return Err(page.status());
    json ls = json::array();
    for (const auto& l : page->items)
      ls.push_back({{"LayerName", l.name},
                    {"LayerArn", l_.LayerArn(l.name, 0)},
                    {"LatestMatchingVersion", LayerJson(l)}});
    json j = {{"Layers", std::move(ls)}};
    if (!page->next_marker.empty()) j["NextMarker"] = page->next_marker;
    return RestResponse::FromJson(j);
  }

  Outcome<RestResponse> DeleteLayerVersion(const RestRequest& req, Call&) {
    std::string name;
    int64_t version = 0;
    LAMBDA_TRY_READ(LayerName(req, &name));
    LAMBDA_TRY_READ(LayerVersionNumber(req, &version));
    base::Status st = l_.DeleteLayerVersion(name, version);
    if (!st.ok()) return Err(st);
    return NoContent();
  }

  // --- Event invoke configs (asynchronous invocation settings) ---

  json EventInvokeJson(const std::string& name, const EventInvokeConfig& c) const {
    json j{{"FunctionArn", l_.FunctionArn(name, c.qualifier)},
           {"LastModified", c.last_modified},
           {"DestinationConfig",
            {{"OnSuccess",
              c.on_success.empty() ? json::object() : json{{"Destination", c.on_success}}},
             {"OnFailure",
              c.on_failure.empty() ? json::object() : json{{"Destination", c.on_failure}}}}}};
    if (c.maximum_retry_attempts) j["MaximumRetryAttempts"] = *c.maximum_retry_attempts;
    if (c.maximum_event_age_seconds) j["MaximumEventAgeInSeconds"] = *c.maximum_event_age_seconds;
    return j;
  }

  aws::Error NoEventInvokeConfig(const std::string& name, const std::string& qualifier) const {
    return aws::MakeError(404, "ResourceNotFoundException",
                          "The function " +
                              l_.FunctionArn(name, qualifier.empty() ? kLatest : qualifier) +
                              " doesn't have an EventInvokeConfig");
  }

  Outcome<RestResponse> WriteEventInvokeConfig(const RestRequest& req, bool merge) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    LAMBDA_BODY(body, req);
    EventInvokeConfig c;
    c.qualifier = ref.qualifier.empty() ? kLatest : ref.qualifier;
    Violations v;
    bool any = false;
    for (const char* field : {"MaximumRetryAttempts", "MaximumEventAgeInSeconds"}) {
      auto it = body.find(field);
      if (it == body.end() || it->is_null()) continue;
      if (!it->is_number_integer()) return *TypeError(field, "an integer");
      int64_t n = it->get<int64_t>();
      any = true;
      if (std::string(field) == "MaximumRetryAttempts") {
        if (n < 0)
          v.Add(std::to_string(n), "maximumRetryAttempts",
                "Member must have value greater than or equal to 0");
        if (n > 2)
          v.Add(std::to_string(n), "maximumRetryAttempts",
                "Member must have value less than or equal to 2");
        c.maximum_retry_attempts = static_cast<int>(n);
      } else {
        if (n < 60)
          v.Add(std::to_string(n), "maximumEventAgeInSeconds",
                "Member must have value greater than or equal to 60");
        if (n > 21600)
          v.Add(std::to_string(n), "maximumEventAgeInSeconds",
                "Member must have value less than or equal to 21600");
        c.maximum_event_age_seconds = static_cast<int>(n);
      }
    }
    auto dc = body.find("DestinationConfig");
    if (dc != body.end() && !dc->is_null()) {
      if (!dc->is_object()) return *TypeError("DestinationConfig", "an object");
      any = true;
      for (const char* side : {"OnSuccess", "OnFailure"}) {
        auto it = dc->find(side);
        if (it == dc->end() || it->is_null()) continue;
        if (!it->is_object())
          return *TypeError(std::string("DestinationConfig.") + side, "an object");
        auto d = it->find("Destination");
        if (d == it->end() || d->is_null()) continue;
        if (!d->is_string())
          return *TypeError(std::string("DestinationConfig.") + side + ".Destination", "a string");
        std::string arn = d->get<std::string>();
        std::string field = std::string("destinationConfig.") +
                            (side[2] == 'S' ? "onSuccess" : "onFailure") + ".destination";
        std::vector<std::string_view> parts = base::Split(arn, ':');
        bool shaped = arn.empty() || (parts.size() >= 6 && parts[0] == "arn" &&
                                      parts[1].substr(0, 3) == "aws" && !parts[2].empty());
        for (char ch : parts.size() > 2 ? parts[2] : std::string_view())
          shaped = shaped && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-');
        if (!shaped) {
          v.Add(
              arn, field,
              "Member must satisfy regular expression pattern: "
              "$|kafka://([^.]([a-zA-Z0-9\\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:"
              "((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1})?:(\\d{12})?:(.*)",
              true);
          continue;
        }
        if (arn.empty()) continue;
        if (parts[2] != "lambda" && parts[2] != "sqs" && parts[2] != "sns" &&
            parts[2] != "events" && parts[2] != "s3")
          return InvalidParameter(
              "The provided destination config DestinationConfig(onSuccess=" +
              std::string(side[2] == 'S' ? "OnSuccess(destination=" + arn + ")" : "null") +
              ", onFailure=" +
              std::string(side[2] == 'F' ? "OnFailure(destination=" + arn + ")" : "null") +
              ") is invalid.");
        if (async_ != nullptr) {
          base::Status st = async_->CheckDestination(ref.name, arn);
          if (!st.ok()) return InvalidParameter(st.message());
        }
        (side[2] == 'S' ? c.on_success : c.on_failure) = arn;
      }
    }
    if (!v.empty()) return v.ToError();
    if (!any && !merge)
      return InvalidParameter(
          "You must specify at least one of error handling or destination setting.");
    auto out = l_.PutEventInvokeConfig(ref.name, c, merge);
    if (!out.ok()) {
      if (out.status().code() == base::Code::kNotFound) {
        if (out.status().message() == "config") return NoEventInvokeConfig(ref.name, c.qualifier);
        return aws::MakeError(404, "ResourceNotFoundException", "The function doesn't exist.");
      }
      return Err(out.status(), ref.name);
    }
    return RestResponse::FromJson(EventInvokeJson(ref.name, out.value()));
  }

  Outcome<RestResponse> PutFunctionEventInvokeConfig(const RestRequest& req, Call&) {
    return WriteEventInvokeConfig(req, false);
  }
  Outcome<RestResponse> UpdateFunctionEventInvokeConfig(const RestRequest& req, Call&) {
    return WriteEventInvokeConfig(req, true);
  }

  Outcome<RestResponse> GetFunctionEventInvokeConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    auto c = l_.GetEventInvokeConfig(ref.name, ref.qualifier);
    if (!c.ok()) return Err(c.status(), ref.name);
    if (!c.value()) return NoEventInvokeConfig(ref.name, ref.qualifier);
    return RestResponse::FromJson(EventInvokeJson(ref.name, *c.value()));
  }

  Outcome<RestResponse> DeleteFunctionEventInvokeConfig(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, true));
    base::Status st = l_.DeleteEventInvokeConfig(ref.name, ref.qualifier);
    if (st.code() == base::Code::kNotFound) return NoEventInvokeConfig(ref.name, ref.qualifier);
    if (!st.ok()) return Err(st, ref.name);
    return NoContent();
  }

  Outcome<RestResponse> ListFunctionEventInvokeConfigs(const RestRequest& req, Call&) {
    LAMBDA_REF(ref, RefOf(l_, req, false));
    int max_items = 50;
    if (const std::string* m = req.Query("MaxItems")) {
      if (!AllDigits(*m) || m->empty() || m->size() > 3 || std::stoi(*m) < 1 || std::stoi(*m) > 50)
        return Validation(*m, "maxItems", "Member must have value less than or equal to 50");
      max_items = std::stoi(*m);
    }
    const std::string* marker = req.Query("Marker");
    auto page = l_.ListEventInvokeConfigs(ref.name, marker ? *marker : "", max_items);
    if (!page.ok()) {
      if (page.status().code() == base::Code::kNotFound)
        return aws::MakeError(404, "ResourceNotFoundException", "The function doesn't exist.");
      return Err(page.status(), ref.name);
    }
    json items = json::array();
    for (const auto& c : page.value().items) items.push_back(EventInvokeJson(ref.name, c));
    json out{{"FunctionEventInvokeConfigs", items}};
    if (!page.value().next_marker.empty()) out["NextMarker"] = page.value().next_marker;
    return RestResponse::FromJson(out);
  }

  void Invoke(RestRequest req, const Call& call, std::function<void(Outcome<RestResponse>)> done) {
    auto ref = RefOf(l_, req, true);
    if (!ref.ok()) return done(ref.error());
    if (invoker_ == nullptr)
      return done(
          aws::MakeError(500, "ServiceException", "Invoke is not available on this server."));
    InvokeRequest ir;
    ir.function_name = ref.value().name;
    ir.qualifier = ref.value().qualifier;
    ir.request_id = call.request_id;
    const http::Request& h = *req.http;
    if (const std::string* t = h.Find("X-Amz-Invocation-Type")) {
      if (*t == "Event") {
        ir.type = InvocationType::kEvent;
      } else if (*t == "DryRun") {
        ir.type = InvocationType::kDryRun;
      } else if (*t != "RequestResponse") {
        return done(Validation(*t, "invocationType",
                               "Member must satisfy enum value set: [Event, RequestResponse, "
                               "DryRun]"));
      }
    }
    if (const std::string* lt = h.Find("X-Amz-Log-Type")) {
      if (*lt == "Tail") {
        ir.tail_log = ir.type == InvocationType::kRequestResponse;
      } else if (*lt != "None") {
        return done(Validation(*lt, "logType", "Member must satisfy enum value set: [None, Tail]"));
      }
    }
    if (const std::string* cc = h.Find("X-Amz-Client-Context")) ir.client_context = *cc;
    // No payload is an empty JSON object to the function, as with Lambda.
    ir.payload = h.body.empty() ? "{}" : h.body;
    std::string name = ir.function_name;
    Lambda* l = &l_;
    if (ir.type == InvocationType::kEvent && async_ != nullptr) {
      async_->Enqueue(
          std::move(ir), [done = std::move(done), name, l](base::Result<std::string> r) {
            if (!r.ok()) {
              const base::Status& s = r.status();
              if (s.code() == base::Code::kInvalidArgument) {
                std::string limit = s.message().substr(s.message().find(' ') + 1);
                return done(aws::MakeError(413, "RequestTooLargeException",
                                           "Request must be smaller than " + limit +
                                               " bytes for the InvokeFunction operation"));
              }
              if (s.code() == base::Code::kUnavailable)
                return done(aws::MakeError(503, "ServiceException", s.message()));
              return done(ToError(*l, s, name));
            }
            RestResponse out;
            out.status = 202;
            done(std::move(out));
          });
      return;
    }
    invoker_->Invoke(
        std::move(ir), [done = std::move(done), name, l](base::Result<InvokeResult> r) {
          if (!r.ok()) {
            const base::Status& s = r.status();
            if (s.code() == base::Code::kResourceExhausted) {
              aws::Error e = aws::MakeError(429, "TooManyRequestsException", "Rate Exceeded.");
              e.extra.emplace_back("Reason", s.message());
              return done(e);
            }
            if (s.code() == base::Code::kInvalidArgument) {
              // "<size> <limit>" from the invoker's payload check.
              std::string limit = s.message().substr(s.message().find(' ') + 1);
              return done(aws::MakeError(413, "RequestTooLargeException",
                                         "Request must be smaller than " + limit +
                                             " bytes for the InvokeFunction operation"));
            }
            if (s.code() == base::Code::kUnavailable)
              return done(aws::MakeError(503, "ServiceException", s.message()));
            return done(ToError(*l, s, name));
          }
          InvokeResult& res = r.value();
          RestResponse out;
          out.status = res.status;
          out.body = std::move(res.payload);
          out.content_type = res.status == 200 ? "application/json" : "";
          if (!res.executed_version.empty() && res.status != 202)
            out.headers.push_back({"X-Amz-Executed-Version", res.executed_version});
          if (!res.function_error.empty())
            out.headers.push_back({"X-Amz-Function-Error", res.function_error});
          if (!res.log_result.empty()) out.headers.push_back({"X-Amz-Log-Result", res.log_result});
          done(std::move(out));
        });
  }

  Lambda& l_;
  Invoker* invoker_;
  AsyncQueue* async_;
  std::string url_host_;
  EventSourceMappings* esm_;
  S3CodeFetcher fetch_code_;
};

}  // namespace

std::unique_ptr<aws::Service> MakeLambdaService(Lambda& lambda, Invoker* invoker, AsyncQueue* async,
                                                const std::string& url_host,
                                                EventSourceMappings* esm,
                                                S3CodeFetcher fetch_code) {
  // The routes object owns nothing but references; it lives as long as the handlers do.
  auto routes =
      std::make_shared<Routes>(lambda, invoker, async, url_host, esm, std::move(fetch_code));
  auto svc = routes->Build(routes);
  return svc;
}

}  // namespace lambda
