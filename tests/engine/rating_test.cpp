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
}

}  // namespace
}  // namespace simcap
