// Sandbox benchmark: create -> run /bin/true -> exit -> destroy, p50/p99, for a fresh
// sandbox, one claimed from the pool, and `runc run` on the same busybox-static root.
//
//   sandbox_bench --rootfs DIR [--iterations N] [--runc-bundle DIR] [--leak-cycles N]
//                 [--phases]
//
// Prints one table, with the host's floor (a bare fork+exit+wait) for scale; --phases
// splits the fresh path into create (clone, init's checklist), start, wait and destroy. With
// --leak-cycles, also runs N create/run/destroy cycles and checks that no mount, cgroup, veth,
// descriptor or child process is left (exit 1 if one is).
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/fs.h"
#include "sandbox/pool.h"
#include "sandbox/sandbox.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using sandbox::ProcessSpec;
using sandbox::Sandbox;
using sandbox::SandboxSpec;

struct Stats {
  double p50_ms = 0, p99_ms = 0, min_ms = 0;
  int n = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min_ms = v.front();
  s.p50_ms = v[v.size() / 2];
  s.p99_ms = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  return s;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

bool RunTrue(Sandbox& sb, double* start_ms, double* wait_ms) {
  ProcessSpec ps;
  ps.argv = {"/bin/true"};
  auto t0 = Clock::now();
  auto p = sb.Start(ps);
  if (!p.ok()) {
    std::fprintf(stderr, "start: %s\n", p.status().ToString().c_str());
    return false;
  }
  auto t1 = Clock::now();
  auto st = p->Wait();
  auto t2 = Clock::now();
  if (start_ms) *start_ms = Ms(t1 - t0);
  if (wait_ms) *wait_ms = Ms(t2 - t1);
  if (!st.ok() || st->ShellCode() != 0) {
    std::fprintf(stderr, "wait: %s\n",
                 st.ok() ? st->ToString().c_str() : st.status().ToString().c_str());
    return false;
  }
  return true;
}

int RunRunc(const std::string& bundle, int i) {
  std::string id = "stratus-bench-" + std::to_string(getpid()) + "-" + std::to_string(i);
  const char* argv[] = {"runc", "run", "--bundle", bundle.c_str(), id.c_str(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid;
  int rc = posix_spawnp(&pid, "runc", &fa, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void Print(const char* name, const Stats& s, const char* note) {
  std::printf("%-34s %6d %9.3f %9.3f %9.3f  %s\n", name, s.n, s.p50_ms, s.p99_ms, s.min_ms, note);
}

int CountFds() {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) (void)e, ++n;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs, bundle;
  int iterations = 200, leak_cycles = 0;
  bool phases = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--rootfs")
      rootfs = next();
    else if (a == "--runc-bundle")
      bundle = next();
    else if (a == "--iterations")
      iterations = std::atoi(next().c_str());
    else if (a == "--leak-cycles")
      leak_cycles = std::atoi(next().c_str());
    else if (a == "--phases")
      phases = true;
    else {
      std::fprintf(stderr,
                   "usage: %s --rootfs DIR [--iterations N] [--runc-bundle DIR] [--leak-cycles N] "
                   "[--phases]\n",
                   argv[0]);
      return 2;
    }
  }
  if (rootfs.empty()) {
    std::fprintf(stderr, "--rootfs is required\n");
    return 2;
  }
  if (auto st = sandbox::CleanupOrphans(); !st.ok()) {
    std::fprintf(stderr, "orphan clean-up: %s\n", st.ToString().c_str());
  }
  SandboxSpec spec;
  spec.root = sandbox::RootKind::kOverlay;
  spec.overlay.lower_dirs = {rootfs};
  spec.overlay.tmpfs_bytes = 16 << 20;
  spec.read_only_root = true;

  // Warm-up (cgroup detection, seccomp compile, page cache).
  for (int i = 0; i < 5; ++i) {
    auto sb = Sandbox::Create(spec);
    if (!sb.ok()) {
      std::fprintf(stderr, "create: %s\n", sb.status().ToString().c_str());
      return 1;
    }
    if (!RunTrue(**sb, nullptr, nullptr)) return 1;
  }

  // Fresh sandboxes two ways, interleaved so that both see the same host conditions:
  // Create + Start, and CreateAndStart (the run command queued while init sets up).
  std::vector<double> fused;
  auto run_fused = [&]() -> bool {
    ProcessSpec ps;
    ps.argv = {"/bin/true"};
    auto t0 = Clock::now();
    auto started = Sandbox::CreateAndStart(spec, ps);
    if (!started.ok()) {
      std::fprintf(stderr, "create+start: %s\n", started.status().ToString().c_str());
      return false;
    }
    auto st = started->process.Wait();
    if (!st.ok() || st->ShellCode() != 0) return false;
    started->sandbox.reset();
    fused.push_back(Ms(Clock::now() - t0));
    return true;
  };
  std::vector<double> fresh, create_ms, start_ms, wait_ms, destroy_ms, clone_ms, setup_ms;
  for (int i = 0; i < iterations; ++i) {
    if (i % 2 == 1 && !run_fused()) return 1;
    auto t0 = Clock::now();
    auto sb = Sandbox::Create(spec);
    if (!sb.ok()) {
      std::fprintf(stderr, "create: %s\n", sb.status().ToString().c_str());
      return 1;
    }
    auto t1 = Clock::now();
    clone_ms.push_back(Ms((*sb)->timings().clone));
    setup_ms.push_back(Ms((*sb)->timings().init_setup));
    double s = 0, w = 0;
    if (!RunTrue(**sb, &s, &w)) return 1;
    auto t2 = Clock::now();
    sb->reset();
    auto t3 = Clock::now();
    fresh.push_back(Ms(t3 - t0));
    create_ms.push_back(Ms(t1 - t0));
    start_ms.push_back(s);
    wait_ms.push_back(w);
    destroy_ms.push_back(Ms(t3 - t2));
    if (i % 2 == 0 && !run_fused()) return 1;
  }
  // Let the kernel finish tearing down the previous section's namespaces (network
  // namespaces are freed by a worker thread) so that it does not bill the next one.
  auto settle = [] { std::this_thread::sleep_for(std::chrono::seconds(1)); };

  settle();
  settle();
  // Pool: claim -> run -> destroy; the pool refills in the background between iterations
  // (we wait for it, so every claim is a hit and the numbers are the claim path).
  std::vector<double> pooled, claim_ms;
  {
    sandbox::PoolOptions po;
    po.spec = spec;
    po.size = 4;
    auto pool = sandbox::Pool::Create(po);
    if (!pool.ok()) return 1;
    for (int i = 0; i < iterations; ++i) {
      if (!(*pool)->WaitForIdle(po.size, std::chrono::seconds(10))) {
        std::fprintf(stderr, "pool: %s\n", (*pool)->last_error().ToString().c_str());
        return 1;
      }
      auto t0 = Clock::now();
      auto sb = (*pool)->TryClaim();
      auto t1 = Clock::now();
      if (!sb || !RunTrue(*sb, nullptr, nullptr)) return 1;
      sb.reset();
      auto t2 = Clock::now();
      pooled.push_back(Ms(t2 - t0));
      claim_ms.push_back(Ms(t1 - t0));
    }
  }

  // The host's floor: a bare fork + exit + waitpid, no namespaces, no exec.
  std::vector<double> baseline;
  settle();
  for (int i = 0; i < iterations; ++i) {
    auto t0 = Clock::now();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    int st;
    waitpid(pid, &st, 0);
    baseline.push_back(Ms(Clock::now() - t0));
  }

  std::vector<double> runc;
  if (!bundle.empty()) {
    settle();
    for (int i = 0; i < iterations; ++i) {
      auto t0 = Clock::now();
      int rc = RunRunc(bundle, i);
      if (rc != 0) {
        std::fprintf(stderr, "runc run exited %d\n", rc);
        break;
      }
      runc.push_back(Ms(Clock::now() - t0));
    }
  }

  std::printf(
      "\nsandbox: create -> run /bin/true -> exit -> destroy (busybox-static rootfs, ms)\n");
  std::printf("%-34s %6s %9s %9s %9s\n", "", "n", "p50", "p99", "min");
  Stats f = Summarize(fresh), p = Summarize(pooled), c = Summarize(claim_ms), r = Summarize(runc);
  Print("stratus fresh", f, "");
  if (phases) {
    Print("  create", Summarize(create_ms), "");
    Print("    clone (namespaces)", Summarize(clone_ms), "");
    Print("    init setup checklist", Summarize(setup_ms), "");
    Print("  start /bin/true", Summarize(start_ms), "");
    Print("  wait", Summarize(wait_ms), "");
    Print("  destroy", Summarize(destroy_ms), "");
  }
  Print("stratus fresh, CreateAndStart", Summarize(fused), "");
  Print("stratus pool (claim+run+destroy)", p, "");
  Print("stratus pool claim only", c, "");
  if (!runc.empty()) Print("runc run", r, "");
  Print("host floor: fork+exit+wait", Summarize(baseline), "(no namespaces, no exec)");
  std::printf("\ntargets: fresh p50 <= 5 ms: %s", f.p50_ms <= 5 ? "MET" : "MISSED");
  if (!runc.empty()) {
    std::printf("; fresh <= runc/4 (%.3f ms): %s", r.p50_ms / 4,
                f.p50_ms <= r.p50_ms / 4 ? "MET" : "MISSED");
  }
  std::printf("; pool claim p50 <= 1 ms: %s\n", c.p50_ms <= 1 ? "MET" : "MISSED");

  int failures = 0;
  if (leak_cycles > 0) {
    auto mgr = sandbox::DefaultCgroupManager();
    std::string prefix = "sbx-" + std::to_string(getpid()) + "-";
    auto mine = [&] {
      size_t n = 0;
      for (auto& s : (*mgr)->ListChildren()) n += s.rfind(prefix, 0) == 0;
      return n;
    };
    auto veths = [] {
      char own[32];
      std::snprintf(own, sizeof(own), "stx%x-", static_cast<unsigned>(getpid()) & 0xffffff);
      int n = 0;
      for (auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
        n += e.path().filename().string().rfind(own, 0) == 0;
      }
      return n;
    };
    int fds = CountFds();
    auto mounts = base::ReadFile("/proc/self/mountinfo");
    size_t cgroups = mine();
    int v = veths();
    auto t0 = Clock::now();
    // Every other cycle on the bridge network, so veths are part of the check.
    SandboxSpec bridged = spec;
    bridged.network.mode = sandbox::NetworkMode::kBridge;
    bool bridge_existed = std::filesystem::exists("/sys/class/net/" + bridged.network.bridge);
    for (int i = 0; i < leak_cycles; ++i) {
      auto sb = Sandbox::Create(i % 2 == 0 ? spec : bridged);
      if (!sb.ok()) {
        std::fprintf(stderr, "create: %s\n", sb.status().ToString().c_str());
        return 1;
      }
      if (!RunTrue(**sb, nullptr, nullptr)) return 1;
    }
    if (!bridge_existed) sandbox::RemoveBridge(bridged.network.bridge).IgnoreError();
    double secs = Ms(Clock::now() - t0) / 1000;
    auto check = [&](const char* what, bool ok) {
      std::printf("  %-40s %s\n", what, ok ? "ok" : "LEAK");
      failures += !ok;
    };
    std::printf("\nleak check after %d create/run/destroy cycles, half of them bridged (%.1f s):\n",
                leak_cycles, secs);
    check("descriptors", CountFds() == fds);
    check("host mounts", mounts.ok() && *base::ReadFile("/proc/self/mountinfo") == *mounts);
    check("cgroups", mine() == cgroups);
    check("veths", veths() == v);
    int st;
    check("child processes", waitpid(-1, &st, WNOHANG) == -1);
  }
  return failures == 0 ? 0 : 1;
}
