// Cgroups for sandboxes: one interface, two back ends (v1 / hybrid hosts, and unified v2),
// chosen by looking at the host at start-up — never assumed.
//
// Layout: every sandbox gets `<parent>/<name>` where <parent> is, per hierarchy, the
// server's own cgroup plus "/stratus" (v1) or the configured base (v2), so sandboxes are
// accounted inside whatever limits the server itself runs under.
//
// Threading: a CgroupManager is thread-safe (it is immutable after Detect). A Cgroup is
// thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sandbox {

enum class CgroupVersion { kV1, kV2 };

struct CgroupLimits {
  std::optional<uint64_t> memory_bytes;  // hard limit, swap included where the host allows
  std::optional<uint64_t> cpu_weight;    // 1..10000, 100 = default (v1: shares = weight*1024/100)
  std::optional<double> cpu_quota;       // CPUs, e.g. 0.5 = half a CPU
  std::optional<uint64_t> pids_max;
};

struct CgroupUsage {
  uint64_t peak_memory_bytes = 0;
  std::chrono::nanoseconds cpu_time{0};
  uint64_t oom_kills = 0;
};

// One sandbox's cgroup. Removed (rmdir in every hierarchy) on destruction; the caller must
// have killed its processes first. Move-only by ownership (held in a unique_ptr).
class Cgroup {
 public:
  virtual ~Cgroup() = default;
  // Moves `pid` (a host pid) into the cgroup in every hierarchy.
  virtual base::Status AddProcess(pid_t pid) = 0;
  virtual base::Result<CgroupUsage> ReadUsage() const = 0;
  // Peak memory only, through a descriptor kept open after the first call (the per-invoke
  // REPORT line reads it; no path walk). 0 when it cannot be read. Not thread-safe.
  virtual uint64_t ReadPeakMemory() const = 0;
  // Number of processes in the cgroup now (0 when it cannot be read).
  virtual int CountProcesses() const = 0;
  // Removes the directories; retries briefly while the kernel finishes tearing tasks down.
  virtual base::Status Remove() = 0;
  // Directory in the first hierarchy, for messages and tests.
  virtual const std::string& path() const = 0;
};

struct CgroupOptions {
  // Force a back end instead of detecting (tests).
  std::optional<CgroupVersion> force_version;
  // v2: the base directory; empty = "<mount>/stratus".
  std::string v2_base;
  // Mount table to parse (tests); empty = /proc/self/mountinfo.
  std::string mountinfo_path;
};

class CgroupManager {
 public:
  virtual ~CgroupManager() = default;

  // Looks at the host: a cgroup2 mount at /sys/fs/cgroup means unified v2; otherwise the
  // v1 controllers found in the mount table (hybrid or legacy). Fails with a message
  // naming what is missing when neither is usable.
  static base::Result<std::unique_ptr<CgroupManager>> Detect(const CgroupOptions& options = {});

  virtual CgroupVersion version() const = 0;
  // Creates `<parent>/<name>` in every hierarchy with the limits applied. A limit for a
  // controller the host lacks is an error (FailedPrecondition, naming the controller);
  // an impossible value is InvalidArgument. On failure nothing is left behind.
  virtual base::Result<std::unique_ptr<Cgroup>> Create(std::string_view name,
                                                       const CgroupLimits& limits) = 0;
  // Names of the directories under the parent (for orphan clean-up).
  virtual std::vector<std::string> ListChildren() const = 0;
  // Kills every process in child `name` and removes it.
  virtual base::Status RemoveChild(std::string_view name) = 0;
  // Human description ("v1 memory=/sys/fs/cgroup/memory/... pids=...").
  virtual std::string Describe() const = 0;
};

// The process-wide manager, detected once. Fails the same way every time if detection did.
base::Result<CgroupManager*> DefaultCgroupManager();

}  // namespace sandbox
