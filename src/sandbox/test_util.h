// Helpers for the sandbox tests: a busybox-static root filesystem in a temporary directory,
// removed again even when a test fails.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

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
    std::string tmpl = base + "/stratus-sandbox-test-XXXXXX";
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
