#include "simcap/time.hpp"

#include <gtest/gtest.h>

namespace simcap {
namespace {

TEST(Time, ParsesRfc3339Forms) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339("2025-11-22T08:26:40Z"), 1763800000);
  EXPECT_EQ(parse_rfc3339("2025-11-22T10:26:40+02:00"), 1763800000);
  EXPECT_EQ(parse_rfc3339("2025-11-22T03:26:40.123-05:00"), 1763800000);
  EXPECT_EQ(parse_rfc3339("2025-11-22t08:26:40z"), 1763800000);
}

TEST(Time, RejectsBadRfc3339) {
  EXPECT_FALSE(parse_rfc3339("2025-11-22"));
  EXPECT_FALSE(parse_rfc3339("2025-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-02-29T00:00:00Z"));
  EXPECT_FALSE(parse_rfc3339("2025-11-22T08:26:40"));
  EXPECT_FALSE(parse_rfc3339("2025-11-22T08:26:40Zjunk"));
  EXPECT_FALSE(parse_rfc3339("yesterday"));
}

TEST(Time, FormatsRoundTrip) {
  EXPECT_EQ(format_rfc3339(1763800000), "2025-11-22T08:26:40Z");
  EXPECT_EQ(format_date(1763800000), "2025-11-22");
  EXPECT_EQ(parse_rfc3339(format_rfc3339(951782400)), 951782400);  // 2000-02-29
}

TEST(Time, ParsesDurations) {
  using namespace std::chrono;
  EXPECT_EQ(parse_duration("48h"), hours(48));
  EXPECT_EQ(parse_duration("5m"), minutes(5));
  EXPECT_EQ(parse_duration("200ms"), milliseconds(200));
  EXPECT_EQ(parse_duration("30d"), hours(720));
  EXPECT_EQ(parse_duration("10"), seconds(10));
  EXPECT_FALSE(parse_duration("5 minutes"));
  EXPECT_FALSE(parse_duration("-5m"));
  EXPECT_FALSE(parse_duration("h"));
}

TEST(Time, CivilDaysRoundTrip) {
  for (std::int64_t d = -1000; d < 100000; d += 37) {
    EXPECT_EQ(days_from_civil(civil_from_days(d)), d);
  }
  EXPECT_EQ(days_in_month(2024, 2), 29u);
  EXPECT_EQ(days_in_month(2025, 2), 28u);
  EXPECT_EQ(days_in_month(1900, 2), 28u);
  EXPECT_EQ(days_in_month(2000, 2), 29u);
}

}  // namespace
}  // namespace simcap
