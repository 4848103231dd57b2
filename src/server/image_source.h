// server/image_source — the image store's view of the local registry (image::Source over
// ecr::Ecr), and the set of blobs the registry's images name, for layer GC. Lives in
// server/ because it is the one place that may see both ecr/ and image/ (DESIGN §1).
#pragma once

#include <atomic>
#include <set>
#include <string>

#include "image/image_store.h"
#include "services/ecr/ecr.h"

namespace server {

class EcrImageSource : public image::Source {
 public:
  explicit EcrImageSource(ecr::Ecr* ecr = nullptr) : ecr_(ecr) {}
  // The registry may open after the services that hold the image store (app.cpp's order);
  // until it is set, every call is Unavailable. Set once, before serving requests.
  void SetEcr(ecr::Ecr* ecr) { ecr_ = ecr; }
  base::Result<image::ManifestBlob> GetManifest(const std::string& repository,
                                                const std::string& reference) override;
  base::Result<std::string> ReadBlob(const std::string& repository,
                                     const std::string& digest) override;
  // The BlobStore's own file: nothing is copied.
  base::Result<std::string> BlobPath(const std::string& repository,
                                     const std::string& digest) override;

 private:
  std::atomic<ecr::Ecr*> ecr_;
};

// Every blob (configs and layers) some image in some repository names.
base::Result<std::set<std::string>> ReferencedBlobs(ecr::Ecr& ecr);

}  // namespace server
