// The shard record path: counting, unknown SIMs, duplicates by record id, counters.
#include <gtest/gtest.h>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

class Ingest : public engine_fixture {
 protected:
  void SetUp() override {
    make_product("acme", 1000);
    std::vector<std::uint64_t> ns;
    for (std::uint64_t i = 0; i < 200; ++i) ns.push_back(i);
    import("acme", ns);
  }
};

TEST_F(Ingest, CountsUpAndDownAcrossShards) {
  std::vector<usage_record> rs;
  for (std::uint64_t i = 0; i < 200; ++i) {
    for (int k = 0; k < 10; ++k) rs.push_back(rec(i, 100 + i, kStart));
  }
  auto rejects = feed(rs);
  EXPECT_TRUE(rejects.empty());
  for (std::uint64_t i = 0; i < 200; i += 37) EXPECT_EQ(sim(i).usage_bytes(), 10 * (100 + i));
  auto u = eng_->product_usage("acme");
  ASSERT_TRUE(u);
  std::uint64_t want = 0;
  for (std::uint64_t i = 0; i < 200; ++i) want += 10 * (100 + i);
  EXPECT_EQ(u->usage_bytes(), want);
  EXPECT_EQ(u->sims_by_state[static_cast<int>(sim_state::active)], 200u);
  EXPECT_EQ(eng_->stats().records_counted, 2000u);
}

TEST_F(Ingest, UnknownIccidIsRejectedAndDeadLettered) {
  auto rejects = feed({rec(5000, 10, kStart, 0, 11), rec(1, 10, kStart, 0, 12)});
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0],
            (std::pair<std::uint64_t, reject_reason>{11, reject_reason::unknown_iccid}));
  EXPECT_EQ(sim(1).usage_bytes(), 10u);
  EXPECT_EQ(eng_->stats().rejected[static_cast<int>(reject_reason::unknown_iccid)], 1u);
  auto dl = dead_letters_.entries();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].seq, 11u);
}

TEST_F(Ingest, RepeatedRecordIdIsCountedOnce) {
  feed({rec(1, 100, kStart, 42), rec(1, 100, kStart, 42), rec(1, 100, kStart, 43)});
  feed({rec(1, 100, kStart, 42)});
  EXPECT_EQ(sim(1).usage_bytes(), 200u);
  EXPECT_EQ(eng_->stats().duplicate_ids, 2u);
  // The same id on another SIM is another record.
  feed({rec(2, 100, kStart, 42)});
  EXPECT_EQ(sim(2).usage_bytes(), 100u);
}

TEST_F(Ingest, RecordIdsAreRememberedWhileTheirTimeCanCount) {
  feed({rec(1, 100, kStart, 42)});
  // Past dedup_window and late_grace, but a record dated kStart still counts (open period).
  ASSERT_TRUE(eng_->advance_clock(kStart + 3 * 86400));
  feed({rec(1, 100, kStart + 3 * 86400, 42)});
  EXPECT_EQ(sim(1).usage_bytes(), 100u);
  EXPECT_EQ(eng_->stats().duplicate_ids, 1u);
}

TEST_F(Ingest, RecordIdsAreForgottenOnceTheirTimeCannotCount) {
  feed({rec(1, 100, kStart, 42)});
  const unix_seconds end = sim(1).period_end;
  // The period closed more than late_grace ago: nothing dated kStart counts any more.
  ASSERT_TRUE(eng_->advance_clock(end + 3 * 86400));
  auto rejects = feed({rec(1, 100, kStart, 43)});
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_EQ(rejects[0].second, reject_reason::too_late);
  feed({rec(1, 100, end + 3 * 86400, 42)});
  EXPECT_EQ(sim(1).usage_bytes(), 100u);
  EXPECT_EQ(eng_->stats().duplicate_ids, 0u);
}

TEST_F(Ingest, StateCountsFollowTransitions) {
  auto st = eng_->stats();
  EXPECT_EQ(st.sims_by_state[static_cast<int>(sim_state::active)], 200u);
  sim_update u;
  u.action = sim_action::deactivate;
  ASSERT_TRUE(eng_->update_sim(test_iccid(3), u));
  st = eng_->stats();
  EXPECT_EQ(st.sims_by_state[static_cast<int>(sim_state::active)], 199u);
  EXPECT_EQ(st.sims_by_state[static_cast<int>(sim_state::deactivated)], 1u);
}

}  // namespace
}  // namespace simcap::testing
