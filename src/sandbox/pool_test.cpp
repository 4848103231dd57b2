#include "sandbox/pool.h"

#include <gtest/gtest.h>

#include <chrono>

#include "sandbox/test_util.h"

namespace sandbox {
namespace {

using namespace std::chrono_literals;

TEST(PoolTest, ClaimIsFastAndTheSandboxWorks) {
  SKIP_UNLESS_SANDBOX_CAPABLE();
  testing::TempDir dir;
  std::string rootfs = testing::MakeBusyboxRoot(dir.path());
  PoolOptions opts;
  opts.spec.root = RootKind::kOverlay;
  opts.spec.overlay.lower_dirs = {rootfs};
  opts.size = 3;
  auto pool = Pool::Create(opts);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  ASSERT_TRUE((*pool)->WaitForIdle(3, 10s)) << (*pool)->last_error().ToString();

  // Three claims; the fastest must be quick (the others may be preempted on a busy host).
  std::vector<std::unique_ptr<Sandbox>> claimed;
  auto best = std::chrono::steady_clock::duration::max();
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto c = (*pool)->Claim();
    best = std::min(best, std::chrono::steady_clock::now() - start);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    claimed.push_back(std::move(c).value());
  }
  EXPECT_LT(best, 1ms);  // typically a few microseconds
  std::unique_ptr<Sandbox> sb = std::move(claimed.back());
  claimed.pop_back();

  testing::TempDir code;
  ASSERT_TRUE(sb->MountInto(code.path(), "/var/task", true).ok());
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "test -d /var/task && exit 3"};
  auto p = sb->Start(ps);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto st = p->Wait(5s);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->ShellCode(), 3);

  // The pool refills in the background.
  EXPECT_TRUE((*pool)->WaitForIdle(3, 10s));
}

TEST(PoolTest, BrokenSpecReportsErrorAndClaimFallsBackToCreate) {
  SKIP_UNLESS_SANDBOX_CAPABLE();
  PoolOptions opts;
  opts.spec.root = RootKind::kOverlay;
  opts.spec.overlay.lower_dirs = {"/nonexistent"};
  opts.size = 1;
  auto pool = Pool::Create(opts);
  ASSERT_TRUE(pool.ok());
  auto sb = (*pool)->Claim();
  EXPECT_FALSE(sb.ok());
  EXPECT_EQ(sb.status().code(), base::Code::kInvalidArgument);
}

}  // namespace
}  // namespace sandbox
