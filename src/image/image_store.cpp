#include "image/image_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "base/crypto.h"
#include "base/fs.h"
#include "image/unpack.h"
#include "store/blob_store.h"

namespace image {
namespace {

std::string Hex(const std::string& digest) { return digest.substr(7); }

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  closedir(d);
  return names;
}

bool OlderThan(const std::string& path, std::chrono::seconds age) {
  struct stat st {};
  if (lstat(path.c_str(), &st) < 0) return false;
  return std::time(nullptr) - st.st_mtim.tv_sec > age.count();
}

}  // namespace

// ---- LayerLease ----

LayerLease::LayerLease(LayerLease&& o) noexcept
    : store_(std::exchange(o.store_, nullptr)), digests_(std::move(o.digests_)) {}
LayerLease& LayerLease::operator=(LayerLease&& o) noexcept {
  if (this != &o) {
    Release();
    store_ = std::exchange(o.store_, nullptr);
    digests_ = std::move(o.digests_);
  }
  return *this;
}
LayerLease::~LayerLease() { Release(); }
void LayerLease::Release() {
  if (store_ != nullptr) store_->Unlease(digests_);
  store_ = nullptr;
  digests_.clear();
}

// ---- references ----

base::Result<Reference> ParseReference(const std::string& text) {
  std::string s = text;
  // A leading "host[:port]/" (has a '.' or ':' or is localhost) names the registry.
  size_t slash = s.find('/');
  if (slash != std::string::npos) {
    std::string first = s.substr(0, slash);
    if (first.find('.') != std::string::npos || first.find(':') != std::string::npos ||
        first == "localhost") {
      s = s.substr(slash + 1);
    }
  }
  Reference r;
  size_t at = s.find('@');
  if (at != std::string::npos) {
    r.repository = s.substr(0, at);
    r.reference = s.substr(at + 1);
    if (!store::IsValidDigest(r.reference)) {
      return base::InvalidArgument("image reference '" + text + "': bad digest");
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon != std::string::npos && s.find('/', colon) == std::string::npos) {
      r.repository = s.substr(0, colon);
      r.reference = s.substr(colon + 1);
    } else {
      r.repository = s;
      r.reference = "latest";
    }
  }
  if (r.repository.empty() || r.reference.empty()) {
    return base::InvalidArgument("image reference '" + text + "' is not REPOSITORY[:TAG]");
  }
  for (char c : r.repository) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/')) {
      return base::InvalidArgument("image reference '" + text +
                                   "': repository names are lower-case [a-z0-9._/-]");
    }
  }
  return r;
}

// ---- ImageStore ----

ImageStore::ImageStore(std::string root, Source* source, ImageStoreOptions options)
    : root_(std::move(root)), source_(source), options_(std::move(options)) {}
ImageStore::~ImageStore() = default;

base::Result<std::unique_ptr<ImageStore>> ImageStore::Open(const std::string& root, Source* source,
                                                           ImageStoreOptions options) {
  RETURN_IF_ERROR(base::MakeDirs(root + "/layers", 0755));
  RETURN_IF_ERROR(base::MakeDirs(root + "/tmp", 0700));
  for (const auto& n : ListDir(root + "/tmp")) {
    std::string p = root + "/tmp/" + n;
    if (OlderThan(p, std::chrono::hours(1))) (void)RemoveTree(p);
  }
  return std::unique_ptr<ImageStore>(new ImageStore(root, source, std::move(options)));
}

std::string ImageStore::LayerDir(const std::string& digest) const {
  return root_ + "/layers/" + Hex(digest);
}

base::Result<ResolvedImage> ImageStore::Resolve(const std::string& repository,
                                                const std::string& reference) {
  ASSIGN_OR_RETURN(ManifestBlob blob, source_->GetManifest(repository, reference));
  std::string actual = "sha256:" + base::Sha256Hex(blob.bytes);
  if (store::IsValidDigest(reference) && actual != reference) {
    return base::Corruption("manifest " + reference + " has digest " + actual);
  }
  ASSIGN_OR_RETURN(ParsedManifest m, ParseManifest(blob.bytes, blob.media_type));
  if (m.is_index) {
    ASSIGN_OR_RETURN(Descriptor d, PickPlatform(m, options_.os, options_.architecture));
    ASSIGN_OR_RETURN(blob, source_->GetManifest(repository, d.digest));
    actual = "sha256:" + base::Sha256Hex(blob.bytes);
    if (actual != d.digest)
      return base::Corruption("manifest " + d.digest + " has digest " + actual);
    ASSIGN_OR_RETURN(
        m, ParseManifest(blob.bytes, blob.media_type.empty() ? d.media_type : blob.media_type));
    if (m.is_index) return base::InvalidArgument("image index names another index");
  }
  ResolvedImage img;
  img.repository = repository;
  img.manifest_digest = actual;
  img.media_type = m.media_type;
  img.config_descriptor = m.config;
  img.layers = m.layers;
  ASSIGN_OR_RETURN(std::string cfg, source_->ReadBlob(repository, m.config.digest));
  if ("sha256:" + base::Sha256Hex(cfg) != m.config.digest) {
    return base::Corruption("image config " + m.config.digest + " does not match its digest");
  }
  ASSIGN_OR_RETURN(img.config, ParseImageConfig(cfg));
  if (!img.config.diff_ids.empty() && img.config.diff_ids.size() != img.layers.size()) {
    return base::InvalidArgument("image " + repository + ":" + reference + " has " +
                                 std::to_string(img.layers.size()) + " layers but " +
                                 std::to_string(img.config.diff_ids.size()) + " diff_ids");
  }
  return img;
}

std::mutex& ImageStore::LayerMutex(const std::string& digest) {
  std::lock_guard lock(mu_);
  auto& m = unpacking_[digest];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

base::Result<std::string> ImageStore::EnsureLayer(const std::string& repository,
                                                  const Descriptor& layer) {
  if (!store::IsValidDigest(layer.digest)) {
    return base::InvalidArgument("layer digest '" + layer.digest + "' is invalid");
  }
  std::string dir = LayerDir(layer.digest);
  std::lock_guard unpack_lock(LayerMutex(layer.digest));
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    utimensat(AT_FDCWD, dir.c_str(), nullptr, 0);  // last use, for GC's grace period
    return dir;
  }
  ASSIGN_OR_RETURN(std::string blob_path, source_->BlobPath(repository, layer.digest));
  std::string tmp = root_ + "/tmp/" + Hex(layer.digest) + "-" +
                    base::Sha256Hex(base::RandomBytes(8)).substr(0, 8);
  if (::mkdir(tmp.c_str(), 0755) < 0) return base::ErrnoError("mkdir " + tmp);
  UnpackOptions uo;
  uo.expected_digest = layer.digest;
  uo.max_total_bytes = options_.max_layer_bytes;
  uo.preserve_owner = geteuid() == 0;
  auto stats = UnpackLayer(blob_path, tmp, uo);
  if (!stats.ok()) {
    (void)RemoveTree(tmp);
    return base::Status(stats.status().code(),
                        "layer " + layer.digest + ": " + stats.status().message());
  }
  // The tree's bytes reach the disk before the name does: a crash leaves tmp/ or a whole layer.
  base::UniqueFd tfd(::open(tmp.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (tfd.valid()) ::syncfs(tfd.get());
  if (::rename(tmp.c_str(), dir.c_str()) < 0) {
    int err = errno;
    (void)RemoveTree(tmp);
    // Another process unpacked it first.
    if ((err == ENOTEMPTY || err == EEXIST) && stat(dir.c_str(), &st) == 0) return dir;
    return base::IoError("rename " + tmp, err);
  }
  RETURN_IF_ERROR(base::FsyncDir(root_ + "/layers"));
  return dir;
}

LayerLease ImageStore::Lease(const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  for (const auto& d : digests) ++leases_[d];
  LayerLease l;
  l.store_ = this;
  l.digests_ = digests;
  return l;
}

void ImageStore::Unlease(const std::vector<std::string>& digests) {
  std::lock_guard lock(mu_);
  for (const auto& d : digests) {
    auto it = leases_.find(d);
    if (it != leases_.end() && --it->second <= 0) leases_.erase(it);
  }
}

base::Result<PreparedImage> ImageStore::Prepare(const std::string& repository,
                                                const std::string& reference) {
  ASSIGN_OR_RETURN(ResolvedImage img, Resolve(repository, reference));
  return Prepare(std::move(img));
}

base::Result<PreparedImage> ImageStore::Prepare(ResolvedImage image) {
  PreparedImage p;
  std::vector<std::string> digests;
  for (const auto& l : image.layers) digests.push_back(l.digest);
  p.lease = Lease(digests);  // before unpacking: a concurrent Gc() leaves them alone
  for (const auto& l : image.layers) {
    ASSIGN_OR_RETURN(std::string dir, EnsureLayer(image.repository, l));
    p.lower_dirs.push_back(std::move(dir));
  }
  p.image = std::move(image);
  return p;
}

base::Result<int> ImageStore::Gc(const std::set<std::string>& referenced,
                                 std::chrono::seconds grace) {
  int deleted = 0;
  for (const auto& hex : ListDir(root_ + "/layers")) {
    std::string digest = "sha256:" + hex;
    if (!store::IsValidDigest(digest) || referenced.count(digest) > 0) continue;
    std::string dir = root_ + "/layers/" + hex;
    std::string doomed = root_ + "/tmp/gc-" + hex;
    {
      std::lock_guard unpack_lock(LayerMutex(digest));
      std::lock_guard lock(mu_);
      if (leases_.count(digest) > 0 || !OlderThan(dir, grace)) continue;
      if (::rename(dir.c_str(), doomed.c_str()) < 0) continue;
    }
    RETURN_IF_ERROR(RemoveTree(doomed));
    ++deleted;
  }
  return deleted;
}

}  // namespace image
