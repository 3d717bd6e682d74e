// simcapd's ports under connection pressure, as a separate process: thousands of idle sockets
// that never speak do not keep a real feed or query out, and max_connections closes the excess.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <fstream>
#include <memory>

#include "eventually.hpp"
#include "feed_client.hpp"
#include "http_client.hpp"
#include "process.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Connections : public ::testing::Test {
 protected:
  void SetUp() override {
    // This process holds one end of every idle socket.
    rlimit lim{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
    lim.rlim_cur = lim.rlim_max;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lim), 0);
    ASSERT_GE(lim.rlim_cur, 8000u) << "the test needs 8000 open files (ulimit -Hn)";
    dir_ = fs::temp_directory_path() /
           ("simcap-conn-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    d_.reset();
    fs::remove_all(dir_);
  }
  void start(const std::string& server_extra = "") {
    std::string out;
    ASSERT_EQ(
        run_feed({"--write-iccids", (dir_ / "iccids.txt").string(), "--sims", "100", "--quiet"},
                 &out),
        0)
        << out;
    std::ofstream(dir_ / "simcapd.toml")
        << "[server]\ndata_dir = \"" << (dir_ / "data").string() << "\"\nshards = 1\n"
        << server_extra << "[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
        << "[[tokens]]\ntoken = \"admin-token\"\nscope = \"admin\"\n"
        << "[[products]]\nid = \"acme\"\niccids_file = \"" << (dir_ / "iccids.txt").string()
        << "\"\n";
    d_ = std::make_unique<simcapd_process>(SIMCAPD_BIN, dir_ / "simcapd.toml", dir_);
    ASSERT_TRUE(d_->started()) << d_->proc->err();
    http_port_ = d_->http_port;
    feed_port_ = d_->feed_port;
  }
  std::uint64_t metric(const std::string& name) { return testing::metric(http_port_, name); }
  int run_feed(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), SIMCAP_FEED_BIN);
    child c(args, dir_ / "feed.out", dir_ / "feed.err");
    auto code = c.wait(120s);
    *out = c.out() + c.err();
    return code.value_or(-1000);
  }
  fs::path dir_;
  std::unique_ptr<simcapd_process> d_;
  std::uint16_t http_port_ = 0, feed_port_ = 0;
};

TEST_F(Connections, IdleSocketsDoNotKeepARealFeedOrAQueryOut) {
  start();
  if (HasFatalFailure()) return;
  constexpr std::size_t kIdle = 3000;
  std::vector<std::unique_ptr<feed_client>> idle;
  for (std::size_t i = 0; i < kIdle; ++i) {
    idle.push_back(std::make_unique<feed_client>(feed_port_));
    idle.push_back(std::make_unique<feed_client>(http_port_));
  }
  // All of them accepted and held (the metrics request is one more on the HTTP port).
  ASSERT_TRUE(
      eventually([&] { return metric("simcap_connections{port=\"feed\"}") == kIdle; }, 10s));
  ASSERT_EQ(metric("simcap_connections{port=\"http\"}"), kIdle + 1);
  // A real feed streams and is acked while they are held, and a query is answered.
  std::string out;
  ASSERT_EQ(run_feed({"--connect", "127.0.0.1:" + std::to_string(feed_port_), "--feed", "carrier-a",
                      "--token", "feed-secret", "--sims", "100", "--records", "20000", "--quiet"},
                     &out),
            0)
      << out;
  EXPECT_NE(out.find("acked up to 20000"), std::string::npos) << out;
  {
    http_client c(http_port_);
    auto r = c.request("GET", "/v1/feeds", "", "admin-token");
    EXPECT_EQ(r.status, 200u) << r.body;
  }
  EXPECT_EQ(metric("simcap_connections_refused_total{port=\"feed\"}"), 0u);
  // Idle sockets are closed after the hello (feed) and first-header (HTTP) timeouts.
  ASSERT_TRUE(eventually([&] { return metric("simcap_connections{port=\"feed\"}") == 0; }, 30s));
  ASSERT_TRUE(eventually([&] { return metric("simcap_connections{port=\"http\"}") == 1; }, 30s));
}

TEST_F(Connections, MaxConnectionsClosesTheExcessAtOnce) {
  start("max_connections = 50\n");
  if (HasFatalFailure()) return;
  std::vector<std::unique_ptr<feed_client>> socks;
  for (int i = 0; i < 60; ++i) socks.push_back(std::make_unique<feed_client>(feed_port_));
  ASSERT_TRUE(eventually(
      [&] { return metric("simcap_connections_refused_total{port=\"feed\"}") == 10; }, 10s));
  EXPECT_EQ(metric("simcap_connections{port=\"feed\"}"), 50u);
  // The ten refused see the close at once (the others wait out the hello timeout).
  std::size_t closed = 0;
  for (auto& s : socks) {
    if (!s->read_line(100ms) && s->closed()) ++closed;
  }
  EXPECT_EQ(closed, 10u);
  // Once one goes, a new connection gets its place and a hello is answered.
  socks.clear();
  ASSERT_TRUE(eventually([&] { return metric("simcap_connections{port=\"feed\"}") == 0; }, 10s));
  feed_client f(feed_port_);
  f.send("{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"feed-secret\"}}\n");
  auto welcome = f.read_line();
  ASSERT_TRUE(welcome);
  EXPECT_NE(welcome->find("welcome"), std::string::npos) << *welcome;
}

// A feed that streams bad lines and never reads its rejects is read no further, and /metrics
// shows it: what waits to be written back stays bounded and the session's wait is counted.
TEST_F(Connections, APeerThatNeverReadsItsRejectsShowsInTheMetrics) {
  start();
  if (HasFatalFailure()) return;
  EXPECT_EQ(metric("simcap_feed_write_waits_total"), 0u);
  EXPECT_EQ(metric("simcap_feed_pending_write_bytes"), 0u);
  feed_client f(feed_port_);
  ASSERT_TRUE(f.send("{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"feed-secret\"}}\n"));
  ASSERT_TRUE(f.read_line());
  std::string bad;
  for (int i = 0; i < (1 << 19); ++i) bad += "x\n";  // 1 MiB of bad lines, ~40 MiB of rejects
  ASSERT_TRUE(eventually(
      [&] {
        f.send_some(bad);
        return metric("simcap_feed_write_waits_total") >= 1;
      },
      30s));
  const std::uint64_t pending = metric("simcap_feed_pending_write_bytes");
  EXPECT_GT(pending, 0u);
  EXPECT_LT(pending, 32u << 20);
}

}  // namespace
}  // namespace simcap::testing
