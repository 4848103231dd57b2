#include "image/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "base/crypto.h"
#include "base/fs.h"

namespace image {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

int OpenBeneath(int dirfd, const std::string& path, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd;
  do {
    fd = static_cast<int>(syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof(how)));
  } while (fd < 0 && errno == EAGAIN);
  return fd;
}

// Reads the archive from a fd, hashing every byte, so the digest covers the whole file even
// when libarchive stops before its end.
struct Reader {
  int fd = -1;
  base::Sha256Hasher hasher;
  std::vector<char> buf = std::vector<char>(1 << 20);
  int err = 0;
  uint64_t total = 0;
};

la_ssize_t ReadCallback(archive*, void* client, const void** out) {
  auto* r = static_cast<Reader*>(client);
  ssize_t n;
  do {
    n = ::read(r->fd, r->buf.data(), r->buf.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    r->err = errno;
    return -1;
  }
  r->hasher.Update(std::string_view(r->buf.data(), static_cast<size_t>(n)));
  r->total += static_cast<uint64_t>(n);
  *out = r->buf.data();
  return n;
}

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveCloser>;

ArchivePtr NewReader() {
  ArchivePtr a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_zstd(a.get());
  archive_read_support_format_tar(a.get());
  return a;
}

// Normalizes an entry name: strips "./" and "/" runs, refuses absolute names and "..".
base::Result<std::string> CleanName(const char* raw, bool allow_root) {
  if (raw == nullptr) return base::InvalidArgument("entry without a name");
  std::string_view in(raw);
  if (!in.empty() && in[0] == '/') {
    return base::InvalidArgument("entry '" + std::string(in) + "' has an absolute path");
  }
  std::string out;
  size_t i = 0;
  while (i <= in.size()) {
    size_t j = in.find('/', i);
    if (j == std::string_view::npos) j = in.size();
    std::string_view part = in.substr(i, j - i);
    if (part == "..") {
      return base::InvalidArgument("entry '" + std::string(in) + "' contains '..'");
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) out.push_back('/');
      out.append(part);
    }
    i = j + 1;
  }
  if (out.empty() && !allow_root) return base::InvalidArgument("entry with an empty name");
  return out;
}

base::Status RemoveAt(int dirfd, const std::string& name);

base::Status RemoveChildren(int fd) {
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    ::close(fd);
    return base::ErrnoError("fdopendir");
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  base::Status st;
  for (const auto& n : names) {
    st = RemoveAt(dirfd(d), n);
    if (!st.ok()) break;
  }
  closedir(d);
  return st;
}

base::Status RemoveAt(int dirfd, const std::string& name) {
  if (unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return base::Status::Ok();
  if (errno != EISDIR && errno != EPERM) return base::ErrnoError("unlink " + name);
  int fd = openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return base::ErrnoError("open " + name);
  RETURN_IF_ERROR(RemoveChildren(fd));
  if (unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
    return base::ErrnoError("rmdir " + name);
  }
  return base::Status::Ok();
}

class Unpacker {
 public:
  Unpacker(int root, const UnpackOptions& o) : root_(root), opts_(o) {}

  base::Status Entry(archive* a, archive_entry* e) {
    ASSIGN_OR_RETURN(std::string name, CleanName(archive_entry_pathname(e), true));
    if (name.empty()) return base::Status::Ok();  // "./": the layer root itself
    if (++stats_.entries > opts_.max_entries) {
      return base::ResourceExhausted("layer has more than " + std::to_string(opts_.max_entries) +
                                     " entries");
    }
    size_t slash = name.rfind('/');
    std::string parent = slash == std::string::npos ? "" : name.substr(0, slash);
    std::string base_name = slash == std::string::npos ? name : name.substr(slash + 1);
    ASSIGN_OR_RETURN(base::UniqueFd dir, OpenParent(parent, name));

    if (opts_.overlay_whiteouts && base_name.starts_with(kWhiteoutPrefix)) {
      if (base_name == kOpaqueMarker) {
        if (fsetxattr(dir.get(), "trusted.overlay.opaque", "y", 1, 0) < 0) {
          return base::ErrnoError("mark '" + parent + "' opaque");
        }
        return base::Status::Ok();
      }
      std::string hidden = base_name.substr(kWhiteoutPrefix.size());
      if (hidden.empty() || hidden == "." || hidden == "..") {
        return base::InvalidArgument("entry '" + name + "' is a malformed whiteout");
      }
      RETURN_IF_ERROR(RemoveAt(dir.get(), hidden));
      if (mknodat(dir.get(), hidden.c_str(), S_IFCHR | 0000, makedev(0, 0)) < 0) {
        return base::ErrnoError("whiteout '" + name + "'");
      }
      return base::Status::Ok();
    }

    const char* link = archive_entry_hardlink(e);
    if (link != nullptr) return HardLink(dir.get(), base_name, name, link);

    mode_t type = archive_entry_filetype(e);
    mode_t perm = archive_entry_perm(e) & 07777;
    const char* bn = base_name.c_str();
    struct stat st {};
    bool exists = fstatat(dir.get(), bn, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && !(type == AE_IFDIR && S_ISDIR(st.st_mode))) {
      RETURN_IF_ERROR(RemoveAt(dir.get(), base_name));
    }
    switch (type) {
      case AE_IFDIR:
        if (!exists || !S_ISDIR(st.st_mode)) {
          if (mkdirat(dir.get(), bn, 0700) < 0) return base::ErrnoError("mkdir '" + name + "'");
        }
        break;
      case AE_IFREG:
        RETURN_IF_ERROR(WriteFile(a, e, dir.get(), bn, name));
        break;
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (target == nullptr) return base::InvalidArgument("symlink '" + name + "' has no target");
        if (symlinkat(target, dir.get(), bn) < 0) return base::ErrnoError("symlink '" + name + "'");
        break;
      }
      case AE_IFIFO:
        if (mkfifoat(dir.get(), bn, 0600) < 0) return base::ErrnoError("mkfifo '" + name + "'");
        break;
      case AE_IFCHR:
      case AE_IFBLK:
        return base::InvalidArgument("entry '" + name + "' is a device node");
      default:
        return base::InvalidArgument("entry '" + name + "' has an unsupported type");
    }
    return Finish(e, dir.get(), bn, name, type, perm);
  }

  UnpackStats& stats() { return stats_; }

 private:
  // The parent directory of an entry, created (0755) when missing; never outside the root.
  base::Result<base::UniqueFd> OpenParent(const std::string& parent, const std::string& name) {
    if (parent.empty()) {
      int fd = fcntl(root_, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return base::ErrnoError("dup");
      return base::UniqueFd(fd);
    }
    int fd = OpenBeneath(root_, parent, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) return base::UniqueFd(fd);
    if (errno == EXDEV || errno == ELOOP) {
      return base::InvalidArgument("entry '" + name + "' leads out of the layer through a symlink");
    }
    if (errno == ENOTDIR) return base::InvalidArgument("entry '" + name + "': parent not a dir");
    if (errno != ENOENT) return base::ErrnoError("open parent of '" + name + "'");
    // Create the missing chain one component at a time, each resolved beneath the root.
    std::string sofar;
    size_t i = 0;
    while (i <= parent.size()) {
      size_t j = parent.find('/', i);
      if (j == std::string::npos) j = parent.size();
      sofar = parent.substr(0, j);
      int d = OpenBeneath(root_, sofar, O_RDONLY | O_DIRECTORY);
      if (d < 0 && errno == ENOENT) {
        size_t s = sofar.rfind('/');
        base::UniqueFd up(s == std::string::npos
                              ? fcntl(root_, F_DUPFD_CLOEXEC, 0)
                              : OpenBeneath(root_, sofar.substr(0, s), O_RDONLY | O_DIRECTORY));
        if (!up.valid()) return base::ErrnoError("open '" + sofar + "'");
        std::string leaf = s == std::string::npos ? sofar : sofar.substr(s + 1);
        if (mkdirat(up.get(), leaf.c_str(), 0755) < 0 && errno != EEXIST) {
          return base::ErrnoError("mkdir '" + sofar + "'");
        }
        d = OpenBeneath(root_, sofar, O_RDONLY | O_DIRECTORY);
      }
      if (d < 0) {
        if (errno == EXDEV || errno == ELOOP) {
          return base::InvalidArgument("entry '" + name +
                                       "' leads out of the layer through a symlink");
        }
        return base::ErrnoError("open '" + sofar + "'");
      }
      if (j == parent.size()) return base::UniqueFd(d);
      ::close(d);
      i = j + 1;
    }
    return base::Internal("unreachable");
  }

  base::Status HardLink(int dir, const std::string& base_name, const std::string& name,
                        const char* raw_target) {
    ASSIGN_OR_RETURN(std::string target, CleanName(raw_target, false));
    size_t slash = target.rfind('/');
    std::string tparent = slash == std::string::npos ? "" : target.substr(0, slash);
    std::string tbase = slash == std::string::npos ? target : target.substr(slash + 1);
    base::UniqueFd tdir(tparent.empty() ? fcntl(root_, F_DUPFD_CLOEXEC, 0)
                                        : OpenBeneath(root_, tparent, O_RDONLY | O_DIRECTORY));
    if (!tdir.valid()) {
      if (errno == EXDEV || errno == ELOOP) {
        return base::InvalidArgument("hard link '" + name + "' points out of the layer");
      }
      return base::InvalidArgument("hard link '" + name + "' to missing '" + target + "'");
    }
    struct stat st {};
    if (fstatat(tdir.get(), tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      return base::InvalidArgument("hard link '" + name + "' to missing '" + target + "'");
    }
    if (S_ISDIR(st.st_mode)) return base::InvalidArgument("hard link '" + name + "' to a dir");
    RETURN_IF_ERROR(RemoveAt(dir, base_name));
    // flags 0: a symlink target is linked itself, never followed.
    if (linkat(tdir.get(), tbase.c_str(), dir, base_name.c_str(), 0) < 0) {
      return base::ErrnoError("hard link '" + name + "'");
    }
    return base::Status::Ok();
  }

  base::Status WriteFile(archive* a, archive_entry* e, int dir, const char* bn,
                         const std::string& name) {
    int64_t size = archive_entry_size(e);
    if (size < 0) size = 0;
    if (stats_.bytes + static_cast<uint64_t>(size) > opts_.max_total_bytes) {
      return base::ResourceExhausted("layer unpacks to more than " +
                                     std::to_string(opts_.max_total_bytes) + " bytes (at '" + name +
                                     "')");
    }
    base::UniqueFd fd(openat(dir, bn, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid()) return base::ErrnoError("create '" + name + "'");
    const void* buf;
    size_t len;
    la_int64_t off;
    uint64_t written = 0;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &len, &off);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK) {
        return base::InvalidArgument("read '" + name + "': " + archive_error_string(a));
      }
      written += len;
      if (off < 0 || static_cast<uint64_t>(off) + len > static_cast<uint64_t>(size) ||
          stats_.bytes + written > opts_.max_total_bytes) {
        return base::ResourceExhausted("entry '" + name + "' is larger than it says");
      }
      const char* p = static_cast<const char*>(buf);
      while (len > 0) {
        ssize_t n = pwrite(fd.get(), p, len, off);
        if (n < 0) {
          if (errno == EINTR) continue;
          return base::ErrnoError("write '" + name + "'");
        }
        p += n;
        len -= static_cast<size_t>(n);
        off += n;
      }
    }
    if (ftruncate(fd.get(), size) < 0) return base::ErrnoError("truncate '" + name + "'");
    stats_.bytes += static_cast<uint64_t>(size);
    return base::Status::Ok();
  }

  base::Status Finish(archive_entry* e, int dir, const char* bn, const std::string& name,
                      mode_t type, mode_t perm) {
    if (opts_.preserve_owner) {
      if (fchownat(dir, bn, static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW) < 0) {
        return base::ErrnoError("chown '" + name + "'");
      }
    }
    if (type != AE_IFLNK) {
      if (fchmodat(dir, bn, perm, 0) < 0) return base::ErrnoError("chmod '" + name + "'");
      // Extended attributes a container may rely on (file capabilities, user.*).
      archive_entry_xattr_reset(e);
      const char* xname;
      const void* xval;
      size_t xlen;
      while (archive_entry_xattr_next(e, &xname, &xval, &xlen) == ARCHIVE_OK) {
        std::string_view n(xname);
        if (!n.starts_with("user.") && n != "security.capability") continue;
        base::UniqueFd f(openat(dir, bn, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
        if (f.valid()) fsetxattr(f.get(), xname, xval, xlen, 0);
      }
    }
    timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = archive_entry_mtime(e);
    ts[0].tv_nsec = ts[1].tv_nsec = archive_entry_mtime_nsec(e);
    utimensat(dir, bn, ts, AT_SYMLINK_NOFOLLOW);  // best effort
    // A directory's time changes as entries land in it: set it again at the end.
    if (type == AE_IFDIR) dir_times_.push_back({name, ts[0]});
    return base::Status::Ok();
  }

 public:
  void RestoreDirTimes() {
    for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
      base::UniqueFd fd(OpenBeneath(root_, it->first, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      if (!fd.valid()) continue;
      timespec ts[2] = {it->second, it->second};
      futimens(fd.get(), ts);
    }
  }

 private:
  std::vector<std::pair<std::string, timespec>> dir_times_;

  int root_;
  const UnpackOptions& opts_;
  UnpackStats stats_;
};

}  // namespace

base::Result<UnpackStats> UnpackLayer(const std::string& archive_path, const std::string& dest,
                                      const UnpackOptions& options) {
  base::UniqueFd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return base::ErrnoError("open " + dest);
  Reader reader;
  base::UniqueFd in(::open(archive_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return base::ErrnoError("open " + archive_path);
  reader.fd = in.get();
  ArchivePtr a = NewReader();
  if (archive_read_open(a.get(), &reader, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    return base::InvalidArgument("layer " + archive_path +
                                 " is not a tar archive: " + archive_error_string(a.get()));
  }
  Unpacker unpacker(root.get(), options);
  for (;;) {
    archive_entry* e;
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      if (reader.err != 0) return base::IoError("read " + archive_path, reader.err);
      return base::InvalidArgument(std::string("layer is not a valid tar archive: ") +
                                   archive_error_string(a.get()));
    }
    RETURN_IF_ERROR(unpacker.Entry(a.get(), e));
  }
  unpacker.RestoreDirTimes();
  // Hash whatever follows the end-of-archive marker, so the digest covers the whole blob.
  const void* unused;
  for (;;) {
    la_ssize_t n = ReadCallback(a.get(), &reader, &unused);
    if (n < 0) return base::IoError("read " + archive_path, reader.err);
    if (n == 0) break;
  }
  UnpackStats stats = unpacker.stats();
  stats.digest = "sha256:" + reader.hasher.FinishHex();
  if (!options.expected_digest.empty() && stats.digest != options.expected_digest) {
    return base::Corruption("layer digest mismatch: expected " + options.expected_digest +
                            ", got " + stats.digest);
  }
  return stats;
}

bool IsTarArchive(const std::string& path) {
  base::UniqueFd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return false;
  Reader reader;
  reader.fd = in.get();
  ArchivePtr a = NewReader();
  if (archive_read_open(a.get(), &reader, nullptr, ReadCallback, nullptr) != ARCHIVE_OK) {
    return false;
  }
  archive_entry* e;
  int r = archive_read_next_header(a.get(), &e);
  return r == ARCHIVE_OK || r == ARCHIVE_WARN;
}

base::Status RemoveTree(const std::string& path) {
  std::string parent = base::DirName(path);
  std::string leaf = path.substr(path.rfind('/') + 1);
  base::UniqueFd d(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!d.valid()) return errno == ENOENT ? base::Status::Ok() : base::ErrnoError("open " + parent);
  return RemoveAt(d.get(), leaf);
}

}  // namespace image
