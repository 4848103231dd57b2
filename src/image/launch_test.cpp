#include "image/launch.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "image/test_tar.h"

namespace image {
namespace {

using testing::TempDir;

struct Layers {
  TempDir t;
  std::vector<std::string> dirs;
  Layers() {
    std::string a = t.path() + "/a", b = t.path() + "/b";
    for (const auto& d : {a, b, a + "/etc", b + "/etc"}) ::mkdir(d.c_str(), 0755);
    (void)base::WriteFileAtomic(a + "/etc/passwd",
                                "root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n");
    // The upper layer's passwd wins.
    (void)base::WriteFileAtomic(b + "/etc/passwd",
                                "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n");
    (void)base::WriteFileAtomic(b + "/etc/group", "root:x:0:\nstaff:x:50:\n");
    dirs = {a, b};
  }
};

TEST(Launch, EntrypointCmdAndOverrides) {
  Layers l;
  ImageConfig c;
  c.entrypoint = {"/bin/app"};
  c.cmd = {"--port", "80"};
  c.env = {"A=1", "PATH=/bin"};
  c.working_dir = "/srv";
  auto r = MakeLaunch(c, l.dirs, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->argv, (std::vector<std::string>{"/bin/app", "--port", "80"}));
  EXPECT_EQ(r->cwd, "/srv");
  EXPECT_EQ(r->env, (std::vector<std::string>{"A=1", "PATH=/bin"}));
  EXPECT_EQ(r->uid, 0u);

  LaunchOverrides o;
  o.command = std::vector<std::string>{"handler.main"};
  o.env = {"A=2", "B=3"};
  o.working_dir = "/var/task";
  r = MakeLaunch(c, l.dirs, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->argv, (std::vector<std::string>{"/bin/app", "handler.main"}));
  EXPECT_EQ(r->env, (std::vector<std::string>{"A=2", "PATH=/bin", "B=3"}));
  EXPECT_EQ(r->cwd, "/var/task");

  // A new entrypoint drops the image's Cmd.
  LaunchOverrides e;
  e.entrypoint = std::vector<std::string>{"/bin/other"};
  r = MakeLaunch(c, l.dirs, e);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->argv, std::vector<std::string>{"/bin/other"});
}

TEST(Launch, NeedsSomethingToRun) {
  Layers l;
  auto r = MakeLaunch(ImageConfig{}, l.dirs, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
  ImageConfig c;
  c.cmd = {"sh"};
  r = MakeLaunch(c, l.dirs, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(GetEnv(r->env, "PATH").has_value());  // a default PATH
}

TEST(Launch, ResolvesUsers) {
  Layers l;
  EXPECT_EQ(*ResolveUser(l.dirs, "app"), std::make_pair(1000u, 1001u));
  EXPECT_EQ(*ResolveUser(l.dirs, "1000"), std::make_pair(1000u, 1001u));
  EXPECT_EQ(*ResolveUser(l.dirs, "4242"), std::make_pair(4242u, 0u));
  EXPECT_EQ(*ResolveUser(l.dirs, "app:staff"), std::make_pair(1000u, 50u));
  EXPECT_EQ(*ResolveUser(l.dirs, "app:7"), std::make_pair(1000u, 7u));
  EXPECT_EQ(*ResolveUser(l.dirs, "root"), std::make_pair(0u, 0u));
  EXPECT_EQ(ResolveUser(l.dirs, "old").status().code(), base::Code::kNotFound);  // hidden below
  EXPECT_EQ(ResolveUser(l.dirs, "app:nogroup").status().code(), base::Code::kNotFound);
  ImageConfig c;
  c.cmd = {"x"};
  c.user = "ghost";
  EXPECT_FALSE(MakeLaunch(c, l.dirs, {}).ok());
}

}  // namespace
}  // namespace image
