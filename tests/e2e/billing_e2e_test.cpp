// Rating as a billing system reads it from simcapd (SPEC §11, API.md "Rating"): import SIMs,
// stream records over the feed port, read the estimated cost so far, move the simulated clock
// past the anniversary, and read the closed period's invoice as JSON and as CSV.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "http_client.hpp"
#include "process.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

std::int64_t micros_of(const json::value& money) {
  return money.at("micros").to_number<std::int64_t>();
}

class BillingDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("simcap-billing-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(BillingDaemon, EstimatedCostThenTheClosedPeriodsInvoiceAsJsonAndCsv) {
  {
    child w({SIMCAP_FEED_BIN, "--write-iccids", (dir_ / "iccids.txt").string(), "--sims", "3",
             "--quiet"},
            dir_ / "w.out", dir_ / "w.err");
    ASSERT_EQ(w.wait(60s), 0);
  }
  std::vector<std::string> sims;
  {
    std::ifstream in(dir_ / "iccids.txt");
    for (std::string l; std::getline(in, l);) sims.push_back(l);
  }
  ASSERT_EQ(sims.size(), 3u);
  std::ofstream(dir_ / "rates.toml") << "currency = \"USD\"\nincluded_mb = 1\n"
                                     << "[[zones]]\nid = \"zone2\"\nbase = \"2.99\"\n"
                                     << "per_mb = \"0.99\"\ncountries = [\"US\", \"TR\"]\n"
                                     << "[[zones]]\nid = \"zone3\"\nbase = \"3.99\"\n"
                                     << "per_mb = \"1.49\"\ncountries = [\"CA\"]\n";
  std::ofstream(dir_ / "simcapd.toml")
      << "[server]\ndata_dir = \"" << (dir_ / "data").string() << "\"\n"
      << "[[tokens]]\ntoken = \"admin\"\nscope = \"admin\"\n"
      << "[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
      << "[[products]]\nid = \"acme\"\ndefault_mb_limit = 5\ncountry = \"US\"\n"
      << "[billing]\nrates_file = \"rates.toml\"\n";
  child d({SIMCAPD_BIN, "--config", (dir_ / "simcapd.toml").string(), "--feed", "127.0.0.1:0",
           "--http", "127.0.0.1:0", "--clock", "simulated"},
          dir_ / "d.out", dir_ / "d.err");
  auto http_port = d.wait_for_line("http listening on 127.0.0.1:", 20s);
  auto feed_port = d.wait_for_line("feed listening on 127.0.0.1:", 20s);
  ASSERT_TRUE(http_port && feed_port) << d.err();
  http_client c(static_cast<std::uint16_t>(std::stoi(*http_port)));
  ASSERT_EQ(c.request("POST", "/v1/products/acme/sims", read_file(dir_ / "iccids.txt"), "admin",
                      "text/plain")
                .status,
            200u);
  auto product = json::parse(c.request("GET", "/v1/products/acme", "", "admin").body);
  const std::string start(product.at("period_start").as_string());
  const std::string end(product.at("period_end").as_string());

  // SIM 0: 3 MB at home; SIM 1: 2 MB in Canada (6 MB, over its 5 MB limit by 1 MB); SIM 2: 10
  // bytes on a network nobody has (unknown: the highest per_mb).
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  {
    std::ofstream r(dir_ / "records.jsonl");
    auto line = [&](const std::string& iccid, long long bytes, const char* net) {
      r << R"({"iccid":")" << iccid << R"(","end":)" << now << R"(,"down":)" << bytes
        << R"(,"mccmnc":")" << net << "\"}\n";
    };
    line(sims[0], 3'000'000, "310410");
    line(sims[1], 4'000'000, "302220");
    line(sims[1], 2'000'000, "302220");
    line(sims[2], 10, "99999");
  }
  child f({SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + *feed_port, "--feed", "carrier-a",
           "--token", "feed-secret", "--replay", (dir_ / "records.jsonl").string()},
          dir_ / "f.out", dir_ / "f.err");
  ASSERT_EQ(f.wait(60s), 0) << f.out() << f.err();

  // By hand: SIM 0 2.99 + 2 MB at 0.99 = 4.97; SIM 1 2.99 + 5 MB within in Canada at 1.49
  // (7.45) + 1 MB over at 1.49 (1.49) = 11.93; SIM 2 2.99 + 1 MB at 1.49 = 4.48. 21.38 in all.
  auto fleet = json::parse(c.request("GET", "/v1/products/acme/sims/data_usage", "", "admin").body);
  EXPECT_EQ(micros_of(fleet.at("estimated_cost")), 21'380'000) << fleet;
  EXPECT_EQ(fleet.at("estimated_cost").at("amount"), "21.38");
  EXPECT_EQ(fleet.at("estimated_cost").at("currency"), "USD");
  auto one = json::parse(c.request("GET", "/v1/sims/" + sims[1], "", "admin").body);
  EXPECT_EQ(one.at("zone"), "zone2") << one;
  EXPECT_EQ(micros_of(one.at("estimated_cost")), 11'930'000) << one;
  bool canada = false;
  for (const auto& z : one.at("by_zone").as_array()) {
    if (z.at("zone") != "zone3") continue;
    canada = true;
    EXPECT_EQ(z.at("bytes_within").to_number<std::uint64_t>(), 5'000'000u);
    EXPECT_EQ(z.at("bytes_over").to_number<std::uint64_t>(), 1'000'000u);
  }
  EXPECT_TRUE(canada) << one;

  // Past the anniversary: the period closes; its invoice is the same money.
  ASSERT_EQ(c.request("POST", "/v1/admin/clock", R"({"now":")" + end + R"("})", "admin").status,
            200u);
  auto periods = json::parse(c.request("GET", "/v1/products/acme/periods", "", "admin").body);
  ASSERT_EQ(periods.at("periods").as_array().size(), 1u) << periods;
  EXPECT_EQ(micros_of(periods.at("periods").at(0).at("estimated_cost")), 21'380'000) << periods;
  auto inv = json::parse(c.request("GET", "/v1/products/acme/periods/" + start, "", "admin").body);
  ASSERT_TRUE(inv.is_object()) << inv;
  EXPECT_EQ(inv.at("product"), "acme");
  EXPECT_EQ(inv.at("currency"), "USD");
  const auto& summary = inv.at("summary");
  EXPECT_EQ(micros_of(summary.at("total")), 21'380'000) << inv;
  EXPECT_EQ(micros_of(summary.at("base")), 3 * 2'990'000);
  EXPECT_EQ(micros_of(summary.at("data_over_limits")), 1'490'000);
  EXPECT_EQ(micros_of(summary.at("roaming")), 7'450'000 + 1'490'000 + 1'490'000);
  EXPECT_EQ(summary.at("chargeable_sims").to_number<int>(), 3);
  // The totals are the sums of the lines.
  std::int64_t base = 0, total = 0;
  std::map<std::string, std::int64_t> by_sim;
  for (const auto& l : inv.at("sims").as_array()) {
    base += micros_of(l.at("base"));
    total += micros_of(l.at("total"));
    std::int64_t zones = 0;
    for (const auto& z : l.at("zones").as_array())
      zones += micros_of(z.at("charge_within")) + micros_of(z.at("charge_over"));
    EXPECT_EQ(micros_of(l.at("base")) + zones, micros_of(l.at("total"))) << l;
    by_sim[std::string(l.at("iccid").as_string())] = micros_of(l.at("total"));
  }
  EXPECT_EQ(base, micros_of(summary.at("base")));
  EXPECT_EQ(total, micros_of(summary.at("total")));
  EXPECT_EQ(by_sim[sims[0]], 4'970'000);
  EXPECT_EQ(by_sim[sims[1]], 11'930'000);
  EXPECT_EQ(by_sim[sims[2]], 4'480'000);

  // The CSV has the same lines and money.
  auto csv = c.request("GET", "/v1/products/acme/periods/" + start + "?format=csv", "", "admin");
  EXPECT_EQ(csv.status, 200u);
  EXPECT_NE(csv.content_type.find("text/csv"), std::string::npos);
  std::istringstream rows(csv.body);
  std::string header;
  std::getline(rows, header);
  EXPECT_EQ(header,
            "iccid,country,zone,days_charged,base,bytes_within,bytes_over,bytes_roaming,"
            "data_charge,total");
  std::size_t n = 0;
  for (std::string row; std::getline(rows, row); ++n) {
    std::vector<std::string> cells;
    std::istringstream cs(row);
    for (std::string cell; std::getline(cs, cell, ',');) cells.push_back(cell);
    ASSERT_EQ(cells.size(), 10u) << row;
    const std::int64_t t = by_sim.at(cells[0]);
    char want[32];
    std::snprintf(want, sizeof want, "%lld.%06lld", static_cast<long long>(t / 1'000'000),
                  static_cast<long long>(t % 1'000'000));
    EXPECT_EQ(cells[9], want) << row;
    EXPECT_EQ(cells[1], "US") << row;
    if (cells[0] == sims[1]) {
      EXPECT_EQ(cells[5], "5000000");
      EXPECT_EQ(cells[6], "1000000");
      EXPECT_EQ(cells[7], "6000000");
    }
  }
  EXPECT_EQ(n, 3u) << csv.body;
  auto by_accept = c.request("GET", "/v1/products/acme/periods/" + start, "", "admin");
  EXPECT_EQ(by_accept.content_type.find("text/csv"), std::string::npos);  // JSON unless asked
  d.signal(SIGTERM);
  EXPECT_EQ(d.wait(30s), 0);
}

}  // namespace
}  // namespace simcap::testing
