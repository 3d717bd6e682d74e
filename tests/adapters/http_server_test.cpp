// The HTTP port over real sockets on 127.0.0.1, with a real feed session feeding the engine.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <sstream>

#include "daemon.hpp"
#include "engine_fixture.hpp"
#include "eventually.hpp"
#include "feed_client.hpp"
#include "http_client.hpp"

namespace simcap::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class HttpServer : public ::testing::Test {
 protected:
  HttpServer() {
    dir_ = fs::temp_directory_path() / ("simcap-http-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    daemon_config cfg;
    cfg.data_dir = dir_;
    cfg.http = "127.0.0.1:0";
    cfg.feed = "127.0.0.1:0";
    cfg.engine.shards = 2;
    cfg.ack_interval = 20ms;
    cfg.tokens = {{"admin-token", true, ""}};
    cfg.feeds = {{"carrier-a", "feed-secret", ""}};
    cfg.max_long_polls = 40;
    d_ = std::make_unique<daemon>(cfg, true);
    d_->start();
  }
  ~HttpServer() override {
    d_->stop();
    fs::remove_all(dir_);
  }
  http_client::reply call(http_client& c, const std::string& method, const std::string& target,
                          const std::string& body = "") {
    return c.request(method, target, body, "admin-token");
  }
  static json::object obj(const http_client::reply& r) { return json::parse(r.body).as_object(); }

  fs::path dir_;
  std::unique_ptr<daemon> d_;
};

TEST_F(HttpServer, ImportStreamPauseLongPollRaiseAndRollOver) {
  http_client c(d_->http_port());
  ASSERT_EQ(call(c, "PUT", "/v1/products/acme", R"({"default_mb_limit":1})").status, 200u);
  std::string body = "{\"sims\":[";
  for (int i = 0; i < 10; ++i) body += std::string(i ? "," : "") + "\"" + test_iccid_text(i) + "\"";
  body += "]}";
  auto imp = call(c, "POST", "/v1/products/acme/sims", body);
  ASSERT_EQ(imp.status, 200u) << imp.body;
  EXPECT_EQ(obj(imp).at("imported").to_number<int>(), 10);
  const std::uint64_t after = obj(call(c, "GET", "/v1/events?type=activated&limit=10000"))
                                  .at("events")
                                  .as_array()
                                  .back()
                                  .at("id")
                                  .to_number<std::uint64_t>();

  // A long-poll waiting for the pause, on its own connection.
  auto poll = std::async(std::launch::async, [&] {
    http_client pc(d_->http_port());
    auto t0 = std::chrono::steady_clock::now();
    auto r = pc.request("GET", "/v1/events?type=paused&wait=20&after=" + std::to_string(after), "",
                        "admin-token");
    return std::pair{r, std::chrono::steady_clock::now() - t0};
  });
  std::this_thread::sleep_for(200ms);  // let the poll start waiting (the test holds without it)

  feed_client f(d_->feed_port());
  f.send("{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"feed-secret\"}}\n");
  ASSERT_TRUE(f.read_line());
  const std::string now = std::to_string(d_->eng().time_source().now());
  std::string lines;
  for (int seq = 1; seq <= 12; ++seq) {
    lines += "{\"seq\":" + std::to_string(seq) + ",\"iccid\":\"" + test_iccid_text(3) +
             "\",\"end\":" + now + ",\"up\":100000}\n";
  }
  f.send(lines);  // 1.2 MB against a 1 MB limit
  auto [pr, waited] = poll.get();
  ASSERT_EQ(pr.status, 200u);
  auto evs = json::parse(pr.body).at("events").as_array();
  ASSERT_EQ(evs.size(), 1u) << pr.body;
  EXPECT_EQ(evs[0].at("iccid").as_string(), test_iccid_text(3));
  EXPECT_LT(waited, 10s);  // answered when the event appeared, not at the deadline

  auto s = obj(call(c, "GET", "/v1/sims/" + test_iccid_text(3)));
  EXPECT_EQ(s.at("status").as_string(), "inactive_data_limit_reached");
  EXPECT_GE(s.at("usage_bytes").to_number<int>(), 1000000);

  auto raised = call(c, "PUT", "/v1/products/acme/sims/" + test_iccid_text(3), R"({"mb_limit":5})");
  ASSERT_EQ(raised.status, 200u);
  EXPECT_EQ(obj(raised).at("status").as_string(), "active");
  // Pause it again, then cross the anniversary on the simulated clock.
  ASSERT_EQ(call(c, "PUT", "/v1/sims/" + test_iccid_text(3), R"({"mb_limit":1})").status, 200u);
  auto product = obj(call(c, "GET", "/v1/products/acme"));
  std::string period_end(product.at("period_end").as_string());
  auto moved = call(c, "POST", "/v1/admin/clock", "{\"now\":\"" + period_end + "\"}");
  ASSERT_EQ(moved.status, 200u) << moved.body;
  auto after_roll = obj(call(c, "GET", "/v1/sims/" + test_iccid_text(3)));
  EXPECT_EQ(after_roll.at("status").as_string(), "active");
  EXPECT_EQ(after_roll.at("usage_bytes").to_number<int>(), 0);
  EXPECT_EQ(after_roll.at("period_start").as_string(), period_end);
  auto closed = obj(call(c, "GET", "/v1/events?type=period_closed")).at("events").as_array();
  EXPECT_EQ(closed.size(), 1u);
}

TEST_F(HttpServer, OversizedBodyIs413WithTheJsonError) {
  http_client c(d_->http_port());
  std::string big(17u << 20, 'x');
  auto r = c.request("POST", "/v1/products/acme/sims", big, "admin-token", "text/plain");
  EXPECT_EQ(r.status, 413u);
  auto o = json::parse(r.body).as_object();
  EXPECT_EQ(o.at("error").as_string(), "payload_too_large");
  EXPECT_FALSE(o.at("ok").as_bool());
}

// Requests that cannot be read as HTTP/1.1 get an answer with the JSON error before the close.
TEST_F(HttpServer, FramingErrorsAreAnsweredBeforeTheClose) {
  struct probe {
    std::string request;
    std::string status_line, code;
  };
  const std::string long_target(9000, 'a');
  const std::vector<probe> probes{
      {"POST /v1/sims HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\n{}",
       "HTTP/1.1 400 Bad Request", "bad_request"},
      {"POST /v1/sims HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n{}",
       "HTTP/1.1 400 Bad Request", "bad_request"},
      {"GET /healthz HTTP/1.1\nHost: x\n\n", "HTTP/1.1 400 Bad Request", "bad_request"},
      {"\x16\x03\x01garbage\r\n\r\n", "HTTP/1.1 400 Bad Request", "bad_request"},
      {"GET /" + long_target + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414 URI Too Long",
       "uri_too_long"},
      {"GET /" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       "HTTP/1.1 414 URI Too Long", "uri_too_long"},
      {"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large", "header_too_large"},
  };
  for (const probe& p : probes) {
    feed_client raw(d_->http_port());
    ASSERT_TRUE(raw.send(p.request));
    const std::string reply = raw.read_to_close();
    SCOPED_TRACE(p.request.substr(0, 60));
    EXPECT_EQ(reply.substr(0, reply.find('\r')), p.status_line) << reply.substr(0, 200);
    const auto body = reply.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos);
    auto o = json::parse(reply.substr(body + 4)).as_object();
    EXPECT_EQ(o.at("error").as_string(), p.code);
    EXPECT_TRUE(raw.closed());
  }
  // The port still answers.
  http_client c(d_->http_port());
  EXPECT_EQ(c.request("GET", "/healthz").status, 200u);
  auto m = c.request("GET", "/metrics");
  EXPECT_NE(m.body.find("simcap_http_requests_total{route=\"unmatched\",code=\"400\"} 4"),
            std::string::npos);
}

TEST_F(HttpServer, KeepsTheConnectionAliveAcrossRequests) {
  http_client c(d_->http_port());
  for (int i = 0; i < 50; ++i) {
    auto r = c.request("GET", "/healthz");
    ASSERT_EQ(r.status, 200u);
  }
  auto r = c.request("GET", "/v1/sims", "", "");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(json::parse(r.body).at("error").as_string(), "invalid_token");
  auto m = c.request("GET", "/metrics");
  EXPECT_NE(m.body.find("simcap_http_requests_total{route=\"/healthz\",code=\"200\"} 50"),
            std::string::npos)
      << m.body;
  EXPECT_EQ(c.request("GET", "/readyz").status, 200u);
}

// The I/O threads ask for a lower nice value than ingest (http_nice, -5 by default).
TEST_F(HttpServer, IoThreadRunsAtTheConfiguredNice) {
  rlimit lim{};
  getrlimit(RLIMIT_NICE, &lim);
  if (::geteuid() != 0 &&
      (lim.rlim_cur == RLIM_INFINITY ? false : 20 - static_cast<long>(lim.rlim_cur) > -5)) {
    GTEST_SKIP() << "no privilege to lower nice values here";
  }
  // An answer comes from an I/O thread that has named itself and set its nice (both before it
  // serves anything).
  http_client c(d_->http_port());
  ASSERT_EQ(c.request("GET", "/healthz").status, 200u);
  int found = 0;
  for (const auto& t : fs::directory_iterator("/proc/self/task")) {
    std::ifstream comm(t.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("http-io-", 0) != 0) continue;
    std::ifstream stat(t.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // Fields after the command (which ends with the last ')'): state is field 3, nice field 19.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19; ++i) rest >> field;
    EXPECT_EQ(field, "-5") << name;
    ++found;
  }
  EXPECT_EQ(found, 1);
}

// The number of long-polls waiting now, from /metrics.
std::size_t long_polls_of(http_client& c) {
  auto m = c.request("GET", "/metrics").body;
  auto at = m.find("\nsimcap_http_long_polls ");
  return at == std::string::npos ? 999'999 : std::stoul(m.substr(at + 24));
}

TEST_F(HttpServer, LongPollAnswersEmptyAfterItsWait) {
  http_client c(d_->http_port());
  const auto last = d_->eng().events().last_id();
  auto t0 = std::chrono::steady_clock::now();
  auto r = call(c, "GET", "/v1/events?wait=1&after=" + std::to_string(last));
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(obj(r).at("events").as_array().empty());
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 5s);  // it used to wait forever
  EXPECT_EQ(long_polls_of(c), 0u);
}

TEST_F(HttpServer, LongPollWakesWhenAnEventLandsAndClosedClientsAreDropped) {
  http_client c(d_->http_port());
  ASSERT_EQ(call(c, "PUT", "/v1/products/acme", R"({})").status, 200u);
  const auto last = d_->eng().events().last_id();
  const std::string target = "/v1/events?wait=60&after=" + std::to_string(last);
  // Clients that ask and go away.
  std::vector<std::unique_ptr<feed_client>> gone;
  for (int i = 0; i < 30; ++i) {
    gone.push_back(std::make_unique<feed_client>(d_->http_port()));
    gone.back()->send("GET " + target +
                      " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token\r\n\r\n");
  }
  ASSERT_TRUE(eventually([&] { return long_polls_of(c) == 30; })) << long_polls_of(c);
  gone.clear();  // closed
  EXPECT_TRUE(eventually([&] { return long_polls_of(c) == 0; }, 5s)) << long_polls_of(c);
  // One that waits is answered as soon as an event lands.
  auto poll = std::async(std::launch::async, [&] {
    http_client pc(d_->http_port());
    auto t0 = std::chrono::steady_clock::now();
    auto r = pc.request("GET", target, "", "admin-token");
    return std::pair{r, std::chrono::steady_clock::now() - t0};
  });
  ASSERT_TRUE(eventually([&] { return long_polls_of(c) == 1; }));
  ASSERT_EQ(
      call(c, "POST", "/v1/products/acme/sims", R"({"sims":[")" + test_iccid_text(1) + R"("]})")
          .status,
      200u);
  ASSERT_EQ(poll.wait_for(10s), std::future_status::ready);
  auto [r, took] = poll.get();
  EXPECT_EQ(r.status, 200u);
  auto evs = obj(r).at("events").as_array();
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].at("type").as_string(), "activated");
  EXPECT_LT(took, 10s);
}

TEST_F(HttpServer, LongPollsBeyondTheCapAre429) {
  http_client c(d_->http_port());
  const std::string target =
      "/v1/events?wait=60&after=" + std::to_string(d_->eng().events().last_id());
  std::vector<std::unique_ptr<feed_client>> waiting;
  for (int i = 0; i < 40; ++i) {
    waiting.push_back(std::make_unique<feed_client>(d_->http_port()));
    waiting.back()->send("GET " + target +
                         " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token\r\n\r\n");
  }
  ASSERT_TRUE(eventually([&] { return long_polls_of(c) == 40; }));
  auto r = call(c, "GET", target);
  EXPECT_EQ(r.status, 429u);
  EXPECT_EQ(obj(r).at("error").as_string(), "too_many_requests");
  EXPECT_EQ(call(c, "GET", "/healthz").status, 200u);  // the rest of the port still answers
}

}  // namespace
}  // namespace simcap::testing
