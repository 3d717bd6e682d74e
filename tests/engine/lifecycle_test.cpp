// SIM life cycle (SPEC §2): every allowed transition and every forbidden one.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>

#include "engine_fixture.hpp"

namespace simcap::testing {
namespace {

class Lifecycle : public engine_fixture {
 protected:
  void SetUp() override { make_product("acme"); }
  // A SIM in the wanted state, by number.
  void make_in(std::uint64_t n, sim_state s) {
    switch (s) {
      case sim_state::issued:
        import("acme", {n}, sim_state::issued);
        break;
      case sim_state::factory_test:
        import("acme", {n}, sim_state::factory_test);
        break;
      case sim_state::active:
        import("acme", {n});
        break;
      case sim_state::paused:
        import("acme", {n});
        feed({rec(n, 5'000'000, clock_.now())});
        break;
      case sim_state::deactivated:
        import("acme", {n});
        ASSERT_TRUE(act(n, sim_action::deactivate));
        break;
      case sim_state::released:
        import("acme", {n});
        ASSERT_TRUE(act(n, sim_action::release));
        break;
    }
    ASSERT_EQ(sim(n).state, s);
  }
};

TEST_F(Lifecycle, ImportActivatesByDefault) {
  import("acme", {1});
  auto v = sim(1);
  EXPECT_EQ(v.state, sim_state::active);
  EXPECT_EQ(v.product, "acme");
  EXPECT_EQ(v.mb_limit, 5u);
  EXPECT_EQ(v.limit_bytes, 5'000'000u);
  EXPECT_EQ(v.first_activated, kStart);
  EXPECT_EQ(types_of(1), std::vector<event_type>{event_type::activated});
}

TEST_F(Lifecycle, ImportIsIdempotentAndRefusesOtherProducts) {
  make_product("other");
  std::vector<iccid> ids{test_iccid(1), test_iccid(2)};
  auto r1 = eng_->import_sims("acme", ids);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->imported, 2u);
  auto r2 = eng_->import_sims("acme", ids);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->imported, 0u);
  EXPECT_EQ(r2->already_present, 2u);
  auto r3 = eng_->import_sims("other", ids);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->imported, 0u);
  ASSERT_EQ(r3->refused.size(), 2u);
  EXPECT_EQ(r3->refused[0].reason, "belongs_to_other_product");
  EXPECT_EQ(sim(1).product, "acme");
  // Released there, it may move.
  ASSERT_TRUE(act(1, sim_action::release));
  auto r4 = eng_->import_sims("other", std::vector<iccid>{test_iccid(1)});
  ASSERT_TRUE(r4);
  EXPECT_EQ(r4->imported, 1u);
  EXPECT_EQ(sim(1).product, "other");
  EXPECT_EQ(sim(1).state, sim_state::active);
  EXPECT_EQ(sim(1).usage_bytes(), 0u);
}

TEST_F(Lifecycle, ImportIntoUnknownProductFails) {
  auto r = eng_->import_sims("nope", std::vector<iccid>{test_iccid(1)});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::unknown_product);
}

TEST_F(Lifecycle, IssuedActivates) {
  make_in(1, sim_state::issued);
  EXPECT_EQ(sim(1).first_activated, 0);
  auto r = act(1, sim_action::activate);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::active);
  EXPECT_EQ(r->first_activated, kStart);
  EXPECT_EQ(types_of(1), std::vector<event_type>{event_type::activated});
}

TEST_F(Lifecycle, IssuedStartsFactoryTest) {
  make_in(1, sim_state::issued);
  auto r = act(1, sim_action::start_factory_test);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::factory_test);
}

TEST_F(Lifecycle, ActiveDeactivatesAndReactivates) {
  make_in(1, sim_state::active);
  ASSERT_EQ(act(1, sim_action::deactivate)->state, sim_state::deactivated);
  ASSERT_EQ(act(1, sim_action::reactivate)->state, sim_state::active);
  EXPECT_EQ(types_of(1), (std::vector<event_type>{event_type::activated, event_type::deactivated,
                                                  event_type::activated}));
}

TEST_F(Lifecycle, PausedDeactivates) {
  make_in(1, sim_state::paused);
  EXPECT_EQ(act(1, sim_action::deactivate)->state, sim_state::deactivated);
}

TEST_F(Lifecycle, DeactivatedOverLimitReactivatesAsPaused) {
  make_in(1, sim_state::paused);
  ASSERT_TRUE(act(1, sim_action::deactivate));
  auto r = act(1, sim_action::reactivate);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, sim_state::paused);
  EXPECT_EQ(r->reason, pause_reason::data_limit);
}

TEST_F(Lifecycle, PausedActivateNeedsHeadroom) {
  make_in(1, sim_state::paused);
  auto r = act(1, sim_action::activate);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::limit_reached);
  EXPECT_EQ(sim(1).state, sim_state::paused);
  // Particle's way: activate together with a higher mb_limit.
  sim_update u;
  u.action = sim_action::activate;
  u.mb_limit = 10;
  auto r2 = eng_->update_sim(test_iccid(1), u);
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->state, sim_state::active);
  EXPECT_EQ(r2->mb_limit, 10u);
}

TEST_F(Lifecycle, ReleaseFromEveryStateButReleased) {
  std::uint64_t n = 1;
  for (auto s : {sim_state::issued, sim_state::factory_test, sim_state::active, sim_state::paused,
                 sim_state::deactivated}) {
    make_in(n, s);
    auto r = act(n, sim_action::release);
    ASSERT_TRUE(r) << to_string(s);
    EXPECT_EQ(r->state, sim_state::released);
    ++n;
  }
}

TEST_F(Lifecycle, ForbiddenTransitionsChangeNothing) {
  struct forbidden {
    sim_state from;
    sim_action action;
  };
  const forbidden cases[] = {
      {sim_state::issued, sim_action::deactivate},
      {sim_state::factory_test, sim_action::activate},
      {sim_state::factory_test, sim_action::deactivate},
      {sim_state::active, sim_action::start_factory_test},
      {sim_state::paused, sim_action::start_factory_test},
      {sim_state::deactivated, sim_action::start_factory_test},
      {sim_state::released, sim_action::activate},
      {sim_state::released, sim_action::reactivate},
      {sim_state::released, sim_action::deactivate},
      {sim_state::released, sim_action::release},
      {sim_state::released, sim_action::start_factory_test},
  };
  std::uint64_t n = 100;
  for (const auto& c : cases) {
    make_in(n, c.from);
    auto before = sim(n);
    auto events_before = eng_->events().last_id();
    auto r = act(n, c.action);
    ASSERT_FALSE(r) << to_string(c.from) << " " << to_string(c.action);
    EXPECT_EQ(r.error().code, control_errc::invalid_transition);
    EXPECT_EQ(r.error().current, c.from);
    for (sim_action a : r.error().allowed) EXPECT_NE(a, c.action);
    EXPECT_EQ(sim(n).state, before.state);
    EXPECT_EQ(eng_->events().last_id(), events_before);
    ++n;
  }
}

TEST_F(Lifecycle, TheAllowedActionsAreWhatAnUpdateAccepts) {
  // The 409's list of allowed actions and the update itself come from one table: an action is
  // offered exactly when it moves the SIM (a paused SIM's activate needs headroom, 409
  // limit_reached, but is offered).
  const std::pair<sim_state, sim_action> refused_in[] = {
      {sim_state::issued, sim_action::deactivate},
      {sim_state::factory_test, sim_action::activate},
      {sim_state::active, sim_action::start_factory_test},
      {sim_state::paused, sim_action::start_factory_test},
      {sim_state::deactivated, sim_action::start_factory_test},
      {sim_state::released, sim_action::activate},
  };
  std::uint64_t n = 500;
  for (auto [state, refused] : refused_in) {
    make_in(n, state);
    auto r = act(n++, refused);
    ASSERT_FALSE(r);
    const std::vector<sim_action> allowed = r.error().allowed;
    for (sim_action a : {sim_action::activate, sim_action::reactivate, sim_action::deactivate,
                         sim_action::release, sim_action::start_factory_test}) {
      make_in(n, state);
      auto done = act(n, a);
      const bool offered = std::find(allowed.begin(), allowed.end(), a) != allowed.end();
      const bool moves =
          done ? done->state != state : done.error().code == control_errc::limit_reached;
      EXPECT_EQ(offered, moves) << to_string(state) << " " << to_string(a);
      if (!done && !moves) {
        EXPECT_EQ(done.error().code, control_errc::invalid_transition);
      }
      ++n;
    }
  }
}

TEST_F(Lifecycle, ActivateWithALimitBelowUsageIsRefusedAndChangesNothing) {
  import("acme", {1});
  feed({rec(1, 3'000'000, clock_.now())});
  const auto events_before = eng_->events().last_id();
  sim_update u;
  u.action = sim_action::activate;
  u.mb_limit = 2;  // the new limit pauses it: the activate would need headroom
  auto r = eng_->update_sim(test_iccid(1), u);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::limit_reached);
  EXPECT_EQ(sim(1).state, sim_state::active);
  EXPECT_EQ(sim(1).mb_limit, 5u);
  EXPECT_EQ(eng_->events().last_id(), events_before);
}

TEST_F(Lifecycle, IssuedIsNeverReentered) {
  make_in(1, sim_state::issued);
  ASSERT_TRUE(act(1, sim_action::activate));
  ASSERT_TRUE(act(1, sim_action::deactivate));
  ASSERT_TRUE(act(1, sim_action::reactivate));
  EXPECT_EQ(sim(1).state, sim_state::active);
  auto r = act(1, sim_action::start_factory_test);
  EXPECT_FALSE(r);
}

TEST_F(Lifecycle, RecordsForIssuedAndReleasedAreNotCounted) {
  make_in(1, sim_state::issued);
  make_in(2, sim_state::released);
  make_in(3, sim_state::deactivated);
  auto rejects =
      feed({rec(1, 100, kStart, 0, 1), rec(2, 100, kStart, 0, 2), rec(3, 100, kStart, 0, 3)});
  ASSERT_EQ(rejects.size(), 2u);
  for (auto& [seq, why] : rejects) EXPECT_EQ(why, reject_reason::not_counted_state);
  EXPECT_EQ(sim(1).usage_bytes(), 0u);
  EXPECT_EQ(sim(3).usage_bytes(), 100u);  // deactivated: usage before the network stopped it
  auto dl = dead_letters_.entries();
  ASSERT_EQ(dl.size(), 2u);
  EXPECT_EQ(dl[0].feed, "test-feed");
}

TEST_F(Lifecycle, FactoryTestEndsAtDataThreshold) {
  make_in(1, sim_state::factory_test);
  feed({rec(1, 60'000, kStart)});
  EXPECT_EQ(sim(1).state, sim_state::factory_test);
  feed({rec(1, 50'000, kStart)});
  auto v = sim(1);
  EXPECT_EQ(v.state, sim_state::active);
  // Test usage is free up to the 100 KB threshold; the 10 KB past it are chargeable.
  EXPECT_EQ(v.usage_bytes(), 10'000u);
  auto evs = events_of(1);
  ASSERT_FALSE(evs.empty());
  EXPECT_EQ(evs.back().type, event_type::factory_test_ended);
  EXPECT_EQ(evs.back().reason, event_reason::data_threshold);
  // The product's anniversary is set by this first activation.
  EXPECT_EQ(eng_->get_product("acme")->anniversary_day, 15u);
}

TEST_F(Lifecycle, FactoryTestEndsAtSmsThreshold) {
  make_in(1, sim_state::factory_test);
  usage_record r = rec(1, 0, kStart);
  r.sms = 10;
  feed({r});
  EXPECT_EQ(sim(1).state, sim_state::active);
  EXPECT_EQ(events_of(1).back().reason, event_reason::sms_threshold);
}

TEST_F(Lifecycle, FactoryTestEndsAfterItsPeriodWithoutRecords) {
  make_in(1, sim_state::factory_test);
  ASSERT_TRUE(eng_->advance_clock(kStart + 29 * 86400));
  EXPECT_EQ(sim(1).state, sim_state::factory_test);
  ASSERT_TRUE(eng_->advance_clock(kStart + 30 * 86400));
  EXPECT_EQ(sim(1).state, sim_state::active);
  EXPECT_EQ(events_of(1).back().reason, event_reason::test_period);
}

TEST_F(Lifecycle, ProductTokenScopeHidesOtherProducts) {
  make_product("other");
  import("acme", {1});
  EXPECT_TRUE(eng_->get_sim(test_iccid(1), "acme"));
  auto r = eng_->get_sim(test_iccid(1), "other");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::not_found);
  sim_update u;
  u.action = sim_action::deactivate;
  EXPECT_EQ(eng_->update_sim(test_iccid(1), u, "other").error().code, control_errc::not_found);
  EXPECT_EQ(sim(1).state, sim_state::active);
}

TEST_F(Lifecycle, ListsByProductAndStateInIccidOrder) {
  make_product("other");
  import("acme", {5, 3, 1, 4, 2});
  import("other", {6});
  ASSERT_TRUE(act(4, sim_action::deactivate));
  ASSERT_TRUE(act(5, sim_action::release));
  sim_filter f;
  f.product = "acme";
  auto page = eng_->list_sims(f, 0, 2);
  EXPECT_EQ(page.total, 4u);  // released SIMs are no longer in the product
  ASSERT_EQ(page.sims.size(), 2u);
  EXPECT_EQ(page.sims[0].id, test_iccid(1));
  EXPECT_EQ(page.sims[1].id, test_iccid(2));
  auto page2 = eng_->list_sims(f, 2, 2);
  ASSERT_EQ(page2.sims.size(), 2u);
  EXPECT_EQ(page2.sims[1].id, test_iccid(4));
  f.state = sim_state::deactivated;
  auto d = eng_->list_sims(f, 0, 10);
  ASSERT_EQ(d.sims.size(), 1u);
  EXPECT_EQ(d.sims[0].id, test_iccid(4));
}

// The crossing record is billed past the threshold: only the part up to it belongs to the test.
TEST_F(Lifecycle, FactoryTestCrossingRecordIsChargeablePastTheThreshold) {
  make_in(1, sim_state::factory_test);
  feed({rec(1, 6'000'000, kStart)});
  auto v = sim(1);
  EXPECT_EQ(v.usage_bytes(), 5'900'000u);
  EXPECT_EQ(v.state, sim_state::paused);  // over the 5 MB limit at once
  EXPECT_EQ(types_of(1), (std::vector<event_type>{event_type::factory_test_ended, event_type::alert,
                                                  event_type::paused}));
  EXPECT_EQ(eng_->product_usage("acme")->usage_bytes(), 5'900'000u);
  auto days = eng_->sim_usage_by_day(test_iccid(1));
  ASSERT_FALSE(days->second.empty());
  EXPECT_EQ(days->second.back().bytes, 5'900'000u);
}

TEST_F(Lifecycle, StartUpImportLeavesKnownSimsAsTheyAre) {
  make_in(1, sim_state::released);
  make_in(2, sim_state::deactivated);
  import_options how;
  how.only_new = true;
  std::vector<iccid> ids{test_iccid(1), test_iccid(2), test_iccid(3)};
  auto r = eng_->import_sims("acme", ids, how);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->imported, 1u);
  EXPECT_EQ(r->already_present, 2u);
  EXPECT_EQ(sim(1).state, sim_state::released);
  EXPECT_EQ(sim(2).state, sim_state::deactivated);
  EXPECT_EQ(sim(3).state, sim_state::active);
}

TEST_F(Lifecycle, HomeCountryIsPerSim) {
  product_settings us;
  us.id = "acme";
  us.country = "US";
  ASSERT_TRUE(eng_->put_product(us));
  import("acme", {1});
  import_options de;
  de.country = "DE";
  std::vector<iccid> two{test_iccid(2)};
  ASSERT_TRUE(eng_->import_sims("acme", two, de));
  EXPECT_EQ(sim(1).country, "US");
  EXPECT_EQ(sim(2).country, "DE");
  // A new product country is the default for SIMs imported from then on only.
  us.country = "GB";
  ASSERT_TRUE(eng_->put_product(us));
  import("acme", {3});
  EXPECT_EQ(sim(1).country, "US");
  EXPECT_EQ(sim(2).country, "DE");
  EXPECT_EQ(sim(3).country, "GB");
  import_options bad;
  bad.country = "germany";
  std::vector<iccid> four{test_iccid(4)};
  auto r = eng_->import_sims("acme", four, bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, control_errc::bad_request);
}

TEST_F(Lifecycle, CountersSaturateInsteadOfWrapping) {
  make_in(1, sim_state::active);
  usage_record big = rec(1, 0, kStart);
  big.up = std::numeric_limits<std::uint64_t>::max() - 10;
  feed({big, rec(1, 100, kStart)});
  auto v = sim(1);
  EXPECT_EQ(v.usage_bytes(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(v.bytes_up, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(v.state, sim_state::paused);
  EXPECT_EQ(eng_->product_usage("acme")->bytes_up, std::numeric_limits<std::uint64_t>::max());
}

}  // namespace
}  // namespace simcap::testing
