// Rating through the engine (SPEC §11): the record path's split by zone and limit, estimated
// costs, invoices of open and closed periods, late records, releases, factory tests, and the
// rating state across a restart. Expected money is worked out by hand next to each check.
#include <gtest/gtest.h>

#include <filesystem>

#include "engine_fixture.hpp"
#include "eventually.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;

unix_seconds at(int y, unsigned m, unsigned d, int h = 0) {
  return days_from_civil({y, m, d}) * kSecondsPerDay + h * 3600;
}
constexpr std::uint64_t kMB = 1'000'000;

engine_options rated(std::string store = {}) {
  engine_options o;
  rate_table t;
  t.zones = {{"zone2", 2'990'000, 990'000, {"US", "TR", "ZA"}},
             {"zone3", 3'990'000, 1'490'000, {"CA", "MX"}}};
  t.tiers = {{3, 100'000}};  // 10 % off from 3 chargeable SIMs
  o.rates = std::move(t);
  o.networks = std::make_shared<network_countries>(
      std::vector<network_entry>{{"310", "410", "US"}, {"302", "220", "CA"}, {"286", "01", "TR"}},
      std::vector<std::pair<std::string, std::string>>{{"313", "US"}});
  o.default_mb_limit = 5;
  o.store_dir = std::move(store);
  o.checkpoint_interval = std::chrono::hours(1);
  o.shards = 2;
  return o;
}

usage_record on(usage_record r, const char* mccmnc) {
  r.mccmnc = network_countries::key_of(mccmnc);
  return r;
}

class Billing : public engine_fixture {
 protected:
  explicit Billing(engine_options o = rated()) : engine_fixture(std::move(o)) {
    product_settings s;
    s.id = "acme";
    s.country = "US";
    EXPECT_TRUE(eng_->put_product(s).has_value());
  }
  const zone_charge* zone(const sim_charges& c, std::string_view name) {
    for (const zone_charge& z : c.zones) {
      if (eng_->rating()->zone_name(z.zone) == name) return &z;
    }
    return nullptr;
  }
  invoice bill(unix_seconds start) {
    auto inv = eng_->invoice_of("acme", start);
    EXPECT_TRUE(inv.has_value());
    return inv.value_or(invoice{});
  }
  const invoice_line* line_of(const invoice& inv, std::uint64_t n) {
    for (const invoice_line& l : inv.lines) {
      if (l.line.sim == test_iccid(n).key()) return &l;
    }
    return nullptr;
  }
};

TEST_F(Billing, ARecordCrossingTheLimitIsSplitAtIt) {
  import("acme", {1});  // 2025-01-15: a 31-day period
  feed({on(rec(1, 4'500'000, kStart), "310410")});
  feed({on(rec(1, 1'000'000, kStart), "310410")});  // 500,000 within, 500,000 over
  feed({on(rec(1, 1'000'000, kStart), "302220")});  // paused: all over, in Canada
  sim_view v = sim(1);
  ASSERT_EQ(v.state, sim_state::paused);
  ASSERT_TRUE(v.charges);
  EXPECT_EQ(eng_->rating()->zone_name(v.charges->home_zone), "zone2");
  const zone_charge* home = zone(*v.charges, "zone2");
  const zone_charge* ca = zone(*v.charges, "zone3");
  ASSERT_TRUE(home && ca);
  EXPECT_EQ(home->bytes_within, 5 * kMB);
  EXPECT_EQ(home->bytes_over, 500'000u);
  EXPECT_EQ(ca->bytes_within, 0u);
  EXPECT_EQ(ca->bytes_over, kMB);
  // 2.99 base + 4 MB beyond the included at 0.99 (3.96) + 0.5 MB over at 0.99 (0.495) + 1 MB
  // over in Canada at 1.49 = 8.935.
  EXPECT_EQ(v.charges->total, 8'935'000);
  // A later raise of the limit does not move bytes already counted.
  ASSERT_TRUE(set_limit(1, 20).has_value());
  EXPECT_EQ(zone(*sim(1).charges, "zone2")->bytes_over, 500'000u);
}

TEST_F(Billing, RoamingUnknownNetworksAndOverrides) {
  import("acme", {2});
  feed({on(rec(2, 1, kStart), "302220"),        // Canada: a whole MB at 1.49 from one byte
        on(rec(2, 10, kStart), "99999"),        // nobody's network: unknown, at 1.49 (the highest)
        on(rec(2, 500'000, kStart), "313100"),  // [mcc] 313 = US: home, in the included MB
        on(rec(2, 200'000, kStart), "28601"),   // Turkey: the home zone, not roaming
        rec(2, 100'000, kStart)});              // no network: home
  sim_view v = sim(2);
  ASSERT_TRUE(v.charges);
  EXPECT_EQ(zone(*v.charges, "zone2")->bytes_within, 800'000u);
  EXPECT_EQ(zone(*v.charges, "zone2")->charge_within, 0);
  EXPECT_EQ(zone(*v.charges, "zone3")->charge_within, 1'490'000);
  EXPECT_EQ(zone(*v.charges, "unknown")->bytes_within, 10u);
  EXPECT_EQ(zone(*v.charges, "unknown")->charge_within, 1'490'000);
  EXPECT_EQ(v.charges->total, 2'990'000 + 1'490'000 + 1'490'000);
  EXPECT_EQ(v.charges->roaming, 2 * 1'490'000);
}

TEST_F(Billing, ASimAddedMidPeriodHasAProratedBaseAndTheFleetIsTheSumOfItsSims) {
  import("acme", {1});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 25, 9)));  // day 10 of 31
  import("acme", {3});
  feed({rec(3, 1'500'000, at(2025, 1, 25, 9))});
  sim_view v = sim(3);
  ASSERT_TRUE(v.charges);
  EXPECT_EQ(v.charge_day, 10);
  EXPECT_EQ(v.charges->days_charged, 21u);
  // 2.99 * 21 / 31 = 2.025483870... -> 2.025484, and the whole included MB: 1 MB at 0.99.
  EXPECT_EQ(v.charges->base, 2'025'484);
  EXPECT_EQ(v.charges->total, 2'025'484 + 990'000);
  auto fleet = eng_->product_usage("acme");
  ASSERT_TRUE(fleet && fleet->estimated_cost);
  EXPECT_EQ(*fleet->estimated_cost, 2'990'000 + 2'025'484 + 990'000);
  const invoice open = bill(fleet->period_start);
  EXPECT_TRUE(open.open);
  EXPECT_EQ(open.total, *fleet->estimated_cost);
  EXPECT_EQ(open.chargeable_sims, 2u);
}

TEST_F(Billing, TheVolumeTierDiscountsTheWholeProductFromItsMinimum) {
  import("acme", {1, 2});
  auto two = eng_->product_usage("acme");
  ASSERT_TRUE(two && two->estimated_cost);
  EXPECT_EQ(*two->estimated_cost, 2 * 2'990'000);
  import("acme", {3});  // three chargeable SIMs: 10 % off every rate, 2.691 each
  auto three = eng_->product_usage("acme");
  ASSERT_TRUE(three && three->estimated_cost);
  EXPECT_EQ(three->discount_ppm, 100'000u);
  EXPECT_EQ(*three->estimated_cost, 3 * 2'691'000);
  EXPECT_EQ(sim(1).charges->total, 2'691'000);
}

TEST_F(Billing, FactoryTestUsageIsFreeAndTheSimIsChargedFromTheDayItEnds) {
  import("acme", {1});  // the product's period starts 2025-01-15
  import("acme", {4}, sim_state::factory_test);
  feed({rec(4, 60'000, kStart)});
  EXPECT_FALSE(sim(4).chargeable);
  EXPECT_EQ(sim(4).charges->total, 0);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 20, 12)));  // day 5
  // Past the 100 KB threshold: the test ends, 1,960,000 bytes past it are chargeable.
  feed({rec(4, 2'000'000, at(2025, 1, 20, 12))});
  sim_view v = sim(4);
  ASSERT_EQ(v.state, sim_state::active);
  EXPECT_EQ(v.usage_bytes(), 1'960'000u);
  // 2.99 * 26 / 31 = 2.507741935... -> 2.507742; 0.96 MB beyond the included: 1 MB at 0.99.
  EXPECT_EQ(v.charges->base, 2'507'742);
  EXPECT_EQ(v.charges->total, 2'507'742 + 990'000);
}

TEST_F(Billing, ClosedPeriodInvoiceLateRecordsAndAReleasedSim) {
  import("acme", {1, 2});
  feed({on(rec(1, 3 * kMB, kStart), "310410"), on(rec(2, 2 * kMB, kStart), "302220")});
  ASSERT_TRUE(act(2, sim_action::release).has_value());  // still charged in its last period
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  const invoice jan = bill(at(2025, 1, 15));
  EXPECT_FALSE(jan.open);
  ASSERT_EQ(jan.lines.size(), 2u);
  EXPECT_EQ(jan.chargeable_sims, 2u);
  // SIM 1: 2.99 + 2 MB at 0.99 = 4.97; SIM 2 (released): 2.99 + 2 MB in Canada at 1.49 = 5.97.
  EXPECT_EQ(line_of(jan, 1)->charges.total, 4'970'000);
  EXPECT_EQ(line_of(jan, 2)->charges.total, 5'970'000);
  EXPECT_EQ(line_of(jan, 2)->charges.roaming, 2'980'000);
  EXPECT_EQ(jan.base, 2 * 2'990'000);
  EXPECT_EQ(jan.data_within, 2 * 990'000 + 2 * 1'490'000);
  EXPECT_EQ(jan.roaming, 2'980'000);
  EXPECT_EQ(jan.total, 4'970'000 + 5'970'000);
  auto periods = eng_->closed_periods("acme", false);
  ASSERT_TRUE(periods && periods->size() == 1u && (*periods)[0].cost);
  EXPECT_EQ(*(*periods)[0].cost, jan.total);
  // A late record (within late_grace) for January: 2.5 MB more, 2 MB of it within SIM 1's
  // 5 MB limit and 0.5 MB over it. SIM 1's line: 2.99 + 4 MB at 0.99 + 0.495 = 7.445.
  feed({on(rec(1, 2'500'000, at(2025, 2, 14)), "310410")});
  const invoice again = bill(at(2025, 1, 15));
  EXPECT_EQ(line_of(again, 1)->charges.total, 7'445'000);
  EXPECT_EQ(again.total, 7'445'000 + 5'970'000);
  // And the new period has SIM 1 only, at a full base so far.
  const invoice feb = bill(at(2025, 2, 15));
  EXPECT_TRUE(feb.open);
  EXPECT_EQ(feb.total, 2'990'000);
}

TEST_F(Billing, AReimportedSimKeepsOneLineWithItsBaseOnce) {
  import("acme", {5});
  feed({on(rec(5, kMB, kStart), "302220")});
  ASSERT_TRUE(act(5, sim_action::release).has_value());
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 20)));
  import("acme", {5});
  feed({on(rec(5, kMB, at(2025, 1, 20)), "302220")});
  const invoice inv = bill(at(2025, 1, 15));
  ASSERT_EQ(inv.lines.size(), 1u);
  // One base from its first day (2.99), 2 MB in Canada: ceil(2 MB) at 1.49 = 2.98.
  EXPECT_EQ(inv.lines[0].charges.days_charged, 31u);
  EXPECT_EQ(inv.lines[0].charges.total, 2'990'000 + 2'980'000);
}

TEST_F(Billing, ATransferChargesTheOldProductAndStartsAProratedPlanInTheNewOne) {
  product_settings beta;
  beta.id = "beta";
  beta.country = "US";
  ASSERT_TRUE(eng_->put_product(beta).has_value());
  import("beta", {41});  // beta's periods start on the 15th too
  import("acme", {40});
  ASSERT_TRUE(set_limit(40, 8).has_value());
  feed({rec(40, 2 * kMB, kStart)});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 25, 6)));  // day 10 of 31
  import_options how;
  const std::vector<iccid> ids{test_iccid(40)};
  auto plain = eng_->import_sims("beta", ids, how);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->refused.size(), 1u);  // another product's SIM: only a transfer moves it
  how.transfer = true;
  how.keep_limit = true;
  auto moved = eng_->import_sims("beta", ids, how);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->transferred, 1u);
  EXPECT_EQ(moved->imported, 0u);
  sim_view v = sim(40);
  EXPECT_EQ(v.product, "beta");
  EXPECT_EQ(v.state, sim_state::active);
  EXPECT_EQ(v.usage_bytes(), 0u);
  EXPECT_EQ(v.mb_limit, 8u);  // kept, as asked
  const auto types = types_of(40);
  ASSERT_GE(types.size(), 2u);
  EXPECT_EQ(types[types.size() - 2], event_type::transferred_out);
  EXPECT_EQ(types.back(), event_type::transferred_in);
  // The old product has its line at once: 2.99 + 1 MB beyond the included at 0.99.
  const invoice acme = bill(at(2025, 1, 15));
  ASSERT_EQ(acme.lines.size(), 1u);
  EXPECT_TRUE(acme.lines[0].line.transferred_out);
  EXPECT_EQ(acme.lines[0].charges.total, 3'980'000);
  // The new one a prorated plan from day 10: 2.99 * 21 / 31 = 2.025484.
  auto in_beta = eng_->invoice_of("beta", at(2025, 1, 15));
  ASSERT_TRUE(in_beta);
  ASSERT_EQ(in_beta->lines.size(), 2u);
  const invoice_line* l = line_of(*in_beta, 40);
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->line.transferred_out);
  EXPECT_EQ(l->charges.base, 2'025'484);
}

TEST_F(Billing, ALateRecordDatedBeforeATransferGoesToTheProductTheSimWasIn) {
  product_settings beta;
  beta.id = "beta";
  beta.country = "US";
  ASSERT_TRUE(eng_->put_product(beta).has_value());
  import("beta", {43});
  import("acme", {42});
  feed({rec(42, 2 * kMB, kStart)});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 25, 6)));  // day 10 of 31
  import_options how;
  how.transfer = true;
  ASSERT_EQ(eng_->import_sims("beta", std::vector<iccid>{test_iccid(42)}, how)->transferred, 1u);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));  // both periods closed
  // Day 5 (in acme then) and day 12 (in beta), 1 MB each.
  feed({rec(42, kMB, at(2025, 1, 20)), rec(42, kMB, at(2025, 1, 27))});
  // acme: 3 MB, 2.99 + 2 MB at 0.99 = 4.97.
  const invoice acme = bill(at(2025, 1, 15));
  const invoice_line* in_acme = line_of(acme, 42);
  ASSERT_TRUE(in_acme);
  EXPECT_TRUE(in_acme->line.transferred_out);
  EXPECT_EQ(in_acme->line.usage_bytes(), 3 * kMB);
  EXPECT_EQ(in_acme->charges.total, 4'970'000);
  // beta: 1 MB within the included first MB, the prorated base alone (2.025484).
  auto b = eng_->invoice_of("beta", at(2025, 1, 15));
  ASSERT_TRUE(b);
  const invoice_line* in_beta = line_of(*b, 42);
  ASSERT_TRUE(in_beta);
  EXPECT_EQ(in_beta->line.usage_bytes(), kMB);
  EXPECT_EQ(in_beta->charges.total, 2'025'484);
  event_filter ef;
  ef.type = event_type::late_adjustment;
  auto evs = eng_->events().read(0, 100, ef);
  ASSERT_EQ(evs.size(), 2u);
  EXPECT_EQ(evs[0].usage_bytes, 3 * kMB);  // acme's line
  EXPECT_EQ(evs[1].usage_bytes, kMB);      // beta's
}

TEST_F(Billing, UnusedButChargedSimsAreCountedListedAndReportedDaily) {
  import("acme", {50, 51});
  feed({rec(50, 1, kStart)});
  ASSERT_TRUE(eng_->advance_clock(kStart + 6 * 86400));
  EXPECT_EQ(eng_->product_usage("acme")->unused_charged_sims, 0u);  // not 7 days yet
  EXPECT_EQ(count_of(eng_->events(), event_type::unused_charged), 0u);
  ASSERT_TRUE(eng_->advance_clock(kStart + 8 * 86400));
  EXPECT_EQ(eng_->product_usage("acme")->unused_charged_sims, 1u);
  sim_filter f;
  f.product = "acme";
  f.unused = true;
  const sim_page page = eng_->list_sims(f, 0, 100);
  ASSERT_EQ(page.sims.size(), 1u);
  EXPECT_EQ(page.sims[0].id, test_iccid(51));
  event_filter ef;
  ef.type = event_type::unused_charged;
  auto evs = eng_->events().read(0, 100, ef);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].usage_bytes, 1u);  // the count
  EXPECT_EQ(evs[0].sim, 0u);
  // Once a day: the same day again adds none, the next day one more.
  ASSERT_TRUE(eng_->advance_clock(kStart + 8 * 86400 + 3600));
  EXPECT_EQ(count_of(eng_->events(), event_type::unused_charged), 1u);
  ASSERT_TRUE(eng_->advance_clock(kStart + 9 * 86400));
  EXPECT_EQ(count_of(eng_->events(), event_type::unused_charged), 2u);
}

class Pools : public Billing {
 protected:
  void pooled(std::uint64_t mb, pool_action action, micros price) {
    product_settings s;
    s.id = "acme";
    s.pool_mb = mb;
    s.pool_action = action;
    s.pool_price = price;
    ASSERT_TRUE(eng_->put_product(s).has_value());
  }
  std::size_t paused_for_pool() {
    std::size_t n = 0;
    for (std::uint64_t i = 10; i < 30; ++i) {
      auto v = eng_->get_sim(test_iccid(i));
      n += v && v->state == sim_state::paused && v->reason == pause_reason::pool_exhausted;
    }
    return n;
  }
};

TEST_F(Pools, AUsedUpPoolPausesEverySimOnEveryShard) {
  std::vector<std::uint64_t> sims;
  for (std::uint64_t i = 10; i < 30; ++i) sims.push_back(i);
  import("acme", sims);
  pooled(1, pool_action::pause, 0);  // the free tier: 1 MB pooled, then a pause
  unsigned shards_with_sims = 0;
  for (unsigned sh = 0; sh < eng_->shard_count(); ++sh) {
    shards_with_sims += std::any_of(sims.begin(), sims.end(), [&](std::uint64_t n) {
      return eng_->shard_for(test_iccid(n)) == sh;
    });
  }
  ASSERT_EQ(shards_with_sims, 2u);
  feed({rec(10, 500'000, kStart), rec(11, 400'000, kStart)});  // 90 %: a pool alert
  EXPECT_EQ(count_of(eng_->events(), event_type::pool_alert), 1u);
  EXPECT_EQ(paused_for_pool(), 0u);
  feed({rec(12, 200'000, kStart), rec(13, 300'000, kStart)});  // 1.4 MB: used up
  ASSERT_TRUE(eventually([&] { return paused_for_pool() == sims.size(); }))
      << paused_for_pool() << " of " << sims.size() << " paused";
  EXPECT_EQ(count_of(eng_->events(), event_type::pool_exhausted), 1u);
  // The pause is measured: how long it took to reach the last shard, how far usage ran past.
  ASSERT_TRUE(eventually([&] { return eng_->stats().pool_pauses == 1; }));
  EXPECT_GT(eng_->stats().last_pool_pause_seconds, 0.0);
  EXPECT_LT(eng_->stats().last_pool_pause_seconds, 0.1);
  // The crossing shard's report took the pool to 1.1 or 1.2 MB; the other shard's, if it came
  // before the last pause, to 1.4 MB.
  const std::uint64_t past = eng_->stats().last_pool_overshoot_bytes;
  EXPECT_TRUE(past == 100'000 || past == 200'000 || past == 400'000) << past;
  auto fleet = eng_->product_usage("acme");
  ASSERT_TRUE(fleet);
  EXPECT_TRUE(fleet->pool_exhausted);
  EXPECT_EQ(fleet->pool_mb, 1u);
  // Records counted meanwhile still count; bytes past the pool are reported, not charged.
  feed({rec(14, 100'000, kStart)});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 20)));
  import("acme", {29});  // joins a used-up pool: starts paused
  EXPECT_EQ(sim(29).state, sim_state::paused);
  EXPECT_EQ(act(10, sim_action::activate).error().code, control_errc::limit_reached);
  const invoice open = bill(at(2025, 1, 15));
  EXPECT_EQ(open.pool_overshoot_bytes, 500'000u);
  EXPECT_EQ(open.total, 0);  // a free pool
  // Raising the pool above the usage unpauses them all.
  pooled(2, pool_action::pause, 0);
  ASSERT_TRUE(eventually([&] { return paused_for_pool() == 0; }));
  EXPECT_EQ(sim(10).state, sim_state::active);
  // And the anniversary unpauses and starts the pool again.
  pooled(1, pool_action::pause, 0);
  ASSERT_TRUE(eventually([&] { return paused_for_pool() == sims.size(); }));
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  EXPECT_EQ(paused_for_pool(), 0u);
  feed({rec(10, 900'000, at(2025, 2, 15, 1))});
  EXPECT_EQ(paused_for_pool(), 0u);
  // Once a threshold a period: the first period had its one, this one has its own now.
  EXPECT_EQ(count_of(eng_->events(), event_type::pool_alert), 2u);
}

TEST_F(Pools, OverageChargesTheBytesBeyondThePoolAtTheHomeRate) {
  import("acme", {10, 11, 12});
  pooled(1, pool_action::overage, 9'900'000);
  feed({on(rec(10, 1'000'000, kStart), "302220"), rec(11, 500'000, kStart)});
  EXPECT_EQ(paused_for_pool(), 0u);
  EXPECT_EQ(count_of(eng_->events(), event_type::pool_exhausted), 1u);
  // The SIMs cost nothing themselves (not even roaming); the pool 9.90, and 0.5 MB beyond it at
  // the home zone's 0.99: 0.495.
  EXPECT_EQ(sim(10).charges->total, 0);
  auto fleet = eng_->product_usage("acme");
  ASSERT_TRUE(fleet && fleet->estimated_cost);
  EXPECT_EQ(*fleet->estimated_cost, 9'900'000 + 495'000);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  const invoice jan = bill(at(2025, 1, 15));
  EXPECT_EQ(jan.pool, 9'900'000);
  EXPECT_EQ(jan.pool_overage, 495'000);
  EXPECT_EQ(jan.base, 0);
  EXPECT_EQ(jan.total, 9'900'000 + 495'000);
  auto periods = eng_->closed_periods("acme", false);
  ASSERT_TRUE(periods && !periods->empty() && periods->back().cost);
  EXPECT_EQ(*periods->back().cost, jan.total);
}

class BillingDurable : public Billing {
 protected:
  BillingDurable() : Billing(rated(dir().string())) {}
  ~BillingDurable() override {
    if (eng_) eng_->stop();
    eng_.reset();
    fs::remove_all(dir());
  }
  static fs::path dir() {
    static const fs::path d =
        fs::temp_directory_path() / ("simcap-billing-" + std::to_string(::getpid()));
    return d;
  }
  void restart() {
    eng_->stop();
    eng_.reset();
    eng_ = std::make_unique<engine>(rated(dir().string()), clock_, dead_letters_);
    eng_->start();
    feed_ = eng_->register_feed("test-feed");
  }
};

TEST_F(BillingDurable, RatingStateSurvivesARestart) {
  import("acme", {1});
  ASSERT_TRUE(eng_->advance_clock(at(2025, 1, 25)));
  import("acme", {2});
  feed({on(rec(2, 6 * kMB, at(2025, 1, 25)), "302220"), on(rec(1, 6 * kMB, kStart), "310410")});
  const micros before = sim(1).charges->total + sim(2).charges->total;
  eng_->checkpoint();
  restart();
  EXPECT_EQ(sim(2).charge_day, 10);
  EXPECT_EQ(zone(*sim(2).charges, "zone3")->bytes_over, kMB);
  EXPECT_EQ(zone(*sim(1).charges, "zone2")->bytes_over, kMB);
  EXPECT_EQ(sim(1).charges->total + sim(2).charges->total, before);
  ASSERT_TRUE(eng_->advance_clock(at(2025, 2, 15, 1)));
  const invoice jan = bill(at(2025, 1, 15));
  eng_->checkpoint();
  restart();
  const invoice again = bill(at(2025, 1, 15));
  EXPECT_EQ(again.total, jan.total);
  EXPECT_EQ(again.total, before);
  ASSERT_EQ(again.lines.size(), 2u);
  EXPECT_EQ(again.lines[1].line.away.size(), jan.lines[1].line.away.size());
}

}  // namespace
}  // namespace simcap::testing
