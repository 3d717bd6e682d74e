// TLS on both ports of a real simcapd, with real peers: simcap-feed --tls streams over mutual TLS
// and is acked, curl asks over HTTPS, plain clients get nothing, and SIGHUP reloads the
// certificate while a session stays open. Certificates are made by `openssl req` here.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>

#include "eventually.hpp"
#include "feed_client.hpp"
#include "http_client.hpp"
#include "process.hpp"
#include "test_cert.hpp"
#include "tls_client.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class TlsPorts : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("simcap-tlse2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ca_ = make_test_ca(dir_, "carriers-ca");
    server_ = make_signed_cert(dir_, ca_, "server", "simcap-one");
    feed_ = make_signed_cert(dir_, ca_, "carrier-a", "carrier-a.example");
  }
  void TearDown() override {
    d_.reset();
    fs::remove_all(dir_);
  }
  void start(bool https) {
    std::string out;
    ASSERT_EQ(run({SIMCAP_FEED_BIN, "--write-iccids", (dir_ / "iccids.txt").string(), "--sims",
                   "100", "--quiet"},
                  &out),
              0)
        << out;
    std::ofstream(dir_ / "simcapd.toml")
        << "[server]\ndata_dir = \"" << (dir_ / "data").string() << "\"\nshards = 2\n"
        << "[tls]\ncert = \"" << server_.cert.string() << "\"\nkey = \"" << server_.key.string()
        << "\"\nclient_ca = \"" << ca_.cert.string() << "\"\nhttp = " << (https ? "true" : "false")
        << "\n[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
        << "cert_cn = \"carrier-a.example\"\n"
        << "[[tokens]]\ntoken = \"admin-token\"\nscope = \"admin\"\n"
        << "[[products]]\nid = \"acme\"\niccids_file = \"" << (dir_ / "iccids.txt").string()
        << "\"\n";
    d_ = std::make_unique<simcapd_process>(SIMCAPD_BIN, dir_ / "simcapd.toml", dir_);
    ASSERT_TRUE(d_->started()) << d_->proc->err();
    http_port_ = d_->http_port;
    feed_port_ = d_->feed_port;
  }
  int run(std::vector<std::string> args, std::string* out) {
    child c(args, dir_ / "run.out", dir_ / "run.err");
    auto code = c.wait(120s);
    *out = c.out() + c.err();
    return code.value_or(-1000);
  }
  std::vector<std::string> feed_args(std::vector<std::string> extra) {
    std::vector<std::string> a{
        SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + std::to_string(feed_port_),
        "--feed",        "carrier-a", "--token",
        "feed-secret",   "--sims",    "100",
        "--reconnects",  "0",         "--quiet"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  // curl over HTTPS, trusting the test CA: "STATUS BODY".
  std::string curl(const std::string& path) {
    std::string out;
    run({"/usr/bin/curl", "-sS", "--cacert", ca_.cert.string(), "-H",
         "Authorization: Bearer admin-token", "-w", "\n%{http_code}",
         "https://127.0.0.1:" + std::to_string(http_port_) + path},
        &out);
    return out;
  }

  fs::path dir_;
  test_ca ca_;
  test_cert server_, feed_;
  std::unique_ptr<simcapd_process> d_;
  std::uint16_t http_port_ = 0, feed_port_ = 0;
};

TEST_F(TlsPorts, SimcapFeedStreamsOverMutualTlsAndCurlAsksOverHttps) {
  start(true);
  if (HasFatalFailure()) return;
  std::string out;
  ASSERT_EQ(run(feed_args({"--records", "20000", "--tls", "--ca", ca_.cert.string(), "--cert",
                           feed_.cert.string(), "--key", feed_.key.string()}),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("acked up to 20000"), std::string::npos) << out;
  EXPECT_NE(out.find("ack lag p50"), std::string::npos) << out;
  // The records counted, read back over HTTPS.
  const std::string feeds = curl("/v1/feeds");
  EXPECT_NE(feeds.find("\"watermark\":20000"), std::string::npos) << feeds;
  EXPECT_TRUE(feeds.ends_with("\n200")) << feeds;

  // Without its client certificate, simcap-feed is refused; without TLS too.
  EXPECT_NE(run(feed_args({"--records", "10", "--tls", "--ca", ca_.cert.string()}), &out), 0);
  EXPECT_EQ(out.find("acked up to"), std::string::npos) << out;
  EXPECT_NE(run(feed_args({"--records", "10"}), &out), 0);
  EXPECT_EQ(out.find("acked up to"), std::string::npos) << out;
  // A plain HTTP request on the HTTPS port gets no HTTP answer.
  {
    feed_client plain(http_port_);
    plain.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string got = plain.read_to_close(5s);
    EXPECT_EQ(got.find("HTTP/1.1"), std::string::npos) << got;
  }
  const std::string metrics = curl("/metrics");
  EXPECT_NE(metrics.find("simcap_tls_handshake_failures_total{port=\"http\"} 1"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("simcap_tls_handshake_failures_total{port=\"feed\"} 0"), std::string::npos)
      << metrics;
}

TEST_F(TlsPorts, SighupReloadsTheCertificateAndOpenSessionsGoOn) {
  start(false);  // plain HTTP here: the test reads the metrics with its own client
  if (HasFatalFailure()) return;
  const tls_client::identity carrier_a{ca_.cert, feed_.cert, feed_.key};
  tls_client open(feed_port_, carrier_a);
  ASSERT_TRUE(open.ok()) << open.error();
  EXPECT_EQ(open.server_name(), "simcap-one");
  ASSERT_TRUE(open.send("{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"feed-secret\"}}\n"));
  auto welcome = open.read_line();
  ASSERT_TRUE(welcome && welcome->find("welcome") != std::string::npos);

  const test_cert next = make_signed_cert(dir_, ca_, "next", "simcap-two");
  fs::copy_file(next.cert, server_.cert, fs::copy_options::overwrite_existing);
  fs::copy_file(next.key, server_.key, fs::copy_options::overwrite_existing);
  d_->proc->signal(SIGHUP);
  const auto reloads = [&] {
    http_client c(http_port_);
    return c.request("GET", "/metrics").body;
  };
  ASSERT_TRUE(eventually(
      [&] {
        return reloads().find("simcap_tls_reloads_total{result=\"ok\"} 1") != std::string::npos;
      },
      10s));
  {
    tls_client fresh(feed_port_, carrier_a);
    ASSERT_TRUE(fresh.ok()) << fresh.error();
    EXPECT_EQ(fresh.server_name(), "simcap-two");
  }
  // The session opened before the reload still streams and is acked.
  const std::string iccid = [&] {
    std::ifstream f(dir_ / "iccids.txt");
    std::string first;
    std::getline(f, first);
    return first;
  }();
  ASSERT_TRUE(open.send("{\"seq\":1,\"iccid\":\"" + iccid + "\",\"up\":100}\n"));
  bool acked = false;
  while (auto l = open.read_line(10s)) {
    if (l->find("{\"ack\":1}") != std::string::npos) {
      acked = true;
      break;
    }
  }
  EXPECT_TRUE(acked);
  EXPECT_EQ(d_->proc->wait(0ms), std::nullopt) << "simcapd stopped on SIGHUP";
}

}  // namespace
}  // namespace simcap::testing
