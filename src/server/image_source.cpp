#include "server/image_source.h"

namespace server {
namespace {

base::Status FromFailure(const ecr::Failure& f) {
  switch (f.code) {
    case ecr::Err::kRepositoryNotFound:
    case ecr::Err::kImageNotFound:
    case ecr::Err::kBlobUnknown:
      return base::NotFound(f.message);
    case ecr::Err::kNameInvalid:
    case ecr::Err::kTagInvalid:
    case ecr::Err::kDigestInvalid:
    case ecr::Err::kInvalidParameter:
      return base::InvalidArgument(f.message);
    default:
      return base::Internal(f.message);
  }
}

}  // namespace

base::Result<image::ManifestBlob> EcrImageSource::GetManifest(const std::string& repository,
                                                              const std::string& reference) {
  ecr::Ecr* ecr = ecr_.load();
  if (ecr == nullptr) return base::Unavailable("the registry is not open yet");
  auto img = ecr->GetImage(repository, reference);
  if (!img.ok()) return FromFailure(img.failure());
  auto bytes = ecr->ReadManifest(repository, img.value().digest);
  if (!bytes.ok()) return FromFailure(bytes.failure());
  return image::ManifestBlob{img.value().media_type, img.value().digest, std::move(bytes).value()};
}

base::Result<std::string> EcrImageSource::ReadBlob(const std::string& repository,
                                                   const std::string& digest) {
  ecr::Ecr* ecr = ecr_.load();
  if (ecr == nullptr) return base::Unavailable("the registry is not open yet");
  auto size = ecr->BlobSize(repository, digest);  // the repository must hold it
  if (!size.ok()) return FromFailure(size.failure());
  return ecr->blobs().Get(digest);
}

base::Result<std::string> EcrImageSource::BlobPath(const std::string& repository,
                                                   const std::string& digest) {
  ecr::Ecr* ecr = ecr_.load();
  if (ecr == nullptr) return base::Unavailable("the registry is not open yet");
  auto size = ecr->BlobSize(repository, digest);
  if (!size.ok()) return FromFailure(size.failure());
  return ecr->blobs().PathOf(digest);
}

base::Result<std::set<std::string>> ReferencedBlobs(ecr::Ecr& ecr) {
  std::set<std::string> out;
  auto repos = ecr.ListRepositories();
  if (!repos.ok()) return FromFailure(repos.failure());
  for (const auto& r : repos.value()) {
    auto images = ecr.ListImages(r.name);
    if (!images.ok()) {
      if (images.failure().code == ecr::Err::kRepositoryNotFound) continue;  // deleted meanwhile
      return FromFailure(images.failure());
    }
    for (const auto& img : images.value()) out.insert(img.blobs.begin(), img.blobs.end());
  }
  return out;
}

}  // namespace server
