// sandbox::Sandbox — the one way anything runs in Stratus (DESIGN §4).
//
// A Sandbox is a set of namespaces (mount, pid, ipc, uts, net, cgroup; user optionally)
// held by a small init process of ours (pid 1 inside, reaps zombies), a cgroup with memory /
// CPU / pids limits, and a root filesystem: an overlay of read-only layers with a writable
// upper, or a "lean" root of read-only binds of the host's runtime directories. Processes
// started in it run as a non-root user by default, with capabilities dropped to an
// allow-list, no_new_privs and a default seccomp filter.
//
// Lifetime: Create() returns a ready sandbox (init waiting for commands). Destroy() — or the
// destructor — kills every process in it and removes the cgroup; mounts and namespaces go
// away with the last process. If the server dies, init sees its control socket close and
// exits, taking the sandbox with it; CleanupOrphans() removes the cgroups left behind.
//
// Threading: a Sandbox is thread-compatible — use it from one thread at a time. Output
// sinks are called on a per-process reader thread. Different sandboxes are independent.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "base/status.h"
#include "base/time.h"
#include "sandbox/cgroup.h"
#include "sandbox/network.h"
#include "sandbox/port_forward.h"

namespace sandbox {

struct BindMount {
  std::string source;  // host path (file or directory); must exist
  std::string target;  // absolute path inside the sandbox
  bool read_only = true;
};

// A named volume: directory `<volume_root>/<name>` on the host, created on first use and
// shared by every sandbox that names it with the same volume_root (the sandboxes of one
// task). Its lifetime is the caller's (RemoveVolumes).
struct VolumeMount {
  std::string name;    // [A-Za-z0-9_.-]+
  std::string target;  // absolute path inside the sandbox
  bool read_only = false;
};

enum class RootKind { kOverlay, kLean };

struct OverlayRoot {
  // Read-only layers, bottom first (the image order). At least one.
  std::vector<std::string> lower_dirs;
  // Empty: the writable upper lives in a tmpfs of tmpfs_bytes and vanishes with the
  // sandbox. Otherwise a caller-owned directory on disk; "upper" and "work" are created in it.
  std::string writable_dir;
  uint64_t tmpfs_bytes = 256ull << 20;
};

struct LeanRoot {
  // Host directories bound read-only at the same path (symlinks such as /bin -> usr/bin on
  // merged-/usr hosts are recreated as symlinks). Missing ones are skipped.
  std::vector<std::string> host_dirs = {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64"};
  // Host /etc entries bound read-only (missing ones skipped).
  std::vector<std::string> etc_entries = {
      "passwd",          "group",        "hosts",      "resolv.conf",  "nsswitch.conf",
      "localtime",       "ld.so.cache",  "ld.so.conf", "ld.so.conf.d", "ssl",
      "ca-certificates", "alternatives", "mime.types"};
  std::string code_dir;  // bound read-only at /var/task when set
  // Function layers merged read-only at /opt, bottom first (one: a bind; more: an overlay).
  std::vector<std::string> opt_layers;
};

struct SandboxSpec {
  RootKind root = RootKind::kLean;
  OverlayRoot overlay;
  LeanRoot lean;
  bool read_only_root = false;
  std::vector<BindMount> binds;
  std::vector<VolumeMount> volumes;
  std::string volume_root;  // required when volumes are given, e.g. /var/lib/stratus/volumes/<task>
  uint64_t tmp_bytes = 64ull << 20;  // size of the /tmp tmpfs
  std::string hostname = "sandbox";

  CgroupLimits limits;
  // (resource, soft, hard); RLIMIT_NOFILE 1024 and RLIMIT_CORE 0 by default.
  struct Rlimit {
    int resource;
    uint64_t soft, hard;
  };
  std::vector<Rlimit> rlimits = {{7 /*RLIMIT_NOFILE*/, 1024, 1024}, {4 /*RLIMIT_CORE*/, 0, 0}};

  // Default identity of processes (overridable per process). 65534 = nobody.
  uint32_t uid = 65534, gid = 65534;
  // Capabilities kept for processes that run as uid 0 inside (names as in capabilities(7),
  // e.g. "CAP_CHOWN"). Non-root processes have none. Docker's default minus NET_RAW, MKNOD.
  std::vector<std::string> capabilities = {
      "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER",           "CAP_FSETID",
      "CAP_KILL",    "CAP_SETGID",       "CAP_SETUID",           "CAP_SETPCAP",
      "CAP_SETFCAP", "CAP_SYS_CHROOT",   "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"};
  bool no_new_privs = true;
  bool seccomp = true;

  // User namespace: uid/gid 0..size-1 inside map to host_base.. outside.
  bool user_namespace = false;
  uint32_t userns_host_base = 100000;
  uint32_t userns_size = 65536;

  NetworkSpec network;
  // nullptr = DefaultCgroupManager().
  CgroupManager* cgroups = nullptr;
  // How long Create waits for init to report ready.
  std::chrono::milliseconds setup_timeout{10000};
};

enum class OutputStream { kStdout, kStderr };
// Called once per line (without the newline; a final partial line is delivered too), on
// the process's reader thread, with the time the bytes were read.
using OutputSink =
    std::function<void(OutputStream stream, base::SystemTime when, std::string_view line)>;

enum class StdioMode {
  kNull,     // stdin/stdout/stderr are /dev/null
  kInherit,  // the server's own 0, 1, 2 (the CLI's pass-through)
  kCapture,  // stdout/stderr line by line into `sink`; stdin /dev/null
  kFds,      // stdout/stderr are the caller's `stdout_fd`/`stderr_fd`; stdin /dev/null
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] without '/' is searched in PATH of env
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  std::string cwd = "/";
  std::optional<uint32_t> uid, gid;  // default: the sandbox's
  StdioMode stdio = StdioMode::kNull;
  OutputSink sink;  // for kCapture
  // For kFds: borrowed, must stay open until Start returns (the process gets copies). The
  // caller reads them (e.g. both ends of one pipe, so that it can drain synchronously).
  int stdout_fd = -1, stderr_fd = -1;
};

struct ExitStatus {
  bool exited = false;  // normal exit with `code`
  int code = 0;
  int signal = 0;  // killed by `signal`
  bool oom_killed = false;
  bool timed_out = false;
  CgroupUsage usage;  // read when the process ended
  // Exit code as a shell reports it: code, or 128 + signal.
  int ShellCode() const { return exited ? code : 128 + signal; }
  std::string ToString() const;
};

class Sandbox;
class OutputPump;

// A process started in a sandbox. Move-only; must not outlive its Sandbox. Destroying it
// does not kill the process (Sandbox::Destroy does).
class Process {
 public:
  Process(Process&&) noexcept;
  Process& operator=(Process&&) noexcept;
  ~Process();

  pid_t pid() const { return pid_; }  // pid inside the sandbox's pid namespace

  // Waits for the process to end. With a timeout, kills the whole sandbox (every process
  // in it) when it expires and reports timed_out. Output captured so far is delivered
  // before Wait returns. Calling Wait again returns the same status.
  base::Result<ExitStatus> Wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  base::Status Signal(int sig);

 private:
  friend class Sandbox;
  Process(Sandbox* sandbox, pid_t pid, std::unique_ptr<OutputPump> pump);
  Sandbox* sandbox_ = nullptr;
  pid_t pid_ = 0;
  std::unique_ptr<OutputPump> pump_;
  std::optional<ExitStatus> status_;
  uint64_t oom_kills_before_ = 0;
};

// Where Create spent its time (bench/ reports these).
struct CreateTimings {
  std::chrono::nanoseconds total{0};       // all of Create
  std::chrono::nanoseconds clone{0};       // the clone syscall (namespace creation)
  std::chrono::nanoseconds init_setup{0};  // init's checklist, from "go" to READY
};

class Sandbox {
 public:
  // Builds a sandbox and waits until its init is ready. Bad input (paths, limits) is
  // InvalidArgument naming the object; a failing setup step names the step and errno.
  // On any failure nothing is left behind.
  static base::Result<std::unique_ptr<Sandbox>> Create(const SandboxSpec& spec);

  // Create followed by Start of `process`, with the run command queued while init sets up
  // (one round trip less: the cold-start path). Same errors as Create and Start.
  struct Started;
  static base::Result<Started> CreateAndStart(const SandboxSpec& spec, const ProcessSpec& process);

  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  const std::string& id() const { return id_; }
  pid_t init_pid() const { return init_pid_; }  // host pid of our init
  bool alive() const { return init_pid_ > 0 && !init_dead_; }

  // Starts a process (the entrypoint, or a further one, e.g. a health check).
  base::Result<Process> Start(const ProcessSpec& spec);
  // Sends `sig` to `pid` (a pid inside the sandbox) or, with pid 0, to every process.
  base::Status Signal(pid_t pid, int sig);
  // SIGTERM to every process, up to `grace` for them to go, then Kill().
  base::Status Stop(std::chrono::milliseconds grace);
  // SIGKILL to the whole tree at once (kills init; the kernel kills the pid namespace).
  base::Status Kill();
  // Kill() and release everything (cgroup, descriptors). Idempotent.
  base::Status Destroy();

  // Binds host path `source` at `target` inside the running sandbox (the pool uses this to
  // give a pre-created sandbox its code at claim time).
  base::Status MountInto(const std::string& source, const std::string& target, bool read_only);

  // Sockets inside the sandbox's network namespace, for the server's own use: the Runtime
  // API listener at 127.0.0.1:9001 of each function sandbox, health checks.
  base::Result<base::UniqueFd> ListenTcp(const std::string& ip, uint16_t port, int backlog = 128);
  // A UDP socket bound to ip:port in the sandbox's network namespace.
  base::Result<base::UniqueFd> BindUdp(const std::string& ip, uint16_t port);
  base::Result<base::UniqueFd> ConnectTcp(const std::string& ip, uint16_t port);
  // Publishes sandbox_port (on the sandbox's loopback, or any address inside) at
  // host_ip:host_port (0 = pick one; see the returned port). Lives until Destroy.
  base::Result<uint16_t> PublishPort(const std::string& host_ip, uint16_t host_port,
                                     uint16_t sandbox_port,
                                     const std::string& sandbox_ip = "127.0.0.1");
  int netns_fd() const { return netns_.get(); }
  // The sandbox's address on the bridge ("" for NetworkMode::kNone).
  const std::string& ip_address() const { return network_ ? network_->address : empty_; }

  base::Result<CgroupUsage> Usage() const;
  // Peak memory of the sandbox's cgroup so far (cheap: one pread). 0 once destroyed.
  uint64_t PeakMemory() const { return cgroup_ ? cgroup_->ReadPeakMemory() : 0; }
  const CreateTimings& timings() const { return timings_; }
  // Processes in the sandbox's cgroup right now, init included (0 once destroyed).
  int process_count() const { return cgroup_ ? cgroup_->CountProcesses() : 0; }

 private:
  friend class Process;
  Sandbox() = default;
  static base::Result<std::unique_ptr<Sandbox>> CreateImpl(const SandboxSpec& spec,
                                                           const ProcessSpec* first,
                                                           std::unique_ptr<OutputPump>* first_pump);
  base::Result<std::unique_ptr<OutputPump>> SendRun(const ProcessSpec& spec);
  base::Result<Process> AwaitStarted(const ProcessSpec& spec, std::unique_ptr<OutputPump> pump);
  base::Result<ExitStatus> WaitFor(pid_t pid, uint64_t oom_kills_before,
                                   std::optional<std::chrono::steady_clock::time_point> deadline);
  struct Event {
    uint32_t type = 0;
    pid_t pid = 0;
    int wait_status = 0;
    uint32_t step = 0;
    int err = 0;
    int index = -1;
  };
  // Reads one event from init, blocking until `deadline`. False on timeout; an EOF (init
  // gone) marks the sandbox dead and returns true with type 0.
  base::Result<bool> ReadEvent(std::optional<std::chrono::steady_clock::time_point> deadline,
                               Event* out);
  void ReapInit();
  // oom_kills_before: the cgroup's OOM-kill count when the process started, so that an
  // earlier OOM kill of another process is not blamed on this one.
  ExitStatus MakeStatus(int wait_status, uint64_t oom_kills_before);
  uint64_t OomKills() const;

  std::string id_;
  pid_t init_pid_ = -1;
  bool init_dead_ = false;
  base::UniqueFd control_;
  base::UniqueFd netns_;
  std::unique_ptr<Cgroup> cgroup_;
  std::unique_ptr<NetworkAttachment> network_;
  std::vector<std::unique_ptr<PortForward>> published_;
  std::map<pid_t, int> exits_;  // pid -> wait status, reported but not yet waited for
  uint32_t uid_ = 0, gid_ = 0;
  CreateTimings timings_;
  uint64_t processes_started_ = 0;
  std::string empty_;
};

struct Sandbox::Started {
  std::unique_ptr<Sandbox> sandbox;
  Process process;  // belongs to `sandbox`; destroy it first or together
};

// Removes what killed servers left behind: sandbox cgroups whose owning server process is
// gone, and host-side veths of the stratus bridge with no peer. Safe to run while other
// servers run (it only touches objects whose owner pid is dead).
base::Status CleanupOrphans();

// Deletes `volume_root` and every named volume in it (when the task is gone).
base::Status RemoveVolumes(const std::string& volume_root);

// Parses a capability name ("CAP_CHOWN" or "chown") to its number.
std::optional<int> CapabilityFromName(std::string_view name);

}  // namespace sandbox
