#include "services/lambda/zip.h"

#include <gtest/gtest.h>

#include <chrono>

#include "services/lambda/test_zip.h"

namespace lambda {
namespace {

using testing::MakeZip;
using testing::ZipEntry;

TEST(StaysInsideRoot, Paths) {
  EXPECT_TRUE(StaysInsideRoot("", "index.py"));
  EXPECT_TRUE(StaysInsideRoot("", "lib/a/../b.py"));
  EXPECT_TRUE(StaysInsideRoot("lib", "../index.py"));
  EXPECT_FALSE(StaysInsideRoot("", "../x"));
  EXPECT_FALSE(StaysInsideRoot("", "a/../../x"));
  EXPECT_FALSE(StaysInsideRoot("", "/etc/passwd"));
  EXPECT_FALSE(StaysInsideRoot("", "..\\x"));
  EXPECT_FALSE(StaysInsideRoot("", "C:/x"));
  EXPECT_FALSE(StaysInsideRoot("lib", "../../etc"));
  EXPECT_FALSE(StaysInsideRoot("", ""));
}

TEST(CheckZip, GoodZip) {
  std::string zip = MakeZip(
      {{"index.py", "print(1)\n"}, {"lib/util.py", "x = 1\n"}, {"lib/link", "", "util.py"}});
  ZipCheck c = CheckZip(zip, 1 << 20);
  EXPECT_EQ(c.verdict, ZipVerdict::kOk) << c.detail;
  EXPECT_EQ(c.entries, 3u);
  EXPECT_EQ(c.unzipped_size, 15u);
}

TEST(CheckZip, HostileZips) {
  struct Case {
    const char* name;
    std::string zip;
    ZipVerdict want;
  };
  std::string good = MakeZip({{"index.py", std::string(4096, 'a')}});
  std::string truncated = good.substr(0, good.size() / 2);
  std::string flipped = good;
  flipped[40] ^= 0x5a;  // inside the compressed data or header
  std::vector<Case> cases = {
      {"zip-slip", MakeZip({{"../x", "evil"}}), ZipVerdict::kUnsafePath},
      {"nested zip-slip", MakeZip({{"a/../../x", "evil"}}), ZipVerdict::kUnsafePath},
      {"absolute", MakeZip({{"/etc/cron.d/x", "evil"}}), ZipVerdict::kUnsafePath},
      {"symlink absolute", MakeZip({{"passwd", "", "/etc/passwd"}}), ZipVerdict::kUnsafePath},
      {"symlink climbing", MakeZip({{"lib/up", "", "../../etc"}}), ZipVerdict::kUnsafePath},
      {"not a zip", std::string("this is not a zip file at all"), ZipVerdict::kCorrupt},
      {"empty bytes", std::string(), ZipVerdict::kCorrupt},
      {"truncated", truncated, ZipVerdict::kCorrupt},
  };
  for (const auto& c : cases) {
    ZipCheck got = CheckZip(c.zip, 1 << 20);
    EXPECT_EQ(got.verdict, c.want) << c.name << ": " << got.detail;
  }
  // A flipped byte must never pass silently as something else than OK/corrupt, nor crash.
  ZipCheck f = CheckZip(flipped, 1 << 20);
  EXPECT_TRUE(f.verdict == ZipVerdict::kCorrupt || f.verdict == ZipVerdict::kOk);
}

TEST(CheckZip, ZipBombStopsAtTheLimit) {
  // 8 MiB of zeros compresses to a few KB; with a 1 MiB limit reading stops early.
  std::string zip = MakeZip({{"bomb", std::string(1 << 20, '\0'), "", 8}});
  ASSERT_LT(zip.size(), 64u * 1024);
  auto start = std::chrono::steady_clock::now();
  ZipCheck c = CheckZip(zip, 1 << 20);
  EXPECT_EQ(c.verdict, ZipVerdict::kUnzippedTooLarge);
  EXPECT_LE(c.unzipped_size, (1u << 20) + 64 * 1024);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(CheckZip, ManySmallEntriesAddUp) {
  std::vector<ZipEntry> entries;
  for (int i = 0; i < 20; ++i) entries.push_back({"f" + std::to_string(i), std::string(100, 'x')});
  EXPECT_EQ(CheckZip(MakeZip(entries), 1000).verdict, ZipVerdict::kUnzippedTooLarge);
  EXPECT_EQ(CheckZip(MakeZip(entries), 2000).verdict, ZipVerdict::kOk);
}

}  // namespace
}  // namespace lambda
