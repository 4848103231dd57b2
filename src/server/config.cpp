#include "server/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "base/strings.h"

namespace server {

std::string DefaultDataDir() {
  if (::geteuid() == 0) return "/var/lib/stratus";
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return std::string(xdg) + "/stratus";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.local/share/stratus";
  return "./stratus-data";
}

base::Status LoadConfigFile(const std::string& path, Config& c) {
  try {
    YAML::Node root = YAML::LoadFile(path);
    if (!root || root.IsNull()) return base::Status::Ok();
    if (!root.IsMap()) return base::InvalidArgument(path + ": top level must be a mapping");
    for (const auto& kv : root) {
      std::string key = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (key == "data_dir" || key == "data-dir")
        c.data_dir = v.as<std::string>();
      else if (key == "listen")
        c.listen = v.as<std::string>();
      else if (key == "account_id" || key == "account-id")
        c.account_id = v.as<std::string>();
      else if (key == "region")
        c.region = v.as<std::string>();
      else if (key == "dev_any_credentials" || key == "dev-any-credentials")
        c.dev_any_credentials = v.as<bool>();
      else if (key == "io_threads" || key == "io-threads")
        c.io_threads = v.as<int>();
      else if (key == "max_header_bytes")
        c.max_header_bytes = v.as<uint32_t>();
      else if (key == "max_body_bytes")
        c.max_body_bytes = v.as<uint64_t>();
      else if (key == "log_level" || key == "log-level")
        c.log_level = v.as<std::string>();
      else if (key == "sts_min_duration_seconds")
        c.sts_min_duration_seconds = v.as<int64_t>();
      else if (key == "lambda_account_concurrency")
        c.lambda_account_concurrency = v.as<int64_t>();
      else if (key == "lambda_idle_timeout_seconds")
        c.lambda_idle_timeout_seconds = v.as<int64_t>();
      else if (key == "lambda_prestart_pool_size")
        c.lambda_prestart_pool_size = v.as<int64_t>();
      else if (key == "lambda_async_retry_delay_ms")
        c.lambda_async_retry_delay_ms = v.as<int64_t>();
      else if (key == "lambda_async_throttle_delay_ms")
        c.lambda_async_throttle_delay_ms = v.as<int64_t>();
      else if (key == "ecr_lifecycle_interval_seconds")
        c.ecr_lifecycle_interval_seconds = v.as<int64_t>();
      else
        return base::InvalidArgument(path + ": unknown key '" + key + "'");
    }
  } catch (const YAML::BadFile&) {
    return base::NotFound("config file " + path + " cannot be read");
  } catch (const YAML::Exception& e) {
    return base::InvalidArgument(path + ": " + e.what());
  }
  if (c.sts_min_duration_seconds < 1 || c.sts_min_duration_seconds > 43200)
    return base::InvalidArgument(path + ": sts_min_duration_seconds must be 1..43200");
  if (c.lambda_account_concurrency < 1 || c.lambda_account_concurrency > 100000)
    return base::InvalidArgument(path + ": lambda_account_concurrency must be 1..100000");
  if (c.lambda_prestart_pool_size < 0 || c.lambda_prestart_pool_size > 64)
    return base::InvalidArgument(path + ": lambda_prestart_pool_size must be 0..64");
  if (c.lambda_idle_timeout_seconds < 1)
    return base::InvalidArgument(path + ": lambda_idle_timeout_seconds must be positive");
  if (c.lambda_async_retry_delay_ms < 1 || c.lambda_async_throttle_delay_ms < 1)
    return base::InvalidArgument(path + ": lambda_async_*_delay_ms must be positive");
  if (c.ecr_lifecycle_interval_seconds < 1)
    return base::InvalidArgument(path + ": ecr_lifecycle_interval_seconds must be >= 1");
  if (c.account_id.size() != 12 ||
      c.account_id.find_first_not_of("0123456789") != std::string::npos)
    return base::InvalidArgument(path + ": account_id must be 12 digits");
  return base::Status::Ok();
}

base::Result<HostPort> ParseListen(const std::string& listen) {
  HostPort hp;
  std::string port_str;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      return base::InvalidArgument("listen address '" + listen + "' is not [host]:port");
    hp.host = listen.substr(1, close - 1);
    port_str = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos) {
      hp.host = "127.0.0.1";
      port_str = listen;
    } else {
      hp.host = listen.substr(0, colon);
      port_str = listen.substr(colon + 1);
    }
    if (hp.host.empty()) hp.host = "127.0.0.1";
  }
  auto port = base::ParseInt(port_str);
  if (!port || *port < 0 || *port > 65535)
    return base::InvalidArgument("listen address '" + listen + "' has no valid port");
  hp.port = static_cast<uint16_t>(*port);
  return hp;
}

std::string EndpointUrl(const HostPort& hp) {
  std::string host = hp.host;
  if (host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(hp.port);
}

}  // namespace server
