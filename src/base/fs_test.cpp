#include "base/fs.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>

namespace base {
namespace {

TEST(Fs, WriteAtomicAndRead) {
  char tmpl[] = "/tmp/stratus-fs-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  ASSERT_TRUE(MakeDirs(dir + "/a/b").ok());
  std::string path = dir + "/a/b/f";
  ASSERT_TRUE(WriteFileAtomic(path, "one", 0600).ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0600).ok());
  EXPECT_EQ(ReadFile(path).value(), "two");
  struct stat sb;
  ASSERT_EQ(stat(path.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadFile(dir + "/missing").status().code(), Code::kNotFound);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace base
