// The default seccomp filter of every sandbox: allow by default, deny (EPERM) what Docker's
// default profile denies to an unprivileged container — mounting, module loading, kexec,
// keyrings, ptrace and process_vm_*, bpf, perf, io_uring, new namespaces via
// clone/unshare/setns, clock and swap changes — and clone3 with ENOSYS so libc falls back
// to clone, whose flags the filter can inspect.
//
// Built once per process with libseccomp and exported as a classic BPF program that the
// sandbox's init installs with a single syscall. Thread-safe.
#pragma once

#include <linux/filter.h>

#include <vector>

#include "base/status.h"

namespace sandbox {

// The default filter as BPF instructions, built on first use and cached.
base::Result<const std::vector<sock_filter>*> DefaultSeccompProgram();

}  // namespace sandbox
