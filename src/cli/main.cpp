// `stratus` — one binary, subcommands (DESIGN §8).
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "cli/logs_command.h"
#include "server/app.h"
#include "server/config.h"
#include "server/root_credentials.h"
#ifdef STRATUS_HAVE_SANDBOX
#include "sandbox/run_command.h"
#endif
#ifdef STRATUS_HAVE_IMAGE
#include "cli/image_command.h"
#endif

namespace {

struct CommonFlags {
  std::string config_path;
  std::string data_dir;
  std::string listen;
};

void AddCommonFlags(CLI::App* cmd, CommonFlags& f) {
  cmd->add_option("--config", f.config_path,
                  "YAML config file (default: ./stratus.yaml when present)");
  cmd->add_option("--data-dir", f.data_dir,
                  "Data directory (default: $XDG_DATA_HOME/stratus, or /var/lib/stratus as root)");
  cmd->add_option("--listen", f.listen, "Listen address host:port (default 127.0.0.1:4566)");
}

// Defaults, then the config file, then flags.
bool ResolveConfig(const CommonFlags& f, server::Config& config) {
  config.data_dir = server::DefaultDataDir();
  std::string path = f.config_path;
  if (path.empty() && ::access("stratus.yaml", R_OK) == 0) path = "stratus.yaml";
  if (!path.empty()) {
    base::Status st = server::LoadConfigFile(path, config);
    if (!st.ok()) {
      std::fprintf(stderr, "stratus: %s\n", st.ToString().c_str());
      return false;
    }
  }
  if (!f.data_dir.empty()) config.data_dir = f.data_dir;
  if (!f.listen.empty()) config.listen = f.listen;
  auto hp = server::ParseListen(config.listen);
  if (!hp.ok()) {
    std::fprintf(stderr, "stratus: %s\n", hp.status().ToString().c_str());
    return false;
  }
  return true;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Stratus: a private compute cloud that speaks the AWS APIs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "stratus 0.1.0");

  CommonFlags server_flags;
  std::string log_level;
  bool dev_any = false;
  int io_threads = -1;
  auto* server_cmd = app.add_subcommand("server", "Run the API server in the foreground");
  AddCommonFlags(server_cmd, server_flags);
  server_cmd->add_flag("--dev-any-credentials", dev_any,
                       "Accept any access key and signature (development only; never the default)");
  server_cmd->add_option("--io-threads", io_threads, "I/O threads (default: one per core)");
  server_cmd->add_option("--log-level", log_level, "trace|debug|info|warn|error");

  CommonFlags env_flags;
  auto* env_cmd = app.add_subcommand(
      "env", "Print shell exports for the server's root credentials and endpoint");
  AddCommonFlags(env_cmd, env_flags);

  CommonFlags logs_common;
  cli::LogsFlags logs_flags;
  auto* logs_cmd = app.add_subcommand(
      "logs", "Print a function's log events (log group /aws/lambda/NAME), like aws logs tail");
  AddCommonFlags(logs_cmd, logs_common);
  logs_cmd->add_option("name", logs_flags.name, "Function name, or a log group starting with /")
      ->required();
  logs_cmd->add_flag("-f,--follow", logs_flags.follow, "Keep polling for new events (every 1 s)");
  logs_cmd->add_option("--since", logs_flags.since, "How far back to start: 30s, 10m, 2h, 1d, 1w")
      ->capture_default_str();
  logs_cmd->add_option("--endpoint-url", logs_flags.endpoint_url,
                       "API endpoint (default: $AWS_ENDPOINT_URL, else the listen address)");
  logs_cmd->add_option("--filter-pattern", logs_flags.filter_pattern,
                       "Only events matching this CloudWatch Logs filter pattern");

#ifdef STRATUS_HAVE_SANDBOX
  sandbox::RunCommandOptions run_opts;
  auto* sandbox_cmd = app.add_subcommand("sandbox", "Isolation engine tools");
  sandbox_cmd->require_subcommand(1);
  auto* run_cmd = sandbox_cmd->add_subcommand("run", "Run a command in a fresh sandbox");
  auto* rootfs_opt = run_cmd->add_option("--rootfs", run_opts.rootfs,
                                         "Root filesystem directory (read-only lower layer)");
  auto* lean_opt = run_cmd->add_flag(
      "--lean", run_opts.lean, "Lean root: read-only binds of the host's runtime directories");
  rootfs_opt->excludes(lean_opt);
  run_cmd->add_option("--memory", run_opts.memory, "Memory limit, e.g. 128M");
  run_cmd->add_option("--net", run_opts.net, "none|bridge")
      ->check(CLI::IsMember({"none", "bridge"}));
  run_cmd->add_option("--timeout", run_opts.timeout_seconds, "Wall-clock limit in seconds");
  run_cmd->add_option("command", run_opts.command, "Command and arguments (after --)")->required();
#endif

#ifdef STRATUS_HAVE_IMAGE
  // ---- images: stratus build, stratus image import|ls|inspect ----
  CommonFlags image_common;
  cli::ImageFlags image_flags;
  auto* build_cmd = app.add_subcommand(
      "build", "Build an image from a Dockerfile and push it to the registry (RUN needs root)");
  AddCommonFlags(build_cmd, image_common);
  build_cmd->add_option("-t,--tag", image_flags.tag, "REPOSITORY:TAG to push")->required();
  build_cmd->add_option("-f,--file", image_flags.dockerfile,
                        "Dockerfile (default CONTEXT/Dockerfile)");
  build_cmd->add_option("--build-arg", image_flags.build_args, "KEY=VALUE for ARG (repeatable)")
      ->allow_extra_args(false);
  build_cmd->add_option("--endpoint-url", image_flags.endpoint_url, "API endpoint");
  build_cmd->add_option("context", image_flags.context, "Build context directory")->required();
  auto* image_cmd = app.add_subcommand("image", "Images in the registry");
  image_cmd->require_subcommand(1);
  auto* import_cmd = image_cmd->add_subcommand(
      "import", "Push a single-layer image made from a root filesystem tarball");
  AddCommonFlags(import_cmd, image_common);
  import_cmd->add_option("tarball", image_flags.tarball, "ROOTFS.tar (plain, gzip or zstd)")
      ->required();
  import_cmd->add_option("reference", image_flags.reference, "REPOSITORY:TAG")->required();
  import_cmd->add_option("--cmd", image_flags.cmd, "The image's Cmd (default /bin/sh)");
  import_cmd->add_option("--endpoint-url", image_flags.endpoint_url, "API endpoint");
  auto* ls_cmd = image_cmd->add_subcommand("ls", "List repositories, tags and digests");
  AddCommonFlags(ls_cmd, image_common);
  ls_cmd->add_option("--endpoint-url", image_flags.endpoint_url, "API endpoint");
  auto* inspect_cmd = image_cmd->add_subcommand("inspect", "Print an image's config and layers");
  AddCommonFlags(inspect_cmd, image_common);
  inspect_cmd->add_option("reference", image_flags.reference, "REPOSITORY[:TAG|@DIGEST]")
      ->required();
  inspect_cmd->add_option("--endpoint-url", image_flags.endpoint_url, "API endpoint");
#endif

  CLI11_PARSE(app, argc, argv);

#ifdef STRATUS_HAVE_IMAGE
  if (build_cmd->parsed() || image_cmd->parsed()) {
    server::Config config;
    if (!ResolveConfig(image_common, config)) return 2;
    image_flags.data_dir_given = !image_common.data_dir.empty();
    if (build_cmd->parsed()) return cli::RunBuild(image_flags, config);
    if (import_cmd->parsed()) return cli::RunImageImport(image_flags, config);
    if (ls_cmd->parsed()) return cli::RunImageList(image_flags, config);
    return cli::RunImageInspect(image_flags, config);
  }
#endif

#ifdef STRATUS_HAVE_SANDBOX
  if (run_cmd->parsed()) return sandbox::RunCommand(run_opts);
#endif

  if (server_cmd->parsed()) {
    server::Config config;
    if (!ResolveConfig(server_flags, config)) return 2;
    if (dev_any) config.dev_any_credentials = true;
    if (io_threads >= 0) config.io_threads = io_threads;
    if (!log_level.empty()) config.log_level = log_level;
    spdlog::set_level(spdlog::level::from_str(config.log_level));
    if (config.dev_any_credentials)
      spdlog::warn("--dev-any-credentials: every request is accepted as the root user");
    return server::RunServer(config);
  }
  if (logs_cmd->parsed()) {
    server::Config config;
    if (!ResolveConfig(logs_common, config)) return 2;
    logs_flags.data_dir_given = !logs_common.data_dir.empty();
    return cli::RunLogs(logs_flags, config);
  }
  if (env_cmd->parsed()) {
    server::Config config;
    if (!ResolveConfig(env_flags, config)) return 2;
    auto creds = server::LoadOrCreateRootCredentials(config.data_dir);
    if (!creds.ok()) {
      std::fprintf(stderr, "stratus: %s\n", creds.status().ToString().c_str());
      return 1;
    }
    std::string endpoint = server::EndpointUrl(server::ParseListen(config.listen).value());
    std::cout << "export AWS_ACCESS_KEY_ID=" << ShellQuote(creds->access_key_id) << "\n"
              << "export AWS_SECRET_ACCESS_KEY=" << ShellQuote(creds->secret_access_key) << "\n"
              << "unset AWS_SESSION_TOKEN AWS_PROFILE\n"
              << "export AWS_DEFAULT_REGION=" << ShellQuote(config.region) << "\n"
              << "export AWS_REGION=" << ShellQuote(config.region) << "\n"
              << "export AWS_ENDPOINT_URL=" << ShellQuote(endpoint) << "\n"
              << "# aws CLI older than 2.13 ignores AWS_ENDPOINT_URL; this alias covers it.\n"
              << "alias aws=" << ShellQuote("aws --endpoint-url " + endpoint) << "\n";
    return 0;
  }
  return 0;
}
