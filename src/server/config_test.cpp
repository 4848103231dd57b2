#include "server/config.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/fs.h"

namespace server {
namespace {

TEST(Config, ParseListen) {
  auto a = ParseListen("127.0.0.1:4566").value();
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 4566);
  auto b = ParseListen("[::1]:80").value();
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(EndpointUrl(b), "http://[::1]:80");
  EXPECT_EQ(ParseListen(":9000").value().host, "127.0.0.1");
  EXPECT_EQ(ParseListen("9000").value().port, 9000);
  EXPECT_FALSE(ParseListen("host:").ok());
  EXPECT_FALSE(ParseListen("host:70000").ok());
  EXPECT_FALSE(ParseListen("[::1").ok());
  EXPECT_EQ(EndpointUrl(ParseListen("0.0.0.0:1").value()), "http://127.0.0.1:1");
}

TEST(Config, LoadFileOverlaysAndRejectsUnknownKeys) {
  char tmpl[] = "/tmp/stratus-cfg-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/stratus.yaml";
  ASSERT_TRUE(base::WriteFileAtomic(path, "listen: 127.0.0.1:5000\nregion: eu-west-1\n").ok());
  Config c;
  ASSERT_TRUE(LoadConfigFile(path, c).ok());
  EXPECT_EQ(c.listen, "127.0.0.1:5000");
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_EQ(c.account_id, "000000000000");

  ASSERT_TRUE(base::WriteFileAtomic(path, "listn: x\n").ok());
  auto st = LoadConfigFile(path, c);
  EXPECT_EQ(st.code(), base::Code::kInvalidArgument);
  EXPECT_NE(st.message().find("listn"), std::string::npos);

  ASSERT_TRUE(base::WriteFileAtomic(path, "account_id: 12\n").ok());
  EXPECT_FALSE(LoadConfigFile(path, c).ok());
  ASSERT_TRUE(base::WriteFileAtomic(path, "listen: [unclosed\n").ok());
  EXPECT_FALSE(LoadConfigFile(path, c).ok());
  EXPECT_EQ(LoadConfigFile(std::string(tmpl) + "/none.yaml", c).code(), base::Code::kNotFound);
  std::system(("rm -rf " + std::string(tmpl)).c_str());
}

}  // namespace
}  // namespace server
