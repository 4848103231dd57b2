#include "services/lambda/lambda.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "auth/policy.h"
#include "base/crypto.h"
#include "base/ids.h"
#include "base/strings.h"
#include "image/image_store.h"
#include "services/lambda/zip.h"

namespace lambda {

namespace {

using nlohmann::json;

constexpr int kMaxAttempts = 8;  // compare failures from concurrent writers before Aborted

const std::string kNamesPrefix = "/lambda/names/";
const std::string kConcurrencyKey = "/lambda/account/concurrency";

std::string FnPrefix(const std::string& name) { return "/lambda/functions/" + name + "/"; }
std::string LatestKey(const std::string& name) { return FnPrefix(name) + "latest"; }
std::string VersionsPrefix(const std::string& name) { return FnPrefix(name) + "versions/"; }
std::string VersionKey(const std::string& name, int64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%010lld", static_cast<long long>(v));
  return VersionsPrefix(name) + buf;
}
std::string AliasesPrefix(const std::string& name) { return FnPrefix(name) + "aliases/"; }
std::string AliasKey(const std::string& name, const std::string& a) {
  return AliasesPrefix(name) + a;
}
std::string TagsKey(const std::string& name) { return FnPrefix(name) + "tags"; }
std::string EventInvokePrefix(const std::string& name) { return FnPrefix(name) + "eventinvoke/"; }
std::string EventInvokeKey(const std::string& name, const std::string& qualifier) {
  return EventInvokePrefix(name) + qualifier;
}
std::string RefOwner(const std::string& name, const std::string& version) {
  return "lambda/" + name + "/" + version;
}
std::string LayerRefOwner(const std::string& name, const std::string& version) {
  return RefOwner(name, version) + "#layer";
}
const std::string kLayersPrefix = "/lambda/layers/";
std::string LayerPrefix(const std::string& name) { return kLayersPrefix + name + "/"; }
std::string LayerKey(const std::string& name, int64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%010lld", static_cast<long long>(v));
  return LayerPrefix(name) + buf;
}
std::string LayerNextKey(const std::string& name) { return "/lambda/layer-next/" + name; }
std::string QualSlot(const std::string& q) { return q.empty() || q == kLatest ? "_" : q; }
std::string UrlPrefix(const std::string& name) { return FnPrefix(name) + "url/"; }
std::string UrlKey(const std::string& name, const std::string& q) {
  return UrlPrefix(name) + QualSlot(q);
}
std::string UrlIndexKey(const std::string& id) { return "/lambda/urls/" + id; }
std::string PolicyKey(const std::string& name, const std::string& q) {
  return FnPrefix(name) + "policy/" + QualSlot(q);
}

// A version number ("1".."9999999999"), or nullopt.
std::optional<int64_t> ParseVersion(const std::string& s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1) return std::nullopt;
  return v;
}

// The $LATEST record: the configuration plus bookkeeping for publishing.
struct LatestRecord {
  FunctionConfig config;
  int64_t last_version = 0;  // highest published version number
  bool changed_since_publish = true;
};

json LayersToJson(const std::vector<LayerRef>& layers) {
  json a = json::array();
  for (const auto& l : layers)
    a.push_back({{"arn", l.arn}, {"digest", l.digest}, {"size", l.size}});
  return a;
}

json ImageOverridesToJson(const ImageOverrides& o) {
  json j = json::object();
  if (o.entry_point) j["entry_point"] = *o.entry_point;
  if (o.command) j["command"] = *o.command;
  if (o.working_directory) j["working_directory"] = *o.working_directory;
  return j;
}

ImageOverrides ImageOverridesFromJson(const json& j) {
  ImageOverrides o;
  if (!j.is_object()) return o;
  if (j.contains("entry_point")) o.entry_point = j["entry_point"].get<std::vector<std::string>>();
  if (j.contains("command")) o.command = j["command"].get<std::vector<std::string>>();
  if (j.contains("working_directory"))
    o.working_directory = j["working_directory"].get<std::string>();
  return o;
}

json ConfigToJson(const FunctionConfig& c) {
  return json{{"name", c.name},
              {"version", c.version},
              {"runtime", c.runtime},
              {"role", c.role},
              {"handler", c.handler},
              {"description", c.description},
              {"timeout", c.timeout},
              {"memory_size", c.memory_size},
              {"ephemeral_storage", c.ephemeral_storage},
              {"dead_letter_arn", c.dead_letter_arn},
              {"environment", c.environment},
              {"code_digest", c.code_digest},
              {"code_size", c.code_size},
              {"code_sha256", c.code_sha256},
              {"layers", LayersToJson(c.layers)},
              {"last_modified", c.last_modified},
              {"revision_id", c.revision_id},
              {"state", c.state},
              {"state_reason", c.state_reason},
              {"state_reason_code", c.state_reason_code},
              {"last_update_status", c.last_update_status},
              {"last_update_status_reason", c.last_update_status_reason},
              {"last_update_status_reason_code", c.last_update_status_reason_code},
              {"package_type", c.package_type},
              {"image_uri", c.image_uri},
              {"image_repository", c.image_repository},
              {"image_config", ImageOverridesToJson(c.image_config)}};
}

base::Result<FunctionConfig> ConfigFromJson(const json& j) {
  if (!j.is_object()) return base::Corruption("lambda: function record is not an object");
  FunctionConfig c;
  try {
    c.name = j.at("name").get<std::string>();
    c.version = j.at("version").get<std::string>();
    c.runtime = j.at("runtime").get<std::string>();
    c.role = j.at("role").get<std::string>();
    c.handler = j.at("handler").get<std::string>();
    c.description = j.at("description").get<std::string>();
    c.timeout = j.at("timeout").get<int>();
    c.memory_size = j.at("memory_size").get<int>();
    c.ephemeral_storage = j.at("ephemeral_storage").get<int>();
    c.environment = j.at("environment").get<std::map<std::string, std::string>>();
    c.code_digest = j.at("code_digest").get<std::string>();
    c.code_size = j.at("code_size").get<uint64_t>();
    c.code_sha256 = j.at("code_sha256").get<std::string>();
    c.last_modified = j.at("last_modified").get<std::string>();
    c.revision_id = j.at("revision_id").get<std::string>();
    if (j.contains("layers"))
      for (const auto& l : j["layers"])
        c.layers.push_back(LayerRef{l.at("arn").get<std::string>(),
                                    l.at("digest").get<std::string>(),
                                    l.at("size").get<uint64_t>()});
    c.dead_letter_arn = j.value("dead_letter_arn", std::string());
    // Records written before states existed are Active.
    c.state = j.value("state", std::string("Active"));
    c.state_reason = j.value("state_reason", std::string());
    c.state_reason_code = j.value("state_reason_code", std::string());
    c.last_update_status = j.value("last_update_status", std::string("Successful"));
    c.last_update_status_reason = j.value("last_update_status_reason", std::string());
    c.last_update_status_reason_code = j.value("last_update_status_reason_code", std::string());
    // Records written before container-image functions are Zip.
    c.package_type = j.value("package_type", std::string("Zip"));
    c.image_uri = j.value("image_uri", std::string());
    c.image_repository = j.value("image_repository", std::string());
    if (j.contains("image_config")) c.image_config = ImageOverridesFromJson(j["image_config"]);
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad function record: ") + e.what());
  }
  return c;
}

std::string EncodeLatest(const LatestRecord& r) {
  json j = ConfigToJson(r.config);
  j["last_version"] = r.last_version;
  j["changed_since_publish"] = r.changed_since_publish;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

base::Result<LatestRecord> DecodeLatest(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded()) return base::Corruption("lambda: $LATEST record is not JSON");
  LatestRecord r;
  ASSIGN_OR_RETURN(r.config, ConfigFromJson(j));
  r.last_version = j.value("last_version", int64_t{0});
  r.changed_since_publish = j.value("changed_since_publish", true);
  return r;
}

base::Result<FunctionConfig> DecodeConfig(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (j.is_discarded()) return base::Corruption("lambda: version record is not JSON");
  return ConfigFromJson(j);
}

std::string EncodeAlias(const Alias& a) {
  return json{{"name", a.name},
              {"function_version", a.function_version},
              {"description", a.description},
              {"weights", a.additional_weights},
              {"revision_id", a.revision_id}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

base::Result<Alias> DecodeAlias(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: alias record is not JSON");
  Alias a;
  try {
    a.name = j.at("name").get<std::string>();
    a.function_version = j.at("function_version").get<std::string>();
    a.description = j.at("description").get<std::string>();
    a.additional_weights = j.at("weights").get<std::map<std::string, double>>();
    a.revision_id = j.at("revision_id").get<std::string>();
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad alias record: ") + e.what());
  }
  return a;
}

std::string EncodeLayer(const LayerVersion& l) {
  return json{{"name", l.name},
              {"version", l.version},
              {"description", l.description},
              {"license_info", l.license_info},
              {"runtimes", l.compatible_runtimes},
              {"architectures", l.compatible_architectures},
              {"digest", l.digest},
              {"size", l.code_size},
              {"sha256", l.code_sha256},
              {"created", l.created_date}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

base::Result<LayerVersion> DecodeLayer(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: layer record is not JSON");
  LayerVersion l;
  try {
    l.name = j.at("name").get<std::string>();
    l.version = j.at("version").get<int64_t>();
    l.description = j.at("description").get<std::string>();
    l.license_info = j.at("license_info").get<std::string>();
    l.compatible_runtimes = j.at("runtimes").get<std::vector<std::string>>();
    l.compatible_architectures = j.at("architectures").get<std::vector<std::string>>();
    l.digest = j.at("digest").get<std::string>();
    l.code_size = j.at("size").get<uint64_t>();
    l.code_sha256 = j.at("sha256").get<std::string>();
    l.created_date = j.at("created").get<std::string>();
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad layer record: ") + e.what());
  }
  return l;
}

json CorsToJson(const UrlCors& c) {
  json j{{"allow_credentials", c.allow_credentials},
         {"allow_headers", c.allow_headers},
         {"allow_methods", c.allow_methods},
         {"allow_origins", c.allow_origins},
         {"expose_headers", c.expose_headers}};
  if (c.max_age) j["max_age"] = *c.max_age;
  return j;
}

std::string EncodeUrl(const FunctionUrlConfig& c) {
  json j{{"name", c.function_name},
         {"qualifier", c.qualifier},
         {"url_id", c.url_id},
         {"auth_type", c.auth_type},
         {"invoke_mode", c.invoke_mode},
         {"created", c.creation_time},
         {"modified", c.last_modified_time}};
  if (c.cors) j["cors"] = CorsToJson(*c.cors);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

base::Result<FunctionUrlConfig> DecodeUrl(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: url record is not JSON");
  FunctionUrlConfig c;
  try {
    c.function_name = j.at("name").get<std::string>();
    c.qualifier = j.at("qualifier").get<std::string>();
    c.url_id = j.at("url_id").get<std::string>();
    c.auth_type = j.at("auth_type").get<std::string>();
    c.invoke_mode = j.at("invoke_mode").get<std::string>();
    c.creation_time = j.at("created").get<std::string>();
    c.last_modified_time = j.at("modified").get<std::string>();
    if (j.contains("cors")) {
      const json& k = j["cors"];
      UrlCors cors;
      cors.allow_credentials = k.at("allow_credentials").get<bool>();
      cors.allow_headers = k.at("allow_headers").get<std::vector<std::string>>();
      cors.allow_methods = k.at("allow_methods").get<std::vector<std::string>>();
      cors.allow_origins = k.at("allow_origins").get<std::vector<std::string>>();
      cors.expose_headers = k.at("expose_headers").get<std::vector<std::string>>();
      if (k.contains("max_age")) cors.max_age = k["max_age"].get<int>();
      c.cors = std::move(cors);
    }
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad url record: ") + e.what());
  }
  return c;
}

std::string EncodeEventInvoke(const EventInvokeConfig& c) {
  json j{{"qualifier", c.qualifier},
         {"on_success", c.on_success},
         {"on_failure", c.on_failure},
         {"last_modified", c.last_modified}};
  if (c.maximum_retry_attempts) j["max_retries"] = *c.maximum_retry_attempts;
  if (c.maximum_event_age_seconds) j["max_age"] = *c.maximum_event_age_seconds;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

base::Result<EventInvokeConfig> DecodeEventInvoke(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: event invoke record is not JSON");
  EventInvokeConfig c;
  try {
    c.qualifier = j.at("qualifier").get<std::string>();
    c.on_success = j.at("on_success").get<std::string>();
    c.on_failure = j.at("on_failure").get<std::string>();
    c.last_modified = j.at("last_modified").get<double>();
    if (j.contains("max_retries")) c.maximum_retry_attempts = j["max_retries"].get<int>();
    if (j.contains("max_age")) c.maximum_event_age_seconds = j["max_age"].get<int>();
  } catch (const json::exception& e) {
    return base::Corruption(std::string("lambda: bad event invoke record: ") + e.what());
  }
  return c;
}

using StringMap = std::map<std::string, std::string>;

base::Result<StringMap> DecodeStringMap(const std::string& s) {
  if (s.empty()) return StringMap{};
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: map record is not a JSON object");
  StringMap m;
  for (auto& [k, v] : j.items()) {
    if (!v.is_string()) return base::Corruption("lambda: map record value is not a string");
    m[k] = v.get<std::string>();
  }
  return m;
}

using CountMap = std::map<std::string, int64_t>;

base::Result<CountMap> DecodeCountMap(const std::string& s) {
  if (s.empty()) return CountMap{};
  json j = json::parse(s, nullptr, false);
  if (!j.is_object()) return base::Corruption("lambda: concurrency record is not an object");
  CountMap m;
  for (auto& [k, v] : j.items()) {
    if (!v.is_number_integer()) return base::Corruption("lambda: bad concurrency value");
    m[k] = v.get<int64_t>();
  }
  return m;
}

// "2026-11-24T03:00:00.123456Z", as function URL configs report their times.
std::string FormatUrlTime(base::SystemTime t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(us % 1000000));
  return buf;
}

std::string FormatLastModified(base::SystemTime t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+0000", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

uint64_t EnvironmentSize(const std::map<std::string, std::string>& env, std::string* measured) {
  *measured = json(env).dump(-1, ' ', false, json::error_handler_t::replace);
  return measured->size();
}

constexpr char kRevisionMismatch[] =
    "The Revision Id provided does not match the latest Revision Id. Call the "
    "GetFunction/GetAlias API to retrieve the latest Revision Id";

class LambdaImpl : public Lambda {
 public:
  LambdaImpl(store::Store* store, store::BlobStore* blobs, Options options)
      : store_(store), blobs_(blobs), options_(std::move(options)) {
    if (!options_.clock) options_.clock = &base::SystemClock();
  }

  const Options& options() const override { return options_; }

  std::string FunctionArn(const std::string& name, const std::string& qualifier) const override {
    std::string arn =
        "arn:aws:lambda:" + options_.region + ":" + options_.account_id + ":function:" + name;
    if (!qualifier.empty()) arn += ":" + qualifier;
    return arn;
  }

  base::Result<FunctionConfig> CreateFunction(const CreateFunctionRequest& req) override {
    bool is_image = !req.image_uri.empty();
    auto make_code = [&]() { return is_image ? ImageCode(req.image_uri) : StoreCode(req.zip); };
    ASSIGN_OR_RETURN(Code code, make_code());
    LatestRecord rec;
    FunctionConfig& c = rec.config;
    c.name = req.name;
    if (is_image) {
      c.package_type = "Image";
      c.image_uri = req.image_uri;
      c.image_repository = code.repository;
    }
    ApplySettings(req.settings, &c);
    RETURN_IF_ERROR(CheckEnvironment(c.environment));
    if (req.settings.layers) {
      ASSIGN_OR_RETURN(c.layers, ResolveLayers(*req.settings.layers));
    }
    c.code_digest = code.digest;
    c.code_size = code.size;
    c.code_sha256 = code.sha256;
    Touch(&c);
    c.state = "Pending";
    c.state_reason = "The function is being created.";
    c.state_reason_code = "Creating";
    c.last_update_status.clear();

    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      store::Txn txn;
      txn.compares.push_back(store::Compare::KeyMissing(LatestKey(req.name)));
      txn.compares.push_back(blobs_->AddRefGuard(code.digest));
      LatestRecord to_write = rec;
      FunctionConfig published;
      if (req.publish) {
        published = rec.config;
        published.version = "1";
        published.revision_id = base::NewUuid();
        published.state = "Active";
        published.state_reason.clear();
        published.state_reason_code.clear();
        published.last_update_status = "Successful";
        to_write.last_version = 1;
        to_write.changed_since_publish = false;
        txn.success.push_back(store::Op::Put(
            VersionKey(req.name, 1),
            ConfigToJson(published).dump(-1, ' ', false, json::error_handler_t::replace)));
        AppendOps(&txn.success, blobs_->AddRefOps(code.digest, RefOwner(req.name, "1")));
        AddLayerRefs(c.layers, req.name, "1", &txn);
      }
      AddLayerRefs(c.layers, req.name, kLatest, &txn);
      txn.success.push_back(store::Op::Put(LatestKey(req.name), EncodeLatest(to_write)));
      txn.success.push_back(store::Op::Put(kNamesPrefix + req.name, ""));
      if (!req.tags.empty())
        txn.success.push_back(
            store::Op::Put(TagsKey(req.name),
                           json(req.tags).dump(-1, ' ', false, json::error_handler_t::replace)));
      else
        txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(TagsKey(req.name))));
      AppendOps(&txn.success, blobs_->AddRefOps(code.digest, RefOwner(req.name, kLatest)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return req.publish ? published : rec.config;
      ASSIGN_OR_RETURN(auto existing, store_->Get(LatestKey(req.name)));
      if (existing) return base::AlreadyExists("Function already exist: " + req.name);
      // The blob guard failed: a Gc() is deleting this digest. Put it again and retry.
      ASSIGN_OR_RETURN(Code again, make_code());
      (void)again;
    }
    return base::Aborted("CreateFunction " + req.name + ": too many concurrent changes");
  }

  base::Result<FunctionDetails> GetFunction(const std::string& name,
                                            const std::string& qualifier) override {
    FunctionDetails d;
    ASSIGN_OR_RETURN(d.config, Resolve(name, qualifier));
    if (!qualifier.empty() && qualifier != kLatest && !ParseVersion(qualifier)) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(AliasKey(name, qualifier)));
      if (kv) {
        ASSIGN_OR_RETURN(Alias a, DecodeAlias(kv->value));
        d.alias_weights = a.additional_weights;
      }
    }
    ASSIGN_OR_RETURN(d.tags, ListTags(name));
    ASSIGN_OR_RETURN(d.reserved_concurrency, GetFunctionConcurrency(name));
    return d;
  }

  base::Result<Page<FunctionConfig>> ListFunctions(const std::string& marker,
                                                   int max_items) override {
    store::RangeOptions ro;
    ro.keys_only = true;
    ro.limit = max_items;
    if (!marker.empty()) ro.start_after = kNamesPrefix + marker;
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(kNamesPrefix), ro));
    Page<FunctionConfig> page;
    for (const auto& kv : rr.kvs) {
      std::string name = kv.key.substr(kNamesPrefix.size());
      auto latest = ReadLatest(name);
      if (!latest.ok()) {
        if (latest.status().code() == base::Code::kNotFound) continue;  // deleted meanwhile
        return latest.status();
      }
      page.items.push_back(latest->first.config);
    }
    if (rr.more && !rr.kvs.empty())
      page.next_marker = rr.kvs.back().key.substr(kNamesPrefix.size());
    return page;
  }

  base::Result<FunctionConfig> UpdateFunctionCode(const std::string& name, const std::string& zip,
                                                  const std::string& revision_id,
                                                  bool publish) override {
    return UpdateCode(
        name, "", [&] { return StoreCode(zip); }, revision_id, publish);
  }

  base::Result<FunctionConfig> UpdateFunctionImage(const std::string& name,
                                                   const std::string& image_uri,
                                                   const std::string& revision_id,
                                                   bool publish) override {
    return UpdateCode(
        name, image_uri, [&] { return ImageCode(image_uri); }, revision_id, publish);
  }

  // `image_uri` empty: a zip update. The package type cannot change (AWS's rule).
  template <typename MakeCode>
  base::Result<FunctionConfig> UpdateCode(const std::string& name, const std::string& image_uri,
                                          const MakeCode& make_code, const std::string& revision_id,
                                          bool publish) {
    {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      bool was_image = latest.first.config.package_type == "Image";
      if (was_image && image_uri.empty())
        return base::InvalidArgument(
            "Please provide ImageUri when updating a function with packageType Image.");
      if (!was_image && !image_uri.empty())
        return base::InvalidArgument(
            "Please don't provide ImageUri when updating a function with packageType Zip.");
    }
    ASSIGN_OR_RETURN(auto code, make_code());
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      auto& [rec, rev] = latest;
      if (!revision_id.empty() && revision_id != rec.config.revision_id)
        return base::FailedPrecondition(kRevisionMismatch);
      std::string old_digest = rec.config.code_digest;
      if (!image_uri.empty()) {
        rec.config.image_uri = image_uri;
        rec.config.image_repository = code.repository;
      }
      rec.config.code_digest = code.digest;
      rec.config.code_size = code.size;
      rec.config.code_sha256 = code.sha256;
      Touch(&rec.config);
      MarkInProgress(&rec.config);
      rec.changed_since_publish = true;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), rev));
      txn.compares.push_back(blobs_->AddRefGuard(code.digest));
      if (old_digest != code.digest) {
        AppendOps(&txn.success, blobs_->DropRefOps(old_digest, RefOwner(name, kLatest)));
        AppendOps(&txn.success, blobs_->AddRefOps(code.digest, RefOwner(name, kLatest)));
      }
      txn.success.push_back(store::Op::Put(LatestKey(name), EncodeLatest(rec)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) {
        if (publish) return PublishVersion(name, "", "", "");
        return rec.config;
      }
      ASSIGN_OR_RETURN(auto again, make_code());  // in case the guard failed
      (void)again;
    }
    return base::Aborted("UpdateFunctionCode " + name + ": too many concurrent changes");
  }

  base::Result<FunctionConfig> UpdateFunctionConfiguration(
      const std::string& name, const FunctionSettings& settings,
      const std::string& revision_id) override {
    if (settings.environment) RETURN_IF_ERROR(CheckEnvironment(*settings.environment));
    std::optional<std::vector<LayerRef>> layers;
    if (settings.layers) {
      ASSIGN_OR_RETURN(layers, ResolveLayers(*settings.layers));
    }
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      auto& [rec, rev] = latest;
      if (!revision_id.empty() && revision_id != rec.config.revision_id)
        return base::FailedPrecondition(kRevisionMismatch);
      bool image = rec.config.package_type == "Image";
      if (settings.image_config && !image)
        return base::InvalidArgument(
            "ImageConfig is only supported for functions with packageType Image.");
      if (image && ((layers && !layers->empty()) || settings.runtime || settings.handler))
        return base::InvalidArgument(
            "Runtime, Handler and Layers are not supported for functions with packageType Image.");
      std::vector<LayerRef> old_layers = rec.config.layers;
      ApplySettings(settings, &rec.config);
      if (layers) rec.config.layers = *layers;
      Touch(&rec.config);
      MarkInProgress(&rec.config);
      rec.changed_since_publish = true;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), rev));
      if (layers && *layers != old_layers) {
        DropLayerRefs(old_layers, name, kLatest, &txn);
        AddLayerRefs(*layers, name, kLatest, &txn);
      }
      txn.success.push_back(store::Op::Put(LatestKey(name), EncodeLatest(rec)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return rec.config;
    }
    return base::Aborted("UpdateFunctionConfiguration " + name + ": too many concurrent changes");
  }

  base::Status DeleteFunction(const std::string& name, const std::string& qualifier) override {
    if (qualifier == kLatest)
      return base::InvalidArgument(
          "$LATEST version cannot be deleted without deleting the function.");
    if (!qualifier.empty()) return DeleteVersion(name, qualifier);
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      auto& [rec, rev] = latest;
      ASSIGN_OR_RETURN(store::RangeResult versions,
                       store_->Range(store::KeyRange::Prefix(VersionsPrefix(name))));
      ASSIGN_OR_RETURN(auto conc, store_->Get(kConcurrencyKey));
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), rev));
      AppendOps(&txn.success, blobs_->DropRefOps(rec.config.code_digest, RefOwner(name, kLatest)));
      DropLayerRefs(rec.config.layers, name, kLatest, &txn);
      ASSIGN_OR_RETURN(store::RangeResult urls,
                       store_->Range(store::KeyRange::Prefix(UrlPrefix(name))));
      for (const auto& u : urls.kvs) {
        auto url = DecodeUrl(u.value);
        if (url.ok())
          txn.success.push_back(
              store::Op::Delete(store::KeyRange::Exact(UrlIndexKey(url->url_id))));
      }
      for (const auto& kv : versions.kvs) {
        ASSIGN_OR_RETURN(FunctionConfig v, DecodeConfig(kv.value));
        AppendOps(&txn.success, blobs_->DropRefOps(v.code_digest, RefOwner(name, v.version)));
        DropLayerRefs(v.layers, name, v.version, &txn);
      }
      if (conc) {
        ASSIGN_OR_RETURN(CountMap m, DecodeCountMap(conc->value));
        if (m.erase(name)) {
          txn.compares.push_back(
              store::Compare::ModRevisionIs(kConcurrencyKey, conc->mod_revision));
          txn.success.push_back(store::Op::Put(
              kConcurrencyKey, json(m).dump(-1, ' ', false, json::error_handler_t::replace)));
        }
      }
      txn.success.push_back(store::Op::Delete(store::KeyRange::Prefix(FnPrefix(name))));
      txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kNamesPrefix + name)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("DeleteFunction " + name + ": too many concurrent changes");
  }

  base::Result<FunctionConfig> PublishVersion(const std::string& name,
                                              const std::string& description,
                                              const std::string& code_sha256,
                                              const std::string& revision_id) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      auto& [rec, rev] = latest;
      if (!revision_id.empty() && revision_id != rec.config.revision_id)
        return base::FailedPrecondition(kRevisionMismatch);
      if (!code_sha256.empty() && code_sha256 != rec.config.code_sha256)
        return base::InvalidArgument(
            "CodeSHA256 (" + code_sha256 + ") is different from current CodeSHA256 in $LATEST (" +
            rec.config.code_sha256 + "). Please try again with the CodeSHA256 in $LATEST.");
      if (!rec.changed_since_publish && rec.last_version > 0) {
        ASSIGN_OR_RETURN(auto kv, store_->Get(VersionKey(name, rec.last_version)));
        if (kv) return DecodeConfig(kv->value);
      }
      int64_t number = rec.last_version + 1;
      FunctionConfig v = rec.config;
      v.version = std::to_string(number);
      v.description = description.empty() ? rec.config.description : description;
      v.revision_id = base::NewUuid();
      v.last_modified = FormatLastModified(options_.clock->Now());
      v.state = "Active";
      v.state_reason.clear();
      v.state_reason_code.clear();
      v.last_update_status = "Successful";
      v.last_update_status_reason.clear();
      v.last_update_status_reason_code.clear();
      rec.last_version = number;
      rec.changed_since_publish = false;
      rec.config.revision_id = base::NewUuid();
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), rev));
      txn.compares.push_back(store::Compare::KeyMissing(VersionKey(name, number)));
      txn.compares.push_back(blobs_->AddRefGuard(v.code_digest));
      AppendOps(&txn.success, blobs_->AddRefOps(v.code_digest, RefOwner(name, v.version)));
      AddLayerRefs(v.layers, name, v.version, &txn);
      txn.success.push_back(
          store::Op::Put(VersionKey(name, number),
                         ConfigToJson(v).dump(-1, ' ', false, json::error_handler_t::replace)));
      txn.success.push_back(store::Op::Put(LatestKey(name), EncodeLatest(rec)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return v;
    }
    return base::Aborted("PublishVersion " + name + ": too many concurrent changes");
  }

  base::Result<Page<FunctionConfig>> ListVersions(const std::string& name,
                                                  const std::string& marker,
                                                  int max_items) override {
    ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
    Page<FunctionConfig> page;
    int64_t after = 0;
    if (marker.empty()) {
      page.items.push_back(latest.first.config);
    } else if (marker != kLatest) {
      auto v = ParseVersion(marker);
      if (!v) return base::InvalidArgument("Invalid marker: " + marker);
      after = *v;
    }
    if (static_cast<int>(page.items.size()) >= max_items) {
      page.next_marker = kLatest;
      return page;
    }
    store::RangeOptions ro;
    ro.limit = max_items - static_cast<int>(page.items.size());
    if (after > 0) ro.start_after = VersionKey(name, after);
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(VersionsPrefix(name)), ro));
    for (const auto& kv : rr.kvs) {
      ASSIGN_OR_RETURN(FunctionConfig c, DecodeConfig(kv.value));
      page.items.push_back(std::move(c));
    }
    if (rr.more && !page.items.empty()) page.next_marker = page.items.back().version;
    return page;
  }

  base::Result<Alias> CreateAlias(const std::string& name, const Alias& in) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), latest.second));
      txn.compares.push_back(store::Compare::KeyMissing(AliasKey(name, in.name)));
      RETURN_IF_ERROR(CheckAliasTargets(name, in.function_version, in.additional_weights, &txn));
      Alias a = in;
      a.revision_id = base::NewUuid();
      txn.success.push_back(store::Op::Put(AliasKey(name, a.name), EncodeAlias(a)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return a;
      ASSIGN_OR_RETURN(auto existing, store_->Get(AliasKey(name, in.name)));
      if (existing)
        return base::AlreadyExists("Alias already exists: " + FunctionArn(name, in.name));
    }
    return base::Aborted("CreateAlias " + name + ": too many concurrent changes");
  }

  base::Result<Alias> GetAlias(const std::string& name, const std::string& alias) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(AliasKey(name, alias)));
    if (!kv) return base::NotFound("Cannot find alias arn: " + FunctionArn(name, alias));
    return DecodeAlias(kv->value);
  }

  base::Result<Page<Alias>> ListAliases(const std::string& name,
                                        const std::string& function_version,
                                        const std::string& marker, int max_items) override {
    ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
    (void)latest;
    store::RangeOptions ro;
    if (!marker.empty()) ro.start_after = AliasKey(name, marker);
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(AliasesPrefix(name)), ro));
    Page<Alias> page;
    for (const auto& kv : rr.kvs) {
      ASSIGN_OR_RETURN(Alias a, DecodeAlias(kv.value));
      if (!function_version.empty() && a.function_version != function_version) continue;
      if (static_cast<int>(page.items.size()) >= max_items) {
        page.next_marker = page.items.back().name;
        break;
      }
      page.items.push_back(std::move(a));
    }
    return page;
  }

  base::Result<Alias> UpdateAlias(const std::string& name, const std::string& alias,
                                  const AliasUpdate& update) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(AliasKey(name, alias)));
      if (!kv) return base::NotFound("Alias not found: " + FunctionArn(name, alias));
      ASSIGN_OR_RETURN(Alias a, DecodeAlias(kv->value));
      if (!update.revision_id.empty() && update.revision_id != a.revision_id)
        return base::FailedPrecondition(kRevisionMismatch);
      if (update.function_version) a.function_version = *update.function_version;
      if (update.description) a.description = *update.description;
      if (update.additional_weights) a.additional_weights = *update.additional_weights;
      a.revision_id = base::NewUuid();
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(AliasKey(name, alias), kv->mod_revision));
      RETURN_IF_ERROR(CheckAliasTargets(name, a.function_version, a.additional_weights, &txn));
      txn.success.push_back(store::Op::Put(AliasKey(name, alias), EncodeAlias(a)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return a;
    }
    return base::Aborted("UpdateAlias " + name + ": too many concurrent changes");
  }

  base::Status DeleteAlias(const std::string& name, const std::string& alias) override {
    // As AWS: deleting an alias that does not exist succeeds. Its event invoke config goes
    // with it.
    store::Txn txn;
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(AliasKey(name, alias))));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(EventInvokeKey(name, alias))));
    return CommitTxn(txn).status();
  }

  base::Result<EventInvokeConfig> PutEventInvokeConfig(const std::string& name,
                                                       const EventInvokeConfig& in,
                                                       bool merge) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, store_->Get(LatestKey(name)));
      if (!latest) return base::NotFound("function");
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(latest->key, latest->mod_revision));
      std::string qualifier = in.qualifier.empty() ? kLatest : in.qualifier;
      if (qualifier != kLatest) {
        auto number = ParseVersion(qualifier);
        std::string key = number ? VersionKey(name, *number) : AliasKey(name, qualifier);
        ASSIGN_OR_RETURN(auto target, store_->Get(key));
        if (!target) return base::NotFound("function");
        txn.compares.push_back(store::Compare::ModRevisionIs(key, target->mod_revision));
      }
      std::string key = EventInvokeKey(name, qualifier);
      ASSIGN_OR_RETURN(auto existing, store_->Get(key));
      EventInvokeConfig out = in;
      out.qualifier = qualifier;
      if (merge) {
        if (!existing) return base::NotFound("config");
        ASSIGN_OR_RETURN(EventInvokeConfig old, DecodeEventInvoke(existing->value));
        if (!in.maximum_retry_attempts) out.maximum_retry_attempts = old.maximum_retry_attempts;
        if (!in.maximum_event_age_seconds)
          out.maximum_event_age_seconds = old.maximum_event_age_seconds;
        if (in.on_success.empty()) out.on_success = old.on_success;
        if (in.on_failure.empty()) out.on_failure = old.on_failure;
      }
      out.last_modified =
          std::chrono::duration<double>(options_.clock->Now().time_since_epoch()).count();
      txn.compares.push_back(
          store::Compare::ModRevisionIs(key, existing ? existing->mod_revision : 0));
      txn.success.push_back(store::Op::Put(key, EncodeEventInvoke(out)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return out;
    }
    return base::Aborted("PutFunctionEventInvokeConfig " + name + ": too many concurrent changes");
  }

  base::Result<std::optional<EventInvokeConfig>> GetEventInvokeConfig(
      const std::string& name, const std::string& qualifier) override {
    ASSIGN_OR_RETURN(auto kv,
                     store_->Get(EventInvokeKey(name, qualifier.empty() ? kLatest : qualifier)));
    if (!kv) return std::optional<EventInvokeConfig>();
    ASSIGN_OR_RETURN(EventInvokeConfig c, DecodeEventInvoke(kv->value));
    return std::optional<EventInvokeConfig>(std::move(c));
  }

  base::Status DeleteEventInvokeConfig(const std::string& name,
                                       const std::string& qualifier) override {
    std::string key = EventInvokeKey(name, qualifier.empty() ? kLatest : qualifier);
    ASSIGN_OR_RETURN(int64_t n, store_->Delete(store::KeyRange::Exact(key)));
    if (n == 0) return base::NotFound("config");
    return base::Status::Ok();
  }

  base::Result<Page<EventInvokeConfig>> ListEventInvokeConfigs(const std::string& name,
                                                               const std::string& marker,
                                                               int max_items) override {
    ASSIGN_OR_RETURN(auto latest, store_->Get(LatestKey(name)));
    if (!latest) return base::NotFound("function");
    store::RangeOptions ro;
    if (!marker.empty()) ro.start_after = EventInvokeKey(name, marker);
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(EventInvokePrefix(name)), ro));
    Page<EventInvokeConfig> page;
    for (const auto& kv : rr.kvs) {
      if (static_cast<int>(page.items.size()) >= max_items) {
        page.next_marker = page.items.back().qualifier;
        break;
      }
      ASSIGN_OR_RETURN(EventInvokeConfig c, DecodeEventInvoke(kv.value));
      page.items.push_back(std::move(c));
    }
    return page;
  }

  base::Status PutFunctionConcurrency(const std::string& name, int64_t reserved) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      ASSIGN_OR_RETURN(auto conc, store_->Get(kConcurrencyKey));
      CountMap m;
      if (conc) {
        ASSIGN_OR_RETURN(m, DecodeCountMap(conc->value));
      }
      int64_t others = 0;
      for (const auto& [fn, n] : m)
        if (fn != name) others += n;
      if (options_.account_concurrency - others - reserved < options_.min_unreserved_concurrency)
        return base::InvalidArgument(
            "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [" +
            std::to_string(options_.min_unreserved_concurrency) + "].");
      m[name] = reserved;
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), latest.second));
      txn.compares.push_back(
          store::Compare::ModRevisionIs(kConcurrencyKey, conc ? conc->mod_revision : 0));
      txn.success.push_back(store::Op::Put(
          kConcurrencyKey, json(m).dump(-1, ' ', false, json::error_handler_t::replace)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("PutFunctionConcurrency " + name + ": too many concurrent changes");
  }

  base::Result<std::optional<int64_t>> GetFunctionConcurrency(const std::string& name) override {
    ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
    (void)latest;
    ASSIGN_OR_RETURN(auto conc, store_->Get(kConcurrencyKey));
    if (!conc) return std::optional<int64_t>();
    ASSIGN_OR_RETURN(CountMap m, DecodeCountMap(conc->value));
    auto it = m.find(name);
    if (it == m.end()) return std::optional<int64_t>();
    return std::optional<int64_t>(it->second);
  }

  base::Status DeleteFunctionConcurrency(const std::string& name) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      (void)latest;
      ASSIGN_OR_RETURN(auto conc, store_->Get(kConcurrencyKey));
      if (!conc) return base::Status::Ok();
      ASSIGN_OR_RETURN(CountMap m, DecodeCountMap(conc->value));
      if (!m.erase(name)) return base::Status::Ok();
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(kConcurrencyKey, conc->mod_revision));
      txn.success.push_back(store::Op::Put(
          kConcurrencyKey, json(m).dump(-1, ' ', false, json::error_handler_t::replace)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("DeleteFunctionConcurrency " + name + ": too many concurrent changes");
  }

  base::Result<AccountSettings> GetAccountSettings() override {
    AccountSettings s;
    s.concurrent_executions = options_.account_concurrency;
    ASSIGN_OR_RETURN(auto conc, store_->Get(kConcurrencyKey));
    int64_t reserved = 0;
    if (conc) {
      ASSIGN_OR_RETURN(CountMap m, DecodeCountMap(conc->value));
      for (const auto& [fn, n] : m) reserved += n;
    }
    s.unreserved_concurrent_executions = options_.account_concurrency - reserved;
    store::RangeOptions ro;
    ro.count_only = true;
    ASSIGN_OR_RETURN(store::RangeResult names,
                     store_->Range(store::KeyRange::Prefix(kNamesPrefix), ro));
    s.function_count = names.count;
    ASSIGN_OR_RETURN(store::RangeResult all,
                     store_->Range(store::KeyRange::Prefix("/lambda/functions/")));
    for (const auto& kv : all.kvs) {
      bool latest = kv.key.size() > 7 && kv.key.compare(kv.key.size() - 7, 7, "/latest") == 0;
      if (!latest && kv.key.find("/versions/") == std::string::npos) continue;
      ASSIGN_OR_RETURN(FunctionConfig c, DecodeConfig(kv.value));
      s.total_code_size += c.code_size;
    }
    return s;
  }

  base::Result<std::map<std::string, std::string>> ListTags(const std::string& name) override {
    ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
    (void)latest;
    ASSIGN_OR_RETURN(auto kv, store_->Get(TagsKey(name)));
    if (!kv) return StringMap{};
    return DecodeStringMap(kv->value);
  }

  base::Status TagResource(const std::string& name, const StringMap& tags) override {
    return ChangeTags(name, [&](StringMap* m) {
      for (const auto& [k, v] : tags) (*m)[k] = v;
    });
  }

  base::Status UntagResource(const std::string& name,
                             const std::vector<std::string>& keys) override {
    return ChangeTags(name, [&](StringMap* m) {
      for (const auto& k : keys) m->erase(k);
    });
  }

 private:
  struct Code {
    store::Digest digest;
    uint64_t size = 0;
    std::string sha256;
    std::string repository;  // Image functions
  };

  // A container image in the local registry: its manifest (already in the BlobStore) is
  // the function's code blob. CodeSha256 is the manifest digest's hex, as AWS reports it.
  base::Result<Code> ImageCode(const std::string& image_uri) {
    if (options_.images == nullptr)
      return base::InvalidArgument("Container image functions are not supported by this server.");
    auto ref = image::ParseReference(image_uri);
    if (!ref.ok()) return base::InvalidArgument("Source image " + image_uri + " is not valid.");
    auto img = options_.images->Resolve(ref->repository, ref->reference);
    if (!img.ok()) {
      if (img.status().code() == base::Code::kNotFound)
        return base::InvalidArgument("Source image " + image_uri +
                                     " does not exist. Provide a valid source image.");
      return base::InvalidArgument("Source image " + image_uri +
                                   " is not usable: " + img.status().message());
    }
    Code code;
    code.digest = img->manifest_digest;
    code.size = img->config_descriptor.size;
    for (const auto& l : img->layers) code.size += l.size;
    code.sha256 = code.digest.substr(code.digest.find(':') + 1);
    code.repository = ref->repository;
    return code;
  }

  static void AppendOps(std::vector<store::Op>* to, std::vector<store::Op> ops) {
    for (auto& op : ops) to->push_back(std::move(op));
  }

  void Touch(FunctionConfig* c) const {
    c->last_modified = FormatLastModified(options_.clock->Now());
    c->revision_id = base::NewUuid();
  }

  // An update of a function that exists: it stays invocable (Active, or still Pending if
  // its creation has not finished) while the update is prepared.
  static void MarkInProgress(FunctionConfig* c) {
    if (c->state == "Failed") {
      c->state = "Pending";
      c->state_reason = "The function is being created.";
      c->state_reason_code = "Creating";
    }
    c->last_update_status = "InProgress";
    c->last_update_status_reason = "The function is being created.";
    c->last_update_status_reason_code = "Creating";
  }

  // --- Layers ---

  // The layer versions named by `arns`, in order; InvalidArgument as AWS words it.
  base::Result<std::vector<LayerRef>> ResolveLayers(const std::vector<std::string>& arns) {
    if (arns.size() > 5) return base::InvalidArgument("Cannot reference more than 5 layers.");
    std::vector<LayerRef> out;
    std::set<std::string> seen_names;
    for (const std::string& arn : arns) {
      std::vector<std::string_view> p = base::Split(arn, ':');
      std::optional<int64_t> v;
      if (p.size() == 8 && p[0] == "arn" && p[2] == "lambda" && p[5] == "layer")
        v = ParseVersion(std::string(p[7]));
      if (!v || p[3] != options_.region || p[4] != options_.account_id)
        return base::InvalidArgument("Layer version " + arn + " does not exist.");
      std::string lname(p[6]);
      if (!seen_names.insert(lname).second)
        return base::InvalidArgument(
            "Two different versions of the same layer are not allowed to be referenced in the "
            "same function. " +
            LayerArn(lname, 0) + " is referenced more than once.");
      ASSIGN_OR_RETURN(auto kv, store_->Get(LayerKey(lname, *v)));
      if (!kv) return base::InvalidArgument("Layer version " + arn + " does not exist.");
      ASSIGN_OR_RETURN(LayerVersion l, DecodeLayer(kv->value));
      out.push_back(LayerRef{arn, l.digest, l.code_size});
    }
    return out;
  }

  void AddLayerRefs(const std::vector<LayerRef>& layers, const std::string& name,
                    const std::string& version, store::Txn* txn) {
    for (const auto& l : layers) {
      txn->compares.push_back(blobs_->AddRefGuard(l.digest));
      AppendOps(&txn->success, blobs_->AddRefOps(l.digest, LayerRefOwner(name, version)));
    }
  }
  void DropLayerRefs(const std::vector<LayerRef>& layers, const std::string& name,
                     const std::string& version, store::Txn* txn) {
    for (const auto& l : layers)
      AppendOps(&txn->success, blobs_->DropRefOps(l.digest, LayerRefOwner(name, version)));
  }

 public:
  std::string LayerArn(const std::string& name, int64_t version) const override {
    std::string arn =
        "arn:aws:lambda:" + options_.region + ":" + options_.account_id + ":layer:" + name;
    if (version > 0) arn += ":" + std::to_string(version);
    return arn;
  }

  base::Result<LayerVersion> PublishLayerVersion(const LayerVersion& in,
                                                 const std::string& zip) override {
    ASSIGN_OR_RETURN(Code code, StoreCode(zip));
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto next, store_->Get(LayerNextKey(in.name)));
      int64_t number = 1;
      if (next) number = std::max<int64_t>(1, std::atoll(next->value.c_str()));
      LayerVersion l = in;
      l.version = number;
      l.digest = code.digest;
      l.code_size = code.size;
      l.code_sha256 = code.sha256;
      l.created_date = FormatLastModified(options_.clock->Now());
      store::Txn txn;
      txn.compares.push_back(
          store::Compare::ModRevisionIs(LayerNextKey(in.name), next ? next->mod_revision : 0));
      txn.compares.push_back(blobs_->AddRefGuard(code.digest));
      txn.success.push_back(store::Op::Put(LayerNextKey(in.name), std::to_string(number + 1)));
      txn.success.push_back(store::Op::Put(LayerKey(in.name, number), EncodeLayer(l)));
      AppendOps(&txn.success, blobs_->AddRefOps(code.digest, "lambda-layer/" + in.name + "/" +
                                                                 std::to_string(number)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return l;
      ASSIGN_OR_RETURN(Code again, StoreCode(zip));  // in case the guard failed
      (void)again;
    }
    return base::Aborted("PublishLayerVersion " + in.name + ": too many concurrent changes");
  }

  base::Result<LayerVersion> GetLayerVersion(const std::string& name, int64_t version) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(LayerKey(name, version)));
    if (!kv) return base::NotFound("The resource you requested does not exist.");
    return DecodeLayer(kv->value);
  }

  base::Result<Page<LayerVersion>> ListLayerVersions(const std::string& name,
                                                     const std::string& marker,
                                                     int max_items) override {
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(LayerPrefix(name))));
    Page<LayerVersion> page;
    std::optional<int64_t> after;
    if (!marker.empty()) after = ParseVersion(marker);
    for (auto it = rr.kvs.rbegin(); it != rr.kvs.rend(); ++it) {
      ASSIGN_OR_RETURN(LayerVersion l, DecodeLayer(it->value));
      if (after && l.version >= *after) continue;
      if (static_cast<int>(page.items.size()) >= max_items) {
        page.next_marker = std::to_string(page.items.back().version);
        break;
      }
      page.items.push_back(std::move(l));
    }
    return page;
  }

  base::Result<Page<LayerVersion>> ListLayers(const std::string& marker, int max_items) override {
    ASSIGN_OR_RETURN(store::RangeResult rr, store_->Range(store::KeyRange::Prefix(kLayersPrefix)));
    std::map<std::string, LayerVersion> newest;
    for (const auto& kv : rr.kvs) {
      ASSIGN_OR_RETURN(LayerVersion l, DecodeLayer(kv.value));
      if (!marker.empty() && l.name <= marker) continue;
      newest[l.name] = std::move(l);  // keys ascend: the last one is the newest
    }
    Page<LayerVersion> page;
    for (auto& [n, l] : newest) {
      if (static_cast<int>(page.items.size()) >= max_items) {
        page.next_marker = page.items.back().name;
        break;
      }
      page.items.push_back(std::move(l));
    }
    return page;
  }

  base::Status DeleteLayerVersion(const std::string& name, int64_t version) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(LayerKey(name, version)));
    if (!kv) return base::Status::Ok();  // as AWS: deleting a missing version succeeds
    ASSIGN_OR_RETURN(LayerVersion l, DecodeLayer(kv->value));
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    AppendOps(&txn.success,
              blobs_->DropRefOps(l.digest, "lambda-layer/" + name + "/" + std::to_string(version)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
    return CommitTxn(txn).status();
  }

 private:
  // --- Function URLs ---

  // The function (and alias, when `qualifier` names one) exist: compares for the txn.
  base::Status CheckTarget(const std::string& name, const std::string& qualifier, store::Txn* txn) {
    ASSIGN_OR_RETURN(auto latest, store_->Get(LatestKey(name)));
    if (!latest) return base::NotFound("function");
    txn->compares.push_back(store::Compare::ModRevisionIs(latest->key, latest->mod_revision));
    if (!qualifier.empty() && qualifier != kLatest) {
      auto number = ParseVersion(qualifier);
      std::string key = number ? VersionKey(name, *number) : AliasKey(name, qualifier);
      ASSIGN_OR_RETURN(auto target, store_->Get(key));
      if (!target) return base::NotFound("function");
      txn->compares.push_back(store::Compare::ModRevisionIs(key, target->mod_revision));
    }
    return base::Status::Ok();
  }

 public:
  base::Result<FunctionUrlConfig> CreateFunctionUrlConfig(const FunctionUrlConfig& in) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      store::Txn txn;
      RETURN_IF_ERROR(CheckTarget(in.function_name, in.qualifier, &txn));
      std::string key = UrlKey(in.function_name, in.qualifier);
      ASSIGN_OR_RETURN(auto existing, store_->Get(key));
      if (existing) return base::AlreadyExists("url");
      FunctionUrlConfig c = in;
      static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
      std::string random = base::NewUuid();  // 122 random bits; 32 characters of them
      std::string hex;
      for (char ch : random)
        if (ch != '-') hex += ch;
      c.url_id.clear();
      for (size_t i = 0; i < 32; ++i) {
        int v = std::stoi(hex.substr(i, 1), nullptr, 16) + (i % 2 ? 16 : 0);
        c.url_id += kAlphabet[v % 36];
      }
      c.creation_time = c.last_modified_time = FormatUrlTime(options_.clock->Now());
      txn.compares.push_back(store::Compare::KeyMissing(key));
      txn.compares.push_back(store::Compare::KeyMissing(UrlIndexKey(c.url_id)));
      txn.success.push_back(store::Op::Put(key, EncodeUrl(c)));
      txn.success.push_back(store::Op::Put(UrlIndexKey(c.url_id), key));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return c;
    }
    return base::Aborted("CreateFunctionUrlConfig: too many concurrent changes");
  }

  base::Result<FunctionUrlConfig> UpdateFunctionUrlConfig(const std::string& name,
                                                          const std::string& qualifier,
                                                          const std::string& auth_type,
                                                          const std::optional<UrlCors>& cors,
                                                          const std::string& invoke_mode) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      store::Txn txn;
      RETURN_IF_ERROR(CheckTarget(name, qualifier, &txn));
      ASSIGN_OR_RETURN(auto kv, store_->Get(UrlKey(name, qualifier)));
      if (!kv) return base::NotFound("config");
      ASSIGN_OR_RETURN(FunctionUrlConfig c, DecodeUrl(kv->value));
      if (!auth_type.empty()) c.auth_type = auth_type;
      if (cors) c.cors = *cors;
      if (!invoke_mode.empty()) c.invoke_mode = invoke_mode;
      c.last_modified_time = FormatUrlTime(options_.clock->Now());
      txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      txn.success.push_back(store::Op::Put(kv->key, EncodeUrl(c)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return c;
    }
    return base::Aborted("UpdateFunctionUrlConfig: too many concurrent changes");
  }

  base::Result<FunctionUrlConfig> GetFunctionUrlConfig(const std::string& name,
                                                       const std::string& qualifier) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(UrlKey(name, qualifier)));
    if (!kv) return base::NotFound("config");
    return DecodeUrl(kv->value);
  }

  base::Status DeleteFunctionUrlConfig(const std::string& name,
                                       const std::string& qualifier) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(UrlKey(name, qualifier)));
    if (!kv) return base::NotFound("config");
    ASSIGN_OR_RETURN(FunctionUrlConfig c, DecodeUrl(kv->value));
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(UrlIndexKey(c.url_id))));
    return CommitTxn(txn).status();
  }

  base::Result<Page<FunctionUrlConfig>> ListFunctionUrlConfigs(const std::string& name,
                                                               const std::string& marker,
                                                               int max_items) override {
    ASSIGN_OR_RETURN(auto latest, store_->Get(LatestKey(name)));
    if (!latest) return base::NotFound("function");
    store::RangeOptions ro;
    if (!marker.empty()) ro.start_after = UrlKey(name, marker);
    ASSIGN_OR_RETURN(store::RangeResult rr,
                     store_->Range(store::KeyRange::Prefix(UrlPrefix(name)), ro));
    Page<FunctionUrlConfig> page;
    for (const auto& kv : rr.kvs) {
      if (static_cast<int>(page.items.size()) >= max_items) {
        page.next_marker = QualSlot(page.items.back().qualifier);
        break;
      }
      ASSIGN_OR_RETURN(FunctionUrlConfig c, DecodeUrl(kv.value));
      page.items.push_back(std::move(c));
    }
    return page;
  }

  base::Result<FunctionUrlConfig> ResolveFunctionUrl(const std::string& url_id) override {
    ASSIGN_OR_RETURN(auto idx, store_->Get(UrlIndexKey(url_id)));
    if (!idx) return base::NotFound("url");
    ASSIGN_OR_RETURN(auto kv, store_->Get(idx->value));
    if (!kv) return base::NotFound("url");
    return DecodeUrl(kv->value);
  }

  // --- Resource-based policy ---

  base::Result<std::string> AddPermission(const std::string& name,
                                          const PermissionRequest& req) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      store::Txn txn;
      RETURN_IF_ERROR(CheckTarget(name, req.qualifier, &txn));
      std::string key = PolicyKey(name, req.qualifier);
      ASSIGN_OR_RETURN(auto kv, store_->Get(key));
      json doc = {{"Version", "2012-10-17"}, {"Id", "default"}, {"Statement", json::array()}};
      std::string revision;
      if (kv) {
        doc = json::parse(kv->value, nullptr, false);
        if (!doc.is_object()) return base::Corruption("lambda: policy record is not JSON");
        revision = doc.value("_revision", "");
        doc.erase("_revision");
      }
      if (!req.revision_id.empty() && req.revision_id != revision)
        return base::FailedPrecondition(kRevisionMismatch);
      for (const auto& st : doc["Statement"])
        if (st.value("Sid", "") == req.statement_id)
          return base::AlreadyExists("The statement id (" + req.statement_id +
                                     ") provided already exists. Please provide a new statement "
                                     "id, or remove the existing statement.");
      json st{{"Sid", req.statement_id},
              {"Effect", "Allow"},
              {"Action", req.action},
              {"Resource", FunctionArn(name, req.qualifier)}};
      const std::string& p = req.principal;
      if (p == "*") {
        st["Principal"] = "*";
      } else if (p.find(".amazonaws.com") != std::string::npos ||
                 p.find(".amazon.com") != std::string::npos) {
        st["Principal"] = {{"Service", p}};
      } else if (p.size() == 12 && p.find_first_not_of("0123456789") == std::string::npos) {
        st["Principal"] = {{"AWS", "arn:aws:iam::" + p + ":root"}};
      } else {
        st["Principal"] = {{"AWS", p}};
      }
      json cond = json::object();
      if (!req.source_arn.empty()) cond["ArnLike"]["AWS:SourceArn"] = req.source_arn;
      if (!req.source_account.empty())
        cond["StringEquals"]["AWS:SourceAccount"] = req.source_account;
      if (!req.principal_org_id.empty())
        cond["StringEquals"]["aws:PrincipalOrgID"] = req.principal_org_id;
      if (!req.function_url_auth_type.empty())
        cond["StringEquals"]["lambda:FunctionUrlAuthType"] = req.function_url_auth_type;
      if (!cond.empty()) st["Condition"] = cond;
      doc["Statement"].push_back(st);
      json stored = doc;
      stored["_revision"] = base::NewUuid();
      txn.compares.push_back(store::Compare::ModRevisionIs(key, kv ? kv->mod_revision : 0));
      txn.success.push_back(
          store::Op::Put(key, stored.dump(-1, ' ', false, json::error_handler_t::replace)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return st.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return base::Aborted("AddPermission " + name + ": too many concurrent changes");
  }

  base::Status RemovePermission(const std::string& name, const std::string& qualifier,
                                const std::string& statement_id,
                                const std::string& revision_id) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      store::Txn txn;
      RETURN_IF_ERROR(CheckTarget(name, qualifier, &txn));
      std::string key = PolicyKey(name, qualifier);
      ASSIGN_OR_RETURN(auto kv, store_->Get(key));
      if (!kv) return base::NotFound("No policy is associated with the given resource.");
      json doc = json::parse(kv->value, nullptr, false);
      if (!doc.is_object()) return base::Corruption("lambda: policy record is not JSON");
      if (!revision_id.empty() && revision_id != doc.value("_revision", ""))
        return base::FailedPrecondition(kRevisionMismatch);
      json kept = json::array();
      bool found = false;
      for (const auto& st : doc["Statement"]) {
        if (st.value("Sid", "") == statement_id) {
          found = true;
        } else {
          kept.push_back(st);
        }
      }
      if (!found)
        return base::NotFound("Statement " + statement_id + " is not found in resource policy.");
      txn.compares.push_back(store::Compare::ModRevisionIs(key, kv->mod_revision));
      if (kept.empty()) {
        txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(key)));
      } else {
        doc["Statement"] = kept;
        doc["_revision"] = base::NewUuid();
        txn.success.push_back(
            store::Op::Put(key, doc.dump(-1, ' ', false, json::error_handler_t::replace)));
      }
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("RemovePermission " + name + ": too many concurrent changes");
  }

  base::Result<std::pair<std::string, std::string>> GetPolicy(
      const std::string& name, const std::string& qualifier) override {
    ASSIGN_OR_RETURN(auto kv, store_->Get(PolicyKey(name, qualifier)));
    if (!kv) return base::NotFound("The resource you requested does not exist.");
    json doc = json::parse(kv->value, nullptr, false);
    if (!doc.is_object()) return base::Corruption("lambda: policy record is not JSON");
    std::string revision = doc.value("_revision", "");
    doc.erase("_revision");
    return std::make_pair(doc.dump(-1, ' ', false, json::error_handler_t::replace), revision);
  }

 private:
 public:
  base::Status FinishUpdate(const std::string& name, const std::string& revision_id,
                            const base::Status& outcome) override {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      auto& [rec, rev] = latest;
      FunctionConfig& c = rec.config;
      if (c.revision_id != revision_id) return base::Status::Ok();  // superseded
      if (c.state != "Pending" && c.last_update_status != "InProgress") return base::Status::Ok();
      if (outcome.ok()) {
        c.state = "Active";
        c.state_reason.clear();
        c.state_reason_code.clear();
        c.last_update_status = "Successful";
        c.last_update_status_reason.clear();
        c.last_update_status_reason_code.clear();
      } else {
        bool creating = c.state == "Pending";
        if (creating) {
          c.state = "Failed";
          c.state_reason = outcome.message();
          c.state_reason_code = "InvalidConfiguration";
        }
        c.last_update_status = "Failed";
        c.last_update_status_reason = outcome.message();
        c.last_update_status_reason_code = "InvalidConfiguration";
      }
      store::Txn txn;
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), rev));
      txn.success.push_back(store::Op::Put(LatestKey(name), EncodeLatest(rec)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("FinishUpdate " + name + ": too many concurrent changes");
  }

 private:
  static void ApplySettings(const FunctionSettings& s, FunctionConfig* c) {
    if (s.runtime) c->runtime = *s.runtime;
    if (s.role) c->role = *s.role;
    if (s.handler) c->handler = *s.handler;
    if (s.description) c->description = *s.description;
    if (s.timeout) c->timeout = *s.timeout;
    if (s.memory_size) c->memory_size = *s.memory_size;
    if (s.ephemeral_storage) c->ephemeral_storage = *s.ephemeral_storage;
    if (s.environment) c->environment = *s.environment;
    if (s.image_config) c->image_config = *s.image_config;
    if (s.dead_letter_arn) c->dead_letter_arn = *s.dead_letter_arn;
  }

  base::Status CheckEnvironment(const StringMap& env) const {
    std::string measured;
    if (EnvironmentSize(env, &measured) > options_.max_environment_bytes)
      return base::InvalidArgument(
          "Lambda was unable to configure your environment variables because the environment "
          "variables you have provided exceeded the 4KB limit. String measured: " +
          measured);
    return base::Status::Ok();
  }

  // Checks the zip and puts it in the BlobStore (the caller adds the reference).
  base::Result<Code> StoreCode(const std::string& zip) {
    if (zip.size() > options_.max_zip_bytes)
      return base::ResourceExhausted("Zipped size must be smaller than " +
                                     std::to_string(options_.max_zip_bytes) + " bytes");
    ZipCheck check = CheckZip(zip, options_.max_unzipped_bytes);
    switch (check.verdict) {
      case ZipVerdict::kOk:
        break;
      case ZipVerdict::kUnzippedTooLarge:
        return base::InvalidArgument("Unzipped size must be smaller than " +
                                     std::to_string(options_.max_unzipped_bytes) + " bytes");
      case ZipVerdict::kCorrupt:
      case ZipVerdict::kUnsafePath:
        return base::InvalidArgument(
            "Could not unzip uploaded file. Please check your file, then try to upload again.");
    }
    Code code;
    ASSIGN_OR_RETURN(code.digest, blobs_->Put(zip));
    code.size = zip.size();
    code.sha256 = base::Base64Encode(base::Sha256(zip));
    return code;
  }

  base::Status NotFoundFn(const std::string& name, const std::string& qualifier = "") const {
    return base::NotFound("Function not found: " + FunctionArn(name, qualifier));
  }

  // $LATEST and the revision it was read at.
  base::Result<std::pair<LatestRecord, store::Revision>> ReadLatest(const std::string& name) {
    ASSIGN_OR_RETURN(auto kv, store_->Get(LatestKey(name)));
    if (!kv) return NotFoundFn(name);
    ASSIGN_OR_RETURN(LatestRecord rec, DecodeLatest(kv->value));
    return std::make_pair(std::move(rec), kv->mod_revision);
  }

  base::Result<FunctionConfig> Resolve(const std::string& name, const std::string& qualifier) {
    if (qualifier.empty() || qualifier == kLatest) {
      auto latest = ReadLatest(name);
      if (!latest.ok()) {
        if (latest.status().code() == base::Code::kNotFound) return NotFoundFn(name, qualifier);
        return latest.status();
      }
      return latest->first.config;
    }
    std::string version = qualifier;
    if (!ParseVersion(qualifier)) {
      ASSIGN_OR_RETURN(auto kv, store_->Get(AliasKey(name, qualifier)));
      if (!kv) return NotFoundFn(name, qualifier);
      ASSIGN_OR_RETURN(Alias a, DecodeAlias(kv->value));
      version = a.function_version;
      if (version == kLatest) return Resolve(name, version);
    }
    auto number = ParseVersion(version);
    if (!number) return NotFoundFn(name, qualifier);
    ASSIGN_OR_RETURN(auto kv, store_->Get(VersionKey(name, *number)));
    if (!kv) return NotFoundFn(name, qualifier);
    return DecodeConfig(kv->value);
  }

  // Adds compares that the alias's versions exist (as of the Txn); NotFound if not now.
  base::Status CheckAliasTargets(const std::string& name, const std::string& version,
                                 const std::map<std::string, double>& weights, store::Txn* txn) {
    auto check = [&](const std::string& v) -> base::Status {
      if (v == kLatest) return base::Status::Ok();
      auto number = ParseVersion(v);
      if (!number) return NotFoundFn(name, v);
      ASSIGN_OR_RETURN(auto kv, store_->Get(VersionKey(name, *number)));
      if (!kv) return NotFoundFn(name, v);
      txn->compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
      return base::Status::Ok();
    };
    RETURN_IF_ERROR(check(version));
    for (const auto& [v, w] : weights) {
      (void)w;
      if (v == version)
        return base::InvalidArgument("Invalid function version " + v + ". Function version " + v +
                                     " is already included in routing configuration.");
      RETURN_IF_ERROR(check(v));
    }
    return base::Status::Ok();
  }

  base::Status DeleteVersion(const std::string& name, const std::string& qualifier) {
    auto number = ParseVersion(qualifier);
    if (!number) {
      // An alias name as the qualifier: AWS answers that aliases are not deletable here.
      return base::InvalidArgument(
          "Deletion of aliases is not supported by DeleteFunction. Use DeleteAlias instead.");
    }
    ASSIGN_OR_RETURN(auto kv, store_->Get(VersionKey(name, *number)));
    if (!kv) {
      ASSIGN_OR_RETURN(auto latest, store_->Get(LatestKey(name)));
      if (!latest) return NotFoundFn(name, qualifier);
      return base::Status::Ok();  // as AWS: deleting a missing version of a function is a no-op
    }
    ASSIGN_OR_RETURN(FunctionConfig v, DecodeConfig(kv->value));
    ASSIGN_OR_RETURN(store::RangeResult aliases,
                     store_->Range(store::KeyRange::Prefix(AliasesPrefix(name))));
    std::vector<std::string> users;
    for (const auto& akv : aliases.kvs) {
      ASSIGN_OR_RETURN(Alias a, DecodeAlias(akv.value));
      if (a.function_version == v.version || a.additional_weights.count(v.version))
        users.push_back(a.name);
    }
    if (!users.empty()) {
      std::string list;
      for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
      return base::AlreadyExists(
          "Unable to delete version because the following aliases reference it: [" + list + "]");
    }
    store::Txn txn;
    txn.compares.push_back(store::Compare::ModRevisionIs(kv->key, kv->mod_revision));
    AppendOps(&txn.success, blobs_->DropRefOps(v.code_digest, RefOwner(name, v.version)));
    DropLayerRefs(v.layers, name, v.version, &txn);
    txn.success.push_back(store::Op::Delete(store::KeyRange::Exact(kv->key)));
    txn.success.push_back(
        store::Op::Delete(store::KeyRange::Exact(EventInvokeKey(name, v.version))));
    ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
    (void)r;  // lost to a concurrent delete of the same version: it is gone either way
    return base::Status::Ok();
  }

  template <typename Fn>
  base::Status ChangeTags(const std::string& name, Fn change) {
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      ASSIGN_OR_RETURN(auto latest, ReadLatest(name));
      ASSIGN_OR_RETURN(auto kv, store_->Get(TagsKey(name)));
      StringMap m;
      if (kv) {
        ASSIGN_OR_RETURN(m, DecodeStringMap(kv->value));
      }
      change(&m);
      store::Txn txn;
      // The function must still exist (a concurrent delete wins; a racing update retries).
      txn.compares.push_back(store::Compare::ModRevisionIs(LatestKey(name), latest.second));
      txn.compares.push_back(
          store::Compare::ModRevisionIs(TagsKey(name), kv ? kv->mod_revision : 0));
      txn.success.push_back(store::Op::Put(
          TagsKey(name), json(m).dump(-1, ' ', false, json::error_handler_t::replace)));
      ASSIGN_OR_RETURN(store::TxnResult r, CommitTxn(txn));
      if (r.succeeded) return base::Status::Ok();
    }
    return base::Aborted("TagResource " + name + ": too many concurrent changes");
  }

  // Every change goes through here, so that generation() moves after each one.
  base::Result<store::TxnResult> CommitTxn(const store::Txn& txn) {
    auto r = store_->Commit(txn);
    if (r.ok() && r->succeeded) generation_.fetch_add(1);
    return r;
  }

 public:
  uint64_t generation() const override { return generation_.load(); }

 private:
  std::atomic<uint64_t> generation_{0};
  store::Store* store_;
  store::BlobStore* blobs_;
  Options options_;
};

}  // namespace

const std::vector<std::string>& SupportedRuntimes() {
  static const std::vector<std::string> kRuntimes = {
      "nodejs22.x", "nodejs20.x", "nodejs18.x",      "python3.13",   "python3.12", "python3.11",
      "python3.10", "python3.9",  "provided.al2023", "provided.al2", "provided"};
  return kRuntimes;
}

base::Result<std::unique_ptr<Lambda>> OpenLambda(store::Store* store, store::BlobStore* blobs,
                                                 const Options& options) {
  if (!store || !blobs) return base::InvalidArgument("OpenLambda: store and blob store required");
  return std::unique_ptr<Lambda>(std::make_unique<LambdaImpl>(store, blobs, options));
}

base::Status CheckServiceInvoke(Lambda& lambda, const std::string& arn,
                                const std::string& service, const std::string& source_arn,
                                const std::string& source_account) {
  std::string name, qualifier;
  if (!ParseFunctionArn(arn, &name, &qualifier)) return base::NotFound("not a function ARN");
  ASSIGN_OR_RETURN(FunctionDetails fn, lambda.GetFunction(name, qualifier));
  auto doc = lambda.GetPolicy(name, qualifier);
  if (!doc.ok()) return base::PermissionDenied("function " + name + " has no resource policy");
  ASSIGN_OR_RETURN(auth::Policy policy, auth::ParsePolicy(doc->first, auth::PolicyKind::kResource));
  auth::AuthzRequest az;
  az.action = "lambda:InvokeFunction";
  az.resource = arn;
  az.context["aws:principalservicename"] = {service};
  az.context["aws:sourcearn"] = {source_arn};
  az.context["aws:sourceaccount"] = {source_account};
  if (auth::EvaluateResourcePolicy(policy, az) != auth::Decision::kAllow)
    return base::PermissionDenied("the resource policy of " + name + " does not allow " +
                                  service);
  (void)fn;
  return base::Status::Ok();
}

}  // namespace lambda
