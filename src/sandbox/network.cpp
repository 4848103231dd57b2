#include "sandbox/network.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "base/strings.h"

extern char** environ;

namespace sandbox {
namespace {

using base::Result;
using base::Status;

// Runs `fn` on a fresh thread that has joined network namespace `netns_fd`; the thread
// ends afterwards, so no other code ever runs in the sandbox's namespace by accident.
template <typename T>
Result<T> InNetns(int netns_fd, const std::function<Result<T>()>& fn) {
  Result<T> out = base::Internal("netns: thread did not run");
  std::thread t([&] {
    if (setns(netns_fd, CLONE_NEWNET) < 0) {
      out = base::ErrnoError("netns: setns");
      return;
    }
    out = fn();
  });
  t.join();
  return out;
}

Result<sockaddr_in> ParseAddr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    return base::InvalidArgument("netns: bad IPv4 address '" + ip + "'");
  }
  return a;
}

// Runs a host tool (iproute2, iptables) and waits; the error names the command.
Status RunTool(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  std::string cmd;
  for (const auto& a : args) cmd += (cmd.empty() ? "" : " ") + a;
  if (rc != 0) return base::IoError("network: spawn " + cmd, rc);
  int st;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return base::ErrnoError("network: wait for " + cmd);
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return base::Internal("network: '" + cmd + "' failed (status " + std::to_string(st) + ")");
  }
  return Status::Ok();
}

bool LinkExists(const std::string& name) {
  return access(("/sys/class/net/" + name).c_str(), F_OK) == 0;
}

struct Subnet {
  uint32_t base;  // host order
  int prefix;
};

Result<Subnet> ParseSubnet(const std::string& cidr) {
  auto slash = cidr.find('/');
  if (slash == std::string::npos)
    return base::InvalidArgument("network: subnet '" + cidr + "' is not CIDR");
  in_addr a{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &a) != 1) {
    return base::InvalidArgument("network: subnet '" + cidr + "' has a bad address");
  }
  auto p = base::ParseInt(std::string_view(cidr).substr(slash + 1));
  if (!p || *p < 8 || *p > 30) return base::InvalidArgument("network: subnet prefix must be 8..30");
  uint32_t mask = ~0u << (32 - *p);
  return Subnet{ntohl(a.s_addr) & mask, static_cast<int>(*p)};
}

std::string Ip(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

std::mutex g_mu;
std::set<uint32_t> g_slots;  // addresses in use by this process
std::set<std::string> g_bridges_ready;

Status EnsureBridge(const NetworkSpec& spec, const Subnet& net) {
  // Called with g_mu held.
  if (g_bridges_ready.count(spec.bridge)) return Status::Ok();
  if (!LinkExists(spec.bridge)) {
    Status st = RunTool({"ip", "link", "add", spec.bridge, "type", "bridge"});
    if (!st.ok() && !LinkExists(spec.bridge)) return st;
  }
  std::string gw = Ip(net.base + 1) + "/" + std::to_string(net.prefix);
  RunTool({"ip", "addr", "replace", gw, "dev", spec.bridge}).IgnoreError();
  RETURN_IF_ERROR(RunTool({"ip", "link", "set", spec.bridge, "up"}));
  if (spec.masquerade) {
    std::string src = Ip(net.base) + "/" + std::to_string(net.prefix);
    if (!RunTool({"iptables", "-t", "nat", "-C", "POSTROUTING", "-s", src, "!", "-o", spec.bridge,
                  "-j", "MASQUERADE"})
             .ok()) {
      RETURN_IF_ERROR(RunTool({"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", src, "!", "-o",
                               spec.bridge, "-j", "MASQUERADE"}));
    }
  }
  g_bridges_ready.insert(spec.bridge);
  return Status::Ok();
}

Status Ioctl(int s, unsigned long req, void* arg, const std::string& what) {
  if (ioctl(s, req, arg) < 0) return base::ErrnoError("network: " + what);
  return Status::Ok();
}

// Inside the sandbox's namespace: address eth0, bring it up and add the default route.
// Plain ioctls — no tool has to exist inside.
Status ConfigureInside(uint32_t addr, int prefix, uint32_t gw) {
  base::UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return base::ErrnoError("network: socket");
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "eth0", IFNAMSIZ - 1);
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  sin->sin_addr.s_addr = htonl(addr);
  RETURN_IF_ERROR(Ioctl(s.get(), SIOCSIFADDR, &ifr, "set address of eth0"));
  sin->sin_addr.s_addr = htonl(~0u << (32 - prefix));
  RETURN_IF_ERROR(Ioctl(s.get(), SIOCSIFNETMASK, &ifr, "set netmask of eth0"));
  RETURN_IF_ERROR(Ioctl(s.get(), SIOCGIFFLAGS, &ifr, "get flags of eth0"));
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  RETURN_IF_ERROR(Ioctl(s.get(), SIOCSIFFLAGS, &ifr, "bring eth0 up"));
  struct rtentry rt {};
  auto* dst = reinterpret_cast<sockaddr_in*>(&rt.rt_dst);
  dst->sin_family = AF_INET;
  auto* gateway = reinterpret_cast<sockaddr_in*>(&rt.rt_gateway);
  gateway->sin_family = AF_INET;
  gateway->sin_addr.s_addr = htonl(gw);
  auto* mask = reinterpret_cast<sockaddr_in*>(&rt.rt_genmask);
  mask->sin_family = AF_INET;
  rt.rt_flags = RTF_UP | RTF_GATEWAY;
  RETURN_IF_ERROR(Ioctl(s.get(), SIOCADDRT, &rt, "add default route via " + Ip(gw)));
  return Status::Ok();
}

// ---- a little rtnetlink: veth pairs without spawning `ip` ----------------------------

class NlMessage {
 public:
  NlMessage(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    auto* h = hdr();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | NLM_F_ACK | flags);
  }
  void Put(const void* data, size_t len) {
    size_t at = buf_.size();
    buf_.resize(at + NLMSG_ALIGN(len));
    std::memcpy(buf_.data() + at, data, len);
  }
  void Attr(uint16_t type, const void* data, size_t len) {
    struct rtattr a {
      static_cast<unsigned short>(RTA_LENGTH(len)), type
    };
    size_t at = buf_.size();
    buf_.resize(at + RTA_SPACE(len));
    std::memcpy(buf_.data() + at, &a, sizeof(a));
    if (len > 0) std::memcpy(buf_.data() + at + RTA_LENGTH(0), data, len);
  }
  void Attr(uint16_t type, const std::string& s) { Attr(type, s.c_str(), s.size() + 1); }
  void AttrU32(uint16_t type, uint32_t v) { Attr(type, &v, sizeof(v)); }
  size_t Begin(uint16_t type) {
    size_t at = buf_.size();
    Attr(type, nullptr, 0);
    return at;
  }
  void End(size_t at) {
    auto len = static_cast<unsigned short>(buf_.size() - at);
    std::memcpy(buf_.data() + at, &len, sizeof(len));
  }
  std::string& Finish() {
    hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  std::string buf_;
};

// Sends one request on a fresh NETLINK_ROUTE socket and waits for its ACK.
Status NlTalk(NlMessage& m, const std::string& what) {
  base::UniqueFd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s.valid()) return base::ErrnoError("netlink: socket");
  std::string& req = m.Finish();
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(s.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&kernel),
             sizeof(kernel)) < 0) {
    return base::ErrnoError("netlink: " + what);
  }
  alignas(nlmsghdr) char buf[8192];
  for (;;) {
    ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return base::ErrnoError("netlink: " + what);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_ERROR) {
        auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
        if (e->error == 0) return Status::Ok();
        return base::IoError("netlink: " + what, -e->error);
      }
    }
  }
}

// ip link add <host> master <bridge> up type veth peer name eth0 netns <fd> (up)
Status CreateVeth(const std::string& host, const std::string& bridge, int netns_fd) {
  unsigned bridge_index = if_nametoindex(bridge.c_str());
  if (bridge_index == 0) return base::ErrnoError("netlink: bridge " + bridge);
  NlMessage m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  m.Put(&ifi, sizeof(ifi));
  m.Attr(IFLA_IFNAME, host);
  m.AttrU32(IFLA_MASTER, bridge_index);
  size_t linkinfo = m.Begin(IFLA_LINKINFO);
  m.Attr(IFLA_INFO_KIND, std::string("veth"));
  size_t data = m.Begin(IFLA_INFO_DATA);
  size_t peer = m.Begin(VETH_INFO_PEER);
  ifinfomsg peer_ifi{};
  peer_ifi.ifi_family = AF_UNSPEC;
  m.Put(&peer_ifi, sizeof(peer_ifi));  // brought up from inside (ConfigureInside)
  m.Attr(IFLA_IFNAME, std::string("eth0"));
  m.AttrU32(IFLA_NET_NS_FD, static_cast<uint32_t>(netns_fd));
  m.End(peer);
  m.End(data);
  m.End(linkinfo);
  return NlTalk(m, "create veth " + host + " (peer eth0 in the sandbox) on " + bridge);
}

Status DeleteLink(const std::string& name) {
  NlMessage m(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.Put(&ifi, sizeof(ifi));
  m.Attr(IFLA_IFNAME, name);
  return NlTalk(m, "delete link " + name);
}

}  // namespace

NetworkAttachment::~NetworkAttachment() {
  if (!host_veth.empty() && LinkExists(host_veth)) DeleteLink(host_veth).IgnoreError();
  std::lock_guard<std::mutex> lock(g_mu);
  g_slots.erase(slot);
}

Result<std::unique_ptr<NetworkAttachment>> AttachBridge(const NetworkSpec& spec, pid_t pid,
                                                        int netns_fd) {
  ASSIGN_OR_RETURN(Subnet net, ParseSubnet(spec.subnet));
  std::unique_ptr<NetworkAttachment> att(new NetworkAttachment());
  {
    std::lock_guard<std::mutex> lock(g_mu);
    RETURN_IF_ERROR(EnsureBridge(spec, net));
    uint32_t size = 1u << (32 - net.prefix);
    uint32_t slot = 2;
    while (slot < size - 1 && g_slots.count(slot)) ++slot;
    if (slot >= size - 1)
      return base::ResourceExhausted("network: subnet " + spec.subnet + " is full");
    g_slots.insert(slot);
    att->slot = slot;
  }
  // stx<pid hex><slot hex>: the owner's pid in the name lets orphan clean-up find veths of
  // dead servers.
  char host[IFNAMSIZ];
  std::snprintf(host, sizeof(host), "stx%x-%x", static_cast<unsigned>(getpid()) & 0xffffff,
                att->slot & 0xfffff);
  (void)pid;
  RETURN_IF_ERROR(CreateVeth(host, spec.bridge, netns_fd));
  att->host_veth = host;
  uint32_t addr = net.base + att->slot;
  uint32_t gw = net.base + 1;
  auto st = InNetns<bool>(netns_fd, [&]() -> Result<bool> {
    RETURN_IF_ERROR(ConfigureInside(addr, net.prefix, gw));
    return true;
  });
  if (!st.ok()) return st.status();
  att->address = Ip(addr);
  att->gateway = Ip(gw);
  return att;
}

Result<base::UniqueFd> ListenInNetns(int netns_fd, const std::string& ip, uint16_t port,
                                     int backlog) {
  ASSIGN_OR_RETURN(sockaddr_in addr, ParseAddr(ip, port));
  return InNetns<base::UniqueFd>(netns_fd, [&]() -> Result<base::UniqueFd> {
    base::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return base::ErrnoError("netns: socket");
    int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    std::string what = ip + ":" + std::to_string(port);
    if (bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
      return base::ErrnoError("netns: bind " + what);
    }
    if (listen(s.get(), backlog) < 0) return base::ErrnoError("netns: listen " + what);
    return s;
  });
}

Result<base::UniqueFd> BindUdpInNetns(int netns_fd, const std::string& ip, uint16_t port) {
  ASSIGN_OR_RETURN(sockaddr_in addr, ParseAddr(ip, port));
  return InNetns<base::UniqueFd>(netns_fd, [&]() -> Result<base::UniqueFd> {
    base::UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return base::ErrnoError("netns: socket");
    if (bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0)
      return base::ErrnoError("netns: bind udp " + ip + ":" + std::to_string(port));
    return s;
  });
}

Result<base::UniqueFd> ConnectInNetns(int netns_fd, const std::string& ip, uint16_t port) {
  ASSIGN_OR_RETURN(sockaddr_in addr, ParseAddr(ip, port));
  return InNetns<base::UniqueFd>(netns_fd, [&]() -> Result<base::UniqueFd> {
    base::UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) return base::ErrnoError("netns: socket");
    if (connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
      return base::ErrnoError("netns: connect " + ip + ":" + std::to_string(port));
    }
    return s;
  });
}

Status RemoveBridge(const std::string& name) {
  if (name.rfind("stratus", 0) != 0) {
    return base::InvalidArgument("network: refusing to delete non-stratus link '" + name + "'");
  }
  std::lock_guard<std::mutex> lock(g_mu);
  g_bridges_ready.erase(name);
  if (!LinkExists(name)) return Status::Ok();
  return RunTool({"ip", "link", "del", name});
}

Status CleanupOrphanVeths() {
  DIR* d = opendir("/sys/class/net");
  if (d == nullptr) return Status::Ok();
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("stx", 0) == 0) names.push_back(n);
  }
  closedir(d);
  Status first;
  for (const auto& n : names) {
    auto dash = n.find('-');
    if (dash == std::string::npos) continue;
    unsigned long owner = std::strtoul(n.substr(3, dash - 3).c_str(), nullptr, 16);
    if (owner == 0 || owner == static_cast<unsigned long>(getpid())) continue;
    if (kill(static_cast<pid_t>(owner), 0) == 0 || errno != ESRCH) continue;
    Status st = DeleteLink(n);
    if (!st.ok() && first.ok() && LinkExists(n)) first = st;
  }
  return first;
}

}  // namespace sandbox
