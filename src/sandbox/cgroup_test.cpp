#include "sandbox/cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "base/fs.h"
#include "base/strings.h"

namespace sandbox {
namespace {

std::string TestName() { return "sbx-" + std::to_string(getpid()) + "-cgtest"; }

TEST(CgroupTest, DetectsTheHost) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto mgr = CgroupManager::Detect();
  ASSERT_TRUE(mgr.ok()) << mgr.status().ToString();
  // This machine is hybrid (v1 controllers + an empty unified tree); a v2-only host is
  // detected as v2. Either way the description names the hierarchy.
  EXPECT_FALSE((*mgr)->Describe().empty());
}

TEST(CgroupTest, LimitsAreWrittenAndRemoved) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto mgr = DefaultCgroupManager();
  ASSERT_TRUE(mgr.ok()) << mgr.status().ToString();
  CgroupLimits limits;
  limits.memory_bytes = 64 << 20;
  limits.pids_max = 50;
  limits.cpu_quota = 0.5;
  limits.cpu_weight = 50;
  auto cg = (*mgr)->Create(TestName(), limits);
  if (!cg.ok() && cg.status().code() == base::Code::kFailedPrecondition) {
    GTEST_SKIP() << cg.status().ToString();
  }
  ASSERT_TRUE(cg.ok()) << cg.status().ToString();
  std::string dir = (*cg)->path();
  EXPECT_TRUE(std::filesystem::exists(dir));
  auto usage = (*cg)->ReadUsage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->oom_kills, 0u);
  EXPECT_EQ((*cg)->CountProcesses(), 0);
  auto children = (*mgr)->ListChildren();
  EXPECT_NE(std::find(children.begin(), children.end(), TestName()), children.end());
  ASSERT_TRUE((*cg)->Remove().ok());
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(CgroupTest, ImpossibleLimitIsInvalidArgumentAndLeavesNothing) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  auto mgr = DefaultCgroupManager();
  ASSERT_TRUE(mgr.ok());
  CgroupLimits limits;
  limits.cpu_quota = 0.00001;  // below the kernel's 1 ms minimum quota
  auto cg = (*mgr)->Create(TestName(), limits);
  ASSERT_FALSE(cg.ok());
  EXPECT_NE(cg.status().message().find("cpu"), std::string::npos) << cg.status().ToString();
  auto children = (*mgr)->ListChildren();
  EXPECT_EQ(std::find(children.begin(), children.end(), TestName()), children.end());
}

TEST(CgroupTest, V2BackEndOnTheUnifiedHierarchy) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  CgroupOptions opts;
  opts.force_version = CgroupVersion::kV2;
  std::string unified = std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")
                            ? "/sys/fs/cgroup"
                            : "/sys/fs/cgroup/unified";
  if (!std::filesystem::exists(unified + "/cgroup.procs")) GTEST_SKIP() << "no cgroup2 mount";
  opts.v2_base = unified + "/stratus-test-" + std::to_string(getpid());
  auto mgr = CgroupManager::Detect(opts);
  ASSERT_TRUE(mgr.ok()) << mgr.status().ToString();
  EXPECT_EQ((*mgr)->version(), CgroupVersion::kV2);
  {
    auto cg = (*mgr)->Create("a", {});
    ASSERT_TRUE(cg.ok()) << cg.status().ToString();
    EXPECT_TRUE(std::filesystem::exists(opts.v2_base + "/a"));
    CgroupLimits mem;
    mem.memory_bytes = 64 << 20;
    auto limited = (*mgr)->Create("b", mem);
    if (!limited.ok()) {
      // Hybrid host: the memory controller is bound to v1, so v2 cannot offer it.
      EXPECT_EQ(limited.status().code(), base::Code::kFailedPrecondition);
      EXPECT_NE(limited.status().message().find("memory"), std::string::npos);
    }
  }
  EXPECT_FALSE(std::filesystem::exists(opts.v2_base + "/a"));
  rmdir(opts.v2_base.c_str());
}

}  // namespace
}  // namespace sandbox
