// image::ImageStore — images from a registry, unpacked once per layer into a cache, ready to
// be stacked as overlayfs lower dirs for a sandbox (DESIGN §4: "an overlayfs of read-only
// image layers plus a writable upper").
//
// The store reads manifests and blobs through `Source`, which the layer above implements:
// the server over the local registry's records and BlobStore (server/image_source.cpp), the
// CLI over the registry's HTTP API. So this module never includes a service.
//
// Layout under `root`:
//   layers/<hex>     one unpacked layer per layer (blob) digest, read-only by convention
//   tmp/             layers being unpacked; renamed into layers/ only when complete, so a
//                    crash never leaves a half layer under layers/
//
// Threading: all methods are safe from any thread; two callers needing the same layer wait
// for one unpack. Several processes may share a root (rename decides who wins).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "image/manifest.h"

namespace image {

struct ManifestBlob {
  std::string media_type;  // may be empty (then taken from the JSON)
  std::string digest;      // "sha256:..." of `bytes`
  std::string bytes;
};

// Where manifests and blobs come from. Implementations must be thread-safe.
class Source {
 public:
  virtual ~Source() = default;
  // The manifest `reference` (a tag or a digest) names in `repository`. NotFound when the
  // repository or the reference does not exist.
  virtual base::Result<ManifestBlob> GetManifest(const std::string& repository,
                                                 const std::string& reference) = 0;
  // A small blob (an image config) whole. The caller verifies the digest.
  virtual base::Result<std::string> ReadBlob(const std::string& repository,
                                             const std::string& digest) = 0;
  // A local file holding blob `digest` (the source may download it first). The caller
  // verifies the digest while reading; the file stays valid for the caller's use.
  virtual base::Result<std::string> BlobPath(const std::string& repository,
                                             const std::string& digest) = 0;
};

// An image reference resolved to one linux/amd64 image manifest.
struct ResolvedImage {
  std::string repository;
  std::string manifest_digest;  // of the image manifest (the index's entry for an index)
  std::string media_type;
  Descriptor config_descriptor;
  ImageConfig config;
  std::vector<Descriptor> layers;  // bottom first
};

// Pins layer directories against GC while a sandbox uses them. Move-only.
class ImageStore;
class LayerLease {
 public:
  LayerLease() = default;
  LayerLease(LayerLease&& o) noexcept;
  LayerLease& operator=(LayerLease&& o) noexcept;
  ~LayerLease();

 private:
  friend class ImageStore;
  void Release();
  ImageStore* store_ = nullptr;
  std::vector<std::string> digests_;
};

struct PreparedImage {
  ResolvedImage image;
  // Unpacked layers, bottom first: OverlayRoot::lower_dirs as is. Empty for an image
  // without layers (the caller supplies an empty dir then; overlayfs needs one).
  std::vector<std::string> lower_dirs;
  LayerLease lease;
};

struct ImageStoreOptions {
  uint64_t max_layer_bytes = 16ull << 30;  // unpacked size limit per layer (tar bombs)
  std::string os = "linux", architecture = "amd64";
};

class ImageStore {
 public:
  // Creates `root`/layers and `root`/tmp; removes temp dirs a crash left behind (older than
  // an hour, so a concurrent process's unpack is left alone).
  static base::Result<std::unique_ptr<ImageStore>> Open(const std::string& root, Source* source,
                                                        ImageStoreOptions options = {});
  ~ImageStore();

  // Reads and validates the manifest (picking the platform from an index) and the config.
  // InvalidArgument for malformed manifests/configs, Corruption for digest mismatches.
  base::Result<ResolvedImage> Resolve(const std::string& repository, const std::string& reference);

  // Resolve + every layer unpacked (once per digest) + a lease on them.
  base::Result<PreparedImage> Prepare(const std::string& repository, const std::string& reference);
  // The layers of an already resolved image.
  base::Result<PreparedImage> Prepare(ResolvedImage image);

  // The unpacked directory of one layer, unpacking it when missing. The caller holds a
  // lease (or accepts that GC may take it once unreferenced and past grace).
  base::Result<std::string> EnsureLayer(const std::string& repository, const Descriptor& layer);
  std::string LayerDir(const std::string& digest) const;

  // Deletes unpacked layers whose digest `referenced` does not name, that no lease holds,
  // and that were not used within `grace`. Returns how many it deleted.
  base::Result<int> Gc(const std::set<std::string>& referenced, std::chrono::seconds grace);

  const std::string& root() const { return root_; }

 private:
  friend class LayerLease;
  ImageStore(std::string root, Source* source, ImageStoreOptions options);
  LayerLease Lease(const std::vector<std::string>& digests);
  void Unlease(const std::vector<std::string>& digests);
  std::mutex& LayerMutex(const std::string& digest);

  std::string root_;
  Source* source_;
  ImageStoreOptions options_;
  std::mutex mu_;
  std::map<std::string, int> leases_;  // digest -> holders
  std::map<std::string, std::unique_ptr<std::mutex>> unpacking_;
};

// "repo:tag", "repo@sha256:…", "host:port/repo:tag" (the host is dropped: the local
// registry is meant). A missing tag is "latest".
struct Reference {
  std::string repository, reference;  // tag or digest
};
base::Result<Reference> ParseReference(const std::string& text);

}  // namespace image
