#include "sandbox/port_forward.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/network.h"

namespace sandbox {

base::Result<std::unique_ptr<PortForward>> PortForward::Start(int netns_fd,
                                                              const std::string& host_ip,
                                                              uint16_t host_port,
                                                              const std::string& sandbox_ip,
                                                              uint16_t sandbox_port) {
  std::unique_ptr<PortForward> pf(new PortForward());
  pf->netns_.Reset(fcntl(netns_fd, F_DUPFD_CLOEXEC, 3));
  if (!pf->netns_.valid()) return base::ErrnoError("publish: dup netns fd");
  pf->stop_.Reset(eventfd(0, EFD_CLOEXEC));
  if (!pf->stop_.valid()) return base::ErrnoError("publish: eventfd");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(host_port);
  if (inet_pton(AF_INET, host_ip.c_str(), &a.sin_addr) != 1) {
    return base::InvalidArgument("publish: bad host address '" + host_ip + "'");
  }
  pf->listener_.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!pf->listener_.valid()) return base::ErrnoError("publish: socket");
  int one = 1;
  setsockopt(pf->listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  std::string what = host_ip + ":" + std::to_string(host_port);
  if (bind(pf->listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0) {
    return base::ErrnoError("publish: bind " + what);
  }
  if (listen(pf->listener_.get(), 128) < 0) return base::ErrnoError("publish: listen " + what);
  socklen_t len = sizeof(a);
  getsockname(pf->listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  pf->host_port_ = ntohs(a.sin_port);
  pf->sandbox_ip_ = sandbox_ip;
  pf->sandbox_port_ = sandbox_port;
  pf->acceptor_ = std::thread([p = pf.get()] { p->AcceptLoop(); });
  return pf;
}

PortForward::~PortForward() {
  uint64_t one = 1;
  if (stop_.valid()) {
    ssize_t n = write(stop_.get(), &one, sizeof(one));
    (void)n;
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::thread> relays;
  {
    std::lock_guard<std::mutex> lock(mu_);
    relays.swap(relays_);
  }
  for (auto& t : relays) t.join();
}

void PortForward::AcceptLoop() {
  for (;;) {
    pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents & POLLIN) return;
    if (!(p[0].revents & POLLIN)) continue;
    base::UniqueFd client(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!client.valid()) continue;
    auto inside = ConnectInNetns(netns_.get(), sandbox_ip_, sandbox_port_);
    if (!inside.ok()) continue;  // the client sees the connection close
    std::lock_guard<std::mutex> lock(mu_);
    relays_.emplace_back([this, c = std::move(client), s = std::move(inside).value()]() mutable {
      Relay(std::move(c), std::move(s));
    });
  }
}

// Copies both ways until both directions are closed or the forward stops; half-closes
// are passed on with shutdown(SHUT_WR).
void PortForward::Relay(base::UniqueFd a, base::UniqueFd b) {
  bool open[2] = {true, true};  // a->b, b->a
  int fds[2] = {a.get(), b.get()};
  char buf[65536];
  while (open[0] || open[1]) {
    pollfd p[3] = {{open[0] ? fds[0] : -1, POLLIN, 0},
                   {open[1] ? fds[1] : -1, POLLIN, 0},
                   {stop_.get(), POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[2].revents & POLLIN) return;
    for (int i = 0; i < 2; ++i) {
      if (!open[i] || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        open[i] = false;
        shutdown(fds[1 - i], SHUT_WR);
        continue;
      }
      if (!base::WriteAll(fds[1 - i], std::string_view(buf, static_cast<size_t>(n)), "relay")
               .ok()) {
        return;
      }
    }
  }
}

}  // namespace sandbox
