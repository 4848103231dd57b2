#include "services/lambda/zip.h"

#include <archive.h>
#include <archive_entry.h>

#include <climits>
#include <cstdlib>
#include <memory>
#include <vector>

namespace lambda {

namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriterCloser {
  void operator()(archive* a) const { archive_write_free(a); }
};

std::string EntryName(archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  return p ? p : "";
}

std::string_view DirOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

}  // namespace

bool StaysInsideRoot(std::string_view dir, std::string_view path) {
  if (path.empty()) return false;
  if (path.front() == '/' || path.front() == '\\') return false;
  if (path.find('\\') != std::string_view::npos) return false;  // Windows separators
  if (path.size() >= 2 && path[1] == ':') return false;         // "C:..."
  int depth = 0;
  auto walk = [&depth](std::string_view s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('/', start);
      if (end == std::string_view::npos) end = s.size();
      std::string_view part = s.substr(start, end - start);
      if (part == "..") {
        if (--depth < 0) return false;
      } else if (!part.empty() && part != ".") {
        ++depth;
      }
      start = end + 1;
    }
    return true;
  };
  return walk(dir) && walk(path);
}

ZipCheck CheckZip(std::string_view zip, uint64_t max_unzipped) {
  ZipCheck out;
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  if (!a) {
    out.verdict = ZipVerdict::kCorrupt;
    out.detail = "archive_read_new failed";
    return out;
  }
  // Only the central-directory reader: a zip without one (truncated) is corrupt, and the
  // names checked are the ones an extractor using the directory will write.
  archive_read_support_format_zip_seekable(a.get());
  if (archive_read_open_memory(a.get(), zip.data(), zip.size()) != ARCHIVE_OK) {
    out.verdict = ZipVerdict::kCorrupt;
    const char* err = archive_error_string(a.get());
    out.detail = err ? err : "not a zip file";
    return out;
  }
  std::vector<char> buf(64 * 1024);
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      out.verdict = ZipVerdict::kCorrupt;
      const char* err = archive_error_string(a.get());
      out.detail = err ? err : "bad entry header";
      return out;
    }
    ++out.entries;
    std::string name = EntryName(entry);
    if (!StaysInsideRoot("", name)) {
      out.verdict = ZipVerdict::kUnsafePath;
      out.detail = "entry path escapes the task root: " + name;
      return out;
    }
    const char* symlink = archive_entry_symlink(entry);
    if (symlink && !StaysInsideRoot(DirOf(name), symlink)) {
      out.verdict = ZipVerdict::kUnsafePath;
      out.detail = "symlink " + name + " points out of the task root: " + symlink;
      return out;
    }
    const char* hardlink = archive_entry_hardlink(entry);
    if (hardlink && !StaysInsideRoot("", hardlink)) {
      out.verdict = ZipVerdict::kUnsafePath;
      out.detail = "hard link " + name + " points out of the task root: " + hardlink;
      return out;
    }
    for (;;) {
      la_ssize_t n = archive_read_data(a.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        if (n == ARCHIVE_WARN) continue;
        out.verdict = ZipVerdict::kCorrupt;
        const char* err = archive_error_string(a.get());
        out.detail = name + ": " + (err ? err : "cannot inflate");
        return out;
      }
      out.unzipped_size += static_cast<uint64_t>(n);
      if (out.unzipped_size > max_unzipped) {
        out.verdict = ZipVerdict::kUnzippedTooLarge;
        out.detail = "unzipped size passes " + std::to_string(max_unzipped) + " bytes";
        return out;
      }
    }
  }
  return out;
}

base::Status ExtractZip(std::string_view zip, const std::string& dest, uint64_t max_unzipped) {
  // The same checks first, so that nothing is written for a hostile archive.
  ZipCheck check = CheckZip(zip, max_unzipped);
  if (check.verdict != ZipVerdict::kOk) return base::InvalidArgument("unzip: " + check.detail);
  std::unique_ptr<archive, ArchiveCloser> in(archive_read_new());
  std::unique_ptr<archive, WriterCloser> out(archive_write_disk_new());
  if (!in || !out) return base::Internal("unzip: libarchive allocation failed");
  archive_read_support_format_zip_seekable(in.get());
  // Belt and braces: libarchive refuses ".." and writing through symlinks too, whatever
  // CheckZip concluded. (Entry names are made absolute under `dest` below, after CheckZip
  // refused absolute ones, so NOABSOLUTEPATHS cannot be used; `dest` is resolved first so
  // that the symlink check does not trip over a symlinked data directory.)
  char resolved[PATH_MAX];
  if (realpath(dest.c_str(), resolved) == nullptr) return base::ErrnoError("unzip: " + dest);
  const std::string root = resolved;
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  if (archive_read_open_memory(in.get(), zip.data(), zip.size()) != ARCHIVE_OK)
    return base::InvalidArgument("unzip: not a zip file");
  auto fail = [](archive* a, const std::string& what) {
    const char* err = archive_error_string(a);
    return base::InvalidArgument("unzip: " + what + ": " + (err ? err : "failed"));
  };
  std::vector<char> buf(64 * 1024);
  uint64_t total = 0;
  for (;;) {
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail(in.get(), "read header");
    std::string name = EntryName(entry);
    archive_entry_set_pathname(entry, (root + "/" + name).c_str());
    if (const char* hard = archive_entry_hardlink(entry))
      archive_entry_copy_hardlink(entry, (root + "/" + hard).c_str());
    archive_entry_set_uid(entry, 0);
    archive_entry_set_gid(entry, 0);
    mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFDIR) {
      archive_entry_set_perm(entry, 0755);
    } else if (type == AE_IFREG) {
      archive_entry_set_perm(entry, (archive_entry_perm(entry) & 0111) ? 0755 : 0644);
    } else if (type != AE_IFLNK) {
      return base::InvalidArgument("unzip: " + name + ": unsupported entry type");
    }
    if (archive_write_header(out.get(), entry) != ARCHIVE_OK) return fail(out.get(), name);
    for (;;) {
      la_ssize_t n = archive_read_data(in.get(), buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        if (n == ARCHIVE_WARN) continue;
        return fail(in.get(), name);
      }
      total += static_cast<uint64_t>(n);
      if (total > max_unzipped) return base::InvalidArgument("unzip: unzipped size over limit");
      if (archive_write_data(out.get(), buf.data(), static_cast<size_t>(n)) != n)
        return fail(out.get(), name);
    }
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK) return fail(out.get(), name);
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK) return fail(out.get(), "close");
  return base::Status::Ok();
}

}  // namespace lambda
