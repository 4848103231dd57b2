#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include "base/fs.h"
#include "base/strings.h"

namespace sandbox {
namespace {

using base::Result;
using base::Status;

Status WriteValue(const std::string& path, std::string_view value) {
  base::UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return base::ErrnoError("cgroup: open " + path);
  ssize_t n = write(fd.get(), value.data(), value.size());
  if (n < 0) {
    int err = errno;
    Status st = base::IoError("cgroup: write \"" + std::string(value) + "\" to " + path, err);
    if (err == EINVAL) return base::InvalidArgument(st.message());
    return st;
  }
  return Status::Ok();
}

Result<std::string> ReadValue(const std::string& path) {
  auto r = base::ReadFile(path);
  if (!r.ok()) return r.status().WithContext("cgroup");
  return std::string(base::Trim(*r));
}

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// "key value" lines (memory.events, cpu.stat, memory.oom_control).
std::optional<uint64_t> KeyedValue(std::string_view text, std::string_view key) {
  for (std::string_view line : base::Split(text, '\n')) {
    auto parts = base::Split(base::Trim(line), ' ');
    if (parts.size() == 2 && parts[0] == key) {
      auto v = base::ParseInt(parts[1]);
      if (v && *v >= 0) return static_cast<uint64_t>(*v);
    }
  }
  return std::nullopt;
}

// Reads a number from `path` through `*fd`, opening it on first use.
uint64_t PreadUint(base::UniqueFd* fd, const std::string& path) {
  if (!fd->valid()) fd->Reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd->valid()) return 0;
  char buf[32];
  ssize_t n = pread(fd->get(), buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  return strtoull(buf, nullptr, 10);
}

std::optional<uint64_t> ReadUint(const std::string& path) {
  auto r = ReadValue(path);
  if (!r.ok()) return std::nullopt;
  auto v = base::ParseInt(*r);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<uint64_t>(*v);
}

Status MakeDir(const std::string& path) {
  if (mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
    return base::ErrnoError("cgroup: mkdir " + path);
  }
  return Status::Ok();
}

// rmdir, retrying while the kernel still holds the group busy after its last task died.
Status RemoveDir(const std::string& path) {
  for (int attempt = 0;; ++attempt) {
    if (rmdir(path.c_str()) == 0 || errno == ENOENT) return Status::Ok();
    if (errno != EBUSY || attempt >= 400) return base::ErrnoError("cgroup: rmdir " + path);
    std::this_thread::sleep_for(std::chrono::microseconds(attempt < 20 ? 100 : 2000));
  }
}

void KillAll(const std::string& dir) {
  for (int round = 0; round < 50; ++round) {
    auto procs = base::ReadFile(dir + "/cgroup.procs");
    if (!procs.ok() || base::Trim(*procs).empty()) return;
    for (std::string_view line : base::Split(*procs, '\n')) {
      if (auto pid = base::ParseInt(base::Trim(line)); pid && *pid > 0) {
        kill(static_cast<pid_t>(*pid), SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

int CountLines(const std::string& path) {
  auto r = base::ReadFile(path);
  if (!r.ok()) return 0;
  int n = 0;
  for (char c : *r) n += c == '\n';
  return n;
}

std::vector<std::string> ListDirs(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') out.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

struct MountEntry {
  std::string mount_point;
  std::string fstype;
  std::vector<std::string> super_options;
};

std::vector<MountEntry> ParseMountInfo(const std::string& text) {
  std::vector<MountEntry> out;
  for (std::string_view line : base::Split(text, '\n')) {
    auto fields = base::Split(line, ' ');
    auto dash = std::find(fields.begin(), fields.end(), "-");
    if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
    MountEntry e;
    e.mount_point = std::string(fields[4]);
    e.fstype = std::string(dash[1]);
    for (auto o : base::Split(dash[3], ',')) e.super_options.emplace_back(o);
    out.push_back(std::move(e));
  }
  return out;
}

// controller (or "" for v2) -> our own cgroup path in that hierarchy.
std::map<std::string, std::string> OwnCgroups() {
  std::map<std::string, std::string> out;
  auto text = base::ReadFile("/proc/self/cgroup");
  if (!text.ok()) return out;
  for (std::string_view line : base::Split(*text, '\n')) {
    size_t a = line.find(':');
    size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
    if (b == std::string_view::npos) continue;
    std::string_view ctrls = line.substr(a + 1, b - a - 1);
    std::string path(line.substr(b + 1));
    if (ctrls.empty()) out[""] = path;
    for (auto c : base::Split(ctrls, ',')) out[std::string(c)] = path;
  }
  return out;
}

std::string JoinPath(const std::string& a, const std::string& b) {
  if (b.empty() || b == "/") return a;
  if (!a.empty() && a.back() == '/') return a + (b[0] == '/' ? b.substr(1) : b);
  return a + (b[0] == '/' ? b : "/" + b);
}

// ---- v1 ------------------------------------------------------------------------------

class V1Cgroup : public Cgroup {
 public:
  V1Cgroup(std::vector<std::string> dirs, std::string memory, std::string cpuacct)
      : dirs_(std::move(dirs)), memory_(std::move(memory)), cpuacct_(std::move(cpuacct)) {}
  ~V1Cgroup() override { Remove().IgnoreError(); }

  Status AddProcess(pid_t pid) override {
    std::string s = std::to_string(pid);
    for (const auto& d : dirs_) RETURN_IF_ERROR(WriteValue(d + "/cgroup.procs", s));
    return Status::Ok();
  }

  Result<CgroupUsage> ReadUsage() const override {
    CgroupUsage u;
    if (!memory_.empty()) {
      u.peak_memory_bytes = ReadUint(memory_ + "/memory.max_usage_in_bytes").value_or(0);
      if (auto oc = base::ReadFile(memory_ + "/memory.oom_control"); oc.ok()) {
        u.oom_kills = KeyedValue(*oc, "oom_kill").value_or(0);
      }
    }
    if (!cpuacct_.empty()) {
      u.cpu_time = std::chrono::nanoseconds(ReadUint(cpuacct_ + "/cpuacct.usage").value_or(0));
    }
    return u;
  }

  uint64_t ReadPeakMemory() const override {
    return memory_.empty() ? 0 : PreadUint(&peak_fd_, memory_ + "/memory.max_usage_in_bytes");
  }

  int CountProcesses() const override {
    return dirs_.empty() ? 0 : CountLines(dirs_.front() + "/cgroup.procs");
  }

  Status Remove() override {
    peak_fd_.Reset();
    Status first;
    for (const auto& d : dirs_) {
      Status st = RemoveDir(d);
      if (!st.ok() && first.ok()) first = st;
    }
    dirs_.clear();
    return first;
  }

  const std::string& path() const override { return primary_; }
  void set_primary(std::string p) { primary_ = std::move(p); }

 private:
  std::vector<std::string> dirs_;
  std::string memory_, cpuacct_, primary_;
  mutable base::UniqueFd peak_fd_;
};

class V1Manager : public CgroupManager {
 public:
  // controller -> parent directory ("<mount><own path>/stratus")
  explicit V1Manager(std::map<std::string, std::string> parents) : parents_(std::move(parents)) {}

  CgroupVersion version() const override { return CgroupVersion::kV1; }

  Result<std::unique_ptr<Cgroup>> Create(std::string_view name,
                                         const CgroupLimits& limits) override {
    auto need = [&](const char* ctrl) -> Status {
      if (parents_.count(ctrl) == 0) {
        return base::FailedPrecondition(std::string("cgroup v1: controller '") + ctrl +
                                        "' is not mounted on this host");
      }
      return Status::Ok();
    };
    if (limits.memory_bytes) RETURN_IF_ERROR(need("memory"));
    if (limits.cpu_weight || limits.cpu_quota) RETURN_IF_ERROR(need("cpu"));
    if (limits.pids_max) RETURN_IF_ERROR(need("pids"));

    std::vector<std::string> dirs;
    std::map<std::string, std::string> by_ctrl;
    // Only the hierarchies we use: memory and cpuacct always (limits, OOM, peak memory and
    // CPU time), cpu and pids when limited. Each one costs a mkdir, a migration and an rmdir.
    for (const auto& [ctrl, parent] : parents_) {
      if ((ctrl == "cpu" && !limits.cpu_weight && !limits.cpu_quota) ||
          (ctrl == "pids" && !limits.pids_max)) {
        continue;
      }
      std::string dir = parent + "/" + std::string(name);
      by_ctrl[ctrl] = dir;
      if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
    }
    // Create every directory first so that the cgroup owns them all (and removes them
    // on any failure below).
    std::vector<std::string> made;
    for (const auto& d : dirs) {
      RETURN_IF_ERROR(MakeDir(parent_of(d)));
      if (mkdir(d.c_str(), 0755) < 0) {
        Status st = base::ErrnoError("cgroup: mkdir " + d);
        for (const auto& m : made) RemoveDir(m).IgnoreError();
        return st;
      }
      made.push_back(d);
    }
    auto cg = std::make_unique<V1Cgroup>(made, by_ctrl.count("memory") ? by_ctrl["memory"] : "",
                                         by_ctrl.count("cpuacct") ? by_ctrl["cpuacct"] : "");
    cg->set_primary(made.empty() ? "" : made.front());
    if (limits.memory_bytes) {
      const std::string& m = by_ctrl["memory"];
      std::string v = std::to_string(*limits.memory_bytes);
      RETURN_IF_ERROR(WriteValue(m + "/memory.limit_in_bytes", v));
      if (Exists(m + "/memory.memsw.limit_in_bytes")) {
        RETURN_IF_ERROR(WriteValue(m + "/memory.memsw.limit_in_bytes", v));
      }
    }
    if (limits.cpu_weight) {
      uint64_t shares = std::max<uint64_t>(2, *limits.cpu_weight * 1024 / 100);
      RETURN_IF_ERROR(WriteValue(by_ctrl["cpu"] + "/cpu.shares", std::to_string(shares)));
    }
    if (limits.cpu_quota) {
      const std::string& c = by_ctrl["cpu"];
      RETURN_IF_ERROR(WriteValue(c + "/cpu.cfs_period_us", "100000"));
      auto quota = static_cast<int64_t>(std::llround(*limits.cpu_quota * 100000));
      RETURN_IF_ERROR(WriteValue(c + "/cpu.cfs_quota_us", std::to_string(quota)));
    }
    if (limits.pids_max) {
      RETURN_IF_ERROR(WriteValue(by_ctrl["pids"] + "/pids.max", std::to_string(*limits.pids_max)));
    }
    return std::unique_ptr<Cgroup>(std::move(cg));
  }

  std::vector<std::string> ListChildren() const override {
    std::vector<std::string> all;
    for (const auto& [ctrl, parent] : parents_) {
      for (auto& n : ListDirs(parent)) all.push_back(std::move(n));
    }
    std::sort(all.begin(), all.end());
    all.erase(std::unique(all.begin(), all.end()), all.end());
    return all;
  }

  Status RemoveChild(std::string_view name) override {
    Status first;
    std::vector<std::string> done;
    for (const auto& [ctrl, parent] : parents_) {
      std::string d = parent + "/" + std::string(name);
      if (std::find(done.begin(), done.end(), d) != done.end() || !Exists(d)) continue;
      done.push_back(d);
      KillAll(d);
      Status st = RemoveDir(d);
      if (!st.ok() && first.ok()) first = st;
    }
    return first;
  }

  std::string Describe() const override {
    std::string s = "cgroup v1";
    for (const auto& [ctrl, parent] : parents_) s += " " + ctrl + "=" + parent;
    return s;
  }

 private:
  static std::string parent_of(const std::string& d) { return base::DirName(d); }
  std::map<std::string, std::string> parents_;
};

// ---- v2 ------------------------------------------------------------------------------

class V2Cgroup : public Cgroup {
 public:
  explicit V2Cgroup(std::string dir) : dir_(std::move(dir)) {}
  ~V2Cgroup() override { Remove().IgnoreError(); }

  Status AddProcess(pid_t pid) override {
    return WriteValue(dir_ + "/cgroup.procs", std::to_string(pid));
  }

  Result<CgroupUsage> ReadUsage() const override {
    CgroupUsage u;
    u.peak_memory_bytes = ReadUint(dir_ + "/memory.peak").value_or(0);
    if (auto st = base::ReadFile(dir_ + "/cpu.stat"); st.ok()) {
      u.cpu_time = std::chrono::microseconds(KeyedValue(*st, "usage_usec").value_or(0));
    }
    if (auto ev = base::ReadFile(dir_ + "/memory.events"); ev.ok()) {
      u.oom_kills = KeyedValue(*ev, "oom_kill").value_or(0);
    }
    return u;
  }

  uint64_t ReadPeakMemory() const override {
    return PreadUint(&peak_fd_, dir_ + "/memory.peak");
  }

  int CountProcesses() const override { return CountLines(dir_ + "/cgroup.procs"); }

  Status Remove() override {
    peak_fd_.Reset();
    if (dir_.empty()) return Status::Ok();
    Status st = RemoveDir(dir_);
    dir_.clear();
    return st;
  }

  const std::string& path() const override { return dir_; }

 private:
  std::string dir_;
  mutable base::UniqueFd peak_fd_;
};

class V2Manager : public CgroupManager {
 public:
  V2Manager(std::string base, std::vector<std::string> enabled)
      : base_(std::move(base)), enabled_(std::move(enabled)) {}

  CgroupVersion version() const override { return CgroupVersion::kV2; }

  Result<std::unique_ptr<Cgroup>> Create(std::string_view name,
                                         const CgroupLimits& limits) override {
    auto need = [&](const char* ctrl) -> Status {
      if (std::find(enabled_.begin(), enabled_.end(), ctrl) == enabled_.end()) {
        return base::FailedPrecondition(std::string("cgroup v2: controller '") + ctrl +
                                        "' is not enabled in " + base_ + "/cgroup.subtree_control");
      }
      return Status::Ok();
    };
    if (limits.memory_bytes) RETURN_IF_ERROR(need("memory"));
    if (limits.cpu_weight || limits.cpu_quota) RETURN_IF_ERROR(need("cpu"));
    if (limits.pids_max) RETURN_IF_ERROR(need("pids"));
    std::string dir = base_ + "/" + std::string(name);
    if (mkdir(dir.c_str(), 0755) < 0) return base::ErrnoError("cgroup: mkdir " + dir);
    auto cg = std::make_unique<V2Cgroup>(dir);
    if (limits.memory_bytes) {
      RETURN_IF_ERROR(WriteValue(dir + "/memory.max", std::to_string(*limits.memory_bytes)));
      if (Exists(dir + "/memory.swap.max"))
        RETURN_IF_ERROR(WriteValue(dir + "/memory.swap.max", "0"));
      if (Exists(dir + "/memory.oom.group"))
        RETURN_IF_ERROR(WriteValue(dir + "/memory.oom.group", "1"));
    }
    if (limits.cpu_weight) {
      RETURN_IF_ERROR(WriteValue(dir + "/cpu.weight", std::to_string(*limits.cpu_weight)));
    }
    if (limits.cpu_quota) {
      auto quota = static_cast<int64_t>(std::llround(*limits.cpu_quota * 100000));
      RETURN_IF_ERROR(WriteValue(dir + "/cpu.max", std::to_string(quota) + " 100000"));
    }
    if (limits.pids_max) {
      RETURN_IF_ERROR(WriteValue(dir + "/pids.max", std::to_string(*limits.pids_max)));
    }
    return std::unique_ptr<Cgroup>(std::move(cg));
  }

  std::vector<std::string> ListChildren() const override { return ListDirs(base_); }

  Status RemoveChild(std::string_view name) override {
    std::string d = base_ + "/" + std::string(name);
    if (!Exists(d)) return Status::Ok();
    if (Exists(d + "/cgroup.kill")) {
      WriteValue(d + "/cgroup.kill", "1").IgnoreError();
    }
    KillAll(d);
    return RemoveDir(d);
  }

  std::string Describe() const override {
    std::string s = "cgroup v2 " + base_ + " [";
    for (const auto& c : enabled_) s += " " + c;
    return s + " ]";
  }

 private:
  std::string base_;
  std::vector<std::string> enabled_;
};

Result<std::unique_ptr<CgroupManager>> MakeV2(const std::string& mount,
                                              const CgroupOptions& options) {
  std::string base_dir = options.v2_base.empty() ? mount + "/stratus" : options.v2_base;
  // Enable what we use all the way down to base_dir (best effort; checked at Create).
  std::vector<std::string> chain;
  for (std::string d = base_dir; d.size() > mount.size(); d = base::DirName(d)) chain.push_back(d);
  std::reverse(chain.begin(), chain.end());
  RETURN_IF_ERROR(base::MakeDirs(base_dir, 0755));
  chain.insert(chain.begin(), mount);
  for (const auto& d : chain) {
    auto avail = ReadValue(d + "/cgroup.controllers");
    if (!avail.ok()) continue;
    for (auto c : base::Split(*avail, ' ')) {
      if (c == "memory" || c == "cpu" || c == "pids") {
        WriteValue(d + "/cgroup.subtree_control", "+" + std::string(c)).IgnoreError();
      }
    }
  }
  std::vector<std::string> enabled;
  if (auto sub = ReadValue(base_dir + "/cgroup.subtree_control"); sub.ok()) {
    for (auto c : base::Split(*sub, ' ')) {
      if (!c.empty()) enabled.emplace_back(c);
    }
  }
  return std::unique_ptr<CgroupManager>(new V2Manager(base_dir, std::move(enabled)));
}

}  // namespace

Result<std::unique_ptr<CgroupManager>> CgroupManager::Detect(const CgroupOptions& options) {
  auto text = base::ReadFile(options.mountinfo_path.empty() ? "/proc/self/mountinfo"
                                                            : options.mountinfo_path);
  if (!text.ok()) return text.status().WithContext("cgroup detection");
  std::vector<MountEntry> mounts = ParseMountInfo(*text);
  std::string v2_mount;
  std::map<std::string, std::string> v1_mounts;  // controller -> mount point
  for (const auto& m : mounts) {
    if (m.fstype == "cgroup2" && (v2_mount.empty() || m.mount_point == "/sys/fs/cgroup")) {
      v2_mount = m.mount_point;
    }
    if (m.fstype == "cgroup") {
      for (const auto& o : m.super_options) {
        if (o == "memory" || o == "cpu" || o == "cpuacct" || o == "pids") {
          v1_mounts.emplace(o, m.mount_point);
        }
      }
    }
  }
  bool unified = false;
  struct statfs sfs;
  if (statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) unified = true;

  CgroupVersion version;
  if (options.force_version) {
    version = *options.force_version;
  } else if (unified || v1_mounts.empty()) {
    version = CgroupVersion::kV2;
  } else {
    version = CgroupVersion::kV1;
  }
  if (version == CgroupVersion::kV2) {
    if (v2_mount.empty()) {
      return base::FailedPrecondition(
          "cgroup detection: no cgroup2 mount and no v1 memory/cpu/pids controllers found in "
          "/proc/self/mountinfo");
    }
    return MakeV2(v2_mount, options);
  }
  if (v1_mounts.empty()) {
    return base::FailedPrecondition("cgroup detection: no v1 controllers mounted");
  }
  auto own = OwnCgroups();
  std::map<std::string, std::string> parents;
  for (const auto& [ctrl, mp] : v1_mounts) {
    std::string own_path = own.count(ctrl) ? own[ctrl] : "/";
    parents[ctrl] = JoinPath(mp, own_path) + "/stratus";
  }
  return std::unique_ptr<CgroupManager>(new V1Manager(std::move(parents)));
}

Result<CgroupManager*> DefaultCgroupManager() {
  static std::once_flag once;
  static std::unique_ptr<CgroupManager> manager;
  static Status failure;
  std::call_once(once, [] {
    auto r = CgroupManager::Detect();
    if (r.ok()) {
      manager = std::move(r).value();
    } else {
      failure = r.status();
    }
  });
  if (!manager) return failure;
  return manager.get();
}

}  // namespace sandbox
