#include "image/layer_writer.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "base/crypto.h"
#include "base/fs.h"

namespace image {
namespace {

// Receives the tar stream: hashes it (diff_id), gzips it, hashes and writes the result.
struct Sink {
  int fd = -1;
  z_stream z{};
  base::Sha256Hasher tar_hash, gz_hash;
  uint64_t gz_bytes = 0;
  base::Status status;
  std::vector<unsigned char> out = std::vector<unsigned char>(256 << 10);

  bool Deflate(const void* data, size_t len, int flush) {
    z.next_in = static_cast<Bytef*>(const_cast<void*>(data));
    z.avail_in = static_cast<uInt>(len);
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      int r = deflate(&z, flush);
      if (r == Z_STREAM_ERROR) {
        status = base::Internal("deflate failed");
        return false;
      }
      size_t have = out.size() - z.avail_out;
      std::string_view chunk(reinterpret_cast<const char*>(out.data()), have);
      gz_hash.Update(chunk);
      gz_bytes += have;
      base::Status st = base::WriteAll(fd, chunk, "write layer");
      if (!st.ok()) {
        status = st;
        return false;
      }
    } while (z.avail_out == 0);
    return true;
  }
};

la_ssize_t WriteCallback(archive*, void* client, const void* buf, size_t len) {
  auto* s = static_cast<Sink*>(client);
  s->tar_hash.Update(std::string_view(static_cast<const char*>(buf), len));
  if (!s->Deflate(buf, len, Z_NO_FLUSH)) return -1;
  return static_cast<la_ssize_t>(len);
}

struct WriterCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryCloser {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class Walker {
 public:
  Walker(archive* a, const LayerOptions& o) : a_(a), opts_(o) {}

  base::Status Dir(int dirfd, const std::string& rel) {
    DIR* d = fdopendir(dirfd);
    if (d == nullptr) {
      ::close(dirfd);
      return base::ErrnoError("opendir " + rel);
    }
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    std::sort(names.begin(), names.end());
    base::Status st;
    for (const auto& n : names) {
      st = One(::dirfd(d), n, rel.empty() ? n : rel + "/" + n);
      if (!st.ok()) break;
    }
    closedir(d);
    return st;
  }

  uint64_t entries() const { return entries_; }

 private:
  base::Status One(int parent, const std::string& name, const std::string& rel) {
    struct stat st {};
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
      return base::ErrnoError("stat " + rel);
    }
    std::unique_ptr<archive_entry, EntryCloser> e(archive_entry_new());
    archive_entry_set_uid(e.get(), st.st_uid);
    archive_entry_set_gid(e.get(), st.st_gid);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, 0);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);

    if (opts_.from_overlay_upper && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      size_t slash = rel.rfind('/');
      std::string wh = (slash == std::string::npos ? "" : rel.substr(0, slash + 1)) + ".wh." + name;
      archive_entry_set_pathname(e.get(), wh.c_str());
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0644);
      archive_entry_set_size(e.get(), 0);
      return Header(e.get(), rel);
    }
    archive_entry_set_pathname(e.get(), S_ISDIR(st.st_mode) ? (rel + "/").c_str() : rel.c_str());
    if (S_ISDIR(st.st_mode)) {
      int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return base::ErrnoError("open " + rel);
      bool opaque = false;
      if (opts_.from_overlay_upper) {
        char v[8];
        if (fgetxattr(fd, "trusted.overlay.redirect", v, sizeof(v)) >= 0) {
          ::close(fd);
          return base::FailedPrecondition("'" + rel +
                                          "' is a renamed directory (overlay redirect_dir); "
                                          "not supported in a layer diff");
        }
        ssize_t n = fgetxattr(fd, "trusted.overlay.opaque", v, sizeof(v));
        opaque = n == 1 && v[0] == 'y';
      }
      archive_entry_set_filetype(e.get(), AE_IFDIR);
      base::Status hs = Header(e.get(), rel);
      if (!hs.ok()) {
        ::close(fd);
        return hs;
      }
      if (opaque) {
        std::unique_ptr<archive_entry, EntryCloser> o(archive_entry_new());
        archive_entry_set_pathname(o.get(), (rel + "/.wh..wh..opq").c_str());
        archive_entry_set_filetype(o.get(), AE_IFREG);
        archive_entry_set_perm(o.get(), 0644);
        archive_entry_set_size(o.get(), 0);
        base::Status os = Header(o.get(), rel);
        if (!os.ok()) {
          ::close(fd);
          return os;
        }
      }
      return Dir(fd, rel);
    }
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = readlinkat(parent, name.c_str(), target.data(), target.size());
      if (n < 0) return base::ErrnoError("readlink " + rel);
      target.resize(static_cast<size_t>(n));
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), target.c_str());
      return Header(e.get(), rel);
    }
    if (S_ISFIFO(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFIFO);
      return Header(e.get(), rel);
    }
    if (!S_ISREG(st.st_mode)) {
      return base::FailedPrecondition("'" + rel + "' is a device or socket; not put in a layer");
    }
    if (st.st_nlink > 1) {
      auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = links_.find(key);
      if (it != links_.end()) {
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        return Header(e.get(), rel);
      }
      links_[key] = rel;
    }
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_size(e.get(), st.st_size);
    RETURN_IF_ERROR(Header(e.get(), rel));
    base::UniqueFd fd(openat(parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return base::ErrnoError("open " + rel);
    std::vector<char> buf(1 << 20);
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n = ::read(fd.get(), buf.data(), std::min<size_t>(buf.size(), left));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return base::ErrnoError("read " + rel);
      if (n == 0) return base::Aborted("'" + rel + "' shrank while being archived");
      if (archive_write_data(a_, buf.data(), static_cast<size_t>(n)) < 0) {
        return base::Internal("archive " + rel + ": " + archive_error_string(a_));
      }
      left -= n;
    }
    return base::Status::Ok();
  }

  base::Status Header(archive_entry* e, const std::string& rel) {
    ++entries_;
    if (archive_write_header(a_, e) != ARCHIVE_OK) {
      return base::Internal("archive header " + rel + ": " + archive_error_string(a_));
    }
    return base::Status::Ok();
  }

  archive* a_;
  const LayerOptions& opts_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  uint64_t entries_ = 0;
};

}  // namespace

base::Result<WrittenLayer> WriteLayer(const std::string& dir, const std::string& out_path,
                                      const LayerOptions& options) {
  base::UniqueFd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return base::ErrnoError("create " + out_path);
  int root = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return base::ErrnoError("open " + dir);
  Sink sink;
  sink.fd = out.get();
  // windowBits 15 + 16: a gzip wrapper.
  if (deflateInit2(&sink.z, options.gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    ::close(root);
    return base::Internal("deflateInit2 failed");
  }
  std::unique_ptr<archive, WriterCloser> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_set_bytes_per_block(a.get(), 10240);
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &sink, nullptr, WriteCallback, nullptr) != ARCHIVE_OK) {
    ::close(root);
    deflateEnd(&sink.z);
    return base::Internal(std::string("archive open: ") + archive_error_string(a.get()));
  }
  Walker walker(a.get(), options);
  base::Status st = walker.Dir(root, "");
  if (st.ok() && archive_write_close(a.get()) != ARCHIVE_OK) {
    st = sink.status.ok()
             ? base::Internal(std::string("archive close: ") + archive_error_string(a.get()))
             : sink.status;
  }
  if (st.ok() && !sink.Deflate(nullptr, 0, Z_FINISH)) st = sink.status;
  deflateEnd(&sink.z);
  RETURN_IF_ERROR(st);
  if (::fsync(out.get()) < 0) return base::ErrnoError("fsync " + out_path);
  WrittenLayer w;
  w.digest = "sha256:" + sink.gz_hash.FinishHex();
  w.diff_id = "sha256:" + sink.tar_hash.FinishHex();
  w.size = sink.gz_bytes;
  w.entries = walker.entries();
  return w;
}

}  // namespace image
