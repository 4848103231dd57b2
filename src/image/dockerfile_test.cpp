#include "image/dockerfile.h"

#include <gtest/gtest.h>

namespace image {
namespace {

TEST(Dockerfile, ParsesStagesAndInstructions) {
  auto df = ParseDockerfile(R"(# syntax comment
ARG BASE=base:1
FROM ${BASE} AS build
RUN echo one \
    && echo two
COPY --from=build ["a b", "/dst/"]
cmd ["/bin/sh", "-c", "x"]

FROM scratch
COPY --from=build /out /out
ENTRYPOINT /bin/app --flag
)");
  ASSERT_TRUE(df.ok()) << df.status().ToString();
  ASSERT_EQ(df->global_args.size(), 1u);
  ASSERT_EQ(df->stages.size(), 2u);
  EXPECT_EQ(df->stages[0].base, "${BASE}");
  EXPECT_EQ(df->stages[0].name, "build");
  ASSERT_EQ(df->stages[0].steps.size(), 3u);
  EXPECT_EQ(df->stages[0].steps[0].args, "echo one && echo two");
  EXPECT_EQ(df->stages[0].steps[0].line, 4);
  EXPECT_EQ(df->stages[0].steps[1].flags, std::vector<std::string>{"--from=build"});
  EXPECT_TRUE(df->stages[0].steps[1].exec_form);
  EXPECT_EQ(df->stages[0].steps[1].exec, (std::vector<std::string>{"a b", "/dst/"}));
  EXPECT_EQ(df->stages[0].steps[2].keyword, "CMD");
  EXPECT_TRUE(df->stages[0].steps[2].exec_form);
  EXPECT_FALSE(df->stages[1].steps[1].exec_form);
}

TEST(Dockerfile, RefusesWhatItDoesNotSupport) {
  EXPECT_FALSE(ParseDockerfile("RUN x\n").ok());                      // no FROM first
  EXPECT_FALSE(ParseDockerfile("FROM a\nHEALTHCHECK CMD x\n").ok());  // unsupported
  EXPECT_FALSE(ParseDockerfile("FROM a\nRUN --mount=type=cache x\n").ok());
  EXPECT_FALSE(ParseDockerfile("FROM a AS x\nFROM b AS x\n").ok());
  EXPECT_FALSE(ParseDockerfile("").ok());
  auto r = ParseDockerfile("FROM a\nFROBNICATE\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos);
}

TEST(Dockerfile, ExpandsVariables) {
  Lookup l = [](const std::string& k) -> std::optional<std::string> {
    if (k == "A") return "1";
    if (k == "E") return "";
    return std::nullopt;
  };
  EXPECT_EQ(ExpandVariables("$A-${A}-${B:-d}-${A:+alt}-${E:-e}-\\$A-$", l), "1-1-d-alt-e-$A-$");
}

TEST(Dockerfile, SplitsWordsAndKeyValues) {
  auto w = SplitWords(R"(a "b c" 'd e' f\ g)");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, (std::vector<std::string>{"a", "b c", "d e", "f g"}));
  EXPECT_FALSE(SplitWords("\"open").ok());
  auto kv = ParseKeyValues(R"(A=1 B="two words")", true);
  ASSERT_TRUE(kv.ok());
  ASSERT_EQ(kv->size(), 2u);
  EXPECT_EQ((*kv)[1].second, "two words");
  auto legacy = ParseKeyValues("NAME some value", true);
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ((*legacy)[0].second, "some value");
  EXPECT_FALSE(ParseKeyValues("NOVALUE", false).ok());
}

}  // namespace
}  // namespace image
