// Server configuration: defaults, then stratus.yaml, then command-line flags (flags win).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"

namespace server {

struct Config {
  std::string data_dir;                   // see DefaultDataDir()
  std::string listen = "127.0.0.1:4566";  // host:port; [v6]:port
  std::string account_id = "000000000000";
  std::string region = "us-east-1";
  bool dev_any_credentials = false;  // accept any access key (never the default)
  int io_threads = 0;                // 0 = one per core
  uint32_t max_header_bytes = 64 * 1024;
  uint64_t max_body_bytes = 128ull * 1024 * 1024;
  std::string log_level = "info";
  // Shortest AssumeRole duration (AWS: 900). A test knob, so expiry can be watched quickly.
  int64_t sts_min_duration_seconds = 900;
  // Lambda: concurrent executions for the account, and how long an idle execution
  // environment stays warm before it is destroyed (scale to zero).
  int64_t lambda_account_concurrency = 1000;
  int64_t lambda_idle_timeout_seconds = 600;
  // Pre-started runtimes kept ready per (runtime, memory, ephemeral storage) in use; 0 = off.
  int64_t lambda_prestart_pool_size = 2;
  // Asynchronous invocation: the wait before the first retry of a function error (the
  // second waits twice as long; AWS: 1 and 2 minutes), and the first backoff after a
  // throttle (doubling up to 5 minutes). Test knobs; AWS's figures are the defaults.
  int64_t lambda_async_retry_delay_ms = 60000;
  int64_t lambda_async_throttle_delay_ms = 1000;
  // How often the ECR lifecycle controller applies lifecycle policies. A test knob too.
  int64_t ecr_lifecycle_interval_seconds = 600;
};

// $XDG_DATA_HOME/stratus, ~/.local/share/stratus, or /var/lib/stratus when running as root.
std::string DefaultDataDir();

// Overlays the keys present in a YAML file onto `config`. Unknown keys are an error
// (a typo should not be silently ignored).
base::Status LoadConfigFile(const std::string& path, Config& config);

struct HostPort {
  std::string host;
  uint16_t port = 0;
};
// "127.0.0.1:4566", "[::1]:4566", ":4566" (= 127.0.0.1), "4566".
base::Result<HostPort> ParseListen(const std::string& listen);

// The endpoint URL clients should use for a listen address ("http://127.0.0.1:4566").
std::string EndpointUrl(const HostPort& hp);

}  // namespace server
