// image/launch — how a container starts from an image: the process's argv, environment,
// working directory and ids, from the image config plus the caller's overrides (Lambda's
// ImageConfig, an ECS container definition's entryPoint/command/environment/user). Used with
// ImageStore::Prepare's lower dirs:
//
//   ASSIGN_OR_RETURN(PreparedImage img, store.Prepare(repo, ref));
//   ASSIGN_OR_RETURN(Launch l, MakeLaunch(img.image.config, img.lower_dirs, overrides));
//   spec.root = kOverlay; spec.overlay.lower_dirs = img.lower_dirs; spec.uid = l.uid; ...
//   process.argv = l.argv; process.env = l.env; process.cwd = l.cwd;
//
// Pure functions (they read /etc/passwd and /etc/group from the layers); thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/status.h"
#include "image/manifest.h"

namespace image {

struct LaunchOverrides {
  std::optional<std::vector<std::string>> entrypoint;  // replaces the image's (and drops Cmd)
  std::optional<std::vector<std::string>> command;     // replaces the image's Cmd
  std::optional<std::string> working_dir;
  std::optional<std::string> user;
  std::vector<std::string> env;  // "K=V", set over the image's Env
};

struct Launch {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd = "/";
  uint32_t uid = 0, gid = 0;
};

// Docker's rules: argv = Entrypoint + Cmd (an Entrypoint override drops the image's Cmd
// unless a command is given too); Env = image Env, then overrides; a default PATH when
// none; cwd = WorkingDir or "/"; User "name|uid[:group|gid]" resolved in the image's
// /etc/passwd and /etc/group (topmost layer that has the file; default root).
// InvalidArgument when argv comes out empty, NotFound for an unknown user or group.
base::Result<Launch> MakeLaunch(const ImageConfig& config, const std::vector<std::string>& layers,
                                const LaunchOverrides& overrides);

// "user[:group]" → (uid, gid) in the image whose layers (bottom first) are `layers`.
base::Result<std::pair<uint32_t, uint32_t>> ResolveUser(const std::vector<std::string>& layers,
                                                        const std::string& spec);

}  // namespace image
