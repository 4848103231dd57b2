// Files and descriptors: RAII for fds and the durable-write primitives the store and the
// blob store are built on. Thread-compatible (no shared state).
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "base/status.h"

namespace base {

// Owns a file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Reads a whole file. NotFound when it does not exist.
Result<std::string> ReadFile(const std::string& path);
// Writes all of `data` to fd, retrying on EINTR and short writes.
Status WriteAll(int fd, std::string_view data, std::string_view what);
// Durably replaces `path` with `data`: temp file in the same directory, fsync, rename,
// fsync the directory. Readers see the old or the new content, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
// fsync a directory so that a rename or create in it is durable.
Status FsyncDir(const std::string& dir);
// mkdir -p with `mode` for the directories it creates.
Status MakeDirs(const std::string& path, int mode = 0755);
// The directory part of a path ("/a/b/c" -> "/a/b").
std::string DirName(std::string_view path);

}  // namespace base
