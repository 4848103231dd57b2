#include "sandbox/run_command.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/strings.h"
#include "sandbox/sandbox.h"

namespace sandbox {

base::Result<uint64_t> ParseSize(std::string_view text) {
  std::string s = base::ToLower(base::Trim(text));
  auto bad = [&] {
    return base::InvalidArgument("size '" + std::string(text) + "': expected e.g. 128M or 1G");
  };
  if (s.empty()) return bad();
  if (s.size() > 1 && s.back() == 'b') s.pop_back();
  if (s.size() > 1 && s.back() == 'i') s.pop_back();
  double mult = 1;
  switch (s.back()) {
    case 'k':
      mult = 1024.0;
      break;
    case 'm':
      mult = 1024.0 * 1024;
      break;
    case 'g':
      mult = 1024.0 * 1024 * 1024;
      break;
    case 't':
      mult = 1024.0 * 1024 * 1024 * 1024;
      break;
    default:
      break;
  }
  if (mult != 1) s.pop_back();
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos ||
      std::count(s.begin(), s.end(), '.') > 1 || s == ".") {
    return bad();
  }
  double v = std::strtod(s.c_str(), nullptr) * mult;
  if (!std::isfinite(v) || v >= 1.8e19) return bad();
  return static_cast<uint64_t>(std::llround(v));
}

int RunCommand(const RunCommandOptions& opts) {
  auto fail = [](const std::string& msg, int code) {
    std::fprintf(stderr, "stratus sandbox run: %s\n", msg.c_str());
    return code;
  };
  if (opts.command.empty()) return fail("no command given (use -- CMD...)", 125);
  if (opts.lean == !opts.rootfs.empty())
    return fail("give exactly one of --rootfs DIR or --lean", 125);
  SandboxSpec spec;
  if (opts.lean) {
    spec.root = RootKind::kLean;
  } else {
    spec.root = RootKind::kOverlay;
    spec.overlay.lower_dirs = {opts.rootfs};
  }
  if (!opts.memory.empty()) {
    auto m = ParseSize(opts.memory);
    if (!m.ok()) return fail("--memory: " + m.status().message(), 125);
    spec.limits.memory_bytes = *m;
  }
  if (opts.net == "none") {
    spec.network.mode = NetworkMode::kNone;
  } else if (opts.net == "bridge") {
    spec.network.mode = NetworkMode::kBridge;
  } else {
    return fail("--net must be none or bridge, not '" + opts.net + "'", 125);
  }
  if (opts.timeout_seconds < 0) return fail("--timeout must not be negative", 125);

  auto sb = Sandbox::Create(spec);
  if (!sb.ok()) return fail(sb.status().message(), 125);
  ProcessSpec ps;
  ps.argv = opts.command;
  ps.stdio = StdioMode::kInherit;
  if (const char* term = std::getenv("TERM")) ps.env.push_back(std::string("TERM=") + term);
  ps.env.push_back("HOME=/tmp");
  auto proc = (*sb)->Start(ps);
  if (!proc.ok()) {
    return fail(proc.status().message(),
                proc.status().code() == base::Code::kInvalidArgument ? 127 : 125);
  }
  std::optional<std::chrono::milliseconds> timeout;
  if (opts.timeout_seconds > 0) {
    timeout = std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_seconds * 1000));
  }
  auto st = proc->Wait(timeout);
  if (!st.ok()) return fail(st.status().message(), 125);
  if (st->timed_out) {
    std::fprintf(stderr, "stratus sandbox run: timed out after %gs; killed every process\n",
                 opts.timeout_seconds);
  } else if (st->oom_killed) {
    std::fprintf(stderr, "stratus sandbox run: killed: out of memory (limit %s)\n",
                 opts.memory.c_str());
  }
  (*sb)->Destroy().IgnoreError();
  return st->ShellCode();
}

}  // namespace sandbox
