#include "image/manifest.h"

#include <gtest/gtest.h>

namespace image {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');

TEST(Manifest, ParsesOciAndDockerManifests) {
  for (std::string mt : {std::string(kOciManifest), std::string(kDockerManifest)}) {
    std::string layer_type = mt == kOciManifest
                                 ? "application/vnd.oci.image.layer.v1.tar+zstd"
                                 : "application/vnd.docker.image.rootfs.diff.tar.gzip";
    std::string m = R"({"schemaVersion":2,"mediaType":")" + mt +
                    R"(","config":{"mediaType":"x","digest":")" + kD1 +
                    R"(","size":10},"layers":[{"mediaType":")" + layer_type + R"(","digest":")" +
                    kD2 + R"(","size":20}]})";
    auto r = ParseManifest(m, "");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->is_index);
    EXPECT_EQ(r->config.digest, kD1);
    ASSERT_EQ(r->layers.size(), 1u);
    EXPECT_EQ(r->layers[0].size, 20u);
  }
}

TEST(Manifest, PicksLinuxAmd64FromAnIndex) {
  std::string m =
      R"({"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" +
      kD1 + R"(","size":1,"platform":{"os":"linux","architecture":"arm64"}},
                 {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":")" +
      kD2 + R"(","size":1,"platform":{"os":"linux","architecture":"amd64"}}]})";
  auto r = ParseManifest(m, "");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->is_index);
  auto d = PickPlatform(*r);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->digest, kD2);
  auto none = PickPlatform(*r, "linux", "s390x");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("linux/arm64"), std::string::npos);
}

TEST(Manifest, RefusesBadInput) {
  EXPECT_FALSE(ParseManifest("nope", "").ok());
  EXPECT_FALSE(ParseManifest(R"({"mediaType":"text/plain"})", "").ok());
  EXPECT_FALSE(ParseManifest(R"({"mediaType":"application/vnd.oci.image.manifest.v1+json",
     "config":{"digest":"sha256:zz","size":1},"layers":[]})",
                             "")
                   .ok());
  // A layer type we cannot unpack.
  std::string m =
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":")" + kD1 +
      R"(","size":1},"layers":[{"mediaType":"application/x-foo","digest":")" + kD2 +
      R"(","size":1}]})";
  EXPECT_FALSE(ParseManifest(m, "").ok());
}

TEST(ImageConfig, RoundTrip) {
  ImageConfig c;
  c.entrypoint = {"/bin/app"};
  c.cmd = {"--port", "80"};
  c.env = {"PATH=/bin", "A=b"};
  c.working_dir = "/srv";
  c.user = "1000:1000";
  c.exposed_ports = {"80/tcp"};
  c.labels = {{"k", "v"}};
  c.diff_ids = {kD1};
  c.history = {{"2026-01-01T00:00:00Z", "RUN x", "", false}};
  auto back = ParseImageConfig(SerializeImageConfig(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->entrypoint, c.entrypoint);
  EXPECT_EQ(back->cmd, c.cmd);
  EXPECT_EQ(back->env, c.env);
  EXPECT_EQ(back->working_dir, "/srv");
  EXPECT_EQ(back->user, "1000:1000");
  EXPECT_EQ(back->exposed_ports, c.exposed_ports);
  EXPECT_EQ(back->labels, c.labels);
  EXPECT_EQ(back->diff_ids, c.diff_ids);
  ASSERT_EQ(back->history.size(), 1u);
  EXPECT_EQ(back->history[0].created_by, "RUN x");
  EXPECT_EQ(back->os, "linux");
  EXPECT_EQ(back->architecture, "amd64");
}

TEST(ImageConfig, Env) {
  std::vector<std::string> env = {"A=1"};
  SetEnv(env, "A", "2");
  SetEnv(env, "B", "x=y");
  EXPECT_EQ(env, (std::vector<std::string>{"A=2", "B=x=y"}));
  EXPECT_EQ(GetEnv(env, "B"), "x=y");
  EXPECT_FALSE(GetEnv(env, "C"));
}

}  // namespace
}  // namespace image
