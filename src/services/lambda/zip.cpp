#include "services/lambda/zip.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <vector>

namespace lambda {

namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
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

}  // namespace lambda
