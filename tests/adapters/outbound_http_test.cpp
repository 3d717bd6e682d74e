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
#include "outbound/outbound.hpp"
#include "outbound/signature.hpp"

namespace simcap::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// An HTTP receiver: one thread a connection; every request's signature is checked and its
// answer comes from a policy. The flaky one: every 5th request is answered 503, every 7th is
// never answered (the connection stays open, silent), every 11th has its connection dropped;
// the rest 200.
class flaky_receiver {
 public:
  struct arrival {
    std::uint64_t id, sim;
    bool answered_ok;
  };
  // status_of(request number, event id, SIM key): the status to answer, 0 for none (the
  // connection stays silent), -1 to drop the connection.
  using policy = std::function<int(std::uint64_t, std::uint64_t, std::uint64_t)>;
  static int flaky(std::uint64_t n, std::uint64_t, std::uint64_t) {
    if (n % 11 == 0) return -1;
    if (n % 7 == 0) return 0;
    return n % 5 == 0 ? 503 : 200;
  }
  explicit flaky_receiver(std::string secret, policy p = flaky)
      : secret_(std::move(secret)),
        policy_(std::move(p)),
        acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~flaky_receiver() {
    stopping_ = true;
    boost::system::error_code ec;
    {
      tcp::socket wake(io_);  // a blocking accept returns for it
      wake.connect({asio::ip::make_address("127.0.0.1"), port()}, ec);
    }
    thread_.join();
    acceptor_.close(ec);
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& t : workers_) t.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<arrival> arrivals() {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  std::set<std::uint64_t> delivered() {
    std::lock_guard lock(mu_);
    std::set<std::uint64_t> out;
    for (const auto& a : arrivals_) {
      if (a.answered_ok) out.insert(a.id);
    }
    return out;
  }
  std::size_t bad_signatures() {
    std::lock_guard lock(mu_);
    return bad_signatures_;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      auto s = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*s, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mu_);
      sockets_.push_back(s);
      workers_.emplace_back([this, s] { serve(*s); });
    }
  }
  void serve(tcp::socket& s) {
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buf, req, ec);
      if (ec) return;
      std::uint64_t n;
      {
        std::lock_guard lock(mu_);
        n = ++requests_;
      }
      const auto body = boost::json::parse(req.body());
      const std::uint64_t id = body.at("id").to_number<std::uint64_t>();
      const std::uint64_t sim = iccid::parse(body.at("iccid").as_string()).value().key();
      check_signature(req);
      const int status = policy_(n, id, sim);
      if (status < 0) {
        s.close(ec);  // dropped
        record(id, sim, false);
        return;
      }
      if (status == 0) {
        record(id, sim, false);
        continue;  // never answered (the client times out and closes)
      }
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.keep_alive(true);
      res.prepare_payload();
      // Recorded before the answer leaves: the sender cannot have the next event yet.
      record(id, sim, status / 100 == 2);
      http::write(s, res, ec);
      if (ec) return;
    }
  }
  void record(std::uint64_t id, std::uint64_t sim, bool ok) {
    std::lock_guard lock(mu_);
    arrivals_.push_back({id, sim, ok});
  }
  void check_signature(const http::request<http::string_body>& req) {
    const std::string sig(req["Simcap-Signature"]);
    const auto comma = sig.find(",v1=");
    bool good =
        sig.starts_with("t=") && comma != std::string::npos &&
        outbound::hmac_sha256_hex(secret_, sig.substr(2, comma - 2) + "." + req.body()) ==
            sig.substr(comma + 4) &&
        req["Idempotency-Key"] ==
            std::to_string(boost::json::parse(req.body()).at("id").to_number<std::uint64_t>());
    if (!good) {
      std::lock_guard lock(mu_);
      ++bad_signatures_;
    }
  }

  std::string secret_;
  policy policy_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> workers_;
  std::vector<arrival> arrivals_;
  std::uint64_t requests_ = 0;
  std::size_t bad_signatures_ = 0;
};

std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed again when a goes
}

class OutboundHttp : public engine_fixture {};

TEST_F(OutboundHttp, EveryEventArrivesInOrderPerSimThroughAFlakyReceiverBesideADeadSink) {
  make_product("acme");
  flaky_receiver rx("whsec-1");
  sink_config live;
  live.name = "carrier";
  live.kind = sink_config::kind_t::carrier;
  live.url = "http://127.0.0.1:" + std::to_string(rx.port()) + "/network/events";
  live.secret = "whsec-1";
  live.timeout = 300ms;
  live.retry_min = 5ms;
  live.retry_max = 40ms;
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
  sink_config c;
  c.name = "carrier";
  c.kind = sink_config::kind_t::carrier;
  c.url = "http://127.0.0.1:" + std::to_string(rx.port()) + "/";
  c.secret = "s";
  c.retry_min = 5ms;
  c.retry_max = 20ms;
  outbound::service out(*eng_, {c});
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

}  // namespace
}  // namespace simcap::testing
