// The dead-letter log on disk: rotation keeps it within its bounds, a full disk loses entries
// counted and never blocks, and a flood of bad lines over a real feed session stays within
// deadletter_max_bytes x (deadletter_files + 1).
#include "dead_letter_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "daemon.hpp"
#include "eventually.hpp"
#include "feed_client.hpp"
#include "http_client.hpp"

namespace simcap::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

dead_letter entry(std::uint64_t seq, std::string_view raw) {
  dead_letter d;
  d.time = 1'760'000'000;
  d.feed = "carrier-a";
  d.seq = seq;
  d.reason = reject_reason::malformed_json;
  d.detail = "not JSON";
  d.raw = raw;
  return d;
}

std::uint64_t lines_in(const fs::path& p) {
  std::ifstream in(p);
  std::uint64_t n = 0;
  for (std::string l; std::getline(in, l);) {
    EXPECT_EQ(l.front(), '{');
    EXPECT_EQ(l.back(), '}');
    ++n;
  }
  return n;
}

class DeadLetterFile : public ::testing::Test {
 protected:
  DeadLetterFile() {
    dir_ = fs::temp_directory_path() / ("simcap-dl-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~DeadLetterFile() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(DeadLetterFile, RotatesKeepingTheOldFilesAsked) {
  const std::string path = (dir_ / "deadletter.jsonl").string();
  dead_letter_file_options o;
  o.max_bytes = 65'536;
  o.files = 2;
  std::uint64_t n = 0;
  {
    dead_letter_file dl(path, o);
    for (; n < 20'000; ++n) dl.write(entry(n, "x"));
    dl.flush();
    const auto c = dl.read_counters();
    EXPECT_EQ(c.entries, n);
    EXPECT_EQ(c.dropped, 0u);
    EXPECT_GE(c.rotations, 10u);  // ~100 bytes an entry: 2 MB through 64 KiB files
  }
  EXPECT_TRUE(fs::exists(path + ".1"));
  EXPECT_TRUE(fs::exists(path + ".2"));
  EXPECT_FALSE(fs::exists(path + ".3"));
  std::uint64_t kept = 0;
  for (const std::string& p : {path, path + ".1", path + ".2"}) {
    EXPECT_LE(fs::file_size(p), o.max_bytes) << p;
    kept += lines_in(p);
  }
  // The newest entries are the ones kept: the last one is the current file's last line.
  std::ifstream cur(path);
  std::string last, l;
  while (std::getline(cur, l)) last = l;
  EXPECT_NE(last.find("\"seq\":19999,"), std::string::npos) << last;
  EXPECT_GT(kept, 1000u);
  EXPECT_LT(kept, n);
}

TEST_F(DeadLetterFile, AFullDiskDropsEntriesCountedWithoutBlocking) {
  // /dev/full: every write fails with ENOSPC.
  dead_letter_file dl("/dev/full");
  for (std::uint64_t n = 0; n < 1000; ++n) dl.write(entry(n, "bad"));
  dl.flush();
  const auto c = dl.read_counters();
  EXPECT_EQ(c.entries, 1000u);
  EXPECT_EQ(c.dropped, 1000u);
  EXPECT_EQ(c.bytes_written, 0u);
}

TEST_F(DeadLetterFile, AFloodOfBadLinesOverAFeedStaysWithinTheBound) {
  daemon_config cfg;
  cfg.data_dir = dir_ / "data";
  cfg.http = "127.0.0.1:0";
  cfg.feed = "127.0.0.1:0";
  cfg.engine.shards = 1;
  cfg.tokens = {{"admin-token", true, ""}};
  cfg.feeds = {{"carrier-a", "feed-secret", ""}};
  cfg.dead_letters.max_bytes = 65'536;
  cfg.dead_letters.files = 2;
  daemon d(cfg, true);
  d.start();
  feed_client f(d.feed_port());
  f.send("{\"hello\":{\"feed\":\"carrier-a\",\"token\":\"feed-secret\"}}\n");
  ASSERT_TRUE(f.read_line());
  constexpr int kLines = 50'000;
  std::string flood;
  for (int i = 0; i < kLines; ++i) flood += "x\n";
  // The session answers each bad line with a reject: read them while flooding.
  std::atomic<int> rejects = 0;
  std::thread reader([&] {
    while (rejects < kLines) {
      if (!f.read_line(5s)) break;
      ++rejects;
    }
  });
  ASSERT_TRUE(f.send(flood));
  reader.join();
  EXPECT_EQ(rejects, kLines);
  http_client c(d.http_port());
  auto metric = [&](std::string_view name) -> std::uint64_t {
    const std::string body = c.request("GET", "/metrics").body;
    const auto at = body.find("\n" + std::string(name) + " ");
    return at == std::string::npos ? 0 : std::stoull(body.substr(at + name.size() + 2));
  };
  ASSERT_TRUE(eventually([&] { return metric("simcap_deadletter_entries_total") == kLines; }, 30s));
  ASSERT_TRUE(eventually(
      [&] {
        return metric("simcap_deadletter_bytes_written_total") > 0 &&
               metric("simcap_deadletter_rotations_total") > 0;
      },
      10s));
  d.stop();
  std::uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(cfg.data_dir)) {
    if (e.path().filename().string().starts_with("deadletter.jsonl")) total += e.file_size();
  }
  EXPECT_LE(total, cfg.dead_letters.max_bytes * (cfg.dead_letters.files + 1));
  EXPECT_GT(total, cfg.dead_letters.max_bytes);
  EXPECT_FALSE(fs::exists(cfg.data_dir / "deadletter.jsonl.3"));
}

}  // namespace
}  // namespace simcap::testing
