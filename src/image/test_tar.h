// Crafted tarballs for the image tests.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "base/fs.h"
#include "image/unpack.h"

namespace image::testing {

struct TarEntry {
  std::string name;
  char type = 'f';   // f file, d dir, l symlink, h hardlink, c char device, p fifo
  std::string data;  // content, or link target
  int mode = 0644;
  int64_t declared_size = -1;  // header size if different from data
  std::string xattr;           // "name=value" as a pax xattr, optional
};

enum class Compression { kNone, kGzip, kZstd };

inline std::string MakeTar(const std::vector<TarEntry>& entries,
                           Compression c = Compression::kNone) {
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  if (c == Compression::kGzip) archive_write_add_filter_gzip(a);
  if (c == Compression::kZstd) archive_write_add_filter_zstd(a);
  std::vector<char> buf(64 << 20);
  size_t used = 0;
  archive_write_open_memory(a, buf.data(), buf.size(), &used);
  for (const auto& e : entries) {
    archive_entry* en = archive_entry_new();
    archive_entry_set_pathname(en, e.name.c_str());
    archive_entry_set_perm(en, e.mode);
    switch (e.type) {
      case 'd':
        archive_entry_set_filetype(en, AE_IFDIR);
        break;
      case 'l':
        archive_entry_set_filetype(en, AE_IFLNK);
        archive_entry_set_symlink(en, e.data.c_str());
        break;
      case 'h':
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_hardlink(en, e.data.c_str());
        break;
      case 'c':
        archive_entry_set_filetype(en, AE_IFCHR);
        archive_entry_set_rdevmajor(en, 1);
        archive_entry_set_rdevminor(en, 3);
        break;
      case 'p':
        archive_entry_set_filetype(en, AE_IFIFO);
        break;
      default:
        archive_entry_set_filetype(en, AE_IFREG);
        archive_entry_set_size(
            en, e.declared_size >= 0 ? e.declared_size : static_cast<int64_t>(e.data.size()));
    }
    if (!e.xattr.empty()) {
      std::string n = e.xattr.substr(0, e.xattr.find('='));
      std::string v = e.xattr.substr(e.xattr.find('=') + 1);
      archive_entry_xattr_add_entry(en, n.c_str(), v.data(), v.size());
    }
    archive_write_header(a, en);
    if (e.type == 'f' && !e.data.empty()) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(en);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

// A temp dir removed on destruction.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/image_test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)RemoveTree(path_); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& data) const {
    std::string p = path_ + "/" + name;
    (void)base::WriteFileAtomic(p, data);
    return p;
  }

 private:
  std::string path_;
};

}  // namespace image::testing
