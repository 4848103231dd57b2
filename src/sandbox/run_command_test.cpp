#include "sandbox/run_command.h"

#include <gtest/gtest.h>

#include "sandbox/test_util.h"

namespace sandbox {
namespace {

TEST(ParseSizeTest, Table) {
  struct Case {
    const char* in;
    std::optional<uint64_t> want;
  } cases[] = {
      {"4096", 4096},          {"128M", 128ull << 20},
      {"128m", 128ull << 20},  {"1G", 1ull << 30},
      {"1g", 1ull << 30},      {"512k", 512ull << 10},
      {"1.5G", 3ull << 29},    {"64Mi", 64ull << 20},
      {"64MiB", 64ull << 20},  {"2T", 2ull << 40},
      {"", std::nullopt},      {"M", std::nullopt},
      {"-1M", std::nullopt},   {"12Q", std::nullopt},
      {"1..2M", std::nullopt}, {"99999999999T", std::nullopt},
  };
  for (const auto& c : cases) {
    auto r = ParseSize(c.in);
    if (c.want) {
      ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().ToString();
      EXPECT_EQ(*r, *c.want) << c.in;
    } else {
      EXPECT_FALSE(r.ok()) << c.in;
    }
  }
}

class RunCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_UNLESS_SANDBOX_CAPABLE();
    rootfs_ = testing::MakeBusyboxRoot(dir_.path());
  }
  testing::TempDir dir_;
  std::string rootfs_;
};

TEST_F(RunCommandTest, ReturnsTheExitCode) {
  RunCommandOptions o;
  o.rootfs = rootfs_;
  o.command = {"sh", "-c", "exit 7"};
  EXPECT_EQ(RunCommand(o), 7);
}

TEST_F(RunCommandTest, SignalsBecome128PlusSignal) {
  RunCommandOptions o;
  o.rootfs = rootfs_;
  o.command = {"sh", "-c", "kill -USR1 $$"};
  EXPECT_EQ(RunCommand(o), 128 + 10);
}

TEST_F(RunCommandTest, TimeoutSaysSoAndReturns137) {
  RunCommandOptions o;
  o.rootfs = rootfs_;
  o.timeout_seconds = 0.3;
  o.command = {"sleep", "100"};
  ::testing::internal::CaptureStderr();
  int rc = RunCommand(o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 137);
  EXPECT_NE(err.find("timed out"), std::string::npos) << err;
}

TEST_F(RunCommandTest, OomSaysSo) {
  RunCommandOptions o;
  o.rootfs = rootfs_;
  o.memory = "16M";
  o.command = {"sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"};
  ::testing::internal::CaptureStderr();
  int rc = RunCommand(o);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 137);
  EXPECT_NE(err.find("out of memory"), std::string::npos) << err;
}

TEST_F(RunCommandTest, BadFlagsAndMissingCommand) {
  RunCommandOptions o;
  o.command = {"true"};
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(RunCommand(o), 125);  // neither --rootfs nor --lean
  o.lean = true;
  o.net = "wifi";
  EXPECT_EQ(RunCommand(o), 125);
  o.net = "none";
  o.command = {"/no/such/cmd"};
  EXPECT_EQ(RunCommand(o), 127);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("--net"), std::string::npos) << err;
}

}  // namespace
}  // namespace sandbox
