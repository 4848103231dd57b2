#include "sandbox/seccomp.h"

#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>

#include "base/fs.h"

namespace sandbox {
namespace {

constexpr const char* kDenied[] = {
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "get_mempolicy",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mbind",
    "mount",
    "mount_setattr",
    "move_mount",
    "move_pages",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "query_module",
    "quotactl",
    "quotactl_fd",
    "reboot",
    "request_key",
    "set_mempolicy",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
};

constexpr uint64_t kNamespaceFlags[] = {CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
                                        CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET};

base::Result<std::vector<sock_filter>> Build() {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return base::Internal("seccomp: seccomp_init failed");
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  // Without no_new_privs the kernel refuses the filter; init sets it, not libseccomp.
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
  for (const char* name : kDenied) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) return base::IoError(std::string("seccomp: deny ") + name, -rc);
  }
  for (uint64_t flag : kNamespaceFlags) {
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (rc < 0) return base::IoError("seccomp: deny clone with namespace flags", -rc);
  }
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc < 0) return base::IoError("seccomp: clone3 -> ENOSYS", -rc);

  base::UniqueFd mem(memfd_create("stratus-seccomp", MFD_CLOEXEC));
  if (!mem.valid()) return base::ErrnoError("seccomp: memfd_create");
  rc = seccomp_export_bpf(ctx, mem.get());
  if (rc < 0) return base::IoError("seccomp: export bpf", -rc);
  off_t size = lseek(mem.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) return base::Internal("seccomp: bad bpf size");
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(mem.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    return base::ErrnoError("seccomp: read exported bpf");
  }
  return prog;
}

}  // namespace

base::Result<const std::vector<sock_filter>*> DefaultSeccompProgram() {
  static std::once_flag once;
  static std::vector<sock_filter> program;
  static base::Status failure;
  std::call_once(once, [] {
    auto r = Build();
    if (r.ok()) {
      program = std::move(r).value();
    } else {
      failure = r.status();
    }
  });
  if (program.empty()) return failure;
  return &program;
}

}  // namespace sandbox
