// Helpers for the sandbox tests: a busybox-static root filesystem in a temporary directory,
// removed again even when a test fails.
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace sandbox::testing {

// A temporary directory, deleted recursively on destruction.
class TempDir {
 public:
  // Under `base` (which must exist), mode 0755 so that unprivileged sandbox users can read.
  explicit TempDir(const std::string& base = "/tmp") {
    // The pid in the name lets RemoveStaleTempDirs() clean up after a crashed run.
    std::string tmpl = base + "/stratus-sandbox-test-" + std::to_string(getpid()) + "-XXXXXX";
    char* p = mkdtemp(tmpl.data());
    path_ = p != nullptr ? p : "";
    if (!path_.empty()) chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Removes temp dirs of test processes that no longer exist (a crash skips destructors).
inline void RemoveStaleTempDirs() {
  for (const char* base : {"/tmp", "/var/tmp"}) {
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(base, ec)) {
      std::string name = e.path().filename().string();
      const std::string prefix = "stratus-sandbox-test-";
      if (name.rfind(prefix, 0) != 0) continue;
      pid_t owner = static_cast<pid_t>(std::atoi(name.c_str() + prefix.size()));
      if (owner <= 0 || owner == getpid() || kill(owner, 0) == 0 || errno != ESRCH) continue;
      std::filesystem::remove_all(e.path(), ec);
    }
  }
}

inline bool HaveBusybox() { return access("/bin/busybox", X_OK) == 0; }

// <dir>/rootfs with /bin/busybox and applet symlinks.
inline std::string MakeBusyboxRoot(const std::string& dir) {
  namespace fs = std::filesystem;
  std::string root = dir + "/rootfs";
  fs::create_directories(root + "/bin");
  for (const char* d : {"proc", "dev", "tmp", "sys", "etc", "mnt", "var"}) {
    fs::create_directories(root + "/" + d);
  }
  fs::copy_file("/bin/busybox", root + "/bin/busybox");
  for (const char* a :
       {"sh",    "true",  "false", "echo", "cat",      "ls",   "sleep",    "id",     "ps",
        "mount", "touch", "nc",    "grep", "wc",       "kill", "hostname", "insmod", "ping",
        "head",  "dd",    "mkdir", "rm",   "readlink", "stat", "seq"}) {
    fs::create_symlink("busybox", root + "/bin/" + a);
  }
  return root;
}

inline bool IsRoot() { return geteuid() == 0; }

#define SKIP_UNLESS_SANDBOX_CAPABLE()                                             \
  do {                                                                            \
    if (!::sandbox::testing::IsRoot()) GTEST_SKIP() << "sandbox tests need root"; \
    if (!::sandbox::testing::HaveBusybox())                                       \
      GTEST_SKIP() << "/bin/busybox missing (apt-get install busybox-static)";    \
    if (!::sandbox::DefaultCgroupManager().ok())                                  \
      GTEST_SKIP() << "no usable cgroups: "                                       \
                   << ::sandbox::DefaultCgroupManager().status().ToString();      \
  } while (0)

}  // namespace sandbox::testing
