// Sandbox networking: `none` (a fresh network namespace with only loopback, brought up by
// init) and `bridge` (a veth pair: one end in the sandbox as eth0 with an address from the
// subnet and a default route, the other enslaved to the `stratus0` bridge on the host).
// Plus sockets opened *inside* a sandbox's network namespace for the server's own use.
//
// Names: host-side veths are "stx<hex>"; only objects with that prefix and the configured
// bridge are ever created or deleted on the host. Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/fs.h"
#include "base/status.h"

namespace sandbox {

enum class NetworkMode { kNone, kBridge };

struct NetworkSpec {
  NetworkMode mode = NetworkMode::kNone;
  std::string bridge = "stratus0";
  // IPv4 subnet in CIDR form. The bridge takes the first host address (.1), sandboxes the
  // following ones.
  std::string subnet = "10.88.0.0/16";
  // iptables MASQUERADE for traffic from the subnet leaving through other interfaces.
  bool masquerade = false;
};

// A sandbox's end of the bridge. Deletes the host-side veth (and with it the peer) and
// releases the address on destruction.
class NetworkAttachment {
 public:
  ~NetworkAttachment();
  NetworkAttachment(const NetworkAttachment&) = delete;
  NetworkAttachment& operator=(const NetworkAttachment&) = delete;

  std::string host_veth;
  std::string address;  // "10.88.0.2"
  std::string gateway;  // "10.88.0.1"
  uint32_t slot = 0;

 private:
  friend base::Result<std::unique_ptr<NetworkAttachment>> AttachBridge(const NetworkSpec&, pid_t,
                                                                       int);
  NetworkAttachment() = default;
};

// Creates the bridge if needed, a veth pair, moves the peer into the namespace of `pid`
// (fd `netns_fd`) as eth0, and configures address and default route inside.
base::Result<std::unique_ptr<NetworkAttachment>> AttachBridge(const NetworkSpec& spec, pid_t pid,
                                                              int netns_fd);

// Runs on a short-lived thread that enters the namespace `netns_fd`, so the caller's
// thread never changes namespace. The returned socket stays bound in that namespace.
// A UDP socket bound to ip:port inside the namespace (a DNS responder's, say).
base::Result<base::UniqueFd> BindUdpInNetns(int netns_fd, const std::string& ip, uint16_t port);
base::Result<base::UniqueFd> ListenInNetns(int netns_fd, const std::string& ip, uint16_t port,
                                           int backlog);
base::Result<base::UniqueFd> ConnectInNetns(int netns_fd, const std::string& ip, uint16_t port);

// Deletes the bridge `name` (only names starting with "stratus") and forgets that it was
// set up. For tests and uninstall; sandboxes still attached lose their connectivity.
base::Status RemoveBridge(const std::string& name);

// Deletes host-side "stx*" veths whose peer namespace is gone (left by a killed server).
base::Status CleanupOrphanVeths();

}  // namespace sandbox
