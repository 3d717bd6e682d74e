// Data limits and alerts (SPEC §3).
#include <gtest/gtest.h>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

class Limits : public engine_fixture {
 protected:
  void SetUp() override {
    make_product("acme");  // default 5 MB, alert at 0.9
    import("acme", {1, 2, 3});
  }
  std::vector<event_type> since_import(std::uint64_t n) {
    auto t = types_of(n);
    if (t.empty() || t.front() != event_type::activated) {
      ADD_FAILURE() << "the import did not emit activated";
      return t;
    }
    return {t.begin() + 1, t.end()};  // after the import's "activated"
  }
};

TEST_F(Limits, AlertAtNinetyPercentOnce) {
  feed({rec(1, 4'400'000, kStart)});
  EXPECT_TRUE(since_import(1).empty());
  feed({rec(1, 100'000, kStart)});  // 4.5 MB = 90 %
  EXPECT_EQ(since_import(1), std::vector<event_type>{event_type::alert});
  EXPECT_EQ(reason_text(events_of(1).back()), "threshold_0.9");
  feed({rec(1, 100'000, kStart)});
  EXPECT_EQ(since_import(1).size(), 1u);
  EXPECT_EQ(sim(1).state, sim_state::active);
}

TEST_F(Limits, PauseAtLimitWithAlertFirst) {
  feed({rec(1, 6'000'000, kStart)});  // from 0 straight past the limit
  EXPECT_EQ(since_import(1), (std::vector<event_type>{event_type::alert, event_type::paused}));
  auto v = sim(1);
  EXPECT_EQ(v.state, sim_state::paused);
  EXPECT_EQ(v.reason, pause_reason::data_limit);
  auto paused = events_of(1).back();
  EXPECT_EQ(paused.usage_bytes, 6'000'000u);
  EXPECT_EQ(paused.limit_bytes, 5'000'000u);
}

TEST_F(Limits, ExactlyAtLimitPauses) {
  feed({rec(1, 5'000'000, kStart)});
  EXPECT_EQ(sim(1).state, sim_state::paused);
}

TEST_F(Limits, RecordsAfterPauseStillCountWithoutANewPause) {
  feed({rec(1, 5'000'000, kStart)});
  feed({rec(1, 1'000, kStart), rec(1, 2'000, kStart)});
  EXPECT_EQ(sim(1).usage_bytes(), 5'003'000u);
  EXPECT_EQ(simcap::testing::count_of(eng_->events(), event_type::paused), 1u);
}

TEST_F(Limits, RaisingTheLimitUnpausesAtOnce) {
  feed({rec(1, 5'000'000, kStart)});
  auto r = set_limit(1, 10);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::active);
  EXPECT_EQ(r->limit_bytes, 10'000'000u);
  EXPECT_TRUE(r->limit_override);
  EXPECT_EQ(since_import(1).back(), event_type::unpaused);
}

TEST_F(Limits, RaisingButNotAboveUsageKeepsPaused) {
  feed({rec(1, 7'000'000, kStart)});
  auto r = set_limit(1, 7);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::paused);
}

TEST_F(Limits, LoweringBelowUsagePausesAtOnce) {
  feed({rec(1, 3'000'000, kStart)});
  auto r = set_limit(1, 2);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::paused);
  EXPECT_EQ(since_import(1), (std::vector<event_type>{event_type::alert, event_type::paused}));
}

TEST_F(Limits, ChangingTheLimitRearmsThresholdsAboveTheNewRatio) {
  feed({rec(1, 4'600'000, kStart)});  // 92 %: alert fired
  ASSERT_EQ(since_import(1).size(), 1u);
  ASSERT_TRUE(set_limit(1, 10));      // now 46 %: the 90 % alert re-arms
  feed({rec(1, 4'000'000, kStart)});  // 86 %
  EXPECT_EQ(since_import(1).size(), 1u);
  feed({rec(1, 500'000, kStart)});  // 91 %
  EXPECT_EQ(since_import(1), (std::vector<event_type>{event_type::alert, event_type::alert}));
}

TEST_F(Limits, ProductDefaultAppliesToNewImportsOnly) {
  product_settings s;
  s.id = "acme";
  s.default_mb_limit = 20;
  ASSERT_TRUE(eng_->put_product(s));
  ASSERT_TRUE(set_limit(2, 7));
  import("acme", {4});
  EXPECT_EQ(sim(1).mb_limit, 5u);
  EXPECT_EQ(sim(2).mb_limit, 7u);
  EXPECT_EQ(sim(4).mb_limit, 20u);
}

TEST_F(Limits, ConfigurableThresholdsIncludingOverage) {
  product_settings s;
  s.id = "multi";
  s.alert_thresholds = std::vector<double>{0.5, 0.8, 1.2};
  ASSERT_TRUE(eng_->put_product(s));
  import("multi", {10});
  feed({rec(10, 6'500'000, kStart)});  // 130 %: 0.5, 0.8, pause, then 1.2
  auto t = types_of(10);
  EXPECT_EQ(t, (std::vector<event_type>{event_type::activated, event_type::alert, event_type::alert,
                                        event_type::paused, event_type::alert}));
}

TEST_F(Limits, BadLimitsAreRefused) {
  auto r = set_limit(1, 0);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::bad_request);
  product_settings s;
  s.id = "bad";
  s.alert_thresholds = std::vector<double>{0.9, 0.5};
  EXPECT_FALSE(eng_->put_product(s));
}

}  // namespace
}  // namespace simcap::testing
