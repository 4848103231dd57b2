// image/layer_writer — a directory tree to an OCI layer (tar+gzip), the builder's output.
//
// The tree is walked in name order (stable output for the same tree). With
// `from_overlay_upper`, the tree is an overlayfs upper dir: 0:0 character devices become OCI
// whiteouts (`.wh.<name>`) and directories marked trusted.overlay.opaque=y get a
// `.wh..wh..opq` entry — the inverse of UnpackLayer. Overlay's own xattrs are never copied.
// The writer computes both digests in one pass: the compressed blob's (the layer digest) and
// the uncompressed tar's (the config's diff_id).
//
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"

namespace image {

struct LayerOptions {
  bool from_overlay_upper = false;
  int gzip_level = 6;
};

struct WrittenLayer {
  std::string digest;   // sha256 of the tar+gzip file
  std::string diff_id;  // sha256 of the uncompressed tar
  uint64_t size = 0;    // compressed bytes
  uint64_t entries = 0;
};

// Writes the layer for `dir` to `out_path` (created or truncated, fsynced).
base::Result<WrittenLayer> WriteLayer(const std::string& dir, const std::string& out_path,
                                      const LayerOptions& options);

}  // namespace image
