// Queries of a running shard: an idle shard is read in the asking thread, a busy one answers
// between batches, and a reader never sees a SIM half updated.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "shard_host_fixture.hpp"

namespace simcap::detail {
namespace {

using testing::kStart;
using testing::test_iccid;

using testing_host::host;

class waited_batch final : public record_batch {
 public:
  std::promise<void> applied;
  void on_applied() noexcept override { applied.set_value(); }
};

struct running_shard : ::testing::Test {
  engine_options opts;
  manual_clock clk{kStart};
  event_log events;
  testing::memory_dead_letters dl;
  host h;
  std::unique_ptr<shard> s;

  void SetUp() override {
    opts.mb_bytes = 1'000'000'000;  // no SIM reaches its limit here
    h.info.index = 0;
    h.info.version = 1;
    h.info.id = "acme";
    h.info.default_mb_limit = 50;
    h.info.thresholds = {900};
    s = std::make_unique<shard>(0, opts, clk, events, dl, h);
    s->learn_product(h.info);
    s->import_sim(test_iccid(1).key(), 0, sim_state::active, 0, false, clk.now());
    s->start();
  }
  void TearDown() override { s->stop(); }

  // Applies one record on the shard thread and waits until it is counted.
  void apply(std::uint64_t up, std::uint64_t down) {
    usage_record r;
    r.sim = test_iccid(1).key();
    r.event_time = clk.now();
    r.up = up;
    r.down = down;
    waited_batch b;
    b.records = std::span<const usage_record>(&r, 1);
    auto done = b.applied.get_future();
    s->queue().enqueue(shard_msg{&b});
    done.get();
  }
};

TEST_F(running_shard, IdleShardIsReadInTheAskingThread) {
  apply(100, 200);
  // The shard thread has gone back to waiting for work by now, or will very soon.
  std::optional<sim_view> v;
  std::thread::id ran_in;
  for (int i = 0; i < 1000 && !v; ++i) {
    if (!s->try_read_here([&](shard& sh) {
          ran_in = std::this_thread::get_id();
          v = sh.view(test_iccid(1).key(), std::nullopt);
        })) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ASSERT_TRUE(v.has_value()) << "an idle shard was never read in the asking thread";
  EXPECT_EQ(ran_in, std::this_thread::get_id());
  EXPECT_EQ(v->bytes_up, 100u);
  EXPECT_EQ(v->bytes_down, 200u);
}

TEST_F(running_shard, BusyShardAnswersBetweenBatches) {
  std::promise<void> release;
  std::promise<void> holding;
  auto go = release.get_future().share();
  s->post_task(new fn_task([&holding, go](shard&) {
    holding.set_value();
    go.wait();
  }));
  holding.get_future().get();
  // The shard thread is working (on the task): a query is not run here but queued for it.
  bool ran_here = s->try_read_here([](shard&) {});
  EXPECT_FALSE(ran_here);
  std::promise<std::pair<std::thread::id, std::uint64_t>> answer;
  auto got = answer.get_future();
  s->post_read(new fn_task([&answer](shard& sh) {
    auto v = sh.view(test_iccid(1).key(), std::nullopt);
    answer.set_value({std::this_thread::get_id(), v ? v->usage_bytes() : ~0ull});
  }));
  EXPECT_EQ(got.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  auto [thread, usage] = got.get();
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_EQ(usage, 0u);
}

TEST_F(running_shard, ReadersNeverSeeAHalfAppliedRecord) {
  // Every record adds 1 up and 2 down: any consistent view has down == 2 * up, and the usage a
  // reader sees never goes back.
  constexpr int kRecords = 20000;
  std::atomic<bool> done{false};
  std::atomic<int> inline_reads{0}, queued_reads{0}, bad{0};
  std::thread reader([&] {
    std::uint64_t last = 0;
    while (!done.load()) {
      auto check = [&](shard& sh) {
        auto v = sh.view(test_iccid(1).key(), std::nullopt);
        if (!v || v->bytes_down != 2 * v->bytes_up || v->bytes_up < last) bad.fetch_add(1);
        if (v) last = v->bytes_up;
      };
      if (s->try_read_here(check)) {
        inline_reads.fetch_add(1);
      } else {
        std::promise<void> p;
        auto f = p.get_future();
        s->post_read(new fn_task([&check, &p](shard& sh) {
          check(sh);
          p.set_value();
        }));
        f.get();
        queued_reads.fetch_add(1);
      }
    }
  });
  std::vector<usage_record> recs(kRecords / 100);
  // At least 100 batches, and on until the reader has read a few times meanwhile (on a loaded
  // machine it may not run at all during the first hundred).
  int batches = 0;
  for (; batches < 100 || inline_reads.load() + queued_reads.load() < 8; ++batches) {
    for (auto& r : recs) {
      r.sim = test_iccid(1).key();
      r.event_time = clk.now();
      r.up = 1;
      r.down = 2;
    }
    waited_batch b;
    b.records = recs;
    auto applied = b.applied.get_future();
    s->queue().enqueue(shard_msg{&b});
    applied.get();
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(inline_reads.load() + queued_reads.load(), 0);
  std::promise<std::uint64_t> up;
  auto final_up = up.get_future();
  s->post_read(new fn_task([&up](shard& sh) {
    auto v = sh.view(test_iccid(1).key(), std::nullopt);
    up.set_value(v ? v->bytes_up : 0);
  }));
  EXPECT_EQ(final_up.get(), static_cast<std::uint64_t>(batches) * recs.size());
}

}  // namespace
}  // namespace simcap::detail
