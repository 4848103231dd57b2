// `stratus sandbox run`: run one command in a fresh sandbox, for people and tests.
//
//   stratus sandbox run [--rootfs DIR | --lean] [--memory 128M] [--net none|bridge]
//                       [--timeout S] -- CMD...
//
// The CLI parses flags (CLI11) into RunCommandOptions, one field per flag, and returns
// RunCommand's result as its exit code. Thread-compatible; writes diagnostics to stderr.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace sandbox {

struct RunCommandOptions {
  std::string rootfs;          // --rootfs DIR: read-only lower layer of an overlay root
  bool lean = false;           // --lean: read-only binds of the host's /usr, /lib*, /bin, /etc...
  std::string memory;          // --memory 128M ("" = no limit); see ParseSize
  std::string net = "none";    // --net none|bridge
  double timeout_seconds = 0;  // --timeout S (0 = none)
  std::vector<std::string> command;  // after --
};

// Runs the command with stdin/stdout/stderr passed through. Returns its exit code, or
// 128+signal when it was killed; says so on stderr for an OOM kill or a timeout. Setup
// errors are printed and return 125 (like `docker run`), a command that cannot be
// executed 127.
int RunCommand(const RunCommandOptions& opts);

// "128M", "1G", "512k", "4096" (bytes), "1.5G": binary units (K=1024), case-insensitive,
// an optional trailing "i"/"iB"/"B". InvalidArgument on anything else or overflow.
base::Result<uint64_t> ParseSize(std::string_view text);

}  // namespace sandbox
