#include "sandbox/sandbox.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "base/fs.h"
#include "base/strings.h"
#include "sandbox/test_util.h"

namespace sandbox {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

struct Captured {
  std::mutex mu;
  std::vector<std::pair<OutputStream, std::string>> lines;
  OutputSink Sink() {
    return [this](OutputStream s, base::SystemTime, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(s, std::string(line));
    };
  }
  std::string Stdout() {
    std::lock_guard<std::mutex> lock(mu);
    std::string out;
    for (auto& [s, l] : lines) {
      if (s == OutputStream::kStdout) out += l + "\n";
    }
    return out;
  }
};

// Before any test: remove what an earlier, killed run of this binary left behind.
class CleanupEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    testing::RemoveStaleTempDirs();
    if (testing::IsRoot() && DefaultCgroupManager().ok()) CleanupOrphans().IgnoreError();
  }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SANDBOX_CAPABLE();
    rootfs_ = testing::MakeBusyboxRoot(dir_.path());
  }

  SandboxSpec BusyboxSpec() {
    SandboxSpec spec;
    spec.root = RootKind::kOverlay;
    spec.overlay.lower_dirs = {rootfs_};
    spec.overlay.tmpfs_bytes = 16 << 20;
    return spec;
  }

  // Runs argv in `sb`, returns (status, stdout).
  std::pair<ExitStatus, std::string> Run(Sandbox& sb, std::vector<std::string> argv,
                                         std::optional<uint32_t> uid = std::nullopt,
                                         std::optional<std::chrono::milliseconds> timeout = 10s) {
    Captured cap;
    ProcessSpec ps;
    ps.argv = std::move(argv);
    ps.stdio = StdioMode::kCapture;
    ps.sink = cap.Sink();
    ps.uid = uid;
    if (uid) ps.gid = *uid;
    auto p = sb.Start(ps);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return {ExitStatus{}, ""};
    auto st = p->Wait(timeout);
    EXPECT_TRUE(st.ok()) << st.status().ToString();
    return {st.ok() ? *st : ExitStatus{}, cap.Stdout()};
  }

  std::unique_ptr<Sandbox> MustCreate(const SandboxSpec& spec) {
    auto sb = Sandbox::Create(spec);
    EXPECT_TRUE(sb.ok()) << sb.status().ToString();
    return sb.ok() ? std::move(sb).value() : nullptr;
  }

  TempDir dir_;
  std::string rootfs_;
};

TEST_F(SandboxTest, RunsCommandsAndReportsExitCodes) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto [st, out] = Run(*sb, {"/bin/true"});
  EXPECT_TRUE(st.exited);
  EXPECT_EQ(st.code, 0);
  auto [st2, out2] = Run(*sb, {"sh", "-c", "exit 7"});
  EXPECT_EQ(st2.ShellCode(), 7);
  auto [st3, out3] = Run(*sb, {"sh", "-c", "kill -TERM $$"});
  EXPECT_FALSE(st3.exited);
  EXPECT_EQ(st3.signal, SIGTERM);
  EXPECT_EQ(st3.ShellCode(), 128 + SIGTERM);
}

TEST_F(SandboxTest, CreateAndStartQueuesTheFirstProcess) {
  Captured cap;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo first; exit 4"};
  ps.stdio = StdioMode::kCapture;
  ps.sink = cap.Sink();
  auto started = Sandbox::CreateAndStart(BusyboxSpec(), ps);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto st = started->process.Wait(10s);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->ShellCode(), 4);
  EXPECT_EQ(cap.Stdout(), "first\n");

  ps.argv = {"/no/such/entrypoint"};
  auto bad = Sandbox::CreateAndStart(BusyboxSpec(), ps);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("/no/such/entrypoint"), std::string::npos);
}

TEST_F(SandboxTest, WritesToCallerPipesWithKFds) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  base::UniqueFd r(p[0]), w(p[1]);
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo out; echo err >&2"};
  ps.stdio = StdioMode::kFds;
  ps.stdout_fd = ps.stderr_fd = w.get();
  auto proc = sb->Start(ps);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  w.Reset();  // the process has its own copies
  ASSERT_TRUE(proc->Wait(10s).ok());
  std::string got;
  char buf[256];
  for (ssize_t n; (n = read(r.get(), buf, sizeof buf)) > 0;) got.append(buf, n);
  EXPECT_EQ(got, "out\nerr\n");
  ps.stdout_fd = -1;
  EXPECT_FALSE(sb->Start(ps).ok());
}

TEST_F(SandboxTest, CapturesStdoutAndStderrLineByLine) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  Captured cap;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo one; echo two >&2; printf 'three\\nfour'"};
  ps.stdio = StdioMode::kCapture;
  ps.sink = cap.Sink();
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(p->Wait().ok());
  std::lock_guard<std::mutex> lock(cap.mu);
  std::vector<std::pair<OutputStream, std::string>> want = {{OutputStream::kStdout, "one"},
                                                            {OutputStream::kStdout, "three"},
                                                            {OutputStream::kStdout, "four"}};
  std::vector<std::pair<OutputStream, std::string>> got_out;
  int err_lines = 0;
  for (auto& l : cap.lines) {
    if (l.first == OutputStream::kStdout) got_out.push_back(l);
    if (l.first == OutputStream::kStderr && l.second == "two") ++err_lines;
  }
  EXPECT_EQ(got_out, want);
  EXPECT_EQ(err_lines, 1);
}

TEST_F(SandboxTest, ProcessesRunAsNobodyWithEnvCwdAndHostname) {
  SandboxSpec spec = BusyboxSpec();
  spec.hostname = "fn-123";
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  Captured cap;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "id -u; id -g; pwd; echo $FOO; hostname"};
  ps.env = {"PATH=/bin", "FOO=bar"};
  ps.cwd = "/tmp";
  ps.stdio = StdioMode::kCapture;
  ps.sink = cap.Sink();
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(p->Wait().ok());
  EXPECT_EQ(cap.Stdout(), "65534\n65534\n/tmp\nbar\nfn-123\n");
}

TEST_F(SandboxTest, CannotSeeHostProcesses) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  // Only init (1) and the shell exist in the pid namespace (a glob forks nothing).
  auto [st, out] = Run(*sb, {"sh", "-c", "echo /proc/[0-9]*; echo $$"});
  EXPECT_EQ(out, "/proc/1 /proc/2\n2\n");
}

TEST_F(SandboxTest, InitReapsOrphanedZombies) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  // The shell's children are orphaned to init when the shell exits; init must reap them.
  auto [st, out] = Run(*sb, {"sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.05 &) ; done"});
  EXPECT_EQ(st.ShellCode(), 0);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(sb->process_count(), 1);  // only init
}

TEST_F(SandboxTest, ReadOnlyRootCannotBeWrittenButTmpCan) {
  SandboxSpec spec = BusyboxSpec();
  spec.read_only_root = true;
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  auto [st, out] =
      Run(*sb, {"sh", "-c", "touch /x 2>/dev/null && echo wrote; touch /tmp/y && echo tmp"}, 0);
  EXPECT_EQ(out, "tmp\n");
}

TEST_F(SandboxTest, WritableRootGoesToTheUpperNotTheLayer) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto [st, out] = Run(*sb, {"sh", "-c", "echo hi > /etc/new && cat /etc/new"}, 0);
  EXPECT_EQ(out, "hi\n");
  EXPECT_FALSE(std::filesystem::exists(rootfs_ + "/etc/new"));
}

TEST_F(SandboxTest, NamedVolumesAreSharedBetweenSandboxesOfATask) {
  TempDir task;
  std::string root = task.path() + "/volumes";
  SandboxSpec spec = BusyboxSpec();
  spec.volume_root = root;
  spec.volumes = {{"shared", "/data", false}};
  auto writer = MustCreate(spec);
  spec.volumes = {{"shared", "/in", true}};
  auto reader = MustCreate(spec);
  ASSERT_TRUE(writer && reader);
  auto [st1, out1] = Run(*writer, {"sh", "-c", "echo hello > /data/msg"});
  EXPECT_EQ(st1.ShellCode(), 0);
  auto [st2, out2] =
      Run(*reader, {"sh", "-c", "cat /in/msg; echo x > /in/other 2>/dev/null || echo ro"});
  EXPECT_EQ(out2, "hello\nro\n");
  writer.reset();
  reader.reset();
  EXPECT_TRUE(RemoveVolumes(root).ok());
  EXPECT_FALSE(std::filesystem::exists(root));
  spec.volumes = {{"../escape", "/x", false}};
  EXPECT_EQ(Sandbox::Create(spec).status().code(), base::Code::kInvalidArgument);
}

TEST_F(SandboxTest, DiskUpperKeepsWrites) {
  TempDir rw;
  SandboxSpec spec = BusyboxSpec();
  spec.overlay.writable_dir = rw.path();
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  Run(*sb, {"sh", "-c", "echo kept > /data"}, 0);
  sb.reset();
  EXPECT_TRUE(std::filesystem::exists(rw.path() + "/upper/data"));
}

TEST_F(SandboxTest, CannotMountEvenAsRootInside) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto [st, out] =
      Run(*sb, {"sh", "-c", "mount -t tmpfs x /mnt 2>/dev/null && echo mounted; echo done"}, 0);
  EXPECT_EQ(out, "done\n");
}

TEST_F(SandboxTest, MaskedAndReadOnlyProcPaths) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto [st, out] = Run(*sb,
                       {"sh", "-c",
                        "head -c 1 /proc/kcore 2>/dev/null | wc -c; "
                        "echo h > /proc/sysrq-trigger 2>/dev/null && echo sysrq; "
                        "echo 1 > /proc/sys/kernel/panic 2>/dev/null && echo sys; "
                        "ls /sys/firmware | wc -l"},
                       0);
  EXPECT_EQ(out, "0\n0\n");
}

TEST_F(SandboxTest, NoneNetworkHasOnlyLoopback) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  // A listener on the host's loopback must not be reachable from the sandbox's.
  base::UniqueFd host(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(host.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(host.get(), 1), 0);
  socklen_t len = sizeof(a);
  getsockname(host.get(), reinterpret_cast<sockaddr*>(&a), &len);
  std::string port = std::to_string(ntohs(a.sin_port));
  auto [st, out] = Run(*sb, {"sh", "-c",
                             "ls /sys/class/net; echo x | nc -w 1 127.0.0.1 " + port +
                                 " 2>/dev/null && echo reached; "
                                 "echo x | nc -w 1 8.8.8.8 53 2>/dev/null && echo internet; true"});
  EXPECT_EQ(out, "lo\n");
}

TEST_F(SandboxTest, ServerListensInsideTheSandboxNetns) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto lfd = sb->ListenTcp("127.0.0.1", 9001);
  ASSERT_TRUE(lfd.ok()) << lfd.status().ToString();
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo hello-runtime | nc 127.0.0.1 9001"};
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  base::UniqueFd conn(accept4(lfd->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  char buf[64] = {};
  ssize_t n = read(conn.get(), buf, sizeof(buf) - 1);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "hello-runtime\n");
  conn.Reset();
  EXPECT_TRUE(p->Wait(5s).ok());

  // And connect into it: a server in the sandbox on its loopback.
  ProcessSpec srv;
  srv.argv = {"sh", "-c", "echo from-inside | nc -l -p 8080"};
  auto sp = sb->Start(srv);
  ASSERT_TRUE(sp.ok());
  base::Result<base::UniqueFd> c = base::Internal("not tried");
  for (int i = 0; i < 200; ++i) {
    c = sb->ConnectTcp("127.0.0.1", 8080);
    if (c.ok()) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  char buf2[64] = {};
  n = read(c->get(), buf2, sizeof(buf2) - 1);
  EXPECT_EQ(std::string(buf2, n > 0 ? n : 0), "from-inside\n");
}

TEST_F(SandboxTest, PublishedPortRelaysIntoTheSandbox) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  ProcessSpec srv;
  srv.argv = {"sh", "-c", "nc -l -p 8080 -e cat"};  // echo server on the sandbox's loopback
  auto sp = sb->Start(srv);
  ASSERT_TRUE(sp.ok());
  auto port = sb->PublishPort("127.0.0.1", 0, 8080);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  base::UniqueFd c;
  for (int i = 0; i < 100; ++i) {
    c.Reset(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(*port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_TRUE(base::WriteAll(c.get(), "ping\n", "test").ok());
    char buf[16] = {};
    ssize_t n = read(c.get(), buf, sizeof(buf) - 1);
    if (n > 0) {
      EXPECT_EQ(std::string(buf, n), "ping\n");
      break;
    }
    std::this_thread::sleep_for(20ms);  // the server in the sandbox was not listening yet
  }
  c.Reset();
  ASSERT_TRUE(sb->Destroy().ok());
}

TEST_F(SandboxTest, SymlinkInLayerCannotEscape) {
  // A hostile layer: /tmp points at a host directory, /escape climbs out, /data leads a
  // bind mount's target towards the host.
  TempDir host_target("/var/tmp");
  std::string layer = dir_.path() + "/evil";
  std::filesystem::create_directories(layer);
  std::filesystem::create_symlink(host_target.path(), layer + "/tmp");
  std::filesystem::create_symlink("../../../../../../../../" + host_target.path(),
                                  layer + "/escape");
  std::filesystem::create_symlink(host_target.path() + "/data", layer + "/data");
  SandboxSpec spec = BusyboxSpec();
  spec.overlay.lower_dirs = {rootfs_, layer};
  spec.binds = {{rootfs_ + "/bin", "/data/bin", true}};
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  auto [st, out] = Run(
      *sb, {"sh", "-c", "echo x > /tmp/pwned; echo y > /escape/pwned2; ls /data/bin/busybox"}, 0);
  EXPECT_EQ(out, "/data/bin/busybox\n");
  // Nothing on the host side changed, nothing got mounted there.
  EXPECT_TRUE(std::filesystem::is_empty(host_target.path()));
  auto mi = base::ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mi.ok());
  EXPECT_EQ(mi->find(host_target.path()), std::string::npos);
}

TEST_F(SandboxTest, LeanRootWithCodeAtVarTask) {
  TempDir code;
  { std::ofstream(code.path() + "/handler.txt") << "handler-code\n"; }
  SandboxSpec spec;
  spec.root = RootKind::kLean;
  spec.lean.code_dir = code.path();
  spec.read_only_root = true;
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  auto [st, out] = Run(*sb, {"/bin/sh", "-c",
                             "cat /var/task/handler.txt; touch /usr/x 2>/dev/null && echo usr-rw; "
                             "touch /var/task/x 2>/dev/null && echo task-rw; ls /etc/passwd"});
  EXPECT_EQ(out, "handler-code\n/etc/passwd\n");
}

TEST_F(SandboxTest, LeanRootMergesLayersAtOpt) {
  TempDir l1, l2;
  { std::ofstream(l1.path() + "/a") << "from-1\n"; }
  { std::ofstream(l1.path() + "/both") << "bottom\n"; }
  { std::ofstream(l2.path() + "/b") << "from-2\n"; }
  { std::ofstream(l2.path() + "/both") << "top\n"; }
  SandboxSpec spec;
  spec.root = RootKind::kLean;
  spec.lean.opt_layers = {l1.path(), l2.path()};
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  auto [st, out] =
      Run(*sb,
          {"/bin/sh", "-c", "cat /opt/a /opt/b /opt/both; touch /opt/c 2>/dev/null || echo ro"}, 0);
  EXPECT_EQ(out, "from-1\nfrom-2\ntop\nro\n");
}

bool HavePython() { return access("/usr/bin/python3", X_OK) == 0; }

TEST_F(SandboxTest, RootInsideCannotLoadModulesOrOpenRawSockets) {
  if (!HavePython()) GTEST_SKIP() << "needs /usr/bin/python3 for raw syscalls";
  SandboxSpec spec;
  spec.root = RootKind::kLean;
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  const char* script = R"(
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
for name, nr in (("init_module", 175), ("finit_module", 313), ("delete_module", 176),
                 ("kexec_load", 246), ("bpf", 321), ("keyctl", 250), ("ptrace", 101),
                 ("io_uring_setup", 425), ("mount", 165), ("setns", 308)):
    r = libc.syscall(nr, 0, 0, 0, 0)
    print(name, "denied" if r == -1 and ctypes.get_errno() == errno.EPERM else "ALLOWED")
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print("raw ALLOWED")
except PermissionError:
    print("raw denied")
r = libc.unshare(0x10000000)
print("unshare-user", "denied" if r == -1 else "ALLOWED")
)";
  auto [st, out] = Run(*sb, {"/usr/bin/python3", "-c", script}, 0);
  EXPECT_EQ(out,
            "init_module denied\nfinit_module denied\ndelete_module denied\nkexec_load denied\n"
            "bpf denied\nkeyctl denied\nptrace denied\nio_uring_setup denied\nmount denied\n"
            "setns denied\nraw denied\nunshare-user denied\n");
}

TEST_F(SandboxTest, MemoryLimitOomIsReported) {
  SandboxSpec spec = BusyboxSpec();
  spec.limits.memory_bytes = 16 << 20;
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  auto [st, out] =
      Run(*sb, {"sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"}, std::nullopt, 20s);
  EXPECT_FALSE(st.exited);
  EXPECT_EQ(st.signal, SIGKILL);
  EXPECT_TRUE(st.oom_killed) << st.ToString();
  EXPECT_FALSE(st.timed_out);
  EXPECT_GT(st.usage.peak_memory_bytes, 8u << 20);
}

TEST_F(SandboxTest, ForkBombIsStoppedByPidsLimit) {
  SandboxSpec spec = BusyboxSpec();
  spec.limits.pids_max = 32;
  auto sb = MustCreate(spec);
  ASSERT_TRUE(sb);
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "bomb() { bomb | bomb & }; bomb"};
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::this_thread::sleep_for(500ms);
  EXPECT_LE(sb->process_count(), 32);
  EXPECT_GT(sb->process_count(), 0);
  ASSERT_TRUE(sb->Kill().ok());
  EXPECT_EQ(sb->process_count(), 0);
}

TEST_F(SandboxTest, TimeoutKillsTheWholeTree) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  auto start = std::chrono::steady_clock::now();
  auto [st, out] = Run(*sb, {"sh", "-c", "sleep 100 & sleep 100 & (sleep 100 &); sleep 100"},
                       std::nullopt, 300ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(st.timed_out);
  EXPECT_EQ(st.ShellCode(), 128 + SIGKILL);
  EXPECT_EQ(sb->process_count(), 0);
  EXPECT_FALSE(sb->alive());
}

TEST_F(SandboxTest, StopSendsTermThenKills) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "trap '' TERM; sleep 100"};
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(sb->Stop(200ms).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  auto st = p->Wait();
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->exited);
  EXPECT_EQ(sb->process_count(), 0);
}

TEST_F(SandboxTest, ExecIntoRunningSandboxAndSignal) {
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  ProcessSpec main;
  main.argv = {"sleep", "100"};
  auto p = sb->Start(main);
  ASSERT_TRUE(p.ok());
  auto [st, out] = Run(*sb, {"sh", "-c", "ps -o comm | grep -c sleep"});
  EXPECT_EQ(out, "1\n");
  ASSERT_TRUE(p->Signal(SIGINT).ok());
  auto w = p->Wait(5s);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->signal, SIGINT);
}

TEST_F(SandboxTest, MountIntoRunningSandbox) {
  TempDir code;
  { std::ofstream(code.path() + "/f") << "claimed\n"; }
  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  ASSERT_TRUE(sb->MountInto(code.path(), "/var/task", true).ok());
  auto [st, out] =
      Run(*sb, {"sh", "-c", "cat /var/task/f; touch /var/task/g 2>/dev/null || echo ro"}, 0);
  EXPECT_EQ(out, "claimed\nro\n");
}

TEST_F(SandboxTest, BadInputGivesClearErrorsAndLeavesNothing) {
  SandboxSpec spec = BusyboxSpec();
  spec.overlay.lower_dirs = {"/nonexistent/layer"};
  auto r = Sandbox::Create(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("/nonexistent/layer"), std::string::npos);

  spec = BusyboxSpec();
  spec.limits.memory_bytes = 1000;
  r = Sandbox::Create(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("memory limit"), std::string::npos);

  spec = BusyboxSpec();
  spec.binds = {{"/nonexistent", "/x", true}};
  EXPECT_FALSE(Sandbox::Create(spec).ok());

  auto sb = MustCreate(BusyboxSpec());
  ASSERT_TRUE(sb);
  ProcessSpec ps;
  ps.argv = {"/bin/no-such-binary"};
  auto p = sb->Start(ps);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("execve"), std::string::npos) << p.status().ToString();
  EXPECT_NE(p.status().message().find("no-such-binary"), std::string::npos);
  // The sandbox still works after a failed start.
  auto [st, out] = Run(*sb, {"true"});
  EXPECT_EQ(st.ShellCode(), 0);
}

TEST_F(SandboxTest, UserNamespaceMapsRootToUnprivileged) {
  SandboxSpec spec = BusyboxSpec();
  spec.user_namespace = true;
  auto sb = Sandbox::Create(spec);
  if (!sb.ok()) GTEST_SKIP() << "user namespaces unavailable: " << sb.status().ToString();
  auto [st, out] = Run(**sb, {"sh", "-c", "id -u; cat /proc/self/uid_map"}, 0);
  auto lines = base::Split(out, '\n');
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "0");
  EXPECT_NE(lines[1].find("100000"), std::string::npos) << out;
}

TEST_F(SandboxTest, BridgeNetworkGetsAnAddressAndReachesTheBridge) {
  if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0) {
    GTEST_SKIP() << "iproute2 (ip) missing";
  }
  NetworkSpec net;
  net.mode = NetworkMode::kBridge;
  net.bridge = "stratus0";
  net.subnet = "10.88.0.0/16";
  bool bridge_existed = std::filesystem::exists("/sys/class/net/" + net.bridge);
  struct RemoveBridgeAtEnd {
    bool keep;
    std::string name;
    ~RemoveBridgeAtEnd() {
      if (!keep) RemoveBridge(name).IgnoreError();
    }
  } remove_bridge{bridge_existed, net.bridge};

  SandboxSpec spec = BusyboxSpec();
  spec.network = net;
  auto a = MustCreate(spec);
  auto b = MustCreate(spec);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->ip_address(), "");
  EXPECT_NE(a->ip_address(), b->ip_address());
  // A listener on the bridge's own address (host side) is reachable from the sandbox.
  base::UniqueFd host(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, "10.88.0.1", &addr.sin_addr);
  ASSERT_EQ(bind(host.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(host.get(), 4), 0);
  socklen_t len = sizeof(addr);
  getsockname(host.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::string port = std::to_string(ntohs(addr.sin_port));
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo via-bridge | nc -w 2 10.88.0.1 " + port};
  auto p = a->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  pollfd pf{host.get(), POLLIN, 0};
  ASSERT_EQ(poll(&pf, 1, 5000), 1);
  base::UniqueFd conn(accept4(host.get(), nullptr, nullptr, SOCK_CLOEXEC));
  char buf[64] = {};
  ssize_t n = read(conn.get(), buf, sizeof(buf) - 1);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "via-bridge\n");
  conn.Reset();  // nc exits when we hang up
  auto pst = p->Wait(5s);
  ASSERT_TRUE(pst.ok());
  EXPECT_FALSE(pst->timed_out);
  // Sandbox to sandbox across the bridge.
  ProcessSpec srv;
  srv.argv = {"sh", "-c", "echo peer | nc -l -p 7000"};
  auto sp = b->Start(srv);
  ASSERT_TRUE(sp.ok());
  std::this_thread::sleep_for(100ms);
  auto [st, out] = Run(*a, {"sh", "-c", "nc -w 2 " + b->ip_address() + " 7000 </dev/null"});
  EXPECT_EQ(out, "peer\n");
  // Destroying the sandbox removes its veth.
  a.reset();
  b.reset();
  int left = 0;
  for (auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
    left +=
        e.path().filename().string().rfind(
            "stx" +
                [] {
                  char h[16];
                  std::snprintf(h, sizeof(h), "%x-", static_cast<unsigned>(getpid()) & 0xffffff);
                  return std::string(h);
                }(),
            0) == 0;
  }
  EXPECT_EQ(left, 0);
}

TEST_F(SandboxTest, CleanupOrphansRemovesCgroupsOfDeadOwners) {
  CgroupManager* mgr = *DefaultCgroupManager();
  // A cgroup named as if a server with pid 4194303 (beyond any live pid) had left it.
  std::string name = "sbx-4194303-1";
  // Held, not removed, while CleanupOrphans runs — as a killed server would leave it.
  auto cg = mgr->Create(name, {});
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  auto kids = mgr->ListChildren();
  ASSERT_NE(std::find(kids.begin(), kids.end(), name), kids.end());
  ASSERT_TRUE(CleanupOrphans().ok());
  kids = mgr->ListChildren();
  EXPECT_EQ(std::find(kids.begin(), kids.end(), name), kids.end());
}

int CountFds() {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

size_t CountMine(const std::vector<std::string>& names) {
  std::string prefix = "sbx-" + std::to_string(getpid()) + "-";
  size_t n = 0;
  for (const auto& s : names) n += s.rfind(prefix, 0) == 0;
  return n;
}

// The server is killed with a sandbox running: init sees its control socket close and takes
// the sandbox down; CleanupOrphans() then removes the cgroup the dead server left.
TEST_F(SandboxTest, KilledServerLeavesNoProcessesAndOrphansAreCleaned) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  pid_t server = fork();
  ASSERT_GE(server, 0);
  if (server == 0) {
    auto sb = Sandbox::Create(BusyboxSpec());
    pid_t init = sb.ok() ? (*sb)->init_pid() : -1;
    if (sb.ok()) {
      ProcessSpec ps;
      ps.argv = {"sleep", "100"};
      auto proc = (*sb)->Start(ps);
      if (!proc.ok()) init = -1;
      (void)!write(p[1], &init, sizeof(init));
      pause();
    }
    (void)!write(p[1], &init, sizeof(init));
    _exit(1);
  }
  struct KillAtEnd {  // even when an assertion below fails
    pid_t pid;
    ~KillAtEnd() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } guard{server};
  close(p[1]);
  pid_t init = -1;
  ASSERT_EQ(read(p[0], &init, sizeof(init)), static_cast<ssize_t>(sizeof(init)));
  close(p[0]);
  ASSERT_GT(init, 0);
  kill(server, SIGKILL);
  waitpid(server, nullptr, 0);
  guard.pid = -1;
  // init (now a child of the host's reaper) must be gone or a zombie within a second.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    auto stat = base::ReadFile("/proc/" + std::to_string(init) + "/stat");
    gone = !stat.ok() || stat->find(") Z ") != std::string::npos;
    if (!gone) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(gone) << "init " << init << " outlived its server";
  std::string prefix = "sbx-" + std::to_string(server) + "-";
  CgroupManager* mgr = *DefaultCgroupManager();
  auto count = [&] {
    int n = 0;
    for (const auto& c : mgr->ListChildren()) n += c.rfind(prefix, 0) == 0;
    return n;
  };
  EXPECT_EQ(count(), 1);  // the dead server's cgroup is still there...
  EXPECT_TRUE(CleanupOrphans().ok());
  EXPECT_EQ(count(), 0);  // ...until clean-up on the next start
}

// Host-side veths of this process ("stx<pid hex>-<slot>"); other test processes may run
// bridge tests concurrently under ctest -j.
int CountStratusVeths() {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "stx%x-", static_cast<unsigned>(getpid()) & 0xffffff);
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/sys/class/net")) {
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  }
  return n;
}

TEST_F(SandboxTest, ManyCyclesLeaveNothingBehind) {
  // 100 cycles here to keep the suite fast; bench/sandbox/run.sh runs the 1,000-cycle check.
  CgroupManager* mgr = *DefaultCgroupManager();
  { auto warm = MustCreate(BusyboxSpec()); }
  int fds = CountFds();
  auto mounts = base::ReadFile("/proc/self/mountinfo");
  ASSERT_TRUE(mounts.ok());
  size_t cgroups = CountMine(mgr->ListChildren());
  int veths = CountStratusVeths();
  for (int i = 0; i < 100; ++i) {
    auto sb = MustCreate(BusyboxSpec());
    ASSERT_TRUE(sb);
    auto [st, out] = Run(*sb, {"/bin/true"});
    ASSERT_EQ(st.ShellCode(), 0);
  }
  EXPECT_EQ(CountFds(), fds);
  EXPECT_EQ(*base::ReadFile("/proc/self/mountinfo"), *mounts);
  EXPECT_EQ(CountMine(mgr->ListChildren()), cgroups);
  EXPECT_EQ(CountStratusVeths(), veths);
  int status;
  EXPECT_EQ(waitpid(-1, &status, WNOHANG), -1);  // no child process left, zombie or alive
}

}  // namespace
}  // namespace sandbox
