// image/builder — `stratus build`: runs a Dockerfile (dockerfile.h) and pushes the result.
//
// Each stage is a list of layers (unpacked dirs, bottom first) plus an image config. FROM
// takes an image from the registry (through ImageStore), an earlier stage, or `scratch`.
// COPY/ADD stage files in a fresh dir that becomes the layer; RUN starts a sandbox whose
// root is an overlay of the stage's layers with a fresh upper on disk, and that upper (with
// overlay whiteouts turned back into `.wh.` entries by WriteLayer) is the new layer — and,
// as it is, the next step's lower dir. Only the last stage is pushed: layers the registry
// lacks (cross-repository mount first), the OCI config, then the manifest under the tag.
//
// Runs in the calling process, which must be root for RUN (sandboxes) and to keep file
// ownership; see docs/images.md for why the build is not a server job. Not thread-safe:
// one Build per call, progress reported on the calling thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "base/status.h"
#include "image/image_store.h"

namespace image {

// Where the image goes: the registry's push operations (the CLI implements them over /v2/).
class Pusher {
 public:
  virtual ~Pusher() = default;
  virtual base::Result<bool> HasBlob(const std::string& repository, const std::string& digest) = 0;
  // Cross-repository mount; false when the registry did not mount (then push the bytes).
  virtual base::Result<bool> MountBlob(const std::string& repository, const std::string& digest,
                                       const std::string& from_repository) = 0;
  virtual base::Status PushBlob(const std::string& repository, const std::string& digest,
                                const std::string& path) = 0;
  // Returns the manifest digest the registry reports.
  virtual base::Result<std::string> PutManifest(const std::string& repository,
                                                const std::string& tag, const std::string& bytes,
                                                std::string_view media_type) = 0;
};

struct BuildOptions {
  std::string context_dir;
  std::string dockerfile;  // the Dockerfile's text
  std::string repository, tag;
  std::map<std::string, std::string> build_args;
  // Scratch space for uppers and layer files (must exist; the caller removes it).
  std::string work_dir;
  std::chrono::seconds run_timeout{3600};
  // Progress lines ("Step 2/7 : RUN …", RUN output, layer sizes), without newlines.
  std::function<void(const std::string&)> progress;
};

struct BuildResult {
  std::string manifest_digest;
  uint64_t size = 0;  // config + layers, compressed
  int layers = 0;
};

base::Result<BuildResult> Build(const BuildOptions& options, ImageStore& images, Source& source,
                                Pusher& pusher);

// `stratus image import`: a single-layer image from a root filesystem tarball (plain, gzip
// or zstd), with an empty config but for `config` (e.g. Cmd) and os/architecture.
base::Result<BuildResult> ImportRootfs(const std::string& tarball, const std::string& repository,
                                       const std::string& tag, const ImageConfig& config,
                                       const std::string& work_dir, Pusher& pusher,
                                       const std::function<void(const std::string&)>& progress);

// "1.2 MB" style sizes for progress lines.
std::string HumanSize(uint64_t bytes);

}  // namespace image
