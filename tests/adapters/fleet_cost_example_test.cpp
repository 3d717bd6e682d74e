// The README's "What a fleet costs": the worked example, rated with the shipped rate table and
// Debian's network data set, to the micro-unit.
#include <gtest/gtest.h>

#include "countries.hpp"
#include "engine_fixture.hpp"
#include "eventually.hpp"
#include "networks.hpp"
#include "rates.hpp"

namespace simcap::testing {
namespace {

constexpr std::uint64_t kMB = 1'000'000;

engine_options shipped() {
  engine_options o;
  auto countries = load_iso3166();
  auto currencies = load_iso4217();
  EXPECT_TRUE(countries && currencies);
  auto rt = load_rates(SIMCAP_SOURCE_DIR "/config/rates.toml", *countries, *currencies);
  EXPECT_TRUE(rt);
  auto nets = load_service_providers(kServiceProvidersFile, *countries);
  EXPECT_TRUE(nets);
  o.networks = std::make_shared<network_countries>(*nets, rt->mcc);
  o.rates = std::move(*rt);
  o.shards = 2;
  return o;
}

class FleetCostExample : public engine_fixture {
 protected:
  FleetCostExample() : engine_fixture(shipped()) {}
  void product(const std::string& id, std::uint32_t mb, std::uint64_t pool_mb = 0,
               pool_action action = pool_action::overage, micros price = 0) {
    product_settings s;
    s.id = id;
    s.country = "US";
    s.default_mb_limit = mb;
    if (pool_mb != 0) {
      s.pool_mb = pool_mb;
      s.pool_action = action;
      s.pool_price = price;
    }
    ASSERT_TRUE(eng_->put_product(s).has_value());
  }
  static usage_record on(usage_record r, const char* mccmnc) {
    r.mccmnc = network_countries::key_of(mccmnc);
    return r;
  }
};

TEST_F(FleetCostExample, TheFourSimsOfAcme) {
  product("acme", 5);
  import("acme", {1, 2, 3});  // A, B, C on 2025-01-15: a 31-day period
  feed({on(rec(1, 800'000, kStart), "310410"), on(rec(2, 4 * kMB, kStart), "310410"),
        on(rec(2, 3 * kMB, kStart), "310410"), on(rec(3, 500'000, kStart), "310410"),
        on(rec(3, 1'200'000, kStart), "302220")});
  ASSERT_TRUE(eng_->advance_clock(days_from_civil({2025, 1, 25}) * kSecondsPerDay + 6 * 3600));
  import("acme", {4});  // D, on day 10
  feed({on(rec(4, 300'000, eng_->time_source().now()), "310410")});
  EXPECT_EQ(sim(1).charges->total, 2'990'000);
  EXPECT_EQ(sim(2).charges->total, 8'930'000);
  EXPECT_EQ(sim(3).charges->total, 5'970'000);
  EXPECT_EQ(sim(3).charges->roaming, 2'980'000);
  EXPECT_EQ(sim(4).charges->base, 2'025'484);
  EXPECT_EQ(money_amount(sim(4).charges->total), "2.03");
  auto fleet = eng_->product_usage("acme");
  ASSERT_TRUE(fleet && fleet->estimated_cost);
  EXPECT_EQ(*fleet->estimated_cost, 19'915'484);
  EXPECT_EQ(money_amount(*fleet->estimated_cost), "19.92");
  EXPECT_EQ(fleet->discount_ppm, 0u);  // below 1,000 SIMs
}

TEST_F(FleetCostExample, TheFreeTierStopsAtItsPool) {
  product("free", 1000, 100, pool_action::pause);
  import("free", {11, 12, 13});
  feed({rec(11, 40 * kMB, kStart), rec(12, 45 * kMB, kStart)});
  EXPECT_EQ(sim(13).state, sim_state::active);
  feed({rec(13, 20 * kMB, kStart)});  // 105 MB: past the pool
  ASSERT_TRUE(eventually([&] {
    for (std::uint64_t n : {11, 12, 13}) {
      if (sim(n).reason != pause_reason::pool_exhausted) return false;
    }
    return true;
  }));
  auto inv = eng_->invoice_of("free", days_from_civil({2025, 1, 15}) * kSecondsPerDay);
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->pool_overshoot_bytes, 5 * kMB);
  EXPECT_EQ(inv->total, 0);
}

TEST_F(FleetCostExample, TheBasicPlanPaysItsPoolAndTheOverage) {
  product("basic", 1000, 540, pool_action::overage, 29'000'000);
  import("basic", {21, 22, 23});
  feed({rec(21, 200 * kMB, kStart), rec(22, 200 * kMB, kStart), rec(23, 200 * kMB, kStart)});
  auto fleet = eng_->product_usage("basic");
  ASSERT_TRUE(fleet && fleet->estimated_cost);
  // 29.00 + 60 MB at 0.99 = 59.40: 88.40.
  EXPECT_EQ(*fleet->estimated_cost, 88'400'000);
  EXPECT_EQ(sim(21).state, sim_state::active);
}

}  // namespace
}  // namespace simcap::testing
