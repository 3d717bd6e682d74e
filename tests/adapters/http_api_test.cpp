// The HTTP API as a function from request to response: routing, auth, each handler's answers
// and every error path.
#include "http/http_api.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <future>
#include <set>

#include "countries.hpp"
#include "engine_fixture.hpp"
#include "error_text.hpp"
#include "http/routes.hpp"

namespace simcap::testing {
namespace {

namespace json = boost::json;

engine_options with_iso_countries() {
  engine_options o;
  o.countries = load_iso3166().value();  // Debian's iso-codes, as simcapd loads them
  return o;
}

class HttpApi : public engine_fixture {
 protected:
  HttpApi() : engine_fixture(with_iso_countries()) { make_api(true); }
  void make_api(bool simulated) {
    std::vector<token_config> tokens{
        {"admin-token", true, ""}, {"acme-token", false, "acme"}, {"other-token", false, "other"}};
    api_ = std::make_unique<http_api>(*eng_, tokens, nullptr, simulated);
    api_->set_ready(true);
  }
  void SetUp() override {
    make_product("acme");
    make_product("other");
    import("acme", {1, 2, 3, 4, 5});
    import("other", {9});
  }
  http_response call(std::string method, std::string target, std::string body = "",
                     std::string token = "admin-token",
                     std::string content_type = "application/json") {
    http_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    if (!token.empty()) r.authorization = "Bearer " + token;
    r.content_type = std::move(content_type);
    r.body = std::move(body);
    return api_->handle(r);
  }
  static json::object body_of(const http_response& r) { return json::parse(r.body).as_object(); }
  static std::string error_of(const http_response& r) {
    return std::string(body_of(r).at("error").as_string());
  }
  std::string sim_path(std::uint64_t n) { return "/v1/sims/" + test_iccid_text(n); }

  std::unique_ptr<http_api> api_;
};

TEST_F(HttpApi, HealthReadinessAndMetricsNeedNoToken) {
  EXPECT_EQ(call("GET", "/healthz", "", "").status, 200u);
  EXPECT_EQ(call("GET", "/readyz", "", "").status, 200u);
  api_->set_ready(false);
  auto r = call("GET", "/readyz", "", "");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(error_of(r), "not_ready");
  auto m = call("GET", "/metrics", "", "");
  EXPECT_EQ(m.status, 200u);
  EXPECT_NE(m.content_type.find("text/plain"), std::string::npos);
  EXPECT_NE(m.body.find("simcap_sims{state=\"active\"} 6"), std::string::npos) << m.body;
  EXPECT_NE(m.body.find("simcap_records_rejected_total{reason=\"bad_iccid\"} 0"),
            std::string::npos);
}

TEST_F(HttpApi, MissingOrWrongTokenIs401) {
  for (auto token : {"", "nope"}) {
    auto r = call("GET", sim_path(1), "", token);
    EXPECT_EQ(r.status, 401u);
    EXPECT_EQ(error_of(r), "invalid_token");
    EXPECT_FALSE(body_of(r).at("ok").as_bool());
    EXPECT_TRUE(body_of(r).contains("error_description"));
  }
}

TEST_F(HttpApi, AccessTokenQueryParameterWorks) {
  EXPECT_EQ(call("GET", sim_path(1) + "?access_token=admin-token", "", "").status, 200u);
}

TEST_F(HttpApi, UnknownRouteIs404AndWrongMethodIs405) {
  EXPECT_EQ(call("GET", "/v1/nothing").status, 404u);
  EXPECT_EQ(error_of(call("GET", "/v1/nothing")), "not_found");
  auto r = call("PATCH", sim_path(1));
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(error_of(r), "method_not_allowed");
  EXPECT_EQ(call("POST", "/v1/sims").status, 405u);
}

TEST_F(HttpApi, GetsASimWithParticleFieldsAndExtras) {
  feed({rec(1, 1234, kStart)});
  auto r = call("GET", sim_path(1));
  ASSERT_EQ(r.status, 200u);
  auto o = body_of(r);
  EXPECT_EQ(o.at("_id").as_string(), test_iccid_text(1));
  EXPECT_EQ(o.at("iccid").as_string(), test_iccid_text(1));
  EXPECT_EQ(o.at("status").as_string(), "active");
  EXPECT_EQ(o.at("mb_limit").to_number<int>(), 5);
  EXPECT_EQ(o.at("product_id").as_string(), "acme");
  EXPECT_EQ(o.at("first_activated_on").as_string(), "2025-01-15T10:00:00Z");
  EXPECT_EQ(o.at("state").as_string(), "active");
  EXPECT_EQ(o.at("usage_bytes").to_number<int>(), 1234);
  EXPECT_EQ(o.at("limit_bytes").to_number<int>(), 5000000);
  EXPECT_EQ(o.at("period_start").as_string(), "2025-01-15T00:00:00Z");
  EXPECT_EQ(o.at("period_end").as_string(), "2025-02-15T00:00:00Z");
  // The product form answers the same.
  EXPECT_EQ(call("GET", "/v1/products/acme/sims/" + test_iccid_text(1)).body, r.body);
}

TEST_F(HttpApi, BadIccidIs400) {
  auto r = call("GET", "/v1/sims/8901");
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(error_of(r), "invalid_iccid");
  EXPECT_NE(body_of(r).at("error_description").as_string().find("19 or 20"), std::string::npos);
}

TEST_F(HttpApi, HeadAnswers204Or404) {
  EXPECT_EQ(call("HEAD", sim_path(1)).status, 204u);
  EXPECT_EQ(call("HEAD", sim_path(77)).status, 404u);
  EXPECT_EQ(call("HEAD", "/v1/products/acme/sims/" + test_iccid_text(9)).status, 404u);
}

TEST_F(HttpApi, ProductTokenSeesOnlyItsProduct) {
  EXPECT_EQ(call("GET", sim_path(1), "", "acme-token").status, 200u);
  EXPECT_EQ(call("GET", sim_path(9), "", "acme-token").status, 404u);
  EXPECT_EQ(call("GET", "/v1/products/other/sims/" + test_iccid_text(9), "", "acme-token").status,
            404u);
  EXPECT_EQ(call("PUT", sim_path(9), R"({"action":"deactivate"})", "acme-token").status, 404u);
  EXPECT_EQ(call("DELETE", sim_path(9), "", "acme-token").status, 404u);
  EXPECT_EQ(sim(9).state, sim_state::active);
  auto list = body_of(call("GET", "/v1/sims", "", "acme-token"));
  EXPECT_EQ(list.at("sims").as_array().size(), 5u);
  EXPECT_EQ(call("GET", "/v1/products/other/sims", "", "acme-token").status, 404u);
  EXPECT_EQ(call("GET", "/v1/feeds", "", "acme-token").status, 403u);
  EXPECT_EQ(call("PUT", "/v1/products/newone", "{}", "acme-token").status, 404u);
  auto user = body_of(call("GET", "/v1/user", "", "acme-token"));
  EXPECT_EQ(user.at("product").as_string(), "acme");
}

TEST_F(HttpApi, ListsWithPagingAndFilters) {
  auto r = body_of(call("GET", "/v1/products/acme/sims?page=2&per_page=2"));
  auto sims = r.at("sims").as_array();
  ASSERT_EQ(sims.size(), 2u);
  EXPECT_EQ(sims[0].at("iccid").as_string(), test_iccid_text(3));
  EXPECT_EQ(r.at("meta").at("total_pages").to_number<int>(), 3);
  EXPECT_EQ(body_of(call("GET", "/v1/products/acme/sims?perPage=4")).at("sims").as_array().size(),
            4u);
  ASSERT_EQ(call("PUT", sim_path(2), R"({"action":"deactivate"})").status, 200u);
  auto d = body_of(call("GET", "/v1/products/acme/sims?status=inactive_user_deactivated"));
  ASSERT_EQ(d.at("sims").as_array().size(), 1u);
  EXPECT_EQ(d.at("sims").as_array()[0].at("iccid").as_string(), test_iccid_text(2));
  auto one = body_of(call("GET", "/v1/products/acme/sims?iccid=" + test_iccid_text(4)));
  EXPECT_EQ(one.at("sims").as_array().size(), 1u);
  EXPECT_EQ(body_of(call("GET", "/v1/sims")).at("meta").at("total_pages").to_number<int>(), 1);
  EXPECT_EQ(call("GET", "/v1/products/acme/sims?per_page=0").status, 400u);
  EXPECT_EQ(call("GET", "/v1/products/acme/sims?status=sleepy").status, 400u);
  EXPECT_EQ(call("GET", "/v1/products/nope/sims").status, 404u);
}

TEST_F(HttpApi, ImportsFromJsonFormTextAndMultipart) {
  std::string a = test_iccid_text(20), b = test_iccid_text(21), c = test_iccid_text(22),
              d = test_iccid_text(23);
  auto j = body_of(call(
      "POST", "/v1/products/acme/sims",
      R"({"sims":[")" + a + R"(","8901","123",")" + test_iccid_text(1) + R"("],"country":"US"})"));
  EXPECT_EQ(j.at("imported").to_number<int>(), 1);
  EXPECT_EQ(j.at("already_present").to_number<int>(), 1);
  ASSERT_EQ(j.at("invalid").as_array().size(), 2u);
  EXPECT_EQ(j.at("invalid").as_array()[0].at("line").to_number<int>(), 2);
  EXPECT_EQ(j.at("invalid").as_array()[0].at("value").as_string(), "8901");
  auto f = body_of(call("POST", "/v1/products/acme/sims", "sims%5B%5D=" + b + "&sims%5B%5D=" + c,
                        "admin-token", "application/x-www-form-urlencoded"));
  EXPECT_EQ(f.at("imported").to_number<int>(), 2);
  auto t =
      body_of(call("POST", "/v1/products/acme/sims", "# my SIMs\n" + d + ",batch 7\nnot-an-iccid\n",
                   "admin-token", "text/plain"));
  EXPECT_EQ(t.at("imported").to_number<int>(), 1);
  ASSERT_EQ(t.at("invalid").as_array().size(), 1u);
  EXPECT_EQ(t.at("invalid").as_array()[0].at("line").to_number<int>(), 3);
  std::string e = test_iccid_text(24);
  std::string mp =
      "--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"sims.txt\"\r\n"
      "Content-Type: text/plain\r\n\r\n" +
      e + "\n" + test_iccid_text(9) + "\r\n--XYZ--\r\n";
  auto m = body_of(call("POST", "/v1/products/acme/sims", mp, "admin-token",
                        "multipart/form-data; boundary=XYZ"));
  EXPECT_EQ(m.at("imported").to_number<int>(), 1);
  ASSERT_EQ(m.at("invalid").as_array().size(), 1u);
  EXPECT_EQ(m.at("invalid").as_array()[0].at("reason").as_string(), "belongs_to_other_product");
  EXPECT_EQ(sim(24).state, sim_state::active);
  EXPECT_EQ(call("POST", "/v1/products/acme/sims", "{\"sims\":5}").status, 400u);
  EXPECT_EQ(call("POST", "/v1/products/acme/sims", "{not json").status, 400u);
  // Issued on request.
  auto iss = body_of(call("POST", "/v1/products/acme/sims",
                          R"({"sims":[")" + test_iccid_text(25) + R"("],"state":"issued"})"));
  EXPECT_EQ(iss.at("imported").to_number<int>(), 1);
  EXPECT_EQ(sim(25).state, sim_state::issued);
}

TEST_F(HttpApi, PutChangesLimitAndStateAndRefusesForbiddenTransitions) {
  feed({rec(1, 6'000'000, kStart)});
  auto r = call("PUT", sim_path(1), R"({"action":"activate"})");
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(error_of(r), "limit_reached");
  EXPECT_EQ(body_of(r).at("state").as_string(), "paused");
  auto ok = call("PUT", sim_path(1), R"({"action":"activate","mb_limit":10})");
  ASSERT_EQ(ok.status, 200u);
  EXPECT_EQ(body_of(ok).at("status").as_string(), "active");
  EXPECT_EQ(body_of(ok).at("mb_limit").to_number<int>(), 10);
  ASSERT_EQ(call("DELETE", sim_path(2)).status, 204u);
  auto f = call("PUT", sim_path(2), R"({"action":"reactivate"})");
  EXPECT_EQ(f.status, 409u);
  EXPECT_EQ(error_of(f), "invalid_transition");
  EXPECT_EQ(body_of(f).at("state").as_string(), "released");
  EXPECT_TRUE(body_of(f).at("allowed_actions").as_array().empty());
  EXPECT_EQ(call("DELETE", sim_path(2)).status, 409u);
  EXPECT_EQ(call("PUT", sim_path(3), "{oops").status, 400u);
  EXPECT_EQ(call("PUT", sim_path(3), R"({"mb_limit":0})").status, 400u);
  EXPECT_EQ(call("PUT", sim_path(3), R"({"action":"explode"})").status, 400u);
  EXPECT_EQ(call("PUT", sim_path(3), R"({})").status, 400u);
  EXPECT_EQ(call("PUT", sim_path(77), R"({"action":"deactivate"})").status, 404u);
}

TEST_F(HttpApi, ProductsCanBeCreatedChangedAndRead) {
  auto r = call("PUT", "/v1/products/fresh",
                R"({"default_mb_limit":20,"alert_thresholds":[0.5,0.9],"country":"DE",)"
                R"("alert_emails":["ops@example.com"]})");
  ASSERT_EQ(r.status, 200u);
  auto o = body_of(r);
  EXPECT_EQ(o.at("default_mb_limit").to_number<int>(), 20);
  EXPECT_EQ(o.at("alert_emails"), boost::json::parse(R"(["ops@example.com"])"));
  EXPECT_EQ(call("PUT", "/v1/products/fresh", R"({"alert_emails":["no at sign"]})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/fresh", R"({"alert_emails":"ops@example.com"})").status,
            400u);
  EXPECT_TRUE(o.at("anniversary_day").is_null());
  auto acme = body_of(call("GET", "/v1/products/acme"));
  EXPECT_EQ(acme.at("anniversary_day").to_number<int>(), 15);
  EXPECT_EQ(acme.at("period_start").as_string(), "2025-01-15T00:00:00Z");
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"default_mb_limit":0})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"alert_thresholds":[0.9,0.5]})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"pool_mb":-1})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"pool_action":"stop"})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"pool_price":"9,90"})").status, 400u);
  auto pooled = body_of(call("PUT", "/v1/products/acme",
                             R"({"pool_mb":100,"pool_action":"pause","pool_price":"9.9"})"));
  EXPECT_EQ(pooled.at("pool_mb").to_number<int>(), 100);
  EXPECT_EQ(pooled.at("pool_action").as_string(), "pause");
  EXPECT_EQ(pooled.at("pool_price").as_string(), "9.900000");
  EXPECT_EQ(call("GET", "/v1/products/missing").status, 404u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"default_mb_limit":8})", "acme-token").status,
            200u);
}

TEST_F(HttpApi, EventsAfterAnIdWithFilters) {
  feed({rec(1, 6'000'000, kStart)});
  auto all = body_of(call("GET", "/v1/events?after=0&limit=3")).at("events").as_array();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].at("id").to_number<int>(), 1);
  EXPECT_EQ(all[0].at("type").as_string(), "activated");
  auto paused = body_of(call("GET", "/v1/events?type=paused")).at("events").as_array();
  ASSERT_EQ(paused.size(), 1u);
  EXPECT_EQ(paused[0].at("iccid").as_string(), test_iccid_text(1));
  EXPECT_EQ(paused[0].at("reason").as_string(), "data_limit");
  EXPECT_EQ(paused[0].at("usage_bytes").to_number<int>(), 6000000);
  EXPECT_EQ(paused[0].at("limit_bytes").to_number<int>(), 5000000);
  EXPECT_EQ(paused[0].at("product").as_string(), "acme");
  auto last = paused[0].at("id").to_number<std::uint64_t>();
  EXPECT_TRUE(body_of(call("GET", "/v1/events?after=" + std::to_string(last)))
                  .at("events")
                  .as_array()
                  .empty());
  auto by_sim =
      body_of(call("GET", "/v1/events?iccid=" + test_iccid_text(1))).at("events").as_array();
  EXPECT_EQ(by_sim.size(), 3u);  // activated, alert, paused
  // A product token sees only its product's events.
  auto other = body_of(call("GET", "/v1/events", "", "other-token")).at("events").as_array();
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].at("iccid").as_string(), test_iccid_text(9));
  EXPECT_EQ(call("GET", "/v1/events?type=nope").status, 400u);
  EXPECT_EQ(call("GET", "/v1/events?limit=10001").status, 400u);
  // Nothing new and a wait: the server is told to ask again as events land, for 5 s.
  auto w = call("GET", "/v1/events?after=" + std::to_string(last) + "&wait=5");
  EXPECT_EQ(w.long_poll, std::chrono::seconds(5));
}

TEST_F(HttpApi, SimulatedClockMovesForwardOnly) {
  feed({rec(1, 6'000'000, kStart)});
  EXPECT_EQ(call("POST", "/v1/admin/clock", R"({"now":"2025-01-01T00:00:00Z"})").status, 400u);
  EXPECT_EQ(call("POST", "/v1/admin/clock", R"({"now":"tomorrow"})").status, 400u);
  EXPECT_EQ(
      call("POST", "/v1/admin/clock", R"({"now":"2025-02-15T00:00:00Z"})", "acme-token").status,
      403u);
  auto r = call("POST", "/v1/admin/clock", R"({"now":"2025-02-15T00:00:00Z"})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(body_of(r).at("now").as_string(), "2025-02-15T00:00:00Z");
  EXPECT_EQ(sim(1).state, sim_state::active);  // unpaused at the anniversary
  make_api(false);
  EXPECT_EQ(call("POST", "/v1/admin/clock", R"({"now":"2026-01-01T00:00:00Z"})").status, 404u);
}

TEST_F(HttpApi, CountsRequestsByRoute) {
  http_request r;
  r.method = "GET";
  r.target = "/v1/products/acme/sims/" + test_iccid_text(1) + "?x=1";
  EXPECT_EQ(http_api::route_of(r), "/v1/products/:p/sims/:iccid");
  api_->count(http_api::route_of(r), 200);
  EXPECT_NE(api_->http_metrics().find(
                "simcap_http_requests_total{route=\"/v1/products/:p/sims/:iccid\",code=\"200\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST_F(HttpApi, SimDataUsageByDay) {
  feed({rec(1, 2'000'000, kStart)});
  ASSERT_TRUE(eng_->advance_clock(kStart + 86400 + 60));
  feed({rec(1, 500'000, kStart + 86400)});
  for (std::string path : {sim_path(1) + "/data_usage",
                           "/v1/products/acme/sims/" + test_iccid_text(1) + "/data_usage"}) {
    auto r = call("GET", path);
    ASSERT_EQ(r.status, 200u) << path << " " << r.body;
    auto o = body_of(r);
    EXPECT_EQ(o.at("iccid").as_string(), test_iccid_text(1));
    auto days = o.at("usage_by_day").as_array();
    ASSERT_EQ(days.size(), 2u);
    EXPECT_EQ(days[0].at("date").as_string(), "2025-01-15");
    EXPECT_DOUBLE_EQ(days[0].at("mbs_used").to_number<double>(), 2.0);
    EXPECT_EQ(days[1].at("date").as_string(), "2025-01-16");
    EXPECT_DOUBLE_EQ(days[1].at("mbs_used").to_number<double>(), 0.5);
    EXPECT_DOUBLE_EQ(days[1].at("mbs_used_cumulative").to_number<double>(), 2.5);
    EXPECT_EQ(o.at("usage_bytes").to_number<int>(), 2'500'000);
    EXPECT_EQ(o.at("period_start").as_string(), "2025-01-15T00:00:00Z");
  }
  EXPECT_EQ(call("GET", "/v1/products/other/sims/" + test_iccid_text(1) + "/data_usage").status,
            404u);
  EXPECT_EQ(call("GET", "/v1/sims/" + test_iccid_text(1) + "/data_usage", "", "other-token").status,
            404u);
}

TEST_F(HttpApi, FleetDataUsage) {
  feed({rec(1, 6'000'000, kStart), rec(2, 1'000'000, kStart)});
  auto r = call("GET", "/v1/products/acme/sims/data_usage");
  ASSERT_EQ(r.status, 200u) << r.body;
  auto o = body_of(r);
  EXPECT_DOUBLE_EQ(o.at("total_mbs_used").to_number<double>(), 7.0);
  EXPECT_EQ(o.at("total_active_sim_cards").to_number<int>(), 5);  // 4 active + 1 paused
  EXPECT_EQ(o.at("paused_sim_cards").to_number<int>(), 1);
  // Unused but charged: active with no usage for [billing] unused_after (7 days) of the period.
  EXPECT_EQ(o.at("unused_charged_sim_cards").to_number<int>(), 0);
  auto days = o.at("usage_by_day").as_array();
  ASSERT_EQ(days.size(), 1u);
  EXPECT_DOUBLE_EQ(days[0].at("mbs_used").to_number<double>(), 7.0);
  auto hours = o.at("usage_by_hour").as_array();
  ASSERT_EQ(hours.size(), 11u);  // 00:00 to 10:00 of the first day
  EXPECT_EQ(hours[10].at("bytes").to_number<int>(), 7'000'000);
  EXPECT_FALSE(o.contains("estimated_cost"));  // no rate table: absent, never made up
  EXPECT_EQ(call("GET", "/v1/products/acme/sims/data_usage", "", "other-token").status, 404u);
  ASSERT_TRUE(eng_->advance_clock(kStart + 8 * 86400));
  auto later = body_of(call("GET", "/v1/products/acme/sims/data_usage"));
  EXPECT_EQ(later.at("unused_charged_sim_cards").to_number<int>(), 3);
  auto unused = body_of(call("GET", "/v1/products/acme/sims?unused=true"));
  EXPECT_EQ(unused.at("sims").as_array().size(), 3u) << unused;
  EXPECT_EQ(call("GET", "/v1/sims?unused=true").status, 400u);
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST_F(HttpApi, ClosedPeriodsNewestFirstAndItemized) {
  feed({rec(1, 3'000'000, kStart), rec(2, 1'000'000, kStart)});
  ASSERT_TRUE(eng_->advance_clock(kStart + 40 * 86400));  // past Feb 15
  feed({rec(1, 10, kStart + 40 * 86400)});
  ASSERT_TRUE(eng_->advance_clock(kStart + 70 * 86400));  // past Mar 15
  auto list = body_of(call("GET", "/v1/products/acme/periods")).at("periods").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("start").as_string(), "2025-02-15T00:00:00Z");
  EXPECT_EQ(list[1].at("start").as_string(), "2025-01-15T00:00:00Z");
  EXPECT_EQ(list[1].at("end").as_string(), "2025-02-15T00:00:00Z");
  EXPECT_EQ(list[1].at("total_bytes").to_number<int>(), 4'000'000);
  EXPECT_EQ(list[1].at("chargeable_sims").to_number<int>(), 5);
  EXPECT_FALSE(list[1].as_object().contains("estimated_cost"));
  auto one = body_of(call("GET", "/v1/products/acme/periods/2025-01-15T00:00:00Z"));
  auto sims = one.at("sims").as_array();
  ASSERT_EQ(sims.size(), 5u);
  EXPECT_EQ(sims[0].at("iccid").as_string(), test_iccid_text(1));
  EXPECT_EQ(sims[0].at("usage_bytes").to_number<int>(), 3'000'000);
  EXPECT_EQ(
      body_of(call("GET", "/v1/products/acme/periods/2025-01-15")).at("sims").as_array().size(),
      5u);
  EXPECT_EQ(call("GET", "/v1/products/acme/periods/2025-01-16").status, 404u);
  EXPECT_EQ(call("GET", "/v1/products/acme/periods/someday").status, 400u);
  EXPECT_EQ(call("GET", "/v1/products/acme/periods", "", "other-token").status, 404u);
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST_F(HttpApi, NumbersWithFractionsArePlainDecimals) {
  auto r = call("PUT", "/v1/products/acme", R"({"alert_thresholds":[0.8,0.95]})");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("\"alert_thresholds\":[0.8,0.95]"), std::string::npos) << r.body;
  feed({rec(1, 1'234'567, kStart)});
  auto u = call("GET", sim_path(1) + "/data_usage");
  EXPECT_NE(u.body.find("\"mbs_used\":1.234567"), std::string::npos) << u.body;
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST_F(HttpApi, ShardReadsAnswerAsynchronouslyTheSameAsSynchronously) {
  feed({rec(1, 777, kStart)});
  auto async_call = [&](const std::string& target,
                        const std::string& token) -> std::optional<http_response> {
    http_request r;
    r.method = "GET";
    r.target = target;
    r.authorization = "Bearer " + token;
    std::promise<http_response> p;
    auto f = p.get_future();
    if (!api_->handle_async(r, [&p](http_response res) { p.set_value(std::move(res)); }))
      return std::nullopt;
    return f.get();
  };
  for (const std::string& target : {sim_path(1), "/v1/products/acme/sims/" + test_iccid_text(1)}) {
    auto a = async_call(target, "admin-token");
    ASSERT_TRUE(a) << target;
    auto b = call("GET", target);
    EXPECT_EQ(a->status, b.status);
    EXPECT_EQ(a->body, b.body);
  }
  auto missing = async_call(sim_path(77), "admin-token");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404u);
  auto other = async_call(sim_path(9), "acme-token");  // another product's SIM
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404u);
  // Fleet usage: every shard adds its part.
  feed({rec(2, 1'000'000, kStart + 3600), rec(9, 5000, kStart)});
  auto fleet = async_call("/v1/products/acme/sims/data_usage", "acme-token");
  ASSERT_TRUE(fleet);
  EXPECT_EQ(fleet->status, 200u);
  EXPECT_EQ(fleet->body, call("GET", "/v1/products/acme/sims/data_usage").body);
  EXPECT_NE(fleet->body.find("\"usage_bytes\":1000777"), std::string::npos) << fleet->body;
  auto unknown = async_call("/v1/products/nope/sims/data_usage", "admin-token");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404u);
  // Everything else is left to handle().
  EXPECT_FALSE(async_call("/v1/products/acme/sims/data_usage", "other-token"));
  EXPECT_FALSE(async_call(sim_path(1), "wrong-token"));
  EXPECT_FALSE(async_call("/v1/sims/8901", "admin-token"));
  EXPECT_FALSE(async_call("/v1/products/other/sims/" + test_iccid_text(9), "acme-token"));
  EXPECT_FALSE(async_call("/v1/sims", "admin-token"));
  EXPECT_FALSE(async_call(sim_path(1) + "/data_usage", "admin-token"));
}

TEST_F(HttpApi, HomeCountryIsKeptPerSim) {
  ASSERT_EQ(call("PUT", "/v1/products/acme", R"({"country":"US"})").status, 200u);
  const std::string a = test_iccid_text(20), b = test_iccid_text(21);
  ASSERT_EQ(
      call("POST", "/v1/products/acme/sims", R"({"sims":[")" + a + R"("],"country":"DE"})").status,
      200u);
  ASSERT_EQ(call("POST", "/v1/products/acme/sims", R"({"sims":[")" + b + R"("]})").status, 200u);
  ASSERT_EQ(call("PUT", "/v1/products/acme", R"({"country":"GB"})").status, 200u);
  EXPECT_EQ(body_of(call("GET", "/v1/sims/" + a)).at("base_country_code").as_string(), "DE");
  EXPECT_EQ(body_of(call("GET", "/v1/sims/" + b)).at("base_country_code").as_string(), "US");
  auto bad = call("POST", "/v1/products/acme/sims",
                  R"({"sims":[")" + test_iccid_text(22) + R"("],"country":"Germany"})");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(call("GET", sim_path(22)).status, 404u);
}

TEST_F(HttpApi, ProductSettingsAreValidatedAndBounded) {
  EXPECT_EQ(
      call("PUT", "/v1/products/acme", R"({"country":")" + std::string(15 << 20, 'C') + R"("})")
          .status,
      400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"country":"XX"})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"country":"us"})").status, 400u);
  EXPECT_EQ(call("PUT", "/v1/products/" + std::string(200, 'p'), R"({})").status, 400u);
  EXPECT_EQ(body_of(call("GET", "/v1/products/acme")).at("country").as_string(), "");
}

// curl -d sends application/x-www-form-urlencoded without escaping "sims[]", and a JSON body
// with the same content type.
TEST_F(HttpApi, ImportAcceptsFormsAndJsonTheWayCurlSendsThem) {
  const std::string form = "sims[]=" + test_iccid_text(30) + "&sims[]=" + test_iccid_text(31);
  auto r = call("POST", "/v1/products/acme/sims", form, "admin-token",
                "application/x-www-form-urlencoded");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(body_of(r).at("imported").as_int64(), 2);
  auto j = call("POST", "/v1/products/acme/sims", R"({"sims":[")" + test_iccid_text(32) + R"("]})",
                "admin-token", "application/x-www-form-urlencoded");
  ASSERT_EQ(j.status, 200u) << j.body;
  EXPECT_EQ(body_of(j).at("imported").as_int64(), 1);
  EXPECT_EQ(call("GET", sim_path(32)).status, 200u);
}

TEST_F(HttpApi, ImportDoesNotTellAProductTokenWhoOwnsASim) {
  const std::string body = R"({"sims":[")" + test_iccid_text(9) + R"("]})";  // SIM 9 is other's
  auto mine = call("POST", "/v1/products/acme/sims", body, "acme-token");
  ASSERT_EQ(mine.status, 200u);
  EXPECT_EQ(body_of(mine).at("invalid").as_array()[0].at("reason").as_string(), "not_available");
  auto admin = call("POST", "/v1/products/acme/sims", body, "admin-token");
  EXPECT_EQ(body_of(admin).at("invalid").as_array()[0].at("reason").as_string(),
            "belongs_to_other_product");
}

TEST_F(HttpApi, InvalidBytesAreNotEchoedRaw) {
  auto r = call("POST", "/v1/products/acme/sims",
                "89\xff\xfe\x01"
                "bad\n",
                "admin-token", "text/plain");
  ASSERT_EQ(r.status, 200u);
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);  // valid JSON text (and so valid UTF-8)
  ASSERT_FALSE(ec) << r.body;
  EXPECT_EQ(v.at("invalid").as_array()[0].at("value").as_string(), "89???bad");
}

TEST_F(HttpApi, SmallValidationGaps) {
  // Thresholds that round to the same per-mille value are one threshold: refused.
  auto th = call("PUT", "/v1/products/acme", R"({"alert_thresholds":[0.9,0.9001]})");
  EXPECT_EQ(th.status, 400u) << th.body;
  // A limit written as 5.0 is 5, for a SIM as for a product.
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"default_mb_limit":7.0})").status, 200u);
  EXPECT_EQ(body_of(call("GET", "/v1/products/acme")).at("default_mb_limit").to_number<int>(), 7);
  EXPECT_EQ(call("PUT", "/v1/products/acme", R"({"default_mb_limit":7.5})").status, 400u);
  EXPECT_EQ(call("PUT", sim_path(1), R"({"mb_limit":5.0})").status, 200u);
  // A page far past the end cannot wrap the offset back into range.
  auto far = call("GET", "/v1/products/acme/sims?page=18446744073709551615&per_page=1000");
  EXPECT_EQ(far.status, 400u);
  auto last = call("GET", "/v1/products/acme/sims?page=1000000000&per_page=1000");
  ASSERT_EQ(last.status, 200u);
  EXPECT_TRUE(body_of(last).at("sims").as_array().empty());
  // A limit change on a released SIM says what was refused.
  ASSERT_EQ(call("DELETE", sim_path(2)).status, 204u);
  auto rel = call("PUT", sim_path(2), R"({"mb_limit":9})");
  EXPECT_EQ(rel.status, 409u);
  EXPECT_NE(std::string(body_of(rel).at("error_description").as_string()).find("data limit"),
            std::string::npos)
      << rel.body;
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

TEST(ErrorText, BothProtocolsEscapeWhatTheyQuote) {
  // The one helper each protocol's errors are written with: quotes, backslashes and control
  // characters in the text still give valid JSON with the text intact.
  const std::string text = "a \"quoted\" \\ text\nwith a newline";
  const json::value http = json::parse(http_error_body("payload_too_large", text));
  EXPECT_EQ(http.at("ok").as_bool(), false);
  EXPECT_EQ(http.at("error").as_string(), "payload_too_large");
  EXPECT_EQ(http.at("error_description").as_string(), text);
  std::string line = feed_error_line("bad_hello", text);
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  const json::value feed = json::parse(line);
  EXPECT_EQ(feed.at("error").at("code").as_string(), "bad_hello");
  EXPECT_EQ(feed.at("error").at("message").as_string(), text);
}

TEST(RouteTable, EveryRouteHasOneNameAndTheMostLiteralMatchWins) {
  std::set<std::string> names;
  for (const auto& r : web::route_table()) {
    EXPECT_TRUE(names.insert(web::route_name(r)).second) << web::route_name(r);
    EXPECT_NE(r.handle, nullptr) << web::route_name(r);
  }
  http_request req;
  req.method = "GET";
  req.target = "/v1/products/acme/sims/data_usage";
  EXPECT_EQ(http_api::route_of(req), "/v1/products/:p/sims/data_usage");
  req.target = "/v1/products/acme/sims/89883070000123456782";
  EXPECT_EQ(http_api::route_of(req), "/v1/products/:p/sims/:iccid");
  req.target = "/v1/nothing/here";
  EXPECT_EQ(http_api::route_of(req), "unmatched");
}

}  // namespace
}  // namespace simcap::testing
