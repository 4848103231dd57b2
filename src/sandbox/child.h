// The sandbox's init: the code that runs in the cloned child, between clone() and the
// entrypoint's execve(). Internal to the sandbox module.
//
// Threading: the parent may have many threads, so after clone() the child may only make
// system calls (STYLE §6): no allocation, no locks, no C++ library calls that might take
// them. Everything the child needs — strings, arrays, the seccomp program — is prepared
// by the parent in a ChildPlan before clone(); the child sees its own copy-on-write
// snapshot of that plan. Failures are reported as a fixed-size ChildError (step, errno,
// index of the object) and turned into a message by the parent.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstdint>

namespace sandbox::internal {

// One setup step of init, in order. The parent names them in error messages.
enum class Step : uint32_t {
  kNone = 0,
  kWaitForParent,
  kCloseFds,
  kCgroupNamespace,
  kHostname,
  kMakeMountsPrivate,
  kStagingTmpfs,
  kStagingDirs,
  kOverlay,
  kOpenRoot,
  kMountOp,  // index = which MountOp
  kPivotRoot,
  kDetachOldRoot,
  kChdirRoot,
  kReadOnlyRoot,
  kLoopbackUp,
  kSignals,
  kReady,
  // Per-process steps (entrypoint/exec child).
  kStdio,
  kRlimit,
  kChdirCwd,
  kCapBoundingSet,
  kSetGroups,
  kSetGid,
  kSetUid,
  kCapSet,
  kNoNewPrivs,
  kSeccomp,
  kExec,
  kFork,
  // Claim-time mounts into a running sandbox.
  kClaimMount,
};

const char* StepName(Step s);

struct ChildError {
  Step step;
  int32_t err;    // errno
  int32_t index;  // which MountOp / rlimit / ..., or -1
};

enum class MountKind : uint32_t {
  kMkdir,      // mkdir target (and parents) inside the new root
  kFs,         // mount(source, target, fstype, flags, data)
  kBind,       // bind a host path (file or dir) read-only or read-write
  kRemountRo,  // make an existing mount point in the new root read-only (bind over itself)
  kSymlink,    // symlink(source, target)
  kMknod,      // mknod(target, mode, dev)
};

struct MountOp {
  MountKind kind;
  const char* source;  // host path for kBind, fs source for kFs, link text for kSymlink
  const char* target;  // path relative to the new root, no leading '/'
  const char* fstype;
  unsigned long flags;  // mount flags for kFs
  const char* data;
  bool read_only;    // kBind
  bool recursive;    // kBind
  bool optional;     // kBind: skip silently when the source does not exist
  bool must_exist;   // skip silently when the target does not exist (masks in /proc)
  uint32_t mode;     // kMkdir / kMknod
  dev_t dev;         // kMknod
  const char* what;  // human name for errors ("mount proc on /proc")
};

struct Rlimit {
  int resource;
  uint64_t soft, hard;
};

constexpr int kMaxMountOps = 128;
constexpr int kMaxRlimits = 16;
constexpr int kMaxKeepFds = 8;

// Everything init needs, prepared by the parent. Pointers point into strings the parent
// keeps alive until clone() has returned.
struct ChildPlan {
  // Descriptors the child keeps (all others are closed at once).
  int sync_fd;     // read one byte = "cgroup and id maps are in place, go"
  int control_fd;  // SOCK_SEQPACKET to the parent: commands in, events out
  bool user_namespace;

  const char* hostname;
  const char* staging;  // host directory used as the mount point for the new root
  uint64_t staging_tmpfs_bytes;
  // Overlay root: lowerdir=...,upperdir=...,workdir=... ; null for a lean root.
  const char* overlay_data;
  bool overlay_upper_on_tmpfs;  // upper/work live in the staging tmpfs
  const char* root_rel;         // where the root is inside staging ("" or "root")
  MountOp mounts[kMaxMountOps];
  int mount_count;
  bool read_only_root;
  bool loopback_up;

  // Applied to every process started in the sandbox.
  Rlimit rlimits[kMaxRlimits];
  int rlimit_count;
  uint64_t cap_keep;  // bit per capability kept (only for uid 0 inside)
  int cap_last;       // /proc/sys/kernel/cap_last_cap
  bool no_new_privs;
  struct sock_fprog seccomp;  // len 0 = none
};

// Runs init. Never returns.
[[noreturn]] void ChildMain(const ChildPlan& plan);

// ---- Wire protocol on control_fd (SOCK_SEQPACKET, one message per record) ----------

enum class MsgType : uint32_t {
  // parent -> init
  kRun = 1,     // RunHeader + strings; SCM_RIGHTS stdin, stdout, stderr
  kSignal = 2,  // SignalMsg
  kMount = 3,   // MountMsg + target path; SCM_RIGHTS a detached mount (open_tree)
  // init -> parent
  kReady = 100,
  kSetupFailed,  // ChildError
  kStarted,      // StartedMsg
  kRunFailed,    // ChildError
  kExited,       // ExitedMsg
  kMounted,
  kMountFailed,  // ChildError
};

struct RunHeader {
  MsgType type;
  uint32_t uid, gid;
  uint32_t argc, envc;
  uint32_t strings_len;  // cwd \0 argv... \0 env... \0 follow the header
};

struct SignalMsg {
  MsgType type;
  int32_t pid;  // 0 = every process in the sandbox
  int32_t sig;
};

struct MountMsg {
  MsgType type;
  uint32_t target_len;  // target path (absolute, inside the sandbox) follows
};

struct EventMsg {
  MsgType type;
  int32_t pid;
  int32_t wait_status;
  ChildError error;
};

constexpr size_t kMaxRunMessage = 128 * 1024;
constexpr uint32_t kMaxArgs = 1024;

}  // namespace sandbox::internal
