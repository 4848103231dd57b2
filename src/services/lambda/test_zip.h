// Builds zip archives in memory for tests (libarchive's writer).
#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <string>
#include <vector>

namespace lambda::testing {

struct ZipEntry {
  std::string path;
  std::string data;
  std::string symlink;  // non-empty: a symlink entry with this target
  size_t repeat = 1;    // data written this many times (zip bombs)
  int mode = 0644;
};

inline std::string MakeZip(const std::vector<ZipEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  archive_write_set_bytes_in_last_block(a, 1);  // no padding to 10 KiB blocks
  archive_write_open(
      a, &out, nullptr,
      [](archive*, void* client, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    if (!e.symlink.empty()) {
      archive_entry_set_filetype(entry, AE_IFLNK);
      archive_entry_set_symlink(entry, e.symlink.c_str());
      archive_entry_set_perm(entry, 0777);
      archive_entry_set_size(entry, 0);
    } else {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_set_perm(entry, static_cast<mode_t>(e.mode));
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size() * e.repeat));
    }
    archive_write_header(a, entry);
    for (size_t i = 0; i < e.repeat && e.symlink.empty(); ++i)
      archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline std::string HandlerZip(const std::string& body = "def handler(e, c):\n  return e\n") {
  return MakeZip({{"index.py", body, "", 1}});
}

}  // namespace lambda::testing
