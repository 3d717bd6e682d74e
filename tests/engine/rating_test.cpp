// Rating vocabulary: money as decimal text and micro-units, the rate table's lookups, visited
// networks to countries with overrides.
#include "simcap/rating.hpp"

#include <gtest/gtest.h>

namespace simcap {
namespace {

TEST(Money, DecimalTextIsExactMicroUnits) {
  EXPECT_EQ(parse_money("2.99"), 2'990'000);
  EXPECT_EQ(parse_money("0.000001"), 1);
  EXPECT_EQ(parse_money("10"), 10'000'000);
  EXPECT_EQ(parse_money("0"), 0);
  for (const char* bad : {"", ".5", "1.", "1.0000001", "-1", "1e3", "1,5", " 1", "abc"})
    EXPECT_FALSE(parse_money(bad)) << bad;
}

TEST(Money, AmountsRoundHalfUpToCents) {
  EXPECT_EQ(money_amount(2'990'000), "2.99");
  EXPECT_EQ(money_amount(2'994'999), "2.99");
  EXPECT_EQ(money_amount(2'995'000), "3.00");
  EXPECT_EQ(money_amount(50'000), "0.05");
  EXPECT_EQ(money_amount(0), "0.00");
  EXPECT_EQ(money_text6(2'990'000), "2.990000");
  EXPECT_EQ(money_text6(7), "0.000007");
  EXPECT_EQ(parse_discount("0.10"), 100'000u);
  EXPECT_FALSE(parse_discount("1"));
}

TEST(RateTable, ZonesTiersAndTheUnknownRate) {
  rate_table t;
  t.zones = {{"z2", 2'990'000, 990'000, {"US", "TR"}}, {"z3", 3'990'000, 1'490'000, {"CA"}}};
  t.tiers = {{1000, 100'000}, {10'000, 200'000}};
  EXPECT_EQ(t.zone_of_country("TR"), 0);
  EXPECT_EQ(t.zone_of_country("CA"), 1);
  EXPECT_EQ(t.zone_of_country("FR"), -1);
  EXPECT_EQ(t.highest_per_mb(), 1'490'000);
  EXPECT_EQ(t.discount_for(999), 0u);
  EXPECT_EQ(t.discount_for(1000), 100'000u);  // at exactly min_sims
  EXPECT_EQ(t.discount_for(10'000), 200'000u);
}

std::uint32_t key(const char* digits) { return network_countries::key_of(digits); }

TEST(NetworkCountries, ExactNetworkThenMccWithOverridesAndAmbiguity) {
  const std::vector<network_entry> data{{"310", "410", "US"}, {"302", "220", "CA"},
                                        {"234", "15", "GB"},  {"234", "03", "JE"},
                                        {"234", "03", "GG"},  {"204", "04", "NL"}};
  const network_countries plain(data, {});
  EXPECT_EQ(plain.country_of(key("310410")), "US");
  EXPECT_EQ(plain.country_of(key("31099")), "US");  // the MCC alone
  EXPECT_EQ(plain.country_of(key("20404")), "NL");
  EXPECT_EQ(plain.country_of(key("23403")), "");  // listed under two countries
  EXPECT_EQ(plain.country_of(key("23499")), "");  // MCC 234 is in three countries
  EXPECT_EQ(plain.country_of(key("99999")), "");  // nobody's
  EXPECT_EQ(plain.country_of(0), "");             // no mccmnc
  EXPECT_EQ(plain.country_of(key("204")), "");    // not a network
  const network_countries over(data,
                               {{"23403", "JE"}, {"234", "GB"}, {"313", "US"}, {"31041", "MX"}});
  EXPECT_EQ(over.country_of(key("23403")), "JE");  // the override names the network
  EXPECT_EQ(over.country_of(key("23499")), "GB");  // ... or its MCC
  EXPECT_EQ(over.country_of(key("313100")), "US");
  EXPECT_EQ(over.country_of(key("310410")), "US");  // the data set's exact match is longer
  EXPECT_EQ(over.country_of(key("31041")), "MX");   // an exact override
  // The record path's lookup by MCC says the same as the full one, mixed MCCs included.
  for (const network_countries* nc : {&plain, &over}) {
    for (const char* k : {"310410", "31099", "20404", "23403", "23499", "99999", "313100", "31041",
                          "31042", "204", "2040", "3104100"}) {
      EXPECT_EQ(nc->code_of(key(k)), pack_country(nc->country_of(key(k)))) << k;
    }
    EXPECT_EQ(nc->code_of(0), 0);
  }
}

// ---------------------------------------------------------------- the rater (SPEC §11)
// Every expectation is worked out by hand from the rules, in the comment next to it.

rate_table test_table() {
  rate_table t;
  t.included_mb = 1;
  t.zones = {{"zone2", 2'990'000, 990'000, {"US", "TR", "ZA"}},
             {"zone3", 3'990'000, 1'490'000, {"CA", "MX"}},
             {"zone4", 4'990'000, 2'990'000, {"AU"}}};
  t.tiers = {{1000, 100'000}};
  return t;
}
constexpr country_code kUS = pack_country("US"), kCA = pack_country("CA"), kTR = pack_country("TR"),
                       kFR = pack_country("FR");
constexpr std::uint64_t kMB = 1'000'000;

rating_input home_usage(std::uint64_t bytes, std::uint8_t charge_day = 0) {
  rating_input in;
  in.home = kUS;
  in.chargeable = true;
  in.charge_day = charge_day;
  in.usage = bytes;
  return in;
}

TEST(Rater, BaseIsProratedByTheDaysLeftInThePeriod) {
  const rater r(test_table(), kMB);
  // A whole period: 2.99.
  EXPECT_EQ(r.rate(home_usage(0), 30, 0, false).base, 2'990'000);
  EXPECT_EQ(r.rate(home_usage(0), 30, 0, false).days_charged, 30u);
  // 28 days, chargeable from day 14 (the 15th): 14 days left, 2.99 * 14 / 28 = 1.495.
  EXPECT_EQ(r.rate(home_usage(0, 14), 28, 0, false).base, 1'495'000);
  EXPECT_EQ(r.rate(home_usage(0, 14), 28, 0, false).days_charged, 14u);
  // 29 days, from day 1: 2.99 * 28 / 29 = 2.886896551... -> 2.886897.
  EXPECT_EQ(r.rate(home_usage(0, 1), 29, 0, false).base, 2'886'897);
  // 30 days, from the last day: 2.99 / 30 = 0.099666... -> 0.099667.
  EXPECT_EQ(r.rate(home_usage(0, 29), 30, 0, false).base, 99'667);
  // 31 days, from day 10: 2.99 * 21 / 31 = 2.025483870... -> 2.025484.
  EXPECT_EQ(r.rate(home_usage(0, 10), 31, 0, false).base, 2'025'484);
  // Not chargeable (a factory-test SIM, one never activated): nothing, whatever it used.
  rating_input test = home_usage(5 * kMB);
  test.chargeable = false;
  EXPECT_EQ(r.rate(test, 30, 0, false).total, 0);
}

TEST(Rater, DataWithinTheLimitIsWholeMegabytesBeyondTheIncludedOne) {
  const rater r(test_table(), kMB);
  auto data = [&](std::uint64_t bytes) { return r.rate(home_usage(bytes), 30, 0, false).data; };
  EXPECT_EQ(data(0), 0);
  EXPECT_EQ(data(kMB), 0);            // exactly the included MB
  EXPECT_EQ(data(kMB + 1), 990'000);  // one byte into the second MB: a whole MB
  EXPECT_EQ(data(2 * kMB), 990'000);  // exactly two MB: one beyond the included
  EXPECT_EQ(data(2 * kMB + 1), 1'980'000);
  EXPECT_EQ(r.rate(home_usage(2 * kMB + 1), 30, 0, false).total, 2'990'000 + 1'980'000);
}

TEST(Rater, DataOverTheLimitIsProratedToTheByte) {
  const rater r(test_table(), kMB);
  // 5 MB within (4 charged: 3.96) and 500,000 bytes over: 0.99 * 0.5 = 0.495.
  country_bytes over{kUS, 0, 500'000};
  rating_input in = home_usage(5 * kMB + 500'000);
  in.away = &over;
  in.away_count = 1;
  const sim_charges c = r.rate(in, 30, 0, false);
  ASSERT_EQ(c.zones.size(), 1u);
  EXPECT_EQ(c.zones[0].bytes_within, 5 * kMB);
  EXPECT_EQ(c.zones[0].bytes_over, 500'000u);
  EXPECT_EQ(c.zones[0].charge_within, 3'960'000);
  EXPECT_EQ(c.zones[0].charge_over, 495'000);
  // One byte over: 0.99 / 1,000,000 = 0.00000099 -> 0.000001.
  over.over = 1;
  in.usage = 5 * kMB + 1;
  EXPECT_EQ(r.rate(in, 30, 0, false).zones[0].charge_over, 1);
}

TEST(Rater, RoamingIsChargedFromTheFirstByteAndTheHomeZoneIsNotRoaming) {
  const rater r(test_table(), kMB);
  // 300 KB at home (free), 1 byte in Canada (a whole MB at 1.49), 200 KB in Turkey (the home
  // zone: in the included MB with the home bytes).
  std::vector<country_bytes> away{{kCA, 1, 0}, {kTR, 200'000, 0}};
  rating_input in = home_usage(300'000 + 1 + 200'000);
  in.away = away.data();
  in.away_count = away.size();
  const sim_charges c = r.rate(in, 30, 0, false);
  ASSERT_EQ(c.zones.size(), 2u);
  EXPECT_EQ(r.zone_name(c.zones[0].zone), "zone2");
  EXPECT_EQ(c.zones[0].bytes_within, 500'000u);
  EXPECT_EQ(c.zones[0].charge_within, 0);
  EXPECT_EQ(r.zone_name(c.zones[1].zone), "zone3");
  EXPECT_EQ(c.zones[1].charge_within, 1'490'000);
  EXPECT_EQ(c.roaming, 1'490'000);
  EXPECT_EQ(c.bytes_roaming, 1u);
  EXPECT_EQ(c.total, 2'990'000 + 1'490'000);
}

TEST(Rater, AnUnknownNetworkIsRatedAtTheHighestPerMb) {
  const rater r(test_table(), kMB);
  // France is in no zone, an unknown network has no country: both at 2.99 a MB, no free MB.
  std::vector<country_bytes> away{{kFR, 10, 0}, {0, 1'500'000, 0}};
  rating_input in = home_usage(10 + 1'500'000);
  in.away = away.data();
  in.away_count = away.size();
  const sim_charges c = r.rate(in, 30, 0, false);
  ASSERT_EQ(c.zones.size(), 2u);  // the home zone (no bytes) and unknown
  EXPECT_EQ(r.zone_name(c.zones[1].zone), "unknown");
  EXPECT_EQ(c.zones[1].bytes_within, 1'500'010u);
  EXPECT_EQ(c.zones[1].charge_within, 2 * 2'990'000);
}

TEST(Rater, TheDiscountAppliesToEveryRateAndEachLineRoundsOnce) {
  const rater r(test_table(), kMB);
  // 10 % off: base 2.99 * 0.9 = 2.691; 2 MB beyond the included at 0.99 * 0.9 = 1.782.
  const sim_charges c = r.rate(home_usage(3 * kMB), 30, 100'000, false);
  EXPECT_EQ(c.base, 2'691'000);
  EXPECT_EQ(c.data, 1'782'000);
  // Prorated and discounted, rounded once: 2.99 * 0.9 * 14 / 28 = 1.3455.
  EXPECT_EQ(r.rate(home_usage(0, 14), 28, 100'000, false).base, 1'345'500);
  // An odd discount: 0.99 * (1 - 0.333333) = 0.66000033 -> 0.660000 for one MB; 2.99 *
  // 0.666667 = 1.99333433 -> 1.993334.
  const sim_charges odd = r.rate(home_usage(2 * kMB), 30, 333'333, false);
  EXPECT_EQ(odd.data, 660'000);
  EXPECT_EQ(odd.base, 1'993'334);
  // Over the limit with the discount: 0.99 * 0.9 * 333,333 / 1,000,000 = 0.296999703 -> 0.297.
  country_bytes over{kUS, 0, 333'333};
  rating_input in = home_usage(kMB + 333'333);
  in.away = &over;
  in.away_count = 1;
  EXPECT_EQ(r.rate(in, 30, 100'000, false).zones[0].charge_over, 297'000);
}

TEST(Rater, APooledProductsSimsCostNothingOnTheirOwn) {
  const rater r(test_table(), kMB);
  EXPECT_EQ(r.rate(home_usage(50 * kMB), 30, 0, true).total, 0);
  EXPECT_EQ(r.rate(home_usage(50 * kMB), 30, 0, true).zones[0].bytes_within, 50 * kMB);
  // Bytes beyond a pool: the home zone's per MB to the byte: 1.5 MB * 0.99 = 1.485.
  EXPECT_EQ(r.pool_overage(kUS, 1'500'000), 1'485'000);
}

}  // namespace
}  // namespace simcap
