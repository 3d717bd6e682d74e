#include "catalog/calendar.hpp"

#include <gtest/gtest.h>

namespace simcap::billing {
namespace {

unix_seconds at(int y, unsigned m, unsigned d) {
  return days_from_civil({y, m, d}) * kSecondsPerDay;
}

TEST(Calendar, AnniversaryClampsToMonthEnd) {
  EXPECT_EQ(anniversary_in(2025, 1, 30), at(2025, 1, 30));
  EXPECT_EQ(anniversary_in(2025, 2, 30), at(2025, 2, 28));
  EXPECT_EQ(anniversary_in(2024, 2, 30), at(2024, 2, 29));
  EXPECT_EQ(anniversary_in(2025, 3, 30), at(2025, 3, 30));
  EXPECT_EQ(anniversary_in(2025, 4, 31), at(2025, 4, 30));
  EXPECT_EQ(anniversary_in(2025, 2, 29), at(2025, 2, 28));
  EXPECT_EQ(anniversary_in(2024, 2, 29), at(2024, 2, 29));
}

TEST(Calendar, PeriodsOfDay30WalkThroughFebruary) {
  unix_seconds s = at(2025, 1, 30);
  s = next_period_start(30, s);
  EXPECT_EQ(s, at(2025, 2, 28));
  s = next_period_start(30, s);
  EXPECT_EQ(s, at(2025, 3, 30));  // back to 30, not stuck at 28
  s = next_period_start(30, at(2024, 1, 30));
  EXPECT_EQ(s, at(2024, 2, 29));
}

TEST(Calendar, Day31AcrossAYear) {
  unix_seconds s = at(2024, 12, 31);
  std::vector<unix_seconds> want = {at(2025, 1, 31), at(2025, 2, 28), at(2025, 3, 31),
                                    at(2025, 4, 30), at(2025, 5, 31), at(2025, 6, 30)};
  for (unix_seconds w : want) {
    s = next_period_start(31, s);
    EXPECT_EQ(s, w);
  }
}

TEST(Calendar, Day29InLeapAndCommonYears) {
  EXPECT_EQ(next_period_start(29, at(2024, 1, 29)), at(2024, 2, 29));
  EXPECT_EQ(next_period_start(29, at(2025, 1, 29)), at(2025, 2, 28));
  EXPECT_EQ(next_period_start(29, at(2025, 2, 28)), at(2025, 3, 29));
}

TEST(Calendar, PeriodContaining) {
  EXPECT_EQ(period_start_containing(15, at(2025, 3, 20) + 3600), at(2025, 3, 15));
  EXPECT_EQ(period_start_containing(15, at(2025, 3, 14) + 86399), at(2025, 2, 15));
  EXPECT_EQ(period_start_containing(15, at(2025, 3, 15)), at(2025, 3, 15));
  EXPECT_EQ(period_start_containing(31, at(2025, 3, 1)), at(2025, 2, 28));
  EXPECT_EQ(period_start_containing(20, at(2025, 1, 5)), at(2024, 12, 20));
}

}  // namespace
}  // namespace simcap::billing
