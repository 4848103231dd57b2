#include "image/unpack.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/crypto.h"
#include "image/layer_writer.h"
#include "image/test_tar.h"

namespace image {
namespace {

using testing::Compression;
using testing::MakeTar;
using testing::TarEntry;
using testing::TempDir;

UnpackOptions Opts() {
  UnpackOptions o;
  o.preserve_owner = false;
  o.overlay_whiteouts = false;  // overlay forms need root: see unpack_root_test
  return o;
}

base::Result<UnpackStats> Unpack(const TempDir& t, const std::string& tar,
                                 UnpackOptions o = Opts()) {
  std::string blob = t.Write("layer.tar", tar);
  std::string dest = t.path() + "/out";
  ::mkdir(dest.c_str(), 0755);
  return UnpackLayer(blob, dest, o);
}

bool Exists(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0;
}

TEST(Unpack, PlainGzipAndZstd) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kZstd}) {
    TempDir t;
    std::string tar = MakeTar({{"etc/", 'd'},
                               {"etc/hostname", 'f', "box\n"},
                               {"./bin/sh", 'f', "#!", 0755},
                               {"bin/link", 'l', "sh"},
                               {"bin/hard", 'h', "bin/sh"},
                               {"run/fifo", 'p'}},
                              c);
    UnpackOptions o = Opts();
    o.expected_digest = "sha256:" + base::Sha256Hex(tar);
    auto r = Unpack(t, tar, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->digest, o.expected_digest);
    EXPECT_EQ(*base::ReadFile(t.path() + "/out/etc/hostname"), "box\n");
    struct stat st {};
    ASSERT_EQ(stat((t.path() + "/out/bin/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
    EXPECT_EQ(st.st_nlink, 2u);  // the hard link
    char buf[16] = {};
    ASSERT_GT(readlink((t.path() + "/out/bin/link").c_str(), buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "sh");
    ASSERT_EQ(lstat((t.path() + "/out/run/fifo").c_str(), &st), 0);
    EXPECT_TRUE(S_ISFIFO(st.st_mode));
  }
}

TEST(Unpack, DigestMismatchIsCorruption) {
  TempDir t;
  UnpackOptions o = Opts();
  o.expected_digest = "sha256:" + std::string(64, 'a');
  auto r = Unpack(t, MakeTar({{"a", 'f', "x"}}, Compression::kGzip), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kCorruption);
}

TEST(Unpack, RefusesAbsolutePaths) {
  TempDir t;
  auto r = Unpack(t, MakeTar({{"/etc/evil", 'f', "x"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("absolute"), std::string::npos);
}

TEST(Unpack, RefusesDotDot) {
  TempDir t;
  auto r = Unpack(t, MakeTar({{"a/../../evil", 'f', "x"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(".."), std::string::npos);
  EXPECT_FALSE(Exists(t.path() + "/evil"));
}

TEST(Unpack, RefusesWritingThroughAnEscapingSymlink) {
  TempDir t;
  // escape -> the temp dir itself (outside out/), absolute and relative forms.
  for (std::string target : {t.path(), std::string("../"), std::string("/tmp")}) {
    TempDir u;
    auto r = Unpack(u, MakeTar({{"escape", 'l', target}, {"escape/evil", 'f', "x"}}));
    ASSERT_FALSE(r.ok()) << target;
    EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("symlink"), std::string::npos) << r.status().message();
    EXPECT_FALSE(Exists(u.path() + "/evil"));
  }
}

TEST(Unpack, SymlinkInsideTheLayerIsFine) {
  TempDir t;
  auto r = Unpack(t, MakeTar({{"usr/lib/", 'd'}, {"lib", 'l', "usr/lib"}, {"lib/x", 'f', "y"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*base::ReadFile(t.path() + "/out/usr/lib/x"), "y");
}

TEST(Unpack, RefusesHardLinksOutOfTheLayer) {
  TempDir t;
  auto r = Unpack(t, MakeTar({{"passwd", 'h', "../../etc/passwd"}}));
  ASSERT_FALSE(r.ok());
  TempDir u;
  r = Unpack(u, MakeTar({{"esc", 'l', "/etc"}, {"passwd", 'h', "esc/passwd"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
}

TEST(Unpack, RefusesDeviceNodes) {
  TempDir t;
  auto r = Unpack(t, MakeTar({{"dev/null", 'c'}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("device"), std::string::npos);
}

TEST(Unpack, RefusesTarBombs) {
  TempDir t;
  UnpackOptions o = Opts();
  o.max_total_bytes = 1 << 20;
  // 4 MiB of zeros compresses to a few KiB.
  auto r = Unpack(t, MakeTar({{"zeros", 'f', std::string(4 << 20, '\0')}}, Compression::kGzip), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kResourceExhausted);
  TempDir u;
  o.max_entries = 3;
  r = Unpack(u, MakeTar({{"a", 'f'}, {"b", 'f'}, {"c", 'f'}, {"d", 'f'}}), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kResourceExhausted);
}

TEST(Unpack, RefusesGarbage) {
  TempDir t;
  auto r = Unpack(t, "this is not a tarball at all, not even close......");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), base::Code::kInvalidArgument);
}

TEST(Unpack, TruncatedArchiveFails) {
  TempDir t;
  std::string tar = MakeTar({{"big", 'f', std::string(100000, 'x')}});
  auto r = Unpack(t, tar.substr(0, 20000));
  ASSERT_FALSE(r.ok());
}

TEST(LayerWriter, RoundTrip) {
  TempDir t;
  std::string tar =
      MakeTar({{"a/b/c.txt", 'f', "hello"}, {"a/l", 'l', "b/c.txt"}, {"a/h", 'h', "a/b/c.txt"}});
  ASSERT_TRUE(Unpack(t, tar).ok());
  auto w = WriteLayer(t.path() + "/out", t.path() + "/layer.tgz", LayerOptions{});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  auto blob = base::ReadFile(t.path() + "/layer.tgz");
  EXPECT_EQ(w->digest, "sha256:" + base::Sha256Hex(*blob));
  EXPECT_EQ(w->size, blob->size());
  EXPECT_NE(w->digest, w->diff_id);
  std::string again = t.path() + "/again";
  ::mkdir(again.c_str(), 0755);
  UnpackOptions o = Opts();
  o.expected_digest = w->digest;
  auto r = UnpackLayer(t.path() + "/layer.tgz", again, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*base::ReadFile(again + "/a/b/c.txt"), "hello");
  EXPECT_EQ(*base::ReadFile(again + "/a/l"), "hello");
  struct stat st {};
  ASSERT_EQ(stat((again + "/a/h").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST(Unpack, IsTarArchive) {
  TempDir t;
  EXPECT_TRUE(IsTarArchive(t.Write("x.tgz", MakeTar({{"a", 'f', "b"}}, Compression::kGzip))));
  EXPECT_TRUE(IsTarArchive(t.Write("x.tar", MakeTar({{"a", 'f', "b"}}))));
  EXPECT_FALSE(IsTarArchive(t.Write("x.txt", "hello world, not a tar")));
}

}  // namespace
}  // namespace image
