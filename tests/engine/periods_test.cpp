// Billing periods, rollover and late records (SPEC §4).
#include <gtest/gtest.h>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

unix_seconds at(int y, unsigned m, unsigned d, int h = 0) {
  return days_from_civil({y, m, d}) * kSecondsPerDay + h * 3600;
}

class Periods : public engine_fixture {
 protected:
  void SetUp() override {
    make_product("acme");
    import("acme", {1, 2, 3});  // first activation 2025-01-15 10:00 -> anniversary day 15
  }
};

TEST_F(Periods, FirstPeriodStartsAtMidnightOfFirstActivation) {
  auto p = eng_->get_product("acme");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->anniversary_day, 15u);
  EXPECT_EQ(p->period_start, at(2025, 1, 15));
  EXPECT_EQ(p->period_end, at(2025, 2, 15));
  EXPECT_EQ(sim(1).period_start, at(2025, 1, 15));
}

TEST_F(Periods, PausedSimUnpausesAtAnniversaryWithNoRecord) {
  feed({rec(1, 6'000'000, kStart), rec(2, 1'000, kStart)});
  ASSERT_EQ(sim(1).state, sim_state::paused);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 14, 23)));
  EXPECT_EQ(sim(1).state, sim_state::paused);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15)));
  auto v = sim(1);
  EXPECT_EQ(v.state, sim_state::active);
  EXPECT_EQ(v.usage_bytes(), 0u);
  EXPECT_EQ(v.period_start, at(2025, 2, 15));
  auto evs = events_of(1);
  EXPECT_EQ(evs.back().type, event_type::unpaused);
  EXPECT_EQ(evs.back().reason, event_reason::anniversary);
  EXPECT_EQ(evs.back().time, at(2025, 2, 15));
  // The closed period keeps its totals.
  auto closed = eng_->closed_periods("acme", true);
  ASSERT_TRUE(closed);
  ASSERT_EQ(closed->size(), 1u);
  EXPECT_EQ((*closed)[0].start, at(2025, 1, 15));
  EXPECT_EQ((*closed)[0].total_bytes, 6'001'000u);
  EXPECT_EQ((*closed)[0].chargeable_sims, 3u);
  ASSERT_EQ((*closed)[0].lines.size(), 3u);
  // And a period_closed event was emitted once.
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::period_closed), 1u);
}

TEST_F(Periods, AlertsRearmAfterRollover) {
  feed({rec(1, 4'600'000, kStart)});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 16)));
  feed({rec(1, 4'600'000, at(2025, 2, 16))});
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::alert), 2u);
}

TEST_F(Periods, SeveralPeriodsAtOnceCloseInOrder) {
  ASSERT_TRUE(eng_->advance_clock(at(2025, 4, 20)));
  auto closed = eng_->closed_periods("acme", false);
  ASSERT_TRUE(closed);
  ASSERT_EQ(closed->size(), 3u);
  EXPECT_EQ((*closed)[0].start, at(2025, 3, 15));  // newest first
  EXPECT_EQ((*closed)[2].start, at(2025, 1, 15));
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::period_closed), 3u);
  EXPECT_EQ(eng_->get_product("acme")->period_start, at(2025, 4, 15));
}

TEST_F(Periods, RecordBelongsToPeriodOfItsEventTime) {
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  // Ended 30 min before the anniversary: a late record for the closed period.
  feed({rec(1, 1'000, at(2025, 2, 14, 23) + 1800)});
  EXPECT_EQ(sim(1).usage_bytes(), 0u);
  auto closed = eng_->closed_periods("acme", true);
  EXPECT_EQ((*closed)[0].total_bytes, 1'000u);
  EXPECT_EQ(events_of(1).back().type, event_type::late_adjustment);
  EXPECT_EQ(events_of(1).back().period_start, at(2025, 1, 15));
}

TEST_F(Periods, LateRecordNeverPausesTheNewPeriod) {
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  feed({rec(1, 9'000'000, at(2025, 2, 14, 23))});
  EXPECT_EQ(sim(1).state, sim_state::active);
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::paused), 0u);
  auto closed = eng_->closed_periods("acme", true);
  ASSERT_EQ((*closed)[0].lines.size(), 3u);
  EXPECT_EQ((*closed)[0].lines[0].sim < (*closed)[0].lines[1].sim, true);
}

TEST_F(Periods, LateRecordForASimWithoutALineAddsOne) {
  sim_update u;
  u.action = sim_action::release;
  ASSERT_TRUE(eng_->update_sim(test_iccid(3), u));
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  import("acme", {4}, sim_state::issued);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 2)));
  // SIM 2 had no usage but was chargeable: it has a line; add usage to it.
  feed({rec(2, 500, at(2025, 2, 14, 12))});
  auto closed = eng_->closed_periods("acme", true);
  std::uint64_t sim2 = 0;
  for (const auto& l : (*closed)[0].lines) {
    if (l.sim == test_iccid(2).key()) sim2 = l.bytes_up + l.bytes_down;
  }
  EXPECT_EQ(sim2, 500u);
}

TEST_F(Periods, TooLateAfterGraceIsRejected) {
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 17, 1)));  // 49 h after the anniversary
  auto rejects = feed({rec(1, 1'000, at(2025, 2, 14, 23), 0, 7)});
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].second, reject_reason::too_late);
  EXPECT_EQ(rejects[0].first, 7u);
  ASSERT_EQ(dead_letters_.entries().size(), 1u);
  EXPECT_EQ(dead_letters_.entries()[0].reason, reject_reason::too_late);
  EXPECT_EQ((*eng_->closed_periods("acme", false))[0].total_bytes, 0u);
}

TEST_F(Periods, RecordForTwoPeriodsAgoIsTooLate) {
  ASSERT_TRUE(eng_->advance_clock(at(2025, 3, 15, 1)));
  auto rejects = feed({rec(1, 1'000, at(2025, 2, 1))});
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].second, reject_reason::too_late);
}

TEST_F(Periods, RecordBeforeFirstPeriodWithinGraceCountsInIt) {
  feed({rec(1, 1'000, at(2025, 1, 14, 12))});  // 12 h before the first period
  EXPECT_EQ(sim(1).usage_bytes(), 1'000u);
  auto rejects = feed({rec(1, 1'000, at(2025, 1, 12))});  // 72 h before
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].second, reject_reason::too_late);
}

TEST_F(Periods, Day31ProductRollsOverAtMonthEnds) {
  clock_.advance_to(at(2025, 1, 31, 9));
  make_product("eom");
  import("eom", {50});
  feed({rec(50, 6'000'000, at(2025, 1, 31, 9))});
  ASSERT_EQ(sim(50).state, sim_state::paused);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 28)));
  EXPECT_EQ(sim(50).state, sim_state::active);
  EXPECT_EQ(sim(50).period_start, at(2025, 2, 28));
  EXPECT_EQ(sim(50).period_end, at(2025, 3, 31));
}

TEST_F(Periods, ClockOnlyMovesForward) {
  EXPECT_FALSE(eng_->advance_clock(kStart - 10));
  EXPECT_TRUE(eng_->advance_clock(kStart));
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

unix_seconds day_of(int y, unsigned m, unsigned d) {
  return days_from_civil({y, m, d}) * kSecondsPerDay;
}

TEST_F(Periods, UsageByDayOfTheCurrentPeriod) {
  feed({rec(1, 1000, day_of(2025, 1, 15) + 3600), rec(1, 500, day_of(2025, 1, 15) + 7200),
        rec(2, 70, day_of(2025, 1, 15) + 60)});
  ASSERT_TRUE(eng_->advance_clock(day_of(2025, 1, 17) + 600));
  feed({rec(1, 300, day_of(2025, 1, 17) + 60)});
  auto u = eng_->sim_usage_by_day(test_iccid(1));
  ASSERT_TRUE(u);
  const auto& days = u->second;
  ASSERT_EQ(days.size(), 3u);  // the 15th to today, the 17th
  EXPECT_EQ(days[0].day, day_of(2025, 1, 15));
  EXPECT_EQ(days[0].bytes, 1500u);
  EXPECT_EQ(days[1].bytes, 0u);
  EXPECT_EQ(days[2].bytes, 300u);
  auto fleet = eng_->product_usage("acme");
  ASSERT_TRUE(fleet);
  ASSERT_EQ(fleet->by_hour.size(), 31u * 24);
  EXPECT_EQ(fleet->by_hour[0], 70u);
  EXPECT_EQ(fleet->by_hour[1], 1000u);
  EXPECT_EQ(fleet->by_hour[2], 500u);
  EXPECT_EQ(fleet->by_hour[48], 300u);
  EXPECT_FALSE(eng_->sim_usage_by_day(test_iccid(1), "other-product"));
}

TEST_F(Periods, UsageByDayStartsAfreshEachPeriod) {
  feed({rec(1, 1000, day_of(2025, 2, 10))});
  ASSERT_TRUE(eng_->advance_clock(day_of(2025, 2, 15) + 3600));
  feed({rec(1, 5, day_of(2025, 2, 15) + 60)});
  auto u = eng_->sim_usage_by_day(test_iccid(1));
  ASSERT_TRUE(u);
  ASSERT_EQ(u->second.size(), 1u);
  EXPECT_EQ(u->second[0].day, day_of(2025, 2, 15));
  EXPECT_EQ(u->second[0].bytes, 5u);
  auto fleet = eng_->product_usage("acme");
  ASSERT_EQ(fleet->by_hour.size(), 28u * 24);  // Feb 15 to Mar 15
  std::uint64_t total = 0;
  for (auto b : fleet->by_hour) total += b;
  EXPECT_EQ(total, 5u);
}

// A SIM released after the anniversary used the data while it was active: a late record of the
// closed period counts there like any late record.
TEST_F(Periods, LateRecordOfASimReleasedAfterTheAnniversaryAdjustsTheClosedPeriod) {
  feed({rec(1, 1000, at(2025, 2, 10))});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  ASSERT_TRUE(act(1, sim_action::release));
  auto rejects = feed({rec(1, 500, at(2025, 2, 14, 12))});
  EXPECT_TRUE(rejects.empty());
  auto closed = eng_->closed_periods("acme", true);
  ASSERT_EQ(closed->size(), 1u);
  std::uint64_t sim1 = 0;
  for (const auto& l : (*closed)[0].lines) {
    if (l.sim == test_iccid(1).key()) sim1 = l.bytes_up + l.bytes_down;
  }
  EXPECT_EQ(sim1, 1500u);
  EXPECT_EQ((*closed)[0].total_bytes, 1500u);
  EXPECT_EQ(types_of(1).back(), event_type::late_adjustment);
  // Dated after its release (in the open period): not counted.
  rejects = feed({rec(1, 500, at(2025, 2, 15, 3))});
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].second, reject_reason::not_counted_state);
}

// Usage a SIM had in a period belongs to that period and product for good; a re-import starts a
// new life at zero.
TEST_F(Periods, ReleaseAndReimportKeepTheOldLifeInItsPeriod) {
  product_settings other;
  other.id = "other";
  ASSERT_TRUE(eng_->put_product(other));
  feed({rec(1, 3'000'000, at(2025, 1, 16)), rec(1, 1000, at(2025, 1, 18))});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 19)));
  ASSERT_TRUE(act(1, sim_action::release));
  import("acme", {1});
  auto fleet = eng_->product_usage("acme");
  EXPECT_EQ(fleet->usage_bytes(), 3'001'000u);
  EXPECT_EQ(fleet->chargeable_sims, 3u);  // SIM 1 once, though it had two lives
  EXPECT_EQ(sim(1).usage_bytes(), 0u);
  // The new life's days start empty: no day of the old life, no underflow.
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 21)));
  feed({rec(1, 100, at(2025, 1, 21))});
  auto days = eng_->sim_usage_by_day(test_iccid(1));
  std::uint64_t sum = 0;
  for (const auto& d : days->second) {
    EXPECT_LE(d.bytes, 100u) << format_date(d.day);
    sum += d.bytes;
  }
  EXPECT_EQ(sum, 100u);
  // Released again and imported into another product: acme keeps both lives.
  ASSERT_TRUE(act(1, sim_action::release));
  import("other", {1});
  feed({rec(1, 7, at(2025, 1, 21))});
  EXPECT_EQ(eng_->product_usage("acme")->usage_bytes(), 3'001'100u);
  EXPECT_EQ(eng_->product_usage("other")->usage_bytes(), 7u);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  auto closed = eng_->closed_periods("acme", true);
  ASSERT_EQ(closed->size(), 1u);
  std::size_t lines_of_1 = 0;
  for (const auto& l : (*closed)[0].lines) {
    if (l.sim != test_iccid(1).key()) continue;
    ++lines_of_1;
    EXPECT_EQ(l.bytes_up + l.bytes_down, 3'001'100u);
    EXPECT_TRUE(l.chargeable);
  }
  EXPECT_EQ(lines_of_1, 1u);
  EXPECT_EQ((*closed)[0].total_bytes, 3'001'100u);
  EXPECT_EQ((*closed)[0].chargeable_sims, 3u);
}

}  // namespace
}  // namespace simcap::testing
