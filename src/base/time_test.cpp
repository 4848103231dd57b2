#include "base/time.h"

#include <gtest/gtest.h>

namespace base {
namespace {

TEST(Time, AmzDateRoundTrip) {
  auto t = ParseAmzDate("20150830T123600Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatAmzDate(*t), "20150830T123600Z");
  EXPECT_EQ(FormatIso8601(*t), "2015-08-30T12:36:00Z");
  EXPECT_EQ(FormatHttpDate(*t), "Sun, 30 Aug 2015 12:36:00 GMT");
  EXPECT_FALSE(ParseAmzDate("20150830T123600").has_value());
  EXPECT_FALSE(ParseAmzDate("2015083XT123600Z").has_value());
  EXPECT_FALSE(ParseAmzDate("20151330T123600Z").has_value());
}

TEST(Time, Iso8601) {
  auto t = ParseIso8601("2015-08-30T12:36:00.250Z");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(FormatIso8601(*t, true), "2015-08-30T12:36:00.250Z");
  EXPECT_TRUE(ParseIso8601("2015-08-30T12:36:00+00:00").has_value());
  EXPECT_FALSE(ParseIso8601("2015-08-30 12:36:00").has_value());
  EXPECT_FALSE(ParseIso8601("2015-08-30T12:36:00+02:00").has_value());
}

TEST(Time, RejectsYearsTheClockCannotHold) {
  EXPECT_FALSE(ParseAmzDate("99991231T000000Z").has_value());
  EXPECT_FALSE(ParseIso8601("1000-01-01T00:00:00Z").has_value());
  EXPECT_TRUE(ParseIso8601("2199-12-31T23:59:59Z").has_value());
}

TEST(Time, ManualClockAdvances) {
  ManualClock c(*ParseAmzDate("20200101T000000Z"));
  c.Advance(std::chrono::seconds(90));
  EXPECT_EQ(FormatAmzDate(c.Now()), "20200101T000130Z");
}

}  // namespace
}  // namespace base
