// Overlay forms of whiteouts need root (mknod of a 0:0 device, trusted.* xattrs); and so
// does the layer-diff round trip through a real overlayfs mount.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>

#include "base/crypto.h"
#include "image/image_store.h"
#include "image/launch.h"
#include "image/layer_writer.h"
#include "image/test_tar.h"
#include "image/unpack.h"
#include "sandbox/sandbox.h"

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
  // trusted.overlay.opaque in a pax header must not make a dir opaque; user.* is kept.
  testing::TarEntry forged{"d/", 'd', "", 0755};
  forged.xattr = "trusted.overlay.opaque=y";
  testing::TarEntry user{"f", 'f', "x"};
  user.xattr = "user.note=hello";
  ASSERT_TRUE(UnpackInto(t, "x", MakeTar({forged, user})).ok());
  EXPECT_FALSE(IsOpaque(t.path() + "/x/d"));
  char v[16] = {};
  EXPECT_EQ(getxattr((t.path() + "/x/f").c_str(), "user.note", v, sizeof v), 5);
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

// A registry of one image, in memory.
class OneImageSource : public Source {
 public:
  OneImageSource(const TempDir& dir, const std::vector<std::string>& layers, const ImageConfig& c)
      : dir_(dir) {
    std::vector<Descriptor> ds;
    for (const auto& l : layers) ds.push_back({std::string(kOciLayerGzip), Add(l), l.size()});
    std::string cfg = SerializeImageConfig(c);
    manifest_ = SerializeOciManifest({"", Add(cfg), cfg.size()}, ds);
  }
  base::Result<ManifestBlob> GetManifest(const std::string&, const std::string&) override {
    return ManifestBlob{"", "sha256:" + base::Sha256Hex(manifest_), manifest_};
  }
  base::Result<std::string> ReadBlob(const std::string& r, const std::string& d) override {
    ASSIGN_OR_RETURN(std::string p, BlobPath(r, d));
    return base::ReadFile(p);
  }
  base::Result<std::string> BlobPath(const std::string&, const std::string& d) override {
    return dir_.path() + "/" + d.substr(7);
  }

 private:
  std::string Add(const std::string& bytes) {
    std::string d = "sha256:" + base::Sha256Hex(bytes);
    dir_.Write(d.substr(7), bytes);
    return d;
  }
  const TempDir& dir_;
  std::string manifest_;
};

// What container-image functions and tasks do: Prepare + MakeLaunch + an overlay sandbox.
TEST(UnpackRoot, ImageRunsInASandbox) {
  REQUIRE_ROOT();
  auto busybox = base::ReadFile("/bin/busybox");
  if (!busybox.ok()) GTEST_SKIP() << "needs busybox-static at /bin/busybox";
  TempDir blobs, root;
  std::string base_layer =
      MakeTar({{"bin/busybox", 'f', *busybox, 0755},
               {"bin/sh", 'l', "busybox"},
               {"etc/passwd", 'f', "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n"},
               {"etc/motd", 'f', "base"},
               {"etc/secret", 'f', "s"}},
              Compression::kGzip);
  std::string top =
      MakeTar({{"etc/.wh.secret", 'f'}, {"etc/motd", 'f', "top"}, {"srv/", 'd', "", 0755}},
              Compression::kZstd);
  ImageConfig c;
  c.entrypoint = {"/bin/sh", "-c"};
  c.cmd = {"echo nope"};
  c.env = {"GREETING=hi"};
  c.working_dir = "/srv";
  c.user = "app";
  OneImageSource source(blobs, {base_layer, top}, c);
  auto store = ImageStore::Open(root.path(), &source);
  ASSERT_TRUE(store.ok());
  auto img = (*store)->Prepare("app", "v1");
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  LaunchOverrides o;
  o.command = std::vector<std::string>{
      "echo $GREETING $(cat /etc/motd) $(id -u) $(pwd); test ! -e /etc/secret && echo hidden"};
  auto launch = MakeLaunch(img->image.config, img->lower_dirs, o);
  ASSERT_TRUE(launch.ok()) << launch.status().ToString();

  sandbox::SandboxSpec spec;
  spec.root = sandbox::RootKind::kOverlay;
  spec.overlay.lower_dirs = img->lower_dirs;
  spec.uid = launch->uid;
  spec.gid = launch->gid;
  sandbox::ProcessSpec p;
  p.argv = launch->argv;
  p.env = launch->env;
  p.cwd = launch->cwd;
  p.stdio = sandbox::StdioMode::kCapture;
  std::string out;
  p.sink = [&out](sandbox::OutputStream, base::SystemTime, std::string_view line) {
    out += std::string(line) + "\n";
  };
  auto started = sandbox::Sandbox::CreateAndStart(spec, p);
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  auto st = started->process.Wait(std::chrono::seconds(20));
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->exited && st->code == 0) << st->ToString() << out;
  EXPECT_EQ(out, "hi top 1000 /srv\nhidden\n");
  (void)started->sandbox->Destroy();
}

}  // namespace
}  // namespace image
