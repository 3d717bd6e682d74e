// The feed port over real sockets on 127.0.0.1 (SPEC §6, §7).
#include "feed/feed_server.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "feed_client.hpp"
#include "feed_port_fixture.hpp"
#include "sanitizers.hpp"

namespace simcap::testing {
namespace {

using namespace std::chrono_literals;

std::size_t rss_bytes() {
  std::ifstream f("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// Sends what the server takes until it has taken nothing for a second (it stopped reading);
// returns the bytes it took.
std::size_t send_until_blocked(feed_client& c, std::string_view all) {
  std::size_t sent = 0;
  auto last_progress = std::chrono::steady_clock::now();
  while (sent < all.size() && std::chrono::steady_clock::now() - last_progress < 1s) {
    std::size_t n = c.send_some(all.substr(sent, 1 << 20));
    if (n > 0) {
      sent += n;
      last_progress = std::chrono::steady_clock::now();
    } else {
      std::this_thread::sleep_for(5ms);  // polling a non-blocking send, not synchronising
    }
  }
  return sent;
}

class FeedServer : public feed_port_fixture {
 protected:
  FeedServer() { start_port({{"carrier-a", "secret", ""}}, quick_options()); }

  // Connects and says hello; returns resume_after.
  std::uint64_t connect(feed_client& c) {
    c.send(hello());
    auto w = c.read_line();
    EXPECT_TRUE(w.has_value());
    auto v = boost::json::parse(*w);
    return v.at("welcome").at("resume_after").to_number<std::uint64_t>();
  }
};

TEST_F(FeedServer, BadHelloIsRefusedAndClosed) {
  feed_client c(port_);
  c.send("{\"hi\":1}\n");
  auto l = c.read_line();
  ASSERT_TRUE(l);
  auto v = boost::json::parse(*l);
  EXPECT_EQ(v.at("error").at("code").as_string(), "bad_hello");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(FeedServer, BadTokenIsRefusedAndClosed) {
  for (auto h : {hello("carrier-a", "wrong"), hello("nobody", "secret")}) {
    feed_client c(port_);
    c.send(h);
    auto l = c.read_line();
    ASSERT_TRUE(l);
    EXPECT_EQ(boost::json::parse(*l).at("error").at("code").as_string(), "bad_token");
    EXPECT_TRUE(c.wait_closed());
  }
}

TEST_F(FeedServer, SilentClientIsClosedAfterHelloTimeout) {
  feed_client c(port_);
  auto l = c.read_line(5s);
  ASSERT_TRUE(l);
  EXPECT_EQ(boost::json::parse(*l).at("error").at("code").as_string(), "bad_hello");
  EXPECT_TRUE(c.wait_closed());
}

TEST_F(FeedServer, MixedStreamCountsEveryGoodLineAndRejectsEachBadOne) {
  feed_client c(port_);
  ASSERT_EQ(connect(c), 0u);
  const std::string id1 = test_iccid_text(1);
  std::string s;
  s += line(1, 1, 100);
  s += "{\"seq\":2,\"iccid\":\"" + id1 + "\",\"up\":1,\"end\":17\n";  // malformed
  s += "{\"down\":200,\"x\":[1,{\"y\":2}],\"seq\":3,\"end\":\"2025-11-22T08:00:00Z\",\"iccid\":\"" +
       id1 + "\"}\n";
  s += "{\"seq\":4,\"iccid\":\"89014103211118510721\",\"up\":1,\"end\":1763800000}\n";  // bad ICCID
  s += "{\"seq\":5,\"iccid\":\"" + id1 + "\",\"end\":1763800000}\n";                    // missing
  s += "{\"seq\":6,\"iccid\":\"" + id1 + "\",\"up\":1,\"end\":1763800000,\"pad\":\"" +
       std::string(6000, 'p') + "\"}\n";
  s += line(7, 1, 300);
  s += line(8, 5000, 1);  // not imported
  s += line(7, 1, 999);   // repeated seq: a duplicate
  s += "{\"seq\":9,\"iccid\":\"" + id1 + "\",\"up\":1,\"end\":1763900000}\n";  // future
  s += line(10, 2, 50);
  ASSERT_TRUE(c.send(s));
  auto r = until_ack(c, 10);
  EXPECT_EQ(r.ack, 10u);
  // Lines that did not parse as a record carry no seq (null): theirs cannot be trusted.
  std::map<std::uint64_t, std::string> got;
  std::multiset<std::string> without_seq;
  for (const auto& j : r.rejects) {
    if (j.at("seq").is_null())
      without_seq.insert(std::string(j.at("reason").as_string()));
    else
      got[j.at("seq").to_number<std::uint64_t>()] = std::string(j.at("reason").as_string());
  }
  std::map<std::uint64_t, std::string> want{
      {4, "bad_iccid"}, {5, "missing_field"}, {8, "unknown_iccid"}, {9, "future_time"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(without_seq, (std::multiset<std::string>{"malformed_json", "line_too_long"}));
  EXPECT_EQ(usage(1), 600u);
  EXPECT_EQ(usage(2), 50u);
  auto dl = dead_letters_.entries();
  EXPECT_EQ(dl.size(), 6u);
  for (const auto& d : dl) EXPECT_EQ(d.feed, "carrier-a");
  EXPECT_EQ(feeds_->all()[0]->duplicates.load(), 1u);
  // The session goes on.
  ASSERT_TRUE(c.send(line(11, 1, 1)));
  EXPECT_EQ(until_ack(c, 11).ack, 11u);
  EXPECT_EQ(usage(1), 601u);
}

TEST_F(FeedServer, OverlongLineAcrossReadsIsSkippedToItsNewline) {
  feed_client c(port_);
  connect(c);
  std::string big = "{\"seq\":2,\"iccid\":\"" + test_iccid_text(1) + "\",\"pad\":\"" +
                    std::string(3 << 20, 'z') + "\"}\n";
  ASSERT_TRUE(c.send(line(1, 1, 10) + big + line(3, 1, 20)));
  auto r = until_ack(c, 3);
  EXPECT_EQ(r.ack, 3u);
  ASSERT_EQ(r.rejects.size(), 1u);
  EXPECT_EQ(r.rejects[0].at("reason").as_string(), "line_too_long");
  EXPECT_TRUE(r.rejects[0].at("seq").is_null());  // never parsed: no seq to trust
  EXPECT_EQ(usage(1), 30u);
  ASSERT_EQ(dead_letters_.entries().size(), 1u);
  EXPECT_EQ(dead_letters_.entries()[0].raw.size(), kMaxLineBytes);
}

TEST_F(FeedServer, RecordsRightBehindTheHelloCount) {
  feed_client c(port_);
  c.send(hello() + line(1, 3, 7) + line(2, 3, 8));
  ASSERT_TRUE(c.read_line());  // welcome
  EXPECT_EQ(until_ack(c, 2).ack, 2u);
  EXPECT_EQ(usage(3), 15u);
}

TEST_F(FeedServer, ReconnectResumesWithoutDoubleCounting) {
  std::uint64_t want = 0;
  {
    feed_client c(port_);
    ASSERT_EQ(connect(c), 0u);
    std::string s;
    for (std::uint64_t seq = 1; seq <= 1000; ++seq) s += line(seq, seq % 10, seq);
    for (std::uint64_t seq = 1; seq <= 1000; ++seq) want += seq;
    c.send(s);
    EXPECT_EQ(until_ack(c, 1000).ack, 1000u);
  }
  feed_client c(port_);
  std::uint64_t resume = connect(c);
  ASSERT_EQ(resume, 1000u);
  // A feed that resends a little too much: the overlap is counted as duplicates only.
  std::string s;
  for (std::uint64_t seq = 900; seq <= 1100; ++seq) s += line(seq, seq % 10, seq);
  for (std::uint64_t seq = 1001; seq <= 1100; ++seq) want += seq;
  c.send(s);
  EXPECT_EQ(until_ack(c, 1100).ack, 1100u);
  std::uint64_t total = 0;
  for (std::uint64_t i = 0; i < 10; ++i) total += usage(i);
  EXPECT_EQ(total, want);
  EXPECT_EQ(feeds_->all()[0]->duplicates.load(), 101u);
}

TEST_F(FeedServer, NewSessionTakesOverTheFeed) {
  feed_client a(port_);
  connect(a);
  a.send(line(1, 1, 5) + line(2, 1, 5));
  EXPECT_EQ(until_ack(a, 2).ack, 2u);
  feed_client b(port_);
  EXPECT_EQ(connect(b), 2u);
  EXPECT_TRUE(a.wait_closed());
  b.send(line(3, 1, 5));
  EXPECT_EQ(until_ack(b, 3).ack, 3u);
  EXPECT_EQ(usage(1), 15u);
}

TEST_F(FeedServer, FeedFasterThanTheShardsIsHeldBackWithBoundedMemory) {
  // Stall both shards.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  simcap::testing::shard_stall stall(*eng_, released);

  constexpr std::uint64_t kRecords = 600000;  // about 60 MB of lines
  std::string all;
  all.reserve(kRecords * 100);
  for (std::uint64_t seq = 1; seq <= kRecords; ++seq) all += line(seq, seq % 100, 1);
  feed_client c(port_);
  connect(c);
  const std::size_t rss_before = rss_bytes();
  const std::size_t sent = send_until_blocked(c, all);
  const std::size_t rss_after = rss_bytes();
  // The server stopped reading: the sender is blocked well before the end...
  EXPECT_LT(sent, all.size() / 2) << "sent " << sent << " of " << all.size();
  // ...and the server's memory did not grow with what was offered.
  if (!kSanitized) {  // (shadow memory is resident too under a sanitizer)
    EXPECT_LT(rss_after, rss_before + (48u << 20)) << "rss grew by " << (rss_after - rss_before);
  }
  EXPECT_EQ(eng_->stats().records_counted, 0u);

  release.set_value();
  ASSERT_TRUE(c.send(std::string_view(all).substr(sent)));
  auto r = until_ack(c, kRecords, 60s);
  EXPECT_EQ(r.ack, kRecords);
  EXPECT_EQ(eng_->stats().records_counted, kRecords);  // nothing dropped
}

TEST_F(FeedServer, APeerThatNeverReadsItsRejectsIsReadNoFurther) {
  // 2-byte bad lines: each makes a reject line of ~80 bytes to write back, which this peer
  // never reads.
  constexpr std::size_t kBad = 5'000'000;  // 10 MB offered, ~400 MB of rejects
  std::string all;
  all.reserve(2 * kBad);
  for (std::size_t i = 0; i < kBad; ++i) all += "x\n";
  feed_client c(port_);
  connect(c);
  const std::size_t rss_before = rss_bytes();
  const std::size_t sent = send_until_blocked(c, all);
  const std::size_t rss_after = rss_bytes();
  EXPECT_LT(sent, all.size() / 2) << "sent " << sent << " of " << all.size();
  if (!kSanitized) {  // (shadow memory is resident too under a sanitizer)
    EXPECT_LT(rss_after, rss_before + (64u << 20)) << "rss grew by " << (rss_after - rss_before);
  }
  EXPECT_GE(server_->write_waits().load(), 1u);
  const std::int64_t pending = server_->pending_write_bytes().load();
  EXPECT_GT(pending, 0);
  EXPECT_LT(pending, std::int64_t{32} << 20);
  // Once it reads, the session goes on: every bad line gets its reject.
  std::thread rest([&] { c.send(std::string_view(all).substr(sent)); });
  std::size_t rejects = 0;
  while (rejects < kBad) {
    auto l = c.read_line(kSanitized ? 60s : 10s);  // (a -j2 TSan run paused it past 10 s once)
    if (!l) break;
    if (l->find("\"reject\"") != std::string::npos) ++rejects;
  }
  rest.join();
  EXPECT_EQ(rejects, kBad);
}

TEST_F(FeedServer, ClientHalfCloseGetsTheFinalAckThenClose) {
  feed_client c(port_);
  connect(c);
  std::string s;
  for (std::uint64_t seq = 1; seq <= 5000; ++seq) s += line(seq, seq % 50, 1);
  c.send(s);
  c.shutdown_write();
  EXPECT_EQ(until_ack(c, 5000).ack, 5000u);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(eng_->stats().records_counted, 5000u);
}

// A rejected line without a trustworthy seq is dead-lettered and moves nothing: the good
// records after it count, and resume_after is not poisoned after a reconnect.
TEST_F(FeedServer, UnreadableSeqDoesNotMoveTheWatermark) {
  const std::string id1 = test_iccid_text(1);
  {
    feed_client c(port_);
    ASSERT_EQ(connect(c), 0u);
    std::string s = line(1, 1, 1);
    s += "{\"seq\":18446744073709551616,\"iccid\":\"" + id1 +
         "\",\"up\":1,\"end\":" + std::to_string(kNow) + "}\n";
    s += "{\"meta\":{\"seq\":999999},\"seq\":10,\"iccid\":\"" + id1 + "\"\n";  // unterminated
    s += "{\"seq\":0,\"iccid\":\"" + id1 + "\",\"up\":1,\"end\":" + std::to_string(kNow) + "}\n";
    for (std::uint64_t seq = 2; seq <= 11; ++seq) s += line(seq, 1, 10);
    ASSERT_TRUE(c.send(s));
    auto r = until_ack(c, 11);
    EXPECT_EQ(r.ack, 11u);
    EXPECT_EQ(r.rejects.size(), 3u);
    for (const auto& j : r.rejects) EXPECT_TRUE(j.at("seq").is_null());
    EXPECT_EQ(usage(1), 101u);
    EXPECT_EQ(feeds_->all()[0]->duplicates.load(), 0u);
    EXPECT_EQ(dead_letters_.entries().size(), 3u);
  }
  feed_client again(port_);
  EXPECT_EQ(connect(again), 11u);
}

// The 4 KiB limit is decided on the line without its CR, whether the LF comes in the same read
// or a later one.
TEST_F(FeedServer, LineLimitDoesNotDependOnHowTheBytesArrive) {
  feed_client c(port_);
  ASSERT_EQ(connect(c), 0u);
  auto exact = [](std::uint64_t seq) {
    std::string l = line(seq, 2, 5);
    l.pop_back();  // the newline
    l.pop_back();  // the closing brace
    l += ",\"pad\":\"";
    l += std::string(kMaxLineBytes - l.size() - 2, 'p');
    l += "\"}";
    EXPECT_EQ(l.size(), kMaxLineBytes);
    return l;
  };
  ASSERT_TRUE(c.send(exact(1) + "\r\n"));  // CR and LF together
  auto first = until_ack(c, 1);
  EXPECT_EQ(first.ack, 1u);
  // The LF comes later: line 3 and the CR after line 4 are read together (one send); the ack of
  // 3 says that read was handled before the LF is sent.
  ASSERT_TRUE(c.send(line(3, 2, 1) + exact(4) + "\r"));
  auto mid = until_ack(c, 3);
  EXPECT_EQ(mid.ack, 3u);
  ASSERT_TRUE(c.send("\n" + line(5, 2, 1)));
  auto r = until_ack(c, 5);
  EXPECT_EQ(r.ack, 5u);
  EXPECT_TRUE(first.rejects.empty());
  EXPECT_TRUE(mid.rejects.empty());
  EXPECT_TRUE(r.rejects.empty());
  EXPECT_EQ(usage(2), 12u);
}

}  // namespace
}  // namespace simcap::testing
