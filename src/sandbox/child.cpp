// Init of a sandbox. Runs in the cloned child: system calls only (see child.h).
#include "sandbox/child.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace sandbox::internal {

const char* StepName(Step s) {
  switch (s) {
    case Step::kNone:
      return "none";
    case Step::kWaitForParent:
      return "wait for the parent";
    case Step::kCloseFds:
      return "close inherited descriptors";
    case Step::kCgroupNamespace:
      return "unshare the cgroup namespace";
    case Step::kHostname:
      return "set the hostname";
    case Step::kMakeMountsPrivate:
      return "make / private (MS_REC|MS_PRIVATE)";
    case Step::kStagingTmpfs:
      return "mount the staging tmpfs";
    case Step::kStagingDirs:
      return "create upper/work/root in the staging tmpfs";
    case Step::kOverlay:
      return "mount the overlay root";
    case Step::kOpenRoot:
      return "open the new root";
    case Step::kMountOp:
      return "mount";
    case Step::kPivotRoot:
      return "pivot_root";
    case Step::kDetachOldRoot:
      return "detach the old root";
    case Step::kChdirRoot:
      return "chdir /";
    case Step::kReadOnlyRoot:
      return "remount / read-only";
    case Step::kLoopbackUp:
      return "bring loopback up";
    case Step::kSignals:
      return "block signals / signalfd";
    case Step::kReady:
      return "report ready";
    case Step::kStdio:
      return "set up stdin/stdout/stderr";
    case Step::kRlimit:
      return "setrlimit";
    case Step::kChdirCwd:
      return "chdir to the working directory";
    case Step::kCapBoundingSet:
      return "drop capabilities from the bounding set";
    case Step::kSetGroups:
      return "setgroups";
    case Step::kSetGid:
      return "setresgid";
    case Step::kSetUid:
      return "setresuid";
    case Step::kCapSet:
      return "capset";
    case Step::kNoNewPrivs:
      return "prctl(PR_SET_NO_NEW_PRIVS)";
    case Step::kSeccomp:
      return "install the seccomp filter";
    case Step::kExec:
      return "execve";
    case Step::kFork:
      return "fork";
    case Step::kClaimMount:
      return "mount into the running sandbox";
  }
  return "?";
}

namespace {

// ---- tiny syscall-only helpers --------------------------------------------------------

size_t Len(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

// Appends `s` to buf (capacity cap) at *pos; false when it does not fit.
bool Append(char* buf, size_t cap, size_t* pos, const char* s, size_t n) {
  if (*pos + n + 1 > cap) return false;
  for (size_t i = 0; i < n; ++i) buf[*pos + i] = s[i];
  *pos += n;
  buf[*pos] = '\0';
  return true;
}

// "/proc/self/fd/<fd>" for mount(2) on a descriptor.
void FdPath(int fd, char out[32]) {
  const char* prefix = "/proc/self/fd/";
  size_t pos = 0;
  Append(out, 32, &pos, prefix, Len(prefix));
  char digits[12];
  int n = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) out[pos++] = digits[--n];
  out[pos] = '\0';
}

int OpenAt2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

// Opens `rel` (relative to the new root, resolved as if rootfd were "/", so no symlink
// in a layer can lead outside) as O_PATH. With create: missing directories are created
// (the last component as a file when as_file). Returns -1 with errno set.
int ResolveInRoot(int rootfd, const char* rel, bool create, bool as_file, uint32_t mode,
                  int depth = 0) {
  constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  constexpr uint64_t kFlags = O_PATH | O_CLOEXEC;
  int fd = OpenAt2(rootfd, rel[0] == '\0' ? "." : rel, kFlags, kResolve);
  if (fd >= 0 || errno != ENOENT || !create) return fd;
  // Walk the components, creating what is missing.
  char prefix[4096];
  size_t len = Len(rel);
  if (len >= sizeof(prefix)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int parent = OpenAt2(rootfd, ".", kFlags, kResolve);
  if (parent < 0) return -1;
  size_t start = 0;
  while (start < len) {
    size_t end = start;
    while (end < len && rel[end] != '/') ++end;
    if (end == start) {  // "//"
      ++start;
      continue;
    }
    for (size_t i = 0; i < end; ++i) prefix[i] = rel[i];
    prefix[end] = '\0';
    char name[256];
    if (end - start >= sizeof(name)) {
      close(parent);
      errno = ENAMETOOLONG;
      return -1;
    }
    for (size_t i = start; i < end; ++i) name[i - start] = rel[i];
    name[end - start] = '\0';
    bool last = end == len;
    int next = OpenAt2(rootfd, prefix, kFlags, kResolve);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (last && as_file) {
        rc = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (rc >= 0) close(rc);
      } else {
        rc = mkdirat(parent, name, last ? mode : 0755);
      }
      if (rc < 0 && errno != EEXIST) {
        close(parent);
        return -1;
      }
      next = OpenAt2(rootfd, prefix, kFlags, kResolve);
      if (next < 0 && errno == ENOENT) {
        // A dangling symlink: create its target instead — still inside the root, because
        // the rewritten path is resolved with RESOLVE_IN_ROOT again.
        char link[4096];
        ssize_t n = readlinkat(parent, name, link, sizeof(link) - 1);
        close(parent);
        if (n <= 0 || depth >= 8) {
          errno = n <= 0 ? ENOENT : ELOOP;
          return -1;
        }
        link[n] = '\0';
        char rewritten[4096];
        size_t pos = 0;
        bool ok = true;
        if (link[0] != '/') ok = Append(rewritten, sizeof(rewritten), &pos, rel, start);
        ok = ok && Append(rewritten, sizeof(rewritten), &pos, link, static_cast<size_t>(n));
        if (!last) {
          ok = ok && Append(rewritten, sizeof(rewritten), &pos, "/", 1) &&
               Append(rewritten, sizeof(rewritten), &pos, rel + end + 1, len - end - 1);
        }
        if (!ok) {
          errno = ENAMETOOLONG;
          return -1;
        }
        const char* r = rewritten;
        while (*r == '/') ++r;
        return ResolveInRoot(rootfd, r, create, as_file, mode, depth + 1);
      }
    }
    close(parent);
    if (next < 0) return -1;
    parent = next;
    start = end + 1;
  }
  return parent;
}

// Opens the parent directory of `rel` inside the root (creating it) and points *name at
// the last component.
int ResolveParent(int rootfd, const char* rel, const char** name) {
  char dir[4096];
  size_t len = Len(rel);
  if (len >= sizeof(dir)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  size_t slash = len;
  while (slash > 0 && rel[slash - 1] != '/') --slash;
  *name = rel + slash;
  for (size_t i = 0; i < slash; ++i) dir[i] = rel[i];
  dir[slash > 0 ? slash - 1 : 0] = '\0';
  return ResolveInRoot(rootfd, dir, true, false, 0755);
}

[[noreturn]] void SetupFailed(int control_fd, Step step, int err, int index) {
  EventMsg m;
  std::memset(&m, 0, sizeof(m));
  m.type = MsgType::kSetupFailed;
  m.error = ChildError{step, err, index};
  ssize_t rc = send(control_fd, &m, sizeof(m), MSG_NOSIGNAL);
  (void)rc;
  _exit(1);
}

int MountAttrRo(int tree, bool read_only, bool recursive) {
  struct mount_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (read_only ? MOUNT_ATTR_RDONLY : 0);
  return static_cast<int>(syscall(SYS_mount_setattr, tree, "",
                                  AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                                  sizeof(attr)));
}

int MoveMount(int tree, int target_fd) {
  return static_cast<int>(syscall(SYS_move_mount, tree, "", target_fd, "",
                                  MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
}

int OpenTree(int dirfd, const char* path, unsigned flags) {
  return static_cast<int>(syscall(SYS_open_tree, dirfd, path, flags));
}

// Applies one MountOp inside the new root. Returns 0 or -1 with errno set.
int ApplyMount(int rootfd, const MountOp& op) {
  switch (op.kind) {
    case MountKind::kMkdir: {
      int fd = ResolveInRoot(rootfd, op.target, true, false, op.mode);
      if (fd < 0) return -1;
      close(fd);
      return 0;
    }
    case MountKind::kFs: {
      int fd = ResolveInRoot(rootfd, op.target, !op.must_exist, false, 0755);
      if (fd < 0) return (op.must_exist && errno == ENOENT) ? 0 : -1;
      char path[32];
      FdPath(fd, path);
      int rc = mount(op.source, path, op.fstype, op.flags, op.data);
      int saved = errno;
      close(fd);
      errno = saved;
      return rc;
    }
    case MountKind::kBind: {
      struct stat st;
      if (stat(op.source, &st) < 0) return (op.optional && errno == ENOENT) ? 0 : -1;
      unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (op.recursive ? AT_RECURSIVE : 0);
      int tree = OpenTree(AT_FDCWD, op.source, flags);
      if (tree < 0) return -1;
      int rc = MountAttrRo(tree, op.read_only, op.recursive);
      int fd = -1;
      if (rc == 0) {
        fd = ResolveInRoot(rootfd, op.target, !op.must_exist, !S_ISDIR(st.st_mode), 0755);
        if (fd < 0 && op.must_exist && errno == ENOENT) {
          close(tree);
          return 0;
        }
        rc = fd < 0 ? -1 : MoveMount(tree, fd);
      }
      int saved = errno;
      if (fd >= 0) close(fd);
      close(tree);
      errno = saved;
      return rc;
    }
    case MountKind::kRemountRo: {
      int fd = ResolveInRoot(rootfd, op.target, false, false, 0);
      if (fd < 0) return (op.must_exist && errno == ENOENT) ? 0 : -1;
      int tree =
          OpenTree(fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
      int rc = tree < 0 ? -1 : MountAttrRo(tree, true, true);
      if (rc == 0) rc = MoveMount(tree, fd);
      int saved = errno;
      if (tree >= 0) close(tree);
      close(fd);
      errno = saved;
      return rc;
    }
    case MountKind::kSymlink:
    case MountKind::kMknod: {
      const char* name = nullptr;
      int dir = ResolveParent(rootfd, op.target, &name);
      if (dir < 0) return -1;
      // O_PATH directories cannot be used for *at() creation calls on every kernel; reopen.
      char path[32];
      FdPath(dir, path);
      int real = open(path, O_DIRECTORY | O_CLOEXEC);
      int saved = errno;
      close(dir);
      if (real < 0) {
        errno = saved;
        return -1;
      }
      int rc = op.kind == MountKind::kSymlink ? symlinkat(op.source, real, name)
                                              : mknodat(real, name, op.mode, op.dev);
      saved = errno;
      close(real);
      if (rc < 0 && saved == EEXIST) return 0;
      errno = saved;
      return rc;
    }
  }
  errno = EINVAL;
  return -1;
}

void CloseAllExcept(int a, int b) {
  int lo = a < b ? a : b;
  int hi = a < b ? b : a;
  if (lo > 3) syscall(SYS_close_range, 3u, static_cast<unsigned>(lo - 1), 0u);
  if (hi > lo + 1)
    syscall(SYS_close_range, static_cast<unsigned>(lo + 1), static_cast<unsigned>(hi - 1), 0u);
  syscall(SYS_close_range, static_cast<unsigned>(hi + 1), ~0u, 0u);
}

// ---- a process started in the sandbox -------------------------------------------------

// The child shares init's memory until it execs (CLONE_VM|CLONE_VFORK), so a failure is
// reported by writing the ChildError where init will read it.
[[noreturn]] void ProcFailed(ChildError* out, Step step, int err, int index = -1) {
  *out = ChildError{step, err, index};
  _exit(127);
}

const char* FindEnv(char* const* envp, const char* key, size_t klen) {
  for (int i = 0; envp[i] != nullptr; ++i) {
    if (std::strncmp(envp[i], key, klen) == 0 && envp[i][klen] == '=') return envp[i] + klen + 1;
  }
  return nullptr;
}

// Runs in the forked child of init; ends in execve or _exit(127).
[[noreturn]] void ExecProcess(const ChildPlan& plan, ChildError* err_out, const int stdio[3],
                              uint32_t uid, uint32_t gid, const char* cwd, char* const* argv,
                              char* const* envp) {
  // The order matters: stdio and fds first (nothing may leak into the exec); rlimits and
  // the capability bounding set while we still hold CAP_SYS_RESOURCE/CAP_SETPCAP; ids;
  // then capabilities; chdir as the target user; no_new_privs; seccomp last so that the
  // filter does not have to allow any of the calls above.
  for (int i = 0; i < 3; ++i) {
    if (dup2(stdio[i], i) < 0) ProcFailed(err_out, Step::kStdio, errno, i);
  }
  syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);

  // Signal dispositions, rlimits and the capability bounding set were set once in init
  // (step 10) and are inherited; only the mask, session and umask are per process.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  setsid();
  umask(022);

  // Raw syscalls: glibc's set*id wrappers broadcast to every thread glibc believes exists —
  // in a clone of a threaded server those are the parent's threads, and it waits for them.
  if (!plan.user_namespace && syscall(SYS_setgroups, 0, nullptr) < 0)
    ProcFailed(err_out, Step::kSetGroups, errno);
  if (syscall(SYS_setresgid, gid, gid, gid) < 0) ProcFailed(err_out, Step::kSetGid, errno);
  if (syscall(SYS_setresuid, uid, uid, uid) < 0) ProcFailed(err_out, Step::kSetUid, errno);
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  {
    struct __user_cap_header_struct hdr {
      _LINUX_CAPABILITY_VERSION_3, 0
    };
    struct __user_cap_data_struct data[2];
    std::memset(data, 0, sizeof(data));
    if (uid == 0) {
      data[0].effective = data[0].permitted = static_cast<uint32_t>(plan.cap_keep);
      data[1].effective = data[1].permitted = static_cast<uint32_t>(plan.cap_keep >> 32);
    }
    if (syscall(SYS_capset, &hdr, data) < 0) ProcFailed(err_out, Step::kCapSet, errno);
  }
  if (chdir(cwd) < 0) ProcFailed(err_out, Step::kChdirCwd, errno);
  if (plan.no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    ProcFailed(err_out, Step::kNoNewPrivs, errno);
  }
  if (plan.seccomp.len > 0 && syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &plan.seccomp) < 0) {
    ProcFailed(err_out, Step::kSeccomp, errno);
  }

  const char* file = argv[0];
  if (std::strchr(file, '/') != nullptr) {
    execve(file, argv, envp);
    ProcFailed(err_out, Step::kExec, errno);
  }
  const char* path = FindEnv(envp, "PATH", 4);
  if (path == nullptr) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int last_err = ENOENT;
  size_t flen = Len(file);
  while (*path != '\0') {
    const char* colon = path;
    while (*colon != '\0' && *colon != ':') ++colon;
    char full[4096];
    size_t pos = 0;
    full[0] = '\0';
    if (colon != path) Append(full, sizeof(full), &pos, path, static_cast<size_t>(colon - path));
    if (pos == 0 || full[pos - 1] != '/') Append(full, sizeof(full), &pos, "/", 1);
    if (Append(full, sizeof(full), &pos, file, flen)) {
      execve(full, argv, envp);
      if (errno != ENOENT && errno != ENOTDIR) last_err = errno;
    }
    path = *colon == ':' ? colon + 1 : colon;
  }
  ProcFailed(err_out, Step::kExec, last_err);
}

// ---- init's command loop ---------------------------------------------------------------

constexpr int kMaxTracked = 256;
pid_t g_tracked[kMaxTracked];
alignas(8) char g_msg[kMaxRunMessage];
char* g_argv[kMaxArgs + 1];
char* g_envp[kMaxArgs + 1];

struct SpawnArgs {
  const ChildPlan* plan;
  int stdio[3];
  uint32_t uid, gid;
  const char* cwd;
};
SpawnArgs g_spawn;
ChildError g_spawn_error;
alignas(64) char g_stack[256 * 1024];

int SpawnMain(void*) {
  ExecProcess(*g_spawn.plan, &g_spawn_error, g_spawn.stdio, g_spawn.uid, g_spawn.gid, g_spawn.cwd,
              g_argv, g_envp);
}

void SendEvent(int control_fd, MsgType type, pid_t pid, int status, ChildError err) {
  EventMsg m;
  std::memset(&m, 0, sizeof(m));
  m.type = type;
  m.pid = pid;
  m.wait_status = status;
  m.error = err;
  ssize_t rc = send(control_fd, &m, sizeof(m), MSG_NOSIGNAL);
  (void)rc;
}

void Track(pid_t pid) {
  for (pid_t& p : g_tracked) {
    if (p == 0) {
      p = pid;
      return;
    }
  }
}

bool Untrack(pid_t pid) {
  for (pid_t& p : g_tracked) {
    if (p == pid) {
      p = 0;
      return true;
    }
  }
  return false;
}

void CloseFds(const int* fds, int n) {
  for (int i = 0; i < n; ++i) close(fds[i]);
}

void HandleRun(const ChildPlan& plan, int control_fd, size_t len, const int* fds, int nfds) {
  ChildError bad{Step::kExec, EINVAL, -1};
  if (len < sizeof(RunHeader) || nfds != 3) {
    CloseFds(fds, nfds);
    SendEvent(control_fd, MsgType::kRunFailed, 0, 0, bad);
    return;
  }
  RunHeader h;
  std::memcpy(&h, g_msg, sizeof(h));
  char* p = g_msg + sizeof(RunHeader);
  char* end = g_msg + len;
  if (h.argc == 0 || h.argc > kMaxArgs || h.envc > kMaxArgs || end[-1] != '\0') {
    CloseFds(fds, nfds);
    SendEvent(control_fd, MsgType::kRunFailed, 0, 0, bad);
    return;
  }
  const char* cwd = p;
  p += Len(p) + 1;
  for (uint32_t i = 0; i < h.argc; ++i) {
    if (p >= end) break;
    g_argv[i] = p;
    p += Len(p) + 1;
  }
  g_argv[h.argc] = nullptr;
  for (uint32_t i = 0; i < h.envc; ++i) {
    if (p >= end) break;
    g_envp[i] = p;
    p += Len(p) + 1;
  }
  g_envp[h.envc] = nullptr;

  // vfork-style: no page tables to copy, and init resumes exactly when the child has
  // exec'd (or failed, leaving its ChildError in g_spawn_error).
  g_spawn = SpawnArgs{&plan, {fds[0], fds[1], fds[2]}, h.uid, h.gid, cwd};
  g_spawn_error = ChildError{Step::kNone, 0, -1};
  pid_t pid =
      clone(SpawnMain, g_stack + sizeof(g_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, nullptr);
  int fork_err = errno;
#if defined(__SANITIZE_ADDRESS__)
  // The child ran instrumented frames on g_stack in our memory; its redzones would still
  // be poisoned for the next spawn.
  __asan_unpoison_memory_region(g_stack, sizeof(g_stack));
#endif
  CloseFds(fds, nfds);
  if (pid < 0) {
    SendEvent(control_fd, MsgType::kRunFailed, 0, 0, ChildError{Step::kFork, fork_err, -1});
    return;
  }
  if (g_spawn_error.step != Step::kNone) {
    int st;
    waitpid(pid, &st, 0);
    SendEvent(control_fd, MsgType::kRunFailed, pid, 0, g_spawn_error);
    return;
  }
  Track(pid);
  SendEvent(control_fd, MsgType::kStarted, pid, 0, ChildError{});
}

void HandleMount(int control_fd, size_t len, const int* fds, int nfds) {
  MountMsg h;
  if (len <= sizeof(MountMsg) || nfds != 1 || g_msg[len - 1] != '\0') {
    CloseFds(fds, nfds);
    SendEvent(control_fd, MsgType::kMountFailed, 0, 0, ChildError{Step::kClaimMount, EINVAL, -1});
    return;
  }
  std::memcpy(&h, g_msg, sizeof(h));
  const char* target = g_msg + sizeof(MountMsg);
  while (*target == '/') ++target;
  int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = root < 0 ? -1 : ResolveInRoot(root, target, true, false, 0755);
  int rc = fd < 0 ? -1 : MoveMount(fds[0], fd);
  int saved = errno;
  if (fd >= 0) close(fd);
  if (root >= 0) close(root);
  CloseFds(fds, nfds);
  if (rc < 0) {
    SendEvent(control_fd, MsgType::kMountFailed, 0, 0, ChildError{Step::kClaimMount, saved, -1});
  } else {
    SendEvent(control_fd, MsgType::kMounted, 0, 0, ChildError{});
  }
}

[[noreturn]] void CommandLoop(const ChildPlan& plan, int control_fd, int sig_fd) {
  for (;;) {
    struct pollfd pfd[2] = {{control_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      ssize_t rc = read(sig_fd, si, sizeof(si));
      (void)rc;
      int status;
      pid_t pid;
      while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (Untrack(pid)) SendEvent(control_fd, MsgType::kExited, pid, status, ChildError{});
      }
    }
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      int fds[4];
      int nfds = 0;
      alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 4)];
      struct iovec iov {
        g_msg, sizeof(g_msg)
      };
      struct msghdr mh;
      std::memset(&mh, 0, sizeof(mh));
      mh.msg_iov = &iov;
      mh.msg_iovlen = 1;
      mh.msg_control = cbuf;
      mh.msg_controllen = sizeof(cbuf);
      ssize_t n = recvmsg(control_fd, &mh, MSG_CMSG_CLOEXEC);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) _exit(0);  // the parent is gone: so is the sandbox
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
          int cnt = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
          for (int i = 0; i < cnt && nfds < 4; ++i) {
            std::memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          }
        }
      }
      if (static_cast<size_t>(n) < sizeof(MsgType)) {
        CloseFds(fds, nfds);
        continue;
      }
      MsgType type;
      std::memcpy(&type, g_msg, sizeof(type));
      switch (type) {
        case MsgType::kRun:
          HandleRun(plan, control_fd, static_cast<size_t>(n), fds, nfds);
          break;
        case MsgType::kSignal: {
          CloseFds(fds, nfds);
          SignalMsg m;
          if (static_cast<size_t>(n) < sizeof(m)) break;
          std::memcpy(&m, g_msg, sizeof(m));
          kill(m.pid == 0 ? -1 : m.pid, m.sig);
          break;
        }
        case MsgType::kMount:
          HandleMount(control_fd, static_cast<size_t>(n), fds, nfds);
          break;
        default:
          CloseFds(fds, nfds);
          break;
      }
    }
  }
}

}  // namespace

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  const int ctl = plan.control_fd;
  umask(0);  // modes below are meant literally; processes get 022 back

  // 1. Keep only our two descriptors: nothing of the server may leak into the sandbox.
  CloseAllExcept(plan.sync_fd, ctl);
  {
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd < 0) SetupFailed(ctl, Step::kCloseFds, errno, -1);
    for (int i = 0; i < 3; ++i) dup2(null_fd, i);
    if (null_fd > 2) close(null_fd);
  }
  // 2. Wait for the parent's "go" (id maps written under a user namespace).
  {
    char go = 0;
    ssize_t n;
    do {
      n = read(plan.sync_fd, &go, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) SetupFailed(ctl, Step::kWaitForParent, n < 0 ? errno : EPIPE, -1);
  }
  struct timespec t_go;
  clock_gettime(CLOCK_MONOTONIC, &t_go);
  if (plan.user_namespace) {
    if (syscall(SYS_setresgid, 0, 0, 0) < 0) SetupFailed(ctl, Step::kSetGid, errno, -1);
    if (syscall(SYS_setresuid, 0, 0, 0) < 0) SetupFailed(ctl, Step::kSetUid, errno, -1);
  }
  // 3. Hostname (the UTS namespace is ours from clone).
  if (sethostname(plan.hostname, Len(plan.hostname)) < 0) {
    SetupFailed(ctl, Step::kHostname, errno, -1);
  }
  // 4. Nothing we mount may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) {
    SetupFailed(ctl, Step::kMakeMountsPrivate, errno, -1);
  }
  // 5. The new root: a tmpfs at the staging directory (a lean root, or the home of the
  //    overlay's upper/work dirs), then the overlay on top of the layers.
  if (plan.staging_tmpfs_bytes > 0) {
    char opts[64];
    size_t pos = 0;
    const char* pre = "mode=0755,size=";
    Append(opts, sizeof(opts), &pos, pre, Len(pre));
    char digits[24];
    int n = 0;
    uint64_t v = plan.staging_tmpfs_bytes;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    while (n > 0) opts[pos++] = digits[--n];
    opts[pos] = '\0';
    if (mount("stratus", plan.staging, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
      SetupFailed(ctl, Step::kStagingTmpfs, errno, -1);
    }
  }
  char target[4096];
  size_t tpos = 0;
  Append(target, sizeof(target), &tpos, plan.staging, Len(plan.staging));
  if (plan.root_rel[0] != '\0') {
    Append(target, sizeof(target), &tpos, "/", 1);
    Append(target, sizeof(target), &tpos, plan.root_rel, Len(plan.root_rel));
  }
  if (plan.overlay_data != nullptr) {
    if (plan.overlay_upper_on_tmpfs) {
      int dfd = open(plan.staging, O_DIRECTORY | O_CLOEXEC);
      if (dfd < 0 || mkdirat(dfd, "upper", 0755) < 0 || mkdirat(dfd, "work", 0700) < 0 ||
          mkdirat(dfd, "root", 0755) < 0) {
        SetupFailed(ctl, Step::kStagingDirs, errno, -1);
      }
      close(dfd);
    }
    if (mount("overlay", target, "overlay", 0, plan.overlay_data) < 0) {
      SetupFailed(ctl, Step::kOverlay, errno, -1);
    }
  }
  int rootfd = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) SetupFailed(ctl, Step::kOpenRoot, errno, -1);
  // 6. Everything inside the root: binds, /proc, /dev, /tmp, masks. Targets are resolved
  //    with RESOLVE_IN_ROOT so a symlink in a layer cannot point a mount at the host.
  for (int i = 0; i < plan.mount_count; ++i) {
    if (ApplyMount(rootfd, plan.mounts[i]) < 0) SetupFailed(ctl, Step::kMountOp, errno, i);
  }
  // 7. Switch roots; the old root is detached so the host's tree is unreachable.
  if (fchdir(rootfd) < 0) SetupFailed(ctl, Step::kPivotRoot, errno, -1);
  close(rootfd);
  if (syscall(SYS_pivot_root, ".", ".") < 0) SetupFailed(ctl, Step::kPivotRoot, errno, -1);
  if (umount2(".", MNT_DETACH) < 0) SetupFailed(ctl, Step::kDetachOldRoot, errno, -1);
  if (chdir("/") < 0) SetupFailed(ctl, Step::kChdirRoot, errno, -1);
  if (plan.read_only_root &&
      mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
            nullptr) < 0) {
    SetupFailed(ctl, Step::kReadOnlyRoot, errno, -1);
  }
  // 8. Network: a fresh namespace has loopback down.
  if (plan.loopback_up) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    std::memcpy(ifr.ifr_name, "lo", 3);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) SetupFailed(ctl, Step::kLoopbackUp, errno, -1);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) SetupFailed(ctl, Step::kLoopbackUp, errno, -1);
    close(s);
  }
  // 9. The parent has made our cgroup meanwhile; once we are in it, the cgroup namespace is
  //    rooted there.
  {
    char in_cgroup = 0;
    ssize_t n;
    do {
      n = read(plan.sync_fd, &in_cgroup, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) SetupFailed(ctl, Step::kWaitForParent, n < 0 ? errno : EPIPE, -1);
    close(plan.sync_fd);
  }
  if (unshare(CLONE_NEWCGROUP) < 0) SetupFailed(ctl, Step::kCgroupNamespace, errno, -1);
  // 10. What every process inherits, done once here instead of per process: default signal
  //     dispositions (init itself only blocks and reads a signalfd), rlimits (init runs as
  //     root, so NPROC does not bind it), and the capability bounding set (init keeps its own
  //     effective capabilities; it never execs).
  {
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
  }
  for (int i = 0; i < plan.rlimit_count; ++i) {
    struct rlimit rl {
      plan.rlimits[i].soft, plan.rlimits[i].hard
    };
    if (setrlimit(plan.rlimits[i].resource, &rl) < 0) SetupFailed(ctl, Step::kRlimit, errno, i);
  }
  for (int cap = 0; cap <= plan.cap_last; ++cap) {
    if ((plan.cap_keep >> cap) & 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
      SetupFailed(ctl, Step::kCapBoundingSet, errno, cap);
    }
  }
  // 11. Signals: init reaps through a signalfd; everything else stays blocked (pid 1).
  sigset_t all;
  sigfillset(&all);
  if (sigprocmask(SIG_SETMASK, &all, nullptr) < 0) SetupFailed(ctl, Step::kSignals, errno, -1);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  int sig_fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) SetupFailed(ctl, Step::kSignals, errno, -1);
  // 12. Ready: the parent may now start processes.
  // The setup time (after the parent's go) travels in the READY event, for bench/.
  struct timespec t_ready;
  clock_gettime(CLOCK_MONOTONIC, &t_ready);
  int64_t setup_us =
      (t_ready.tv_sec - t_go.tv_sec) * 1000000 + (t_ready.tv_nsec - t_go.tv_nsec) / 1000;
  SendEvent(ctl, MsgType::kReady, 0, static_cast<int>(setup_us), ChildError{});
  CommandLoop(plan, ctl, sig_fd);
}

}  // namespace sandbox::internal
