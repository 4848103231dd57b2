// endpoints::Endpoints — AWS's host names inside sandboxes (issue: events, point 7). For each
// sandbox it serves, on sockets the caller opened in the sandbox's network namespace:
//   - DNS on 127.0.0.1:53 (UDP): A queries for *.amazonaws.com and *.api.aws answer
//     127.0.0.1; AAAA queries for them answer no addresses (so clients use A); anything
//     else is NXDOMAIN (sandboxes have no other network);
//   - HTTPS on 127.0.0.1:443: TLS with a certificate for those names from the Stratus CA,
//     each decrypted connection forwarded to the platform's plain HTTP listener.
// So unmodified AWS code reaches Stratus at the standard endpoints, as long as it trusts the
// CA (AWS_CA_BUNDLE, NODE_EXTRA_CA_CERTS, the sandbox's trust store — the caller's part).
// One I/O thread of its own. Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/fs.h"
#include "base/status.h"
#include "endpoints/ca.h"

namespace endpoints {

// Serving on one sandbox's sockets; destroying it closes them and their connections.
class Served {
 public:
  virtual ~Served() = default;
};

struct Stats {
  uint64_t tls_connections = 0;
  uint64_t tls_handshake_failures = 0;
  uint64_t dns_queries = 0;
};

class Endpoints {
 public:
  virtual ~Endpoints() = default;
  // `tls_listener`: a listening TCP socket; `dns_socket`: a bound UDP socket. Either may be
  // invalid (not served).
  virtual base::Result<std::unique_ptr<Served>> Serve(base::UniqueFd tls_listener,
                                                      base::UniqueFd dns_socket) = 0;
  virtual Stats stats() const = 0;
  virtual void Shutdown() = 0;
};

// Decrypted connections go to 127.0.0.1:`upstream_port`.
base::Result<std::unique_ptr<Endpoints>> StartEndpoints(const Authority& authority,
                                                        uint16_t upstream_port);

// The DNS answer to `query` (a UDP DNS message), or "" to ignore it. Exposed for tests.
std::string DnsAnswer(std::string_view query);

}  // namespace endpoints
