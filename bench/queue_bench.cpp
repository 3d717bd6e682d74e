// Queue hand-off: batches of 2048 records from one producer thread to one consumer thread
// through the shard queue (moodycamel BlockingConcurrentQueue), with a producer token and bulk
// dequeue (the feed path) against implicit-producer single enqueues.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "shard/shard.hpp"

namespace {

using namespace simcap;

class counted_batch final : public record_batch {
 public:
  std::atomic<std::uint64_t>* done = nullptr;
  void on_applied() noexcept override { done->fetch_add(1, std::memory_order_release); }
};

template <bool kToken>
void BM_queue_handoff(benchmark::State& state) {
  detail::shard_queue q(1024);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> consumed{0};
  std::thread consumer([&] {
    detail::shard_msg msgs[64];
    while (!stop.load(std::memory_order_acquire)) {
      std::size_t n = q.wait_dequeue_bulk_timed(msgs, 64, 1000);
      for (std::size_t i = 0; i < n; ++i) {
        if (msgs[i].batch != nullptr) msgs[i].batch->on_applied();
      }
    }
  });
  constexpr std::size_t kInFlight = 64;
  std::vector<counted_batch> batches(kInFlight);
  std::vector<usage_record> recs(2048);
  for (auto& b : batches) {
    b.records = recs;
    b.done = &consumed;
  }
  moodycamel::ProducerToken tok(q);
  std::uint64_t produced = 0;
  for (auto _ : state) {
    // Keep at most kInFlight batches queued, as a feed session does.
    while (produced - consumed.load(std::memory_order_acquire) >= kInFlight) {
    }
    detail::shard_msg m{&batches[produced % kInFlight]};
    if constexpr (kToken) {
      q.enqueue(tok, m);
    } else {
      q.enqueue(m);
    }
    ++produced;
  }
  while (consumed.load() < produced) {
  }
  stop.store(true);
  q.enqueue(detail::shard_msg{});
  consumer.join();
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(produced), benchmark::Counter::kIsRate);
  state.counters["records/s"] =
      benchmark::Counter(static_cast<double>(produced * 2048), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_queue_handoff<true>)->Name("BM_queue_handoff/producer_token")->UseRealTime();
BENCHMARK(BM_queue_handoff<false>)->Name("BM_queue_handoff/implicit_producer")->UseRealTime();

}  // namespace
