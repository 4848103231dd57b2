// Inspection of uploaded function packages (zip files) before they are stored.
//
// A package is read completely with libarchive: every entry's name and link target is
// checked against the task root and every entry's data is inflated (and thrown away)
// while counting bytes, so a corrupt archive, a path that escapes the task root and a
// zip bomb are all caught here, at upload time, in bounded memory. Reading stops as soon
// as the unzipped total passes the limit.
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace lambda {

enum class ZipVerdict {
  kOk,
  kCorrupt,           // not a zip, truncated, bad CRC, unsupported compression...
  kUnzippedTooLarge,  // the inflated entries add up to more than the limit
  kUnsafePath,        // absolute path, a ".." component, or a link pointing out of the root
};

struct ZipCheck {
  ZipVerdict verdict = ZipVerdict::kOk;
  std::string detail;          // which entry and why, for logs and tests
  uint64_t unzipped_size = 0;  // bytes inflated (up to where reading stopped)
  uint64_t entries = 0;
};

// Reads `zip` (the whole archive in memory). `max_unzipped` bounds the inflated total.
ZipCheck CheckZip(std::string_view zip, uint64_t max_unzipped);

// Unpacks `zip` into the existing, empty directory `dest` with the same checks as CheckZip
// (a failing check is InvalidArgument and may leave a partial tree: unpack into a temp
// directory and rename). Permissions are normalised so an unprivileged sandbox user can
// read everything: directories 0755, files 0644, or 0755 when any execute bit was set.
base::Status ExtractZip(std::string_view zip, const std::string& dest, uint64_t max_unzipped);

// True when `path` (an entry name or a link target resolved against `dir`, the entry's
// directory) stays inside the root: relative, and no ".." climbs above it.
bool StaysInsideRoot(std::string_view dir, std::string_view path);

}  // namespace lambda
