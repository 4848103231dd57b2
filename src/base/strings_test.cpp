#include "base/strings.h"

#include <gtest/gtest.h>

namespace base {
namespace {

TEST(Strings, HexRoundTrip) {
  EXPECT_EQ(HexEncode(std::string("\x00\xff\x10", 3)), "00ff10");
  EXPECT_EQ(HexDecode("00FF10").value(), std::string("\x00\xff\x10", 3));
  EXPECT_FALSE(HexDecode("abc").has_value());
  EXPECT_FALSE(HexDecode("zz").has_value());
}

TEST(Strings, Base64) {
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_EQ(Base64Decode("aGVsbG8=").value(), "hello");
  EXPECT_EQ(Base64Decode("aGVsbG8h").value(), "hello!");
  EXPECT_EQ(Base64Decode("").value(), "");
  EXPECT_FALSE(Base64Decode("a").has_value());
  EXPECT_FALSE(Base64Decode("!!!!").has_value());
}

TEST(Strings, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c~d"), "a%20b%2Fc~d");
  EXPECT_EQ(UriEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(UriEncode("é"), "%C3%A9");
}

TEST(Strings, UriDecode) {
  EXPECT_EQ(UriDecode("a%20b").value(), "a b");
  EXPECT_EQ(UriDecode("a+b", true).value(), "a b");
  EXPECT_EQ(UriDecode("a+b").value(), "a+b");
  EXPECT_FALSE(UriDecode("%").has_value());
  EXPECT_FALSE(UriDecode("%4").has_value());
  EXPECT_FALSE(UriDecode("%zz").has_value());
  EXPECT_EQ(UriDecode("%41").value(), "A");
}

TEST(Strings, ParseQuery) {
  auto q = ParseQuery("Action=GetUser&UserName=bob%20x&Flag").value();
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[0].first, "Action");
  EXPECT_EQ(q[1].second, "bob x");
  EXPECT_EQ(q[2].first, "Flag");
  EXPECT_EQ(q[2].second, "");
  EXPECT_FALSE(ParseQuery("a=%G0").has_value());
}

TEST(Strings, Glob) {
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("iam:*", "iam:CreateUser"));
  EXPECT_TRUE(GlobMatch("iam:Get*", "iam:GetUser"));
  EXPECT_FALSE(GlobMatch("iam:Get*", "iam:ListUsers"));
  EXPECT_TRUE(GlobMatch("s3:?etObject", "s3:GetObject"));
  EXPECT_FALSE(GlobMatch("s3:?etObject", "s3:etObject"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXXbYY"));
  EXPECT_TRUE(GlobMatch("IAM:getuser", "iam:GetUser", true));
  EXPECT_FALSE(GlobMatch("IAM:getuser", "iam:GetUser", false));
}

TEST(Strings, TrimSplitLower) {
  EXPECT_EQ(Trim("  a b \t"), "a b");
  EXPECT_EQ(Split("a,,b", ',').size(), 3u);
  EXPECT_EQ(ToLower("AbC"), "abc");
  EXPECT_TRUE(EqualsIgnoreCase("Host", "hOST"));
  EXPECT_EQ(ParseInt("-42").value(), -42);
  EXPECT_FALSE(ParseInt("4x").has_value());
  EXPECT_FALSE(ParseInt("").has_value());
}

}  // namespace
}  // namespace base
