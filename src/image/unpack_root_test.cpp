// Overlay forms of whiteouts need root (mknod of a 0:0 device, trusted.* xattrs); and so
// does the layer-diff round trip through a real overlayfs mount.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "image/layer_writer.h"
#include "image/test_tar.h"
#include "image/unpack.h"

namespace image {
namespace {

using testing::Compression;
using testing::MakeTar;
using testing::TempDir;

#define REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root (mknod, trusted.* xattrs, overlay mounts)"

bool IsWhiteout(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool IsOpaque(const std::string& p) {
  char v[4] = {};
  return getxattr(p.c_str(), "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y';
}

base::Status UnpackInto(const TempDir& t, const std::string& name, const std::string& tar) {
  std::string dest = t.path() + "/" + name;
  ::mkdir(dest.c_str(), 0755);
  UnpackOptions o;
  auto r = UnpackLayer(t.Write(name + ".tar", tar), dest, o);
  return r.ok() ? base::Status::Ok() : r.status();
}

TEST(UnpackRoot, WhiteoutsAndOpaqueDirsBecomeOverlayForms) {
  REQUIRE_ROOT();
  TempDir t;
  ASSERT_TRUE(UnpackInto(t, "l1",
                         MakeTar({{"etc/", 'd', "", 0755},
                                  {"etc/gone", 'f', "x"},
                                  {"etc/kept", 'f', "k"},
                                  {"opt/old/", 'd', "", 0755},
                                  {"opt/old/a", 'f', "a"}}))
                  .ok());
  ASSERT_TRUE(
      UnpackInto(
          t, "l2",
          MakeTar({{"etc/.wh.gone", 'f'}, {"opt/old/.wh..wh..opq", 'f'}, {"opt/old/b", 'f', "b"}},
                  Compression::kGzip))
          .ok());
  EXPECT_TRUE(IsWhiteout(t.path() + "/l2/etc/gone"));
  EXPECT_TRUE(IsOpaque(t.path() + "/l2/opt/old"));
  EXPECT_FALSE(IsOpaque(t.path() + "/l2/etc"));

  // Stacked in overlayfs, the view is the image's.
  std::string mnt = t.path() + "/mnt";
  ::mkdir(mnt.c_str(), 0755);
  std::string opts = "lowerdir=" + t.path() + "/l2:" + t.path() + "/l1";
  ASSERT_EQ(mount("overlay", mnt.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0) << errno;
  struct stat st {};
  EXPECT_NE(lstat((mnt + "/etc/gone").c_str(), &st), 0);
  EXPECT_EQ(lstat((mnt + "/etc/kept").c_str(), &st), 0);
  EXPECT_NE(lstat((mnt + "/opt/old/a").c_str(), &st), 0);
  EXPECT_EQ(lstat((mnt + "/opt/old/b").c_str(), &st), 0);
  umount2(mnt.c_str(), MNT_DETACH);
}

TEST(UnpackRoot, LayerForgingOverlayXattrsIsIgnored) {
  REQUIRE_ROOT();
  TempDir t;
  // A regular device entry is refused even with whiteouts on.
  EXPECT_FALSE(UnpackInto(t, "dev", MakeTar({{"null", 'c'}})).ok());
  // A whiteout name that would climb is refused.
  EXPECT_FALSE(UnpackInto(t, "climb", MakeTar({{"a/.wh...", 'f'}})).ok());
}

TEST(UnpackRoot, OverlayUpperDiffRoundTrips) {
  REQUIRE_ROOT();
  TempDir t;
  ASSERT_TRUE(UnpackInto(t, "lower",
                         MakeTar({{"etc/", 'd', "", 0755},
                                  {"etc/a", 'f', "a"},
                                  {"etc/b", 'f', "b"},
                                  {"var/", 'd', "", 0755},
                                  {"var/cache/", 'd', "", 0755},
                                  {"var/cache/x", 'f', "x"}}))
                  .ok());
  std::string upper = t.path() + "/upper", work = t.path() + "/work", mnt = t.path() + "/mnt";
  for (const auto& d : {upper, work, mnt}) ::mkdir(d.c_str(), 0755);
  std::string opts = "lowerdir=" + t.path() + "/lower,upperdir=" + upper + ",workdir=" + work;
  ASSERT_EQ(mount("overlay", mnt.c_str(), "overlay", 0, opts.c_str()), 0) << errno;
  // Change things the way a RUN step would.
  EXPECT_EQ(unlink((mnt + "/etc/a").c_str()), 0);
  ASSERT_TRUE(RemoveTree(mnt + "/var/cache").ok());
  ::mkdir((mnt + "/var/cache").c_str(), 0755);  // re-created: an opaque dir
  ASSERT_TRUE(base::WriteFileAtomic(mnt + "/var/cache/y", "y").ok());
  ASSERT_TRUE(base::WriteFileAtomic(mnt + "/etc/c", "c").ok());
  umount2(mnt.c_str(), 0);

  LayerOptions lo;
  lo.from_overlay_upper = true;
  auto w = WriteLayer(upper, t.path() + "/diff.tgz", lo);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  // Unpacked again (as the image store would), stacked on the lower: same view.
  std::string again = t.path() + "/again";
  ::mkdir(again.c_str(), 0755);
  UnpackOptions uo;
  uo.expected_digest = w->digest;
  ASSERT_TRUE(UnpackLayer(t.path() + "/diff.tgz", again, uo).ok());
  EXPECT_TRUE(IsWhiteout(again + "/etc/a"));
  EXPECT_TRUE(IsOpaque(again + "/var/cache"));
  opts = "lowerdir=" + again + ":" + t.path() + "/lower";
  ASSERT_EQ(mount("overlay", mnt.c_str(), "overlay", MS_RDONLY, opts.c_str()), 0) << errno;
  struct stat st {};
  EXPECT_NE(lstat((mnt + "/etc/a").c_str(), &st), 0);
  EXPECT_EQ(*base::ReadFile(mnt + "/etc/b"), "b");
  EXPECT_EQ(*base::ReadFile(mnt + "/etc/c"), "c");
  EXPECT_NE(lstat((mnt + "/var/cache/x").c_str(), &st), 0);
  EXPECT_EQ(*base::ReadFile(mnt + "/var/cache/y"), "y");
  umount2(mnt.c_str(), MNT_DETACH);
}

}  // namespace
}  // namespace image
