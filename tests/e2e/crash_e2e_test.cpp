// Crash recovery as an operator meets it: simcapd is killed with SIGKILL at random moments while
// simcap-feed streams (resending from resume_after each time it reconnects) and restarted on the
// same data dir. Every checkpoint is held 30 ms between taking the shards' state and writing it
// (a test hook), and they run about 1 ms apart, so most kills land inside one: state taken from
// the shards, not yet on disk. At the end every SIM's total and state, and the events, match the
// ground truth computed from the records: nothing lost, nothing counted twice, no pause reported
// twice.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>

#include "eventually.hpp"
#include "http_client.hpp"
#include "http_receiver.hpp"
#include "process.hpp"
#include "small_disk.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class Crash : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / (std::string("simcap-crash-") + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    feed_port_ = free_port();
    http_port_ = free_port();
  }
  void TearDown() override {
    daemon_.reset();
    fs::remove_all(dir_);
  }

  void start_daemon() {
    std::vector<std::string> args{SIMCAPD_BIN,
                                  "--config",
                                  (dir_ / "simcapd.toml").string(),
                                  "--feed",
                                  std::string("127.0.0.1:") + std::to_string(feed_port_),
                                  "--http",
                                  std::string("127.0.0.1:") + std::to_string(http_port_),
                                  "--clock",
                                  "simulated"};
    if (checkpoint_pause_ms_ != 0) {
      args.push_back("--test-checkpoint-pause-ms");
      args.push_back(std::to_string(checkpoint_pause_ms_));
    }
    daemon_ =
        std::make_unique<child>(args, dir_ / (std::string("d") + std::to_string(starts_) + ".out"),
                                dir_ / (std::string("d") + std::to_string(starts_) + ".err"));
    ++starts_;
    ASSERT_TRUE(daemon_->wait_for_line("feed listening on", 60s)) << daemon_->err();
  }
  // The ICCIDs of simcap-feed's synthetic fleet, one per line.
  void write_iccids(const fs::path& file, const std::string& sims,
                    const std::string& prefix = "8901") {
    child w({SIMCAP_FEED_BIN, "--write-iccids", file.string(), "--sims", sims, "--iccid-prefix",
             prefix},
            dir_ / "w.out", dir_ / "w.err");
    ASSERT_EQ(w.wait(30s), 0);
  }
  // A config with the admin token "admin", the feed carrier-a (token feed-secret) and the
  // product acme, with `product_keys` added to it.
  void write_config(const fs::path& data_dir, const std::string& product_keys = "") {
    std::ofstream(dir_ / "simcapd.toml")
        << "[server]\ndata_dir = \"" << data_dir.string() << "\"\n"
        << "[[tokens]]\ntoken = \"admin\"\nscope = \"admin\"\n"
        << "[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
        << "[[products]]\nid = \"acme\"\n"
        << product_keys;
  }
  void kill_daemon() {
    daemon_->signal(SIGKILL);
    daemon_->wait(10s);
  }
  // The full-disk holds' set-up: simcapd on data_dir with a 16 MB dedup_memory and the 1,000
  // SIMs 8901... imported into acme (with a limit they do not reach).
  void start_with_1000_sims(const fs::path& data_dir) {
    write_iccids(dir_ / "a.txt", "1000", "8901");
    write_config(data_dir, "default_mb_limit = 100000\n[limits]\ndedup_memory = \"16MB\"\n");
    start_daemon();
    http_client c(http_port_);
    ASSERT_EQ(c.request("POST", "/v1/products/acme/sims", read_file(dir_ / "a.txt"), "admin",
                        "text/plain")
                  .status,
              200u);
  }
  // Whether the feeds are held for the full disk within 60 s: the store has failed (/readyz
  // answers 503), a feed session has stopped reading for it, and what was read before the hold
  // has been applied (the `applied` metric stays put for half a second). A hold that began
  // before the write failed (a flood outgrows dedup_memory between two checkpoints, more so
  // while RocksDB stalls a write on the full disk) rightly lifts once a cut takes what waited;
  // only a failed store keeps it.
  bool feeds_held(const std::string& applied) {
    http_client c(http_port_);
    std::uint64_t last = ~0ULL;
    auto since = std::chrono::steady_clock::now();
    return eventually(
        [&] {
          const std::uint64_t waits = metric(http_port_, "simcap_feed_store_waits_total");
          if (waits == ~0ULL || waits == 0 || c.request("GET", "/readyz").status != 503u) {
            return false;
          }
          const std::uint64_t now_applied = metric(http_port_, applied);
          const auto now = std::chrono::steady_clock::now();
          if (now_applied != last) {
            last = now_applied;
            since = now;
            return false;
          }
          return now - since >= 500ms;
        },
        60s);
  }

  // The end of a full-disk hold: room is made (the filler goes), and the held feed is read
  // again to its last record, all of it acked and counted under `applied` (a metric).
  void resumes_once_there_is_room(child& feed, const fs::path& filler, std::uint64_t records,
                                  const std::string& applied) {
    fs::remove(filler);
    auto fed = feed.wait(240s);
    ASSERT_TRUE(fed.has_value()) << "the feed was not read again once the disk had room\n"
                                 << daemon_->err();
    const std::optional<int> exited = daemon_->wait(0ms);  // (-signal when killed by one)
    EXPECT_EQ(*fed, 0) << feed.out() << feed.err()
                       << (exited ? "simcapd exited " + std::to_string(*exited) : "simcapd runs")
                       << ", its log:\n"
                       << daemon_->err();
    EXPECT_NE(feed.out().find("acked up to " + std::to_string(records)), std::string::npos)
        << feed.out();
    EXPECT_EQ(metric(http_port_, applied), records);
    daemon_->signal(SIGTERM);
    EXPECT_EQ(daemon_->wait(60s), 0) << daemon_->err();
  }

  fs::path dir_;
  std::uint16_t feed_port_ = 0, http_port_ = 0;
  std::unique_ptr<child> daemon_;
  int starts_ = 0;
  // Holds every checkpoint that long between the cut and the write, so that kills land in them.
  int checkpoint_pause_ms_ = 0;
};

TEST_F(Crash, KilledSixTimesWhileStreamingCountsEveryRecordExactlyOnce) {
  checkpoint_pause_ms_ = 30;
  constexpr int kSims = 300;
  constexpr int kRecords = 400'000;
  {
    child w({SIMCAP_FEED_BIN, "--write-iccids", (dir_ / "iccids.txt").string(), "--sims",
             std::to_string(kSims)},
            dir_ / "w.out", dir_ / "w.err");
    ASSERT_EQ(w.wait(30s), 0);
  }
  std::vector<std::string> iccids;
  {
    std::ifstream in(dir_ / "iccids.txt");
    for (std::string l; std::getline(in, l);) iccids.push_back(l);
  }
  ASSERT_EQ(iccids.size(), static_cast<std::size_t>(kSims));
  // Ground truth: SIMs 0-19 are heavy (past their 5 MB limit part way), the rest light.
  std::vector<std::uint64_t> truth(kSims, 0);
  const auto t0 = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  {
    std::ofstream out(dir_ / "records.jsonl");
    std::mt19937_64 rng(7);
    for (int seq = 1; seq <= kRecords; ++seq) {
      int sim = static_cast<int>(rng() % kSims);
      std::uint64_t bytes = sim < 20 ? 4000 + rng() % 4000 : 10 + rng() % 200;
      truth[sim] += bytes;
      out << "{\"seq\":" << seq << ",\"iccid\":\"" << iccids[sim] << "\",\"end\":" << t0
          << ",\"up\":" << bytes / 3 << ",\"down\":" << bytes - bytes / 3 << "}\n";
    }
  }
  std::ofstream(dir_ / "simcapd.toml")
      << "[server]\ndata_dir = \"" << (dir_ / "data").string()
      << "\"\ncheckpoint_interval = \"1ms\"\n"
      << "[[tokens]]\ntoken = \"admin\"\nscope = \"admin\"\n"
      << "[[feeds]]\nname = \"carrier-a\"\ntoken = \"feed-secret\"\n"
      << "[[products]]\nid = \"acme\"\ndefault_mb_limit = 5\niccids_file = \""
      << (dir_ / "iccids.txt").string() << "\"\n";
  start_daemon();

  // A control change answered 200 survives an immediate kill.
  {
    http_client c(http_port_);
    auto r = c.request("PUT", "/v1/sims/" + iccids[kSims - 1], R"({"mb_limit":77})", "admin");
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  kill_daemon();
  start_daemon();
  {
    http_client c(http_port_);
    auto r = c.request("GET", "/v1/sims/" + iccids[kSims - 1], "", "admin");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(json::parse(r.body).at("mb_limit").to_number<int>(), 77) << r.body;
  }

  // Stream at a pace the kills land in, resending from resume_after after each one.
  child feed({SIMCAP_FEED_BIN, "--connect", std::string("127.0.0.1:") + std::to_string(feed_port_),
              "--feed", "carrier-a", "--token", "feed-secret", "--replay",
              (dir_ / "records.jsonl").string(), "--rate", "100000", "--reconnects", "1000",
              "--timeout", "60"},
             dir_ / "feed.out", dir_ / "feed.err");
  std::mt19937 rng(std::random_device{}());
  int kills = 0;
  for (; kills < 6; ++kills) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + rng() % 400));
    if (feed.wait(0ms)) break;  // finished early: the remaining kills would not interrupt anything
    kill_daemon();
    start_daemon();
  }
  auto code = feed.wait(120s);
  ASSERT_TRUE(code.has_value()) << "simcap-feed did not finish";
  ASSERT_EQ(*code, 0) << feed.err();
  EXPECT_GE(kills, 5) << "the stream ended before five kills: slow it down";
  EXPECT_NE(feed.err().find("reconnected"), std::string::npos) << feed.err();

  // One more crash after the final ack: acknowledged means durable.
  kill_daemon();
  start_daemon();
  http_client c(http_port_);
  std::size_t paused = 0;
  for (int i = 0; i < kSims; ++i) {
    auto r = c.request("GET", "/v1/sims/" + iccids[i], "", "admin");
    ASSERT_EQ(r.status, 200u) << r.body;
    auto o = json::parse(r.body).as_object();
    EXPECT_EQ(o.at("usage_bytes").to_number<std::uint64_t>(), truth[i]) << "SIM " << i;
    const std::uint64_t limit = i == kSims - 1 ? 77'000'000 : 5'000'000;
    const bool over = truth[i] >= limit;
    EXPECT_EQ(std::string(o.at("status").as_string()),
              over ? "inactive_data_limit_reached" : "active")
        << "SIM " << i;
    paused += over;
  }
  EXPECT_GE(paused, 15u);
  // The feed's watermark is known before the feed reconnects.
  auto feeds = json::parse(c.request("GET", "/v1/feeds", "", "admin").body).at("feeds").as_array();
  ASSERT_EQ(feeds.size(), 1u);
  EXPECT_EQ(feeds[0].at("watermark").to_number<std::uint64_t>(),
            static_cast<std::uint64_t>(kRecords));
  // Events: one pause and one 90 % alert per SIM over its limit, none twice.
  auto evs = json::parse(c.request("GET", "/v1/events?limit=1000", "", "admin").body)
                 .at("events")
                 .as_array();
  std::map<std::pair<std::string, std::string>, int> seen;
  std::uint64_t last_id = 0;
  for (const auto& e : evs) {
    auto id = e.at("id").to_number<std::uint64_t>();
    EXPECT_GT(id, last_id);
    last_id = id;
    if (!e.as_object().contains("iccid") || e.at("iccid").is_null()) continue;
    seen[{std::string(e.at("type").as_string()), std::string(e.at("iccid").as_string())}]++;
  }
  std::size_t pauses = 0;
  for (const auto& [k, n] : seen) {
    EXPECT_EQ(n, 1) << k.first << " " << k.second;
    pauses += k.first == "paused";
  }
  EXPECT_EQ(pauses, paused);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(30s), 0);
}

// The disk refuses writes (a file size limit stands in for a full disk): the change that cannot
// be made durable is not reported as done, and simcapd says it is not ready. The import of
// 20,000 SIMs below writes 2 to 4 MB: twice the limit at least.
TEST_F(Crash, StoreThatCannotWriteRefusesChangesAndIsNotReady) {
  write_iccids(dir_ / "iccids.txt", "20000");
  write_config(dir_ / "data");
  // sh: ignore SIGXFSZ so a write past the limit fails with EFBIG instead of killing simcapd.
  const std::string cmd = std::string("trap '' XFSZ; ulimit -f 1024; exec ") + SIMCAPD_BIN +
                          " --config " + (dir_ / "simcapd.toml").string() +
                          " --feed 127.0.0.1:0 --http 127.0.0.1:" + std::to_string(http_port_);
  child d({"/bin/sh", "-c", cmd}, dir_ / "d.out", dir_ / "d.err");
  ASSERT_TRUE(d.wait_for_line("http listening on", 60s)) << d.err();
  http_client c(http_port_);
  EXPECT_EQ(c.request("GET", "/readyz").status, 200u);
  std::string body;
  {
    std::ifstream in(dir_ / "iccids.txt");
    body.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string first = body.substr(0, body.find('\n'));
  ASSERT_EQ(c.request("POST", "/v1/products/acme/sims", first, "admin", "text/plain").status, 200u);
  auto r = c.request("POST", "/v1/products/acme/sims", body, "admin", "text/plain");
  EXPECT_EQ(r.status, 503u) << r.body;
  EXPECT_NE(r.body.find("not durable"), std::string::npos) << r.body;
  auto ready = c.request("GET", "/readyz");
  EXPECT_EQ(ready.status, 503u);
  EXPECT_NE(ready.body.find("store failed"), std::string::npos) << ready.body;
  // While the store cannot write, a change is refused before anything changes.
  auto put = c.request("PUT", "/v1/sims/" + first, R"({"mb_limit":77})", "admin");
  EXPECT_EQ(put.status, 503u) << put.body;
  auto sim = json::parse(c.request("GET", "/v1/sims/" + first, "", "admin").body);
  EXPECT_EQ(sim.at("mb_limit").to_number<std::uint64_t>(), 5u);
  // A feed streaming while the store cannot write gets no ack; stopping does not wait for one.
  auto fport = d.wait_for_line("feed listening on 127.0.0.1:", 5s);
  ASSERT_TRUE(fport);
  child feed({SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + *fport, "--feed", "carrier-a", "--token",
              "feed-secret", "--sims", "1", "--records", "1000", "--timeout", "60", "--quiet"},
             dir_ / "f.out", dir_ / "f.err");
  ASSERT_FALSE(feed.wait(1s).has_value()) << feed.out() << feed.err();
  const auto t0 = std::chrono::steady_clock::now();
  d.signal(SIGTERM);
  EXPECT_TRUE(d.wait(30s).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s)
      << "stopping waited for acks that cannot come";
}

// The config's iccids_file is read at every start; a SIM the store knows, released included,
// is left as it is (it used to come back active and billable).
TEST_F(Crash, ReleasedSimStaysReleasedAcrossRestarts) {
  write_iccids(dir_ / "iccids.txt", "3");
  write_config(dir_ / "data", "iccids_file = \"" + (dir_ / "iccids.txt").string() + "\"\n");
  std::string a;
  std::getline(std::ifstream(dir_ / "iccids.txt") >> std::ws, a);
  start_daemon();
  {
    http_client c(http_port_);
    ASSERT_EQ(c.request("DELETE", "/v1/products/acme/sims/" + a, "", "admin").status, 204u);
  }
  daemon_->signal(SIGTERM);
  ASSERT_EQ(daemon_->wait(30s), 0);
  start_daemon();
  http_client c(http_port_);
  auto sim = json::parse(c.request("GET", "/v1/sims/" + a, "", "admin").body);
  EXPECT_EQ(sim.at("state").as_string(), "released");
  EXPECT_NE(daemon_->err().find("0 SIMs imported, 3 already present"), std::string::npos)
      << daemon_->err();
}

std::string rfc3339(std::int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// --clock simulated: after a restart the clock is where it was, not at the real time.
TEST_F(Crash, SimulatedClockResumesAfterARestart) {
  write_iccids(dir_ / "iccids.txt", "1");
  write_config(dir_ / "data");
  const auto real_now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  const std::string later = rfc3339(real_now + 40 * 86400);
  start_daemon();
  {
    http_client c(http_port_);
    ASSERT_EQ(c.request("POST", "/v1/products/acme/sims", read_file(dir_ / "iccids.txt"), "admin",
                        "text/plain")
                  .status,
              200u);
    ASSERT_EQ(c.request("POST", "/v1/admin/clock", R"({"now":")" + later + R"("})", "admin").status,
              200u);
  }
  kill_daemon();
  start_daemon();
  http_client c(http_port_);
  auto product = json::parse(c.request("GET", "/v1/products/acme", "", "admin").body);
  // RFC 3339 times in UTC sort as text.
  EXPECT_GT(std::string(product.at("period_start").as_string()), rfc3339(real_now + 20 * 86400))
      << product;
  // Back to the real time would be backwards.
  EXPECT_EQ(c.request("POST", "/v1/admin/clock",
                      R"({"now":")" + rfc3339(real_now + 86400) + R"("})", "admin")
                .status,
            400u);
}

// A full disk (a 20 MB tmpfs under the data dir): simcapd keeps running, refuses changes and
// takes back the one it could not make durable, acknowledges nothing, and by itself acks again
// once there is room; started on a full disk it serves its state read-only until there is room.
TEST_F(Crash, FullDiskIsSurvivedAndAcksResumeOnceThereIsRoom) {
  small_disk disk(dir_ / "disk", 20);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a 20 MB tmpfs (the full disk)";
  write_iccids(dir_ / "a.txt", "10", "8901");
  write_iccids(dir_ / "b.txt", "50000", "8902");
  write_config(disk.dir() / "data", "default_mb_limit = 100\n");
  const std::string a_list = read_file(dir_ / "a.txt"), b_list = read_file(dir_ / "b.txt");
  const std::string a1 = a_list.substr(0, a_list.find('\n')),
                    b1 = b_list.substr(0, b_list.find('\n'));
  start_daemon();
  http_client c(http_port_);
  ASSERT_EQ(c.request("POST", "/v1/products/acme/sims", a_list, "admin", "text/plain").status,
            200u);

  fs::path filler = disk.fill();
  auto big = c.request("POST", "/v1/products/acme/sims", b_list, "admin", "text/plain");
  EXPECT_EQ(big.status, 503u) << big.body;
  EXPECT_EQ(c.request("GET", "/v1/sims/" + b1, "", "admin").status, 404u);  // taken back
  EXPECT_EQ(c.request("GET", "/readyz").status, 503u);
  EXPECT_EQ(c.request("PUT", "/v1/sims/" + a1, R"({"mb_limit":77})", "admin").status, 503u);
  EXPECT_EQ(json::parse(c.request("GET", "/v1/sims/" + a1, "", "admin").body)
                .at("mb_limit")
                .to_number<int>(),
            100);

  // Records stream while the disk is full; their last ack comes once there is room.
  child feed({SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + std::to_string(feed_port_), "--feed",
              "carrier-a", "--token", "feed-secret", "--sims", "10", "--iccid-prefix", "8901",
              "--records", "1000", "--timeout", "120", "--quiet"},
             dir_ / "f.out", dir_ / "f.err");
  ASSERT_FALSE(feed.wait(2s).has_value())
      << feed.out() << feed.err() << daemon_->err();  // no ack while full
  fs::remove(filler);
  auto fed = feed.wait(60s);
  ASSERT_TRUE(fed.has_value()) << "no ack after the disk had room again" << daemon_->err();
  EXPECT_EQ(*fed, 0) << feed.out() << feed.err() << daemon_->err();
  EXPECT_NE(feed.out().find("acked up to 1000"), std::string::npos) << feed.out();
  EXPECT_TRUE(eventually([&] { return c.request("GET", "/readyz").status == 200u; }, 30s));
  EXPECT_EQ(c.request("GET", "/v1/sims/" + b1, "", "admin").status, 404u);
  ASSERT_EQ(c.request("PUT", "/v1/sims/" + a1, R"({"mb_limit":42})", "admin").status, 200u);

  // Started on a full disk: the state is served, nothing is ready until there is room.
  daemon_->signal(SIGKILL);
  daemon_->wait(10s);
  filler = disk.fill();
  start_daemon();
  http_client r(http_port_);
  EXPECT_EQ(r.request("GET", "/readyz").status, 503u);
  auto sim = r.request("GET", "/v1/sims/" + a1, "", "admin");
  ASSERT_EQ(sim.status, 200u);
  EXPECT_EQ(json::parse(sim.body).at("mb_limit").to_number<int>(), 42);
  EXPECT_EQ(r.request("GET", "/v1/sims/" + b1, "", "admin").status,
            404u);  // the 503 import never lands
  fs::remove(filler);
  EXPECT_TRUE(eventually([&] { return r.request("GET", "/readyz").status == 200u; }, 30s));
  EXPECT_EQ(r.request("PUT", "/v1/sims/" + a1, R"({"mb_limit":43})", "admin").status, 200u);
  daemon_->signal(SIGTERM);
  EXPECT_EQ(daemon_->wait(30s), 0);
}

// While the disk is full, the record ids of what is applied wait in RAM for the store; once
// they outgrow dedup_memory the feeds are held (not read) instead of RAM growing for as long as
// the disk stays full, and once there is room every record is applied and acked.
TEST_F(Crash, FullDiskHoldsFeedsOnceWaitingIdsOutgrowDedupMemory) {
  small_disk disk(dir_ / "disk", 200);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a 200 MB tmpfs (the full disk)";
  start_with_1000_sims(disk.dir() / "data");
  fs::path filler = disk.fill();
  constexpr std::uint64_t kRecords = 6'000'000;  // each with its own id: 70+ MB of ids
  child feed({SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + std::to_string(feed_port_), "--feed",
              "carrier-a", "--token", "feed-secret", "--sims", "1000", "--iccid-prefix", "8901",
              "--records", std::to_string(kRecords), "--timeout", "300", "--quiet"},
             dir_ / "f.out", dir_ / "f.err");
  ASSERT_TRUE(feeds_held("simcap_records_total{outcome=\"counted\"}"))
      << "counted " << metric(http_port_, "simcap_records_total{outcome=\"counted\"}")
      << ", id memory " << metric(http_port_, "simcap_record_id_memory_bytes") << "\n"
      << feed.err() << daemon_->err();
  // Held: two seconds on (unheld, the whole feed takes about that), the feed is not done,
  // nothing more is applied and the ids stay about within their budget (what was in flight when
  // the hold began comes on top); nothing past the last checkpoint that could be written is
  // acked. (Where the hold begins depends on when the store failed: RocksDB frees files as it
  // goes, so a few checkpoints after the disk filled may still be written.)
  ASSERT_FALSE(feed.wait(2s).has_value()) << feed.out() << feed.err();
  const std::uint64_t counted = metric(http_port_, "simcap_records_total{outcome=\"counted\"}");
  EXPECT_LT(counted, kRecords);
  EXPECT_LT(metric(http_port_, "simcap_record_id_memory_bytes"), 32u << 20);
  EXPECT_LT(metric(http_port_, "simcap_feed_durable_seq{feed=\"carrier-a\"}"), counted);
  ASSERT_FALSE(feed.wait(1s).has_value()) << feed.out() << feed.err();
  EXPECT_EQ(metric(http_port_, "simcap_records_total{outcome=\"counted\"}"), counted);

  resumes_once_there_is_room(feed, filler, kRecords, "simcap_records_total{outcome=\"counted\"}");
}

// The same for events: a late record makes one (late_adjustment) and waits with it for the
// store. While the disk is full, a flood of late records without ids is held once its events
// outgrow dedup_memory, and once there is room every record is applied and acked.
TEST_F(Crash, FullDiskHoldsFeedsOnceWaitingEventsOutgrowDedupMemory) {
  small_disk disk(dir_ / "disk", 1000);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a 1000 MB tmpfs (the full disk)";
  start_with_1000_sims(disk.dir() / "data");
  std::string closed_start;
  {
    http_client c(http_port_);
    // The first period closes: its records are late from now on (for late_grace).
    auto product = json::parse(c.request("GET", "/v1/products/acme", "", "admin").body);
    closed_start = std::string(product.at("period_start").as_string());
    const std::string anniversary(product.at("period_end").as_string());
    ASSERT_EQ(
        c.request("POST", "/v1/admin/clock", R"({"now":")" + anniversary + R"("})", "admin").status,
        200u);
  }
  fs::path filler = disk.fill();
  // A late_adjustment event each: 168+ MB of them. The store fails at the first checkpoint
  // that does not fit (RocksDB's log has some room set aside); the hold begins after it.
  constexpr std::uint64_t kRecords = 3'000'000;
  child feed({SIMCAP_FEED_BIN, "--connect", "127.0.0.1:" + std::to_string(feed_port_), "--feed",
              "carrier-a", "--token", "feed-secret", "--sims", "1000", "--iccid-prefix", "8901",
              "--records", std::to_string(kRecords), "--time", closed_start, "--no-ids",
              "--timeout", "300", "--quiet"},
             dir_ / "f.out", dir_ / "f.err");
  const std::string late = "simcap_records_total{outcome=\"late\"}";
  ASSERT_TRUE(feeds_held(late)) << "late " << metric(http_port_, late) << ", events waiting "
                                << metric(http_port_, "simcap_events_waiting_bytes") << "\n"
                                << feed.err() << daemon_->err();
  // Held: the feed is not done, nothing more is applied, and the waiting events stay about
  // within the budget (what was in flight when the hold began comes on top).
  ASSERT_FALSE(feed.wait(2s).has_value()) << feed.out() << feed.err();
  const std::uint64_t applied = metric(http_port_, late);
  EXPECT_GT(applied, 0u);
  EXPECT_LT(applied, kRecords);
  // (Each shard's list of them grows by doubling: up to twice what it holds.)
  EXPECT_LT(metric(http_port_, "simcap_events_waiting_bytes"), 48u << 20);
  EXPECT_LT(metric(http_port_, "simcap_feed_durable_seq{feed=\"carrier-a\"}"), applied);
  ASSERT_FALSE(feed.wait(1s).has_value()) << feed.out() << feed.err();
  EXPECT_EQ(metric(http_port_, late), applied) << daemon_->err();

  resumes_once_there_is_room(feed, filler, kRecords, late);
}

}  // namespace
}  // namespace simcap::testing

namespace simcap::testing {
namespace {

// The carrier's network hears of every enforcement event, in order per SIM, through kill -9 in
// the middle of deliveries and a receiver that answers 503 a third of the time. (It found that a
// sink killed before its first position reached a checkpoint started over as a new sink and
// skipped what it had not delivered.)
TEST_F(Crash, EveryEnforcementEventReachesTheCarrierThroughKills) {
  http_receiver rx("sink-secret", [](std::uint64_t n, std::uint64_t, std::uint64_t) {
    return n % 3 == 0 ? 503 : 200;
  });
  constexpr int kSims = 40;
  write_iccids(dir_ / "iccids.txt", std::to_string(kSims));
  std::vector<std::string> iccids;
  {
    std::ifstream in(dir_ / "iccids.txt");
    for (std::string l; std::getline(in, l);) iccids.push_back(l);
  }
  write_config(
      dir_ / "data",
      "iccids_file = \"" + (dir_ / "iccids.txt").string() +
          "\"\n[[sinks]]\nname = \"carrier\"\nkind = \"carrier\"\nurl = \"http://127.0.0.1:" +
          std::to_string(rx.port()) +
          "/events\"\nsecret = \"sink-secret\"\nretry_min = \"10ms\"\nretry_max = \"50ms\"\n"
          "max_in_flight = 4\n");
  start_daemon();
  for (int round = 0; round < 3; ++round) {
    {
      http_client h(http_port_);
      for (const auto& id : iccids) {
        ASSERT_EQ(h.request("PUT", "/v1/sims/" + id, R"({"action":"deactivate"})", "admin").status,
                  200u);
        ASSERT_EQ(h.request("PUT", "/v1/sims/" + id, R"({"action":"reactivate"})", "admin").status,
                  200u);
      }
    }
    if (round == 2) break;
    // Killed while the carrier still has events to get (some delivered, more in flight).
    const std::size_t before = rx.delivered().size();
    ASSERT_TRUE(eventually([&] { return rx.delivered().size() > before; }));
    // (a third of the answers are 503 and retried after 10-50 ms: usually most of the round's
    // events are still undelivered; the test holds either way)
    std::fprintf(stderr, "kill %d with %zu events delivered\n", round, rx.delivered().size());
    kill_daemon();
    start_daemon();
  }
  // Every event of the carrier's types, as the log has it, reaches the receiver.
  std::set<std::uint64_t> want;
  std::map<std::uint64_t, std::vector<std::uint64_t>> ids_of;
  {
    http_client h(http_port_);
    auto r = h.request("GET", "/v1/events?limit=10000", "", "admin");
    ASSERT_EQ(r.status, 200u);
    const auto page = boost::json::parse(r.body);
    for (const auto& e : page.at("events").as_array()) {
      const std::string type(e.at("type").as_string());
      if (type == "alert" || type == "period_closed" || type == "late_adjustment" ||
          type == "factory_test_ended")
        continue;
      const auto id = e.at("id").to_number<std::uint64_t>();
      want.insert(id);
      ids_of[iccid::parse(e.at("iccid").as_string()).value().key()].push_back(id);
    }
  }
  EXPECT_EQ(want.size(),
            static_cast<std::size_t>(kSims) * 7);  // activated, then 3 x (deactivated, activated)
  EXPECT_TRUE(eventually(
      [&] {
        const auto got = rx.delivered();
        return std::includes(got.begin(), got.end(), want.begin(), want.end());
      },
      60s))
      << rx.delivered().size() << " of " << want.size()
      << "; sinks: " << http_client(http_port_).request("GET", "/v1/sinks", "", "admin").body;
  {
    const auto got = rx.delivered();
    std::string missing;
    for (auto id : want) {
      if (got.contains(id)) continue;
      int sent = 0;
      for (const auto& a : rx.arrivals()) sent += a.id == id;
      missing += std::to_string(id) + "(sent " + std::to_string(sent) + ") ";
    }
    EXPECT_EQ(missing, "");
  }
  EXPECT_EQ(rx.bad_signatures(), 0u);
  std::map<std::uint64_t, std::set<std::uint64_t>> ok_so_far;
  for (const auto& a : rx.arrivals()) {
    for (std::uint64_t earlier : ids_of[a.sim]) {
      if (earlier >= a.id) break;
      EXPECT_TRUE(ok_so_far[a.sim].contains(earlier)) << "event " << a.id << " before " << earlier;
    }
    if (a.answered_ok) ok_so_far[a.sim].insert(a.id);
  }
}

}  // namespace
}  // namespace simcap::testing
