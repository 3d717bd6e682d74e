// A shard's per-product totals are kept as SIMs change; after any sequence of operations they
// must equal what a scan of every SIM gives.
#include <gtest/gtest.h>

#include "shard_host_fixture.hpp"
#include "shard_scan.hpp"

namespace simcap::detail {
namespace {

using testing::kStart;
using testing::test_iccid;

using testing_host::host;

class batch final : public record_batch {
 public:
  void on_applied() noexcept override {}
};

void expect_same(const fleet_usage& a, const fleet_usage& b, int step) {
  EXPECT_EQ(a.bytes_up, b.bytes_up) << "step " << step;
  EXPECT_EQ(a.bytes_down, b.bytes_down) << "step " << step;
  EXPECT_EQ(a.sms, b.sms) << "step " << step;
  EXPECT_EQ(a.sims_by_state, b.sims_by_state) << "step " << step;
  EXPECT_EQ(a.chargeable_sims, b.chargeable_sims) << "step " << step;
  EXPECT_EQ(a.unused_charged_sims, b.unused_charged_sims) << "step " << step;
}

TEST(ShardTotals, MatchAScanAfterRandomOperations) {
  engine_options opts;
  opts.mb_bytes = 1000;  // small limits: SIMs pause often
  manual_clock clk(kStart);
  event_log events;
  testing::memory_dead_letters dl;
  host h;
  h.info.index = 0;
  h.info.version = 1;
  h.info.id = "acme";
  h.info.default_mb_limit = 50;
  h.info.thresholds = {900};
  shard s(0, opts, clk, events, dl, h);
  s.learn_product(h.info);

  std::uint64_t x = 42;
  auto rnd = [&](std::uint64_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x % n;
  };
  constexpr std::uint64_t kSims = 60;
  batch b;
  std::vector<usage_record> recs;
  for (int step = 0; step < 4000; ++step) {
    const std::uint64_t n = rnd(kSims);
    const std::uint64_t key = test_iccid(n).key();
    const unix_seconds now = clk.now();
    // Now and then a control change is taken back (as when its checkpoint fails): the SIM and
    // the totals must be as before it.
    const auto op = rnd(10);
    const bool take_back = op <= 2 && rnd(5) == 0;
    const auto before = s.undo_point_of(key);
    switch (op) {
      case 0: {
        sim_state initial = rnd(3) == 0   ? sim_state::issued
                            : rnd(4) == 0 ? sim_state::factory_test
                                          : sim_state::active;
        s.import_sim(key, 0, initial, 0, false, now);
        break;
      }
      case 1: {
        sim_update u;
        const sim_action actions[] = {sim_action::activate, sim_action::deactivate,
                                      sim_action::release, sim_action::start_factory_test,
                                      sim_action::reactivate};
        u.action = actions[rnd(5)];
        (void)s.update(key, std::nullopt, u, now);
        break;
      }
      case 2: {
        sim_update u;
        u.mb_limit = static_cast<std::uint32_t>(1 + rnd(100));
        (void)s.update(key, std::nullopt, u, now);
        break;
      }
      case 3:
        if (rnd(20) == 0) {
          clk.advance(std::chrono::hours(1 + rnd(24 * 20)));
          s.run_due(clk.now());
        }
        break;
      default: {
        recs.clear();
        for (int k = 0; k < 5; ++k) {
          usage_record r;
          r.sim = test_iccid(rnd(kSims)).key();
          r.event_time =
              now - static_cast<unix_seconds>(rnd(3 * 86400));  // some late, some too late
          r.up = rnd(20'000);
          r.down = rnd(20'000);
          r.sms = static_cast<std::uint32_t>(rnd(3));
          recs.push_back(r);
        }
        b.records = recs;
        s.apply(b);
        expect_same(s.usage_of(0), usage_by_scan(s, 0), step);
        continue;  // records are never taken back
      }
    }
    if (take_back) {
      s.restore(before);
      const auto after = s.undo_point_of(key);
      ASSERT_EQ(after.existed, before.existed) << "step " << step;
      if (before.existed) {
        EXPECT_EQ(after.before.state, before.before.state) << "step " << step;
        EXPECT_EQ(after.before.product, before.before.product) << "step " << step;
        EXPECT_EQ(after.before.up, before.before.up) << "step " << step;
        EXPECT_EQ(after.before.down, before.before.down) << "step " << step;
        EXPECT_EQ(after.before.mb_limit, before.before.mb_limit) << "step " << step;
        EXPECT_EQ(after.retired.has_value(), before.retired.has_value()) << "step " << step;
      }
    }
    expect_same(s.usage_of(0), usage_by_scan(s, 0), step);
    if (::testing::Test::HasFailure()) return;
  }
  // The run went through pauses, releases and rollovers.
  EXPECT_GT(simcap::testing::count_of(events, event_type::paused), 10u);
  EXPECT_GT(simcap::testing::count_of(events, event_type::released), 10u);
  EXPECT_GT(simcap::testing::count_of(events, event_type::unpaused), 0u);
}

}  // namespace
}  // namespace simcap::detail
