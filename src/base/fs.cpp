#include "base/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/ids.h"

namespace base {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("read " + path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status WriteAll(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(std::string("write ") + std::string(what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

std::string DirName(std::string_view path) {
  size_t pos = path.rfind('/');
  if (pos == std::string_view::npos) return ".";
  if (pos == 0) return "/";
  return std::string(path.substr(0, pos));
}

Status FsyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoError("open directory " + dir);
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync directory " + dir);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string tmp = path + ".tmp-" + RandomString(8, kLowerAlnum);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd.valid()) return ErrnoError("create " + tmp);
  Status st = WriteAll(fd.get(), data, tmp);
  if (st.ok() && ::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
    st = ErrnoError("chmod " + tmp);
  if (st.ok() && ::fsync(fd.get()) != 0) st = ErrnoError("fsync " + tmp);
  fd.Reset();
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = ErrnoError("rename " + tmp);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return FsyncDir(DirName(path));
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return Status::Ok();
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) return Status::Ok();
    return FailedPrecondition(path + " exists and is not a directory");
  }
  std::string parent = DirName(path);
  if (parent != path && parent != "." && parent != "/") RETURN_IF_ERROR(MakeDirs(parent, mode));
  if (::mkdir(path.c_str(), static_cast<mode_t>(mode)) != 0 && errno != EEXIST)
    return ErrnoError("mkdir " + path);
  return Status::Ok();
}

}  // namespace base
