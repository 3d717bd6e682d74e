// The rate table file and the network data set as simcapd reads them: the shipped example
// loads, every problem of a broken table is named by its key, Debian's serviceproviders.xml
// maps real networks to their countries.
#include "rates.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "countries.hpp"
#include "networks.hpp"

namespace simcap {
namespace {

bool has_error(const std::vector<std::string>& errors, const std::string& key) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.starts_with(key + ":"); });
}

TEST(Rates, TheShippedExampleLoads) {
  auto countries = load_iso3166();
  auto currencies = load_iso4217();
  ASSERT_TRUE(countries && currencies);
  auto rt = load_rates(SIMCAP_SOURCE_DIR "/config/rates.toml", *countries, *currencies);
  ASSERT_TRUE(rt) << rt.error().front();
  EXPECT_EQ(rt->currency, "USD");
  EXPECT_EQ(rt->included_mb, 1u);
  const int us = rt->zone_of_country("US");
  ASSERT_GE(us, 0);
  EXPECT_EQ(rt->zone_of_country("TR"), us);
  EXPECT_EQ(rt->zone_of_country("ZA"), us);
  EXPECT_EQ(rt->zones[static_cast<std::size_t>(us)].base, 2'990'000);
  EXPECT_EQ(rt->zones[static_cast<std::size_t>(us)].per_mb, 990'000);
  EXPECT_GE(rt->zone_of_country("CA"), 0);
  EXPECT_NE(rt->zone_of_country("CA"), us);
}

TEST(Rates, EveryProblemIsNamedByItsKey) {
  auto countries = load_iso3166();
  auto currencies = load_iso4217();
  ASSERT_TRUE(countries && currencies);
  auto rt = parse_rates(R"(
currency = "XYZ"
included_mb = -1
colour = "red"
[[zones]]
id = "unknown"
base = "2.999999999"
per_mb = 1
countries = ["US", "QQ"]
[[zones]]
id = "b"
base = "1"
countries = ["US"]
[[volume_tiers]]
min_sims = 100
discount = "1.5"
[[volume_tiers]]
min_sims = 50
discount = "0.1"
[mcc]
"31" = "US"
"310" = "Nowhere"
)",
                        *countries, *currencies);
  ASSERT_FALSE(rt);
  for (const char* key :
       {"rates.currency", "rates.included_mb", "rates.colour", "rates.zones[0].id",
        "rates.zones[0].base", "rates.zones[0].per_mb", "rates.zones[0].countries",
        "rates.zones[1].per_mb", "rates.zones[1].countries", "rates.volume_tiers[0].discount",
        "rates.volume_tiers[1].min_sims", "rates.mcc.31", "rates.mcc.310"}) {
    EXPECT_TRUE(has_error(rt.error(), key)) << key;
  }
}

TEST(Networks, DebiansDataSetMapsNetworksToCountries) {
  auto countries = load_iso3166();
  ASSERT_TRUE(countries);
  auto nets = load_service_providers(kServiceProvidersFile, *countries);
  ASSERT_TRUE(nets) << nets.error();
  EXPECT_GT(nets->size(), 500u);
  const network_countries nc(*nets, {{"313", "US"}});
  const auto key = [](const char* d) { return network_countries::key_of(d); };
  EXPECT_EQ(nc.country_of(key("310410")), "US");  // AT&T
  EXPECT_EQ(nc.country_of(key("20404")), "NL");   // Vodafone NL
  EXPECT_EQ(nc.country_of(key("23415")), "GB");   // Vodafone UK
  EXPECT_EQ(nc.country_of(key("28601")), "TR");   // Turkcell
  EXPECT_EQ(nc.country_of(key("302999")), "CA");  // not listed: its MCC's country
  EXPECT_EQ(nc.country_of(key("23403")), "");     // listed under Jersey and Guernsey
  EXPECT_EQ(nc.country_of(key("313100")), "US");  // the [mcc] override
  EXPECT_FALSE(load_service_providers("/nonexistent.xml", *countries));
}

}  // namespace
}  // namespace simcap
