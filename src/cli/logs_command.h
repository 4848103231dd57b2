// `stratus logs NAME [--follow] [--since 10m]`: prints a function's log events (log group
// /aws/lambda/NAME, or NAME itself when it starts with '/') the way `aws logs tail` does,
// through the Logs API (FilterLogEvents, SigV4-signed), so it works against any server.
#pragma once

#include <string>

#include "server/config.h"

namespace cli {

struct LogsFlags {
  std::string name;
  bool follow = false;
  std::string since = "10m";  // 30s, 10m, 2h, 1d, 1w
  std::string endpoint_url;   // default: AWS_ENDPOINT_URL, else the configured listen address
  std::string filter_pattern;
  bool data_dir_given = false;  // use <data-dir>/credentials even if AWS_* keys are set
};

// Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) from the
// environment unless --data-dir was given, else the root credentials in the data directory.
// Returns the process exit code.
int RunLogs(const LogsFlags& flags, const server::Config& config);

}  // namespace cli
