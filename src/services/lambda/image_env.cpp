#include "services/lambda/image_env.h"

#include <set>

#include "image/launch.h"

namespace lambda {

base::Status PrepareImage(image::ImageStore& images, const FunctionConfig& c) {
  auto p = images.Prepare(c.image_repository, c.code_digest);
  return p.ok() ? base::Status::Ok() : p.status();
}

base::Result<ImageBoot> PrepareImageBoot(image::ImageStore& images, const FunctionConfig& c,
                                         const std::vector<std::string>& lambda_env) {
  ASSIGN_OR_RETURN(image::PreparedImage p, images.Prepare(c.image_repository, c.code_digest));
  // Variables the invoker sets only as defaults for its own runtimes.
  static const std::set<std::string> kDefaults = {
      "PATH", "LANG", "LD_LIBRARY_PATH", "NODE_PATH", "LAMBDA_RUNTIME_DIR", "AWS_EXECUTION_ENV"};
  image::LaunchOverrides o;
  o.entrypoint = c.image_config.entry_point;
  o.command = c.image_config.command;
  o.working_dir = c.image_config.working_directory;
  for (const auto& kv : lambda_env) {
    std::string key = kv.substr(0, kv.find('='));
    if (kDefaults.count(key) && !c.environment.count(key)) {
      if (image::GetEnv(p.image.config.env, key) || key == "LAMBDA_RUNTIME_DIR" ||
          key == "AWS_EXECUTION_ENV") {
        continue;
      }
    }
    if (key == "_HANDLER") continue;  // set below, from the effective command
    o.env.push_back(kv);
  }
  // AWS: the handler is the first element of the (effective) CMD.
  const std::vector<std::string>& cmd =
      c.image_config.command
          ? *c.image_config.command
          : (c.image_config.entry_point ? std::vector<std::string>{} : p.image.config.cmd);
  o.env.push_back("_HANDLER=" + (cmd.empty() ? std::string() : cmd[0]));
  // The image's USER is not used: functions run as the sandbox's unprivileged user, as
  // Lambda runs images as its own least-privileged user.
  image::ImageConfig config = p.image.config;
  config.user.clear();
  ASSIGN_OR_RETURN(image::Launch l, image::MakeLaunch(config, p.lower_dirs, o));
  ImageBoot b;
  b.lower_dirs = p.lower_dirs;
  b.argv = std::move(l.argv);
  b.env = std::move(l.env);
  b.cwd = std::move(l.cwd);
  b.lease = std::make_shared<image::LayerLease>(std::move(p.lease));
  return b;
}

}  // namespace lambda
