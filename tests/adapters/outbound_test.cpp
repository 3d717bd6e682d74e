// Outbound delivery: the signature, the back-off schedule, what each answer means, and a sink's
// order, retries, parking and position, against a transport the test answers by hand.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "engine_fixture.hpp"
#include "eventually.hpp"
#include "outbound/backoff.hpp"
#include "outbound/signature.hpp"
#include "outbound/sink.hpp"

namespace simcap::testing {
namespace {

outbound::answer ans(unsigned status, std::string body,
                     std::optional<std::chrono::milliseconds> retry_after, std::string error) {
  outbound::answer a;
  a.status = status;
  a.body = std::move(body);
  a.retry_after = retry_after;
  a.error = std::move(error);
  return a;
}

using namespace std::chrono_literals;
using outbound::answer;
using outbound::request;

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  ::pclose(p);
  return out;
}

TEST(Signature, MatchesOpenSslDgst) {
  const std::string body = R"({"id":7,"type":"paused"})";
  // openssl dgst -sha256 -hmac KEY prints "SHA2-256(stdin)= HEX" (or "(stdin)= HEX").
  const std::string out =
      run("printf '%s' '1700000000." + body + "' | openssl dgst -sha256 -hmac 'whsec-test'");
  const auto eq = out.rfind("= ");
  ASSERT_NE(eq, std::string::npos) << out;
  const std::string expected = out.substr(eq + 2, 64);
  EXPECT_EQ(outbound::signature_header("whsec-test", 1700000000, body),
            "t=1700000000,v1=" + expected);
  EXPECT_EQ(
      outbound::hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog"),
      "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");  // the textbook example
                                                                            // of HMAC-SHA256
}

TEST(Backoff, DoublesFromMinToMaxWithJitterInside) {
  const auto min = 1000ms, max = 300'000ms;
  std::vector<std::int64_t> ceilings;
  for (unsigned a = 0; a < 12; ++a)
    ceilings.push_back(outbound::backoff_ceiling(a, min, max).count());
  EXPECT_EQ(ceilings, (std::vector<std::int64_t>{1000, 2000, 4000, 8000, 16000, 32000, 64000,
                                                 128000, 256000, 300000, 300000, 300000}));
  for (unsigned a = 0; a < 12; ++a) {
    EXPECT_EQ(outbound::backoff_delay(a, min, max, 0.0), min);
    EXPECT_GE(outbound::backoff_delay(a, min, max, 0.999999).count(), ceilings[a] - 1);
    EXPECT_LE(outbound::backoff_delay(a, min, max, 0.5), outbound::backoff_ceiling(a, min, max));
  }
  EXPECT_EQ(outbound::retry_after("120"), std::optional<std::chrono::milliseconds>(120s));
  EXPECT_EQ(outbound::retry_after(" 3 "), std::optional<std::chrono::milliseconds>(3s));
  EXPECT_EQ(outbound::retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
}

TEST(Backoff, WhatEachAnswerMeans) {
  using outbound::outcome;
  for (unsigned s : {200u, 201u, 204u, 299u})
    EXPECT_EQ(outbound::outcome_of(s), outcome::delivered) << s;
  for (unsigned s : {0u, 408u, 429u, 500u, 502u, 503u, 599u})
    EXPECT_EQ(outbound::outcome_of(s), outcome::retry) << s;
  for (unsigned s : {301u, 302u, 400u, 401u, 403u, 404u, 409u, 410u, 422u}) {
    EXPECT_EQ(outbound::outcome_of(s), outcome::park) << s;
  }
}

// Holds every request until the test answers it.
class held_transport final : public outbound::transport {
 public:
  void post(const request& r, std::function<void(answer)> done) override {
    std::lock_guard lock(mu_);
    pending_.push_back({r, std::move(done)});
    cv_.notify_all();
  }
  // Waits (at most 10 s) until n requests are held; returns them and lets go of them.
  std::vector<std::pair<request, std::function<void(answer)>>> take(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return pending_.size() >= n; });
    auto out = std::move(pending_);
    pending_.clear();
    return out;
  }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return pending_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<request, std::function<void(answer)>>> pending_;
};

class Sink : public engine_fixture {
 protected:
  void SetUp() override {
    make_product("acme");
    io_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (listener_ != 0) eng_->events().remove_listener(listener_);
    work_.reset();
    io_.stop();
    io_thread_.join();
    sink_.reset();  // after its thread: handlers may still refer to it until then
  }
  outbound::sink* make_sink(sink_config c) {
    sink_ = std::make_unique<outbound::sink>(std::move(c), *eng_, transport_, io_);
    sink_->start();
    listener_ = eng_->events().add_listener([p = sink_.get()](const event&) { p->wake(); });
    return sink_.get();
  }
  static sink_config webhook(unsigned max_in_flight = 64) {
    sink_config c;
    c.name = "hook";
    c.kind = sink_config::kind_t::webhook;
    c.url = "http://127.0.0.1:1/";
    c.max_in_flight = max_in_flight;
    c.retry_min = 1ms;
    c.retry_max = 2ms;
    return c;
  }
  static std::uint64_t id_of(const request& r) { return r.events.front().id; }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread io_thread_;
  held_transport transport_;
  std::unique_ptr<outbound::sink> sink_;
  std::uint64_t listener_ = 0;
};

TEST_F(Sink, EventsOfOneSimGoInOrderOneAtATimeWhileSimsGoInParallel) {
  auto s = make_sink(webhook());
  import("acme", {1, 2, 3});  // three `activated` events, one per SIM
  for (std::uint64_t n : {1, 2, 3}) ASSERT_TRUE(act(n, sim_action::deactivate));
  for (std::uint64_t n : {1, 2, 3}) ASSERT_TRUE(act(n, sim_action::reactivate));
  // Nine events, three a SIM: the first of each SIM is sent at once, in parallel.
  auto first = transport_.take(3);
  ASSERT_EQ(first.size(), 3u);
  std::set<std::uint64_t> sims;
  for (auto& [r, done] : first) {
    ASSERT_EQ(r.events.size(), 1u);
    EXPECT_EQ(r.events[0].type, event_type::activated);
    sims.insert(r.events[0].sim);
    EXPECT_EQ(r.idempotency_key, std::to_string(r.events[0].id));
    const auto body = boost::json::parse(r.body);
    EXPECT_EQ(body.at("id").to_number<std::uint64_t>(), r.events[0].id);
    EXPECT_EQ(body.at("type").as_string(), "activated");
  }
  EXPECT_EQ(sims.size(), 3u);
  EXPECT_EQ(transport_.held(), 0u);  // nothing more of these SIMs before their first is done
  // Answer SIM 3 first, then 1: each SIM's next event follows its own answer.
  std::map<std::uint64_t, std::vector<event_type>> sent;
  std::sort(first.begin(), first.end(),
            [](auto& a, auto& b) { return a.first.events[0].sim > b.first.events[0].sim; });
  for (auto& [r, done] : first) {
    sent[r.events[0].sim].push_back(r.events[0].type);
    done(ans(200, "", std::nullopt, ""));
  }
  for (int round = 0; round < 2; ++round) {
    auto next = transport_.take(3);
    ASSERT_EQ(next.size(), 3u) << "round " << round;
    for (auto& [r, done] : next) {
      sent[r.events[0].sim].push_back(r.events[0].type);
      done(ans(204, "", std::nullopt, ""));
    }
  }
  for (const auto& [sim, types] : sent) {
    EXPECT_EQ(types, (std::vector<event_type>{event_type::activated, event_type::deactivated,
                                              event_type::activated}));
  }
  EXPECT_TRUE(eventually([&] { return s->stats().delivered == 9; }));
}

TEST_F(Sink, MaxInFlightBoundsTheRequests) {
  make_sink(webhook(2));
  import("acme", {1, 2, 3, 4, 5});
  auto first = transport_.take(2);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(transport_.held(), 0u);
  for (auto& [r, done] : first) done(ans(200, "", std::nullopt, ""));
  std::size_t total = 2;
  while (total < 5) {
    auto more = transport_.take(1);
    ASSERT_FALSE(more.empty());
    EXPECT_LE(more.size(), 2u);
    total += more.size();
    for (auto& [r, done] : more) done(ans(200, "", std::nullopt, ""));
  }
  EXPECT_EQ(total, 5u);
}

TEST_F(Sink, RetriesUntilDeliveredAndParksAPermanentFailureThenGoesOn) {
  auto s = make_sink(webhook());
  import("acme", {1});
  ASSERT_TRUE(act(1, sim_action::deactivate));
  // 503, a reset (no answer), 429 with Retry-After: tried again each time (Retry-After is
  // capped at retry_max, 2 ms here).
  auto a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  const std::uint64_t first_id = id_of(a[0].first);
  a[0].second(ans(503, "busy", std::nullopt, ""));
  a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(id_of(a[0].first), first_id);
  a[0].second(ans(0, "", std::nullopt, "connection reset"));
  a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(id_of(a[0].first), first_id);
  a[0].second(ans(429, "", std::chrono::milliseconds(3600'000), ""));
  a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(id_of(a[0].first), first_id);
  // 400: parked, and the SIM's next event goes.
  a[0].second(ans(400, "bad payload", std::nullopt, ""));
  a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_GT(id_of(a[0].first), first_id);
  EXPECT_EQ(a[0].first.events[0].type, event_type::deactivated);
  a[0].second(ans(200, "", std::nullopt, ""));
  ASSERT_TRUE(eventually([&] { return s->stats().delivered == 1; }));
  auto st = s->stats();
  EXPECT_EQ(st.retried, 3u);
  EXPECT_EQ(st.parked, 1u);
  EXPECT_EQ(st.delivered, 1u);
  auto dl = s->dead_letters();
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0].ev.id, first_id);
  EXPECT_EQ(dl[0].status, 400u);
  EXPECT_EQ(dl[0].answer, "bad payload");
  // Redrive: the parked event goes again.
  EXPECT_EQ(s->redrive(), 1u);
  a = transport_.take(1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(id_of(a[0].first), first_id);
  a[0].second(ans(200, "", std::nullopt, ""));
  EXPECT_TRUE(eventually([&] { return s->stats().delivered == 2; }));
  EXPECT_TRUE(s->dead_letters().empty());
}

TEST_F(Sink, FiltersByTypeAndProductAndBatches) {
  make_product("other");
  sink_config c = webhook();
  c.types = {event_type::deactivated};
  c.products = {"acme"};
  c.batch = 10;
  make_sink(c);
  import("acme", {1, 2});
  import("other", {9});
  for (std::uint64_t n : {1, 2}) ASSERT_TRUE(act(n, sim_action::deactivate));
  ASSERT_TRUE(act(9, sim_action::deactivate));
  // Only acme's two deactivations: one batch of two, or two of one, as they were read.
  std::vector<request> got;
  while (got.size() < 2) {
    auto held = transport_.take(1);
    ASSERT_FALSE(held.empty());
    for (auto& [r, done] : held) {
      if (r.events.size() > 1) {
        const auto body = boost::json::parse(r.body);
        EXPECT_EQ(body.at("events").as_array().size(), r.events.size());
        EXPECT_EQ(r.idempotency_key,
                  std::to_string(r.events.front().id) + "-" + std::to_string(r.events.back().id));
      }
      for (const auto& e : r.events) {
        EXPECT_EQ(e.type, event_type::deactivated);
        EXPECT_EQ(eng_->product_name(e.product), "acme");
        got.push_back(r);
      }
      done(ans(200, "", std::nullopt, ""));
    }
  }
  EXPECT_EQ(got.size(), 2u);
}

// A sink on its own I/O thread over an engine, as simcapd runs it.
struct running_sink {
  explicit running_sink(engine& e, const sink_config& c) : s(c, e, t, io) {
    s.start();
    listener = e.events().add_listener([this](const event&) { s.wake(); });
    thread = std::thread([this] { io.run(); });
  }
  void stop(engine& e) {
    e.events().remove_listener(listener);
    s.flush();
    work.reset();
    io.stop();
    thread.join();
  }
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
  held_transport t;
  outbound::sink s;
  std::uint64_t listener = 0;
  std::thread thread;
};

// A carrier sink over an engine with a store, started again on the same store as simcapd is.
class SinkPosition : public ::testing::Test {
 protected:
  SinkPosition() {
    std::filesystem::remove_all(dir_);
    carrier_.name = "carrier";
    carrier_.kind = sink_config::kind_t::carrier;
    carrier_.url = "http://127.0.0.1:1/";
  }
  ~SinkPosition() override { std::filesystem::remove_all(dir_); }
  engine_options options() const {
    engine_options o;
    o.shards = 2;
    o.store_dir = dir_.string();
    o.checkpoint_interval = std::chrono::milliseconds(0);
    return o;
  }
  static void make_acme(engine& e) {
    product_settings ps;
    ps.id = "acme";
    ASSERT_TRUE(e.put_product(ps));
  }

  const std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                                     ("simcap-sink-position-" + std::to_string(::getpid()));
  manual_clock clk_{kStart};
  memory_dead_letters dl_;
  sink_config carrier_;
};

// A sink's position is side state of the engine: written with the checkpoint, read back at the
// next start, so only the events that were not finished go again.
TEST_F(SinkPosition, AfterARestartOnlyTheUnfinishedEventsGoAgain) {
  std::uint64_t unfinished = 0;
  {
    engine e(options(), clk_, dl_);
    e.start();
    make_acme(e);
    running_sink r(e, carrier_);
    std::vector<iccid> ids{test_iccid(1), test_iccid(2), test_iccid(3)};
    ASSERT_TRUE(e.import_sims("acme", ids));
    auto held = r.t.take(3);
    ASSERT_EQ(held.size(), 3u);
    held[0].second(ans(200, "", std::nullopt, ""));
    held[2].second(ans(200, "", std::nullopt, ""));
    unfinished = held[1].first.events[0].id;
    ASSERT_TRUE(eventually([&] { return r.s.stats().delivered == 2; }));
    r.stop(e);
    e.stop();  // the last checkpoint holds the position
    held[1].second(ans(0, "", std::nullopt, "simcapd stopped"));  // (nothing listens any more)
  }
  engine e(options(), clk_, dl_);
  e.start();
  running_sink r(e, carrier_);
  auto again = r.t.take(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first.events[0].id, unfinished);
  again[0].second(ans(200, "", std::nullopt, ""));
  // The next request is a new event, not one delivered before the restart.
  std::vector<iccid> more{test_iccid(4)};
  ASSERT_TRUE(e.import_sims("acme", more));
  auto next = r.t.take(1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].first.events[0].sim, test_iccid(4).key());
  next[0].second(ans(200, "", std::nullopt, ""));
  ASSERT_TRUE(eventually([&] { return r.s.stats().delivered == 2; }));
  r.stop(e);
  e.stop();
}

// Retention deletes the events a sink had not read yet: they are counted as expired and the sink
// goes on from the oldest kept; its dead letters keep their events, also after a restart.
TEST_F(SinkPosition, RetentionExpiresUnreadEventsAndKeepsDeadLetters) {
  const auto options = [this] {
    engine_options o = this->options();
    o.events_retention = std::chrono::seconds(86400);
    return o;
  };
  std::uint64_t parked = 0;
  {
    engine e(options(), clk_, dl_);
    e.start();
    make_acme(e);
    {
      running_sink r(e, carrier_);
      std::vector<iccid> ids{test_iccid(1), test_iccid(2)};
      ASSERT_TRUE(e.import_sims("acme", ids));
      auto held = r.t.take(2);
      ASSERT_EQ(held.size(), 2u);
      parked = held[0].first.events[0].id;
      held[0].second(ans(400, "unknown SIM", std::nullopt, ""));
      held[1].second(ans(200, "", std::nullopt, ""));
      ASSERT_TRUE(
          eventually([&] { return r.s.stats().delivered == 1 && r.s.stats().parked == 1; }));
      r.stop(e);
    }
    // Three events the sink never reads (it is stopped), then a day and a half later one more:
    // the purge after its checkpoint deletes every event of day 0.
    std::vector<iccid> unread{test_iccid(3), test_iccid(4), test_iccid(5)};
    ASSERT_TRUE(e.import_sims("acme", unread));
    ASSERT_TRUE(e.advance_clock(kStart + 36 * 3600));
    std::vector<iccid> late{test_iccid(6)};
    ASSERT_TRUE(e.import_sims("acme", late));
    e.checkpoint();
    EXPECT_EQ(e.stats().events_purged, 5u);
    EXPECT_EQ(e.events().first_retained(), 6u);
    e.stop();
  }
  engine e(options(), clk_, dl_);
  e.start();
  EXPECT_EQ(e.events().first_retained(), 6u);
  running_sink r(e, carrier_);
  auto next = r.t.take(1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].first.events[0].sim, test_iccid(6).key());
  next[0].second(ans(200, "", std::nullopt, ""));
  ASSERT_TRUE(eventually([&] { return r.s.stats().delivered == 1; }));
  EXPECT_EQ(r.s.stats().expired, 3u);  // SIMs 3, 4 and 5: neither delivered nor parked
  EXPECT_EQ(r.s.stats().backlog, 0u);
  const auto dead = r.s.dead_letters();
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].ev.id, parked);
  EXPECT_EQ(dead[0].ev.sim, test_iccid(1).key());
  EXPECT_EQ(dead[0].ev.type, event_type::activated);
  EXPECT_EQ(dead[0].ev.time, kStart);
  EXPECT_EQ(dead[0].status, 400u);
  EXPECT_EQ(dead[0].answer, "unknown SIM");
  // Redriven, it goes as it was.
  EXPECT_EQ(r.s.redrive(), 1u);
  auto again = r.t.take(1);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].first.events[0].id, parked);
  EXPECT_NE(again[0].first.body.find(test_iccid(1).str()), std::string::npos);
  again[0].second(ans(200, "", std::nullopt, ""));
  ASSERT_TRUE(eventually([&] { return r.s.stats().delivered == 2; }));
  r.stop(e);
  e.stop();
}

}  // namespace
}  // namespace simcap::testing
