// endpoints::Authority — the Stratus certificate authority: a CA key and certificate kept in
// a directory (created on first use, reused after), and the serving certificate for the AWS
// host names (*.amazonaws.com …) that sandboxes reach over HTTPS. Sandboxes trust the CA
// through AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS and their trust store.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace endpoints {

struct Authority {
  std::string ca_cert_pem;  // the CA certificate (what sandboxes trust)
  std::string cert_pem;     // the serving certificate for `names`
  std::string key_pem;      // its private key
  std::string ca_cert_path;  // <dir>/ca.pem
};

// Loads the CA from `dir` (ca.pem, ca.key; mode 0600 key) or creates it, then issues a fresh
// serving certificate (EC P-256, valid 30 days) whose subjectAltNames are `names`.
base::Result<Authority> LoadOrCreateAuthority(const std::string& dir,
                                              const std::vector<std::string>& names);

// The host names AWS SDKs use for `region` (service.region.amazonaws.com, global services,
// S3's virtual-host forms), as wildcards.
std::vector<std::string> AwsHostNames(const std::string& region);

}  // namespace endpoints
