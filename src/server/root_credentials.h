// The account's root credentials: generated on first start into <data-dir>/credentials
// (mode 0600, in the AWS shared-credentials file format, so the file itself can be used
// as AWS_SHARED_CREDENTIALS_FILE), read back on every later start.
#pragma once

#include <string>

#include "base/status.h"

namespace server {

struct RootCredentials {
  std::string access_key_id;
  std::string secret_access_key;
};

std::string RootCredentialsPath(const std::string& data_dir);
// Reads the file; NotFound if there is none.
base::Result<RootCredentials> LoadRootCredentials(const std::string& data_dir);
// Reads the file, or creates it (and the data directory, 0700) with fresh keys.
base::Result<RootCredentials> LoadOrCreateRootCredentials(const std::string& data_dir);

}  // namespace server
