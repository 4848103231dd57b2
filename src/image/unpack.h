// image/unpack — extracting a layer tarball (tar, tar+gzip, tar+zstd) into a directory,
// safely, with OCI whiteouts turned into their overlayfs form.
//
// Every entry is placed relative to the destination directory with openat2(RESOLVE_BENEATH):
// absolute names, `..` components, parents that are symlinks leading out of the layer, and
// hard links to anything outside it are refused (InvalidArgument naming the entry), as are
// device nodes and entries of unknown type. Regular file bytes, entries and the total are
// bounded (ResourceExhausted: a tar bomb). With `overlay_whiteouts`, `.wh.<name>` becomes a
// 0:0 character device `<name>` and `.wh..wh..opq` the xattr trusted.overlay.opaque=y on its
// directory, so that stacking unpacked layers as overlayfs lower dirs gives the image's view.
// Extended attributes other than user.* and security.capability are dropped (a layer must
// not forge trusted.overlay.*).
//
// On failure the destination holds a partial tree: callers unpack into a temp dir and
// rename it into place only on success (see ImageStore). Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace image {

struct UnpackOptions {
  bool overlay_whiteouts = true;
  // sha256 of the (compressed) file as a whole, "sha256:<hex>"; empty = not checked.
  std::string expected_digest;
  uint64_t max_total_bytes = 16ull << 30;  // sum of regular file sizes
  uint64_t max_entries = 2'000'000;
  bool preserve_owner = true;  // chown to the entry's uid/gid (needs root); else ours
};

struct UnpackStats {
  uint64_t entries = 0, bytes = 0;
  std::string digest;  // of the archive file, "sha256:<hex>"
};

// Unpacks archive `archive_path` into the existing directory `dest`. Accepts plain tar and
// tar compressed with gzip or zstd, detected from the bytes.
base::Result<UnpackStats> UnpackLayer(const std::string& archive_path, const std::string& dest,
                                      const UnpackOptions& options);

// Whether `path` is a tar archive (plain, gzip or zstd) that UnpackLayer would read: ADD
// extracts such files.
bool IsTarArchive(const std::string& path);

// rm -rf `path` (does not follow symlinks). OK when it does not exist.
base::Status RemoveTree(const std::string& path);

}  // namespace image
