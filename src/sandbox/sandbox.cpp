#include "sandbox/sandbox.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>

#include "base/strings.h"
#include "sandbox/child.h"
#include "sandbox/seccomp.h"

namespace sandbox {

using base::Result;
using base::Status;
using internal::ChildPlan;
using internal::MountKind;
using internal::MountOp;
using internal::MsgType;
using Clock = std::chrono::steady_clock;

namespace {

// Sends `msg` with up to 3 descriptors attached (SCM_RIGHTS) on the control socket.
// False with errno set on failure.
bool SendWithFds(int sock, const std::string& msg, const int* fds, size_t count) {
  if (count == 0 || count > 3) {
    errno = EINVAL;
    return false;
  }
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(3 * sizeof(int))];
  std::memset(cbuf, 0, sizeof(cbuf));
  struct iovec iov {
    const_cast<char*>(msg.data()), msg.size()
  };
  struct msghdr mh {};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = CMSG_SPACE(count * sizeof(int));
  struct cmsghdr* c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(count * sizeof(int));
  std::memcpy(CMSG_DATA(c), fds, count * sizeof(int));
  return sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0;
}

constexpr const char* kStagingDir = "/run/stratus/sandbox-root";
constexpr uint64_t kMinMemory = 4ull << 20;

std::string NewId() {
  static std::atomic<uint64_t> counter{0};
  return "sbx-" + std::to_string(getpid()) + "-" + std::to_string(counter.fetch_add(1) + 1);
}

Status EnsureStaging() {
  static std::once_flag once;
  static Status status;
  std::call_once(once, [] { status = base::MakeDirs(kStagingDir, 0755); });
  return status;
}

int LastCap() {
  static int last = [] {
    auto r = base::ReadFile("/proc/sys/kernel/cap_last_cap");
    if (!r.ok()) return 40;
    auto v = base::ParseInt(base::Trim(*r));
    return v && *v > 0 && *v < 64 ? static_cast<int>(*v) : 40;
  }();
  return last;
}

constexpr const char* kCapNames[] = {"chown",
                                     "dac_override",
                                     "dac_read_search",
                                     "fowner",
                                     "fsetid",
                                     "kill",
                                     "setgid",
                                     "setuid",
                                     "setpcap",
                                     "linux_immutable",
                                     "net_bind_service",
                                     "net_broadcast",
                                     "net_admin",
                                     "net_raw",
                                     "ipc_lock",
                                     "ipc_owner",
                                     "sys_module",
                                     "sys_rawio",
                                     "sys_chroot",
                                     "sys_ptrace",
                                     "sys_pacct",
                                     "sys_admin",
                                     "sys_boot",
                                     "sys_nice",
                                     "sys_resource",
                                     "sys_time",
                                     "sys_tty_config",
                                     "mknod",
                                     "lease",
                                     "audit_write",
                                     "audit_control",
                                     "setfcap",
                                     "mac_override",
                                     "mac_admin",
                                     "syslog",
                                     "wake_alarm",
                                     "block_suspend",
                                     "audit_read",
                                     "perfmon",
                                     "bpf",
                                     "checkpoint_restore"};

bool IsDir(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Rel(std::string_view abs) {
  while (!abs.empty() && abs.front() == '/') abs.remove_prefix(1);
  return std::string(abs);
}

// Owns the strings a ChildPlan points into.
class PlanBuilder {
 public:
  explicit PlanBuilder(ChildPlan* plan) : plan_(plan) {}
  const char* S(std::string v) {
    store_.push_back(std::move(v));
    return store_.back().c_str();
  }
  Status Add(MountOp op) {
    if (plan_->mount_count >= internal::kMaxMountOps) {
      return base::InvalidArgument("sandbox: too many mounts (max " +
                                   std::to_string(internal::kMaxMountOps) + ")");
    }
    plan_->mounts[plan_->mount_count++] = op;
    return Status::Ok();
  }
  Status Fs(const char* fstype, const std::string& target, unsigned long flags, std::string data,
            bool must_exist = false) {
    MountOp op{};
    op.kind = MountKind::kFs;
    op.source = S(fstype);
    op.fstype = op.source;
    op.target = S(Rel(target));
    op.flags = flags;
    op.data = data.empty() ? nullptr : S(std::move(data));
    op.must_exist = must_exist;
    op.what = S("mount " + std::string(fstype) + " on " + target);
    return Add(op);
  }
  Status Bind(const std::string& source, const std::string& target, bool read_only, bool optional,
              bool must_exist = false) {
    MountOp op{};
    op.kind = MountKind::kBind;
    op.source = S(source);
    op.target = S(Rel(target));
    op.read_only = read_only;
    op.recursive = true;
    op.optional = optional;
    op.must_exist = must_exist;
    op.what = S("bind " + source + " on " + target + (read_only ? " (ro)" : " (rw)"));
    return Add(op);
  }
  Status Symlink(const std::string& link_text, const std::string& target) {
    MountOp op{};
    op.kind = MountKind::kSymlink;
    op.source = S(link_text);
    op.target = S(Rel(target));
    op.what = S("symlink " + target + " -> " + link_text);
    return Add(op);
  }
  Status Mknod(const std::string& target, unsigned major, unsigned minor) {
    MountOp op{};
    op.kind = MountKind::kMknod;
    op.target = S(Rel(target));
    op.mode = S_IFCHR | 0666;
    op.dev = makedev(major, minor);
    op.what = S("mknod " + target);
    return Add(op);
  }
  Status ReadOnly(const std::string& target) {
    MountOp op{};
    op.kind = MountKind::kRemountRo;
    op.target = S(Rel(target));
    op.must_exist = true;
    op.what = S("make " + target + " read-only");
    return Add(op);
  }

 private:
  ChildPlan* plan_;
  std::deque<std::string> store_;
};

Status ValidateSpec(const SandboxSpec& spec) {
  if (spec.root == RootKind::kOverlay) {
    if (spec.overlay.lower_dirs.empty()) {
      return base::InvalidArgument("sandbox: overlay root needs at least one lower dir");
    }
    for (const auto& d : spec.overlay.lower_dirs) {
      if (d.empty() || d[0] != '/') {
        return base::InvalidArgument("sandbox: overlay lower dir '" + d + "' is not absolute");
      }
      if (d.find_first_of(",:") != std::string::npos) {
        return base::InvalidArgument("sandbox: overlay lower dir '" + d + "' contains ',' or ':'");
      }
      if (!IsDir(d))
        return base::InvalidArgument("sandbox: overlay lower dir '" + d + "' is not a directory");
    }
    if (!spec.overlay.writable_dir.empty() && !IsDir(spec.overlay.writable_dir)) {
      return base::InvalidArgument("sandbox: writable dir '" + spec.overlay.writable_dir +
                                   "' is not a directory");
    }
  } else {
    if (!spec.lean.code_dir.empty() && !IsDir(spec.lean.code_dir)) {
      return base::InvalidArgument("sandbox: code dir '" + spec.lean.code_dir +
                                   "' is not a directory");
    }
    for (const auto& d : spec.lean.opt_layers) {
      if (d.empty() || d[0] != '/' || d.find_first_of(",:") != std::string::npos || !IsDir(d)) {
        return base::InvalidArgument("sandbox: layer '" + d +
                                     "' is not an absolute directory path without ',' or ':'");
      }
    }
  }
  if (!spec.volumes.empty() && (spec.volume_root.empty() || spec.volume_root[0] != '/')) {
    return base::InvalidArgument("sandbox: volumes need an absolute volume_root");
  }
  for (const auto& v : spec.volumes) {
    if (v.name.empty() || v.name == "." || v.name == ".." ||
        v.name.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") !=
            std::string::npos) {
      return base::InvalidArgument("sandbox: bad volume name '" + v.name + "'");
    }
    if (v.target.empty() || v.target[0] != '/' || v.target.find("..") != std::string::npos) {
      return base::InvalidArgument("sandbox: volume target '" + v.target +
                                   "' must be absolute without '..'");
    }
  }
  for (const auto& b : spec.binds) {
    struct stat st;
    if (b.source.empty() || b.source[0] != '/' || stat(b.source.c_str(), &st) < 0) {
      return base::InvalidArgument("sandbox: bind source '" + b.source + "' does not exist");
    }
    if (b.target.empty() || b.target[0] != '/' || b.target.find("..") != std::string::npos) {
      return base::InvalidArgument("sandbox: bind target '" + b.target +
                                   "' must be absolute without '..'");
    }
  }
  const auto& l = spec.limits;
  if (l.memory_bytes && *l.memory_bytes < kMinMemory) {
    return base::InvalidArgument("sandbox: memory limit " + std::to_string(*l.memory_bytes) +
                                 " bytes is below the 4 MiB minimum");
  }
  if (l.cpu_weight && (*l.cpu_weight < 1 || *l.cpu_weight > 10000)) {
    return base::InvalidArgument("sandbox: cpu weight must be 1..10000");
  }
  if (l.cpu_quota && !(*l.cpu_quota >= 0.01 && *l.cpu_quota <= 1024)) {
    return base::InvalidArgument("sandbox: cpu quota must be 0.01..1024 CPUs");
  }
  if (l.pids_max && *l.pids_max < 1)
    return base::InvalidArgument("sandbox: pids limit must be >= 1");
  if (spec.tmp_bytes < 4096) return base::InvalidArgument("sandbox: /tmp size too small");
  if (spec.hostname.empty() || spec.hostname.size() > 64) {
    return base::InvalidArgument("sandbox: hostname must be 1..64 characters");
  }
  if (spec.rlimits.size() > static_cast<size_t>(internal::kMaxRlimits)) {
    return base::InvalidArgument("sandbox: too many rlimits");
  }
  for (const auto& r : spec.rlimits) {
    if (r.soft > r.hard) return base::InvalidArgument("sandbox: rlimit soft > hard");
  }
  return Status::Ok();
}

// The ordered list of mounts inside the new root. Why this order: the root's own binds
// first (they may create directories other mounts land in), then /proc and /dev, /tmp,
// the caller's binds (they may target anything above), and masks last so that nothing
// mounted later can cover them.
Status BuildMounts(const SandboxSpec& spec, PlanBuilder& b) {
  if (spec.root == RootKind::kLean) {
    for (const auto& d : spec.lean.host_dirs) {
      char link[4096];
      ssize_t n = readlink(d.c_str(), link, sizeof(link) - 1);
      if (n > 0) {
        RETURN_IF_ERROR(b.Symlink(std::string(link, static_cast<size_t>(n)), d));
      } else if (IsDir(d)) {
        RETURN_IF_ERROR(b.Bind(d, d, true, true));
      }
    }
    for (const auto& e : spec.lean.etc_entries) {
      RETURN_IF_ERROR(b.Bind("/etc/" + e, "/etc/" + e, true, true));
    }
    if (!spec.lean.code_dir.empty())
      RETURN_IF_ERROR(b.Bind(spec.lean.code_dir, "/var/task", true, false));
    const auto& layers = spec.lean.opt_layers;
    if (layers.size() == 1) {
      RETURN_IF_ERROR(b.Bind(layers[0], "/opt", true, false));
    } else if (layers.size() > 1) {
      std::string lower;
      for (auto it = layers.rbegin(); it != layers.rend(); ++it)
        lower += (lower.empty() ? "" : ":") + *it;
      RETURN_IF_ERROR(
          b.Fs("overlay", "/opt", MS_RDONLY | MS_NOSUID | MS_NODEV, "lowerdir=" + lower));
    }
  }
  RETURN_IF_ERROR(b.Fs("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  RETURN_IF_ERROR(b.Fs("tmpfs", "/dev", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536"));
  struct Dev {
    const char* name;
    unsigned major, minor;
  };
  constexpr Dev kDevices[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                              {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};
  for (const auto& d : kDevices) {
    std::string path = std::string("/dev/") + d.name;
    if (spec.user_namespace) {
      RETURN_IF_ERROR(b.Bind(path, path, false, false));
    } else {
      RETURN_IF_ERROR(b.Mknod(path, d.major, d.minor));
    }
  }
  RETURN_IF_ERROR(
      b.Fs("devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"));
  RETURN_IF_ERROR(b.Symlink("pts/ptmx", "/dev/ptmx"));
  RETURN_IF_ERROR(b.Symlink("/proc/self/fd", "/dev/fd"));
  RETURN_IF_ERROR(b.Symlink("/proc/self/fd/0", "/dev/stdin"));
  RETURN_IF_ERROR(b.Symlink("/proc/self/fd/1", "/dev/stdout"));
  RETURN_IF_ERROR(b.Symlink("/proc/self/fd/2", "/dev/stderr"));
  RETURN_IF_ERROR(
      b.Fs("tmpfs", "/dev/shm", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=67108864"));
  RETURN_IF_ERROR(b.Fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV,
                       "mode=1777,size=" + std::to_string(spec.tmp_bytes)));
  RETURN_IF_ERROR(b.Fs("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, ""));
  for (const auto& m : spec.binds) RETURN_IF_ERROR(b.Bind(m.source, m.target, m.read_only, false));
  for (const auto& v : spec.volumes) {
    RETURN_IF_ERROR(b.Bind(spec.volume_root + "/" + v.name, v.target, v.read_only, false));
  }
  // Masks and read-only paths, as Docker's defaults.
  for (const char* f : {"/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                        "/proc/timer_stats", "/proc/sched_debug"}) {
    RETURN_IF_ERROR(b.Bind("/dev/null", f, true, false, /*must_exist=*/true));
  }
  for (const char* d : {"/proc/acpi", "/proc/asound", "/proc/scsi", "/sys/firmware",
                        "/sys/devices/virtual/powercap"}) {
    RETURN_IF_ERROR(b.Fs("tmpfs", d, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0",
                         /*must_exist=*/true));
  }
  for (const char* d : {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}) {
    RETURN_IF_ERROR(b.ReadOnly(d));
  }
  return Status::Ok();
}

void SetNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

std::optional<int> CapabilityFromName(std::string_view name) {
  std::string n = base::ToLower(name);
  if (n.rfind("cap_", 0) == 0) n = n.substr(4);
  for (size_t i = 0; i < std::size(kCapNames); ++i) {
    if (n == kCapNames[i]) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::string ExitStatus::ToString() const {
  std::string s = exited ? "exited with code " + std::to_string(code)
                         : "killed by signal " + std::to_string(signal);
  if (oom_killed) s += " (out of memory)";
  if (timed_out) s += " (timed out)";
  return s;
}

// ---- OutputPump ----------------------------------------------------------------------

// Reads a process's stdout/stderr pipes on its own thread and hands the sink whole lines.
class OutputPump {
 public:
  OutputPump(base::UniqueFd out, base::UniqueFd err, OutputSink sink)
      : sink_(std::move(sink)), stop_(eventfd(0, EFD_CLOEXEC)) {
    fds_[0] = std::move(out);
    fds_[1] = std::move(err);
    thread_ = std::thread([this] { Run(); });
  }
  ~OutputPump() { Finish(); }

  // Delivers what is readable now (the process has ended), then stops.
  void Finish() {
    if (!thread_.joinable()) return;
    uint64_t one = 1;
    ssize_t n = write(stop_.get(), &one, sizeof(one));
    (void)n;
    thread_.join();
  }

 private:
  static constexpr size_t kMaxLine = 256 * 1024;

  void Emit(int i, std::string_view line) {
    if (sink_)
      sink_(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, base::SystemClock().Now(),
            line);
  }

  // Reads once; false at EOF or error.
  bool ReadSome(int i) {
    char buf[65536];
    ssize_t n = read(fds_[i].get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) return true;
    if (n < 0 && errno == EAGAIN) return false;
    if (n <= 0) {
      if (!pending_[i].empty()) Emit(i, pending_[i]);
      pending_[i].clear();
      fds_[i].Reset();
      return false;
    }
    pending_[i].append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (;;) {
      size_t nl = pending_[i].find('\n', start);
      if (nl == std::string::npos) break;
      Emit(i, std::string_view(pending_[i]).substr(start, nl - start));
      start = nl + 1;
    }
    pending_[i].erase(0, start);
    if (pending_[i].size() > kMaxLine) {
      Emit(i, pending_[i]);
      pending_[i].clear();
    }
    return true;
  }

  void Run() {
    for (;;) {
      struct pollfd p[3] = {
          {fds_[0].get(), POLLIN, 0}, {fds_[1].get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
      if (!fds_[0].valid() && !fds_[1].valid()) return;
      if (poll(p, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds_[i].valid() && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) ReadSome(i);
      }
      if (p[2].revents & POLLIN) break;
    }
    // Stop requested: drain without blocking (other processes may still hold the pipe).
    for (int i = 0; i < 2; ++i) {
      if (!fds_[i].valid()) continue;
      SetNonBlocking(fds_[i].get());
      while (fds_[i].valid() && ReadSome(i)) {
      }
      if (!pending_[i].empty()) Emit(i, pending_[i]);
      pending_[i].clear();
      fds_[i].Reset();
    }
  }

  OutputSink sink_;
  base::UniqueFd fds_[2];
  std::string pending_[2];
  base::UniqueFd stop_;
  std::thread thread_;
};

// ---- Process ---------------------------------------------------------------------------

Process::Process(Sandbox* sandbox, pid_t pid, std::unique_ptr<OutputPump> pump)
    : sandbox_(sandbox), pid_(pid), pump_(std::move(pump)) {}
Process::Process(Process&&) noexcept = default;
Process& Process::operator=(Process&&) noexcept = default;
Process::~Process() = default;

Result<ExitStatus> Process::Wait(std::optional<std::chrono::milliseconds> timeout) {
  if (status_) return *status_;
  if (sandbox_ == nullptr) return base::FailedPrecondition("sandbox: wait on a moved-from process");
  std::optional<Clock::time_point> deadline;
  if (timeout) deadline = Clock::now() + *timeout;
  auto r = sandbox_->WaitFor(pid_, oom_kills_before_, deadline);
  if (pump_) pump_->Finish();
  if (!r.ok()) return r.status();
  status_ = *r;
  return *status_;
}

Status Process::Signal(int sig) {
  if (sandbox_ == nullptr) return base::FailedPrecondition("sandbox: signal a moved-from process");
  if (status_)
    return base::FailedPrecondition("sandbox: process " + std::to_string(pid_) + " has exited");
  return sandbox_->Signal(pid_, sig);
}

// ---- Sandbox -----------------------------------------------------------------------------

Result<std::unique_ptr<Sandbox>> Sandbox::Create(const SandboxSpec& spec) {
  return CreateImpl(spec, nullptr, nullptr);
}

Result<Sandbox::Started> Sandbox::CreateAndStart(const SandboxSpec& spec,
                                                 const ProcessSpec& process) {
  std::unique_ptr<OutputPump> pump;
  ASSIGN_OR_RETURN(auto sb, CreateImpl(spec, &process, &pump));
  // With a bridge the veth is only attached after READY, so the run was not queued early.
  if (spec.network.mode == NetworkMode::kBridge) {
    ASSIGN_OR_RETURN(Process p, sb->Start(process));
    return Started{std::move(sb), std::move(p)};
  }
  ASSIGN_OR_RETURN(Process p, sb->AwaitStarted(process, std::move(pump)));
  return Started{std::move(sb), std::move(p)};
}

Result<std::unique_ptr<Sandbox>> Sandbox::CreateImpl(const SandboxSpec& spec,
                                                     const ProcessSpec* first,
                                                     std::unique_ptr<OutputPump>* first_pump) {
  // Parse, then act: every check on the caller's input happens before anything exists.
  auto t_begin = Clock::now();
  RETURN_IF_ERROR(ValidateSpec(spec));
  CgroupManager* cgroups = spec.cgroups;
  if (cgroups == nullptr) {
    ASSIGN_OR_RETURN(cgroups, DefaultCgroupManager());
  }
  RETURN_IF_ERROR(EnsureStaging());
  const std::vector<sock_filter>* seccomp = nullptr;
  if (spec.seccomp) {
    ASSIGN_OR_RETURN(seccomp, DefaultSeccompProgram());
  }
  uint64_t cap_keep = 0;
  for (const auto& name : spec.capabilities) {
    auto cap = CapabilityFromName(name);
    if (!cap) return base::InvalidArgument("sandbox: unknown capability '" + name + "'");
    cap_keep |= 1ull << *cap;
  }

  // The plan init follows (see child.h); strings live in `builder` until clone returns.
  auto plan = std::make_unique<ChildPlan>();
  std::memset(plan.get(), 0, sizeof(ChildPlan));
  PlanBuilder builder(plan.get());
  plan->hostname = builder.S(spec.hostname);
  plan->staging = kStagingDir;
  plan->user_namespace = spec.user_namespace;
  plan->read_only_root = spec.read_only_root;
  plan->loopback_up = true;
  plan->no_new_privs = spec.no_new_privs;
  plan->cap_keep = cap_keep;
  plan->cap_last = LastCap();
  if (seccomp != nullptr) {
    plan->seccomp.len = static_cast<unsigned short>(seccomp->size());
    plan->seccomp.filter = const_cast<sock_filter*>(seccomp->data());
  }
  for (const auto& r : spec.rlimits) {
    plan->rlimits[plan->rlimit_count++] = internal::Rlimit{r.resource, r.soft, r.hard};
  }
  if (spec.root == RootKind::kOverlay) {
    std::string lower;
    for (auto it = spec.overlay.lower_dirs.rbegin(); it != spec.overlay.lower_dirs.rend(); ++it) {
      if (!lower.empty()) lower += ':';
      lower += *it;
    }
    std::string upper, work;
    if (spec.overlay.writable_dir.empty()) {
      plan->staging_tmpfs_bytes = spec.overlay.tmpfs_bytes;
      plan->overlay_upper_on_tmpfs = true;
      plan->root_rel = "root";
      upper = std::string(kStagingDir) + "/upper";
      work = std::string(kStagingDir) + "/work";
    } else {
      upper = spec.overlay.writable_dir + "/upper";
      work = spec.overlay.writable_dir + "/work";
      RETURN_IF_ERROR(base::MakeDirs(upper, 0755));
      RETURN_IF_ERROR(base::MakeDirs(work, 0700));
      plan->root_rel = "";
    }
    std::string data = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
    if (data.size() >= 4000) {
      return base::InvalidArgument("sandbox: overlay options too long (" +
                                   std::to_string(spec.overlay.lower_dirs.size()) + " layers)");
    }
    plan->overlay_data = builder.S(data);
  } else {
    plan->staging_tmpfs_bytes = 16ull << 20;
    plan->root_rel = "";
  }
  // A new volume belongs to the sandbox's default user (as seen from the host).
  for (const auto& v : spec.volumes) {
    std::string dir = spec.volume_root + "/" + v.name;
    RETURN_IF_ERROR(base::MakeDirs(spec.volume_root, 0755));
    if (mkdir(dir.c_str(), 0755) == 0) {
      uint32_t base_id = spec.user_namespace ? spec.userns_host_base : 0;
      if (chown(dir.c_str(), base_id + spec.uid, base_id + spec.gid) < 0) {
        return base::ErrnoError("sandbox: chown volume " + dir);
      }
    } else if (errno != EEXIST) {
      return base::ErrnoError("sandbox: mkdir volume " + dir);
    }
  }
  RETURN_IF_ERROR(BuildMounts(spec, builder));

  std::unique_ptr<Sandbox> sb(new Sandbox());
  sb->id_ = NewId();
  sb->uid_ = spec.uid;
  sb->gid_ = spec.gid;

  // 1. Channels: a pipe that releases init twice ("go", then "you are in your cgroup"),
  //    and a socket for commands and events.
  int sync[2], ctl[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) {
    return base::ErrnoError("sandbox: socketpair");
  }
  base::UniqueFd sync_r(sync[0]), sync_w(sync[1]);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ctl) < 0) {
    return base::ErrnoError("sandbox: socketpair");
  }
  sb->control_.Reset(ctl[0]);
  base::UniqueFd child_ctl(ctl[1]);
  plan->sync_fd = sync_r.get();
  plan->control_fd = child_ctl.get();

  // 2. clone: init starts in new mount, pid, ipc, uts and net namespaces (and user, when
  //    asked); the cgroup namespace follows once init is inside its cgroup.
  unsigned long flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET;
  if (spec.user_namespace) flags |= CLONE_NEWUSER;
  auto t_clone = Clock::now();
  long pid = syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (pid == 0) internal::ChildMain(*plan);
  if (pid < 0) return base::ErrnoError("sandbox " + sb->id_ + ": clone");
  sb->init_pid_ = static_cast<pid_t>(pid);
  sb->timings_.clone = Clock::now() - t_clone;
  sync_r.Reset();
  child_ctl.Reset();

  // 3. Map ids (init needs them to act as root inside), keep a handle on the net namespace,
  //    and let init build its root while we make its cgroup: moving a task between v1
  //    cgroups waits for an RCU grace period, which overlaps with init's mounts this way.
  if (spec.user_namespace) {
    std::string map = "0 " + std::to_string(spec.userns_host_base) + " " +
                      std::to_string(spec.userns_size) + "\n";
    for (const char* f : {"uid_map", "gid_map"}) {
      std::string path = "/proc/" + std::to_string(pid) + "/" + f;
      base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd.valid() || write(fd.get(), map.data(), map.size()) < 0) {
        return base::ErrnoError("sandbox " + sb->id_ + ": write " + path);
      }
    }
  }
  {
    std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
    sb->netns_.Reset(open(ns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!sb->netns_.valid()) return base::ErrnoError("sandbox " + sb->id_ + ": open " + ns);
  }
  // A failed send means init died; its SETUP_FAILED event below says why.
  bool released = send(sync_w.get(), "g", 1, MSG_NOSIGNAL) == 1;

  // 4. The cgroup with its limits, and init in it, before init reports ready (and so
  //    before any process of the caller's runs).
  ASSIGN_OR_RETURN(sb->cgroup_, cgroups->Create(sb->id_, spec.limits));
  if (released) {
    RETURN_IF_ERROR(sb->cgroup_->AddProcess(sb->init_pid_).WithContext("sandbox " + sb->id_));
    send(sync_w.get(), "c", 1, MSG_NOSIGNAL);
  }
  sync_w.Reset();
  // The first process's run command can wait in the socket while init sets up: init reads
  // it right after READY, saving a round trip (not with a bridge: eth0 comes after READY).
  if (first != nullptr && released && spec.network.mode != NetworkMode::kBridge) {
    ASSIGN_OR_RETURN(*first_pump, sb->SendRun(*first));
  }

  // 5. Wait for init's verdict on its setup steps.
  Event ev;
  auto deadline = Clock::now() + spec.setup_timeout;
  for (;;) {
    ASSIGN_OR_RETURN(bool got, sb->ReadEvent(deadline, &ev));
    if (!got) return base::Unavailable("sandbox " + sb->id_ + ": init not ready within timeout");
    if (ev.type == static_cast<uint32_t>(MsgType::kReady)) {
      sb->timings_.init_setup = std::chrono::microseconds(ev.wait_status);
      break;
    }
    if (ev.type == static_cast<uint32_t>(MsgType::kSetupFailed)) {
      std::string what = internal::StepName(static_cast<internal::Step>(ev.step));
      if (ev.step == static_cast<uint32_t>(internal::Step::kMountOp) && ev.index >= 0 &&
          ev.index < plan->mount_count) {
        what = plan->mounts[ev.index].what;
      }
      Status st = base::IoError("sandbox " + sb->id_ + ": " + what, ev.err);
      if (ev.err == ENOENT || ev.err == ENOTDIR || ev.err == ELOOP || ev.err == EXDEV) {
        return base::InvalidArgument(st.message());
      }
      return st;
    }
    if (ev.type == 0) return base::Internal("sandbox " + sb->id_ + ": init died during setup");
  }

  // 6. Network beyond loopback.
  if (spec.network.mode == NetworkMode::kBridge) {
    ASSIGN_OR_RETURN(sb->network_, AttachBridge(spec.network, sb->init_pid_, sb->netns_.get()));
  }
  sb->timings_.total = Clock::now() - t_begin;
  return sb;
}

Sandbox::~Sandbox() { Destroy().IgnoreError(); }

Result<bool> Sandbox::ReadEvent(std::optional<Clock::time_point> deadline, Event* out) {
  if (init_dead_ || !control_.valid()) {
    *out = Event{};
    return true;
  }
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
      timeout_ms = left.count() < 0 ? 0 : static_cast<int>(left.count()) + 1;
    }
    struct pollfd p {
      control_.get(), POLLIN, 0
    };
    int rc = poll(&p, 1, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return base::ErrnoError("sandbox " + id_ + ": poll control socket");
    if (rc == 0) {
      if (deadline && Clock::now() >= *deadline) return false;
      continue;
    }
    internal::EventMsg m;
    ssize_t n = recv(control_.get(), &m, sizeof(m), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      init_dead_ = true;
      *out = Event{};
      return true;
    }
    if (static_cast<size_t>(n) < sizeof(m)) continue;
    out->type = static_cast<uint32_t>(m.type);
    out->pid = m.pid;
    out->wait_status = m.wait_status;
    out->step = static_cast<uint32_t>(m.error.step);
    out->err = m.error.err;
    out->index = m.error.index;
    return true;
  }
}

Result<Process> Sandbox::Start(const ProcessSpec& spec) {
  ASSIGN_OR_RETURN(auto pump, SendRun(spec));
  return AwaitStarted(spec, std::move(pump));
}

Result<std::unique_ptr<OutputPump>> Sandbox::SendRun(const ProcessSpec& spec) {
  if (!alive()) return base::FailedPrecondition("sandbox " + id_ + ": not running");
  if (spec.argv.empty() || spec.argv[0].empty()) {
    return base::InvalidArgument("sandbox " + id_ + ": empty argv");
  }
  if (spec.argv.size() > internal::kMaxArgs || spec.env.size() > internal::kMaxArgs) {
    return base::InvalidArgument("sandbox " + id_ + ": too many arguments or variables");
  }
  std::string msg(sizeof(internal::RunHeader), '\0');
  internal::RunHeader h{};
  h.type = MsgType::kRun;
  h.uid = spec.uid.value_or(uid_);
  h.gid = spec.gid.value_or(gid_);
  h.argc = static_cast<uint32_t>(spec.argv.size());
  h.envc = static_cast<uint32_t>(spec.env.size());
  auto add = [&](const std::string& s) {
    msg.append(s.c_str(), std::strlen(s.c_str()));
    msg.push_back('\0');
  };
  add(spec.cwd.empty() ? "/" : spec.cwd);
  for (const auto& a : spec.argv) add(a);
  for (const auto& e : spec.env) add(e);
  if (msg.size() > internal::kMaxRunMessage) {
    return base::InvalidArgument("sandbox " + id_ + ": argv and env exceed 128 KiB");
  }
  h.strings_len = static_cast<uint32_t>(msg.size() - sizeof(h));
  std::memcpy(msg.data(), &h, sizeof(h));

  // Descriptors for the process's stdin, stdout, stderr.
  base::UniqueFd null_fd, out_r, out_w, err_r, err_w;
  int fds[3];
  if (spec.stdio == StdioMode::kInherit) {
    fds[0] = 0, fds[1] = 1, fds[2] = 2;
  } else {
    null_fd.Reset(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_fd.valid()) return base::ErrnoError("sandbox: open /dev/null");
    fds[0] = fds[1] = fds[2] = null_fd.get();
    if (spec.stdio == StdioMode::kCapture) {
      int p1[2], p2[2];
      if (pipe2(p1, O_CLOEXEC) < 0) return base::ErrnoError("sandbox: pipe2 stdout");
      out_r.Reset(p1[0]), out_w.Reset(p1[1]);
      if (pipe2(p2, O_CLOEXEC) < 0) return base::ErrnoError("sandbox: pipe2 stderr");
      err_r.Reset(p2[0]), err_w.Reset(p2[1]);
      fds[1] = out_w.get();
      fds[2] = err_w.get();
    }
    if (spec.stdio == StdioMode::kFds) {
      if (spec.stdout_fd < 0 || spec.stderr_fd < 0)
        return base::InvalidArgument("sandbox " + id_ + ": kFds needs stdout_fd and stderr_fd");
      fds[1] = spec.stdout_fd;
      fds[2] = spec.stderr_fd;
    }
  }
  if (!SendWithFds(control_.get(), msg, fds, 3)) {
    return base::ErrnoError("sandbox " + id_ + ": send run command");
  }
  out_w.Reset();
  err_w.Reset();
  std::unique_ptr<OutputPump> pump;
  if (spec.stdio == StdioMode::kCapture) {
    pump = std::make_unique<OutputPump>(std::move(out_r), std::move(err_r), spec.sink);
  }
  return pump;
}

Result<Process> Sandbox::AwaitStarted(const ProcessSpec& spec, std::unique_ptr<OutputPump> pump) {
  Event ev;
  for (;;) {
    ASSIGN_OR_RETURN(bool got, ReadEvent(Clock::now() + std::chrono::seconds(10), &ev));
    if (!got) return base::Unavailable("sandbox " + id_ + ": no answer to run " + spec.argv[0]);
    if (ev.type == 0) return base::Unavailable("sandbox " + id_ + ": init died");
    if (ev.type == static_cast<uint32_t>(MsgType::kExited)) {
      exits_[ev.pid] = ev.wait_status;
      continue;
    }
    if (ev.type == static_cast<uint32_t>(MsgType::kStarted)) {
      Process p(this, ev.pid, std::move(pump));
      // A fresh cgroup has seen no OOM kill; later processes read the count.
      p.oom_kills_before_ = processes_started_++ == 0 ? 0 : OomKills();
      return p;
    }
    if (ev.type == static_cast<uint32_t>(MsgType::kRunFailed)) {
      Status st = base::IoError("sandbox " + id_ + ": start " + spec.argv[0] + ": " +
                                    internal::StepName(static_cast<internal::Step>(ev.step)),
                                ev.err);
      if (ev.err == ENOENT || ev.err == EACCES || ev.err == ENOEXEC) {
        return base::InvalidArgument(st.message());
      }
      return st;
    }
  }
}

uint64_t Sandbox::OomKills() const {
  if (!cgroup_) return 0;
  auto u = cgroup_->ReadUsage();
  return u.ok() ? u->oom_kills : 0;
}

ExitStatus Sandbox::MakeStatus(int ws, uint64_t oom_kills_before) {
  ExitStatus s;
  if (WIFEXITED(ws)) {
    s.exited = true;
    s.code = WEXITSTATUS(ws);
  } else if (WIFSIGNALED(ws)) {
    s.signal = WTERMSIG(ws);
  }
  if (cgroup_) {
    if (auto u = cgroup_->ReadUsage(); u.ok()) s.usage = *u;
  }
  s.oom_killed = s.signal == SIGKILL && s.usage.oom_kills > oom_kills_before;
  return s;
}

Result<ExitStatus> Sandbox::WaitFor(pid_t pid, uint64_t oom_kills_before,
                                    std::optional<Clock::time_point> deadline) {
  for (;;) {
    if (auto it = exits_.find(pid); it != exits_.end()) {
      int ws = it->second;
      exits_.erase(it);
      return MakeStatus(ws, oom_kills_before);
    }
    if (init_dead_ || init_pid_ <= 0) {
      // Init is gone, so is every process of the sandbox: killed with it.
      ExitStatus s = MakeStatus(SIGKILL, oom_kills_before);  // WIFSIGNALED(9)
      return s;
    }
    Event ev;
    ASSIGN_OR_RETURN(bool got, ReadEvent(deadline, &ev));
    if (!got) {
      RETURN_IF_ERROR(Kill());
      ExitStatus s = MakeStatus(SIGKILL, oom_kills_before);
      s.timed_out = true;
      return s;
    }
    if (ev.type == static_cast<uint32_t>(MsgType::kExited)) exits_[ev.pid] = ev.wait_status;
  }
}

Status Sandbox::Signal(pid_t pid, int sig) {
  if (!alive()) return base::FailedPrecondition("sandbox " + id_ + ": not running");
  internal::SignalMsg m{MsgType::kSignal, pid, sig};
  if (send(control_.get(), &m, sizeof(m), MSG_NOSIGNAL) < 0) {
    return base::ErrnoError("sandbox " + id_ + ": send signal");
  }
  return Status::Ok();
}

Status Sandbox::Stop(std::chrono::milliseconds grace) {
  if (alive()) {
    RETURN_IF_ERROR(Signal(0, SIGTERM));
    auto deadline = Clock::now() + grace;
    while (Clock::now() < deadline && cgroup_ && cgroup_->CountProcesses() > 1) {
      Event ev;
      ASSIGN_OR_RETURN(
          bool got,
          ReadEvent(std::min(deadline, Clock::now() + std::chrono::milliseconds(5)), &ev));
      if (got && ev.type == static_cast<uint32_t>(MsgType::kExited))
        exits_[ev.pid] = ev.wait_status;
      if (got && ev.type == 0) break;
    }
  }
  return Kill();
}

void Sandbox::ReapInit() {
  if (init_pid_ <= 0) return;
  int st;
  while (waitpid(init_pid_, &st, __WALL) < 0 && errno == EINTR) {
  }
  init_pid_ = -1;
  init_dead_ = true;
}

Status Sandbox::Kill() {
  if (init_pid_ > 0) {
    kill(init_pid_, SIGKILL);
    ReapInit();
  }
  return Status::Ok();
}

Status Sandbox::Destroy() {
  // Order: kill the tree (the kernel tears down the namespaces and their mounts with the
  // last process), then the host-side veth, then the now empty cgroup.
  published_.clear();
  Status st = Kill();
  control_.Reset();
  network_.reset();
  netns_.Reset();
  if (cgroup_) {
    Status rm = cgroup_->Remove();
    if (st.ok()) st = rm;
    cgroup_.reset();
  }
  return st;
}

Status Sandbox::MountInto(const std::string& source, const std::string& target, bool read_only) {
  if (!alive()) return base::FailedPrecondition("sandbox " + id_ + ": not running");
  if (target.empty() || target[0] != '/' || target.find("..") != std::string::npos) {
    return base::InvalidArgument("sandbox: mount target '" + target +
                                 "' must be absolute without '..'");
  }
  base::UniqueFd tree(
      static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, source.c_str(),
                               OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)));
  if (!tree.valid()) return base::ErrnoError("sandbox " + id_ + ": open_tree " + source);
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  if (syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr,
              sizeof(attr)) < 0) {
    return base::ErrnoError("sandbox " + id_ + ": mount_setattr " + source);
  }
  std::string msg(sizeof(internal::MountMsg), '\0');
  internal::MountMsg h{MsgType::kMount, static_cast<uint32_t>(target.size())};
  std::memcpy(msg.data(), &h, sizeof(h));
  msg += target;
  msg.push_back('\0');
  int fd = tree.get();
  if (!SendWithFds(control_.get(), msg, &fd, 1)) {
    return base::ErrnoError("sandbox " + id_ + ": send mount command");
  }
  tree.Reset();
  Event ev;
  for (;;) {
    ASSIGN_OR_RETURN(bool got, ReadEvent(Clock::now() + std::chrono::seconds(10), &ev));
    if (!got || ev.type == 0) return base::Unavailable("sandbox " + id_ + ": no answer to mount");
    if (ev.type == static_cast<uint32_t>(MsgType::kExited)) {
      exits_[ev.pid] = ev.wait_status;
      continue;
    }
    if (ev.type == static_cast<uint32_t>(MsgType::kMounted)) return Status::Ok();
    if (ev.type == static_cast<uint32_t>(MsgType::kMountFailed)) {
      return base::IoError("sandbox " + id_ + ": mount " + source + " on " + target, ev.err);
    }
  }
}

Result<base::UniqueFd> Sandbox::ListenTcp(const std::string& ip, uint16_t port, int backlog) {
  if (!netns_.valid()) return base::FailedPrecondition("sandbox " + id_ + ": no network namespace");
  return ListenInNetns(netns_.get(), ip, port, backlog);
}

Result<base::UniqueFd> Sandbox::BindUdp(const std::string& ip, uint16_t port) {
  if (!netns_.valid()) return base::FailedPrecondition("sandbox " + id_ + ": no network namespace");
  return BindUdpInNetns(netns_.get(), ip, port);
}

Result<base::UniqueFd> Sandbox::ConnectTcp(const std::string& ip, uint16_t port) {
  if (!netns_.valid()) return base::FailedPrecondition("sandbox " + id_ + ": no network namespace");
  return ConnectInNetns(netns_.get(), ip, port);
}

Result<uint16_t> Sandbox::PublishPort(const std::string& host_ip, uint16_t host_port,
                                      uint16_t sandbox_port, const std::string& sandbox_ip) {
  if (!alive() || !netns_.valid())
    return base::FailedPrecondition("sandbox " + id_ + ": not running");
  ASSIGN_OR_RETURN(auto pf,
                   PortForward::Start(netns_.get(), host_ip, host_port, sandbox_ip, sandbox_port));
  uint16_t port = pf->host_port();
  published_.push_back(std::move(pf));
  return port;
}

Result<CgroupUsage> Sandbox::Usage() const {
  if (!cgroup_) return base::FailedPrecondition("sandbox " + id_ + ": destroyed");
  return cgroup_->ReadUsage();
}

Status RemoveVolumes(const std::string& volume_root) {
  if (volume_root.empty() || volume_root == "/") {
    return base::InvalidArgument("sandbox: refusing to remove volume root '" + volume_root + "'");
  }
  std::error_code ec;
  std::filesystem::remove_all(volume_root, ec);
  if (ec) return base::IoError("sandbox: remove volumes " + volume_root, ec.value());
  return Status::Ok();
}

Status CleanupOrphans() {
  ASSIGN_OR_RETURN(CgroupManager * mgr, DefaultCgroupManager());
  Status first;
  for (const auto& name : mgr->ListChildren()) {
    // sbx-<owner pid>-<n>: an orphan when the owner is gone.
    auto parts = base::Split(name, '-');
    if (parts.size() != 3 || parts[0] != "sbx") continue;
    auto owner = base::ParseInt(parts[1]);
    if (!owner || *owner <= 0) continue;
    if (*owner == getpid() || kill(static_cast<pid_t>(*owner), 0) == 0 || errno != ESRCH) continue;
    Status st = mgr->RemoveChild(name);
    if (!st.ok() && first.ok()) first = st;
  }
  Status veths = CleanupOrphanVeths();
  if (!veths.ok() && first.ok()) first = veths;
  return first;
}

}  // namespace sandbox
