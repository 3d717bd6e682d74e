// simcapd and simcap-feed as a user runs them: start the daemon, stream records, watch SIMs
// pause in its log and counters, stop it with SIGTERM.
#include <gtest/gtest.h>

#include <regex>

#include "process.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class Daemon : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("simcap-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  int run_feed(std::vector<std::string> args, std::string* out = nullptr) {
    args.insert(args.begin(), SIMCAP_FEED_BIN);
    child c(args, dir_ / "feed.out", dir_ / "feed.err");
    auto code = c.wait(120s);
    if (out) *out = c.out() + c.err();
    return code.value_or(-1000);
  }
  void write_config(const std::string& extra = "") {
    std::ofstream(dir_ / "simcapd.toml")
        << "[server]\ndata_dir = \"" << (dir_ / "data").string()
        << "\"\n[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
        << "[[products]]\nid = \"acme\"\ndefault_mb_limit = 5\niccids_file = \""
        << (dir_ / "iccids.txt").string() << "\"\n"
        << extra;
  }
  fs::path dir_;
};

TEST_F(Daemon, StreamsRecordsPausesSimsAndStopsCleanly) {
  ASSERT_EQ(
      run_feed({"--write-iccids", (dir_ / "iccids.txt").string(), "--sims", "200", "--quiet"}), 0);
  write_config();
  child d({SIMCAPD_BIN, "--config", (dir_ / "simcapd.toml").string(), "--feed", "127.0.0.1:0",
           "--http", "127.0.0.1:0", "--clock", "simulated"},
          dir_ / "d.out", dir_ / "d.err");
  ASSERT_TRUE(d.started());
  auto port = d.wait_for_line("feed listening on 127.0.0.1:", 20s);
  ASSERT_TRUE(port) << d.err();
  std::string out;
  ASSERT_EQ(
      run_feed({"--connect", "127.0.0.1:" + *port, "--feed", "carrier-a", "--token", "feed-secret",
                "--sims", "200", "--records", "40000", "--mean-bytes", "4000", "--quiet"},
               &out),
      0)
      << out;
  EXPECT_NE(out.find("acked up to 40000"), std::string::npos) << out;

  d.signal(SIGTERM);
  auto code = d.wait(30s);
  ASSERT_TRUE(code.has_value()) << "simcapd did not stop on SIGTERM";
  EXPECT_EQ(*code, 0) << d.err();
  const std::string log = d.err();
  // A first start on a fresh data directory and a clean run log no error.
  EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
  // The busy SIMs (10 of 200 take half of about 160 MB) passed their 5 MB limit.
  EXPECT_TRUE(std::regex_search(
      log, std::regex("event [0-9]+ paused iccid=8901000[0-9]+ product=acme "
                      "reason=data_limit usage_bytes=[0-9]+ limit_bytes=5000000")))
      << log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex("records counted=40000 .* paused=([0-9]+)")))
      << log;
  EXPECT_GE(std::stoi(m[1]), 10);
  EXPECT_TRUE(fs::exists(dir_ / "data" / "deadletter.jsonl"));
  EXPECT_EQ(fs::file_size(dir_ / "data" / "deadletter.jsonl"), 0u);
}

TEST_F(Daemon, BadRecordsGoToTheDeadLetterLog) {
  ASSERT_EQ(run_feed({"--write-iccids", (dir_ / "iccids.txt").string(), "--sims", "10", "--quiet"}),
            0);
  write_config();
  child d({SIMCAPD_BIN, "--config", (dir_ / "simcapd.toml").string(), "--feed", "127.0.0.1:0",
           "--http", "127.0.0.1:0"},
          dir_ / "d.out", dir_ / "d.err");
  auto port = d.wait_for_line("feed listening on 127.0.0.1:", 20s);
  ASSERT_TRUE(port) << d.err();
  std::ifstream ids(dir_ / "iccids.txt");
  std::string iccid;
  std::getline(ids, iccid);
  const std::string now = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count());
  std::ofstream(dir_ / "records.jsonl")
      << "{\"iccid\":\"" << iccid << "\",\"end\":" << now << ",\"up\":100}\n"
      << "{\"iccid\":\"123\",\"end\":" << now << ",\"up\":100}\n"
      << "this is not json\n"
      << "{\"iccid\":\"" << iccid << "\",\"end\":" << now << ",\"down\":50}\n";
  std::string out;
  ASSERT_EQ(run_feed({"--connect", "127.0.0.1:" + *port, "--token", "feed-secret", "--replay",
                      (dir_ / "records.jsonl").string()},
                     &out),
            0)
      << out;
  EXPECT_NE(out.find("rejects 2"), std::string::npos) << out;
  d.signal(SIGTERM);
  ASSERT_EQ(d.wait(30s), 0);
  std::string dl = read_file(dir_ / "data" / "deadletter.jsonl");
  EXPECT_NE(dl.find("\"reason\":\"bad_iccid\""), std::string::npos) << dl;
  EXPECT_NE(dl.find("\"reason\":\"malformed_json\""), std::string::npos) << dl;
  EXPECT_NE(dl.find("\"feed\":\"carrier-a\""), std::string::npos) << dl;
  EXPECT_NE(dl.find("\"raw\":\"this is not json\""), std::string::npos) << dl;
  EXPECT_NE(d.err().find("records counted=2 "), std::string::npos) << d.err();
}

TEST_F(Daemon, WrongConfigFailsNamingTheKey) {
  std::ofstream(dir_ / "bad.toml") << "[limits]\nlate_grace = \"soon\"\nmystery = 1\n";
  child d({SIMCAPD_BIN, "--config", (dir_ / "bad.toml").string()}, dir_ / "d.out", dir_ / "d.err");
  auto code = d.wait(20s);
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, 2);
  EXPECT_NE(d.err().find("limits.late_grace"), std::string::npos) << d.err();
  EXPECT_NE(d.err().find("limits.mystery: unknown key"), std::string::npos) << d.err();
}

TEST_F(Daemon, FeedWithWrongTokenIsRefused) {
  ASSERT_EQ(run_feed({"--write-iccids", (dir_ / "iccids.txt").string(), "--sims", "1", "--quiet"}),
            0);
  write_config();
  child d({SIMCAPD_BIN, "--config", (dir_ / "simcapd.toml").string(), "--feed", "127.0.0.1:0",
           "--http", "127.0.0.1:0"},
          dir_ / "d.out", dir_ / "d.err");
  auto port = d.wait_for_line("feed listening on 127.0.0.1:", 20s);
  ASSERT_TRUE(port);
  std::string out;
  EXPECT_EQ(
      run_feed({"--connect", "127.0.0.1:" + *port, "--token", "wrong", "--records", "10"}, &out),
      1);
  EXPECT_NE(out.find("bad_token"), std::string::npos) << out;
  d.signal(SIGINT);
  EXPECT_EQ(d.wait(30s), 0);
}

}  // namespace
}  // namespace simcap::testing
