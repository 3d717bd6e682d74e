// Outbound delivery over real sockets on 127.0.0.1: a receiver that answers 503 now and then,
// never answers some requests and drops some connections; every event arrives, in order per SIM,
// signed; a dead sink beside it delays nothing.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "engine_fixture.hpp"
#include "eventually.hpp"
#include "http/http_api.hpp"
#include "http_receiver.hpp"
#include "outbound/outbound.hpp"
#include "outbound/signature.hpp"
#include "test_cert.hpp"

namespace simcap::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed again when a goes
}

using flaky_receiver = http_receiver;

class OutboundHttp : public engine_fixture {};

// A carrier sink to a receiver on 127.0.0.1, retrying within milliseconds.
sink_config carrier_to(std::uint16_t port, const std::string& secret,
                       const std::string& path = "/") {
  sink_config c;
  c.name = "carrier";
  c.kind = sink_config::kind_t::carrier;
  c.url = "http://127.0.0.1:" + std::to_string(port) + path;
  c.secret = secret;
  c.retry_min = 5ms;
  c.retry_max = 40ms;
  return c;
}

TEST_F(OutboundHttp, EveryEventArrivesInOrderPerSimThroughAFlakyReceiverBesideADeadSink) {
  make_product("acme");
  flaky_receiver rx("whsec-1");
  sink_config live = carrier_to(rx.port(), "whsec-1", "/network/events");
  live.timeout = 300ms;
  live.max_in_flight = 8;
  sink_config dead = live;
  dead.name = "dead";
  dead.url = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
  outbound::service out(*eng_, {dead, live});
  out.start();
  constexpr int kSims = 20;
  std::vector<std::uint64_t> ns;
  for (int i = 1; i <= kSims; ++i) ns.push_back(static_cast<std::uint64_t>(i));
  import("acme", ns);
  for (auto n : ns) ASSERT_TRUE(act(n, sim_action::deactivate));
  for (auto n : ns) ASSERT_TRUE(act(n, sim_action::reactivate));
  for (auto n : ns) ASSERT_TRUE(act(n, sim_action::release));
  const auto all = eng_->events().read(0, 1000);
  ASSERT_EQ(all.size(), 4u * kSims);
  std::set<std::uint64_t> want;
  for (const auto& e : all) want.insert(e.id);
  ASSERT_TRUE(eventually([&] { return rx.delivered() == want; }, 60s))
      << rx.delivered().size() << " of " << want.size() << " delivered";
  EXPECT_EQ(rx.bad_signatures(), 0u);
  // Per SIM: an event arrives only after every earlier event of its SIM was answered 200.
  std::map<std::uint64_t, std::set<std::uint64_t>> ok_so_far;
  std::map<std::uint64_t, std::vector<std::uint64_t>> ids_of;
  for (const auto& e : all) ids_of[e.sim].push_back(e.id);
  for (const auto& a : rx.arrivals()) {
    for (std::uint64_t earlier : ids_of[a.sim]) {
      if (earlier >= a.id) break;
      EXPECT_TRUE(ok_so_far[a.sim].contains(earlier))
          << "event " << a.id << " before " << earlier << " was delivered";
    }
    if (a.answered_ok) ok_so_far[a.sim].insert(a.id);
  }
  // (the receiver counts an event before its answer reaches the sink)
  auto carrier_delivered = [&] {
    for (auto& s : out.stats()) {
      if (s.name == "carrier") return s.delivered;
    }
    return std::uint64_t{0};
  };
  EXPECT_TRUE(eventually([&] { return carrier_delivered() == want.size(); }));
  std::map<std::string, outbound::sink_stats> st;
  for (auto& s : out.stats()) st[s.name] = s;
  EXPECT_EQ(st["carrier"].delivered, want.size());
  EXPECT_GT(st["carrier"].retried, 0u);
  EXPECT_EQ(st["carrier"].backlog, 0u);
  EXPECT_EQ(st["dead"].delivered, 0u);
  EXPECT_GT(st["dead"].backlog, 0u);
  EXPECT_NE(st["dead"].last_error, "");
  out.stop();
}

TEST_F(OutboundHttp, SimsShowWhetherTheNetworkConfirmedTheirLatestEvent) {
  make_product("acme");
  const std::uint64_t failing = test_iccid(2).key(), waiting = test_iccid(3).key();
  flaky_receiver rx("s", [&](std::uint64_t, std::uint64_t, std::uint64_t sim) {
    if (sim == failing) return 400;  // parked: failed
    if (sim == waiting) return 503;  // tried again and again: pending
    return 200;
  });
  outbound::service out(*eng_, {carrier_to(rx.port(), "s")});
  out.start();
  http_api api(*eng_, {{"admin", true, ""}}, nullptr, false);
  api.set_outbound(&out);
  import("acme", {1, 2, 3});
  auto state_of = [&](std::uint64_t n) {
    http_request req{"GET", "/v1/sims/" + test_iccid_text(n), "Bearer admin", "", ""};
    return boost::json::parse(api.handle(req).body).at("network_state");
  };
  ASSERT_TRUE(eventually([&] { return state_of(2).at("state").as_string() == "failed"; }));
  ASSERT_TRUE(eventually([&] { return state_of(1).at("state").as_string() == "in_sync"; }));
  const auto pending = state_of(3);
  EXPECT_EQ(pending.at("state").as_string(), "pending");
  EXPECT_EQ(pending.at("event_id").to_number<std::uint64_t>(), events_of(3).back().id);
  EXPECT_EQ(std::string(pending.at("since").as_string()), format_rfc3339(events_of(3).back().time));
  EXPECT_EQ(state_of(2).at("event_id").to_number<std::uint64_t>(), events_of(2).back().id);
  http_request fleet{"GET", "/v1/products/acme/sims/data_usage", "Bearer admin", "", ""};
  const auto f = boost::json::parse(api.handle(fleet).body);
  EXPECT_EQ(f.at("network_pending_sim_cards").to_number<int>(), 1);
  EXPECT_EQ(f.at("network_failed_sim_cards").to_number<int>(), 1);
  out.stop();
}

// HTTPS: the receiver's certificate (made by openssl req) is trusted through ca_file and its
// host checked; a sink that trusts only the system's CAs does not deliver to it (and says why)
// unless it is told not to verify, as rejectUnauthorized = false does for a webhook.
TEST_F(OutboundHttp, HttpsReceiverIsVerifiedAgainstTheSinksCaFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("simcap-https-" + std::to_string(::getpid()));
  const test_cert cert = make_test_cert(dir);
  const auto all_ok = [](std::uint64_t, std::uint64_t, std::uint64_t) { return 200; };
  http_receiver rx("s", all_ok, &cert);
  sink_config trusted = carrier_to(rx.port(), "s");
  trusted.url = "https://127.0.0.1:" + std::to_string(rx.port()) + "/network";
  trusted.ca_file = cert.cert.string();
  sink_config untrusted = trusted;
  untrusted.name = "untrusted";
  untrusted.ca_file.clear();
  sink_config unverified = untrusted;
  unverified.name = "unverified";
  unverified.verify_tls = false;
  make_product("acme");
  outbound::service out(*eng_, {trusted, untrusted, unverified});
  out.start();
  import("acme", {1, 2});
  ASSERT_TRUE(act(1, sim_action::deactivate));
  std::set<std::uint64_t> want;
  for (const auto& e : eng_->events().read(0, 100)) want.insert(e.id);
  ASSERT_EQ(want.size(), 3u);
  const auto stats_of = [&](const std::string& name) {
    for (const auto& st : out.stats()) {
      if (st.name == name) return st;
    }
    return outbound::sink_stats{};
  };
  ASSERT_TRUE(eventually(
      [&] {
        return stats_of("carrier").delivered == 3 && stats_of("unverified").delivered == 3 &&
               stats_of("untrusted").retried >= 2;
      },
      30s))
      << stats_of("carrier").last_error;
  EXPECT_EQ(rx.delivered(), want);
  EXPECT_EQ(rx.bad_signatures(), 0u);
  const auto untrusted_stats = stats_of("untrusted");
  EXPECT_EQ(untrusted_stats.delivered, 0u);
  EXPECT_NE(untrusted_stats.last_error.find("TLS handshake"), std::string::npos)
      << untrusted_stats.last_error;
  EXPECT_EQ(rx.arrivals().size(), 6u);  // the untrusted sink never got a request through
  out.stop();
  std::filesystem::remove_all(dir);
}

// Run-time webhooks: bodies simcap cannot honour are refused with their reason; deleting a hook
// drops its sink, its undelivered events and its position.
TEST_F(OutboundHttp, WebhooksAreCheckedAndADeletedHookLeavesNothingBehind) {
  make_product("acme");
  outbound::service out(*eng_, {});
  out.start();
  http_api api(*eng_, {{"admin", true, ""}}, nullptr, false);
  api.set_outbound(&out);
  const auto post = [&](const std::string& body) {
    return api.handle(
        http_request{"POST", "/v1/webhooks", "Bearer admin", "application/json", body});
  };
  const std::string dead = "http://127.0.0.1:" + std::to_string(closed_port()) + "/";
  for (const std::string& bad : std::vector<std::string>{
           std::string(R"({"url":")") + dead + R"("})",  // no event
           R"({"event":"paused","url":"ftp://x/"})",
           R"({"event":"nothing","url":")" + dead + R"("})",
           R"({"event":"paused","url":")" + dead + R"(","requestType":"GET"})",
           R"({"event":"paused","url":")" + dead + R"(","deviceId":"abc"})",
           R"({"event":"paused","url":")" + dead + R"(","json":{"a":"{{b}}"}})",
           R"({"event":"paused","url":")" + dead + R"(","headers":{"Host":"x"}})",
           R"({"event":"paused","url":")" + dead + R"(","headers":{"X-A":"a
b"}})",
           R"({"event":"paused","url":")" + dead +
               R"(","auth":{"bearer":"t"},"headers":{"Authorization":"x"}})",
           R"({"event":"paused","url":")" + dead + R"(","rejectUnauthorized":"no"})"}) {
    const auto r = post(bad);
    EXPECT_EQ(r.status, 400u) << bad << " -> " << r.body;
  }
  EXPECT_TRUE(out.hooks().empty());
  const auto made = post(R"({"event":"","url":")" + dead + R"(","auth":{"bearer":"tok"}})");
  ASSERT_EQ(made.status, 200u) << made.body;
  const std::string id(boost::json::parse(made.body).at("id").as_string());
  ASSERT_EQ(out.hooks().size(), 1u);
  EXPECT_EQ(out.hooks()[0].headers,
            (std::vector<std::pair<std::string, std::string>>{{"Authorization", "Bearer tok"}}));
  import("acme", {1, 2});
  ASSERT_TRUE(eventually([&] { return out.stats().size() == 1 && out.stats()[0].retried >= 2; }));
  EXPECT_EQ(out.stats()[0].name, "hook-" + id);
  EXPECT_EQ(out.stats()[0].backlog, 2u);
  EXPECT_FALSE(eng_->side_state("hook/" + id).empty());
  EXPECT_FALSE(eng_->side_state("sink/hook-" + id).empty());
  const auto del = api.handle(http_request{"DELETE", "/v1/webhooks/" + id, "Bearer admin", "", ""});
  EXPECT_EQ(del.status, 200u) << del.body;
  EXPECT_TRUE(out.hooks().empty());
  EXPECT_TRUE(out.stats().empty());
  EXPECT_TRUE(eng_->side_state("hook/").empty());
  EXPECT_TRUE(eng_->side_state("sink/hook-" + id).empty());
  EXPECT_EQ(api.handle(http_request{"DELETE", "/v1/webhooks/" + id, "Bearer admin", "", ""}).status,
            404u);
  out.stop();
}

}  // namespace
}  // namespace simcap::testing
