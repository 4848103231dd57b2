// `stratus build` and `stratus image import|ls|inspect`: the image builder and tools, run in
// the CLI process against the registry's HTTP API (/v2/, SigV4-signed as service "ecr",
// like any registry client), so they work against any Stratus server. See docs/images.md.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "server/config.h"

namespace cli {

struct ImageFlags {
  std::string endpoint_url;  // default: AWS_ENDPOINT_URL, else the configured listen address
  bool data_dir_given = false;
  // build
  std::string tag;                      // -t REPO:TAG
  std::string dockerfile;               // -f (default CONTEXT/Dockerfile)
  std::vector<std::string> build_args;  // K=V
  std::string context;
  // import
  std::string tarball;
  std::string reference;
  std::vector<std::string> cmd;  // --cmd for the imported image's Cmd
};

// Each returns the process exit code (0 ok, 1 failure, 2 usage).
int RunBuild(const ImageFlags& flags, const server::Config& config);
int RunImageImport(const ImageFlags& flags, const server::Config& config);
int RunImageList(const ImageFlags& flags, const server::Config& config);
int RunImageInspect(const ImageFlags& flags, const server::Config& config);

}  // namespace cli
