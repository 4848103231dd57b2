// Port publishing: a host TCP port whose connections are relayed to a port inside a
// sandbox's network namespace. Works for both `none` and `bridge` networks because the
// sandbox side is opened with ConnectInNetns — no NAT rules, no route to the sandbox.
//
// A userspace relay: one acceptor thread, one relay thread per connection. Fine for health
// checks, development and modest traffic; the L4 load balancer (lb/) is the data plane.
// Thread-safe; destruction stops accepting, closes every relayed connection and joins.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/fs.h"
#include "base/status.h"

namespace sandbox {

class PortForward {
 public:
  // Listens on host_ip:host_port (port 0 = any free port) and relays each connection to
  // sandbox_ip:sandbox_port inside the namespace `netns_fd` (duplicated; the caller keeps
  // its own).
  static base::Result<std::unique_ptr<PortForward>> Start(int netns_fd, const std::string& host_ip,
                                                          uint16_t host_port,
                                                          const std::string& sandbox_ip,
                                                          uint16_t sandbox_port);
  ~PortForward();
  PortForward(const PortForward&) = delete;
  PortForward& operator=(const PortForward&) = delete;

  uint16_t host_port() const { return host_port_; }

 private:
  PortForward() = default;
  void AcceptLoop();
  void Relay(base::UniqueFd a, base::UniqueFd b);

  base::UniqueFd netns_, listener_, stop_;
  std::string sandbox_ip_;
  uint16_t sandbox_port_ = 0, host_port_ = 0;
  std::mutex mu_;
  std::list<std::thread> relays_;
  std::thread acceptor_;
};

}  // namespace sandbox
