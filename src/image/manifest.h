// image/manifest — OCI and Docker image manifests and configs, as plain structs.
//
// Reading: an OCI image manifest or index, a Docker schema 2 manifest or manifest list.
// An index/list is resolved to its linux/amd64 entry by the caller (PickPlatform). The image
// config (the "config" blob) is parsed into ImageConfig.
// Writing (the builder): an OCI image config and an OCI image manifest.
//
// Pure functions of their arguments; thread-safe. Bad input is InvalidArgument naming it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace image {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";

struct Descriptor {
  std::string media_type, digest;
  uint64_t size = 0;
  std::string os, architecture, variant;  // platform (index entries only)
};

struct ParsedManifest {
  bool is_index = false;
  std::string media_type;
  Descriptor config;                  // image manifests
  std::vector<Descriptor> layers;     // image manifests, bottom first
  std::vector<Descriptor> manifests;  // indexes
};

// Parses a manifest; `content_type` (may be empty) is used when the JSON has no mediaType.
// Refuses layer media types we cannot unpack (foreign/non-distributable layers are fine to
// refuse: nothing here can fetch them).
base::Result<ParsedManifest> ParseManifest(std::string_view bytes, std::string_view content_type);

// The index entry for `os`/`arch` (variant ignored); NotFound naming the platforms offered.
base::Result<Descriptor> PickPlatform(const ParsedManifest& index, std::string_view os = "linux",
                                      std::string_view arch = "amd64");

// What a container needs from the image config (OCI image-spec config.md).
struct ImageConfig {
  std::vector<std::string> entrypoint, cmd, env;  // env: "K=V"
  std::string working_dir, user;
  std::vector<std::string> exposed_ports;  // "8080/tcp"
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::string os = "linux", architecture = "amd64";
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, bottom first
  struct History {
    std::string created, created_by, comment;
    bool empty_layer = false;
  };
  std::vector<History> history;
  std::string created;  // RFC 3339, may be empty
};

base::Result<ImageConfig> ParseImageConfig(std::string_view bytes);
// The OCI config JSON for `config` (compact, stable key order).
std::string SerializeImageConfig(const ImageConfig& config);
// An OCI image manifest naming `config` (media type kOciConfig) and `layers`.
std::string SerializeOciManifest(const Descriptor& config, const std::vector<Descriptor>& layers,
                                 const std::map<std::string, std::string>& annotations = {});

// Sets or replaces "KEY=value" in an env list (keeps the order of first definition).
void SetEnv(std::vector<std::string>& env, const std::string& key, const std::string& value);
// Value of KEY in an env list.
std::optional<std::string> GetEnv(const std::vector<std::string>& env, std::string_view key);

}  // namespace image
