// lambda/image_env — the container-image half of an execution environment (PackageType
// Image): the image's layers as the sandbox's overlay lower dirs, and the runtime started as
// the image says (Entrypoint + Cmd, Env, WorkingDir) with the function's ImageConfig
// overrides, as AWS runs images built on its base images or with a Runtime Interface Client.
// The invoker (invoker.cpp) calls these from its preparer and its Boot.
//
// Thread-safe (the ImageStore is).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "image/image_store.h"
#include "services/lambda/lambda.h"

namespace lambda {

inline bool IsImageFunction(const FunctionConfig& c) { return c.package_type == "Image"; }

struct ImageBoot {
  std::vector<std::string> lower_dirs;  // bottom first; may be empty (image without layers)
  std::vector<std::string> argv, env;
  std::string cwd;
  std::shared_ptr<image::LayerLease> lease;  // keep while the sandbox runs
};

// Unpacks the function's image (the manifest it was resolved to) into the layer cache: what
// a cold start needs, done when the function is created (Pending → Active).
base::Status PrepareImage(image::ImageStore& images, const FunctionConfig& c);

// `lambda_env`: the invoker's variables for the function ("K=V": the function's Environment
// plus Lambda's reserved ones). Those the invoker only defaults (PATH, LANG,
// LD_LIBRARY_PATH, …) give way to the image's own Env.
base::Result<ImageBoot> PrepareImageBoot(image::ImageStore& images, const FunctionConfig& c,
                                         const std::vector<std::string>& lambda_env);

}  // namespace lambda
