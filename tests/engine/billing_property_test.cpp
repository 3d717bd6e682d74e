// Rating against a reference: thousands of random records over a few hundred SIMs in several
// zones (home, roaming, no zone, unknown networks), limits changed on the way, SIMs added
// mid-period, rated by simcap and by the small computation below, written from SPEC §11 alone
// (no code of the engine), equal to the micro-unit per SIM and for the fleet.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

constexpr std::uint64_t kMB = 1'000'000;

// ---- the reference

struct ref_zone {
  std::int64_t base, per_mb;  // micro-units
};
// zone2: US, TR; zone3: CA; FR and unknown networks are in no zone.
const std::map<std::string, int> kZoneOf{{"US", 0}, {"TR", 0}, {"CA", 1}};
const std::vector<ref_zone> kZones{{2'990'000, 990'000}, {3'990'000, 1'490'000}};
const ref_zone kUnknown{3'990'000, 1'490'000};  // the highest of the table
const std::map<std::string, std::string> kNetworks{
    {"310410", "US"}, {"302220", "CA"}, {"28601", "TR"}, {"20801", "FR"}};

// round(a * b * c / d) half up, all non-negative
std::int64_t mul_div(unsigned __int128 a, unsigned __int128 b, unsigned __int128 c,
                     unsigned __int128 d) {
  const unsigned __int128 n = a * b * c;
  return static_cast<std::int64_t>((n + d / 2) / d);
}

struct ref_sim {
  std::string home;
  std::uint64_t limit = 0;
  std::uint64_t used = 0;
  unsigned first_day = 0;
  std::map<int, std::pair<std::uint64_t, std::uint64_t>> by_zone;  // within, over (-1: unknown)
  void count(const std::string& network, std::uint64_t bytes) {
    int zone;
    if (network.empty()) {
      zone = kZoneOf.at(home);
    } else {
      auto c = kNetworks.find(network);
      auto z = c == kNetworks.end() ? kZoneOf.end() : kZoneOf.find(c->second);
      zone = z == kZoneOf.end() ? -1 : z->second;
    }
    const std::uint64_t room = used < limit ? limit - used : 0;
    const std::uint64_t within = std::min(bytes, room);
    by_zone[zone].first += within;
    by_zone[zone].second += bytes - within;
    used += bytes;
  }
  std::int64_t cost(unsigned days, std::int64_t keep_ppm) const {
    const int home_zone = kZoneOf.at(home);
    std::int64_t total = mul_div(kZones[home_zone].base, days - first_day, keep_ppm,
                                 static_cast<unsigned __int128>(days) * 1'000'000);
    for (const auto& [zone, b] : by_zone) {
      const ref_zone& r = zone < 0 ? kUnknown : kZones[zone];
      const std::uint64_t free = zone == home_zone ? kMB : 0;
      const std::uint64_t billable = b.first > free ? b.first - free : 0;
      total += mul_div(r.per_mb, (billable + kMB - 1) / kMB, keep_ppm, 1'000'000);
      total += mul_div(r.per_mb, b.second, keep_ppm, kMB * 1'000'000);
    }
    return total;
  }
};

// ---- simcap

engine_options options() {
  engine_options o;
  rate_table t;
  t.zones = {{"zone2", 2'990'000, 990'000, {"US", "TR"}}, {"zone3", 3'990'000, 1'490'000, {"CA"}}};
  t.tiers = {{150, 70'000}, {250, 123'457}};  // odd discounts: rounding shows
  o.rates = std::move(t);
  o.networks = std::make_shared<network_countries>(
      std::vector<network_entry>{
          {"310", "410", "US"}, {"302", "220", "CA"}, {"286", "01", "TR"}, {"208", "01", "FR"}},
      std::vector<std::pair<std::string, std::string>>{});
  o.default_mb_limit = 5;
  o.shards = 2;
  return o;
}

class BillingProperty : public engine_fixture {
 protected:
  BillingProperty() : engine_fixture(options()) {}
};

TEST_F(BillingProperty, SimcapRatesLikeTheReferenceToTheMicroUnit) {
  std::mt19937_64 rng(20261202);
  product_settings ps;
  ps.id = "acme";
  ps.country = "US";
  ASSERT_TRUE(eng_->put_product(ps).has_value());
  std::map<std::uint64_t, ref_sim> ref;
  auto add_sims = [&](std::uint64_t from, std::uint64_t to, unsigned day) {
    for (const char* country : {"US", "CA"}) {
      std::vector<iccid> ids;
      for (std::uint64_t n = from; n < to; ++n) {
        if ((n % 3 == 0) != (country[0] == 'C')) continue;  // a third at home in Canada
        ids.push_back(test_iccid(n));
        ref[n] = ref_sim{country, 5 * kMB, 0, day, {}};
      }
      import_options how;
      how.country = country;
      ASSERT_TRUE(eng_->import_sims("acme", ids, how).has_value());
    }
  };
  add_sims(1, 201, 0);  // 2025-01-15: a 31-day period
  const std::vector<std::string> networks{"", "310410", "302220", "28601", "20801", "99999"};
  unix_seconds now = kStart;
  for (int round = 0; round < 8; ++round) {
    if (round == 3) {
      now = kStart + 7 * 86400;  // day 7: more SIMs join
      ASSERT_TRUE(eng_->advance_clock(now));
      add_sims(201, 281, 7);
    }
    std::vector<usage_record> batch;
    for (int i = 0; i < 500; ++i) {
      auto it = std::next(ref.begin(), static_cast<long>(rng() % ref.size()));
      const std::string& net = networks[rng() % networks.size()];
      const std::uint64_t bytes = rng() % 4 == 0 ? rng() % (3 * kMB) : rng() % 200'000;
      usage_record r = rec(it->first, bytes, now);
      r.mccmnc = net.empty() ? 0 : network_countries::key_of(net);
      batch.push_back(r);
      it->second.count(net, bytes);
    }
    ASSERT_TRUE(feed(batch).empty());
    for (int i = 0; i < 10; ++i) {  // some limits change between batches
      auto it = std::next(ref.begin(), static_cast<long>(rng() % ref.size()));
      const auto mb = static_cast<std::uint32_t>(1 + rng() % 12);
      ASSERT_TRUE(set_limit(it->first, mb).has_value());
      it->second.limit = mb * kMB;
    }
  }
  // 280 chargeable SIMs: the 250 tier, 12.3457 % off.
  const std::int64_t keep = 1'000'000 - 123'457;
  std::int64_t fleet = 0;
  std::size_t checked = 0;
  for (const auto& [n, r] : ref) {
    const std::int64_t want = r.cost(31, keep);
    fleet += want;
    sim_view v = sim(n);
    ASSERT_TRUE(v.charges);
    EXPECT_EQ(v.charges->total, want) << "SIM " << n << " (" << r.home << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 280u);
  auto usage = eng_->product_usage("acme");
  ASSERT_TRUE(usage && usage->estimated_cost);
  EXPECT_EQ(usage->discount_ppm, 123'457u);
  EXPECT_EQ(*usage->estimated_cost, fleet);
  auto open = eng_->invoice_of("acme", kStart - kStart % 86400);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->total, fleet);
  // Closed, the same money.
  ASSERT_TRUE(eng_->advance_clock(kStart - kStart % 86400 + 31 * 86400 + 3600));
  auto closed = eng_->invoice_of("acme", kStart - kStart % 86400);
  ASSERT_TRUE(closed);
  EXPECT_FALSE(closed->open);
  EXPECT_EQ(closed->total, fleet);
}

}  // namespace
}  // namespace simcap::testing
