#include "core/timestamp.h"

#include <gtest/gtest.h>

namespace horizon {
namespace {

TEST(Timestamp, SpecExampleRoundTrips) {
  auto t = Timestamp::parse("2017-03-27T16:53:51.655Z");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->unix_ms, 1490633631655);
  EXPECT_EQ(t->to_string(), "2017-03-27T16:53:51.655Z");
  EXPECT_EQ(Timestamp{0}.to_string(), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(Timestamp{-1}.to_string(), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(Timestamp::parse("2000-02-29T23:59:59.999Z").value().to_string(), "2000-02-29T23:59:59.999Z");
}

TEST(Timestamp, RoundTripsEverySecondOfADayAndManyDays) {
  for (std::int64_t ms = -5'000'000'000'000; ms < 5'000'000'000'000; ms += 7'777'777'777) {
    Timestamp t{ms};
    EXPECT_EQ(Timestamp::parse(t.to_string()).value(), t) << t.to_string();
  }
}

TEST(Timestamp, RejectsMalformed) {
  for (const char* s : {"", "2017-03-27T16:53:51Z", "2017-03-27T16:53:51.655", "2017-03-27 16:53:51.655Z",
                        "2017-02-29T00:00:00.000Z", "2017-13-01T00:00:00.000Z", "2017-03-27T24:00:00.000Z",
                        "2017-03-27T16:60:00.000Z", "2017-03-27T16:53:60.000Z", "2017-03-27T16:53:51.6550Z",
                        "+017-03-27T16:53:51.655Z", "2017-03-27T16:53:51.655z"}) {
    auto t = Timestamp::parse(s);
    EXPECT_FALSE(t) << s;
    if (!t) {
      EXPECT_EQ(t.error().code, errc::invalid_meta);
    }
  }
}

}  // namespace
}  // namespace horizon
